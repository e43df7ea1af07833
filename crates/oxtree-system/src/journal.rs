//! A unit's last journal lines. There is no D-Bus API for the journal;
//! the real tool is `journalctl`, whose `-o json` output
//! [`parse_json_lines`] reads (one object per line; `MESSAGE` is a string,
//! or an array of bytes when it is not UTF-8, or null).

use crate::error::{Result, SystemError};
use crate::names::check_unit_name;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::process::Command;

/// Most lines one request may ask for.
pub const MAX_LINES: usize = 10_000;

/// One journal entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JournalEntry {
    /// When it was logged (RFC 3339, microseconds).
    pub time: Option<String>,
    /// syslog priority: 0 (emerg) to 7 (debug).
    pub priority: Option<u8>,
    pub pid: Option<u32>,
    pub message: String,
}

/// The last `lines` entries of `unit` (oldest first), from `journalctl`
/// (`journalctl` is `program`, for tests).
pub fn unit_journal(unit: &str, lines: usize) -> Result<Vec<JournalEntry>> {
    unit_journal_with("journalctl", unit, lines)
}

pub fn unit_journal_with(program: &str, unit: &str, lines: usize) -> Result<Vec<JournalEntry>> {
    check_unit_name(unit)?;
    if lines == 0 || lines > MAX_LINES {
        return Err(SystemError::BadRequest(format!(
            "lines must be 1 to {MAX_LINES}"
        )));
    }
    // Every argument in `--opt=value` form: a name can never pass for an
    // option.
    let out = Command::new(program)
        .arg(format!("--unit={unit}"))
        .arg(format!("--lines={lines}"))
        .args([
            "--output=json",
            "--no-pager",
            "--quiet",
            "--output-fields=MESSAGE,PRIORITY,_PID",
        ])
        .env("SYSTEMD_COLORS", "0")
        .output()
        .map_err(|e| SystemError::Journal(format!("running {program}: {e}")))?;
    if !out.status.success() {
        return Err(SystemError::Journal(format!(
            "{} ({})",
            String::from_utf8_lossy(&out.stderr).trim(),
            out.status
        )));
    }
    parse_json_lines(&out.stdout)
}

fn field_str(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        // Not UTF-8: journalctl sends the bytes as numbers.
        Value::Array(a) => {
            let bytes: Option<Vec<u8>> = a
                .iter()
                .map(|b| b.as_u64().and_then(|n| u8::try_from(n).ok()))
                .collect();
            bytes.map(|b| String::from_utf8_lossy(&b).into_owned())
        }
        _ => None,
    }
}

/// Parse journalctl's `-o json` output. A line that is not a JSON object
/// is an error (journalctl never writes one); unknown fields are ignored.
pub fn parse_json_lines(bytes: &[u8]) -> Result<Vec<JournalEntry>> {
    let mut out = Vec::new();
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let v: Value = serde_json::from_slice(line)
            .map_err(|e| SystemError::Journal(format!("line {}: {e}", i + 1)))?;
        let Value::Object(o) = v else {
            return Err(SystemError::Journal(format!(
                "line {}: not a JSON object",
                i + 1
            )));
        };
        let get = |k: &str| o.get(k).and_then(field_str);
        let time = get("__REALTIME_TIMESTAMP")
            .and_then(|t| t.parse::<i64>().ok())
            .and_then(chrono::DateTime::from_timestamp_micros)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
        out.push(JournalEntry {
            time,
            priority: get("PRIORITY")
                .and_then(|p| p.parse().ok())
                .filter(|p| *p <= 7),
            pid: get("_PID").and_then(|p| p.parse().ok()),
            message: get("MESSAGE").unwrap_or_default(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_journalctl_json() {
        let input = br#"{"__REALTIME_TIMESTAMP":"1700000000123456","PRIORITY":"6","_PID":"42","MESSAGE":"probe started","__CURSOR":"s=x"}
{"__REALTIME_TIMESTAMP":"1700000001000000","PRIORITY":"3","MESSAGE":[104,105,255]}
{"MESSAGE":null,"PRIORITY":"99"}
"#;
        let e = parse_json_lines(input).unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].time.as_deref(), Some("2023-11-14T22:13:20.123456Z"));
        assert_eq!(e[0].priority, Some(6));
        assert_eq!(e[0].pid, Some(42));
        assert_eq!(e[0].message, "probe started");
        assert_eq!(e[1].message, "hi\u{fffd}");
        assert_eq!(e[1].pid, None);
        assert_eq!(e[2].message, "");
        assert_eq!(e[2].priority, None);
        assert!(parse_json_lines(b"[1,2]\n").is_err());
        assert!(parse_json_lines(b"{\"MESSAGE\":").is_err());
        assert!(parse_json_lines(b"\n\n").unwrap().is_empty());
    }

    #[test]
    fn refuses_bad_requests_before_running_anything() {
        let never = "/nonexistent/journalctl";
        for (unit, lines) in [
            ("a b.service", 10),
            ("x.service", 0),
            ("x.service", MAX_LINES + 1),
            ("../x", 1),
        ] {
            match unit_journal_with(never, unit, lines) {
                Err(SystemError::BadRequest(_)) => {}
                r => panic!("{unit} {lines}: {r:?}"),
            }
        }
        // A good request runs the program (here: one that is not there).
        assert!(matches!(
            unit_journal_with(never, "ssh.service", 5),
            Err(SystemError::Journal(_))
        ));
    }
}

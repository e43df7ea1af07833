//! The audit log: one JSON line per mutation (accepted, refused, and how
//! it ended) and per refused call, saying who, what and the result.
//! Appended to a file opened with O_APPEND, so concurrent writers and a
//! crash never interleave or lose earlier lines.

use crate::error::{AgentError, Result};
use serde_json::{json, Value};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Mutex;

#[derive(Debug)]
pub struct Audit(Option<Mutex<File>>);

impl Audit {
    /// Append to `path` (created 0600, its directory too).
    pub fn open(path: &Path) -> Result<Audit> {
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d).map_err(|e| AgentError::io(d, e))?;
        }
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| AgentError::io(path, e))?;
        Ok(Audit(Some(Mutex::new(f))))
    }

    /// Records nothing (for unit tests).
    pub fn none() -> Audit {
        Audit(None)
    }

    /// Write one record: `who` did `action` (with `detail`), `result`.
    pub fn record(&self, who: &str, action: &str, detail: Value, result: &str) {
        let Some(f) = &self.0 else { return };
        let line = json!({
            "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "who": who,
            "action": action,
            "detail": detail,
            "result": result,
        });
        let mut text = line.to_string();
        text.push('\n');
        // One write per line: O_APPEND keeps it whole. A failing audit
        // write cannot be reported to anyone useful; the agent's stderr
        // (the journal) gets it from the caller's logging instead.
        if let Ok(mut f) = f.lock() {
            let _ = f.write_all(text.as_bytes());
        }
    }
}

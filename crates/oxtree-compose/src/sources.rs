//! The apt sources a compose uses when the treefile names no `mirror`:
//! the host's own. When the treefile's suite is not the host's release
//! (a trixie image built on bookworm), the host's Debian entries are
//! carried over to that suite (`bookworm` → `trixie`, `bookworm-updates`
//! → `trixie-updates`, …) and entries for other suites (third-party
//! repositories) are left out, since they were made for the host's release.

use crate::error::{ComposeError, IoContext, Result};
use std::path::{Path, PathBuf};

/// The host's apt source files (one-line `.list` and deb822 `.sources`).
pub fn host_source_files() -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let main = Path::new("/etc/apt/sources.list");
    if std::fs::metadata(main).is_ok_and(|m| m.len() > 0) {
        out.push(main.to_path_buf());
    }
    if let Ok(rd) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut v: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "list" || e == "sources"))
            .collect();
        v.sort();
        out.extend(v);
    }
    if out.is_empty() {
        return Err(ComposeError::Layout(
            "the host has no apt sources; set `mirror` in the treefile".into(),
        ));
    }
    Ok(out)
}

/// The host's release codename (`VERSION_CODENAME` of os-release).
pub fn host_codename() -> Option<String> {
    let text = std::fs::read_to_string("/etc/os-release").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .map(|v| v.trim().trim_matches('"').to_string())
        .filter(|v| !v.is_empty())
}

/// What to hand mmdebstrap as mirrors when the treefile has none: the
/// host's files as they are for the host's own suite, else one sources
/// file written into `work` with the Debian entries moved to `suite`.
pub fn default_mirrors(suite: &str, work: &Path) -> Result<Vec<String>> {
    let files = host_source_files()?;
    let host = host_codename();
    if host.as_deref().is_none_or(|h| h == suite) {
        return Ok(files
            .into_iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect());
    }
    let host = host.unwrap_or_default();
    let mut text = String::new();
    for f in &files {
        let t = std::fs::read_to_string(f).ctx(|| format!("reading {}", f.display()))?;
        let is_deb822 = f.extension().is_some_and(|e| e == "sources");
        text.push_str(&retarget(&t, is_deb822, &host, suite));
    }
    if text.trim().is_empty() {
        return Err(ComposeError::Layout(format!(
            "none of the host's apt sources is for its release {host}, so none can be moved to {suite}; set `mirror` in the treefile"
        )));
    }
    let path = work.join("sources.list");
    std::fs::write(&path, text).ctx(|| format!("writing {}", path.display()))?;
    Ok(vec![path.to_string_lossy().into_owned()])
}

/// `bookworm-updates` → `trixie-updates` for host `bookworm`, target
/// `trixie`; None for a suite of another release.
fn move_suite(s: &str, host: &str, target: &str) -> Option<String> {
    if s == host {
        return Some(target.to_string());
    }
    let rest = s.strip_prefix(host)?.strip_prefix('-')?;
    Some(format!("{target}-{rest}"))
}

/// Rewrite the entries of one sources file as one-line `deb` entries for
/// `target` (only `deb` entries, options kept).
fn retarget(text: &str, deb822: bool, host: &str, target: &str) -> String {
    let mut out = String::new();
    if !deb822 {
        for line in text.lines() {
            let l = line.trim();
            let Some(rest) = l.strip_prefix("deb ") else {
                continue;
            };
            let rest = rest.trim();
            let (opts, rest) = match rest.strip_prefix('[') {
                Some(r) => match r.split_once(']') {
                    Some((o, r)) => (format!("[{o}] "), r.trim()),
                    None => continue,
                },
                None => (String::new(), rest),
            };
            let mut parts = rest.split_whitespace();
            let (Some(uri), Some(suite)) = (parts.next(), parts.next()) else {
                continue;
            };
            let comps: Vec<&str> = parts.collect();
            if let Some(s) = move_suite(suite, host, target) {
                out.push_str(&format!("deb {opts}{uri} {s} {}\n", comps.join(" ")));
            }
        }
        return out;
    }
    for stanza in text.split("\n\n") {
        let mut types = "";
        let mut uris = Vec::new();
        let mut suites = Vec::new();
        let mut comps = Vec::new();
        let mut signed_by = None;
        let mut enabled = true;
        for line in stanza.lines() {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            let v = v.trim();
            match k.trim().to_ascii_lowercase().as_str() {
                "types" => types = v,
                "uris" => uris = v.split_whitespace().collect(),
                "suites" => suites = v.split_whitespace().collect(),
                "components" => comps = v.split_whitespace().collect(),
                "signed-by" => signed_by = Some(v),
                "enabled" => enabled = v != "no",
                _ => {}
            }
        }
        if !enabled || !types.split_whitespace().any(|t| t == "deb") {
            continue;
        }
        let opts = signed_by
            .filter(|s| !s.contains(' '))
            .map(|s| format!("[signed-by={s}] "))
            .unwrap_or_default();
        for uri in &uris {
            for suite in &suites {
                if let Some(s) = move_suite(suite, host, target) {
                    out.push_str(&format!("deb {opts}{uri} {s} {}\n", comps.join(" ")));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deb822_entries_move_to_the_target_suite() {
        let t = "Types: deb\nURIs: http://m/debian\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /k.gpg\n\nTypes: deb\nURIs: https://other/apt\nSuites: cloud-sdk-bookworm\nComponents: main\n";
        assert_eq!(
            retarget(t, true, "bookworm", "trixie"),
            "deb [signed-by=/k.gpg] http://m/debian trixie main\ndeb [signed-by=/k.gpg] http://m/debian trixie-updates main\n"
        );
    }

    #[test]
    fn one_line_entries_move_and_others_are_dropped() {
        let t = "# c\ndeb http://m/debian bookworm main contrib\ndeb-src http://m/debian bookworm main\ndeb [arch=amd64] http://s/debian-security bookworm-security main\ndeb http://x/ nodistro main\n";
        assert_eq!(
            retarget(t, false, "bookworm", "trixie"),
            "deb http://m/debian trixie main contrib\ndeb [arch=amd64] http://s/debian-security trixie-security main\n"
        );
    }
}

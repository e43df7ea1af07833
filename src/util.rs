//! Small helpers shared by commands: opening the repository named by
//! --repo, parsing dates, progress bars.

use anyhow::{anyhow, Result};
use indicatif::{ProgressBar, ProgressStyle};
use oxtree_repo::{Repo, RepoError};
use std::io::IsTerminal;
use std::path::PathBuf;

/// The repository: --repo (or OSTREE_REPO), else as ostree the current
/// directory if it is a repository, else the repository of the sysroot
/// named by OSTREE_SYSROOT (default `/`), when it has one.
pub fn repo_path(repo: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(r) = repo {
        return Ok(r);
    }
    // As ostree: the current directory, when it is a repository.
    if std::path::Path::new("config").is_file() && std::path::Path::new("objects").is_dir() {
        return Ok(PathBuf::from("."));
    }
    let sysroot = std::env::var_os("OSTREE_SYSROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"));
    let r = sysroot.join("ostree/repo");
    if r.join("config").is_file() {
        return Ok(r);
    }
    Err(anyhow!(
        "--repo=PATH must be given (or OSTREE_REPO set); {} has no repository",
        sysroot.display()
    ))
}

pub fn open_repo(repo: Option<PathBuf>) -> Result<Repo> {
    let p = repo_path(repo)?;
    Repo::open(&p).map_err(|e| match e {
        // It says "opening repository P" itself.
        e @ RepoError::OpenDir { .. } => e.into(),
        e => anyhow::Error::from(e).context(format!("opening repository {}", p.display())),
    })
}

/// Parse the date forms ostree's --timestamp accepts in practice:
/// `@EPOCH`, RFC 3339, `YYYY-MM-DD[ T]HH:MM[:SS]` (UTC) and `YYYY-MM-DD`.
pub fn parse_timestamp(s: &str) -> Result<u64> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime};
    let s = s.trim();
    if let Some(e) = s.strip_prefix('@') {
        return e.parse().map_err(|_| anyhow!("invalid timestamp '{s}'"));
    }
    for f in ["%Y-%m-%d %H:%M:%S %z", "%Y-%m-%dT%H:%M:%S%z"] {
        if let Ok(d) = DateTime::parse_from_str(s, f) {
            return Ok(epoch_u64(d.timestamp()));
        }
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Ok(epoch_u64(d.timestamp()));
    }
    for f in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(d) = NaiveDateTime::parse_from_str(s, f) {
            return Ok(epoch_u64(d.and_utc().timestamp()));
        }
    }
    // Also the spelled-out dates GNU date(1) reads ("October 25 1985").
    for f in ["%Y-%m-%d", "%B %d %Y", "%b %d %Y", "%d %B %Y", "%d %b %Y"] {
        if let Ok(d) = NaiveDate::parse_from_str(s, f) {
            let t = d.and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp();
            return Ok(epoch_u64(t));
        }
    }
    if let Some(t) = relative_timestamp(s) {
        return Ok(t);
    }
    Err(anyhow!(
        "could not parse timestamp '{s}' (use @EPOCH, YYYY-MM-DD, RFC 3339 or 'N days ago')"
    ))
}

/// Seconds since the epoch as a commit stores them: a `u64` in which a
/// date before 1970 wraps around, as ostree's (it converts GLib's signed
/// seconds the same way; `log` shows such a date correctly again).
fn epoch_u64(t: i64) -> u64 {
    t as u64
}

/// GNU date(1)'s relative forms, which ostree accepts through the same
/// parser: `now`, `yesterday`, `N UNIT ago` (seconds to years, singular
/// or plural; months and years are calendar ones).
fn relative_timestamp(s: &str) -> Option<u64> {
    use chrono::{Duration, Months, Utc};
    let now = Utc::now();
    let t = match s.to_ascii_lowercase().as_str() {
        "now" | "today" => now,
        "yesterday" => now - Duration::days(1),
        other => {
            let words: Vec<&str> = other.split_whitespace().collect();
            let [n, unit, "ago"] = words.as_slice() else {
                return None;
            };
            let n: u32 = n.parse().ok()?;
            match unit.trim_end_matches('s') {
                "second" | "sec" => now - Duration::seconds(n.into()),
                "minute" | "min" => now - Duration::minutes(n.into()),
                "hour" => now - Duration::hours(n.into()),
                "day" => now - Duration::days(n.into()),
                "week" => now - Duration::weeks(n.into()),
                "fortnight" => now - Duration::weeks(2 * i64::from(n)),
                "month" => now.checked_sub_months(Months::new(n))?,
                "year" => now.checked_sub_months(Months::new(n.checked_mul(12)?))?,
                _ => return None,
            }
        }
    };
    u64::try_from(t.timestamp()).ok()
}

/// `YYYY-MM-DD HH:MM:SS +0000`, as ostree prints commit dates.
pub fn format_date(ts: u64) -> String {
    chrono::DateTime::from_timestamp(ts as i64, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S +0000").to_string())
        .unwrap_or_else(|| format!("@{ts}"))
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A progress bar on stderr, drawn only when stderr is a terminal.
pub fn progress_bar(len: u64, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({per_sec}, {eta})")
            .unwrap()
            .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

pub fn parse_bool(s: &str) -> Result<bool> {
    match s {
        "true" | "yes" | "1" => Ok(true),
        "false" | "no" | "0" => Ok(false),
        _ => Err(anyhow!("'{s}' is not a boolean")),
    }
}

/// Whether the repository's directory belongs to the user running us
/// (then its file objects are trusted, as ostree trusts a local source).
pub fn owned_by_us(src: &Repo) -> bool {
    rustix::fs::fstat(src.dir())
        .map(|st| st.st_uid == rustix::process::geteuid().as_raw())
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::parse_timestamp;

    /// The date forms ostree's test suite and scripts pass to --timestamp.
    #[test]
    fn timestamps_ostree_accepts() {
        assert_eq!(parse_timestamp("@1").unwrap(), 1);
        assert_eq!(parse_timestamp("1985-10-25").unwrap(), 499_046_400);
        assert_eq!(parse_timestamp("October 25 1985").unwrap(), 499_046_400);
        assert_eq!(
            parse_timestamp("2005-10-29 12:43:29 +0000").unwrap(),
            1_130_589_809
        );
        assert_eq!(
            parse_timestamp("2005-10-29 14:43:29 +0200").unwrap(),
            1_130_589_809
        );
        assert!(parse_timestamp("yesterday-ish").is_err());
    }
}

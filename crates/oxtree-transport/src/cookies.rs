//! A remote's cookie jar, `REMOTE.cookies.txt` in the repository, in the
//! Netscape text format ostree (through libsoup or libcurl) reads and its
//! `remote add-cookie` writes: one cookie per line, seven tab-separated
//! fields `domain flag path secure expiry name value`. Pulls from the
//! remote send the cookies that match the URL's host and path.
//!
//! Written by hand: the format is seven fields a line, and the cookie
//! crates model browser jars (Set-Cookie parsing, public suffixes), not
//! this file.

use crate::error::{Result, TransportError};
use oxtree_repo::fsutil;
use oxtree_repo::Repo;

/// Largest jar read.
const MAX_JAR: usize = 1 << 20;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cookie {
    pub domain: String,
    pub path: String,
    pub secure: bool,
    /// Seconds since the epoch.
    pub expires: u64,
    pub name: String,
    pub value: String,
}

/// The jar's file name for `remote`.
pub fn jar_name(remote: &str) -> String {
    format!("{remote}.cookies.txt")
}

/// One jar line as a cookie; None for comments and malformed lines
/// (skipped, as ostree's parser skips them).
fn parse_line(line: &str) -> Option<Cookie> {
    let f: Vec<&str> = line.split('\t').collect();
    if f.len() != 7 || line.starts_with('#') {
        return None;
    }
    Some(Cookie {
        domain: f[0].to_string(),
        path: f[2].to_string(),
        secure: f[3].eq_ignore_ascii_case("TRUE"),
        expires: f[4].parse().ok()?,
        name: f[5].to_string(),
        value: f[6].to_string(),
    })
}

fn read_jar(repo: &Repo, remote: &str) -> Result<String> {
    match fsutil::read_at(repo.dir(), &jar_name(remote)) {
        Ok(b) if b.len() > MAX_JAR => Err(TransportError::Config(format!(
            "{} is larger than {MAX_JAR} bytes",
            jar_name(remote)
        ))),
        Ok(b) => Ok(String::from_utf8_lossy(&b).into_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(TransportError::io(
            format!("reading {}", jar_name(remote)),
            e,
        )),
    }
}

/// Every cookie in `remote`'s jar.
pub fn list(repo: &Repo, remote: &str) -> Result<Vec<Cookie>> {
    Ok(read_jar(repo, remote)?
        .lines()
        .filter_map(parse_line)
        .collect())
}

fn check_field(what: &str, v: &str) -> Result<()> {
    if v.is_empty() || v.contains(['\t', '\n', '\r']) {
        return Err(TransportError::Config(format!(
            "invalid cookie {what} '{v}'"
        )));
    }
    Ok(())
}

/// `remote add-cookie`: append a cookie valid for 25 years, as ostree does.
pub fn add(
    repo: &Repo,
    remote: &str,
    domain: &str,
    path: &str,
    name: &str,
    value: &str,
) -> Result<()> {
    for (what, v) in [
        ("domain", domain),
        ("path", path),
        ("name", name),
        ("value", value),
    ] {
        check_field(what, v)?;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let expires = now + 25 * 365 * 24 * 3600 + 6 * 24 * 3600;
    let flag = if domain.starts_with('.') {
        "TRUE"
    } else {
        "FALSE"
    };
    let mut text = read_jar(repo, remote)?;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&format!(
        "{domain}\t{flag}\t{path}\tFALSE\t{expires}\t{name}\t{value}\n"
    ));
    write_jar(repo, remote, &text)
}

/// `remote delete-cookie`: drop the cookies with this domain, path and
/// name; an error if there was none.
pub fn delete(repo: &Repo, remote: &str, domain: &str, path: &str, name: &str) -> Result<()> {
    let text = read_jar(repo, remote)?;
    let mut found = false;
    let mut kept = String::new();
    for line in text.lines() {
        if let Some(c) = parse_line(line) {
            if c.domain == domain && c.path == path && c.name == name {
                found = true;
                continue;
            }
        }
        kept.push_str(line);
        kept.push('\n');
    }
    if !found {
        return Err(TransportError::Config("Cookie not found in jar".into()));
    }
    write_jar(repo, remote, &kept)
}

fn write_jar(repo: &Repo, remote: &str, text: &str) -> Result<()> {
    fsutil::write_atomic_at(repo.dir(), &jar_name(remote), text.as_bytes(), true)
        .map_err(|e| TransportError::io(format!("writing {}", jar_name(remote)), e))
}

/// The `Cookie:` header value for a request to `url` from `remote`'s
/// jar: cookies whose domain matches the host (exactly, or as a
/// `.domain` suffix), whose path is a prefix of the URL's, secure ones on
/// https only, unexpired. None when none match.
pub fn header_for(repo: &Repo, remote: &str, url: &str) -> Result<Option<String>> {
    let cookies = list(repo, remote)?;
    if cookies.is_empty() {
        return Ok(None);
    }
    let Ok(u) = reqwest::Url::parse(url) else {
        return Ok(None);
    };
    let host = u.host_str().unwrap_or_default().to_ascii_lowercase();
    let https = u.scheme() == "https";
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let matching: Vec<String> = cookies
        .iter()
        .filter(|c| {
            let d = c.domain.to_ascii_lowercase();
            let domain_ok = match d.strip_prefix('.') {
                Some(suffix) => host == suffix || host.ends_with(&d),
                None => host == d,
            };
            domain_ok
                && u.path().starts_with(&c.path)
                && (!c.secure || https)
                && (c.expires == 0 || c.expires > now)
        })
        .map(|c| format!("{}={}", c.name, c.value))
        .collect();
    Ok((!matching.is_empty()).then(|| matching.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_matching() {
        let c = parse_line("127.0.0.1\tFALSE\t/\tFALSE\t4000000000\tfoo\tbar").unwrap();
        assert_eq!(c.name, "foo");
        assert!(parse_line("# comment").is_none());
        assert!(parse_line("too\tfew").is_none());
        let t = tempfile::tempdir().unwrap();
        let repo = Repo::init(t.path(), oxtree_repo::RepoMode::Archive).unwrap();
        add(&repo, "o", "127.0.0.1", "/", "foo", "bar").unwrap();
        add(&repo, "o", ".example.org", "/x", "baz", "badger").unwrap();
        assert_eq!(
            header_for(&repo, "o", "http://127.0.0.1:8/repo/config").unwrap(),
            Some("foo=bar".into())
        );
        assert_eq!(
            header_for(&repo, "o", "http://a.example.org/x/y").unwrap(),
            Some("baz=badger".into())
        );
        assert_eq!(
            header_for(&repo, "o", "http://a.example.org/y").unwrap(),
            None
        );
        delete(&repo, "o", "127.0.0.1", "/", "foo").unwrap();
        assert!(delete(&repo, "o", "127.0.0.1", "/", "foo").is_err());
        assert_eq!(list(&repo, "o").unwrap().len(), 1);
        assert!(add(&repo, "o", "a\tb", "/", "n", "v").is_err());
    }
}

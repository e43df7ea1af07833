//! Remotes: `[remote "NAME"]` groups of the repository `config` (url,
//! contenturl, branches, gpg-verify, …), read and changed in place.
//!
//! Only the repository's own config is used; `remotes.d/*.conf` (the
//! `add-remotes-config-dir` scheme of system repos) is not read yet.

use crate::error::{Result, TransportError};
use oxtree_repo::{Repo, RepoConfig};

/// A configured remote, as a pull needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Remote {
    pub name: String,
    pub url: String,
    /// Where objects are fetched from, when different from `url`.
    pub content_url: Option<String>,
    /// `branches`: the refs a plain `pull NAME` fetches.
    pub branches: Vec<String>,
    pub gpg_verify: bool,
    pub gpg_verify_summary: bool,
    pub sign_verify: bool,
    pub sign_verify_summary: bool,
    /// `gpgkeypath`: extra keyring files or directories (`;` or `,`).
    pub gpg_key_path: Vec<String>,
    /// `verification-ed25519-key`: a base64 public key.
    pub ed25519_key: Option<String>,
    /// `verification-ed25519-file`: a file of base64 public keys.
    pub ed25519_file: Option<String>,
}

pub fn section(name: &str) -> String {
    format!("remote \"{name}\"")
}

/// ostree's rule for remote names: a letter, digit or `_`, then those or
/// `-` `.` — a single ref-name component.
pub fn validate_remote_name(name: &str) -> Result<()> {
    if name.contains('/') || oxtree_repo::refs::validate_ref_name(name).is_err() {
        return Err(TransportError::Config(format!(
            "invalid remote name '{name}'"
        )));
    }
    Ok(())
}

/// Names of the remotes in `config`, sorted.
pub fn list_remotes(config: &RepoConfig) -> Vec<String> {
    let mut v: Vec<String> = config
        .sections()
        .filter_map(|s| s.strip_prefix("remote \"")?.strip_suffix('"'))
        .map(str::to_string)
        .collect();
    v.sort();
    v.dedup();
    v
}

fn bool_opt(config: &RepoConfig, sec: &str, key: &str, default: bool) -> Result<bool> {
    Ok(config.get_bool(sec, key, default)?)
}

impl Remote {
    pub fn from_config(config: &RepoConfig, name: &str) -> Result<Remote> {
        let sec = section(name);
        let url = config
            .get(&sec, "url")
            .ok_or_else(|| TransportError::NoSuchRemote(name.to_string()))?
            .to_string();
        let branches = config
            .get(&sec, "branches")
            .map(|b| {
                b.split(';')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Remote {
            name: name.to_string(),
            url,
            content_url: config.get(&sec, "contenturl").map(str::to_string),
            branches,
            gpg_verify: bool_opt(config, &sec, "gpg-verify", true)?,
            gpg_verify_summary: bool_opt(config, &sec, "gpg-verify-summary", false)?,
            sign_verify: bool_opt(config, &sec, "sign-verify", false)?,
            sign_verify_summary: bool_opt(config, &sec, "sign-verify-summary", false)?,
            gpg_key_path: config
                .get(&sec, "gpgkeypath")
                .map(|p| {
                    p.split([';', ','])
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            ed25519_key: config
                .get(&sec, "verification-ed25519-key")
                .map(str::to_string),
            ed25519_file: config
                .get(&sec, "verification-ed25519-file")
                .map(str::to_string),
        })
    }

    pub fn open(repo: &Repo, name: &str) -> Result<Remote> {
        Remote::from_config(repo.config(), name)
    }

    /// Base URL for objects (contenturl when set).
    pub fn objects_base(&self) -> &str {
        self.content_url.as_deref().unwrap_or(&self.url)
    }
}

/// Add a remote to the repository config (like `ostree remote add`).
/// Returns false when it exists and `if_not_exists` is set.
pub fn add_remote(
    repo: &mut Repo,
    name: &str,
    url: &str,
    branches: &[String],
    options: &[(String, String)],
    if_not_exists: bool,
) -> Result<bool> {
    validate_remote_name(name)?;
    if url.is_empty() {
        return Err(TransportError::Config("empty URL".into()));
    }
    let mut cfg = repo.config().clone();
    if list_remotes(&cfg).iter().any(|r| r == name) {
        if if_not_exists {
            return Ok(false);
        }
        return Err(TransportError::RemoteExists(name.to_string()));
    }
    let sec = section(name);
    cfg.set(&sec, "url", url);
    if !branches.is_empty() {
        let mut b = String::new();
        for br in branches {
            oxtree_repo::refs::validate_ref_name(br)?;
            b.push_str(br);
            b.push(';');
        }
        cfg.set(&sec, "branches", &b);
    }
    for (k, v) in options {
        if k.is_empty() || k.contains(['=', '\n', '[', ']']) || v.contains('\n') {
            return Err(TransportError::Config(format!("invalid option '{k}={v}'")));
        }
        cfg.set(&sec, k, v);
    }
    repo.write_config(cfg)?;
    Ok(true)
}

/// Delete a remote and its refs dir. Returns false when it does not exist
/// and `if_exists` is set.
pub fn delete_remote(repo: &mut Repo, name: &str, if_exists: bool) -> Result<bool> {
    validate_remote_name(name)?;
    let cfg = repo.config().clone();
    if !list_remotes(&cfg).iter().any(|r| r == name) {
        if if_exists {
            return Ok(false);
        }
        return Err(TransportError::NoSuchRemote(name.to_string()));
    }
    // RepoConfig has no section removal: drop the group from the text.
    let header = format!("[{}]", section(name));
    let mut out = String::new();
    let mut skipping = false;
    for line in cfg.to_text().lines() {
        let t = line.trim();
        if t.starts_with('[') {
            skipping = t == header;
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    repo.write_config(RepoConfig::parse(&out)?)?;
    // Like ostree, the remote's imported keyring goes with it.
    crate::verify::remove_remote_keyring(repo, name)?;
    if let Ok(remotes) = oxtree_repo::fsutil::open_dir_at(repo.dir(), "refs/remotes") {
        oxtree_repo::transaction::remove_tree_at(&remotes, name)
            .map_err(|e| TransportError::io(format!("removing refs/remotes/{name}"), e))?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_remotes() {
        let c = RepoConfig::parse(
            "[core]\nrepo_version=1\n\n[remote \"a\"]\nurl=http://x/\nbranches=main;b/c;\ngpg-verify=false\n\n[remote \"b\"]\nurl=http://y\n",
        )
        .unwrap();
        assert_eq!(list_remotes(&c), vec!["a", "b"]);
        let a = Remote::from_config(&c, "a").unwrap();
        assert_eq!(a.branches, vec!["main", "b/c"]);
        assert!(!a.gpg_verify);
        let b = Remote::from_config(&c, "b").unwrap();
        assert!(b.gpg_verify && !b.gpg_verify_summary && !b.sign_verify);
        assert!(matches!(
            Remote::from_config(&c, "zz"),
            Err(TransportError::NoSuchRemote(_))
        ));
        assert!(validate_remote_name("a/b").is_err());
    }
}

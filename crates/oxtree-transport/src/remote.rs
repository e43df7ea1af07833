//! Remotes: `[remote "NAME"]` groups (url, contenturl, branches,
//! gpg-verify, …) in the repository `config` and, for the system repository
//! (`/ostree/repo`), in `/etc/ostree/remotes.d/*.conf` as ostree reads them.
//!
//! A name defined twice is an error, as in ostree. New remotes of the
//! system repo go to `remotes.d/NAME.conf` unless
//! `core.add-remotes-config-dir=false`; deleting a remote defined in a
//! remotes.d file removes that file (ostree does the same).

use crate::error::{Result, TransportError};
use crate::fetch::FetchOptions;
use oxtree_repo::{Repo, RepoConfig};
use std::path::{Path, PathBuf};

/// Where the system repository's extra remotes live.
pub const SYSTEM_REMOTES_DIR: &str = "/etc/ostree/remotes.d";
/// Bigger remotes.d files are refused rather than read.
const MAX_REMOTE_FILE: u64 = 1 << 20;

/// Where a remote is defined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemoteSource {
    /// A group of the repository's `config`.
    RepoConfig,
    /// A `remotes.d/*.conf` file.
    File(PathBuf),
}

/// One defined remote and the keyfile holding its group.
#[derive(Clone, Debug)]
pub struct RemoteEntry {
    pub name: String,
    pub source: RemoteSource,
    config: RepoConfig,
}

impl RemoteEntry {
    /// The remote this entry defines.
    pub fn remote(&self) -> Result<Remote> {
        Remote::from_config(&self.config, &self.name)
    }
}

/// The remotes directory a repository reads, if any: for the repository
/// of a sysroot given by path, that sysroot's `etc/ostree/remotes.d` when
/// the sysroot is a deployment's root (its `ostree` is a symlink to the
/// physical sysroot's), none for a physical sysroot, as ostree decides.
pub fn remotes_dir(repo: &Repo) -> Option<PathBuf> {
    if let Some(sr) = repo.sysroot() {
        let physical = std::fs::symlink_metadata(sr.join("ostree"))
            .map(|m| !m.file_type().is_symlink())
            .unwrap_or(true);
        return (!physical).then(|| sr.join("etc/ostree/remotes.d"));
    }
    repo.is_system().then(|| PathBuf::from(SYSTEM_REMOTES_DIR))
}

fn remote_names(config: &RepoConfig) -> Vec<String> {
    config
        .sections()
        .filter_map(|s| s.strip_prefix("remote \"")?.strip_suffix('"'))
        .map(str::to_string)
        .collect()
}

fn push_entries(
    out: &mut Vec<RemoteEntry>,
    config: &RepoConfig,
    source: RemoteSource,
) -> Result<()> {
    for name in remote_names(config) {
        if out.iter().any(|e| e.name == name) {
            return Err(TransportError::Config(format!(
                "Multiple specifications found for remote \"{name}\""
            )));
        }
        out.push(RemoteEntry {
            name,
            source: source.clone(),
            config: config.clone(),
        });
    }
    Ok(())
}

fn read_remotes_dir(dir: &Path, out: &mut Vec<RemoteEntry>) -> Result<()> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(TransportError::io(format!("reading {}", dir.display()), e)),
    };
    let mut files = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| TransportError::io(format!("reading {}", dir.display()), e))?;
        let path = ent.path();
        let is_conf = path.extension().is_some_and(|x| x == "conf");
        // Like ostree: regular files (after following symlinks) only.
        if is_conf && std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            files.push(path);
        }
    }
    files.sort();
    for path in files {
        let ctx = || format!("reading {}", path.display());
        let f = std::fs::File::open(&path).map_err(|e| TransportError::io(ctx(), e))?;
        let mut text = String::new();
        use std::io::Read;
        f.take(MAX_REMOTE_FILE + 1)
            .read_to_string(&mut text)
            .map_err(|e| TransportError::io(ctx(), e))?;
        if text.len() as u64 > MAX_REMOTE_FILE {
            return Err(TransportError::Config(format!(
                "{} is too large",
                path.display()
            )));
        }
        let config = RepoConfig::parse(&text)
            .map_err(|e| TransportError::Config(format!("{}: {e}", path.display())))?;
        push_entries(out, &config, RemoteSource::File(path))?;
    }
    Ok(())
}

/// Every remote the repository knows, from its config and its remotes dir.
pub fn remote_entries(repo: &Repo) -> Result<Vec<RemoteEntry>> {
    let mut out = Vec::new();
    push_entries(&mut out, repo.config(), RemoteSource::RepoConfig)?;
    if let Some(dir) = remotes_dir(repo) {
        read_remotes_dir(&dir, &mut out)?;
    }
    // As ostree, the remotes of the parent repositories (`core.parent`)
    // are visible too, unless shadowed; a bounded chain (no loops).
    let mut parent = repo.config().get("core", "parent").map(PathBuf::from);
    for _ in 0..8 {
        let Some(p) = parent.take() else { break };
        let Ok(prepo) = Repo::open(&p) else { break };
        let mut more = Vec::new();
        push_entries(&mut more, prepo.config(), RemoteSource::RepoConfig)?;
        for e in more {
            if !out.iter().any(|o| o.name == e.name) {
                out.push(e);
            }
        }
        parent = prepo.config().get("core", "parent").map(PathBuf::from);
    }
    Ok(out)
}

/// A configured remote, as a pull needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Remote {
    pub name: String,
    pub url: String,
    /// Where objects are fetched from, when different from `url`. Either
    /// may be `mirrorlist=URL` (see [`crate::mirrors`]).
    pub content_url: Option<String>,
    /// `metalink`: a metalink document naming where the summary is; the
    /// remote then needs no `url` (see [`crate::metalink`]).
    pub metalink: Option<String>,
    /// `branches`: the refs a plain `pull NAME` fetches.
    pub branches: Vec<String>,
    pub gpg_verify: bool,
    pub gpg_verify_summary: bool,
    /// `sign-verify` as configured: a boolean or a list of types.
    pub sign_verify_mode: crate::signapi::SignVerify,
    /// `sign-verify-summary` as configured.
    pub sign_verify_summary_mode: crate::signapi::SignVerify,
    /// `verification-dummy-key` / `-file` (ostree's test-only type).
    pub dummy_key: Option<String>,
    pub dummy_file: Option<String>,
    /// `gpgkeypath`: extra keyring files or directories (`;` or `,`).
    pub gpg_key_path: Vec<String>,
    /// `verification-ed25519-key`: a base64 public key.
    pub ed25519_key: Option<String>,
    /// `verification-ed25519-file`: a file of base64 public keys.
    pub ed25519_file: Option<String>,
    /// `tls-permissive`: accept any certificate.
    pub tls_permissive: bool,
    /// `tls-ca-path`: a PEM bundle of extra trusted CAs.
    pub tls_ca_path: Option<String>,
    /// `proxy`.
    pub proxy: Option<String>,
    /// `http2` (default true): HTTP/2 when the server offers it (ALPN).
    pub http2: bool,
    /// `collection-id`: the collection the remote's refs belong to.
    pub collection_id: Option<String>,
    /// `custom-backend`: the remote is served by another program
    /// (ostree-rs-ext containers); oxtree's pull refuses it.
    pub custom_backend: Option<String>,
    /// `unconfigured-state`: why this remote cannot be pulled yet (a
    /// subscription to set up first); pulls fail with this text.
    pub unconfigured_state: Option<String>,
}

/// `gpgkeypath`, as ostree splits it: by `;` or by `,` (not both), a
/// trailing separator ignored and an empty entry kept (it names no file,
/// and using it fails).
fn split_key_path(remote: &str, v: &str) -> Result<Vec<String>> {
    let sep = match (v.contains(';'), v.contains(',')) {
        (true, true) => {
            return Err(TransportError::Config(format!(
                "remote '{remote}': gpgkeypath: key value list contains more than one separator"
            )))
        }
        (true, false) => ';',
        (false, true) => ',',
        (false, false) => return Ok(vec![v.trim().to_string()]),
    };
    let mut parts: Vec<String> = v.split(sep).map(|s| s.trim().to_string()).collect();
    if parts.last().is_some_and(|l| l.is_empty()) {
        parts.pop();
    }
    Ok(parts)
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

/// The collection ID of each remote that has one (remote name → ID), for
/// `Repo::list_collection_refs`.
pub fn remote_collection_ids(repo: &Repo) -> Result<std::collections::HashMap<String, String>> {
    let mut out = std::collections::HashMap::new();
    for e in remote_entries(repo)? {
        if let Ok(Remote {
            collection_id: Some(id),
            ..
        }) = e.remote()
        {
            out.insert(e.name, id);
        }
    }
    Ok(out)
}

/// Every collection ref of `repo` (only `match_id`'s when given), with
/// remotes' refs under their configured collection IDs.
pub fn collection_refs(
    repo: &Repo,
    match_id: Option<&str>,
) -> Result<
    Vec<(
        oxtree_repo::collections::CollectionRef,
        oxtree_object::Checksum,
    )>,
> {
    let ids = remote_collection_ids(repo)?;
    Ok(repo.list_collection_refs(match_id, &|r: &str| ids.get(r).cloned())?)
}

use crate::signapi::SignVerify;

/// Names of the repository's remotes, sorted.
pub fn list_remotes(repo: &Repo) -> Result<Vec<String>> {
    let mut v: Vec<String> = remote_entries(repo)?.into_iter().map(|e| e.name).collect();
    v.sort();
    Ok(v)
}

fn bool_opt(config: &RepoConfig, sec: &str, key: &str, default: bool) -> Result<bool> {
    Ok(config.get_bool(sec, key, default)?)
}

impl Remote {
    pub fn from_config(config: &RepoConfig, name: &str) -> Result<Remote> {
        let sec = section(name);
        let custom_backend = config.get(&sec, "custom-backend").map(str::to_string);
        let metalink = config.get(&sec, "metalink").map(str::to_string);
        // A remote of a custom backend or with a metalink may have no URL
        // (ostree's `remote add --custom-backend=NAME NAME`, and
        // `remote add NAME metalink=URL`).
        let url = match config.get(&sec, "url") {
            Some(u) => u.to_string(),
            None if custom_backend.is_some() || metalink.is_some() => String::new(),
            None => return Err(TransportError::NoSuchRemote(name.to_string())),
        };
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
        let sign_verify = SignVerify::parse(config.get(&sec, "sign-verify"));
        let sign_verify_summary = SignVerify::parse(config.get(&sec, "sign-verify-summary"));
        Ok(Remote {
            name: name.to_string(),
            custom_backend,
            unconfigured_state: config.get(&sec, "unconfigured-state").map(str::to_string),
            url,
            content_url: config.get(&sec, "contenturl").map(str::to_string),
            metalink,
            branches,
            gpg_verify: bool_opt(config, &sec, "gpg-verify", true)?,
            gpg_verify_summary: bool_opt(config, &sec, "gpg-verify-summary", false)?,
            sign_verify_mode: sign_verify,
            sign_verify_summary_mode: sign_verify_summary,
            dummy_key: config
                .get(&sec, "verification-dummy-key")
                .map(str::to_string),
            dummy_file: config
                .get(&sec, "verification-dummy-file")
                .map(str::to_string),
            gpg_key_path: config
                .get(&sec, "gpgkeypath")
                .map(|p| split_key_path(name, p))
                .transpose()?
                .unwrap_or_default(),
            ed25519_key: config
                .get(&sec, "verification-ed25519-key")
                .map(str::to_string),
            ed25519_file: config
                .get(&sec, "verification-ed25519-file")
                .map(str::to_string),
            tls_permissive: bool_opt(config, &sec, "tls-permissive", false)?,
            tls_ca_path: config.get(&sec, "tls-ca-path").map(str::to_string),
            proxy: config.get(&sec, "proxy").map(str::to_string),
            http2: bool_opt(config, &sec, "http2", true)?,
            collection_id: config
                .get(&sec, "collection-id")
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        })
    }

    /// `base` with this remote's TLS, proxy and HTTP version settings.
    pub fn fetch_options(&self, base: FetchOptions) -> Result<FetchOptions> {
        let tls_ca_pem = match &self.tls_ca_path {
            Some(p) => Some(
                std::fs::read(p)
                    .map_err(|e| TransportError::io(format!("reading tls-ca-path {p}"), e))?,
            ),
            None => base.tls_ca_pem,
        };
        Ok(FetchOptions {
            tls_permissive: self.tls_permissive || base.tls_permissive,
            tls_ca_pem,
            proxy: self.proxy.clone().or(base.proxy),
            http2: self.http2 && base.http2,
            ..base
        })
    }

    pub fn open(repo: &Repo, name: &str) -> Result<Remote> {
        match remote_entries(repo)?.into_iter().find(|e| e.name == name) {
            Some(e) => e.remote(),
            None => Err(TransportError::NoSuchRemote(name.to_string())),
        }
    }

    /// The URL, or ostree's error for a remote without one.
    pub fn require_url(&self) -> Result<&str> {
        if self.url.is_empty() {
            return Err(TransportError::Config(format!(
                "No \"url\" option in remote \"{}\"",
                self.name
            )));
        }
        Ok(&self.url)
    }

    /// Whether commits must carry signapi (ed25519, dummy) signatures: the
    /// configured `sign-verify`, kept once as its mode.
    pub fn sign_verify(&self) -> bool {
        self.sign_verify_mode.enabled()
    }

    /// Whether the summary must (`sign-verify-summary`).
    pub fn sign_verify_summary(&self) -> bool {
        self.sign_verify_summary_mode.enabled()
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
    let custom = options.iter().any(|(k, _)| k == "custom-backend");
    if url.is_empty() && !custom {
        return Err(TransportError::Config("empty URL".into()));
    }
    if list_remotes(repo)?.iter().any(|r| r == name) {
        if if_not_exists {
            return Ok(false);
        }
        return Err(TransportError::RemoteExists(name.to_string()));
    }
    let to_dir = match remotes_dir(repo) {
        Some(dir)
            if repo
                .config()
                .get_bool("core", "add-remotes-config-dir", true)? =>
        {
            Some(dir)
        }
        _ => None,
    };
    let mut cfg = match to_dir {
        Some(_) => RepoConfig::new(),
        None => repo.config().clone(),
    };
    let sec = section(name);
    // As ostree: a URL `metalink=URL` is stored as the `metalink` option.
    match url.strip_prefix("metalink=") {
        Some(ml) => cfg.set(&sec, "metalink", ml),
        None if !url.is_empty() => cfg.set(&sec, "url", url),
        None => {}
    }
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
    match to_dir {
        Some(dir) => {
            let text = cfg.to_checked_text()?;
            std::fs::create_dir_all(&dir)
                .map_err(|e| TransportError::io(format!("creating {}", dir.display()), e))?;
            let d = oxtree_repo::fsutil::open_dir(&dir)
                .map_err(|e| TransportError::io(format!("opening {}", dir.display()), e))?;
            oxtree_repo::fsutil::write_atomic_at(
                &d,
                &format!("{name}.conf"),
                text.as_bytes(),
                true,
            )
            .map_err(|e| TransportError::io(format!("writing {}/{name}.conf", dir.display()), e))?;
        }
        None => repo.write_config(cfg)?,
    }
    Ok(true)
}

/// Delete a remote and its refs dir. Returns false when it does not exist
/// and `if_exists` is set.
pub fn delete_remote(repo: &mut Repo, name: &str, if_exists: bool) -> Result<bool> {
    validate_remote_name(name)?;
    let Some(entry) = remote_entries(repo)?.into_iter().find(|e| e.name == name) else {
        if if_exists {
            return Ok(false);
        }
        return Err(TransportError::NoSuchRemote(name.to_string()));
    };
    if let RemoteSource::File(path) = &entry.source {
        std::fs::remove_file(path)
            .map_err(|e| TransportError::io(format!("removing {}", path.display()), e))?;
        return finish_delete(repo, name);
    }
    let mut cfg = repo.config().clone();
    cfg.remove_section(&section(name));
    repo.write_config(cfg)?;
    finish_delete(repo, name)
}

/// What goes with a deleted remote wherever it was defined.
fn finish_delete(repo: &mut Repo, name: &str) -> Result<bool> {
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
            "[core]\nrepo_version=1\n\n[remote \"a\"]\nurl=http://x/\nbranches=main;b/c;\ngpg-verify=false\nhttp2=false\nproxy=http://p:3128\n\n[remote \"b\"]\nurl=http://y\n",
        )
        .unwrap();
        assert_eq!(remote_names(&c), vec!["a", "b"]);
        let a = Remote::from_config(&c, "a").unwrap();
        assert_eq!(a.branches, vec!["main", "b/c"]);
        assert!(!a.gpg_verify);
        // The remote's settings reach the HTTP client's options.
        let f = a.fetch_options(FetchOptions::default()).unwrap();
        assert!(!f.http2);
        assert_eq!(f.proxy.as_deref(), Some("http://p:3128"));
        let b = Remote::from_config(&c, "b").unwrap();
        assert!(b.gpg_verify && !b.gpg_verify_summary && !b.sign_verify());
        assert!(b.http2 && !b.tls_permissive && b.proxy.is_none());
        assert!(matches!(
            Remote::from_config(&c, "zz"),
            Err(TransportError::NoSuchRemote(_))
        ));
        assert!(validate_remote_name("a/b").is_err());
    }
}

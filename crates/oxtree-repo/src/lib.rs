//! An ostree-compatible repository on disk: modes, loose objects, refs,
//! transactions, commit, checkout, traversal, fsck and prune.
//!
//! Every path below the repository is reached through directory handles;
//! names that come from objects are validated by `oxtree-object` first.

// The generator's bsdiff lives beside bspatch in the object crate.
pub use oxtree_object::static_delta::bsdiff;
pub mod aliases;
pub mod archive;
pub mod bindings;
pub mod checkout;
pub mod collections;
pub mod commit;
pub mod config;
pub mod diff;
pub mod error;
pub mod export;
pub mod fsck;
pub mod fsutil;
pub mod keyfile;
pub mod lock;
pub mod mode;
pub mod mtree;
pub mod objects;
pub mod prune;
pub mod pull_local;
pub mod refs;
pub mod sizes;
pub mod static_delta;
pub mod transaction;
pub mod traverse;
pub mod tree;
pub mod txstats;

pub use checkout::{CheckoutOptions, Overwrite};
pub use commit::{CommitModifier, CommitOptions};
pub use config::RepoConfig;
pub use error::{RepoError, Result};
pub use mode::RepoMode;
pub use mtree::MutableTree;
pub use objects::StoredFile;
pub use transaction::Transaction;
pub use tree::Node;

use error::IoContext;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Directories `ostree init` creates, in order.
pub const LAYOUT: &[&str] = &[
    "extensions",
    "objects",
    "refs",
    "refs/heads",
    "refs/mirrors",
    "refs/remotes",
    "state",
    "tmp",
    "tmp/cache",
];

/// How deep `core.parent` chains may go.
const MAX_PARENT_DEPTH: u32 = 8;

thread_local! {
    /// Parents being opened on this thread (guards against loops).
    static PARENT_DEPTH: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

#[derive(Debug)]
pub struct Repo {
    path: PathBuf,
    dir: OwnedFd,
    objects: OwnedFd,
    mode: RepoMode,
    config: RepoConfig,
    /// The sysroot this repository was opened through (`--sysroot`), if
    /// any: it decides where the repository's remotes.d is.
    sysroot: Option<PathBuf>,
    /// `core.parent`: a repository whose objects this one reads as its own
    /// (it stores only what the parent lacks), as ostree's parent repos.
    parent: Option<Box<Repo>>,
}

impl Repo {
    /// Record that this is the repository of the sysroot at `path`.
    pub fn set_sysroot(&mut self, path: &Path) {
        self.sysroot = Some(path.to_path_buf());
    }

    /// The sysroot this repository was opened through, if any.
    pub fn sysroot(&self) -> Option<&Path> {
        self.sysroot.as_deref()
    }

    /// Whether this is the system repository: the same directory as
    /// `/ostree/repo` (which is also what a booted host's
    /// `/sysroot/ostree/repo` is). ostree keeps such a repo's remotes in
    /// `/etc/ostree/remotes.d` and defaults `core.add-remotes-config-dir`
    /// to true for it only.
    pub fn is_system(&self) -> bool {
        let Ok(system) = rustix::fs::stat("/ostree/repo") else {
            return false;
        };
        match rustix::fs::fstat(&self.dir) {
            Ok(own) => own.st_dev == system.st_dev && own.st_ino == system.st_ino,
            Err(_) => false,
        }
    }

    /// Create a repository (like `ostree init`); an existing one of the same
    /// mode is opened unchanged, as ostree does.
    pub fn init(path: &Path, mode: RepoMode) -> Result<Repo> {
        std::fs::create_dir_all(path).ctx(|| format!("creating {}", path.display()))?;
        let dir = fsutil::open_dir(path).ctx(|| format!("opening {}", path.display()))?;
        match fsutil::read_at(&dir, "config") {
            Ok(_) => {
                let repo = Repo::open(path)?;
                if repo.mode != mode {
                    return Err(RepoError::Invalid(format!(
                        "{} is already a repository of mode {}",
                        path.display(),
                        repo.mode.config_name()
                    )));
                }
                return Ok(repo);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).ctx(|| "reading config"),
        }
        for d in LAYOUT {
            fsutil::ensure_dir_at(&dir, d, 0o755).ctx(|| format!("creating {d}"))?;
        }
        let mut config = RepoConfig::new();
        config.set("core", "repo_version", "1");
        config.set("core", "mode", mode.config_name());
        fsutil::write_atomic_at(&dir, "config", config.to_checked_text()?.as_bytes(), true)
            .ctx(|| "writing config")?;
        Repo::open(path)
    }

    pub fn open(path: &Path) -> Result<Repo> {
        let dir = fsutil::open_dir(path).map_err(|source| RepoError::OpenDir {
            path: path.display().to_string(),
            source,
        })?;
        let text = fsutil::read_at(&dir, "config").ctx(|| {
            format!(
                "{} is not an ostree repository: reading config",
                path.display()
            )
        })?;
        let text =
            String::from_utf8(text).map_err(|_| RepoError::Config("config is not UTF-8".into()))?;
        let config = RepoConfig::parse(&text)?;
        match config.get("core", "repo_version") {
            Some("1") => {}
            other => {
                return Err(RepoError::Config(format!(
                    "unsupported core.repo_version {other:?} (expected 1)"
                )))
            }
        }
        let mode = RepoMode::parse(config.get("core", "mode").unwrap_or("bare"))?;
        let objects = fsutil::open_dir_at(&dir, "objects").ctx(|| "opening objects/")?;
        // As ostree, a removed tmp/ comes back; a read-only repository
        // (a mounted image, another user's) is still readable without it.
        let _ = fsutil::ensure_dir_at(&dir, "tmp", 0o755);
        let parent = match config.get("core", "parent") {
            Some(p) if !p.is_empty() => {
                if PARENT_DEPTH.get() >= MAX_PARENT_DEPTH {
                    return Err(RepoError::Config(format!(
                        "core.parent: more than {MAX_PARENT_DEPTH} parent repositories (a loop?)"
                    )));
                }
                PARENT_DEPTH.set(PARENT_DEPTH.get() + 1);
                let r = Repo::open(Path::new(p));
                PARENT_DEPTH.set(PARENT_DEPTH.get() - 1);
                Some(Box::new(r.map_err(|e| {
                    RepoError::Config(format!("core.parent {p}: {e}"))
                })?))
            }
            _ => None,
        };
        Ok(Repo {
            sysroot: None,
            path: path.to_path_buf(),
            dir,
            objects,
            mode,
            config,
            parent,
        })
    }

    /// The `core.parent` repository, if any.
    pub fn parent(&self) -> Option<&Repo> {
        self.parent.as_deref()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn mode(&self) -> RepoMode {
        self.mode
    }

    pub fn config(&self) -> &RepoConfig {
        &self.config
    }

    pub fn dir(&self) -> BorrowedFd<'_> {
        self.dir.as_fd()
    }

    pub fn objects_dir(&self) -> BorrowedFd<'_> {
        self.objects.as_fd()
    }

    /// Replace the config file atomically.
    pub fn write_config(&mut self, config: RepoConfig) -> Result<()> {
        fsutil::write_atomic_at(
            &self.dir,
            "config",
            config.to_checked_text()?.as_bytes(),
            true,
        )
        .ctx(|| "writing config")?;
        self.config = config;
        Ok(())
    }

    /// `core.fsync` (default true): whether transactions sync before they
    /// make objects and refs visible.
    pub fn fsync_enabled(&self) -> Result<bool> {
        self.config.get_bool("core", "fsync", true)
    }

    pub fn lock_timeout(&self) -> u64 {
        self.config
            .get("core", "lock-timeout-secs")
            .and_then(|v| v.parse().ok())
            .unwrap_or(300)
    }

    pub fn lock(&self, kind: lock::LockKind) -> Result<lock::RepoLock> {
        lock::RepoLock::acquire(&self.dir, kind, self.lock_timeout())
    }
}

//! Transaction: the write side of the object store.
//!
//! Objects are written into a private staging directory under `tmp/`, named
//! by the checksum computed while they were written. `commit` syncs the
//! filesystem once (not per object), then renames every staged object into
//! `objects/`, then syncs again, so an object is only ever visible complete,
//! and refs (written after commit) only ever name complete trees.
//!
//! A writer holds an exclusive flock on its staging directory for its whole
//! life (taken before the directory gets its `staging-BOOTID-oxtree-` name). A
//! killed writer's lock goes with it, so the next transaction reclaims its
//! staging directory at once instead of letting it fill the disk. What the
//! dead writer had already verified is not lost: each staged object is
//! listed in the directory's `index` as it is staged, and the next
//! transaction checks every listed file, dirtree and dirmeta object again
//! and moves the good ones into `objects/` (commits are left out: a commit
//! must never be visible before its tree is). A killed pull therefore
//! resumes from what it had verified.
//!
//! The pieces: this file holds the transaction's life (`begin`, `commit`,
//! drop); `staging` its staging directory, the index of what it staged and
//! the salvage of a dead writer's; `space` the min-free-space budget and
//! early writeback; `meta`, `content` and `link` the ways objects are
//! written (metadata bytes, file content, hard links from another
//! repository); `filemeta` the owner, mode, xattrs and mtime each mode
//! gives an object file.

mod content;
mod filemeta;
mod link;
mod meta;
mod space;
mod staging;

use crate::error::{IoContext, RepoError, Result};
use crate::fsutil;
use crate::lock::{LockKind, RepoLock};
use crate::objects::loose_path;
use crate::Repo;
use filemeta::CreateDefaults;
use oxtree_object::{Checksum, ObjectType, Xattrs};
use rustix::fd::OwnedFd;
use rustix::fs::{self, AtFlags, Mode};
use staging::{
    boot_id, remove_stale_staging, staged_name, INIT_PREFIX, STAGING_MARK, STAGING_PREFIX,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64};
use std::sync::{Arc, Mutex, OnceLock};

pub(crate) use filemeta::{gid, uid};
pub use staging::remove_tree_at;

pub struct Transaction<'r> {
    repo: &'r Repo,
    staging: OwnedFd,
    staging_name: String,
    /// Every object to publish, with the number naming its temp file in
    /// staging (see `tmp_name`): a large pull stages tens of thousands.
    staged: Mutex<HashMap<(ObjectType, Checksum), u32>>,
    /// Files taken as the repository's objects because they are hardlinks
    /// of them (`--link-checkout-speedup`).
    pub(crate) devino_hits: AtomicU64,
    next_tmp: AtomicU32,
    sync: bool,
    done: bool,
    /// Bytes this transaction may still write before the filesystem would
    /// drop below `core.min-free-space-*` (ostree's rule, default 3%).
    budget: u64,
    used: AtomicU64,
    /// Learned from the first object file this transaction creates.
    defaults: OnceLock<CreateDefaults>,
    /// A background syncfs is running (see [`space::BACKGROUND_SYNC_BYTES`]).
    syncing: Arc<AtomicBool>,
    /// `index` in the staging directory: one line per staged object, for
    /// the next transaction should this one be killed (see the module
    /// docs). Made with the first staged object (a commit of a tree that
    /// holds the repository scans it before). Best effort: a failed write
    /// only loses that salvage.
    index: Mutex<Option<std::fs::File>>,
    _lock: RepoLock,
}

impl std::fmt::Debug for Transaction<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction")
            .field("repo", &self.repo.path())
            .field("staging_name", &self.staging_name)
            .field("sync", &self.sync)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

/// What `write_content` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Written {
    pub checksum: Checksum,
    /// False when the object was already present.
    pub new: bool,
}

impl Repo {
    /// Start a transaction; holds the shared repository lock until dropped.
    pub fn begin(&self) -> Result<Transaction<'_>> {
        let lock = self.lock(LockKind::Shared)?;
        let tmp = fsutil::open_dir_at(self.dir(), "tmp").ctx(|| "opening tmp/")?;
        remove_stale_staging(self, &tmp);
        // Made under another name, locked, then renamed: a directory named
        // staging-BOOTID-oxtree-* is always locked while its writer lives.
        let init_name = fsutil::temp_name(INIT_PREFIX);
        fs::mkdirat(&tmp, &init_name, Mode::from_raw_mode(0o755))
            .ctx(|| format!("creating tmp/{init_name}"))?;
        let staging_name = format!(
            "{STAGING_PREFIX}{}{STAGING_MARK}{}",
            boot_id(),
            &init_name[INIT_PREFIX.len()..]
        );
        let staging = (|| -> std::io::Result<OwnedFd> {
            let d = fsutil::open_dir_at(&tmp, &init_name)?;
            fs::flock(&d, fs::FlockOperation::NonBlockingLockExclusive)?;
            fs::renameat(&tmp, &init_name, &tmp, &staging_name)?;
            Ok(d)
        })();
        let staging = match staging {
            Ok(d) => d,
            Err(e) => {
                let _ = fs::unlinkat(&tmp, &init_name, AtFlags::REMOVEDIR);
                return Err(e).ctx(|| "setting up the staging directory");
            }
        };
        let budget = match self.free_space_budget() {
            Ok(b) => b,
            Err(e) => {
                let _ = fs::unlinkat(&tmp, &staging_name, AtFlags::REMOVEDIR);
                return Err(e);
            }
        };
        Ok(Transaction {
            repo: self,
            index: Mutex::new(None),
            staging,
            staging_name,
            staged: Mutex::new(HashMap::new()),
            devino_hits: AtomicU64::new(0),
            next_tmp: AtomicU32::new(0),
            sync: self.fsync_enabled()?,
            done: false,
            budget,
            used: AtomicU64::new(0),
            defaults: OnceLock::new(),
            syncing: Arc::new(AtomicBool::new(false)),
            _lock: lock,
        })
    }
}

/// Is `OSTREE_REPO_TEST_ERROR` (a comma-separated list) asking for `what`?
fn test_error(what: &str) -> bool {
    std::env::var("OSTREE_REPO_TEST_ERROR")
        .is_ok_and(|v| v.split([',', ' ', ':', ';']).any(|w| w == what))
}

impl<'r> Transaction<'r> {
    pub fn repo(&self) -> &'r Repo {
        self.repo
    }

    /// Override `core.fsync` for this transaction (`--fsync=false`).
    pub fn set_sync(&mut self, sync: bool) {
        self.sync = sync;
    }

    /// Whether the object is staged here or, with `disk`, in the repository.
    /// Callers that have just looked in the repository (a pull decides what
    /// to fetch that way) pass `disk: false`: each lookup of an absent
    /// object is a failing stat.
    fn is_present(&self, kind: ObjectType, csum: &Checksum, disk: bool) -> Result<bool> {
        if self.staged.lock().unwrap().contains_key(&(kind, *csum)) {
            return Ok(true);
        }
        Ok(disk && self.repo.has_object(kind, csum)?)
    }

    /// Make every staged object visible: one sync, the renames, one sync.
    pub fn commit(mut self) -> Result<usize> {
        if test_error("pre-commit") {
            // As a writer that dies here: the staging directory stays for
            // the next transaction to salvage and remove.
            self.done = true;
            return Err(RepoError::TestError("PRE_COMMIT"));
        }
        if self.sync {
            fs::syncfs(&self.staging).ctx(|| "syncing the filesystem")?;
        }
        let mut staged: Vec<_> = std::mem::take(&mut *self.staged.lock().unwrap())
            .into_iter()
            .collect();
        // Commits last: a writer killed during the renames must never
        // leave a commit visible whose trees or files are not.
        staged.sort_by_key(|((kind, _), _)| *kind == ObjectType::Commit);
        let mode = self.repo.mode();
        let objects = self.repo.objects_dir();
        let mut made = [false; 256];
        for ((kind, csum), tmp) in &staged {
            let name = loose_path(csum, *kind, mode);
            let sub = csum.0[0] as usize;
            if !made[sub] {
                fsutil::ensure_dir_at(objects, &name[..2], 0o755)
                    .ctx(|| "creating objects subdir")?;
                made[sub] = true;
            }
            fs::renameat(&self.staging, staged_name(*tmp), objects, &name)
                .ctx(|| format!("publishing object {name}"))?;
            if *kind == ObjectType::Commit {
                // A commit that is back makes its tombstone a lie.
                let t = loose_path(csum, ObjectType::TombstoneCommit, mode);
                match fs::unlinkat(objects, &t, AtFlags::empty()) {
                    Ok(()) | Err(rustix::io::Errno::NOENT) => {}
                    Err(e) => return Err(e).ctx(|| format!("removing {t}")),
                }
            }
        }
        if self.sync && !staged.is_empty() {
            fs::syncfs(objects).ctx(|| "syncing the filesystem")?;
        }
        self.cleanup();
        self.done = true;
        Ok(staged.len())
    }

    fn cleanup(&self) {
        if let Ok(tmp) = fsutil::open_dir_at(self.repo.dir(), "tmp") {
            let _ = remove_tree_at(&tmp, &self.staging_name);
        }
    }

    pub fn sync_enabled(&self) -> bool {
        self.sync
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.cleanup();
        }
    }
}

/// Empty xattrs, for callers that build headers by hand.
pub fn no_xattrs() -> Xattrs {
    Xattrs::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mode::RepoMode;
    use oxtree_object::FileHeader;

    /// A commit is published after everything else it staged: when a
    /// rename fails (here: a directory squats one file object's name),
    /// the commit object has not become visible. Staging order is a hash
    /// map's, so twenty transactions cover both orders many times over.
    #[test]
    fn commit_objects_are_published_last() {
        let tmp = tempfile::tempdir().unwrap();
        for trial in 0..20 {
            let repo = Repo::init(
                &tmp.path().join(format!("r{trial}")),
                RepoMode::BareUserOnly,
            )
            .unwrap();
            let tx = repo.begin().unwrap();
            let me = (
                rustix::process::geteuid().as_raw(),
                rustix::process::getegid().as_raw(),
            );
            let mut files = Vec::new();
            for i in 0..5 {
                let h = FileHeader::regular(me.0, me.1, 0o644, no_xattrs());
                let body = format!("{trial} {i}");
                let w = tx
                    .write_content(&h, body.len() as u64, body.as_bytes())
                    .unwrap();
                files.push(w.checksum);
            }
            let commit = tx
                .write_meta(ObjectType::Commit, format!("commit {trial}").as_bytes())
                .unwrap();
            let objects = repo.path().join("objects");
            let blocked = loose_path(&files[trial % 5], ObjectType::File, repo.mode());
            std::fs::create_dir_all(objects.join(&blocked).join("x")).unwrap();
            assert!(tx.commit().is_err(), "trial {trial}");
            let c = loose_path(&commit, ObjectType::Commit, repo.mode());
            assert!(!objects.join(c).exists(), "trial {trial}: commit published");
        }
    }
}

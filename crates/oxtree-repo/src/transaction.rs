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

use crate::error::{IoContext, RepoError, Result};
use crate::fsutil;
use crate::lock::{LockKind, RepoLock};
use crate::mode::RepoMode;
use crate::objects::loose_path;
use crate::Repo;
use flate2::{Compress, Compression, FlushCompress, Status};
use oxtree_object::file::{encode_bare_user_meta, ARCHIVE_ZLIB_LEVEL};
use oxtree_object::{
    ArchiveHeader, Checksum, Commit, DirMeta, DirTree, FileHeader, ObjectType, Xattrs,
};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{self, AtFlags, Mode, OFlags, Timespec, Timestamps};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// A directory still being set up (`init-oxtree-*`, not yet locked and
/// renamed) older than this is a dead writer's.
const STALE_STAGING_SECS: i64 = 24 * 3600;

/// Staging directories are `staging-BOOTID-oxtree-RANDOM`: ostree's
/// `staging-BOOTID-` names (so tools that look for a boot's staging
/// directories find ours), with `-oxtree-` to tell them from ostree's own,
/// which it locks differently. Older oxtree wrote `staging-oxtree-RANDOM`.
const STAGING_PREFIX: &str = "staging-";
const STAGING_MARK: &str = "-oxtree-";
const LEGACY_STAGING_PREFIX: &str = "staging-oxtree-";
/// The list of staged objects in a staging directory.
const INDEX_NAME: &str = "index";
/// Largest dead writer's index read (about 10 million objects).
const MAX_INDEX_BYTES: u64 = 1 << 30;
const INIT_PREFIX: &str = "init-oxtree-";

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
    /// A background syncfs is running (see [`BACKGROUND_SYNC_BYTES`]).
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

/// What a file created in staging gets without being asked: its owner
/// (the fs uid/gid, a setgid directory, squashing) and the umask. With
/// them known, `fchown`/`fchmod` are skipped when they would change
/// nothing: two of the ten or so syscalls a pulled object costs.
#[derive(Clone, Copy, Debug)]
struct CreateDefaults {
    uid: u32,
    gid: u32,
    umask: u32,
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

impl Repo {
    /// Bytes that may be written before the repository's filesystem drops
    /// below `core.min-free-space-size` (e.g. `500MB`) or, if unset,
    /// `core.min-free-space-percent` (default 3) of its size.
    pub fn free_space_budget(&self) -> Result<u64> {
        let st = fs::fstatvfs(self.dir()).ctx(|| "statvfs of the repository")?;
        let avail = st.f_bavail.saturating_mul(st.f_frsize);
        let total = st.f_blocks.saturating_mul(st.f_frsize);
        let reserve = match self.config().get("core", "min-free-space-size") {
            Some(v) => parse_size(v).ok_or_else(|| {
                RepoError::Config(format!("core.min-free-space-size: invalid size '{v}'"))
            })?,
            None => {
                let pct: u64 = match self.config().get("core", "min-free-space-percent") {
                    Some(v) => v.parse().ok().filter(|p| *p <= 99).ok_or_else(|| {
                        RepoError::Config(format!(
                            "core.min-free-space-percent: invalid value '{v}'"
                        ))
                    })?,
                    None => 3,
                };
                total / 100 * pct
            }
        };
        if avail <= reserve {
            return Err(RepoError::NoSpace(format!(
                "{} has {avail} bytes free, and min-free-space keeps {reserve} bytes free",
                self.path().display()
            )));
        }
        Ok(avail - reserve)
    }
}

/// `500MB`, `2GB`, `100KB` or plain bytes (ostree's min-free-space-size).
fn parse_size(v: &str) -> Option<u64> {
    let v = v.trim();
    let (num, mult) = [
        ("KB", 1u64 << 10),
        ("MB", 1 << 20),
        ("GB", 1 << 30),
        ("TB", 1 << 40),
    ]
    .iter()
    .find_map(|(suf, m)| v.strip_suffix(suf).map(|n| (n, *m)))
    .unwrap_or((v, 1));
    num.trim().parse::<u64>().ok()?.checked_mul(mult)
}

/// Is file object `csum` of bare-user repository `src` stored exactly as
/// a bare-user-only repository (`dst`) would store it: a regular file, owned
/// by 0:0, without xattrs, whose permission bits (on disk too) are valid
/// there? Then it can be hardlinked instead of copied, as ostree does.
fn bare_user_object_fits_bare_user_only(
    src: &Repo,
    dst: RepoMode,
    csum: &Checksum,
) -> Result<bool> {
    if (src.mode(), dst) != (RepoMode::BareUser, RepoMode::BareUserOnly) {
        return Ok(false);
    }
    let h = src.open_file(csum)?.header;
    if !h.is_regular() || h.uid != 0 || h.gid != 0 || !h.xattrs.is_empty() {
        return Ok(false);
    }
    if h.mode & 0o7777 & !0o775 != 0 {
        return Ok(false);
    }
    let name = loose_path(csum, ObjectType::File, src.mode());
    let st = fs::statat(src.objects_dir(), &name, AtFlags::SYMLINK_NOFOLLOW)
        .ctx(|| format!("stat of object {name}"))?;
    Ok(st.st_mode & 0o7777 == h.mode & 0o7777)
}

/// This boot's id: `OSTREE_BOOTID` (as ostree, for tests), else the
/// kernel's.
fn boot_id() -> String {
    let id = std::env::var("OSTREE_BOOTID")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok())
        .unwrap_or_default();
    let id = id.trim();
    // It becomes part of a file name.
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        "unknown".to_string()
    } else {
        id.to_string()
    }
}

fn is_our_staging(name: &str) -> bool {
    name.starts_with(LEGACY_STAGING_PREFIX)
        || (name.starts_with(STAGING_PREFIX) && name.contains(STAGING_MARK))
}

/// Is `OSTREE_REPO_TEST_ERROR` (a comma-separated list) asking for `what`?
fn test_error(what: &str) -> bool {
    std::env::var("OSTREE_REPO_TEST_ERROR")
        .is_ok_and(|v| v.split([',', ' ', ':', ';']).any(|w| w == what))
}

fn remove_stale_staging(repo: &Repo, tmp: &OwnedFd) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let Ok(entries) = fsutil::list_dir(tmp) else {
        return;
    };
    for (name, _) in entries {
        if is_our_staging(&name) {
            // Lockable means its writer is gone (killed, crashed): reclaim
            // it now, holding the lock so no one else works on it.
            let Ok(d) = fsutil::open_dir_at(tmp, &name) else {
                continue;
            };
            if fs::flock(&d, fs::FlockOperation::NonBlockingLockExclusive).is_ok() {
                salvage(repo, &d);
                let _ = remove_tree_at(tmp, &name);
            }
        } else if name.starts_with(INIT_PREFIX) {
            if let Ok(st) = fs::statat(tmp, &name, AtFlags::SYMLINK_NOFOLLOW) {
                if now - st.st_mtime > STALE_STAGING_SECS {
                    let _ = remove_tree_at(tmp, &name);
                }
            }
        }
    }
}

/// Move the verified objects a dead writer staged (listed in its index)
/// into `objects/`; see the module docs. Anything that does not check
/// out, or is already there, stays behind to be removed with the
/// directory.
fn salvage(repo: &Repo, dead: &OwnedFd) {
    let Ok(f) = fs::openat(
        dead,
        INDEX_NAME,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    ) else {
        return;
    };
    let mut text = String::new();
    if std::fs::File::from(f)
        .take(MAX_INDEX_BYTES)
        .read_to_string(&mut text)
        .is_err()
    {
        return;
    }
    let objects = repo.objects_dir();
    let mode = repo.mode();
    let mut moved = 0usize;
    for line in text.lines() {
        let mut w = line.split(' ');
        let (Some(n), Some(kind), Some(csum), None) = (w.next(), w.next(), w.next(), w.next())
        else {
            continue;
        };
        let (Ok(n), Some(kind), Ok(csum)) = (
            u32::from_str_radix(n, 16),
            ObjectType::from_extension(kind),
            Checksum::from_hex(csum),
        ) else {
            continue;
        };
        if !matches!(
            kind,
            ObjectType::File | ObjectType::DirTree | ObjectType::DirMeta
        ) {
            continue;
        }
        if repo.has_object(kind, &csum).unwrap_or(true) {
            continue;
        }
        let name = staged_name(n);
        let good = match kind {
            ObjectType::File => repo.verify_file_in(dead.as_fd(), &name, &csum).is_ok(),
            _ => fsutil::read_at(dead, &name).is_ok_and(|b| {
                Checksum::of(&b) == csum
                    && match kind {
                        ObjectType::DirTree => DirTree::decode(&b).is_ok(),
                        _ => DirMeta::decode(&b).is_ok(),
                    }
            }),
        };
        if !good {
            continue;
        }
        let dest = loose_path(&csum, kind, mode);
        if fsutil::ensure_dir_at(objects, &dest[..2], 0o755).is_err() {
            continue;
        }
        if fs::renameat(dead, name.as_str(), objects, dest.as_str()).is_ok() {
            moved += 1;
        }
    }
    if moved > 0 && repo.fsync_enabled().unwrap_or(true) {
        let _ = fs::syncfs(objects);
    }
}

/// Remove a directory tree below `dirfd` (never following symlinks).
pub fn remove_tree_at<Fd: AsFd>(dirfd: Fd, name: &str) -> std::io::Result<()> {
    let dirfd = dirfd.as_fd();
    match fs::unlinkat(dirfd, name, AtFlags::empty()) {
        Ok(()) => return Ok(()),
        Err(rustix::io::Errno::NOENT) => return Ok(()),
        Err(rustix::io::Errno::ISDIR) | Err(rustix::io::Errno::PERM) => {}
        Err(e) => return Err(e.into()),
    }
    let sub = fsutil::open_dir_at(dirfd, name)?;
    for (n, _) in fsutil::list_dir(&sub)? {
        remove_tree_at(&sub, &n)?;
    }
    drop(sub);
    fs::unlinkat(dirfd, name, AtFlags::REMOVEDIR)?;
    Ok(())
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

    /// The objects staged so far (new to the repository), with the bytes
    /// each takes in staging.
    pub(crate) fn staged_objects(&self) -> Vec<(ObjectType, u64)> {
        let staged = self.staged.lock().unwrap();
        staged
            .iter()
            .map(|((kind, _), tmp)| {
                let size = fs::statat(&self.staging, staged_name(*tmp), AtFlags::SYMLINK_NOFOLLOW)
                    .map(|st| st.st_size as u64)
                    .unwrap_or(0);
                (*kind, size)
            })
            .collect()
    }

    /// Where object `csum` is to be read: its temp name in staging when
    /// staged here, else its loose path in the repository.
    pub(crate) fn object_location(
        &self,
        kind: ObjectType,
        csum: &Checksum,
    ) -> (BorrowedFd<'_>, String) {
        match self.staged.lock().unwrap().get(&(kind, *csum)) {
            Some(tmp) => (self.staging.as_fd(), staged_name(*tmp)),
            None => (
                self.repo.objects_dir(),
                loose_path(csum, kind, self.repo.mode()),
            ),
        }
    }

    /// A new temp file name in staging, and the number it is made of. The
    /// staging directory is this transaction's own, so a counter is unique.
    fn tmp_name(&self) -> (u32, String) {
        let n = self.next_tmp.fetch_add(1, Ordering::Relaxed);
        (n, staged_name(n))
    }

    /// Record a finished temp file in staging as object `csum`; it keeps
    /// its temp name until `commit` renames it into `objects/` (one rename).
    /// With `disk`, an object already in the repository is dropped.
    fn stage(&self, tmp: u32, kind: ObjectType, csum: Checksum, disk: bool) -> Result<bool> {
        let mut staged = self.staged.lock().unwrap();
        if staged.contains_key(&(kind, csum)) || (disk && self.repo.has_object(kind, &csum)?) {
            drop(staged);
            let _ = fs::unlinkat(&self.staging, staged_name(tmp), AtFlags::empty());
            return Ok(false);
        }
        staged.insert((kind, csum), tmp);
        drop(staged);
        let mut index = self.index.lock().unwrap();
        if index.is_none() {
            *index = fs::openat(
                &self.staging,
                INDEX_NAME,
                OFlags::WRONLY | OFlags::CREATE | OFlags::APPEND | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
            .ok()
            .map(std::fs::File::from);
        }
        if let Some(f) = index.as_mut() {
            let line = format!("{tmp:x} {} {csum}\n", kind.as_str());
            let _ = f.write_all(line.as_bytes());
        }
        Ok(true)
    }

    /// An unnamed temp file in the staging directory, gone once closed:
    /// room for data too large to hold in memory while writing objects.
    pub(crate) fn temp_file(&self) -> std::io::Result<std::fs::File> {
        let flags = OFlags::RDWR | OFlags::CLOEXEC;
        let mode = Mode::from_raw_mode(0o600);
        if let Ok(fd) = fs::openat(&self.staging, ".", flags | OFlags::TMPFILE, mode) {
            return Ok(fd.into());
        }
        // No O_TMPFILE on this filesystem: a named file, unlinked at once.
        let name = fsutil::temp_name("spill-");
        let fd = fs::openat(
            &self.staging,
            &name,
            flags | OFlags::CREATE | OFlags::EXCL,
            mode,
        )?;
        fs::unlinkat(&self.staging, &name, AtFlags::empty())?;
        Ok(fd.into())
    }

    /// Write a metadata object from its bytes; returns its checksum.
    pub fn write_meta(&self, kind: ObjectType, bytes: &[u8]) -> Result<Checksum> {
        self.write_meta_at(kind, bytes, true)
    }

    fn write_meta_at(&self, kind: ObjectType, bytes: &[u8], disk: bool) -> Result<Checksum> {
        let csum = Checksum::of(bytes);
        if self.is_present(kind, &csum, disk)? {
            return Ok(csum);
        }
        self.charge(bytes.len() as u64)?;
        let (id, tmp) = self.tmp_name();
        let fd = self.create_tmp(&tmp, 0o644)?;
        let mut f = std::fs::File::from(fd);
        f.write_all(bytes).ctx(|| "writing metadata object")?;
        drop(f);
        self.stage(id, kind, csum, false)?;
        Ok(csum)
    }

    /// Store the `.filez` bytes of file object `csum` as they are, without
    /// checking that they hash to `csum`: only for archive repositories,
    /// and only for a caller told to trust its source (`pull --mirror
    /// --http-trusted`, as in ostree). fsck finds such an object if it
    /// lies.
    pub fn write_archive_content_unverified(
        &self,
        csum: &Checksum,
        mut content: impl std::io::Read,
        limit: u64,
    ) -> Result<u64> {
        if self.repo().mode() != crate::RepoMode::Archive {
            return Err(RepoError::Invalid(
                "unverified content can only be stored in an archive repository".into(),
            ));
        }
        if self.is_present(ObjectType::File, csum, false)? {
            return Ok(0);
        }
        let (id, tmp) = self.tmp_name();
        let fd = self.create_tmp(&tmp, 0o644)?;
        let mut f = std::fs::File::from(fd);
        let n = std::io::copy(&mut (&mut content).take(limit.saturating_add(1)), &mut f)
            .ctx(|| "writing a file object")?;
        if n > limit {
            return Err(RepoError::Invalid(format!(
                "file object {csum} is larger than {limit} bytes"
            )));
        }
        self.charge(n)?;
        drop(f);
        self.stage(id, ObjectType::File, *csum, false)?;
        Ok(n)
    }

    /// Write a metadata object whose checksum is known (a pull or import):
    /// refused if the bytes do not match.
    pub fn write_meta_trusted_name(
        &self,
        kind: ObjectType,
        expected: &Checksum,
        bytes: &[u8],
    ) -> Result<()> {
        self.write_meta_expect(kind, expected, bytes, true)
    }

    /// Like `write_meta_trusted_name`, for an object the caller has just
    /// found absent from the repository (a pull): only this transaction's
    /// staged objects are checked, not the disk again.
    pub fn write_meta_fetched(
        &self,
        kind: ObjectType,
        expected: &Checksum,
        bytes: &[u8],
    ) -> Result<()> {
        self.write_meta_expect(kind, expected, bytes, false)
    }

    fn write_meta_expect(
        &self,
        kind: ObjectType,
        expected: &Checksum,
        bytes: &[u8],
        disk: bool,
    ) -> Result<()> {
        let actual = Checksum::of(bytes);
        if actual != *expected {
            return Err(RepoError::BadObject {
                checksum: *expected,
                kind,
                reason: crate::fsck::checksum_mismatch(kind, expected, &actual),
            });
        }
        self.write_meta_at(kind, bytes, disk)?;
        Ok(())
    }

    pub fn write_dirtree(&self, t: &DirTree) -> Result<Checksum> {
        self.write_meta(ObjectType::DirTree, &t.encode())
    }
    pub fn write_dirmeta(&self, m: &DirMeta) -> Result<Checksum> {
        self.write_meta(ObjectType::DirMeta, &m.encode())
    }
    pub fn write_commit(&self, c: &Commit) -> Result<Checksum> {
        self.write_meta(ObjectType::Commit, &c.encode())
    }

    /// Account for `n` more bytes written; fails before the budget is exceeded.
    fn charge(&self, n: u64) -> Result<()> {
        let before = self.used.fetch_add(n, Ordering::Relaxed);
        let used = before + n;
        if used > self.budget {
            return Err(RepoError::NoSpace(format!(
                "writing {used} bytes would exceed the {} bytes allowed by min-free-space",
                self.budget
            )));
        }
        if self.sync && before / BACKGROUND_SYNC_BYTES != used / BACKGROUND_SYNC_BYTES {
            self.background_sync();
        }
        Ok(())
    }

    /// Start a syncfs on another thread unless one is running: the disk
    /// writes back while the transaction goes on, and the syncfs in
    /// `commit` (which alone makes the objects durable) finds little left.
    fn background_sync(&self) {
        if self.syncing.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(fd) = self.staging.try_clone() else {
            self.syncing.store(false, Ordering::Release);
            return;
        };
        let busy = Arc::clone(&self.syncing);
        let spawned = std::thread::Builder::new()
            .name("oxtree-writeback".into())
            .spawn(move || {
                let _ = fs::syncfs(&fd);
                busy.store(false, Ordering::Release);
            });
        if spawned.is_err() {
            self.syncing.store(false, Ordering::Release);
        }
    }

    fn refund(&self, n: u64) {
        self.used.fetch_sub(n, Ordering::Relaxed);
    }

    fn create_tmp(&self, name: &str, mode: u32) -> Result<OwnedFd> {
        fs::openat(
            &self.staging,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode),
        )
        .ctx(|| "creating a temporary object file")
    }

    /// `commit --consume` in a bare or bare-user-only repository: the
    /// regular file `name` in `dir`, whose metadata is `header`, becomes the
    /// object itself (hashed, given the object's mode and mtime, and moved
    /// into staging) instead of being copied, as ostree "adopts" it. None
    /// when it cannot be (another filesystem): the caller copies instead.
    pub fn adopt_file(
        &self,
        dir: BorrowedFd<'_>,
        name: &str,
        header: &FileHeader,
    ) -> Result<Option<Written>> {
        if !matches!(self.repo.mode(), RepoMode::Bare | RepoMode::BareUserOnly)
            || !header.is_regular()
        {
            return Ok(None);
        }
        header.validate()?;
        let fd = fs::openat(
            dir,
            name,
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
        )
        .ctx(|| format!("opening {name}"))?;
        let mut hasher = header.hasher();
        let mut f = std::fs::File::from(fd);
        std::io::copy(&mut f, &mut hasher).ctx(|| format!("reading {name}"))?;
        let csum = hasher.finish();
        if self.is_present(ObjectType::File, &csum, true)? {
            return Ok(Some(Written {
                checksum: csum,
                new: false,
            }));
        }
        let (id, tmp) = self.tmp_name();
        match fs::renameat(dir, name, &self.staging, &tmp) {
            Ok(()) => {}
            Err(rustix::io::Errno::XDEV) => return Ok(None),
            Err(e) => return Err(e).ctx(|| format!("adopting {name}")),
        }
        self.apply_file_meta(&f, header, true)?;
        let new = self.stage(id, ObjectType::File, csum, true)?;
        Ok(Some(Written {
            checksum: csum,
            new,
        }))
    }

    /// Store a file object: hash and write the content in one pass, in the
    /// form this repo's mode uses. `size` must be the content's length.
    pub fn write_content(
        &self,
        header: &FileHeader,
        size: u64,
        content: impl Read,
    ) -> Result<Written> {
        self.write_content_at(header, size, content, true, None)
    }

    /// Store a file object under the name `trusted` without checking that
    /// the content hashes to it: for a source the caller trusts, as
    /// ostree's pull-local trusts a local repository (`--untrusted`
    /// checks). fsck finds an object that lied.
    pub fn write_content_trusted(
        &self,
        trusted: &Checksum,
        header: &FileHeader,
        size: u64,
        content: impl Read,
    ) -> Result<Written> {
        if self.is_present(ObjectType::File, trusted, true)? {
            return Ok(Written {
                checksum: *trusted,
                new: false,
            });
        }
        self.write_content_at(header, size, content, true, Some(*trusted))
    }

    fn write_content_at(
        &self,
        header: &FileHeader,
        size: u64,
        mut content: impl Read,
        disk: bool,
        trusted: Option<Checksum>,
    ) -> Result<Written> {
        header.validate()?;
        let mode = self.repo.mode();
        let mut hasher = header.hasher();
        let (id, tmp) = self.tmp_name();

        if header.is_symlink() && mode != RepoMode::BareUser && mode != RepoMode::Archive {
            let csum = trusted.unwrap_or_else(|| hasher.finish());
            if self.is_present(ObjectType::File, &csum, disk)? {
                return Ok(Written {
                    checksum: csum,
                    new: false,
                });
            }
            fs::symlinkat(header.symlink_target.as_str(), &self.staging, &tmp)
                .ctx(|| "creating a symlink object")?;
            if mode == RepoMode::Bare {
                if self.needs_chown(header) {
                    fs::chownat(
                        &self.staging,
                        &tmp,
                        Some(uid(header.uid)),
                        Some(gid(header.gid)),
                        AtFlags::SYMLINK_NOFOLLOW,
                    )
                    .ctx(|| "setting the owner of a symlink object")?;
                }
                fsutil::set_link_xattrs(&fsutil::proc_path(&self.staging, &tmp), &header.xattrs)
                    .ctx(|| "setting xattrs of a symlink object")?;
            }
            let new = self.stage(id, ObjectType::File, csum, false)?;
            return Ok(Written {
                checksum: csum,
                new,
            });
        }

        let perm = self.object_perm(header);
        let defaults = self.defaults.get().copied();
        // Created with its final permissions when the umask allows, so no
        // fchmod follows; the first file is created 0777 to learn the umask.
        let (create_mode, exact) = match (perm, defaults) {
            (None, _) => (0o644, true),
            (Some(p), Some(d)) if p & !0o777 == 0 && p & d.umask == 0 => (p, true),
            (Some(_), Some(_)) => (0o644, false),
            (Some(_), None) => (0o777, false),
        };
        let fd = self.create_tmp(&tmp, create_mode)?;
        if perm.is_some() && defaults.is_none() {
            let st = fs::fstat(&fd).ctx(|| "stat of a new object file")?;
            let _ = self.defaults.set(CreateDefaults {
                uid: st.st_uid,
                gid: st.st_gid,
                umask: 0o777 & !st.st_mode,
            });
        }
        let mut f = std::fs::File::from(fd);
        let result = (|| -> Result<Checksum> {
            let mut buf = vec![0u8; 64 << 10];
            let mut total = 0u64;
            if mode == RepoMode::Archive {
                f.write_all(
                    &ArchiveHeader {
                        size,
                        file: header.clone(),
                    }
                    .encode(),
                )
                .ctx(|| "writing archive header")?;
                // A symlink's object is its header alone, as ostree writes
                // it (an empty regular file still gets an empty stream).
                let mut out = vec![0u8; 64 << 10];
                with_deflate(|z| -> Result<()> {
                    if header.is_symlink() {
                        return Ok(());
                    }
                    loop {
                        let n = read_some(&mut content, &mut buf)?;
                        if n == 0 {
                            break;
                        }
                        self.charge(n as u64)?;
                        hasher.update(&buf[..n]);
                        total += n as u64;
                        let mut input = &buf[..n];
                        while !input.is_empty() {
                            let (used, made) =
                                deflate_step(z, input, &mut out, FlushCompress::None)?;
                            f.write_all(&out[..made])
                                .ctx(|| "writing compressed object")?;
                            input = &input[used..];
                        }
                    }
                    loop {
                        let before = z.total_out();
                        let status = z
                            .compress(&[], &mut out, FlushCompress::Finish)
                            .map_err(|e| RepoError::Invalid(format!("compressing: {e}")))?;
                        let made = (z.total_out() - before) as usize;
                        f.write_all(&out[..made])
                            .ctx(|| "writing compressed object")?;
                        if status == Status::StreamEnd {
                            return Ok(());
                        }
                    }
                })?;
            } else if header.is_symlink() {
                // bare-user: a symlink is a regular file holding its target
                // and a trailing NUL, as libostree writes it.
                let mut t = header.symlink_target.as_bytes().to_vec();
                t.push(0);
                f.write_all(&t).ctx(|| "writing bare-user symlink object")?;
            } else {
                loop {
                    let n = read_some(&mut content, &mut buf)?;
                    if n == 0 {
                        break;
                    }
                    self.charge(n as u64)?;
                    hasher.update(&buf[..n]);
                    f.write_all(&buf[..n]).ctx(|| "writing object")?;
                    total += n as u64;
                }
            }
            if total != size {
                return Err(RepoError::Invalid(format!(
                    "file changed while it was read: {total} bytes instead of {size}"
                )));
            }
            self.apply_file_meta(&f, header, !exact)?;
            if self.sync && total >= EARLY_WRITEBACK_BYTES {
                start_writeback(&f);
            }
            Ok(hasher.finish())
        })();
        match result {
            Ok(csum) => {
                let csum = trusted.unwrap_or(csum);
                drop(f);
                let new = self.stage(id, ObjectType::File, csum, disk)?;
                if !new {
                    self.refund(size);
                }
                Ok(Written {
                    checksum: csum,
                    new,
                })
            }
            Err(e) => {
                let _ = fs::unlinkat(&self.staging, &tmp, AtFlags::empty());
                Err(e)
            }
        }
    }

    /// Stage object `csum` (a file, dirtree, dirmeta or commit) as a hard
    /// link to `src`'s copy, as ostree's pull-local does on one filesystem
    /// (file objects only between repositories of one mode): no bytes
    /// written. The
    /// source object is still checked against its name (after the link is
    /// made, and the link must be the inode that was checked). `None` when
    /// no link can be made here (other mode, other filesystem, link
    /// limit): the caller copies instead. `Some(false)` when the object was
    /// already staged.
    pub fn link_object_from(
        &self,
        src: &Repo,
        kind: ObjectType,
        csum: &Checksum,
    ) -> Result<Option<bool>> {
        self.link_object_from_at(src, kind, csum, false)
    }

    /// Like [`Transaction::link_object_from`] without checking the source
    /// object against its name (a trusted local source).
    pub fn link_object_from_trusted(
        &self,
        src: &Repo,
        kind: ObjectType,
        csum: &Checksum,
    ) -> Result<Option<bool>> {
        self.link_object_from_at(src, kind, csum, true)
    }

    fn link_object_from_at(
        &self,
        src: &Repo,
        kind: ObjectType,
        csum: &Checksum,
        trusted: bool,
    ) -> Result<Option<bool>> {
        // Metadata objects are stored alike in every mode; file objects
        // only within one mode, or from bare-user into bare-user-only when
        // the object is already what bare-user-only stores.
        if kind == ObjectType::File
            && src.mode() != self.repo.mode()
            && !bare_user_object_fits_bare_user_only(src, self.repo.mode(), csum)?
        {
            return Ok(None);
        }
        if self.is_present(kind, csum, false)? {
            return Ok(Some(false));
        }
        let name = loose_path(csum, kind, src.mode());
        let (id, tmp) = self.tmp_name();
        match fs::linkat(
            src.objects_dir(),
            &name,
            &self.staging,
            &tmp,
            AtFlags::empty(),
        ) {
            Ok(()) => {}
            Err(rustix::io::Errno::XDEV | rustix::io::Errno::PERM | rustix::io::Errno::MLINK) => {
                return Ok(None)
            }
            Err(e) => return Err(e).ctx(|| format!("linking object {name}")),
        }
        let unstage = || {
            let _ = fs::unlinkat(&self.staging, &tmp, AtFlags::empty());
        };
        if trusted {
            return self.stage(id, kind, *csum, false).map(Some);
        }
        if let Err(reason) = src.verify_object(csum, kind) {
            unstage();
            return Err(RepoError::BadObject {
                checksum: *csum,
                kind,
                reason,
            });
        }
        let ino = |dir, n: &str| fs::statat(dir, n, AtFlags::SYMLINK_NOFOLLOW).map(|st| st.st_ino);
        let same = matches!(
            (ino(src.objects_dir(), &name), ino(self.staging.as_fd(), &tmp)),
            (Ok(a), Ok(b)) if a == b
        );
        if !same {
            unstage();
            return Err(RepoError::BadObject {
                checksum: *csum,
                kind,
                reason: "the source object changed while it was being imported".into(),
            });
        }
        self.stage(id, kind, *csum, false).map(Some)
    }

    /// Like `write_content`, but refuse the object unless it hashes to
    /// `expected` (imports from other repos, pulls).
    pub fn write_content_expect(
        &self,
        expected: &Checksum,
        header: &FileHeader,
        size: u64,
        content: impl Read,
    ) -> Result<Written> {
        self.write_content_expect_at(expected, header, size, content, true)
    }

    /// Like `write_content_expect`, for an object the caller has just found
    /// absent from the repository (a pull): only this transaction's staged
    /// objects are checked, not the disk again.
    pub fn write_content_fetched(
        &self,
        expected: &Checksum,
        header: &FileHeader,
        size: u64,
        content: impl Read,
    ) -> Result<Written> {
        self.write_content_expect_at(expected, header, size, content, false)
    }

    fn write_content_expect_at(
        &self,
        expected: &Checksum,
        header: &FileHeader,
        size: u64,
        content: impl Read,
        disk: bool,
    ) -> Result<Written> {
        if self.is_present(ObjectType::File, expected, disk)? {
            return Ok(Written {
                checksum: *expected,
                new: false,
            });
        }
        let w = self
            .write_content_at(header, size, content, false, None)
            .map_err(|e| match e {
                RepoError::BareUserOnlyMode { mode, .. } => RepoError::BareUserOnlyMode {
                    checksum: Some(*expected),
                    mode,
                },
                e => e,
            })?;
        if w.checksum != *expected {
            if w.new {
                let removed = self
                    .staged
                    .lock()
                    .unwrap()
                    .remove(&(ObjectType::File, w.checksum));
                if let Some(id) = removed {
                    let _ = fs::unlinkat(&self.staging, staged_name(id), AtFlags::empty());
                }
            }
            return Err(RepoError::BadObject {
                checksum: *expected,
                kind: ObjectType::File,
                reason: crate::fsck::checksum_mismatch(ObjectType::File, expected, &w.checksum),
            });
        }
        Ok(w)
    }

    /// The permission bits an object file of this repo's mode must end
    /// with (None: it keeps the 0644 it is created with).
    fn object_perm(&self, h: &FileHeader) -> Option<u32> {
        match self.repo.mode() {
            RepoMode::Bare | RepoMode::BareUserOnly => Some(h.mode & 0o7777),
            RepoMode::BareUser => h.is_regular().then_some((h.mode & 0o775) | 0o400),
            RepoMode::Archive => None,
        }
    }

    /// False when a file created in staging already has `h`'s owner.
    fn needs_chown(&self, h: &FileHeader) -> bool {
        match self.defaults.get() {
            Some(d) => d.uid != h.uid || d.gid != h.gid,
            None => true,
        }
    }

    /// Owner, mode, xattrs and mtime of a regular object file, per mode;
    /// `chmod: false` when it was created with its final permissions.
    fn apply_file_meta(&self, fd: impl AsFd, h: &FileHeader, chmod: bool) -> Result<()> {
        let fd = fd.as_fd();
        let set_perm = || -> Result<()> {
            match self.object_perm(h) {
                Some(p) if chmod => {
                    fs::fchmod(fd, Mode::from_raw_mode(p)).ctx(|| "setting object mode")
                }
                _ => Ok(()),
            }
        };
        match self.repo.mode() {
            RepoMode::Bare => {
                // chown clears setuid bits, and chmod rewrites an ACL's
                // mask: owner, then mode, then xattrs.
                if self.needs_chown(h) {
                    fs::fchown(fd, Some(uid(h.uid)), Some(gid(h.gid)))
                        .ctx(|| "setting object owner")?;
                }
                set_perm()?;
                fsutil::set_fd_xattrs(fd, &h.xattrs).ctx(|| "setting object xattrs")?;
            }
            RepoMode::BareUser => {
                let meta = encode_bare_user_meta(h);
                fs::fsetxattr(fd, c"user.ostreemeta", &meta, fs::XattrFlags::empty())
                    .ctx(|| "setting user.ostreemeta (does the filesystem support user xattrs?)")?;
                set_perm()?;
            }
            RepoMode::BareUserOnly => {
                if h.mode & 0o7777 & !0o775 != 0 {
                    return Err(RepoError::BareUserOnlyMode {
                        checksum: None,
                        mode: h.mode,
                    });
                }
                set_perm()?;
            }
            RepoMode::Archive => return Ok(()),
        }
        // ostree gives bare objects (and so hardlinked checkouts) mtime 0.
        let ts = Timestamps {
            last_access: Timespec {
                tv_sec: 0,
                tv_nsec: fs::UTIME_OMIT,
            },
            last_modification: Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
        };
        fs::futimens(fd, &ts).ctx(|| "setting object mtime")?;
        Ok(())
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

thread_local! {
    /// One deflate state per writer thread, reset for each object instead of
    /// allocated anew: a level-6 state is several hundred KiB.
    static DEFLATE: std::cell::RefCell<Option<Compress>> = const { std::cell::RefCell::new(None) };
}

fn with_deflate<T>(f: impl FnOnce(&mut Compress) -> T) -> T {
    DEFLATE.with(|cell| {
        let mut slot = cell.borrow_mut();
        let z =
            slot.get_or_insert_with(|| Compress::new(Compression::new(ARCHIVE_ZLIB_LEVEL), false));
        z.reset();
        f(z)
    })
}

/// Feed `input` to the compressor; returns (bytes consumed, bytes produced).
fn deflate_step(
    z: &mut Compress,
    input: &[u8],
    out: &mut [u8],
    flush: FlushCompress,
) -> Result<(usize, usize)> {
    let (in0, out0) = (z.total_in(), z.total_out());
    z.compress(input, out, flush)
        .map_err(|e| RepoError::Invalid(format!("compressing: {e}")))?;
    Ok((
        (z.total_in() - in0) as usize,
        (z.total_out() - out0) as usize,
    ))
}

/// Objects at least this large start their writeback as soon as they are
/// written, so the disk works while the commit goes on and the final
/// syncfs has less left to wait for.
const EARLY_WRITEBACK_BYTES: u64 = 1 << 20;

/// The temp file name of staged object number `n`.
fn staged_name(n: u32) -> String {
    format!("o{n:x}")
}

/// Written bytes between background syncfs calls (see `background_sync`).
const BACKGROUND_SYNC_BYTES: u64 = 64 << 20;

/// Ask the kernel to start writing a file's dirty pages now, without
/// waiting (sync_file_range with SYNC_FILE_RANGE_WRITE). Durability still
/// comes from the syncfs in `commit`; this only moves the work earlier.
/// rustix has no wrapper for this call, hence libc.
fn start_writeback(fd: impl AsFd) {
    use rustix::fd::AsRawFd;
    // SAFETY: a valid open fd and plain integer arguments; the call does
    // not touch memory of ours. Failure only loses the head start.
    #[allow(unsafe_code)]
    unsafe {
        libc::sync_file_range(fd.as_fd().as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
    }
}

/// Fill `buf` unless the content ends first (0: it has ended). Filling
/// matters for a decompressing reader, which returns whatever one input
/// chunk gave: one write per buffer, not one per chunk.
fn read_some(r: &mut impl Read, buf: &mut [u8]) -> Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).ctx(|| "reading file content"),
        }
    }
    Ok(filled)
}

pub(crate) fn uid(u: u32) -> fs::Uid {
    fs::Uid::from_raw(u)
}
pub(crate) fn gid(g: u32) -> fs::Gid {
    fs::Gid::from_raw(g)
}

/// Empty xattrs, for callers that build headers by hand.
pub fn no_xattrs() -> Xattrs {
    Xattrs::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// A dead writer's staging directory (nobody holds its lock) is
    /// removed by the next transaction; a live one's is left alone.
    #[test]
    fn dead_writers_staging_is_reclaimed_at_once() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = Repo::init(&tmp.path().join("r"), RepoMode::Archive).unwrap();
        let t = repo.path().join("tmp");
        let dead = t.join("staging-oxtree-dead");
        std::fs::create_dir(&dead).unwrap();
        std::fs::write(dead.join("0"), vec![0u8; 4096]).unwrap();
        let live = repo.begin().unwrap();
        assert!(!dead.exists(), "a dead writer's staging dir is reclaimed");
        let staged_dirs = || {
            std::fs::read_dir(&t)
                .unwrap()
                .filter(|e| {
                    let n = e.as_ref().unwrap().file_name();
                    n.to_string_lossy().starts_with(STAGING_PREFIX)
                })
                .count()
        };
        assert_eq!(staged_dirs(), 1);
        // A second writer leaves the live one's staging alone.
        let other = repo.begin().unwrap();
        assert_eq!(staged_dirs(), 2);
        drop(other);
        drop(live);
        assert_eq!(staged_dirs(), 0);
    }

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

    /// Object files end with the permissions and owner each mode stores,
    /// whether or not the umask let them be created that way (creation
    /// skips fchmod/fchown when it can).
    #[test]
    fn object_files_get_their_mode_and_owner() {
        let tmp = tempfile::tempdir().unwrap();
        let root = rustix::process::geteuid().is_root();
        let other = if root {
            1234
        } else {
            rustix::process::geteuid().as_raw()
        };
        let me = (
            rustix::process::geteuid().as_raw(),
            rustix::process::getegid().as_raw(),
        );
        let perms = [
            0o644, 0o755, 0o600, 0o664, 0o777, 0o444, 0o000, 0o4755, 0o2775,
        ];
        for mode in [RepoMode::Bare, RepoMode::BareUser, RepoMode::BareUserOnly] {
            if mode == RepoMode::Bare && !root {
                continue;
            }
            let repo = Repo::init(&tmp.path().join(format!("{mode:?}")), mode).unwrap();
            let tx = repo.begin().unwrap();
            let mut written = Vec::new();
            for (i, &p) in perms.iter().enumerate() {
                if mode == RepoMode::BareUserOnly && p & !0o775 != 0 {
                    continue;
                }
                let (u, g) = if i % 2 == 0 { me } else { (other, other) };
                let (u, g) = if mode == RepoMode::BareUserOnly {
                    me
                } else {
                    (u, g)
                };
                let h = FileHeader::regular(u, g, p, no_xattrs());
                let body = format!("{mode:?} {p:o} {i}");
                let w = tx
                    .write_content(&h, body.len() as u64, body.as_bytes())
                    .unwrap();
                written.push((w.checksum, p, u, g));
            }
            tx.commit().unwrap();
            for (c, p, u, g) in written {
                let path = repo
                    .path()
                    .join("objects")
                    .join(loose_path(&c, ObjectType::File, mode));
                let md = std::fs::metadata(&path).unwrap();
                let want = match mode {
                    RepoMode::BareUser => (p & 0o775) | 0o400,
                    _ => p,
                };
                assert_eq!(md.mode() & 0o7777, want, "{mode:?} {p:o}");
                if mode == RepoMode::Bare {
                    assert_eq!((md.uid(), md.gid()), (u, g), "{mode:?} {p:o}");
                }
                let stored = repo.open_file(&c).unwrap().read_all().unwrap().0;
                assert_eq!(stored.mode & 0o7777, p, "{mode:?} {p:o}");
                assert_eq!((stored.uid, stored.gid), (u, g), "{mode:?} {p:o}");
            }
        }
    }
}

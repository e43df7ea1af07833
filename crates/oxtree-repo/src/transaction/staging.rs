//! The staging directory: each transaction's own below `tmp/`, locked for
//! its writer's life, where objects wait under temp names (listed in its
//! `index`) until `commit`; and the reclaiming of a dead writer's, whose
//! verified objects are salvaged into `objects/` first (the why is in
//! the docs of `transaction`, the parent module).

use super::Transaction;
use crate::error::{IoContext, Result};
use crate::fsutil;
use crate::objects::loose_path;
use crate::Repo;
use oxtree_object::{Checksum, DirMeta, DirTree, ObjectType};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{self, AtFlags, Mode, OFlags};
use std::io::{Read, Write};
use std::sync::atomic::Ordering;

/// A directory still being set up (`init-oxtree-*`, not yet locked and
/// renamed) older than this is a dead writer's.
const STALE_STAGING_SECS: i64 = 24 * 3600;

/// Staging directories are `staging-BOOTID-oxtree-RANDOM`: ostree's
/// `staging-BOOTID-` names (so tools that look for a boot's staging
/// directories find ours), with `-oxtree-` to tell them from ostree's own,
/// which it locks differently. Older oxtree wrote `staging-oxtree-RANDOM`.
pub(super) const STAGING_PREFIX: &str = "staging-";
pub(super) const STAGING_MARK: &str = "-oxtree-";
const LEGACY_STAGING_PREFIX: &str = "staging-oxtree-";
/// The list of staged objects in a staging directory.
const INDEX_NAME: &str = "index";
/// Largest dead writer's index read (about 10 million objects).
const MAX_INDEX_BYTES: u64 = 1 << 30;
pub(super) const INIT_PREFIX: &str = "init-oxtree-";

impl Transaction<'_> {
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
    pub(super) fn tmp_name(&self) -> (u32, String) {
        let n = self.next_tmp.fetch_add(1, Ordering::Relaxed);
        (n, staged_name(n))
    }

    /// Record a finished temp file in staging as object `csum`; it keeps
    /// its temp name until `commit` renames it into `objects/` (one rename).
    /// With `disk`, an object already in the repository is dropped.
    pub(super) fn stage(
        &self,
        tmp: u32,
        kind: ObjectType,
        csum: Checksum,
        disk: bool,
    ) -> Result<bool> {
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

    pub(super) fn create_tmp(&self, name: &str, mode: u32) -> Result<OwnedFd> {
        fs::openat(
            &self.staging,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode),
        )
        .ctx(|| "creating a temporary object file")
    }
}

/// The temp file name of staged object number `n`.
pub(super) fn staged_name(n: u32) -> String {
    format!("o{n:x}")
}

/// This boot's id: `OSTREE_BOOTID` (as ostree, for tests), else the
/// kernel's.
pub(super) fn boot_id() -> String {
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

pub(super) fn remove_stale_staging(repo: &Repo, tmp: &OwnedFd) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mode::RepoMode;

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
}

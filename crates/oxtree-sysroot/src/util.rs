//! Small directory-handle helpers on top of `oxtree_repo::fsutil`.

use crate::error::{IoContext, Result};
use oxtree_repo::fsutil;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{self, AtFlags, IFlags};
use rustix::io::Errno;

/// Open a relative `a/b/c` directory path, never following symlinks;
/// None if any component is missing or not a directory.
pub fn open_path<Fd: AsFd>(dir: Fd, rel: &str) -> Option<OwnedFd> {
    fsutil::open_dir_path_at(dir, rel).ok().flatten()
}

/// Whether an entry exists (without following a final symlink).
pub fn exists(dir: BorrowedFd<'_>, name: &str) -> bool {
    fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).is_ok()
}

pub fn read_link(dir: BorrowedFd<'_>, name: &str) -> Option<String> {
    fs::readlinkat(dir, name, Vec::new())
        .ok()
        .and_then(|c| c.into_string().ok())
}

/// Point symlink `name` at `target` atomically (`fsutil::symlink_replace_at`).
pub fn symlink_replace(dir: BorrowedFd<'_>, target: &str, name: &str) -> Result<()> {
    fsutil::symlink_replace_at(dir, target, name).ctx(|| format!("replacing symlink {name}"))
}

/// Set or clear the immutable attribute of a directory (ostree makes each
/// deployment root immutable). Filesystems without the attribute are fine.
pub fn set_immutable(dir: BorrowedFd<'_>, on: bool) -> Result<()> {
    if on && mutable_deployments() {
        return Ok(());
    }
    let flags = match fs::ioctl_getflags(dir) {
        Ok(f) => f,
        Err(Errno::NOTTY) | Err(Errno::NOTSUP) | Err(Errno::INVAL) => return Ok(()),
        Err(e) => return Err(e).ctx(|| "reading inode flags"),
    };
    let new = if on {
        flags | IFlags::IMMUTABLE
    } else {
        flags - IFlags::IMMUTABLE
    };
    if new == flags {
        return Ok(());
    }
    match fs::ioctl_setflags(dir, new) {
        Ok(()) | Err(Errno::NOTTY) | Err(Errno::NOTSUP) => Ok(()),
        Err(e) => Err(e).ctx(|| "setting inode flags"),
    }
}

/// `OSTREE_SYSROOT_DEBUG=mutable-deployments` (a comma-separated list, as
/// libostree reads it): deployments stay mutable, so that test harnesses
/// can remove them.
fn mutable_deployments() -> bool {
    sysroot_debug("mutable-deployments")
}

/// Whether `flag` is in `OSTREE_SYSROOT_DEBUG` (comma-separated).
pub(crate) fn sysroot_debug(flag: &str) -> bool {
    std::env::var("OSTREE_SYSROOT_DEBUG")
        .map(|v| v.split(',').any(|f| f == flag))
        .unwrap_or(false)
}

/// Remove `name` (file or whole tree), clearing a deployment root's
/// immutable bit first. Missing is fine.
pub fn remove_all(dir: BorrowedFd<'_>, name: &str) -> Result<()> {
    if let Ok(d) = fsutil::open_dir_at(dir, name) {
        set_immutable(d.as_fd(), false)?;
    }
    oxtree_repo::transaction::remove_tree_at(dir, name).ctx(|| format!("removing {name}"))
}

pub fn write_file(dir: BorrowedFd<'_>, name: &str, data: &[u8]) -> Result<()> {
    fsutil::write_atomic_at(dir, name, data, true).ctx(|| format!("writing {name}"))
}

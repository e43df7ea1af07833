//! Directory-handle helpers for working inside a root that packages and
//! treefiles populated: every path is relative to an open root directory
//! and walked one component at a time without following symlinks, so a
//! hostile symlink in the tree cannot redirect a move or removal outside it.

use crate::error::{IoContext, Result};
use oxtree_repo::fsutil;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{self, AtFlags, FileType, Mode, Stat};
use rustix::io::Errno;
use std::path::Path;

pub(crate) fn open_root(root: &Path) -> Result<OwnedFd> {
    fsutil::open_dir(root).ctx(|| format!("opening {}", root.display()))
}

/// Open the directory `rel` (`a/b/c`) below `dir`, never following a
/// symlink. `Ok(None)` if some component is missing or not a directory.
pub(crate) fn open_dir_rel(dir: BorrowedFd<'_>, rel: &str) -> Result<Option<OwnedFd>> {
    fsutil::open_dir_path_at(dir, rel).ctx(|| format!("opening {rel}"))
}

/// Split `a/b/c` into (`a/b`, `c`).
pub(crate) fn split(rel: &str) -> (&str, &str) {
    match rel.rsplit_once('/') {
        Some((p, n)) => (p, n),
        None => ("", rel),
    }
}

/// Open the parent of `rel`, creating missing directories (0755).
pub(crate) fn parent_mkdir(dir: BorrowedFd<'_>, rel: &str) -> Result<(OwnedFd, String)> {
    let (p, n) = split(rel);
    let fd = if p.is_empty() {
        dir.try_clone_to_owned().ctx(|| "duplicating fd")?
    } else {
        fsutil::mkdir_p_at(dir, p).ctx(|| format!("creating {p}"))?
    };
    Ok((fd, n.to_string()))
}

/// Stat `rel` without following a final symlink.
pub(crate) fn lstat(dir: BorrowedFd<'_>, rel: &str) -> Result<Option<Stat>> {
    let (p, n) = split(rel);
    let Some(pfd) = open_dir_rel(dir, p)? else {
        return Ok(None);
    };
    match fs::statat(&pfd, n, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e).ctx(|| format!("stat {rel}")),
    }
}

pub(crate) fn file_type(st: &Stat) -> FileType {
    FileType::from_raw_mode(st.st_mode)
}

/// Whether `rel` is a real directory (not a symlink to one).
pub(crate) fn is_dir(dir: BorrowedFd<'_>, rel: &str) -> Result<bool> {
    Ok(lstat(dir, rel)?.is_some_and(|s| file_type(&s) == FileType::Directory))
}

/// Rename `from` to `to`, both relative to `dir`; creates `to`'s parents.
pub(crate) fn rename(dir: BorrowedFd<'_>, from: &str, to: &str) -> Result<()> {
    let (fp, fname) = split(from);
    let Some(fpfd) = open_dir_rel(dir, fp)? else {
        return Err(std::io::Error::from(std::io::ErrorKind::NotFound))
            .ctx(|| format!("moving {from}"));
    };
    let (tpfd, tname) = parent_mkdir(dir, to)?;
    fs::renameat(&fpfd, fname, &tpfd, tname.as_str()).ctx(|| format!("moving {from} to {to}"))
}

/// Remove `rel` (a file, symlink or whole tree); missing is fine.
pub(crate) fn remove(dir: BorrowedFd<'_>, rel: &str) -> Result<()> {
    let (p, n) = split(rel);
    let Some(pfd) = open_dir_rel(dir, p)? else {
        return Ok(());
    };
    oxtree_repo::transaction::remove_tree_at(&pfd, n).ctx(|| format!("removing {rel}"))
}

/// Remove everything inside directory `rel`, keeping the directory.
pub(crate) fn clear_dir(dir: BorrowedFd<'_>, rel: &str) -> Result<()> {
    let Some(d) = open_dir_rel(dir, rel)? else {
        return Ok(());
    };
    for (name, _) in list(d.as_fd(), rel)? {
        oxtree_repo::transaction::remove_tree_at(&d, &name)
            .ctx(|| format!("removing {rel}/{name}"))?;
    }
    Ok(())
}

/// Entries of a directory, sorted by name (so output is deterministic).
pub(crate) fn list(d: BorrowedFd<'_>, what: &str) -> Result<Vec<(String, FileType)>> {
    let mut v = fsutil::list_dir(d).ctx(|| format!("listing {what}"))?;
    v.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(v)
}

pub(crate) fn read_link(dir: BorrowedFd<'_>, rel: &str) -> Result<String> {
    let (p, n) = split(rel);
    let pfd = open_dir_rel(dir, p)?
        .ok_or_else(|| crate::ComposeError::Layout(format!("{rel}: parent missing")))?;
    let t = fs::readlinkat(&pfd, n, Vec::new()).ctx(|| format!("reading link {rel}"))?;
    Ok(t.to_string_lossy().into_owned())
}

/// Create symlink `rel -> target` (parents created), replacing a file or
/// symlink already there.
pub(crate) fn symlink(dir: BorrowedFd<'_>, target: &str, rel: &str) -> Result<()> {
    let (pfd, name) = parent_mkdir(dir, rel)?;
    fsutil::symlink_replace_at(&pfd, target, &name).ctx(|| format!("creating symlink {rel}"))
}

/// Create directory `rel` (and parents) if missing, with `mode` for the
/// last component when it is created.
pub(crate) fn mkdir(dir: BorrowedFd<'_>, rel: &str, mode: u32) -> Result<OwnedFd> {
    let (pfd, name) = parent_mkdir(dir, rel)?;
    match fs::mkdirat(&pfd, name.as_str(), Mode::from_raw_mode(mode)) {
        Ok(()) => {
            // mkdir applies the umask; set the exact mode.
            fs::chmodat(
                &pfd,
                name.as_str(),
                Mode::from_raw_mode(mode),
                AtFlags::empty(),
            )
            .ctx(|| format!("chmod {rel}"))?;
        }
        Err(Errno::EXIST) => {}
        Err(e) => return Err(e).ctx(|| format!("creating {rel}")),
    }
    fsutil::open_dir_at(&pfd, &name).ctx(|| format!("opening {rel}"))
}

/// Write a regular file (mode 0644), replacing what is there.
pub(crate) fn write(dir: BorrowedFd<'_>, rel: &str, data: &[u8]) -> Result<()> {
    let (pfd, name) = parent_mkdir(dir, rel)?;
    fsutil::write_atomic_at(&pfd, &name, data, false).ctx(|| format!("writing {rel}"))
}

/// Read a regular file; `Ok(None)` if it is missing.
pub(crate) fn read(dir: BorrowedFd<'_>, rel: &str) -> Result<Option<Vec<u8>>> {
    let (p, n) = split(rel);
    let Some(pfd) = open_dir_rel(dir, p)? else {
        return Ok(None);
    };
    match fsutil::read_at(&pfd, n) {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).ctx(|| format!("reading {rel}")),
    }
}

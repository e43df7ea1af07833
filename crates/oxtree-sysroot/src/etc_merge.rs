//! The /etc three-way merge. A deployment's `/etc` starts as a copy of its
//! `usr/etc`; the local changes of the merge deployment (its `etc` against
//! its own `usr/etc`: added, modified in content, mode, owner or symlink
//! target, and deleted entries) are then applied on top. Whole files win:
//! a locally modified file replaces the new default. A file where the new
//! default has a directory (or the reverse) is an error.

use crate::error::{IoContext, Result, SysrootError};
use crate::util;
use oxtree_repo::fsutil;
use rustix::fd::{AsFd, BorrowedFd};
use rustix::fs::{self, AtFlags, FileType, Mode, OFlags, Stat};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Modified,
    Removed,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub kind: ChangeKind,
    /// Path relative to /etc.
    pub path: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EtcDiff {
    pub modified: Vec<String>,
    pub removed: Vec<String>,
    pub added: Vec<String>,
    /// Local FIFOs, sockets and device nodes: not carried over (as ostree,
    /// which skips them with a warning).
    pub skipped: Vec<String>,
}

/// The types /etc merge carries over: the rest is skipped.
fn mergeable(t: FileType) -> bool {
    matches!(
        t,
        FileType::RegularFile | FileType::Directory | FileType::Symlink
    )
}

fn lstat(dir: BorrowedFd<'_>, name: &str) -> Option<Stat> {
    fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).ok()
}

fn ftype(st: &Stat) -> FileType {
    FileType::from_raw_mode(st.st_mode)
}

fn join(rel: &str, name: &str) -> String {
    if rel.is_empty() {
        name.to_string()
    } else {
        format!("{rel}/{name}")
    }
}

fn same_content(a: BorrowedFd<'_>, b: BorrowedFd<'_>, name: &str, ta: FileType) -> Result<bool> {
    match ta {
        FileType::Symlink => Ok(util::read_link(a, name) == util::read_link(b, name)),
        FileType::RegularFile => {
            let ra = fsutil::read_at(a, name).ctx(|| format!("reading {name}"))?;
            let rb = fsutil::read_at(b, name).ctx(|| format!("reading {name}"))?;
            Ok(ra == rb)
        }
        _ => Ok(true),
    }
}

/// Local changes: `modified` (the deployment's etc) against `orig` (its
/// usr/etc). Directories that only exist locally count as one addition.
pub fn diff(orig: BorrowedFd<'_>, modified: BorrowedFd<'_>) -> Result<EtcDiff> {
    let mut d = EtcDiff::default();
    diff_dir(orig, modified, "", &mut d)?;
    Ok(d)
}

fn diff_dir(
    orig: BorrowedFd<'_>,
    modi: BorrowedFd<'_>,
    rel: &str,
    out: &mut EtcDiff,
) -> Result<()> {
    let mut names: Vec<String> = fsutil::list_dir(modi)
        .ctx(|| format!("listing etc/{rel}"))?
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    names.sort();
    for n in &names {
        let path = join(rel, n);
        let m =
            lstat(modi, n).ok_or_else(|| SysrootError::Invalid(format!("etc/{path} vanished")))?;
        if !mergeable(ftype(&m)) {
            out.skipped.push(path);
            continue;
        }
        let Some(o) = lstat(orig, n) else {
            out.added.push(path.clone());
            if ftype(&m) == FileType::Directory {
                // Like ostree, everything below a new directory is listed.
                let md = fsutil::open_dir_at(modi, n).ctx(|| format!("opening etc/{path}"))?;
                list_all(md.as_fd(), &path, &mut out.added)?;
            }
            continue;
        };
        let (tm, to) = (ftype(&m), ftype(&o));
        if tm != to {
            out.modified.push(path);
            continue;
        }
        let meta_differs = (m.st_mode & 0o7777) != (o.st_mode & 0o7777)
            || m.st_uid != o.st_uid
            || m.st_gid != o.st_gid;
        if tm == FileType::Directory {
            if meta_differs {
                out.modified.push(path.clone());
            }
            let od = fsutil::open_dir_at(orig, n).ctx(|| format!("opening usr/etc/{path}"))?;
            let md = fsutil::open_dir_at(modi, n).ctx(|| format!("opening etc/{path}"))?;
            diff_dir(od.as_fd(), md.as_fd(), &path, out)?;
        } else if (meta_differs && tm != FileType::Symlink)
            || (tm == FileType::Symlink && (m.st_uid != o.st_uid || m.st_gid != o.st_gid))
            || !same_content(orig, modi, n, tm)?
        {
            out.modified.push(path);
        }
    }
    let mut onames: Vec<String> = fsutil::list_dir(orig)
        .ctx(|| format!("listing usr/etc/{rel}"))?
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    onames.sort();
    for n in onames {
        if !names.contains(&n) {
            out.removed.push(join(rel, &n));
        }
    }
    Ok(())
}

fn list_all(dir: BorrowedFd<'_>, rel: &str, out: &mut Vec<String>) -> Result<()> {
    let mut names: Vec<(String, FileType)> =
        fsutil::list_dir(dir).ctx(|| format!("listing etc/{rel}"))?;
    names.sort_by(|a, b| a.0.cmp(&b.0));
    for (n, t) in names {
        let path = join(rel, &n);
        if !mergeable(t) && t != FileType::Unknown {
            continue;
        }
        out.push(path.clone());
        if t == FileType::Directory {
            let d = fsutil::open_dir_at(dir, &n).ctx(|| format!("opening etc/{path}"))?;
            list_all(d.as_fd(), &path, out)?;
        }
    }
    Ok(())
}

/// Copy one entry (recursively for directories) from `src/name` to
/// `dst/dname`, replacing a non-directory in the way; owner, mode and
/// xattrs are kept. Never follows symlinks.
pub fn copy_entry(src: BorrowedFd<'_>, name: &str, dst: BorrowedFd<'_>, dname: &str) -> Result<()> {
    let st = lstat(src, name).ok_or_else(|| SysrootError::Invalid(format!("{name} vanished")))?;
    let mode = Mode::from_raw_mode(st.st_mode & 0o7777);
    match ftype(&st) {
        FileType::Directory => {
            match lstat(dst, dname) {
                Some(d) if ftype(&d) == FileType::Directory => {}
                Some(_) => util::remove_all(dst, dname)?,
                None => {}
            }
            fsutil::ensure_dir_at(dst, dname, 0o700).ctx(|| format!("creating {dname}"))?;
            let sd = fsutil::open_dir_at(src, name).ctx(|| format!("opening {name}"))?;
            let dd = fsutil::open_dir_at(dst, dname).ctx(|| format!("opening {dname}"))?;
            for (n, _) in fsutil::list_dir(&sd).ctx(|| format!("listing {name}"))? {
                copy_entry(sd.as_fd(), &n, dd.as_fd(), &n)?;
            }
            fs::fchown(&dd, Some(uid(st.st_uid)), Some(gid(st.st_gid)))
                .ctx(|| format!("chown {dname}"))?;
            if let Ok(x) = fsutil::fd_xattrs(&sd) {
                let _ = fsutil::set_fd_xattrs(&dd, &x);
            }
            fs::fchmod(&dd, mode).ctx(|| format!("chmod {dname}"))?;
        }
        FileType::RegularFile => {
            let tmp = fsutil::temp_name(".oxtree-etc-");
            let sfd = fs::openat(
                src,
                name,
                OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                Mode::empty(),
            )
            .ctx(|| format!("opening {name}"))?;
            let dfd = fs::openat(
                dst,
                tmp.as_str(),
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
            .ctx(|| format!("creating {dname}"))?;
            let r = (|| -> std::io::Result<()> {
                let mut s = std::fs::File::from(sfd.try_clone()?);
                let mut d = std::fs::File::from(dfd.try_clone()?);
                std::io::copy(&mut s, &mut d)?;
                fs::fchown(&dfd, Some(uid(st.st_uid)), Some(gid(st.st_gid)))?;
                if let Ok(x) = fsutil::fd_xattrs(&sfd) {
                    let _ = fsutil::set_fd_xattrs(&dfd, &x);
                }
                fs::fchmod(&dfd, mode)?;
                fs::renameat(dst, tmp.as_str(), dst, dname)?;
                Ok(())
            })();
            if let Err(e) = r {
                let _ = fs::unlinkat(dst, tmp.as_str(), AtFlags::empty());
                return Err(e).ctx(|| format!("copying {name}"));
            }
        }
        FileType::Symlink => {
            let target = util::read_link(src, name)
                .ok_or_else(|| SysrootError::Invalid(format!("reading symlink {name}")))?;
            let tmp = fsutil::temp_name(".oxtree-etc-");
            fs::symlinkat(target.as_str(), dst, tmp.as_str())
                .ctx(|| format!("creating symlink {dname}"))?;
            let _ = fs::chownat(
                dst,
                tmp.as_str(),
                Some(uid(st.st_uid)),
                Some(gid(st.st_gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            );
            if let Err(e) = fs::renameat(dst, tmp.as_str(), dst, dname) {
                let _ = fs::unlinkat(dst, tmp.as_str(), AtFlags::empty());
                return Err(e).ctx(|| format!("placing symlink {dname}"));
            }
        }
        // Inside a copied directory: skipped like at the top (see EtcDiff).
        FileType::Fifo | FileType::Socket | FileType::CharacterDevice | FileType::BlockDevice => {}
        other => {
            return Err(SysrootError::Invalid(format!(
                "cannot copy {name}: unsupported file type {other:?} in /etc"
            )))
        }
    }
    Ok(())
}

fn uid(u: u32) -> rustix::fs::Uid {
    rustix::fs::Uid::from_raw(u)
}
fn gid(g: u32) -> rustix::fs::Gid {
    rustix::fs::Gid::from_raw(g)
}

/// Open (creating like the source) the parent directories of `path` in
/// `new`, copying each missing directory's metadata from `modified`.
fn open_parent(
    modified: BorrowedFd<'_>,
    new: BorrowedFd<'_>,
    path: &str,
) -> Result<(rustix::fd::OwnedFd, rustix::fd::OwnedFd, String)> {
    let mut comps: Vec<&str> = path.split('/').collect();
    let leaf = comps.pop().unwrap_or_default().to_string();
    let mut m = modified.try_clone_to_owned().ctx(|| "dup")?;
    let mut n = new.try_clone_to_owned().ctx(|| "dup")?;
    let mut sofar = String::new();
    for c in comps {
        sofar = join(&sofar, c);
        match lstat(n.as_fd(), c) {
            Some(st) if ftype(&st) == FileType::Directory => {}
            Some(_) => {
                return Err(SysrootError::EtcConflict {
                    path: sofar,
                    reason: "a local change lies below it, but the new default is not a directory"
                        .into(),
                })
            }
            None => {
                let st = lstat(m.as_fd(), c)
                    .ok_or_else(|| SysrootError::Invalid(format!("etc/{sofar} vanished")))?;
                fs::mkdirat(&n, c, Mode::from_raw_mode(st.st_mode & 0o7777))
                    .ctx(|| format!("creating etc/{sofar}"))?;
                fs::chownat(
                    &n,
                    c,
                    Some(uid(st.st_uid)),
                    Some(gid(st.st_gid)),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .ctx(|| format!("chown etc/{sofar}"))?;
                fs::chmodat(
                    &n,
                    c,
                    Mode::from_raw_mode(st.st_mode & 0o7777),
                    AtFlags::empty(),
                )
                .ctx(|| format!("chmod etc/{sofar}"))?;
            }
        }
        m = fsutil::open_dir_at(&m, c).ctx(|| format!("opening etc/{sofar}"))?;
        n = fsutil::open_dir_at(&n, c).ctx(|| format!("opening new etc/{sofar}"))?;
    }
    Ok((m, n, leaf))
}

/// Apply the local changes `d` (from `modified`, the merge deployment's
/// etc) onto `new` (the new deployment's etc, a copy of its usr/etc).
pub fn apply(d: &EtcDiff, modified: BorrowedFd<'_>, new: BorrowedFd<'_>) -> Result<()> {
    // Check every conflict first, so an error changes nothing here either.
    for p in d.modified.iter().chain(d.added.iter()) {
        let (m, n, leaf) = match open_parent_readonly(modified, new, p) {
            Some(x) => x,
            None => continue,
        };
        let (Some(ms), Some(ns)) = (lstat(m.as_fd(), &leaf), lstat(n.as_fd(), &leaf)) else {
            continue;
        };
        let (md, nd) = (
            ftype(&ms) == FileType::Directory,
            ftype(&ns) == FileType::Directory,
        );
        if !md && nd {
            return Err(SysrootError::EtcConflict {
                path: p.clone(),
                // ostree's words, capital included: scripts match them.
                reason: "Modified config file newly defaults to directory, cannot merge".into(),
            });
        }
        if md && !nd {
            return Err(SysrootError::EtcConflict {
                path: p.clone(),
                reason: "locally a directory, but the new default is not a directory, cannot merge"
                    .into(),
            });
        }
    }
    for p in &d.removed {
        if let Some(n) = p.rsplit_once('/').map_or_else(
            || new.try_clone_to_owned().ok(),
            |(parent, _)| util::open_path(new, parent),
        ) {
            let leaf = p.rsplit('/').next().unwrap_or(p);
            util::remove_all(n.as_fd(), leaf)?;
        }
    }
    for p in d.modified.iter().chain(d.added.iter()) {
        let (m, n, leaf) = open_parent(modified, new, p)?;
        let st = lstat(m.as_fd(), &leaf)
            .ok_or_else(|| SysrootError::Invalid(format!("etc/{p} vanished")))?;
        if ftype(&st) == FileType::Directory && lstat(n.as_fd(), &leaf).is_some() {
            // A directory whose metadata changed: only the metadata (its
            // entries are listed separately).
            let nd = fsutil::open_dir_at(&n, &leaf).ctx(|| format!("opening etc/{p}"))?;
            fs::fchown(&nd, Some(uid(st.st_uid)), Some(gid(st.st_gid)))
                .ctx(|| format!("chown etc/{p}"))?;
            fs::fchmod(&nd, Mode::from_raw_mode(st.st_mode & 0o7777))
                .ctx(|| format!("chmod etc/{p}"))?;
            continue;
        }
        copy_entry(m.as_fd(), &leaf, n.as_fd(), &leaf)?;
    }
    Ok(())
}

fn open_parent_readonly(
    modified: BorrowedFd<'_>,
    new: BorrowedFd<'_>,
    path: &str,
) -> Option<(rustix::fd::OwnedFd, rustix::fd::OwnedFd, String)> {
    let (parent, leaf) = match path.rsplit_once('/') {
        Some((p, l)) => (p, l),
        None => ("", path),
    };
    Some((
        util::open_path(modified, parent)?,
        util::open_path(new, parent)?,
        leaf.to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs as sfs;
    use std::os::unix::fs::{symlink, PermissionsExt};
    use std::path::Path;

    fn dir(p: &Path) -> rustix::fd::OwnedFd {
        fsutil::open_dir(p).unwrap()
    }

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        sfs::create_dir_all(p.parent().unwrap()).unwrap();
        sfs::write(p, text).unwrap();
    }

    /// usr/etc (the defaults) and etc (changed locally) of a merge
    /// deployment: one of each kind of change.
    fn merge_deployment(t: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
        let (orig, modi) = (t.join("usr-etc"), t.join("etc"));
        for root in [&orig, &modi] {
            write(root, "same", "1");
            write(root, "d/kept", "k");
        }
        write(&orig, "changed", "2");
        write(&modi, "changed", "2 local");
        write(&orig, "d/gone", "x");
        write(&modi, "d/new", "y");
        write(&modi, "added", "3");
        write(&orig, "mode", "m");
        write(&modi, "mode", "m");
        sfs::set_permissions(modi.join("mode"), sfs::Permissions::from_mode(0o600)).unwrap();
        symlink("t1", orig.join("link")).unwrap();
        symlink("t2", modi.join("link")).unwrap();
        fs::mknodat(
            dir(&modi),
            "fifo",
            FileType::Fifo,
            Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        (orig, modi)
    }

    #[test]
    fn diff_lists_each_kind_of_change() {
        let t = tempfile::tempdir().unwrap();
        let (orig, modi) = merge_deployment(t.path());
        let d = diff(dir(&orig).as_fd(), dir(&modi).as_fd()).unwrap();
        assert_eq!(d.modified, ["changed", "link", "mode"]);
        assert_eq!(d.added, ["added", "d/new"]);
        assert_eq!(d.removed, ["d/gone"]);
        assert_eq!(d.skipped, ["fifo"]);
        // No change, no diff.
        let d = diff(dir(&orig).as_fd(), dir(&orig).as_fd()).unwrap();
        assert_eq!(d, EtcDiff::default());
    }

    #[test]
    fn apply_puts_local_changes_on_the_new_defaults() {
        let t = tempfile::tempdir().unwrap();
        let (orig, modi) = merge_deployment(t.path());
        let new = t.path().join("new-etc");
        write(&new, "same", "1 new default");
        write(&new, "changed", "2 new default");
        write(&new, "d/gone", "x");
        write(&new, "d/kept", "k");
        write(&new, "d/other", "o");
        write(&new, "mode", "m");
        symlink("t1", new.join("link")).unwrap();
        let d = diff(dir(&orig).as_fd(), dir(&modi).as_fd()).unwrap();
        apply(&d, dir(&modi).as_fd(), dir(&new).as_fd()).unwrap();
        let read = |rel: &str| sfs::read_to_string(new.join(rel)).unwrap();
        // Unchanged locally: the new default wins; changed: the local file.
        assert_eq!(read("same"), "1 new default");
        assert_eq!(read("changed"), "2 local");
        assert_eq!(read("added"), "3");
        assert_eq!(read("d/new"), "y");
        assert_eq!(read("d/other"), "o");
        assert!(!new.join("d/gone").exists());
        assert_eq!(sfs::read_link(new.join("link")).unwrap(), Path::new("t2"));
        let mode = sfs::metadata(new.join("mode"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o600);
        // Skipped, not copied.
        assert!(sfs::symlink_metadata(new.join("fifo")).is_err());
    }

    #[test]
    fn a_file_that_became_a_directory_is_a_conflict_and_nothing_changes() {
        let t = tempfile::tempdir().unwrap();
        let (orig, modi) = merge_deployment(t.path());
        let new = t.path().join("new-etc");
        write(&new, "changed/now-a-dir", "");
        write(&new, "d/gone", "x");
        let d = diff(dir(&orig).as_fd(), dir(&modi).as_fd()).unwrap();
        let e = apply(&d, dir(&modi).as_fd(), dir(&new).as_fd()).unwrap_err();
        assert!(
            matches!(&e, SysrootError::EtcConflict { path, .. } if path == "changed"),
            "{e}"
        );
        // Checked before anything is applied.
        assert!(new.join("d/gone").exists());
        assert!(!new.join("added").exists());
    }

    fn mode(p: &Path) -> u32 {
        sfs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    /// A directory added locally is listed with everything below it, and
    /// arrives whole, modes included.
    #[test]
    fn a_local_directory_tree_is_added_whole() {
        let t = tempfile::tempdir().unwrap();
        let (orig, modi, new) = (t.path().join("o"), t.path().join("m"), t.path().join("n"));
        for root in [&orig, &modi, &new] {
            write(root, "base", "b");
        }
        write(&modi, "app/conf/a.conf", "a");
        write(&modi, "app/b.conf", "b");
        sfs::set_permissions(modi.join("app/conf"), sfs::Permissions::from_mode(0o750)).unwrap();
        sfs::set_permissions(modi.join("app/b.conf"), sfs::Permissions::from_mode(0o640)).unwrap();
        symlink("conf/a.conf", modi.join("app/link")).unwrap();
        let d = diff(dir(&orig).as_fd(), dir(&modi).as_fd()).unwrap();
        assert_eq!(
            d.added,
            [
                "app",
                "app/b.conf",
                "app/conf",
                "app/conf/a.conf",
                "app/link"
            ]
        );
        assert!(d.modified.is_empty() && d.removed.is_empty(), "{d:?}");
        apply(&d, dir(&modi).as_fd(), dir(&new).as_fd()).unwrap();
        assert_eq!(sfs::read_to_string(new.join("app/link")).unwrap(), "a");
        assert_eq!(
            sfs::read_link(new.join("app/link")).unwrap(),
            Path::new("conf/a.conf")
        );
        assert_eq!(mode(&new.join("app/conf")), 0o750);
        assert_eq!(mode(&new.join("app/b.conf")), 0o640);
        assert_eq!(sfs::read_to_string(new.join("base")).unwrap(), "b");
    }

    /// A file turned into a symlink locally (or the reverse) is a
    /// modification, and the local kind wins.
    #[test]
    fn a_changed_file_type_is_a_modification() {
        let t = tempfile::tempdir().unwrap();
        let (orig, modi, new) = (t.path().join("o"), t.path().join("m"), t.path().join("n"));
        write(&orig, "resolv.conf", "nameserver 1.1.1.1\n");
        write(&new, "resolv.conf", "nameserver 9.9.9.9\n");
        sfs::create_dir_all(&modi).unwrap();
        symlink("/run/resolv.conf", modi.join("resolv.conf")).unwrap();
        symlink("a", orig.join("was-link")).unwrap();
        symlink("a", new.join("was-link")).unwrap();
        write(&modi, "was-link", "now a file");
        let d = diff(dir(&orig).as_fd(), dir(&modi).as_fd()).unwrap();
        assert_eq!(d.modified, ["resolv.conf", "was-link"]);
        apply(&d, dir(&modi).as_fd(), dir(&new).as_fd()).unwrap();
        assert_eq!(
            sfs::read_link(new.join("resolv.conf")).unwrap(),
            Path::new("/run/resolv.conf")
        );
        let m = sfs::symlink_metadata(new.join("was-link")).unwrap();
        assert!(m.is_file());
        assert_eq!(
            sfs::read_to_string(new.join("was-link")).unwrap(),
            "now a file"
        );
    }

    /// A directory deleted locally is one removal, and goes from the new
    /// /etc whole, even with new defaults in it; a removal the new
    /// defaults no longer have is no error.
    #[test]
    fn a_locally_deleted_directory_goes_whole() {
        let t = tempfile::tempdir().unwrap();
        let (orig, modi, new) = (t.path().join("o"), t.path().join("m"), t.path().join("n"));
        for root in [&orig, &modi, &new] {
            write(root, "keep", "k");
        }
        write(&orig, "cron.d/job", "j");
        write(&orig, "cron.d/sub/x", "x");
        write(&orig, "gone-upstream", "g");
        write(&new, "cron.d/job", "j2");
        write(&new, "cron.d/new-job", "n");
        let d = diff(dir(&orig).as_fd(), dir(&modi).as_fd()).unwrap();
        assert_eq!(d.removed, ["cron.d", "gone-upstream"]);
        apply(&d, dir(&modi).as_fd(), dir(&new).as_fd()).unwrap();
        assert!(sfs::symlink_metadata(new.join("cron.d")).is_err());
        assert_eq!(sfs::read_to_string(new.join("keep")).unwrap(), "k");
    }

    /// The reverse conflict: a local directory where the new default is a
    /// file; nothing is applied.
    #[test]
    fn a_directory_that_became_a_file_is_a_conflict() {
        let t = tempfile::tempdir().unwrap();
        let (orig, modi, new) = (t.path().join("o"), t.path().join("m"), t.path().join("n"));
        write(&orig, "gone", "g");
        write(&modi, "profile.d/local.sh", "x");
        write(&new, "profile.d", "now a file");
        write(&new, "gone", "g");
        let d = diff(dir(&orig).as_fd(), dir(&modi).as_fd()).unwrap();
        let e = apply(&d, dir(&modi).as_fd(), dir(&new).as_fd()).unwrap_err();
        assert!(
            matches!(&e, SysrootError::EtcConflict { path, .. } if path == "profile.d"),
            "{e}"
        );
        assert!(new.join("gone").exists(), "a removal was applied");
        assert_eq!(
            sfs::read_to_string(new.join("profile.d")).unwrap(),
            "now a file"
        );
    }

    /// Only the metadata of a directory whose mode changed locally is
    /// carried: the new defaults inside it stay.
    #[test]
    fn a_directory_mode_change_keeps_the_new_contents() {
        let t = tempfile::tempdir().unwrap();
        let (orig, modi, new) = (t.path().join("o"), t.path().join("m"), t.path().join("n"));
        for root in [&orig, &modi] {
            write(root, "ssl/old", "o");
        }
        write(&new, "ssl/old", "o");
        write(&new, "ssl/new", "n");
        sfs::set_permissions(modi.join("ssl"), sfs::Permissions::from_mode(0o700)).unwrap();
        let d = diff(dir(&orig).as_fd(), dir(&modi).as_fd()).unwrap();
        assert_eq!(d.modified, ["ssl"]);
        apply(&d, dir(&modi).as_fd(), dir(&new).as_fd()).unwrap();
        assert_eq!(mode(&new.join("ssl")), 0o700);
        assert_eq!(sfs::read_to_string(new.join("ssl/new")).unwrap(), "n");
    }
}

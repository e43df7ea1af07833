//! Checkout: materialize a commit (or a subpath of it) as a directory tree.
//!
//! Files from bare repositories are hardlinked to their objects when the
//! stored owner and mode are what the checkout wants; otherwise content is
//! copied and verified against its checksum on the way. Every name comes
//! from a validated dirtree and is only used relative to an open directory
//! handle; directories are opened with O_NOFOLLOW, and a symlink or file in
//! the way of a directory is an error, so a checkout never writes through a
//! symlink or outside its destination.

use crate::error::{IoContext, RepoError, Result};
use crate::fsutil;
use crate::mode::RepoMode;
use crate::objects::loose_path;
use crate::transaction::{gid, uid};
use crate::Repo;
use oxtree_object::{Checksum, DirMeta, FileHeader, ObjectType};
use rayon::prelude::*;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{self, AtFlags, Mode, OFlags};
use rustix::io::Errno;
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Overwrite {
    /// The destination must not exist.
    #[default]
    None,
    /// `--union`: existing files are replaced.
    UnionFiles,
    /// `--union-add`: existing files are kept.
    AddFiles,
    /// `--union-identical`: an existing file is kept when it is the same
    /// (the same inode as the object, the same symlink target, or the same
    /// checksum); any other is an error (rpm-ostree's layering rule).
    UnionIdentical,
}

#[derive(Clone, Debug, Default)]
pub struct CheckoutOptions {
    /// `-U`: ignore owners and xattrs, drop setuid/setgid bits.
    pub user_mode: bool,
    /// `--force-copy`: never hardlink.
    pub force_copy: bool,
    pub overwrite: Overwrite,
    /// Check out only this path of the commit.
    pub subpath: Option<String>,
    /// `--process-passthrough-whiteouts` (always on for deployments): a
    /// regular file `.ostree-wh.NAME` becomes an overlayfs whiteout, a
    /// character device 0:0 `NAME` with the file's mode, owner and xattrs.
    /// Trees carry whiteouts this way because a commit cannot hold devices.
    pub passthrough_whiteouts: bool,
    /// `--skip-list`: paths of the commit (`/usr/share/doc`) left out,
    /// with everything below them.
    pub skip: Option<std::sync::Arc<std::collections::HashSet<String>>>,
    /// `--disable-cache`: an archive repository's user-mode checkout
    /// copies files instead of filling `uncompressed-objects-cache`.
    pub no_cache: bool,
    /// `-M/--bareuseronly-dirs`: directories lose the mode bits a
    /// bare-user-only repository cannot hold (setuid/setgid/sticky, o+w).
    pub bareuseronly_dirs: bool,
}

/// The name prefix of a whiteout carried as a regular file.
pub const WHITEOUT_FILE_PREFIX: &str = ".ostree-wh.";

#[derive(Debug, Default)]
pub struct CheckoutStats {
    pub files: u64,
    pub hardlinked: u64,
    pub dirs: u64,
}

struct Ctx<'a> {
    repo: &'a Repo,
    opts: &'a CheckoutOptions,
    hardlink: bool,
    metas: Mutex<HashMap<Checksum, DirMeta>>,
    /// `uncompressed-objects-cache/` of an archive repo, opened on first use.
    cache: std::sync::OnceLock<std::result::Result<OwnedFd, String>>,
    files: AtomicU64,
    linked: AtomicU64,
    dirs: AtomicU64,
    progress: &'a (dyn Fn(u64) + Sync),
}

impl Repo {
    /// Check out `commit` to `dest`.
    pub fn checkout(
        &self,
        commit: &Checksum,
        dest: &Path,
        opts: &CheckoutOptions,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<CheckoutStats> {
        let c = self.load_commit(commit)?;
        let mut opts = opts.clone();
        if self.mode() == RepoMode::BareUserOnly {
            opts.user_mode = true;
        }
        // Archive repos hardlink user-mode checkouts from the uncompressed
        // objects cache, as ostree does.
        let hardlink = !opts.force_copy
            && match self.mode() {
                RepoMode::Bare => !opts.user_mode,
                RepoMode::BareUser | RepoMode::BareUserOnly | RepoMode::Archive => opts.user_mode,
            };
        let ctx = Ctx {
            repo: self,
            opts: &opts,
            hardlink,
            metas: Mutex::new(HashMap::new()),
            cache: std::sync::OnceLock::new(),
            files: AtomicU64::new(0),
            linked: AtomicU64::new(0),
            dirs: AtomicU64::new(0),
            progress,
        };
        let (parent, name) = split_dest(dest)?;
        let parent_fd =
            fsutil::open_dir(&parent).ctx(|| format!("opening {}", parent.display()))?;

        // Resolve the subpath inside the commit.
        let (mut tree, mut meta) = (c.root_tree, c.root_meta);
        if let Some(sub) = opts.subpath.as_deref() {
            let comps: Vec<&str> = sub.split('/').filter(|s| !s.is_empty()).collect();
            for (i, comp) in comps.iter().enumerate() {
                let t = self.load_dirtree(&tree)?;
                if let Some(d) = t.dirs.iter().find(|d| d.name == *comp) {
                    tree = d.tree;
                    meta = d.meta;
                } else if let Some(f) = t.files.iter().find(|f| f.name == *comp) {
                    if i + 1 != comps.len() {
                        return Err(RepoError::NoSuchPath(sub.to_string()));
                    }
                    // A file goes into the destination directory (made
                    // if need be) under its own name, as ostree does.
                    // A directory it makes is private (0700), as ostree's.
                    fsutil::ensure_dir_at(&parent_fd, &name, 0o700)
                        .ctx(|| format!("creating {}", dest.display()))?;
                    let d = fsutil::open_dir_at(&parent_fd, &name)
                        .ctx(|| format!("opening {}", dest.display()))?;
                    ctx.file(d.as_fd(), comp, &f.checksum)?;
                    return Ok(ctx.stats());
                } else {
                    return Err(RepoError::NoSuchPath(sub.to_string()));
                }
            }
        }
        let root = match opts.subpath.as_deref() {
            Some(sub) => format!("/{}", sub.trim_matches('/')),
            None => "/".to_string(),
        };
        ctx.dir(parent_fd.as_fd(), &name, &tree, &meta, &root)?;
        Ok(ctx.stats())
    }
}

fn split_dest(dest: &Path) -> Result<(std::path::PathBuf, String)> {
    // `.` or `..` (a file subpath checked out into the current
    // directory): name the directory itself.
    let canonical;
    let dest = if dest.file_name().is_none() {
        canonical = std::fs::canonicalize(dest).ctx(|| format!("resolving {}", dest.display()))?;
        canonical.as_path()
    } else {
        dest
    };
    let name = dest
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| {
            RepoError::Invalid(format!("invalid checkout destination {}", dest.display()))
        })?
        .to_string();
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => ".".into(),
    };
    Ok((parent, name))
}

impl Ctx<'_> {
    fn stats(&self) -> CheckoutStats {
        CheckoutStats {
            files: self.files.load(Ordering::Relaxed),
            hardlinked: self.linked.load(Ordering::Relaxed),
            dirs: self.dirs.load(Ordering::Relaxed),
        }
    }

    fn dirmeta(&self, c: &Checksum) -> Result<DirMeta> {
        if let Some(m) = self.metas.lock().unwrap().get(c) {
            return Ok(m.clone());
        }
        let m = self.repo.load_dirmeta(c)?;
        self.metas.lock().unwrap().insert(*c, m.clone());
        Ok(m)
    }

    /// The commit path of `name` in the directory at `dir` (paths are
    /// only tracked when a skip list needs them).
    fn child_path(&self, dir: &str, name: &str) -> String {
        match (self.opts.skip.is_some(), dir) {
            (false, _) => String::new(),
            (true, "/") => format!("/{name}"),
            (true, _) => format!("{dir}/{name}"),
        }
    }

    fn skipped(&self, path: &str) -> bool {
        self.opts.skip.as_ref().is_some_and(|s| s.contains(path))
    }

    fn dir(
        &self,
        parent: BorrowedFd<'_>,
        name: &str,
        tree: &Checksum,
        meta: &Checksum,
        path: &str,
    ) -> Result<()> {
        let t = self.repo.load_dirtree(tree)?;
        let m = self.dirmeta(meta)?;
        let created = match fs::mkdirat(parent, name, Mode::from_raw_mode(0o700)) {
            Ok(()) => true,
            Err(Errno::EXIST) if self.opts.overwrite != Overwrite::None => false,
            Err(e) => return Err(e).ctx(|| format!("creating directory {name}")),
        };
        // O_NOFOLLOW|O_DIRECTORY: a symlink or file in the way is an error.
        let fd = fsutil::open_dir_at(parent, name).map_err(|e| RepoError::Invalid(format!(
            "cannot check out directory '{name}': {e} (is something other than a directory in the way?)"
        )))?;
        self.dirs.fetch_add(1, Ordering::Relaxed);

        let files = |f: &oxtree_object::FileEntry| {
            if self.skipped(&self.child_path(path, &f.name)) {
                return Ok(());
            }
            self.file(fd.as_fd(), &f.name, &f.checksum)
        };
        if t.files.len() >= 16 {
            t.files.par_iter().try_for_each(files)?;
        } else {
            t.files.iter().try_for_each(files)?;
        }
        let dirs = |d: &oxtree_object::DirEntry| {
            let sub = self.child_path(path, &d.name);
            if self.skipped(&sub) {
                return Ok(());
            }
            self.dir(fd.as_fd(), &d.name, &d.tree, &d.meta, &sub)
        };
        if t.dirs.len() >= 2 {
            t.dirs.par_iter().try_for_each(dirs)?;
        } else {
            t.dirs.iter().try_for_each(dirs)?;
        }

        // Metadata last, so a read-only directory could still be filled.
        if !self.opts.user_mode {
            fs::fchown(&fd, Some(uid(m.uid)), Some(gid(m.gid))).ctx(|| format!("chown {name}"))?;
            fsutil::set_fd_xattrs(&fd, &m.xattrs).ctx(|| format!("setting xattrs on {name}"))?;
        }
        // A bare-user-only repository never makes such directories.
        let perms = if self.opts.bareuseronly_dirs || self.repo.mode() == RepoMode::BareUserOnly {
            m.mode & 0o775
        } else {
            m.mode & 0o7777
        };
        fs::fchmod(&fd, Mode::from_raw_mode(perms)).ctx(|| format!("chmod {name}"))?;
        // Like ostree: directories the checkout created get mtime 0, so
        // checkouts are reproducible; directories that were already there
        // and force-copy checkouts keep the time they were written.
        if !created || self.opts.force_copy {
            return Ok(());
        }
        crate::fsutil::zero_mtime(&fd).ctx(|| format!("setting mtime of {name}"))?;
        Ok(())
    }

    fn file(&self, dir: BorrowedFd<'_>, name: &str, csum: &Checksum) -> Result<()> {
        let n = self.files.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_multiple_of(256) {
            (self.progress)(n);
        }
        if self.opts.passthrough_whiteouts {
            if let Some(target) = name.strip_prefix(WHITEOUT_FILE_PREFIX) {
                return self.whiteout(dir, name, target, csum);
            }
        }
        if self.opts.overwrite == Overwrite::AddFiles
            && fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).is_ok()
        {
            return Ok(());
        }
        if self.opts.overwrite == Overwrite::UnionIdentical {
            if let Ok(st) = fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
                if self.identical(dir, name, &st, csum)? {
                    return Ok(());
                }
                return Err(RepoError::Invalid(format!(
                    "checking out {name}: File exists (and differs from the commit's)"
                )));
            }
        }
        if self.hardlink
            && self.repo.mode() != RepoMode::Archive
            && self.link_fast(dir, name, csum)?
        {
            return Ok(());
        }
        let stored = self.repo.open_file(csum)?;
        let h = stored.header.clone();
        // What may share an inode with the repository (ostree's rules):
        // - never empty files: they are the ones written in place later
        //   (/etc/machine-id), which would change the object;
        // - in user mode, never a file without owner read permission (it is
        //   checked out 0400 instead);
        // - symlinks only where the repo stores them as symlinks.
        let linkable = match (h.is_regular(), self.repo.mode()) {
            (true, _) => stored.size > 0 && (!self.opts.user_mode || h.mode & 0o400 != 0),
            (false, RepoMode::Bare | RepoMode::BareUserOnly) => true,
            (false, _) => false,
        };
        let linkable = linkable && !(self.repo.mode() == RepoMode::Archive && self.opts.no_cache);
        if self.hardlink && linkable {
            let (src_dir, src_name, stored) = if self.repo.mode() == RepoMode::Archive {
                let (cache, name) = self.cached(csum, stored)?;
                (cache, name, None)
            } else {
                let obj = loose_path(csum, ObjectType::File, self.repo.mode());
                (self.repo.objects_dir(), obj, Some(stored))
            };
            match self.place(dir, name, |tmp| {
                fs::linkat(src_dir, &src_name, dir, tmp, AtFlags::empty())
            }) {
                Ok(()) => {
                    self.linked.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                // Too many links or another filesystem, or the object is
                // a parent repository's: fall back to a copy.
                Err(Errno::MLINK) | Err(Errno::XDEV) | Err(Errno::NOENT) => {
                    let stored = match stored {
                        Some(s) => s,
                        None => self.repo.open_file(csum)?,
                    };
                    return self.copy_file(dir, name, csum, stored);
                }
                Err(e) => return Err(e).ctx(|| format!("hardlinking {name}")),
            }
        }
        if h.is_symlink() {
            self.place(dir, name, |tmp| {
                fs::symlinkat(h.symlink_target.as_str(), dir, tmp)
            })
            .ctx(|| format!("creating symlink {name}"))?;
            if !self.opts.user_mode {
                fs::chownat(
                    dir,
                    name,
                    Some(uid(h.uid)),
                    Some(gid(h.gid)),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .ctx(|| format!("chown {name}"))?;
                fsutil::set_link_xattrs(&fsutil::proc_path(dir, name), &h.xattrs)
                    .ctx(|| format!("setting xattrs on {name}"))?;
            }
            return Ok(());
        }
        self.copy_file(dir, name, csum, stored)
    }

    /// The common case of a hardlink checkout from a bare repo, decided
    /// from a stat (plus `user.ostreemeta` in bare-user) instead of opening
    /// the object: true when the entry was linked. Anything unusual (and
    /// any error) is left to the full path, which reports it.
    fn link_fast(&self, dir: BorrowedFd<'_>, name: &str, csum: &Checksum) -> Result<bool> {
        let mode = self.repo.mode();
        let obj = loose_path(csum, ObjectType::File, mode);
        let objects = self.repo.objects_dir();
        let Ok(st) = fs::statat(objects, &obj, AtFlags::SYMLINK_NOFOLLOW) else {
            return Ok(false);
        };
        let linkable = match (mode, fs::FileType::from_raw_mode(st.st_mode)) {
            (RepoMode::Bare | RepoMode::BareUserOnly, fs::FileType::Symlink) => true,
            (RepoMode::Bare, fs::FileType::RegularFile) => st.st_size > 0,
            (RepoMode::BareUserOnly, fs::FileType::RegularFile) => {
                st.st_size > 0 && st.st_mode & 0o400 != 0
            }
            (RepoMode::BareUser, fs::FileType::RegularFile) if st.st_size > 0 => {
                // The real mode (and file type) is in user.ostreemeta.
                let path = fsutil::proc_path(objects, &obj);
                match fsutil::get_link_xattr(&path, c"user.ostreemeta") {
                    Ok(Some(meta)) => {
                        oxtree_object::file::decode_bare_user_meta(&meta, || Ok(Vec::new()))
                            .map(|h| h.is_regular() && h.mode & 0o400 != 0)
                            .unwrap_or(false)
                    }
                    _ => false,
                }
            }
            _ => false,
        };
        if !linkable {
            return Ok(false);
        }
        match self.place(dir, name, |tmp| {
            fs::linkat(objects, &obj, dir, tmp, AtFlags::empty())
        }) {
            Ok(()) => {
                self.linked.fetch_add(1, Ordering::Relaxed);
                Ok(true)
            }
            Err(Errno::MLINK) | Err(Errno::XDEV) => Ok(false),
            Err(e) => Err(e).ctx(|| format!("hardlinking {name}")),
        }
    }

    /// Permission bits a checked-out file gets: in user mode setuid and
    /// setgid are dropped and the owner can always read it.
    fn perms(&self, h: &FileHeader) -> u32 {
        if self.opts.user_mode {
            (h.mode & 0o7777 & !0o6000) | 0o400
        } else {
            h.mode & 0o7777
        }
    }

    /// The uncompressed copy of an archive object in
    /// `uncompressed-objects-cache/XX/REST.file`, written (verified) on first
    /// use; returns the cache directory and the entry's name in it.
    fn cached(
        &self,
        csum: &Checksum,
        stored: crate::objects::StoredFile,
    ) -> Result<(BorrowedFd<'_>, String)> {
        let cache = self
            .cache
            .get_or_init(|| {
                fsutil::ensure_dir_at(self.repo.dir(), "uncompressed-objects-cache", 0o755)
                    .and_then(|_| {
                        fsutil::open_dir_at(self.repo.dir(), "uncompressed-objects-cache")
                    })
                    .map_err(|e| format!("opening uncompressed-objects-cache: {e}"))
            })
            .as_ref()
            .map_err(|e| RepoError::Invalid(e.clone()))?;
        let hex = csum.to_hex();
        let name = format!("{}/{}.file", &hex[..2], &hex[2..]);
        if fs::statat(cache, &name, AtFlags::SYMLINK_NOFOLLOW).is_ok() {
            return Ok((cache.as_fd(), name));
        }
        fsutil::ensure_dir_at(cache, &hex[..2], 0o755).ctx(|| "creating cache subdir")?;
        let sub = fsutil::open_dir_at(cache, &hex[..2]).ctx(|| "opening cache subdir")?;
        let tmp = self.write_verified(sub.as_fd(), &name, csum, stored)?;
        // Identical content from a concurrent writer is fine to replace.
        if let Err(e) = fs::renameat(&sub, &tmp, &sub, &name[3..]) {
            let _ = fs::unlinkat(&sub, &tmp, AtFlags::empty());
            return Err(e).ctx(|| format!("caching {name}"));
        }
        Ok((cache.as_fd(), name))
    }

    /// `--union-identical`: is the existing entry `name` (stat `st`) the
    /// file object `csum`? The same inode as the stored object, the same
    /// symlink target, or else the same checksum, computed as ostree does
    /// for this repository's mode.
    fn identical(
        &self,
        dir: BorrowedFd<'_>,
        name: &str,
        st: &fs::Stat,
        csum: &Checksum,
    ) -> Result<bool> {
        let mode = self.repo.mode();
        if mode != RepoMode::Archive {
            let obj = loose_path(csum, ObjectType::File, mode);
            if let Ok(o) = fs::statat(self.repo.objects_dir(), &obj, AtFlags::SYMLINK_NOFOLLOW) {
                if (o.st_dev, o.st_ino) == (st.st_dev, st.st_ino) {
                    return Ok(true);
                }
            }
        }
        let stored = self.repo.open_file(csum)?.header;
        let ftype = fs::FileType::from_raw_mode(st.st_mode);
        if stored.is_symlink() {
            if ftype != fs::FileType::Symlink {
                return Ok(false);
            }
            let t = fs::readlinkat(dir, name, Vec::new()).ctx(|| format!("reading link {name}"))?;
            return Ok(t.to_bytes() == stored.symlink_target.as_bytes());
        }
        if ftype != fs::FileType::RegularFile {
            return Ok(false);
        }
        let f = fs::openat(
            dir,
            name,
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
        )
        .ctx(|| format!("opening {name}"))?;
        let user_only = mode == RepoMode::BareUserOnly;
        let xattrs = if user_only {
            oxtree_object::Xattrs::new()
        } else {
            fsutil::fd_xattrs(&f).ctx(|| format!("reading xattrs of {name}"))?
        };
        let h = if user_only {
            FileHeader::regular(0, 0, st.st_mode & 0o755, xattrs)
        } else {
            FileHeader::regular(st.st_uid, st.st_gid, st.st_mode & 0o7777, xattrs)
        };
        let mut hasher = h.hasher();
        std::io::copy(&mut std::fs::File::from(f), &mut hasher)
            .ctx(|| format!("reading {name}"))?;
        Ok(hasher.finish() == *csum)
    }

    /// An overlayfs whiteout `target` from the carrier file `name`.
    fn whiteout(
        &self,
        dir: BorrowedFd<'_>,
        name: &str,
        target: &str,
        csum: &Checksum,
    ) -> Result<()> {
        if target.is_empty() {
            return Err(RepoError::Invalid(format!(
                "Invalid empty overlayfs whiteout '{name}'"
            )));
        }
        let h = self.repo.open_file(csum)?.header;
        if !h.is_regular() {
            return Err(RepoError::Invalid(format!(
                "overlayfs whiteout '{name}' is not a regular file"
            )));
        }
        if self.opts.overwrite == Overwrite::AddFiles
            && fs::statat(dir, target, AtFlags::SYMLINK_NOFOLLOW).is_ok()
        {
            return Ok(());
        }
        let mode = Mode::from_raw_mode(h.mode & 0o7777);
        self.place(dir, target, |tmp| {
            fs::mknodat(dir, tmp, fs::FileType::CharacterDevice, mode, 0)
        })
        .ctx(|| format!("creating whiteout device {target}"))?;
        if !self.opts.user_mode {
            fs::chownat(
                dir,
                target,
                Some(uid(h.uid)),
                Some(gid(h.gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .ctx(|| format!("chown {target}"))?;
            fsutil::set_link_xattrs(&fsutil::proc_path(dir, target), &h.xattrs)
                .ctx(|| format!("setting xattrs on {target}"))?;
        }
        // mknod applies the umask.
        fs::chmodat(dir, target, mode, AtFlags::empty()).ctx(|| format!("chmod {target}"))?;
        Ok(())
    }

    /// Create an entry via `make(temp name)`, then move it into place:
    /// directly when nothing may be replaced, else by an atomic rename.
    fn place(
        &self,
        dir: BorrowedFd<'_>,
        name: &str,
        make: impl Fn(&str) -> rustix::io::Result<()>,
    ) -> rustix::io::Result<()> {
        if self.opts.overwrite != Overwrite::UnionFiles {
            return make(name);
        }
        let tmp = fsutil::temp_name(".oxtree-co-");
        make(&tmp)?;
        if let Err(e) = fs::renameat(dir, &tmp, dir, name) {
            let _ = fs::unlinkat(dir, &tmp, AtFlags::empty());
            return Err(e);
        }
        // A rename between two links of one inode does nothing and
        // succeeds (rename(2)): the temp name would stay behind.
        match fs::unlinkat(dir, &tmp, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn copy_file(
        &self,
        dir: BorrowedFd<'_>,
        name: &str,
        csum: &Checksum,
        stored: crate::objects::StoredFile,
    ) -> Result<()> {
        let tmp = self.write_verified(dir, name, csum, stored)?;
        let r = if self.opts.overwrite == Overwrite::UnionFiles {
            fs::renameat(dir, &tmp, dir, name)
        } else {
            // No-replace rename: an existing entry is an error.
            fs::renameat_with(dir, &tmp, dir, name, fs::RenameFlags::NOREPLACE)
        };
        if let Err(e) = r {
            let _ = fs::unlinkat(dir, &tmp, AtFlags::empty());
            return Err(e).ctx(|| format!("creating {name}"));
        }
        Ok(())
    }

    /// Write a file object's content to a new temp file in `dir`, checking
    /// size and checksum on the way, then set owner, xattrs and mode.
    /// Returns the temp name; on error nothing is left behind.
    fn write_verified(
        &self,
        dir: BorrowedFd<'_>,
        name: &str,
        csum: &Checksum,
        mut stored: crate::objects::StoredFile,
    ) -> Result<String> {
        let h: FileHeader = stored.header.clone();
        let tmp = fsutil::temp_name(".oxtree-co-");
        let fd: OwnedFd = fs::openat(
            dir,
            &tmp,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .ctx(|| format!("creating {name}"))?;
        let result = (|| -> Result<()> {
            let mut f = std::fs::File::from(fd.try_clone().ctx(|| "dup")?);
            let mut hasher = h.hasher();
            let mut buf = vec![0u8; 128 << 10];
            let mut total = 0u64;
            loop {
                let k = match stored.content.read(&mut buf) {
                    Ok(k) => k,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        return Err(RepoError::BadObject {
                            checksum: *csum,
                            kind: ObjectType::File,
                            reason: e.to_string(),
                        })
                    }
                };
                if k == 0 {
                    break;
                }
                total += k as u64;
                if total > stored.size {
                    break;
                }
                hasher.update(&buf[..k]);
                f.write_all(&buf[..k]).ctx(|| format!("writing {name}"))?;
            }
            let actual = hasher.finish();
            if total != stored.size || actual != *csum {
                return Err(RepoError::BadObject {
                    checksum: *csum,
                    kind: ObjectType::File,
                    reason: format!(
                        "corrupt object: content hashes to {actual} ({total} of {} bytes)",
                        stored.size
                    ),
                });
            }
            if !self.opts.user_mode {
                fs::fchown(&fd, Some(uid(h.uid)), Some(gid(h.gid)))
                    .ctx(|| format!("chown {name}"))?;
                fsutil::set_fd_xattrs(&fd, &h.xattrs)
                    .ctx(|| format!("setting xattrs on {name}"))?;
            }
            fs::fchmod(&fd, Mode::from_raw_mode(self.perms(&h))).ctx(|| format!("chmod {name}"))?;
            Ok(())
        })();
        match result {
            Ok(()) => Ok(tmp),
            Err(e) => {
                let _ = fs::unlinkat(dir, &tmp, AtFlags::empty());
                Err(e)
            }
        }
    }
}

use std::io::Read;

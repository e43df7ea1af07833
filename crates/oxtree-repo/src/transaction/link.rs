//! Objects staged as hard links to another repository's copies (as
//! ostree's pull-local does on one filesystem), checked against their
//! names unless the source is trusted.

use super::Transaction;
use crate::error::{IoContext, RepoError, Result};
use crate::mode::RepoMode;
use crate::objects::loose_path;
use crate::Repo;
use oxtree_object::{Checksum, ObjectType};
use rustix::fd::AsFd;
use rustix::fs::{self, AtFlags};

impl Transaction<'_> {
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

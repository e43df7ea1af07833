//! What an object file carries besides its bytes, per repository mode:
//! owner, permission bits, xattrs (or bare-user's `user.ostreemeta`) and
//! mtime 0, with the chown/chmod skipped when creation already gave them.

use super::Transaction;
use crate::error::{IoContext, RepoError, Result};
use crate::fsutil;
use crate::mode::RepoMode;
use oxtree_object::file::encode_bare_user_meta;
use oxtree_object::FileHeader;
use rustix::fd::AsFd;
use rustix::fs::{self, Mode};

/// What a file created in staging gets without being asked: its owner
/// (the fs uid/gid, a setgid directory, squashing) and the umask. With
/// them known, `fchown`/`fchmod` are skipped when they would change
/// nothing: two of the ten or so syscalls a pulled object costs.
#[derive(Clone, Copy, Debug)]
pub(super) struct CreateDefaults {
    pub(super) uid: u32,
    pub(super) gid: u32,
    pub(super) umask: u32,
}

impl Transaction<'_> {
    /// The permission bits an object file of this repo's mode must end
    /// with (None: it keeps the 0644 it is created with).
    pub(super) fn object_perm(&self, h: &FileHeader) -> Option<u32> {
        match self.repo.mode() {
            RepoMode::Bare | RepoMode::BareUserOnly => Some(h.mode & 0o7777),
            RepoMode::BareUser => h.is_regular().then_some((h.mode & 0o775) | 0o400),
            RepoMode::Archive => None,
        }
    }

    /// False when a file created in staging already has `h`'s owner.
    pub(super) fn needs_chown(&self, h: &FileHeader) -> bool {
        match self.defaults.get() {
            Some(d) => d.uid != h.uid || d.gid != h.gid,
            None => true,
        }
    }

    /// Owner, mode, xattrs and mtime of a regular object file, per mode;
    /// `chmod: false` when it was created with its final permissions.
    pub(super) fn apply_file_meta(&self, fd: impl AsFd, h: &FileHeader, chmod: bool) -> Result<()> {
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
        crate::fsutil::zero_mtime(fd).ctx(|| "setting object mtime")?;
        Ok(())
    }
}

pub(crate) fn uid(u: u32) -> fs::Uid {
    fs::Uid::from_raw(u)
}
pub(crate) fn gid(g: u32) -> fs::Gid {
    fs::Gid::from_raw(g)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::loose_path;
    use crate::transaction::no_xattrs;
    use crate::Repo;
    use oxtree_object::ObjectType;
    use std::os::unix::fs::MetadataExt;

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

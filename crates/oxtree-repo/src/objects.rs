//! Loose objects: where each object lives (`objects/XX/REST.EXT`) and how
//! each repository mode stores a file's owner, mode and xattrs, read side.

use crate::error::{IoContext, RepoError, Result};
use crate::fsutil;
use crate::mode::RepoMode;
use crate::Repo;
use oxtree_object::file::{decode_bare_user_meta, inflate_reader, split_size_prefix};
use oxtree_object::{
    ArchiveHeader, Checksum, Commit, DirMeta, DirTree, FileHeader, Metadata, ObjectType, Xattrs,
};
use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{self, AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use std::io::Read;

/// `objects/` relative path of a loose object.
pub fn loose_path(csum: &Checksum, kind: ObjectType, mode: RepoMode) -> String {
    let hex = csum.to_hex();
    format!(
        "{}/{}.{}",
        &hex[..2],
        &hex[2..],
        kind.extension(mode.is_archive())
    )
}

/// A file object opened for reading: its header and a stream of its content
/// (empty for symlinks).
pub struct StoredFile {
    pub header: FileHeader,
    pub size: u64,
    pub content: Box<dyn Read + Send>,
    /// For bare modes, the object file itself (lets checkout hardlink or
    /// reflink instead of copying).
    pub fd: Option<OwnedFd>,
}

impl std::fmt::Debug for StoredFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredFile")
            .field("header", &self.header)
            .field("size", &self.size)
            .field("fd", &self.fd)
            .finish_non_exhaustive()
    }
}

impl StoredFile {
    pub fn read_all(mut self) -> std::io::Result<(FileHeader, Vec<u8>)> {
        let mut v = Vec::with_capacity(self.size.min(1 << 26) as usize);
        (&mut self.content)
            .take(self.size + 1)
            .read_to_end(&mut v)?;
        if v.len() as u64 != self.size {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("content is {} bytes, expected {}", v.len(), self.size),
            ));
        }
        Ok((self.header, v))
    }
}

impl Repo {
    /// (st_dev, st_ino) of every loose file object with other links, to
    /// recognise files hardlinked from the repository (ostree's devino
    /// cache for `--link-checkout-speedup`). Bare modes only: an archive's
    /// objects are compressed.
    pub fn devino_index(&self) -> Result<std::collections::HashMap<(u64, u64), Checksum>> {
        let mut out = std::collections::HashMap::new();
        if self.mode() == RepoMode::Archive {
            return Ok(out);
        }
        for (c, k) in self.list_objects()? {
            if k != ObjectType::File {
                continue;
            }
            let p = loose_path(&c, k, self.mode());
            if let Ok(st) = fs::statat(self.objects_dir(), &p, AtFlags::SYMLINK_NOFOLLOW) {
                if st.st_nlink > 1 {
                    out.insert((st.st_dev, st.st_ino), c);
                }
            }
        }
        Ok(out)
    }

    pub fn has_object(&self, kind: ObjectType, csum: &Checksum) -> Result<bool> {
        let p = loose_path(csum, kind, self.mode());
        match fs::statat(self.objects_dir(), &p, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(_) => Ok(true),
            Err(Errno::NOENT) => match self.parent() {
                Some(parent) => parent.has_object(kind, csum),
                None => Ok(false),
            },
            Err(e) => Err(e).ctx(|| format!("checking object {p}")),
        }
    }

    /// Raw bytes of a metadata object (not verified against its name).
    pub fn load_meta_bytes(&self, kind: ObjectType, csum: &Checksum) -> Result<Vec<u8>> {
        let p = loose_path(csum, kind, self.mode());
        match fsutil::read_at(self.objects_dir(), &p) {
            Ok(v) => Ok(v),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match self.parent() {
                Some(parent) => parent.load_meta_bytes(kind, csum),
                None => Err(RepoError::MissingObject {
                    checksum: *csum,
                    kind,
                }),
            },
            Err(e) => Err(e).ctx(|| format!("reading object {p}")),
        }
    }

    fn bad(csum: &Checksum, kind: ObjectType, e: impl std::fmt::Display) -> RepoError {
        RepoError::BadObject {
            checksum: *csum,
            kind,
            reason: e.to_string(),
        }
    }

    /// Bytes of a metadata object named by its own checksum, verified: a
    /// corrupt commit, dirtree or dirmeta is never used as if it were good.
    fn load_verified(&self, kind: ObjectType, csum: &Checksum) -> Result<Vec<u8>> {
        let b = self.load_meta_bytes(kind, csum)?;
        let actual = Checksum::of(&b);
        if actual != *csum {
            return Err(Self::bad(
                csum,
                kind,
                crate::fsck::checksum_mismatch(kind, csum, &actual),
            ));
        }
        Ok(b)
    }

    pub fn load_commit(&self, csum: &Checksum) -> Result<Commit> {
        let b = self.load_verified(ObjectType::Commit, csum)?;
        Commit::decode(&b).map_err(|e| Self::bad(csum, ObjectType::Commit, e))
    }

    pub fn load_dirtree(&self, csum: &Checksum) -> Result<DirTree> {
        let b = self.load_verified(ObjectType::DirTree, csum)?;
        DirTree::decode(&b).map_err(|e| Self::bad(csum, ObjectType::DirTree, e))
    }

    pub fn load_dirmeta(&self, csum: &Checksum) -> Result<DirMeta> {
        let b = self.load_verified(ObjectType::DirMeta, csum)?;
        DirMeta::decode(&b).map_err(|e| Self::bad(csum, ObjectType::DirMeta, e))
    }

    /// The detached metadata of a commit, if it has any.
    pub fn load_commitmeta(&self, csum: &Checksum) -> Result<Option<Metadata>> {
        match self.load_meta_bytes(ObjectType::CommitMeta, csum) {
            Ok(b) => Ok(Some(
                Metadata::decode(&b).map_err(|e| Self::bad(csum, ObjectType::CommitMeta, e))?,
            )),
            Err(RepoError::MissingObject { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Open a file object: its header, as this repo's mode records it, and
    /// its content.
    pub fn open_file(&self, csum: &Checksum) -> Result<StoredFile> {
        let p = loose_path(csum, ObjectType::File, self.mode());
        match (
            self.open_file_in(self.objects_dir(), &p, csum),
            self.parent(),
        ) {
            (Err(RepoError::MissingObject { .. }), Some(parent)) => parent.open_file(csum),
            (r, _) => r,
        }
    }

    /// [`Repo::open_file`] for a file object stored, in this repository's
    /// mode, at `p` below `objects` (a staging directory, say).
    pub(crate) fn open_file_in(
        &self,
        objects: rustix::fd::BorrowedFd<'_>,
        p: &str,
        csum: &Checksum,
    ) -> Result<StoredFile> {
        let kind = ObjectType::File;
        let st = match fs::statat(objects, p, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => {
                return Err(RepoError::MissingObject {
                    checksum: *csum,
                    kind,
                })
            }
            Err(e) => return Err(e).ctx(|| format!("reading object {p}")),
        };
        let ftype = FileType::from_raw_mode(st.st_mode);
        let open = || {
            fs::openat(
                objects,
                p,
                OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                Mode::empty(),
            )
            .ctx(|| format!("opening object {p}"))
        };
        let empty = || Box::new(std::io::empty()) as Box<dyn Read + Send>;
        match (self.mode(), ftype) {
            (RepoMode::Bare | RepoMode::BareUserOnly, FileType::Symlink) => {
                let target =
                    fs::readlinkat(objects, p, Vec::new()).ctx(|| format!("reading link {p}"))?;
                let target = target
                    .into_string()
                    .map_err(|_| Self::bad(csum, kind, "symlink target is not UTF-8"))?;
                let (uid, gid, xattrs) = if self.mode() == RepoMode::Bare {
                    let x = fsutil::link_xattrs(&fsutil::proc_path(objects, p))
                        .ctx(|| format!("reading xattrs of {p}"))?;
                    (st.st_uid, st.st_gid, x)
                } else {
                    (0, 0, Xattrs::new())
                };
                Ok(StoredFile {
                    header: FileHeader::symlink(uid, gid, target, xattrs),
                    size: 0,
                    content: empty(),
                    fd: None,
                })
            }
            (RepoMode::Bare, FileType::RegularFile) => {
                let fd = open()?;
                let xattrs = fsutil::fd_xattrs(&fd).ctx(|| format!("reading xattrs of {p}"))?;
                let header = FileHeader::regular(st.st_uid, st.st_gid, st.st_mode, xattrs);
                Ok(self.stored_plain(header, st.st_size as u64, fd)?)
            }
            (RepoMode::BareUserOnly, FileType::RegularFile) => {
                let fd = open()?;
                let header = FileHeader::regular(0, 0, st.st_mode, Xattrs::new());
                Ok(self.stored_plain(header, st.st_size as u64, fd)?)
            }
            (RepoMode::BareUser, FileType::RegularFile) => {
                let fd = open()?;
                let meta = fsutil::get_fd_xattr(&fd, c"user.ostreemeta")
                    .ctx(|| format!("reading user.ostreemeta of {p}"))?
                    .ok_or_else(|| {
                        Self::bad(csum, kind, "bare-user object without user.ostreemeta")
                    })?;
                let header = decode_bare_user_meta(&meta, || {
                    fsutil::read_all(fd.as_fd())
                        .map_err(|e| oxtree_object::ObjectError::malformed("bare-user symlink", e))
                })
                .map_err(|e| Self::bad(csum, kind, e))?;
                if header.is_symlink() {
                    return Ok(StoredFile {
                        header,
                        size: 0,
                        content: empty(),
                        fd: None,
                    });
                }
                Ok(self.stored_plain(header, st.st_size as u64, fd)?)
            }
            (RepoMode::Archive, FileType::RegularFile) => {
                let fd = open()?;
                let mut f = std::fs::File::from(fd);
                let mut prefix = [0u8; 8];
                f.read_exact(&mut prefix)
                    .map_err(|e| Self::bad(csum, kind, format!("short header: {e}")))?;
                let len = u32::from_be_bytes(prefix[..4].try_into().unwrap()) as usize;
                if len > oxtree_object::file::MAX_HEADER_SIZE || len as u64 + 8 > st.st_size as u64
                {
                    return Err(Self::bad(
                        csum,
                        kind,
                        format!("header size {len} exceeds the object"),
                    ));
                }
                let mut head = prefix.to_vec();
                head.resize(8 + len, 0);
                f.read_exact(&mut head[8..])
                    .map_err(|e| Self::bad(csum, kind, e))?;
                split_size_prefix(&head).map_err(|e| Self::bad(csum, kind, e))?;
                let (ah, _) = ArchiveHeader::decode(&head).map_err(|e| Self::bad(csum, kind, e))?;
                let size = ah.size;
                let content: Box<dyn Read + Send> = if ah.file.is_symlink() {
                    empty()
                } else {
                    Box::new(inflate_reader(std::io::BufReader::with_capacity(
                        128 << 10,
                        f,
                    )))
                };
                Ok(StoredFile {
                    header: ah.file,
                    size,
                    content,
                    fd: None,
                })
            }
            (_, other) => Err(Self::bad(
                csum,
                kind,
                format!(
                    "unexpected file type {other:?} in a {} repo",
                    self.mode().config_name()
                ),
            )),
        }
    }

    fn stored_plain(&self, header: FileHeader, size: u64, fd: OwnedFd) -> Result<StoredFile> {
        let f = std::fs::File::from(fd.try_clone().ctx(|| "duplicating fd")?);
        Ok(StoredFile {
            header,
            size,
            content: Box::new(f),
            fd: Some(fd),
        })
    }

    /// Every loose object in the repository.
    pub fn list_objects(&self) -> Result<Vec<(Checksum, ObjectType)>> {
        let mut out = Vec::new();
        for (dir, t) in fsutil::list_dir(self.objects_dir()).ctx(|| "listing objects/")? {
            if t != FileType::Directory || dir.len() != 2 {
                continue;
            }
            let dfd = fsutil::open_dir_at(self.objects_dir(), &dir)
                .ctx(|| format!("opening objects/{dir}"))?;
            for (name, _) in fsutil::list_dir(&dfd).ctx(|| format!("listing objects/{dir}"))? {
                let Some((rest, ext)) = name.split_once('.') else {
                    continue;
                };
                let Some(kind) = ObjectType::from_extension(ext) else {
                    continue;
                };
                if kind == ObjectType::File && (ext == "filez") != self.mode().is_archive() {
                    continue;
                }
                if let Ok(c) = Checksum::from_hex(&format!("{dir}{rest}")) {
                    out.push((c, kind));
                }
            }
        }
        Ok(out)
    }

    /// Remove a loose object (fsck --delete, prune).
    pub fn delete_object(&self, kind: ObjectType, csum: &Checksum) -> Result<()> {
        let p = loose_path(csum, kind, self.mode());
        match fs::unlinkat(self.objects_dir(), &p, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(e).ctx(|| format!("deleting object {p}")),
        }
    }
}

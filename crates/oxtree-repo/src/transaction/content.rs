//! File objects: content hashed and written in one pass in the form the
//! repository's mode stores (compressed for archive), checked against an
//! expected checksum, adopted in place (`commit --consume`), or stored
//! as fetched (`--http-trusted`).

use super::filemeta::CreateDefaults;
use super::space::{start_writeback, EARLY_WRITEBACK_BYTES};
use super::staging::staged_name;
use super::{gid, uid, Transaction, Written};
use crate::error::{IoContext, RepoError, Result};
use crate::fsutil;
use crate::mode::RepoMode;
use flate2::{Compress, Compression, FlushCompress, Status};
use oxtree_object::file::ARCHIVE_ZLIB_LEVEL;
use oxtree_object::{ArchiveHeader, Checksum, FileHeader, ObjectType};
use rustix::fd::BorrowedFd;
use rustix::fs::{self, AtFlags, Mode, OFlags};
use std::io::{Read, Write};

impl Transaction<'_> {
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

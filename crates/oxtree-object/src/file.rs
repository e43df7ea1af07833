//! File objects: the header that, with the content, makes a file's checksum,
//! and the `archive` (`.filez`) encoding: size-prefixed header followed by
//! raw-deflate content.
//!
//! Checksum input: BE u32 header length, 4 NUL bytes, header variant
//! `(uuuusa(ayay))` (uid, gid, mode, rdev, symlink target, xattrs), then the
//! content bytes for regular files.

use crate::checksum::{Checksum, Hasher};
use crate::error::{ObjectError, Result};
use crate::gvariant::{be32, be64, decode, encode, from_be32, from_be64};
use crate::mode;
use crate::xattrs::Xattrs;
use std::io::{Read, Write};

/// zlib level ostree uses for archive objects.
pub const ARCHIVE_ZLIB_LEVEL: u32 = 6;

/// Upper bound on a header we will parse from untrusted bytes.
pub const MAX_HEADER_SIZE: usize = 16 << 20;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FileHeader {
    pub uid: u32,
    pub gid: u32,
    /// Full mode: S_IFREG or S_IFLNK plus permission bits.
    pub mode: u32,
    pub rdev: u32,
    /// Empty for regular files.
    pub symlink_target: String,
    pub xattrs: Xattrs,
}

type Wire = (u32, u32, u32, u32, String, Vec<(Vec<u8>, Vec<u8>)>);
/// `user.ostreemeta`: uid, gid, mode, xattrs.
type BareUserWire = (u32, u32, u32, Vec<(Vec<u8>, Vec<u8>)>);
type ArchiveWire = (u64, u32, u32, u32, u32, String, Vec<(Vec<u8>, Vec<u8>)>);

impl FileHeader {
    pub fn regular(uid: u32, gid: u32, perms: u32, xattrs: Xattrs) -> Self {
        FileHeader {
            uid,
            gid,
            mode: mode::S_IFREG | (perms & mode::PERMS),
            rdev: 0,
            symlink_target: String::new(),
            xattrs,
        }
    }

    pub fn symlink(uid: u32, gid: u32, target: String, xattrs: Xattrs) -> Self {
        FileHeader {
            uid,
            gid,
            mode: mode::S_IFLNK | 0o777,
            rdev: 0,
            symlink_target: target,
            xattrs,
        }
    }

    pub fn is_symlink(&self) -> bool {
        mode::is_lnk(self.mode)
    }

    pub fn is_regular(&self) -> bool {
        mode::is_reg(self.mode)
    }

    fn wire(&self) -> Wire {
        (
            be32(self.uid),
            be32(self.gid),
            be32(self.mode),
            be32(self.rdev),
            self.symlink_target.clone(),
            self.xattrs.wire().clone(),
        )
    }

    /// The header variant alone.
    pub fn encode(&self) -> Vec<u8> {
        encode(&self.wire())
    }

    /// A hasher primed with the length-prefixed header; feed it the content
    /// (regular files) and finish to get the object checksum.
    pub fn hasher(&self) -> Hasher {
        let mut h = Hasher::new();
        h.update(&with_size_prefix(&self.encode()));
        h
    }

    pub fn checksum(&self, content: &[u8]) -> Checksum {
        let mut h = self.hasher();
        h.update(content);
        h.finish()
    }

    /// Reject headers no ostree would write: wrong file type, stray mode
    /// bits, device numbers, a symlink without target or a file with one.
    pub fn validate(&self) -> Result<()> {
        let bad = |r: String| Err(ObjectError::malformed("file header", r));
        if self.mode & !(mode::S_IFMT | mode::PERMS) != 0 {
            return bad(format!("invalid mode 0{:o}", self.mode));
        }
        if self.rdev != 0 {
            return bad(format!("nonzero rdev {}", self.rdev));
        }
        if self.is_symlink() {
            if self.symlink_target.is_empty() || self.symlink_target.contains('\0') {
                return bad("symlink with an empty or NUL-containing target".into());
            }
        } else if self.is_regular() {
            if !self.symlink_target.is_empty() {
                return bad("regular file with a symlink target".into());
            }
        } else {
            return bad(format!("unsupported file type in mode 0{:o}", self.mode));
        }
        Ok(())
    }

    /// Parse a size-prefixed header as found at the start of a `.file`
    /// stream (the format `ostree cat`-style content streams use).
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let (uid, gid, m, rdev, target, x): Wire = decode("file header", bytes)?;
        let h = FileHeader {
            uid: from_be32(uid),
            gid: from_be32(gid),
            mode: from_be32(m),
            rdev: from_be32(rdev),
            symlink_target: target,
            xattrs: Xattrs::from_wire(x)?,
        };
        h.validate()?;
        Ok(h)
    }
}

/// The header of an archive-mode (`.filez`) object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveHeader {
    /// Uncompressed content size.
    pub size: u64,
    pub file: FileHeader,
}

impl ArchiveHeader {
    /// Size-prefixed header bytes; the deflate stream follows them.
    pub fn encode(&self) -> Vec<u8> {
        let f = &self.file;
        let w: ArchiveWire = (
            be64(self.size),
            be32(f.uid),
            be32(f.gid),
            be32(f.mode),
            be32(f.rdev),
            f.symlink_target.clone(),
            f.xattrs.wire().clone(),
        );
        with_size_prefix(&encode(&w))
    }

    /// Parse the start of a `.filez` object. Returns the header and the
    /// offset at which the compressed content starts.
    pub fn decode(bytes: &[u8]) -> Result<(Self, usize)> {
        let (len, start) = split_size_prefix(bytes)?;
        let (size, uid, gid, m, rdev, target, x): ArchiveWire =
            decode("archive header", &bytes[start..start + len])?;
        let file = FileHeader {
            uid: from_be32(uid),
            gid: from_be32(gid),
            mode: from_be32(m),
            rdev: from_be32(rdev),
            symlink_target: target,
            xattrs: Xattrs::from_wire(x)?,
        };
        file.validate()?;
        let size = from_be64(size);
        if file.is_symlink() && size != 0 {
            return Err(ObjectError::malformed(
                "archive header",
                "symlink with content",
            ));
        }
        Ok((ArchiveHeader { size, file }, start + len))
    }

    /// Read a complete `.filez` object: header and inflated content, checking
    /// that the content has exactly the announced size.
    pub fn read_object(bytes: &[u8]) -> Result<(FileHeader, Vec<u8>)> {
        let (hdr, off) = Self::decode(bytes)?;
        // ostree writes no deflate stream at all for a symlink (decode has
        // checked that its size is 0).
        if hdr.file.is_symlink() {
            return Ok((hdr.file, Vec::new()));
        }
        let mut content = Vec::with_capacity(hdr.size.min(1 << 26) as usize);
        // Read one byte past the announced size to detect longer content;
        // saturating, as the size is untrusted and may be u64::MAX.
        let mut dec = inflate_reader(&bytes[off..]).take(hdr.size.saturating_add(1));
        dec.read_to_end(&mut content)
            .map_err(|e| ObjectError::Compression(e.to_string()))?;
        if content.len() as u64 != hdr.size {
            return Err(ObjectError::malformed(
                "archive object",
                format!(
                    "content is {} bytes, header says {}",
                    content.len(),
                    hdr.size
                ),
            ));
        }
        Ok((hdr.file, content))
    }

    /// Build a complete `.filez` object from a header and content.
    pub fn write_object(file: &FileHeader, content: &[u8]) -> Vec<u8> {
        let hdr = ArchiveHeader {
            size: content.len() as u64,
            file: file.clone(),
        };
        let mut out = hdr.encode();
        let mut enc = deflate_writer(&mut out);
        enc.write_all(content).expect("writing to a Vec");
        enc.finish().expect("writing to a Vec");
        out
    }
}

/// The `user.ostreemeta` xattr of bare-user objects: `(uuua(ayay))`, the
/// real owner, mode and xattrs of a file stored as a plain user file.
pub fn encode_bare_user_meta(h: &FileHeader) -> Vec<u8> {
    let w: BareUserWire = (
        be32(h.uid),
        be32(h.gid),
        be32(h.mode),
        h.xattrs.wire().clone(),
    );
    encode(&w)
}

/// Parse `user.ostreemeta`; `content` supplies the target of a symlink
/// (bare-user stores symlinks as regular files holding the target).
pub fn decode_bare_user_meta(
    bytes: &[u8],
    symlink_content: impl FnOnce() -> Result<Vec<u8>>,
) -> Result<FileHeader> {
    let (uid, gid, m, x): BareUserWire = decode("user.ostreemeta", bytes)?;
    let m = from_be32(m);
    let symlink_target = if mode::is_lnk(m) {
        // ostree writes the target with its terminating NUL.
        let mut t = symlink_content()?;
        if t.last() == Some(&0) {
            t.pop();
        }
        String::from_utf8(t)
            .map_err(|_| ObjectError::malformed("bare-user symlink", "target is not UTF-8"))?
    } else {
        String::new()
    };
    let h = FileHeader {
        uid: from_be32(uid),
        gid: from_be32(gid),
        mode: m,
        rdev: 0,
        symlink_target,
        xattrs: Xattrs::from_wire(x)?,
    };
    h.validate()?;
    Ok(h)
}

fn with_size_prefix(variant: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(variant.len() + 8);
    out.extend_from_slice(&(variant.len() as u32).to_be_bytes());
    out.extend_from_slice(&[0u8; 4]);
    out.extend_from_slice(variant);
    out
}

/// Split `BE u32 len ‖ 4 NUL ‖ header`: returns (len, header start).
pub fn split_size_prefix(bytes: &[u8]) -> Result<(usize, usize)> {
    if bytes.len() < 8 {
        return Err(ObjectError::malformed(
            "file header",
            "shorter than its size prefix",
        ));
    }
    let len = u32::from_be_bytes(bytes[0..4].try_into().unwrap()) as usize;
    if bytes[4..8] != [0, 0, 0, 0] {
        return Err(ObjectError::malformed("file header", "nonzero padding"));
    }
    if len > MAX_HEADER_SIZE || len > bytes.len() - 8 {
        return Err(ObjectError::malformed(
            "file header",
            format!("header size {len} exceeds the object"),
        ));
    }
    Ok((len, 8))
}

/// Raw-deflate compressor at ostree's level.
pub fn deflate_writer<W: Write>(w: W) -> flate2::write::DeflateEncoder<W> {
    flate2::write::DeflateEncoder::new(w, flate2::Compression::new(ARCHIVE_ZLIB_LEVEL))
}

/// Raw-deflate decompressor.
pub fn inflate_reader<R: Read>(r: R) -> flate2::read::DeflateDecoder<R> {
    flate2::read::DeflateDecoder::new(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_ostree_file_checksums() {
        // `echo hi > a` committed by ostree 2022.7 as root, mode 0644.
        let h = FileHeader::regular(0, 0, 0o644, Xattrs::new());
        assert_eq!(
            h.checksum(b"hi\n").to_hex(),
            "fbf7cf77a1b50d9f074cb6e9ef6ddb65b6532ea89e4f4ca1b07a05b4cd1be259"
        );
        let l = FileHeader::symlink(0, 0, "a".into(), Xattrs::new());
        assert_eq!(
            l.checksum(b"").to_hex(),
            "438802d990f25270d36f902bc9ce9d0737b88f9ae0b41ed59ec9e47c28523e0a"
        );
    }

    #[test]
    fn archive_round_trip_and_lies() {
        let h = FileHeader::regular(
            1,
            2,
            0o4755,
            Xattrs::from_pairs([(b"user.a".to_vec(), b"v".to_vec())]),
        );
        let content = vec![7u8; 100_000];
        let obj = ArchiveHeader::write_object(&h, &content);
        let (h2, c2) = ArchiveHeader::read_object(&obj).unwrap();
        assert_eq!((h2, c2), (h.clone(), content.clone()));
        // Truncated deflate data is an error, not a short file.
        assert!(ArchiveHeader::read_object(&obj[..obj.len() - 10]).is_err());
        // A header that lies about the size is caught.
        let mut lie = ArchiveHeader {
            size: 5,
            file: h.clone(),
        }
        .encode();
        let mut enc = deflate_writer(&mut lie);
        enc.write_all(b"0123456789").unwrap();
        enc.finish().unwrap();
        assert!(ArchiveHeader::read_object(&lie).is_err());
        // A huge announced header length is refused before allocation.
        assert!(ArchiveHeader::decode(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]).is_err());
    }

    /// Found by fuzz/fuzz_targets/archive_object.rs: an announced content size
    /// of u64::MAX overflowed `size + 1` (a panic with overflow checks on).
    #[test]
    fn archive_size_u64_max_is_an_error() {
        let mut obj = ArchiveHeader {
            size: u64::MAX,
            file: FileHeader::regular(0, 0, 0o644, Xattrs::new()),
        }
        .encode();
        let mut enc = deflate_writer(&mut obj);
        enc.write_all(b"x").unwrap();
        enc.finish().unwrap();
        assert!(ArchiveHeader::read_object(&obj).is_err());
    }

    /// ostree 2022.7 writes a symlink's `.filez` (here `link -> a`, owned by
    /// root) as the header alone, with no deflate stream after it.
    #[test]
    fn reads_ostree_archive_symlink() {
        let obj = [
            0x00, 0x00, 0x00, 0x1b, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xa1, 0xff,
            0x00, 0x00, 0x00, 0x00, 0x61, 0x00, 0x1a,
        ];
        let (h, content) = ArchiveHeader::read_object(&obj).unwrap();
        assert_eq!(h, FileHeader::symlink(0, 0, "a".into(), Xattrs::new()));
        assert!(content.is_empty());
        assert_eq!(
            h.checksum(&content).to_hex(),
            "438802d990f25270d36f902bc9ce9d0737b88f9ae0b41ed59ec9e47c28523e0a"
        );
    }
}

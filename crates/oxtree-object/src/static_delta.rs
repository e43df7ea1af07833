//! Static deltas: the superblock, part files and the opcode stream that
//! rebuilds objects, as libostree writes and reads them.
//!
//! * Names: `FROM-TO` (full hex) or `TO` for a from-scratch delta. On disk a
//!   delta lives in `deltas/XX/REST` where `XXREST` is the "modified base64"
//!   of the checksum bytes (`/` becomes `_`, no padding), with `-mb64(TO)`
//!   appended for a `FROM-TO` delta.
//! * Superblock `(a{sv}tayay<commit>aya(uayttay)a(yaytt))`: metadata
//!   (`ostree.endianness`, inline parts, detached commit metadata),
//!   timestamp (big-endian), from, to, the new commit, an unused list of
//!   parent deltas, part headers and fallback objects. The part header and
//!   fallback sizes are in the generator's byte order (`ostree.endianness`,
//!   'l' or 'B'), not big-endian like the rest of ostree.
//! * Part file `(yay)`: a compression byte (0 or 'x' for xz) and the payload
//!   `(a(uuu)aa(ayay)ayay)`: modes (big-endian), xattrs, data, opcodes.
//! * Opcodes take protobuf-style varuint64 arguments.
//!
//! Everything here parses untrusted bytes: sizes are checked before any
//! allocation and errors never panic.

use crate::checksum::Checksum;
use crate::commit::{Commit, Metadata};
use crate::error::{ObjectError, Result};
use crate::file::FileHeader;
use crate::gvariant::{be64, decode, encode, from_be64};
use crate::objtype::ObjectType;
use crate::xattrs::Xattrs;
use std::io::{Read, Write};
use std::rc::Rc;
use zvariant::{OwnedValue, Value};

/// Version of the part format (the only one ostree knows).
pub const PART_VERSION: u32 = 0;
/// Length of one (objtype, checksum) entry in a part header.
pub const OBJTYPE_CSUM_LEN: usize = 33;
/// Key of the endianness byte in the superblock metadata.
pub const KEY_ENDIANNESS: &str = "ostree.endianness";
/// Summary and delta-index key listing deltas.
pub const KEY_STATIC_DELTAS: &str = "ostree.static-deltas";
/// Magic of a signed superblock `(taya{sv})`, as a big-endian u64.
pub const SIGNED_MAGIC: &[u8; 8] = b"OSTSGNDT";
/// Largest superblock we read.
pub const MAX_SUPERBLOCK_SIZE: usize = 64 << 20;
/// Largest decompressed part payload we accept.
pub const MAX_PART_PAYLOAD: u64 = 1 << 30;
/// Largest single object a part may build.
pub const MAX_OBJECT_SIZE: u64 = 1 << 30;

fn bad(reason: impl std::fmt::Display) -> ObjectError {
    ObjectError::malformed("static delta", reason)
}

// ---------------------------------------------------------------- names

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+_";

/// "Modified base64" of a checksum: standard alphabet, `/` as `_`, no `=`.
pub fn mb64(c: &Checksum) -> String {
    let b = &c.0;
    let mut out = String::with_capacity(43);
    for chunk in b.chunks(3) {
        let n = chunk.len();
        let v = (chunk[0] as u32) << 16
            | (*chunk.get(1).unwrap_or(&0) as u32) << 8
            | *chunk.get(2).unwrap_or(&0) as u32;
        for i in 0..=n {
            out.push(B64[((v >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// Inverse of `mb64`.
pub fn from_mb64(s: &str) -> Result<Checksum> {
    let bytes = s.as_bytes();
    if bytes.len() != 43 {
        return Err(bad(format!("invalid delta path component {s:?}")));
    }
    let mut bits: u32 = 0;
    let mut nbits = 0;
    let mut out = Vec::with_capacity(32);
    for &ch in bytes {
        let v = B64
            .iter()
            .position(|&x| x == ch)
            .ok_or_else(|| bad(format!("invalid delta path component {s:?}")))?;
        bits = (bits << 6) | v as u32;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((bits >> nbits) as u8);
            bits &= (1 << nbits) - 1;
        }
    }
    Checksum::from_bytes(&out[..32])
}

/// The delta's name as `ostree static-delta list` prints it.
pub fn delta_name(from: Option<&Checksum>, to: &Checksum) -> String {
    match from {
        Some(f) => format!("{f}-{to}"),
        None => to.to_string(),
    }
}

/// Parse `FROM-TO` or `TO`.
pub fn parse_delta_name(name: &str) -> Result<(Option<Checksum>, Checksum)> {
    match name.split_once('-') {
        Some((f, t)) => Ok((Some(Checksum::from_hex(f)?), Checksum::from_hex(t)?)),
        None => Ok((None, Checksum::from_hex(name)?)),
    }
}

/// Directory of a delta relative to the repository: `deltas/XX/REST`.
pub fn delta_dir(from: Option<&Checksum>, to: &Checksum) -> String {
    match from {
        Some(f) => {
            let m = mb64(f);
            format!("deltas/{}/{}-{}", &m[..2], &m[2..], mb64(to))
        }
        None => {
            let m = mb64(to);
            format!("deltas/{}/{}", &m[..2], &m[2..])
        }
    }
}

/// Parse `XX` and `REST` of `deltas/XX/REST` back to (from, to).
pub fn parse_delta_dir(prefix: &str, rest: &str) -> Result<(Option<Checksum>, Checksum)> {
    let full = format!("{prefix}{rest}");
    match full.split_once('-') {
        Some((f, t)) => Ok((Some(from_mb64(f)?), from_mb64(t)?)),
        None => Ok((None, from_mb64(&full)?)),
    }
}

/// The delta index of a target commit: `delta-indexes/XX/REST.index`.
pub fn delta_index_path(to: &Checksum) -> String {
    let m = mb64(to);
    format!("delta-indexes/{}/{}.index", &m[..2], &m[2..])
}

// ---------------------------------------------------------------- varints

pub fn write_varuint64(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// Read a varuint64 from the front of `buf`; returns (value, bytes read).
pub fn read_varuint64(buf: &[u8]) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    for (i, &b) in buf.iter().enumerate().take(10) {
        let bits = (b & 0x7f) as u64;
        if i == 9 && bits > 1 {
            return None;
        }
        v |= bits << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

// ---------------------------------------------------------------- superblock

/// One part's entry in the superblock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartHeader {
    pub version: u32,
    /// SHA-256 of the part file (`(yay)` bytes).
    pub checksum: Checksum,
    /// Size of the part file.
    pub size: u64,
    /// Total size of the objects it builds.
    pub usize: u64,
    pub objects: Vec<(ObjectType, Checksum)>,
}

/// An object the client fetches on its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fallback {
    pub kind: ObjectType,
    pub checksum: Checksum,
    pub size: u64,
    pub usize: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Superblock {
    pub metadata: Metadata,
    pub timestamp: u64,
    pub from: Option<Checksum>,
    pub to: Checksum,
    pub commit: Commit,
    /// The embedded commit exactly as stored.
    pub commit_bytes: Vec<u8>,
    pub parts: Vec<PartHeader>,
    pub fallbacks: Vec<Fallback>,
}

type CommitWire = (
    Vec<(String, OwnedValue)>,
    Vec<u8>,
    Vec<(String, Vec<u8>)>,
    String,
    String,
    u64,
    Vec<u8>,
    Vec<u8>,
);
type PartWire = (u32, Vec<u8>, u64, u64, Vec<u8>);
type FallbackWire = (u8, Vec<u8>, u64, u64);
type SuperWire = (
    Vec<(String, OwnedValue)>,
    u64,
    Vec<u8>,
    Vec<u8>,
    CommitWire,
    Vec<u8>,
    Vec<PartWire>,
    Vec<FallbackWire>,
);

/// Parse a concatenated (objtype, checksum) array.
pub fn parse_objects(b: &[u8]) -> Result<Vec<(ObjectType, Checksum)>> {
    if !b.len().is_multiple_of(OBJTYPE_CSUM_LEN) {
        return Err(bad("object list is not a multiple of 33 bytes"));
    }
    b.chunks(OBJTYPE_CSUM_LEN)
        .map(|c| Ok((ObjectType::from_u8(c[0])?, Checksum::from_bytes(&c[1..])?)))
        .collect()
}

fn encode_objects(o: &[(ObjectType, Checksum)]) -> Vec<u8> {
    let mut v = Vec::with_capacity(o.len() * OBJTYPE_CSUM_LEN);
    for (k, c) in o {
        v.push(*k as u8);
        v.extend_from_slice(&c.0);
    }
    v
}

impl Superblock {
    /// Is the part/fallback data in big-endian order?
    pub fn big_endian(&self) -> bool {
        matches!(self.metadata.get(KEY_ENDIANNESS), Some(Value::U8(b'B')))
    }

    pub fn endianness_name(&self) -> &'static str {
        match self.metadata.get(KEY_ENDIANNESS) {
            Some(Value::U8(b'B')) => "big",
            Some(Value::U8(b'l')) => "little",
            None => "little",
            Some(_) => "unknown",
        }
    }

    pub fn name(&self) -> String {
        delta_name(self.from.as_ref(), &self.to)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_SUPERBLOCK_SIZE {
            return Err(bad(format!("superblock of {} bytes", bytes.len())));
        }
        let (md, ts, from, to, cw, _recurse, parts, fallbacks): SuperWire =
            decode("static delta superblock", bytes)?;
        let metadata = Metadata(md);
        let big = matches!(metadata.get(KEY_ENDIANNESS), Some(Value::U8(b'B')));
        if let Some(v) = metadata.get(KEY_ENDIANNESS) {
            if !matches!(v, Value::U8(b'B') | Value::U8(b'l')) {
                return Err(bad("invalid ostree.endianness"));
            }
        }
        let sw32 = |v: u32| if big { v.swap_bytes() } else { v };
        let sw64 = |v: u64| if big { v.swap_bytes() } else { v };
        let from = match from.len() {
            0 => None,
            _ => Some(Checksum::from_bytes(&from)?),
        };
        let to = Checksum::from_bytes(&to)?;
        let commit_bytes = encode(&cw);
        let commit = Commit::decode(&commit_bytes)?;
        let parts = parts
            .into_iter()
            .map(|(v, c, s, u, o)| {
                let version = sw32(v);
                if version != PART_VERSION {
                    return Err(bad(format!("unknown part version {version}")));
                }
                Ok(PartHeader {
                    version,
                    checksum: Checksum::from_bytes(&c)?,
                    size: sw64(s),
                    usize: sw64(u),
                    objects: parse_objects(&o)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let fallbacks = fallbacks
            .into_iter()
            .map(|(k, c, s, u)| {
                Ok(Fallback {
                    kind: ObjectType::from_u8(k)?,
                    checksum: Checksum::from_bytes(&c)?,
                    size: sw64(s),
                    usize: sw64(u),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Superblock {
            metadata,
            timestamp: from_be64(ts),
            from,
            to,
            commit,
            commit_bytes,
            parts,
            fallbacks,
        })
    }

    /// Encode in little-endian order (what ostree writes on x86 and arm).
    pub fn encode(&self) -> Vec<u8> {
        let big = self.big_endian();
        let sw32 = |v: u32| if big { v.swap_bytes() } else { v };
        let sw64 = |v: u64| if big { v.swap_bytes() } else { v };
        let cw: CommitWire = decode("commit", &self.commit_bytes).expect("valid commit bytes");
        let w: SuperWire = (
            self.metadata.clone().0,
            be64(self.timestamp),
            self.from.map(|f| f.0.to_vec()).unwrap_or_default(),
            self.to.0.to_vec(),
            cw,
            Vec::new(),
            self.parts
                .iter()
                .map(|p| {
                    (
                        sw32(p.version),
                        p.checksum.0.to_vec(),
                        sw64(p.size),
                        sw64(p.usize),
                        encode_objects(&p.objects),
                    )
                })
                .collect(),
            self.fallbacks
                .iter()
                .map(|f| {
                    (
                        f.kind as u8,
                        f.checksum.0.to_vec(),
                        sw64(f.size),
                        sw64(f.usize),
                    )
                })
                .collect(),
        );
        encode(&w)
    }

    /// The key of inline part `i` in the metadata (ostree uses the part's
    /// path relative to the repository).
    pub fn inline_part_key(&self, i: usize) -> String {
        format!("{}/{i}", delta_dir(self.from.as_ref(), &self.to))
    }

    /// An inline part's bytes, if the superblock carries it.
    pub fn inline_part(&self, i: usize) -> Option<Vec<u8>> {
        let v = self.metadata.get(&self.inline_part_key(i))?;
        let Value::Value(inner) = v else {
            return match v {
                Value::Structure(_) => {
                    let bytes = zvariant_struct_yay(v)?;
                    Some(bytes)
                }
                _ => None,
            };
        };
        zvariant_struct_yay(inner)
    }

    /// Detached metadata of the target commit carried in the superblock.
    pub fn detached_key(&self) -> String {
        format!("{}/commitmeta", delta_dir(self.from.as_ref(), &self.to))
    }
}

/// `(yay)` value → the part file bytes (compression byte + data).
fn zvariant_struct_yay(v: &Value<'_>) -> Option<Vec<u8>> {
    let Value::Structure(s) = v else { return None };
    let f = s.fields();
    if f.len() != 2 {
        return None;
    }
    let Value::U8(c) = f[0] else { return None };
    let Value::Array(a) = &f[1] else { return None };
    let mut out = vec![c];
    out.extend(crate::gvariant::byte_array(a)?);
    Some(out)
}

/// A `(yay)` value for an inline part.
pub fn inline_part_value(part: &[u8]) -> Value<'static> {
    let s = zvariant::StructureBuilder::new()
        .add_field(part[0])
        .add_field(part[1..].to_vec())
        .build()
        .expect("structure");
    Value::Structure(s)
}

/// A signed superblock `(taya{sv})`: magic, superblock bytes, signatures.
pub fn decode_signed(bytes: &[u8]) -> Result<Option<(Vec<u8>, Metadata)>> {
    if bytes.len() < 8 || &bytes[..8] != SIGNED_MAGIC {
        return Ok(None);
    }
    let (_magic, sb, sigs): (u64, Vec<u8>, Vec<(String, OwnedValue)>) =
        decode("signed static delta superblock", bytes)?;
    Ok(Some((sb, Metadata(sigs))))
}

pub fn encode_signed(superblock: &[u8], sigs: &Metadata) -> Vec<u8> {
    let magic = u64::from_le_bytes(*SIGNED_MAGIC);
    encode(&(magic, superblock.to_vec(), sigs.clone().0))
}

// ---------------------------------------------------------------- parts

/// Decompress a part file into its payload bytes (bounded).
pub fn decompress_part(part: &[u8], max: u64) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    decompress_part_to(part, &mut out, max)?;
    Ok(out)
}

/// Decompress a part file read by offset into `out`, refusing a payload
/// over `max` bytes; returns the payload's length.
pub fn decompress_part_to<D: RandomRead + ?Sized>(
    part: &D,
    out: &mut dyn Write,
    max: u64,
) -> Result<u64> {
    let size = part.size();
    if size == 0 {
        return Err(bad("empty part"));
    }
    let mut kind = [0u8];
    part.read_exact_at(&mut kind, 0)
        .map_err(|e| ObjectError::Io {
            what: "reading a part",
            source: e,
        })?;
    let body = SeqReader::new(Window {
        inner: part,
        start: 1,
        len: size - 1,
    });
    let (mut src, read_err): (Box<dyn Read + '_>, fn(std::io::Error) -> ObjectError) = match kind[0]
    {
        0 => (Box::new(body), |e| ObjectError::Io {
            what: "reading a part",
            source: e,
        }),
        b'x' => (Box::new(xz2::read::XzDecoder::new(body)), |e| {
            ObjectError::Compression(format!("xz: {e}"))
        }),
        k => return Err(bad(format!("unknown part compression {k}"))),
    };
    let mut buf = vec![0u8; 64 << 10];
    let mut total = 0u64;
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_err(e)),
        };
        total += n as u64;
        if total > max {
            return Err(bad("part payload larger than allowed"));
        }
        out.write_all(&buf[..n]).map_err(|e| ObjectError::Io {
            what: "writing a part payload",
            source: e,
        })?;
    }
}

/// The largest xz dictionary [`compress_part`] uses. xz's preset 6 has
/// 8 MiB, whose match finder costs ~90 MiB of encoder memory once a part
/// passes 8 MiB; 4 MiB halves that (and the applier's decoder needs 4 MiB
/// less), while on the bench rootfs delta (bsdiff streams: mostly local
/// redundancy) the part grew by < 0.01%.
pub const PART_XZ_MAX_DICT: u32 = 4 << 20;

/// An xz encoder for a part of `len` payload bytes: preset 6, with the
/// dictionary no larger than the payload (the match finder's tables scale
/// with the dictionary, not with the input) nor [`PART_XZ_MAX_DICT`].
fn part_encoder<W: Write>(out: W, len: usize) -> xz2::write::XzEncoder<W> {
    let dict = len.clamp(1 << 16, PART_XZ_MAX_DICT as usize) as u32;
    let mut lzma = xz2::stream::LzmaOptions::new_preset(6).expect("xz preset 6");
    lzma.dict_size(dict);
    let mut filters = xz2::stream::Filters::new();
    filters.lzma2(&lzma);
    let stream = xz2::stream::Stream::new_stream_encoder(&filters, xz2::stream::Check::Crc64)
        .expect("xz encoder with preset options");
    xz2::write::XzEncoder::new_stream(out, stream)
}

/// Compress a payload as ostree does (xz) into part file bytes.
pub fn compress_part(payload: &[u8]) -> Vec<u8> {
    let mut out = vec![b'x'];
    let mut e = part_encoder(&mut out, payload.len());
    e.write_all(payload).expect("in-memory write");
    e.finish().expect("in-memory write");
    out
}

/// [`compress_part`] of `payload.encode()`, without the encoded copy.
pub fn compress_part_payload(payload: &PartPayload) -> Vec<u8> {
    let mut out = vec![b'x'];
    let mut e = part_encoder(&mut out, payload.encoded_len());
    payload.write_to(&mut e).expect("in-memory write");
    e.finish().expect("in-memory write");
    out
}

/// A part's payload `(a(uuu)aa(ayay)ayay)`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PartPayload {
    /// (uid, gid, mode), host order.
    pub modes: Vec<(u32, u32, u32)>,
    pub xattrs: Vec<Xattrs>,
    pub data: Vec<u8>,
    pub ops: Vec<u8>,
}

fn offset_size(total: usize) -> usize {
    if total <= 0xff {
        1
    } else if total <= 0xffff {
        2
    } else if total <= 0xffff_ffff {
        4
    } else {
        8
    }
}

fn write_offset(out: &mut Vec<u8>, v: usize, size: usize) {
    out.extend_from_slice(&(v as u64).to_le_bytes()[..size]);
}

fn read_offset(b: &[u8]) -> usize {
    let mut a = [0u8; 8];
    a[..b.len()].copy_from_slice(b);
    u64::from_le_bytes(a) as usize
}

/// Pick the framing offset size for a body of `body` bytes and `n` offsets.
fn frame_size(body: usize, n: usize) -> usize {
    for s in [1, 2, 4, 8] {
        if s == 8 || body + n * s < (1usize << (8 * s)) {
            return s;
        }
    }
    8
}

/// Split a GVariant array of variable-size elements into its elements.
fn split_var_array(b: &[u8]) -> Result<Vec<&[u8]>> {
    if b.is_empty() {
        return Ok(Vec::new());
    }
    let os = offset_size(b.len());
    let last_end = read_offset(&b[b.len() - os..]);
    if last_end > b.len() - os || !(b.len() - last_end).is_multiple_of(os) {
        return Err(bad("bad array framing"));
    }
    let n = (b.len() - last_end) / os;
    let mut out = Vec::with_capacity(n);
    let mut start = 0;
    for i in 0..n {
        let end = read_offset(&b[last_end + i * os..last_end + (i + 1) * os]);
        if end < start || end > last_end {
            return Err(bad("bad array framing"));
        }
        out.push(&b[start..end]);
        start = end;
    }
    Ok(out)
}

fn encode_var_array(elems: &[Vec<u8>]) -> Vec<u8> {
    let body: usize = elems.iter().map(|e| e.len()).sum();
    if elems.is_empty() {
        return Vec::new();
    }
    let os = frame_size(body, elems.len());
    let mut out = Vec::with_capacity(body + elems.len() * os);
    let mut ends = Vec::with_capacity(elems.len());
    for e in elems {
        out.extend_from_slice(e);
        ends.push(out.len());
    }
    for e in ends {
        write_offset(&mut out, e, os);
    }
    out
}

impl PartPayload {
    /// Hand-encoded: zvariant cannot write an `aa(ayay)` whose elements are
    /// all empty (the usual "no xattrs" table).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.write_to(&mut out).expect("in-memory write");
        out
    }

    fn tables(&self) -> (Vec<u8>, Vec<u8>) {
        let mut modes = Vec::with_capacity(self.modes.len() * 12);
        for (u, g, m) in &self.modes {
            modes.extend_from_slice(&u.to_be_bytes());
            modes.extend_from_slice(&g.to_be_bytes());
            modes.extend_from_slice(&m.to_be_bytes());
        }
        let xattrs: Vec<Vec<u8>> = self
            .xattrs
            .iter()
            .map(|x| {
                if x.is_empty() {
                    Vec::new()
                } else {
                    encode(x.wire())
                }
            })
            .collect();
        (modes, encode_var_array(&xattrs))
    }

    /// The length of [`PartPayload::encode`]'s output.
    pub fn encoded_len(&self) -> usize {
        let (modes, xattrs) = self.tables();
        let body = modes.len() + xattrs.len() + self.data.len() + self.ops.len();
        body + 3 * frame_size(body, 3)
    }

    /// Write [`PartPayload::encode`]'s bytes to `w`, piece by piece.
    pub fn write_to<W: Write>(&self, w: &mut W) -> std::io::Result<()> {
        let (modes, xattrs) = self.tables();
        let e1 = modes.len();
        let e2 = e1 + xattrs.len();
        let e3 = e2 + self.data.len();
        let body = e3 + self.ops.len();
        let os = frame_size(body, 3);
        w.write_all(&modes)?;
        w.write_all(&xattrs)?;
        w.write_all(&self.data)?;
        w.write_all(&self.ops)?;
        // Framing offsets of a tuple are stored last member first.
        let mut offsets = Vec::with_capacity(3 * os);
        write_offset(&mut offsets, e3, os);
        write_offset(&mut offsets, e2, os);
        write_offset(&mut offsets, e1, os);
        w.write_all(&offsets)
    }

    pub fn decode(b: &[u8]) -> Result<Self> {
        let t = PartTables::read(b)?;
        Ok(PartPayload {
            data: b[t.data.start as usize..t.data.end as usize].to_vec(),
            modes: t.modes,
            xattrs: t.xattrs,
            ops: t.ops,
        })
    }
}

// ---------------------------------------------------------------- random access

/// Bytes read by offset: a part's payload or a delta's read source, in
/// memory or in a file, so that neither has to be held whole in memory.
pub trait RandomRead {
    /// Length in bytes.
    fn size(&self) -> u64;
    /// Fill `buf` from offset `off`; an error if that runs past the end.
    fn read_exact_at(&self, buf: &mut [u8], off: u64) -> std::io::Result<()>;
}

fn past_end() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "read past the end")
}

/// Refuse a read of `len` bytes at `off` from something of `size` bytes
/// that would not lie entirely inside it.
fn within(off: u64, len: usize, size: u64) -> std::io::Result<()> {
    match off.checked_add(len as u64) {
        Some(end) if end <= size => Ok(()),
        _ => Err(past_end()),
    }
}

impl RandomRead for [u8] {
    fn size(&self) -> u64 {
        self.len() as u64
    }
    fn read_exact_at(&self, buf: &mut [u8], off: u64) -> std::io::Result<()> {
        let src = usize::try_from(off)
            .ok()
            .and_then(|o| self.get(o..))
            .and_then(|r| r.get(..buf.len()))
            .ok_or_else(past_end)?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

impl RandomRead for Vec<u8> {
    fn size(&self) -> u64 {
        self.len() as u64
    }
    fn read_exact_at(&self, buf: &mut [u8], off: u64) -> std::io::Result<()> {
        self.as_slice().read_exact_at(buf, off)
    }
}

impl<T: RandomRead + ?Sized> RandomRead for &T {
    fn size(&self) -> u64 {
        (**self).size()
    }
    fn read_exact_at(&self, buf: &mut [u8], off: u64) -> std::io::Result<()> {
        (**self).read_exact_at(buf, off)
    }
}

impl<T: RandomRead + ?Sized> RandomRead for std::rc::Rc<T> {
    fn size(&self) -> u64 {
        (**self).size()
    }
    fn read_exact_at(&self, buf: &mut [u8], off: u64) -> std::io::Result<()> {
        (**self).read_exact_at(buf, off)
    }
}

/// A file read by offset (`pread`), its size taken once: the file must
/// not change while it is read (an unlinked temp file, or an object).
#[derive(Debug)]
pub struct FileAt {
    file: std::fs::File,
    size: u64,
}

impl FileAt {
    pub fn new(file: std::fs::File) -> std::io::Result<Self> {
        let size = file.metadata()?.len();
        Ok(FileAt { file, size })
    }
}

impl RandomRead for FileAt {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_exact_at(&self, buf: &mut [u8], off: u64) -> std::io::Result<()> {
        within(off, buf.len(), self.size)?;
        std::os::unix::fs::FileExt::read_exact_at(&self.file, buf, off)
    }
}

/// The bytes `start..start + len` of `inner`.
struct Window<'a, D: ?Sized> {
    inner: &'a D,
    start: u64,
    len: u64,
}

impl<D: RandomRead + ?Sized> RandomRead for Window<'_, D> {
    fn size(&self) -> u64 {
        self.len
    }
    fn read_exact_at(&self, buf: &mut [u8], off: u64) -> std::io::Result<()> {
        within(off, buf.len(), self.len)?;
        self.inner.read_exact_at(buf, self.start + off)
    }
}

/// Reads `inner` from the start to the end, as a stream.
pub struct SeqReader<D> {
    inner: D,
    pos: u64,
}

impl<D: RandomRead> SeqReader<D> {
    pub fn new(inner: D) -> Self {
        SeqReader { inner, pos: 0 }
    }
}

impl<D: RandomRead> Read for SeqReader<D> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (self.inner.size() - self.pos).min(buf.len() as u64) as usize;
        self.inner.read_exact_at(&mut buf[..n], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// A part payload's tables: what is not its data section, which stays
/// where it is (a payload is up to 1 GiB, almost all data).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PartTables {
    /// (uid, gid, mode), host order.
    pub modes: Vec<(u32, u32, u32)>,
    pub xattrs: Vec<Xattrs>,
    pub ops: Vec<u8>,
    /// Where the data section is in the payload.
    pub data: std::ops::Range<u64>,
}

impl PartTables {
    /// Parse the framing from the payload's tail and load the tables.
    pub fn read<D: RandomRead + ?Sized>(b: &D) -> Result<Self> {
        let io = |e| ObjectError::Io {
            what: "reading a part payload",
            source: e,
        };
        let total = b.size();
        if total == 0 {
            return Err(bad("empty part payload"));
        }
        let total = usize::try_from(total).map_err(|_| bad("part payload too large"))?;
        let os = offset_size(total);
        if total < 3 * os {
            return Err(bad("part payload too short"));
        }
        let fr = total - 3 * os;
        let mut tail = [0u8; 24];
        b.read_exact_at(&mut tail[..3 * os], fr as u64)
            .map_err(io)?;
        let e3 = read_offset(&tail[..os]);
        let e2 = read_offset(&tail[os..2 * os]);
        let e1 = read_offset(&tail[2 * os..3 * os]);
        if !(e1 <= e2 && e2 <= e3 && e3 <= fr) {
            return Err(bad("bad part payload framing"));
        }
        let mut head = vec![0u8; e2];
        b.read_exact_at(&mut head, 0).map_err(io)?;
        let mut ops = vec![0u8; fr - e3];
        b.read_exact_at(&mut ops, e3 as u64).map_err(io)?;
        let modes_b = &head[..e1];
        if !modes_b.len().is_multiple_of(12) {
            return Err(bad("mode table is not a multiple of 12 bytes"));
        }
        let modes = modes_b
            .chunks(12)
            .map(|c| {
                let r = |i: usize| u32::from_be_bytes(c[i..i + 4].try_into().unwrap());
                (r(0), r(4), r(8))
            })
            .collect();
        let xattrs = split_var_array(&head[e1..e2])?
            .into_iter()
            .map(|x| {
                if x.is_empty() {
                    Ok(Xattrs::new())
                } else {
                    let w: Vec<(Vec<u8>, Vec<u8>)> = decode("delta xattrs", x)?;
                    Xattrs::from_wire(w)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(PartTables {
            modes,
            xattrs,
            ops,
            data: e2 as u64..e3 as u64,
        })
    }
}

// ---------------------------------------------------------------- opcodes

pub const OP_OPEN_SPLICE_AND_CLOSE: u8 = b'S';
pub const OP_OPEN: u8 = b'o';
pub const OP_WRITE: u8 = b'w';
pub const OP_SET_READ_SOURCE: u8 = b'r';
pub const OP_UNSET_READ_SOURCE: u8 = b'R';
pub const OP_CLOSE: u8 = b'c';
pub const OP_BSPATCH: u8 = b'B';

/// Count of each opcode (for `static-delta show`).
#[derive(Clone, Copy, Debug, Default)]
pub struct OpStats {
    pub open_splice_close: u64,
    pub open: u64,
    pub write: u64,
    pub set_read: u64,
    pub unset_read: u64,
    pub close: u64,
    pub bspatch: u64,
}

/// Where a part's objects go. Implementations verify each object against
/// its name before storing it.
pub trait DeltaSink {
    type Error: From<ObjectError>;
    /// A read source's content, read by offset.
    type Source: RandomRead;
    /// Content of a regular file object the delta reads from, verified.
    fn read_source(&mut self, csum: &Checksum) -> std::result::Result<Self::Source, Self::Error>;
    fn write_meta(
        &mut self,
        kind: ObjectType,
        csum: &Checksum,
        bytes: &[u8],
    ) -> std::result::Result<(), Self::Error>;
    /// Store a file object whose content (`size` bytes, none for a
    /// symlink) `content` streams. A read error from `content` means the
    /// delta is bad: nothing is to be stored.
    fn write_content(
        &mut self,
        csum: &Checksum,
        header: &FileHeader,
        size: u64,
        content: &mut dyn Read,
    ) -> std::result::Result<(), Self::Error>;
}

/// Largest metadata object a `S` opcode may copy (ostree's limit).
const MAX_META_SIZE: u64 = 128 << 20;

/// Where an open object's bytes come from, in order.
enum Piece<Src> {
    /// A range of the part data.
    Data { off: u64, len: u64 },
    /// A range of a read source.
    Source { src: Rc<Src>, off: u64, len: u64 },
    /// The output of a bsdiff patch (a range of the part data) on a read
    /// source, making `size` bytes.
    Patch {
        off: u64,
        len: u64,
        src: Rc<Src>,
        size: u64,
    },
}

struct OpenObject<Src> {
    csum: Checksum,
    header: FileHeader,
    size: u64,
    /// Bytes the pieces produce.
    written: u64,
    pieces: Vec<Piece<Src>>,
}

/// Streams an object from its pieces. It keeps the first error it meets
/// (the delta's fault, to report naming the object), as the sink sees it
/// only as an I/O error.
struct PieceReader<'a, D: ?Sized, Src> {
    data: &'a D,
    pieces: std::vec::IntoIter<Piece<Src>>,
    cur: Option<Current<'a, D, Src>>,
    failure: Option<String>,
}

enum Current<'a, D: ?Sized, Src> {
    Range {
        src: RangeIn<'a, D, Src>,
        off: u64,
        left: u64,
    },
    Patch(Bspatch<Window<'a, D>, Rc<Src>>),
}

/// What a [`Current::Range`] is a range of.
enum RangeIn<'a, D: ?Sized, Src> {
    Data(&'a D),
    Source(Rc<Src>),
}

impl<'a, D: RandomRead + ?Sized, Src: RandomRead> PieceReader<'a, D, Src> {
    fn new(data: &'a D, pieces: Vec<Piece<Src>>) -> Self {
        PieceReader {
            data,
            pieces: pieces.into_iter(),
            cur: None,
            failure: None,
        }
    }

    fn next_piece(&mut self) -> std::io::Result<bool> {
        let Some(p) = self.pieces.next() else {
            return Ok(false);
        };
        self.cur = Some(match p {
            Piece::Data { off, len } => Current::Range {
                src: RangeIn::Data(self.data),
                off,
                left: len,
            },
            Piece::Source { src, off, len } => Current::Range {
                src: RangeIn::Source(src),
                off,
                left: len,
            },
            Piece::Patch {
                off,
                len,
                src,
                size,
            } => {
                let patch = Window {
                    inner: self.data,
                    start: off,
                    len,
                };
                Current::Patch(Bspatch::new(patch, src, size)?)
            }
        });
        Ok(true)
    }

    fn read_inner(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let n = match &mut self.cur {
                None => {
                    if !self.next_piece()? {
                        return Ok(0);
                    }
                    continue;
                }
                Some(Current::Range { src, off, left }) => {
                    let n = (*left).min(buf.len() as u64) as usize;
                    match src {
                        RangeIn::Data(d) => d.read_exact_at(&mut buf[..n], *off)?,
                        RangeIn::Source(s) => s.read_exact_at(&mut buf[..n], *off)?,
                    }
                    *off += n as u64;
                    *left -= n as u64;
                    n
                }
                Some(Current::Patch(p)) => p.read(buf)?,
            };
            if n > 0 {
                return Ok(n);
            }
            self.cur = None;
        }
    }
}

impl<D: RandomRead + ?Sized, Src: RandomRead> Read for PieceReader<'_, D, Src> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.read_inner(buf).inspect_err(|e| {
            self.failure.get_or_insert_with(|| e.to_string());
        })
    }
}

struct Cursor<'a> {
    ops: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn var(&mut self, ctx: &dyn Fn() -> String) -> Result<u64> {
        let (v, n) = read_varuint64(&self.ops[self.pos..])
            .ok_or_else(|| bad(format!("{}: truncated or invalid varint", ctx())))?;
        self.pos += n;
        Ok(v)
    }
}

/// Check that `off..off + len` is inside `data`.
fn check_range(size: u64, off: u64, len: u64, what: &dyn Fn() -> String) -> Result<()> {
    match off.checked_add(len) {
        Some(e) if e <= size => Ok(()),
        _ => Err(bad(format!(
            "{}: offset {off} + length {len} is outside the {size} bytes of part data",
            what(),
        ))),
    }
}

/// Read `off..off + len` of `data` into memory, once it is checked to be
/// inside (the caller bounds `len` by what it may allocate).
fn read_range<D: RandomRead + ?Sized>(
    data: &D,
    off: u64,
    len: u64,
    what: &dyn Fn() -> String,
) -> Result<Vec<u8>> {
    check_range(data.size(), off, len, what)?;
    let mut v = vec![0u8; len as usize];
    data.read_exact_at(&mut v, off)
        .map_err(|e| bad(format!("{}: reading part data: {e}", what())))?;
    Ok(v)
}

/// Opcode counts given the part's object list (exact).
pub fn op_stats_with(ops: &[u8], objects: &[(ObjectType, Checksum)]) -> Result<OpStats> {
    let mut s = OpStats::default();
    let mut c = Cursor { ops, pos: 0 };
    let ctx = || "opcode stream".to_string();
    let mut idx = 0usize;
    while c.pos < ops.len() {
        let op = ops[c.pos];
        c.pos += 1;
        let nargs = match op {
            OP_OPEN_SPLICE_AND_CLOSE => {
                s.open_splice_close += 1;
                let meta = objects.get(idx).map(|o| o.0.is_meta()).unwrap_or(false);
                idx += 1;
                if meta {
                    2
                } else {
                    4
                }
            }
            OP_OPEN => {
                s.open += 1;
                3
            }
            OP_WRITE => {
                s.write += 1;
                2
            }
            OP_SET_READ_SOURCE => {
                s.set_read += 1;
                1
            }
            OP_UNSET_READ_SOURCE => {
                s.unset_read += 1;
                0
            }
            OP_CLOSE => {
                s.close += 1;
                idx += 1;
                0
            }
            OP_BSPATCH => {
                s.bspatch += 1;
                2
            }
            other => return Err(bad(format!("unknown opcode {other}"))),
        };
        for _ in 0..nargs {
            c.var(&ctx)?;
        }
    }
    Ok(s)
}

/// Run a part's opcodes, handing every rebuilt object to `sink`. Refuses
/// (naming the object) any read or write outside the part data, the object
/// or its declared size, and a part that does not build exactly the
/// objects its header lists.
pub fn execute_part<S: DeltaSink>(
    objects: &[(ObjectType, Checksum)],
    payload: &PartPayload,
    sink: &mut S,
) -> std::result::Result<(), S::Error> {
    run_part(
        objects,
        &payload.modes,
        &payload.xattrs,
        &payload.ops,
        &payload.data[..],
        sink,
    )
}

/// [`execute_part`] on a payload read by offset (e.g. from a file), with
/// its tables already loaded: objects are streamed to the sink, never
/// held whole in memory.
pub fn execute_part_at<S: DeltaSink, D: RandomRead + ?Sized>(
    objects: &[(ObjectType, Checksum)],
    tables: &PartTables,
    payload: &D,
    sink: &mut S,
) -> std::result::Result<(), S::Error> {
    let data = Window {
        inner: payload,
        start: tables.data.start,
        len: tables.data.end - tables.data.start,
    };
    run_part(
        objects,
        &tables.modes,
        &tables.xattrs,
        &tables.ops,
        &data,
        sink,
    )
}

fn run_part<S: DeltaSink, D: RandomRead + ?Sized>(
    objects: &[(ObjectType, Checksum)],
    modes: &[(u32, u32, u32)],
    xattrs: &[Xattrs],
    ops: &[u8],
    data: &D,
    sink: &mut S,
) -> std::result::Result<(), S::Error> {
    let data_size = data.size();
    let mut c = Cursor { ops, pos: 0 };
    let mut idx = 0usize;
    let mut open: Option<OpenObject<S::Source>> = None;
    let mut source: Option<Rc<S::Source>> = None;
    let name = |idx: usize| -> String {
        match objects.get(idx) {
            Some((k, c)) => format!("object {c}.{}", k.as_str()),
            None => "object past the end of the part's list".to_string(),
        }
    };
    let next_target = |idx: usize| -> Result<(ObjectType, Checksum)> {
        objects
            .get(idx)
            .copied()
            .ok_or_else(|| bad("opcodes build more objects than the part lists"))
    };
    let content_open = |c: &mut Cursor, idx: usize| -> Result<FileHeader> {
        let n = || name(idx);
        let mo = c.var(&n)?;
        let xo = c.var(&n)?;
        let (uid, gid, mode) = *modes
            .get(usize::try_from(mo).unwrap_or(usize::MAX))
            .ok_or_else(|| bad(format!("{}: mode index {mo} out of range", n())))?;
        let xattrs = xattrs
            .get(usize::try_from(xo).unwrap_or(usize::MAX))
            .ok_or_else(|| bad(format!("{}: xattr index {xo} out of range", n())))?
            .clone();
        Ok(FileHeader {
            uid,
            gid,
            mode,
            rdev: 0,
            symlink_target: String::new(),
            xattrs,
        })
    };
    // Hand an object to the sink; a failure of the stream is the delta's.
    let store = |sink: &mut S,
                 idx: usize,
                 csum: &Checksum,
                 header: &FileHeader,
                 size: u64,
                 pieces: Vec<Piece<S::Source>>|
     -> std::result::Result<(), S::Error> {
        let mut r = PieceReader::new(data, pieces);
        match sink.write_content(csum, header, size, &mut r) {
            Ok(()) => Ok(()),
            Err(e) => match r.failure.take() {
                Some(f) => Err(bad(format!("{}: {f}", name(idx))).into()),
                None => Err(e),
            },
        }
    };
    while c.pos < ops.len() {
        let op = ops[c.pos];
        c.pos += 1;
        match op {
            OP_OPEN_SPLICE_AND_CLOSE => {
                if open.is_some() {
                    return Err(
                        bad(format!("{}: splice while an object is open", name(idx))).into(),
                    );
                }
                let (kind, csum) = next_target(idx)?;
                let n = || name(idx);
                if kind.is_meta() {
                    let len = c.var(&n)?;
                    let off = c.var(&n)?;
                    check_range(data_size, off, len, &n)?;
                    if len > MAX_META_SIZE {
                        return Err(bad(format!("{}: {len} bytes is too large", n())).into());
                    }
                    let b = read_range(data, off, len, &n)?;
                    sink.write_meta(kind, &csum, &b)?;
                } else if kind != ObjectType::File {
                    return Err(bad(format!("{}: not a file or metadata object", n())).into());
                } else {
                    let mut h = content_open(&mut c, idx)?;
                    let len = c.var(&n)?;
                    let off = c.var(&n)?;
                    check_range(data_size, off, len, &n)?;
                    if crate::mode::is_lnk(h.mode) {
                        if len > crate::file::MAX_HEADER_SIZE as u64 {
                            return Err(bad(format!("{}: symlink target too long", n())).into());
                        }
                        let b = read_range(data, off, len, &n)?;
                        h.symlink_target = String::from_utf8(b)
                            .map_err(|_| bad(format!("{}: symlink target is not UTF-8", n())))?;
                        h.validate().map_err(|e| bad(format!("{}: {e}", n())))?;
                        sink.write_content(&csum, &h, 0, &mut std::io::empty())?;
                    } else {
                        h.validate().map_err(|e| bad(format!("{}: {e}", n())))?;
                        store(sink, idx, &csum, &h, len, vec![Piece::Data { off, len }])?;
                    }
                }
                idx += 1;
                source = None;
            }
            OP_OPEN => {
                if open.is_some() {
                    return Err(bad(format!("{}: open while an object is open", name(idx))).into());
                }
                let (kind, csum) = next_target(idx)?;
                let n = || name(idx);
                if kind != ObjectType::File {
                    return Err(bad(format!("{}: open of a metadata object", n())).into());
                }
                let h = content_open(&mut c, idx)?;
                if !h.is_regular() {
                    return Err(bad(format!("{}: open of a non-regular file", n())).into());
                }
                h.validate().map_err(|e| bad(format!("{}: {e}", n())))?;
                let size = c.var(&n)?;
                if size > MAX_OBJECT_SIZE {
                    return Err(bad(format!("{}: size {size} is too large", n())).into());
                }
                open = Some(OpenObject {
                    csum,
                    header: h,
                    size,
                    written: 0,
                    pieces: Vec::new(),
                });
            }
            OP_WRITE => {
                let n = || name(idx);
                let len = c.var(&n)?;
                let off = c.var(&n)?;
                let o = open
                    .as_mut()
                    .ok_or_else(|| bad(format!("{}: write with no open object", n())))?;
                let src_size = match &source {
                    Some(s) => s.size(),
                    None => data_size,
                };
                check_range(src_size, off, len, &n)?;
                if o.written + len > o.size {
                    return Err(bad(format!(
                        "{}: write past the declared size of {} bytes",
                        n(),
                        o.size
                    ))
                    .into());
                }
                o.written += len;
                if len > 0 {
                    o.pieces.push(match &source {
                        Some(s) => Piece::Source {
                            src: Rc::clone(s),
                            off,
                            len,
                        },
                        None => Piece::Data { off, len },
                    });
                }
            }
            OP_SET_READ_SOURCE => {
                let n = || name(idx);
                let off = c.var(&n)?;
                let b = read_range(data, off, 32, &n)?;
                let src = Checksum::from_bytes(&b)?;
                source = Some(Rc::new(sink.read_source(&src)?));
            }
            OP_UNSET_READ_SOURCE => source = None,
            OP_CLOSE => {
                let n = || name(idx);
                let o = open
                    .take()
                    .ok_or_else(|| bad(format!("{}: close with no open object", n())))?;
                if o.written != o.size {
                    return Err(bad(format!(
                        "{}: {} bytes written, {} declared",
                        n(),
                        o.written,
                        o.size
                    ))
                    .into());
                }
                store(sink, idx, &o.csum, &o.header, o.size, o.pieces)?;
                idx += 1;
            }
            OP_BSPATCH => {
                let n = || name(idx);
                let off = c.var(&n)?;
                let len = c.var(&n)?;
                check_range(data_size, off, len, &n)?;
                let o = open
                    .as_mut()
                    .ok_or_else(|| bad(format!("{}: bspatch with no open object", n())))?;
                let old = source
                    .as_ref()
                    .ok_or_else(|| bad(format!("{}: bspatch with no read source", n())))?;
                if o.written != 0 {
                    return Err(bad(format!("{}: bspatch after a write", n())).into());
                }
                // The patch makes exactly the object's declared size, or
                // fails (naming the object) while the object is stored.
                o.written = o.size;
                o.pieces.push(Piece::Patch {
                    off,
                    len,
                    src: Rc::clone(old),
                    size: o.size,
                });
            }
            other => {
                return Err(bad(format!(
                    "unknown opcode {other} at offset {} (next {})",
                    c.pos - 1,
                    name(idx)
                ))
                .into())
            }
        }
    }
    if open.is_some() {
        return Err(bad(format!("{}: left open at the end of the part", name(idx))).into());
    }
    if idx != objects.len() {
        return Err(bad(format!(
            "part built {idx} of its {} objects (next {})",
            objects.len(),
            name(idx)
        ))
        .into());
    }
    Ok(())
}

// ---------------------------------------------------------------- bspatch

fn offtin(b: &[u8]) -> i64 {
    let mut y = u64::from_le_bytes(b[..8].try_into().unwrap());
    let neg = y & (1 << 63) != 0;
    y &= !(1 << 63);
    if neg {
        -(y as i64)
    } else {
        y as i64
    }
}

/// A raw bsdiff stream (the header-less format of mendsley's bsdiff
/// library, which ostree uses) applied as a reader: control triples of
/// sign-magnitude little-endian i64 (diff length, extra length, seek),
/// each followed by the diff and extra bytes. Reads the patch and the old
/// file by offset through a small buffer; yields exactly `new_size` bytes
/// or an error.
pub struct Bspatch<P, O> {
    patch: P,
    old: O,
    new_size: u64,
    produced: u64,
    /// Position in the patch.
    p: u64,
    /// Position in the old file of the next diff byte.
    oldpos: i64,
    /// Where the old file position goes after the current control.
    next_oldpos: i64,
    diff_left: u64,
    extra_left: u64,
    scratch: Vec<u8>,
}

fn patch_err(msg: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, format!("bspatch: {msg}"))
}

/// Largest read the patch reader serves at once.
const BSPATCH_CHUNK: usize = 64 << 10;

impl<P: RandomRead, O: RandomRead> Bspatch<P, O> {
    /// `new_size` comes from the delta.
    pub fn new(patch: P, old: O, new_size: u64) -> std::io::Result<Self> {
        if new_size > MAX_OBJECT_SIZE {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("bspatch output of {new_size} bytes is too large"),
            ));
        }
        Ok(Bspatch {
            patch,
            old,
            new_size,
            produced: 0,
            p: 0,
            oldpos: 0,
            next_oldpos: 0,
            diff_left: 0,
            extra_left: 0,
            scratch: Vec::new(),
        })
    }

    /// Read the next control triple and check it against the patch and
    /// the output size; false at the end of the output.
    fn next_control(&mut self) -> std::io::Result<bool> {
        self.oldpos = self.next_oldpos;
        if self.produced >= self.new_size {
            return Ok(false);
        }
        let plen = self.patch.size();
        if self.p.checked_add(24).is_none_or(|e| e > plen) {
            return Err(patch_err("truncated control block"));
        }
        let mut ctrl = [0u8; 24];
        self.patch.read_exact_at(&mut ctrl, self.p)?;
        self.p += 24;
        let (d, x, s) = (offtin(&ctrl[0..]), offtin(&ctrl[8..]), offtin(&ctrl[16..]));
        if d < 0 || x < 0 {
            return Err(patch_err("negative length"));
        }
        let (du, xu) = (d as u64, x as u64);
        if self.produced + du > self.new_size {
            return Err(patch_err("diff past the end of the output"));
        }
        if self.p.checked_add(du).is_none_or(|e| e > plen) {
            return Err(patch_err("truncated diff data"));
        }
        let after_diff = self
            .oldpos
            .checked_add(d)
            .ok_or_else(|| patch_err("overflow"))?;
        if self.produced + du + xu > self.new_size {
            return Err(patch_err("extra past the end of the output"));
        }
        if (self.p + du).checked_add(xu).is_none_or(|e| e > plen) {
            return Err(patch_err("truncated extra data"));
        }
        self.next_oldpos = after_diff
            .checked_add(s)
            .ok_or_else(|| patch_err("overflow"))?;
        self.diff_left = du;
        self.extra_left = xu;
        Ok(true)
    }

    /// `buf[..n]` holds diff bytes: add the old file's bytes under them
    /// (zero outside the old file).
    fn add_old(&mut self, buf: &mut [u8]) -> std::io::Result<()> {
        let n = buf.len() as i64;
        let lo = self.oldpos.max(0);
        let hi = (self.oldpos + n).min(self.old.size().min(i64::MAX as u64) as i64);
        if lo >= hi {
            return Ok(());
        }
        let len = (hi - lo) as usize;
        self.scratch.resize(len, 0);
        self.old.read_exact_at(&mut self.scratch, lo as u64)?;
        let at = (lo - self.oldpos) as usize;
        for (b, o) in buf[at..at + len].iter_mut().zip(&self.scratch) {
            *b = b.wrapping_add(*o);
        }
        Ok(())
    }
}

impl<P: RandomRead, O: RandomRead> Read for Bspatch<P, O> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let max = buf.len().min(BSPATCH_CHUNK) as u64;
        while self.diff_left == 0 && self.extra_left == 0 {
            if !self.next_control()? {
                return Ok(0);
            }
        }
        let n = if self.diff_left > 0 {
            let n = self.diff_left.min(max) as usize;
            self.patch.read_exact_at(&mut buf[..n], self.p)?;
            self.add_old(&mut buf[..n])?;
            self.oldpos += n as i64;
            self.diff_left -= n as u64;
            n
        } else {
            let n = self.extra_left.min(max) as usize;
            self.patch.read_exact_at(&mut buf[..n], self.p)?;
            self.extra_left -= n as u64;
            n
        };
        self.p += n as u64;
        self.produced += n as u64;
        Ok(n)
    }
}

/// Apply a raw bsdiff stream in memory (see [`Bspatch`]). `new_size`
/// comes from the delta.
pub fn bspatch(old: &[u8], new_size: u64, patch: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let mut r = Bspatch::new(patch, old, new_size).map_err(|e| e.to_string())?;
    let mut new = Vec::with_capacity(new_size.min(patch.len() as u64 * 64 + 4096) as usize);
    r.read_to_end(&mut new).map_err(|e| e.to_string())?;
    Ok(new)
}

// ---------------------------------------------------------------- index

fn pad_to(out: &mut Vec<u8>, align: usize) {
    while !out.len().is_multiple_of(align) {
        out.push(0);
    }
}

/// A variant's serialization: the value, a NUL, its type signature.
pub fn variant_bytes(value: &[u8], signature: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(value.len() + 1 + signature.len());
    v.extend_from_slice(value);
    v.push(0);
    v.extend_from_slice(signature.as_bytes());
    v
}

/// Encode an `a{sv}` from (key, serialized variant) pairs, keeping their
/// order (zvariant's `Dict` sorts its keys; GLib's follows a hash table).
pub fn encode_asv_raw(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut body = Vec::new();
    let mut ends = Vec::with_capacity(entries.len());
    for (k, v) in entries {
        pad_to(&mut body, 8);
        let mut e = Vec::with_capacity(k.len() + v.len() + 16);
        e.extend_from_slice(k.as_bytes());
        e.push(0);
        let key_end = e.len();
        pad_to(&mut e, 8);
        e.extend_from_slice(v);
        let os = frame_size(e.len(), 1);
        write_offset(&mut e, key_end, os);
        body.extend_from_slice(&e);
        ends.push(body.len());
    }
    if entries.is_empty() {
        return body;
    }
    let os = frame_size(body.len(), ends.len());
    for e in ends {
        write_offset(&mut body, e, os);
    }
    body
}

/// `a{sv}` of delta name → superblock checksum (`ay`), in GLib's order
/// for a dictionary filled with `entries` in order.
pub fn encode_delta_map(entries: &[(String, Checksum)]) -> Vec<u8> {
    let names: Vec<String> = entries.iter().map(|e| e.0.clone()).collect();
    let ordered: Vec<(String, Vec<u8>)> = ghash_order(&names)
        .into_iter()
        .map(|i| (entries[i].0.clone(), variant_bytes(&entries[i].1 .0, "ay")))
        .collect();
    encode_asv_raw(&ordered)
}

/// Order of `g_hash_table` iteration after inserting `keys` (string keys,
/// `g_str_hash`) in order: what a GVariantDict built by ostree yields.
pub fn ghash_order(keys: &[String]) -> Vec<usize> {
    fn str_hash(s: &str) -> u32 {
        let mut h: u32 = 5381;
        for &b in s.as_bytes() {
            h = (h << 5).wrapping_add(h).wrapping_add(b as i8 as i32 as u32);
        }
        if h < 2 {
            2
        } else {
            h
        }
    }
    const PRIME_MOD: [u32; 32] = [
        1, 2, 3, 7, 13, 31, 61, 127, 251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071,
        262139, 524287, 1048573, 2097143, 4194301, 8388593, 16777213, 33554393, 67108859,
        134217689, 268435399, 536870909, 1073741789, 2147483647,
    ];
    struct T {
        shift: u32,
        hashes: Vec<u32>,
        vals: Vec<usize>,
        nnodes: usize,
        noccupied: usize,
    }
    impl T {
        fn size(&self) -> usize {
            1 << self.shift
        }
        fn idx(&self, h: u32) -> usize {
            (h.wrapping_mul(11) % PRIME_MOD[self.shift as usize]) as usize
        }
        fn insert(&mut self, h: u32, v: usize) {
            let mask = self.size() - 1;
            let mut i = self.idx(h);
            let mut step = 0;
            while self.hashes[i] != 0 {
                step += 1;
                i = (i + step) & mask;
            }
            self.hashes[i] = h;
            self.vals[i] = v;
            self.nnodes += 1;
            self.noccupied += 1;
            let size = self.size();
            if (size > self.nnodes * 4 && size > 8) || size <= self.noccupied + self.noccupied / 16
            {
                self.resize();
            }
        }
        fn resize(&mut self) {
            let old = self.size();
            let mut n = (self.nnodes as f64 * 1.333) as u64;
            let mut shift = 0;
            while n != 0 {
                n >>= 1;
                shift += 1;
            }
            self.shift = shift.max(3);
            let new = self.size();
            if new > old {
                self.hashes.resize(new, 0);
                self.vals.resize(new, 0);
            }
            let mut moved = vec![false; new.max(old)];
            let mask = new - 1;
            for i in 0..old {
                let mut h = self.hashes[i];
                if h < 2 {
                    self.hashes[i] = 0;
                    continue;
                }
                if moved[i] {
                    continue;
                }
                self.hashes[i] = 0;
                let mut v = self.vals[i];
                loop {
                    let mut j = self.idx(h);
                    let mut step = 0;
                    while moved[j] {
                        step += 1;
                        j = (j + step) & mask;
                    }
                    moved[j] = true;
                    let rh = self.hashes[j];
                    let rv = self.vals[j];
                    self.hashes[j] = h;
                    self.vals[j] = v;
                    if rh < 2 {
                        break;
                    }
                    h = rh;
                    v = rv;
                }
            }
            if new < old {
                self.hashes.truncate(new);
                self.vals.truncate(new);
            }
            self.noccupied = self.nnodes;
        }
    }
    let mut t = T {
        shift: 3,
        hashes: vec![0; 8],
        vals: vec![0; 8],
        nnodes: 0,
        noccupied: 0,
    };
    for (i, k) in keys.iter().enumerate() {
        t.insert(str_hash(k), i);
    }
    (0..t.size())
        .filter(|&i| t.hashes[i] >= 2)
        .map(|i| t.vals[i])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mb64_round_trip_and_paths() {
        let c =
            Checksum::from_hex("f712d1ff91ea21063e9dc502cdc5632dee1a6bb6739ebb383ea9da6f7caa2be2")
                .unwrap();
        let f =
            Checksum::from_hex("f17b3968361dcc4edf4a08af927e11d04703527ae0a49a90debca25bb71d3c25")
                .unwrap();
        assert_eq!(
            delta_dir(None, &c),
            "deltas/9x/LR_5HqIQY+ncUCzcVjLe4aa7Zznrs4Pqnab3yqK+I"
        );
        assert_eq!(
            delta_dir(Some(&f), &c),
            "deltas/8X/s5aDYdzE7fSgivkn4R0EcDUnrgpJqQ3ryiW7cdPCU-9xLR_5HqIQY+ncUCzcVjLe4aa7Zznrs4Pqnab3yqK+I"
        );
        assert_eq!(from_mb64(&mb64(&c)).unwrap(), c);
        assert_eq!(
            parse_delta_dir("8X", "s5aDYdzE7fSgivkn4R0EcDUnrgpJqQ3ryiW7cdPCU-9xLR_5HqIQY+ncUCzcVjLe4aa7Zznrs4Pqnab3yqK+I").unwrap(),
            (Some(f), c)
        );
    }

    #[test]
    fn varuint_round_trip() {
        for v in [0, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut b = Vec::new();
            write_varuint64(&mut b, v);
            assert_eq!(read_varuint64(&b), Some((v, b.len())));
        }
        assert_eq!(read_varuint64(&[0x80]), None);
        assert_eq!(read_varuint64(&[0xff; 11]), None);
    }

    #[test]
    fn payload_round_trip_with_empty_xattrs() {
        let p = PartPayload {
            modes: vec![(0, 0, 0o100644), (1, 2, 0o120777)],
            xattrs: vec![
                Xattrs::new(),
                Xattrs::from_pairs([(b"user.a".to_vec(), b"b".to_vec())]),
            ],
            data: vec![7; 300],
            ops: vec![b'S', 0, 0, 1, 0],
        };
        let b = p.encode();
        assert_eq!(PartPayload::decode(&b).unwrap(), p);
        let only_empty = PartPayload {
            xattrs: vec![Xattrs::new()],
            ..Default::default()
        };
        let b = only_empty.encode();
        assert_eq!(b, vec![0, 1, 1, 0]);
        assert_eq!(PartPayload::decode(&b).unwrap(), only_empty);
    }

    #[test]
    fn streamed_compression_matches_the_encoding() {
        // Sizes on both sides of each framing offset width.
        for n in [0usize, 200, 300, 65_000, 70_000] {
            let p = PartPayload {
                modes: vec![(0, 0, 0o100644)],
                xattrs: vec![Xattrs::from_pairs([(b"user.a".to_vec(), b"b".to_vec())])],
                data: (0..n).map(|i| (i % 251) as u8).collect(),
                ops: vec![b'S', 0, 0, 1, 0],
            };
            let b = p.encode();
            assert_eq!(p.encoded_len(), b.len());
            let part = compress_part_payload(&p);
            assert_eq!(decompress_part(&part, 1 << 20).unwrap(), b);
            assert_eq!(decompress_part(&compress_part(&b), 1 << 20).unwrap(), b);
        }
    }

    #[test]
    fn bspatch_hostile_input_is_an_error() {
        assert!(bspatch(b"abc", 10, &[]).is_err());
        let mut ctrl = vec![0u8; 24];
        ctrl[0] = 20; // diff of 20 bytes into a 10-byte output
        assert!(bspatch(b"abc", 10, &ctrl).is_err());
        assert_eq!(bspatch(b"abc", 0, &[]).unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn raw_asv_matches_zvariant() {
        let mut md = Metadata::new();
        md.set_str("b", "x");
        md.set("a", Value::U64(7));
        let raw: Vec<(String, Vec<u8>)> =
            md.0.iter()
                .map(|(k, v)| (k.clone(), encode(&**v)))
                .collect();
        assert_eq!(encode_asv_raw(&raw), md.encode());
    }

    struct NullSink(usize);
    impl DeltaSink for NullSink {
        type Error = ObjectError;
        type Source = Vec<u8>;
        fn read_source(&mut self, _: &Checksum) -> Result<Vec<u8>> {
            Ok(Vec::new())
        }
        fn write_meta(&mut self, _: ObjectType, _: &Checksum, _: &[u8]) -> Result<()> {
            self.0 += 1;
            Ok(())
        }
        fn write_content(
            &mut self,
            _: &Checksum,
            _: &FileHeader,
            _: u64,
            r: &mut dyn Read,
        ) -> Result<()> {
            std::io::copy(r, &mut std::io::sink()).map_err(|e| ObjectError::Io {
                what: "test",
                source: e,
            })?;
            self.0 += 1;
            Ok(())
        }
    }

    /// The in-memory bspatch this crate had before it streamed: the
    /// reference the streaming one must match.
    fn bspatch_reference(
        old: &[u8],
        new_size: u64,
        patch: &[u8],
    ) -> std::result::Result<Vec<u8>, String> {
        if new_size > MAX_OBJECT_SIZE {
            return Err(format!("bspatch output of {new_size} bytes is too large"));
        }
        let new_size = new_size as usize;
        let mut new = Vec::new();
        let mut p = 0usize;
        let mut oldpos: i64 = 0;
        while new.len() < new_size {
            let ctrl = patch
                .get(p..p + 24)
                .ok_or("bspatch: truncated control block")?;
            p += 24;
            let (d, x, s) = (offtin(&ctrl[0..]), offtin(&ctrl[8..]), offtin(&ctrl[16..]));
            if d < 0 || x < 0 {
                return Err("bspatch: negative length".into());
            }
            let (d, x) = (d as u64, x as u64);
            if new.len() as u64 + d > new_size as u64 {
                return Err("bspatch: diff past the end of the output".into());
            }
            let diff = patch
                .get(p..)
                .and_then(|r| r.get(..d as usize))
                .ok_or("bspatch: truncated diff data")?;
            p += d as usize;
            for (i, &b) in diff.iter().enumerate() {
                let o = oldpos.checked_add(i as i64).ok_or("bspatch: overflow")?;
                let add = if o >= 0 && (o as u64) < old.len() as u64 {
                    old[o as usize]
                } else {
                    0
                };
                new.push(b.wrapping_add(add));
            }
            oldpos = oldpos.checked_add(d as i64).ok_or("bspatch: overflow")?;
            if new.len() as u64 + x > new_size as u64 {
                return Err("bspatch: extra past the end of the output".into());
            }
            let extra = patch
                .get(p..)
                .and_then(|r| r.get(..x as usize))
                .ok_or("bspatch: truncated extra data")?;
            p += x as usize;
            new.extend_from_slice(extra);
            oldpos = oldpos.checked_add(s).ok_or("bspatch: overflow")?;
        }
        Ok(new)
    }

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }
        fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.next() as u8).collect()
        }
    }

    fn ctrl_word(v: i64) -> [u8; 8] {
        let m = v.unsigned_abs() | if v < 0 { 1 << 63 } else { 0 };
        m.to_le_bytes()
    }

    /// A well-formed random patch and its output size.
    fn random_patch(rng: &mut Rng, old_len: usize) -> (Vec<u8>, u64) {
        let mut patch = Vec::new();
        let mut size = 0u64;
        for _ in 0..rng.below(6) {
            let d = rng.below(200_000) as i64;
            let x = rng.below(1000) as i64;
            let s = rng.below(2 * old_len as u64 + 1) as i64 - old_len as i64;
            for v in [d, x, s] {
                patch.extend_from_slice(&ctrl_word(v));
            }
            patch.extend(rng.bytes((d + x) as usize));
            size += (d + x) as u64;
        }
        (patch, size)
    }

    /// Read `r` to the end with reads of random small sizes.
    fn read_choppy(r: &mut impl Read, rng: &mut Rng) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let mut buf = vec![0u8; 1 + rng.below(70_000) as usize];
            let n = r.read(&mut buf)?;
            if n == 0 {
                return Ok(out);
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    #[test]
    fn streaming_bspatch_matches_the_in_memory_one() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for round in 0..200 {
            let old_len = rng.below(100_000) as usize;
            let old = rng.bytes(old_len);
            let (mut patch, mut size) = random_patch(&mut rng, old.len());
            // Some rounds are damaged: cut, flipped or given a wrong size.
            match round % 5 {
                1 if !patch.is_empty() => {
                    let cut = rng.below(patch.len() as u64) as usize;
                    patch.truncate(cut);
                }
                2 if !patch.is_empty() => {
                    let at = rng.below(patch.len() as u64) as usize;
                    patch[at] ^= 0x80;
                }
                3 => size = rng.below(size + 10),
                _ => {}
            }
            let expected = bspatch_reference(&old, size, &patch);
            assert_eq!(bspatch(&old, size, &patch), expected, "round {round}");
            let got = Bspatch::new(&patch[..], &old[..], size)
                .and_then(|mut r| read_choppy(&mut r, &mut rng))
                .map_err(|e| e.to_string());
            assert_eq!(got, expected, "round {round} (choppy reads)");
        }
    }

    #[test]
    fn bspatch_refuses_hostile_controls() {
        let patch_of = |d: i64, x: i64, s: i64, tail: usize| {
            let mut p = Vec::new();
            for v in [d, x, s] {
                p.extend_from_slice(&ctrl_word(v));
            }
            p.extend(std::iter::repeat_n(1u8, tail));
            p
        };
        let cases = [
            (patch_of(-1, 0, 0, 0), 4, "negative length"),
            (patch_of(0, -3, 0, 0), 4, "negative length"),
            (patch_of(5, 0, 0, 5), 4, "diff past the end"),
            (patch_of(4, 0, 0, 3), 4, "truncated diff"),
            (patch_of(2, 3, 0, 5), 4, "extra past the end"),
            (patch_of(2, 2, 0, 3), 4, "truncated extra"),
            (patch_of(2, 2, i64::MAX, 4), 8, "overflow"),
        ];
        for (patch, size, msg) in cases {
            let e = bspatch(b"abcdef", size, &patch).unwrap_err();
            assert!(e.contains(msg), "{e} (expected {msg})");
            assert_eq!(Err(e), bspatch_reference(b"abcdef", size, &patch));
        }
        assert!(bspatch(b"", MAX_OBJECT_SIZE + 1, &[]).is_err());
    }

    /// Records what a part builds.
    #[derive(Default)]
    struct Collect {
        sources: std::collections::HashMap<Checksum, Vec<u8>>,
        built: Vec<(Checksum, Option<FileHeader>, Vec<u8>)>,
    }
    impl DeltaSink for Collect {
        type Error = ObjectError;
        type Source = Vec<u8>;
        fn read_source(&mut self, c: &Checksum) -> Result<Vec<u8>> {
            Ok(self.sources[c].clone())
        }
        fn write_meta(&mut self, _: ObjectType, c: &Checksum, b: &[u8]) -> Result<()> {
            self.built.push((*c, None, b.to_vec()));
            Ok(())
        }
        fn write_content(
            &mut self,
            c: &Checksum,
            h: &FileHeader,
            size: u64,
            r: &mut dyn Read,
        ) -> Result<()> {
            let mut v = Vec::new();
            r.read_to_end(&mut v).map_err(|e| ObjectError::Io {
                what: "test",
                source: e,
            })?;
            assert_eq!(v.len() as u64, size);
            self.built.push((*c, Some(h.clone()), v));
            Ok(())
        }
    }

    /// A part using every opcode: a metadata splice, a file splice, a
    /// symlink, writes from the data and from a read source, a bspatch.
    fn every_opcode_part() -> (Vec<(ObjectType, Checksum)>, PartPayload, Collect) {
        let old = b"the old file, read by the delta".to_vec();
        let src = Checksum([3; 32]);
        let mut data = Vec::new();
        data.extend_from_slice(b"dirmeta!");
        data.extend_from_slice(b"spliced content");
        data.extend_from_slice(b"target");
        data.extend_from_slice(&src.0);
        // bspatch: 3 diff bytes (+1 on "the"), 2 extra, then 4 diff bytes
        // from offset 4 ("old ").
        let patch_off = data.len() as u64;
        for v in [3i64, 2, 1] {
            data.extend_from_slice(&ctrl_word(v));
        }
        data.extend_from_slice(&[1, 1, 1]);
        data.extend_from_slice(b"XY");
        for v in [4i64, 0, 0] {
            data.extend_from_slice(&ctrl_word(v));
        }
        data.extend_from_slice(&[0, 0, 0, 0]);
        let patch_len = data.len() as u64 - patch_off;
        let mut ops = vec![b'S', 8, 0];
        ops.extend_from_slice(&[b'S', 0, 0, 15, 8]);
        ops.extend_from_slice(&[b'S', 1, 0, 6, 23]);
        ops.extend_from_slice(&[b'o', 0, 0, 9, b'w', 4, 8, b'w', 5, 0, b'c']);
        ops.extend_from_slice(&[b'r', 29, b'o', 0, 1, 7, b'w', 3, 4, b'w', 4, 0, b'c', b'R']);
        ops.extend_from_slice(&[b'r', 29, b'o', 0, 0, 9, b'B']);
        write_varuint64(&mut ops, patch_off);
        write_varuint64(&mut ops, patch_len);
        ops.extend_from_slice(b"cR");
        let objects = vec![
            (ObjectType::DirMeta, Checksum([1; 32])),
            (ObjectType::File, Checksum([2; 32])),
            (ObjectType::File, Checksum([4; 32])),
            (ObjectType::File, Checksum([5; 32])),
            (ObjectType::File, Checksum([6; 32])),
            (ObjectType::File, Checksum([7; 32])),
        ];
        let p = PartPayload {
            modes: vec![(0, 0, 0o100644), (0, 0, 0o120777)],
            xattrs: vec![
                Xattrs::new(),
                Xattrs::from_pairs([(b"user.a".to_vec(), b"b".to_vec())]),
            ],
            data,
            ops,
        };
        let mut sink = Collect::default();
        sink.sources.insert(src, old);
        (objects, p, sink)
    }

    #[test]
    fn a_part_read_by_offset_builds_what_it_builds_in_memory() {
        let (objects, p, mut mem) = every_opcode_part();
        execute_part(&objects, &p, &mut mem).unwrap();
        let contents: Vec<&[u8]> = mem.built.iter().map(|b| &b.2[..]).collect();
        let expected: [&[u8]; 6] = [
            b"dirmeta!",
            b"spliced content",
            b"",
            b"splidirme",
            b"oldthe ",
            b"uifXYold ",
        ];
        assert_eq!(contents, expected);
        assert_eq!(mem.built[2].1.as_ref().unwrap().symlink_target, "target");
        assert!(!mem.built[4].1.as_ref().unwrap().xattrs.is_empty());

        let encoded = p.encode();
        let tables = PartTables::read(&encoded[..]).unwrap();
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&encoded).unwrap();
        let file = FileAt::new(f).unwrap();
        let (_, _, mut from_file) = every_opcode_part();
        execute_part_at(&objects, &tables, &file, &mut from_file).unwrap();
        assert_eq!(from_file.built, mem.built);
    }

    #[test]
    fn a_bad_patch_fails_naming_its_object() {
        let (objects, mut p, mut sink) = every_opcode_part();
        // Shorten the second control's diff data: truncated diff.
        let n = p.ops.len();
        p.ops[n - 3] -= 1;
        let e = execute_part(&objects, &p, &mut sink).unwrap_err();
        let c = Checksum([7; 32]);
        assert!(e.to_string().contains(&format!("{c}.file")), "{e}");
        assert!(
            e.to_string().contains("bspatch: truncated diff data"),
            "{e}"
        );
    }

    #[test]
    fn splice_into_a_non_file_object_is_refused() {
        // Found by the delta_part fuzz target: `S` with content arguments
        // aimed at a file-xattrs object.
        let p = PartPayload {
            modes: vec![(0, 0, 0o100644)],
            xattrs: vec![Xattrs::new()],
            data: b"abc".to_vec(),
            ops: vec![b'S', 0, 0, 3, 0],
        };
        let c = Checksum([8; 32]);
        let mut sink = NullSink(0);
        let e = execute_part(&[(ObjectType::FileXattrs, c)], &p, &mut sink).unwrap_err();
        assert!(e.to_string().contains(&c.to_string()), "{e}");
        assert_eq!(sink.0, 0);
        execute_part(&[(ObjectType::File, c)], &p, &mut sink).unwrap();
        assert_eq!(sink.0, 1);
    }

    #[test]
    fn write_past_declared_size_names_the_object() {
        let p = PartPayload {
            modes: vec![(0, 0, 0o100644)],
            xattrs: vec![Xattrs::new()],
            data: b"abcdef".to_vec(),
            ops: vec![b'o', 0, 0, 2, b'w', 6, 0, b'c'],
        };
        let c = Checksum([9; 32]);
        let e = execute_part(&[(ObjectType::File, c)], &p, &mut NullSink(0)).unwrap_err();
        assert!(e.to_string().contains(&format!("{c}.file")), "{e}");
        assert!(e.to_string().contains("past the declared size"), "{e}");
    }

    #[test]
    fn bspatch_matches_the_bsdiff_stream_format() {
        // One control (3 diff, 2 extra, seek 0): "abc" + 1 each, then "XY".
        let mut patch = Vec::new();
        for v in [3u64, 2, 0] {
            patch.extend_from_slice(&v.to_le_bytes());
        }
        patch.extend_from_slice(&[1, 1, 1]);
        patch.extend_from_slice(b"XY");
        assert_eq!(bspatch(b"abc", 5, &patch).unwrap(), b"bcdXY");
    }

    #[test]
    fn ghash_order_small() {
        let keys: Vec<String> = vec!["a".into(), "b".into()];
        let o = ghash_order(&keys);
        assert_eq!(o.len(), 2);
    }
}

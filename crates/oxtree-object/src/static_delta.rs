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
    for x in a.iter() {
        let Value::U8(b) = x else { return None };
        out.push(*b);
    }
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
    let (&kind, data) = part.split_first().ok_or_else(|| bad("empty part"))?;
    match kind {
        0 => {
            if data.len() as u64 > max {
                return Err(bad("part payload larger than allowed"));
            }
            Ok(data.to_vec())
        }
        b'x' => {
            let mut out = Vec::new();
            let mut d = xz2::read::XzDecoder::new(data).take(max + 1);
            d.read_to_end(&mut out)
                .map_err(|e| ObjectError::Compression(format!("xz: {e}")))?;
            if out.len() as u64 > max {
                return Err(bad("part payload larger than allowed"));
            }
            Ok(out)
        }
        k => Err(bad(format!("unknown part compression {k}"))),
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
        let (mut p, e2, e3) = Self::decode_tables(b)?;
        p.data = b[e2..e3].to_vec();
        Ok(p)
    }

    /// Like [`decode`](Self::decode), but takes the payload buffer and
    /// keeps the data section in it (moved to its front in place) instead
    /// of copying it: a part's payload is up to 32 MiB, almost all data,
    /// and holding it twice doubled the peak memory of applying a part.
    pub fn decode_owned(mut b: Vec<u8>) -> Result<Self> {
        let (mut p, e2, e3) = Self::decode_tables(&b)?;
        b.truncate(e3);
        b.drain(..e2);
        p.data = b;
        Ok(p)
    }

    /// Everything but the data section, and that section's bounds.
    fn decode_tables(b: &[u8]) -> Result<(Self, usize, usize)> {
        if b.is_empty() {
            return Err(bad("empty part payload"));
        }
        let os = offset_size(b.len());
        if b.len() < 3 * os {
            return Err(bad("part payload too short"));
        }
        let fr = b.len() - 3 * os;
        let e3 = read_offset(&b[fr..fr + os]);
        let e2 = read_offset(&b[fr + os..fr + 2 * os]);
        let e1 = read_offset(&b[fr + 2 * os..fr + 3 * os]);
        if !(e1 <= e2 && e2 <= e3 && e3 <= fr) {
            return Err(bad("bad part payload framing"));
        }
        let modes_b = &b[..e1];
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
        let xattrs = split_var_array(&b[e1..e2])?
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
        Ok((
            PartPayload {
                modes,
                xattrs,
                data: Vec::new(),
                ops: b[e3..fr].to_vec(),
            },
            e2,
            e3,
        ))
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
    /// Content of a regular file object the delta reads from.
    fn read_source(&mut self, csum: &Checksum) -> std::result::Result<Vec<u8>, Self::Error>;
    fn write_meta(
        &mut self,
        kind: ObjectType,
        csum: &Checksum,
        bytes: &[u8],
    ) -> std::result::Result<(), Self::Error>;
    fn write_content(
        &mut self,
        csum: &Checksum,
        header: &FileHeader,
        content: &[u8],
    ) -> std::result::Result<(), Self::Error>;
}

struct OpenObject {
    csum: Checksum,
    header: FileHeader,
    size: u64,
    buf: Vec<u8>,
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

fn slice<'a>(data: &'a [u8], off: u64, len: u64, what: &dyn Fn() -> String) -> Result<&'a [u8]> {
    let end = off
        .checked_add(len)
        .filter(|&e| e <= data.len() as u64)
        .ok_or_else(|| {
            bad(format!(
                "{}: offset {off} + length {len} is outside the {} bytes of part data",
                what(),
                data.len()
            ))
        })?;
    Ok(&data[off as usize..end as usize])
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
    let data = &payload.data[..];
    let mut c = Cursor {
        ops: &payload.ops,
        pos: 0,
    };
    let mut idx = 0usize;
    let mut open: Option<OpenObject> = None;
    let mut source: Option<(Checksum, Vec<u8>)> = None;
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
        let (uid, gid, mode) = *payload
            .modes
            .get(usize::try_from(mo).unwrap_or(usize::MAX))
            .ok_or_else(|| bad(format!("{}: mode index {mo} out of range", n())))?;
        let xattrs = payload
            .xattrs
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
    while c.pos < payload.ops.len() {
        let op = payload.ops[c.pos];
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
                    let b = slice(data, off, len, &n)?;
                    sink.write_meta(kind, &csum, b)?;
                } else if kind != ObjectType::File {
                    return Err(bad(format!("{}: not a file or metadata object", n())).into());
                } else {
                    let mut h = content_open(&mut c, idx)?;
                    let len = c.var(&n)?;
                    let off = c.var(&n)?;
                    let b = slice(data, off, len, &n)?;
                    if crate::mode::is_lnk(h.mode) {
                        h.symlink_target = String::from_utf8(b.to_vec())
                            .map_err(|_| bad(format!("{}: symlink target is not UTF-8", n())))?;
                        h.validate().map_err(|e| bad(format!("{}: {e}", n())))?;
                        sink.write_content(&csum, &h, &[])?;
                    } else {
                        h.validate().map_err(|e| bad(format!("{}: {e}", n())))?;
                        sink.write_content(&csum, &h, b)?;
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
                    buf: Vec::new(),
                });
            }
            OP_WRITE => {
                let n = || name(idx);
                let len = c.var(&n)?;
                let off = c.var(&n)?;
                let o = open
                    .as_mut()
                    .ok_or_else(|| bad(format!("{}: write with no open object", n())))?;
                let src: &[u8] = match &source {
                    Some((_, s)) => s,
                    None => data,
                };
                let b = slice(src, off, len, &n)?;
                if o.buf.len() as u64 + len > o.size {
                    return Err(bad(format!(
                        "{}: write past the declared size of {} bytes",
                        n(),
                        o.size
                    ))
                    .into());
                }
                o.buf.extend_from_slice(b);
            }
            OP_SET_READ_SOURCE => {
                let n = || name(idx);
                let off = c.var(&n)?;
                let b = slice(data, off, 32, &n)?;
                let src = Checksum::from_bytes(b)?;
                let content = sink.read_source(&src)?;
                source = Some((src, content));
            }
            OP_UNSET_READ_SOURCE => source = None,
            OP_CLOSE => {
                let n = || name(idx);
                let o = open
                    .take()
                    .ok_or_else(|| bad(format!("{}: close with no open object", n())))?;
                if o.buf.len() as u64 != o.size {
                    return Err(bad(format!(
                        "{}: {} bytes written, {} declared",
                        n(),
                        o.buf.len(),
                        o.size
                    ))
                    .into());
                }
                sink.write_content(&o.csum, &o.header, &o.buf)?;
                idx += 1;
            }
            OP_BSPATCH => {
                let n = || name(idx);
                let off = c.var(&n)?;
                let len = c.var(&n)?;
                let patch = slice(data, off, len, &n)?;
                let o = open
                    .as_mut()
                    .ok_or_else(|| bad(format!("{}: bspatch with no open object", n())))?;
                let (_, old) = source
                    .as_ref()
                    .ok_or_else(|| bad(format!("{}: bspatch with no read source", n())))?;
                if !o.buf.is_empty() {
                    return Err(bad(format!("{}: bspatch after a write", n())).into());
                }
                o.buf = bspatch(old, o.size, patch).map_err(|e| bad(format!("{}: {e}", n())))?;
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

/// Apply a raw bsdiff stream (the header-less format of mendsley's bsdiff
/// library, which ostree uses): control triples of sign-magnitude
/// little-endian i64 (diff length, extra length, seek), each followed by
/// the diff and extra bytes. `new_size` comes from the delta.
pub fn bspatch(old: &[u8], new_size: u64, patch: &[u8]) -> std::result::Result<Vec<u8>, String> {
    if new_size > MAX_OBJECT_SIZE {
        return Err(format!("bspatch output of {new_size} bytes is too large"));
    }
    let new_size = new_size as usize;
    let mut new = Vec::with_capacity(new_size.min(patch.len().saturating_mul(64) + 4096));
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
        assert_eq!(PartPayload::decode_owned(b.clone()).unwrap(), p);
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
        fn read_source(&mut self, _: &Checksum) -> Result<Vec<u8>> {
            Ok(Vec::new())
        }
        fn write_meta(&mut self, _: ObjectType, _: &Checksum, _: &[u8]) -> Result<()> {
            self.0 += 1;
            Ok(())
        }
        fn write_content(&mut self, _: &Checksum, _: &FileHeader, _: &[u8]) -> Result<()> {
            self.0 += 1;
            Ok(())
        }
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

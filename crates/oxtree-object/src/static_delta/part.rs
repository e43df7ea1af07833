//! Part framing: the `(yay)` part file (compression byte, xz), and its
//! payload `(a(uuu)aa(ayay)ayay)` encoded, decoded or read as tables.

use super::bad;
use super::positional::{RandomRead, SeqReader, Window};
use crate::error::{ObjectError, Result};
use crate::gvariant::{decode, encode, offset_width, read_width};
use crate::xattrs::Xattrs;
use std::io::{Read, Write};

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

fn write_offset(out: &mut Vec<u8>, v: usize, size: usize) {
    out.extend_from_slice(&(v as u64).to_le_bytes()[..size]);
}

fn read_offset(b: &[u8]) -> usize {
    let mut a = [0u8; 8];
    a[..b.len()].copy_from_slice(b);
    u64::from_le_bytes(a) as usize
}

impl PartPayload {
    /// The payload tuple is framed here rather than by the codec so that
    /// its data section (up to 1 GiB) is written and read in place.
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
        let xattrs: Vec<Vec<(Vec<u8>, Vec<u8>)>> =
            self.xattrs.iter().map(|x| x.wire().clone()).collect();
        (modes, encode(&xattrs))
    }

    /// The length of [`PartPayload::encode`]'s output.
    pub fn encoded_len(&self) -> usize {
        let (modes, xattrs) = self.tables();
        let body = modes.len() + xattrs.len() + self.data.len() + self.ops.len();
        body + 3 * offset_width(body, 3)
    }

    /// Write [`PartPayload::encode`]'s bytes to `w`, piece by piece.
    pub fn write_to<W: Write>(&self, w: &mut W) -> std::io::Result<()> {
        let (modes, xattrs) = self.tables();
        let e1 = modes.len();
        let e2 = e1 + xattrs.len();
        let e3 = e2 + self.data.len();
        let body = e3 + self.ops.len();
        let os = offset_width(body, 3);
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
        let os = read_width(total);
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
        let xattrs: Vec<Vec<(Vec<u8>, Vec<u8>)>> = decode("delta xattrs", &head[e1..e2])?;
        let xattrs = xattrs
            .into_iter()
            .map(Xattrs::from_wire)
            .collect::<Result<Vec<_>>>()?;
        Ok(PartTables {
            modes,
            xattrs,
            ops,
            data: e2 as u64..e3 as u64,
        })
    }
}

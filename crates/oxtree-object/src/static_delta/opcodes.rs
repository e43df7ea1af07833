//! The opcode interpreter: varuint64 arguments, opcode counts, and the
//! run of a part's opcodes that streams each rebuilt object to a [`DeltaSink`].

use super::bsdiff::Bspatch;
use super::part::{PartPayload, PartTables};
use super::positional::{RandomRead, Window};
use super::{bad, MAX_OBJECT_SIZE};
use crate::checksum::Checksum;
use crate::error::{ObjectError, Result};
use crate::file::FileHeader;
use crate::objtype::ObjectType;
use crate::xattrs::Xattrs;
use std::io::Read;
use std::rc::Rc;

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

//! Building a delta's parts: payloads and opcodes gathered object by
//! object ([`Builder`]), each finished part compressed with xz on a
//! thread of its own and written beside the superblock (or kept inline).

use super::{invalid, GenerateOptions};
use crate::error::{IoContext, Result};
use oxtree_object::static_delta::{self as sd, PartPayload};
use oxtree_object::{Checksum, FileHeader, ObjectType};
use std::collections::HashMap;
use std::path::Path;

pub(super) struct PartBuilder {
    payload: PartPayload,
    modes: HashMap<(u32, u32, u32), usize>,
    xattrs: HashMap<oxtree_object::Xattrs, usize>,
    objects: Vec<(ObjectType, Checksum)>,
    usize: u64,
}

impl PartBuilder {
    pub(super) fn new() -> Self {
        PartBuilder {
            payload: PartPayload::default(),
            modes: HashMap::new(),
            xattrs: HashMap::new(),
            objects: Vec::new(),
            usize: 0,
        }
    }

    fn mode_xattr(&mut self, h: &FileHeader) -> (u64, u64) {
        let key = (h.uid, h.gid, h.mode);
        let n = self.payload.modes.len();
        let m = *self.modes.entry(key).or_insert_with(|| n);
        if m == n {
            self.payload.modes.push(key);
        }
        let n = self.payload.xattrs.len();
        let x = *self.xattrs.entry(h.xattrs.clone()).or_insert(n);
        if x == n {
            self.payload.xattrs.push(h.xattrs.clone());
        }
        (m as u64, x as u64)
    }
}

/// A finished part's payload, to compress: (index, payload).
pub(super) type PartJob = (usize, PartPayload);
/// A compressed part: (index, checksum, size, bytes when inline).
pub(super) type PartDone = (usize, Checksum, u64, Option<Vec<u8>>);

pub(super) struct Builder<'a> {
    pub(super) opts: &'a GenerateOptions,
    pub(super) cur: PartBuilder,
    /// (usize, objects) of each finished part, by index.
    pub(super) headers: Vec<(u64, Vec<(ObjectType, Checksum)>)>,
    /// To the compressing thread (bounded: at most one part waits).
    pub(super) send: std::sync::mpsc::SyncSender<PartJob>,
}

impl Builder<'_> {
    fn room(&mut self, add: u64) -> Result<()> {
        if !self.cur.objects.is_empty()
            && self.cur.payload.data.len() as u64 + add > self.opts.max_chunk_size
        {
            self.flush()?;
        }
        Ok(())
    }

    pub(super) fn flush(&mut self) -> Result<()> {
        if self.cur.objects.is_empty() {
            return Ok(());
        }
        self.flush_part()
    }

    pub(super) fn flush_part(&mut self) -> Result<()> {
        let p = std::mem::replace(&mut self.cur, PartBuilder::new());
        let i = self.headers.len();
        self.headers.push((p.usize, p.objects));
        self.send
            .send((i, p.payload))
            .map_err(|_| invalid("the part compressor stopped"))
    }
}

/// Compress parts as they come (xz, on its own thread so the next part is
/// gathered meanwhile) and write them to `dir` unless inline.
pub(super) fn compress_parts(
    recv: std::sync::mpsc::Receiver<PartJob>,
    dir: &Path,
    inline: bool,
) -> Result<Vec<PartDone>> {
    let mut out = Vec::new();
    for (i, payload) in recv {
        // Encoded straight into the compressor: no second copy.
        let bytes = sd::compress_part_payload(&payload);
        drop(payload);
        let csum = Checksum::of(&bytes);
        let size = bytes.len() as u64;
        if inline {
            out.push((i, csum, size, Some(bytes)));
        } else {
            let path = dir.join(i.to_string());
            std::fs::write(&path, &bytes).ctx(|| format!("writing {}", path.display()))?;
            out.push((i, csum, size, None));
        }
    }
    Ok(out)
}

impl Builder<'_> {
    pub(super) fn add_meta(
        &mut self,
        kind: ObjectType,
        csum: Checksum,
        bytes: &[u8],
    ) -> Result<()> {
        self.room(bytes.len() as u64)?;
        let p = &mut self.cur;
        let off = p.payload.data.len() as u64;
        p.payload.data.extend_from_slice(bytes);
        p.payload.ops.push(sd::OP_OPEN_SPLICE_AND_CLOSE);
        sd::write_varuint64(&mut p.payload.ops, bytes.len() as u64);
        sd::write_varuint64(&mut p.payload.ops, off);
        p.objects.push((kind, csum));
        p.usize += bytes.len() as u64;
        Ok(())
    }

    pub(super) fn add_content(
        &mut self,
        csum: Checksum,
        h: &FileHeader,
        content: &[u8],
    ) -> Result<()> {
        let data: &[u8] = if h.is_symlink() {
            h.symlink_target.as_bytes()
        } else {
            content
        };
        self.room(data.len() as u64)?;
        let p = &mut self.cur;
        let (m, x) = p.mode_xattr(h);
        let off = p.payload.data.len() as u64;
        p.payload.data.extend_from_slice(data);
        let ops = &mut p.payload.ops;
        ops.push(sd::OP_OPEN_SPLICE_AND_CLOSE);
        sd::write_varuint64(ops, m);
        sd::write_varuint64(ops, x);
        sd::write_varuint64(ops, data.len() as u64);
        sd::write_varuint64(ops, off);
        p.objects.push((ObjectType::File, csum));
        if h.is_regular() {
            p.usize += content.len() as u64;
        }
        Ok(())
    }

    pub(super) fn add_bsdiff(
        &mut self,
        csum: Checksum,
        h: &FileHeader,
        from: &Checksum,
        size: u64,
        patch: &[u8],
    ) -> Result<()> {
        self.room(patch.len() as u64 + 32)?;
        let p = &mut self.cur;
        let (m, x) = p.mode_xattr(h);
        let ops = &mut p.payload.ops;
        ops.push(sd::OP_SET_READ_SOURCE);
        sd::write_varuint64(ops, p.payload.data.len() as u64);
        p.payload.data.extend_from_slice(&from.0);
        ops.push(sd::OP_OPEN);
        sd::write_varuint64(ops, m);
        sd::write_varuint64(ops, x);
        sd::write_varuint64(ops, size);
        ops.push(sd::OP_BSPATCH);
        sd::write_varuint64(ops, p.payload.data.len() as u64);
        sd::write_varuint64(ops, patch.len() as u64);
        p.payload.data.extend_from_slice(patch);
        ops.push(sd::OP_CLOSE);
        ops.push(sd::OP_UNSET_READ_SOURCE);
        p.objects.push((ObjectType::File, csum));
        p.usize += size;
        Ok(())
    }
}

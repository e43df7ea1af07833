//! Static deltas in a repository: list, load, delete, generate, apply.
//!
//! Applying never trusts the delta: every part is checked against its
//! size and checksum from the superblock before it is decompressed, every
//! rebuilt object goes through the transaction's verified writes, and the
//! superblock's commit must hash to the delta's target. Nothing is
//! published unless the whole delta applied; no ref is touched.

use crate::error::{IoContext, RepoError, Result};
use crate::objects::loose_path;
use crate::{fsutil, Repo, Transaction};
use oxtree_io::Chain;
use oxtree_object::static_delta::{
    self as sd, DeltaSink, Fallback, FileAt, PartHeader, PartPayload, PartTables, RandomRead,
    SeqReader, Superblock,
};
use oxtree_object::ObjectError;
use oxtree_object::{Checksum, Commit, FileHeader, Metadata, ObjectType};
use rustix::fs::{self as rfs, AtFlags};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use zvariant::Value;

/// Options of `static-delta generate` (sizes in bytes).
#[derive(Clone, Debug)]
pub struct GenerateOptions {
    pub min_fallback_size: u64,
    pub max_bsdiff_size: u64,
    pub max_chunk_size: u64,
    pub bsdiff: bool,
    pub inline: bool,
    /// Timestamp to record (seconds since the epoch).
    pub timestamp: u64,
    /// `--filename`: write the superblock to this file and the parts
    /// beside it, instead of into the repository's `deltas/`.
    pub output: Option<PathBuf>,
    /// Record the superblock's numbers big-endian (`ostree.endianness`
    /// 'B', `--swap-endianness` on this little-endian host).
    pub big_endian: bool,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            min_fallback_size: 4_000_000,
            max_bsdiff_size: 128_000_000,
            max_chunk_size: 32_000_000,
            bsdiff: true,
            inline: false,
            timestamp: 0,
            output: None,
            big_endian: false,
        }
    }
}

/// What a generation produced.
#[derive(Clone, Debug, Default)]
pub struct GenerateReport {
    pub name: String,
    pub parts: usize,
    pub fallbacks: usize,
    pub bsdiff: usize,
    pub superblock_checksum: Option<Checksum>,
}

fn invalid(msg: impl Into<String>) -> RepoError {
    RepoError::Invalid(msg.into())
}

impl Repo {
    /// Names of every delta in `deltas/` (`FROM-TO` or `TO`).
    pub fn list_static_deltas(&self) -> Result<Vec<String>> {
        let dir = match fsutil::open_dir_at(self.dir(), "deltas") {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).ctx(|| "opening deltas/"),
        };
        let mut out = Vec::new();
        for (prefix, ft) in fsutil::list_dir(&dir).ctx(|| "listing deltas/")? {
            if !ft.is_dir() || prefix.len() != 2 {
                continue;
            }
            let sub =
                fsutil::open_dir_at(&dir, &prefix).ctx(|| format!("opening deltas/{prefix}"))?;
            for (rest, ft) in fsutil::list_dir(&sub).ctx(|| "listing deltas")? {
                if !ft.is_dir() {
                    continue;
                }
                if let Ok((f, t)) = sd::parse_delta_dir(&prefix, &rest) {
                    if rfs::statat(&sub, format!("{rest}/superblock"), AtFlags::empty()).is_ok() {
                        out.push(sd::delta_name(f.as_ref(), &t));
                    }
                }
            }
        }
        // Directory order, as ostree lists them.
        Ok(out)
    }

    /// Path of a delta's directory (whether or not it exists).
    pub fn static_delta_dir(&self, name: &str) -> Result<PathBuf> {
        let (f, t) = sd::parse_delta_name(name)
            .map_err(|_| invalid(format!("invalid delta name '{name}'")))?;
        Ok(self.path().join(sd::delta_dir(f.as_ref(), &t)))
    }

    /// The superblock file bytes of a delta in this repository.
    pub fn load_static_delta_superblock(&self, name: &str) -> Result<Vec<u8>> {
        let (f, t) = sd::parse_delta_name(name)
            .map_err(|_| invalid(format!("invalid delta name '{name}'")))?;
        let rel = format!("{}/superblock", sd::delta_dir(f.as_ref(), &t));
        match fsutil::read_at(self.dir(), &rel) {
            Ok(b) => Ok(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(invalid(format!("Static delta '{name}' not found")))
            }
            Err(e) => Err(e).ctx(|| format!("reading {rel}")),
        }
    }

    /// Remove a delta's directory.
    pub fn delete_static_delta(&self, name: &str) -> Result<()> {
        let (f, t) = sd::parse_delta_name(name)
            .map_err(|_| invalid(format!("invalid delta name '{name}'")))?;
        let rel = sd::delta_dir(f.as_ref(), &t);
        if rfs::statat(self.dir(), &rel, AtFlags::empty()).is_err() {
            return Err(invalid(format!("Static delta '{name}' not found")));
        }
        crate::transaction::remove_tree_at(self.dir(), &rel).ctx(|| format!("removing {rel}"))
    }

    /// `(name, superblock checksum)` of every delta.
    pub fn static_delta_checksums(&self) -> Result<Vec<(String, Checksum)>> {
        self.list_static_deltas()?
            .into_iter()
            .map(|n| {
                let b = self.load_static_delta_superblock(&n)?;
                Ok((n, Checksum::of(&b)))
            })
            .collect()
    }
}

/// Parse superblock file bytes, unwrapping a signed superblock.
pub fn parse_superblock_file(bytes: &[u8]) -> Result<(Superblock, Option<Metadata>)> {
    match sd::decode_signed(bytes)? {
        Some((inner, sigs)) => Ok((Superblock::decode(&inner)?, Some(sigs))),
        None => Ok((Superblock::decode(bytes)?, None)),
    }
}

// ------------------------------------------------------------------ apply

/// Bytes held in memory while small, else in an unnamed temp file: a
/// decompressed part payload or a delta's read source.
enum Blob {
    Mem(Vec<u8>),
    File(FileAt),
}

impl RandomRead for Blob {
    fn size(&self) -> u64 {
        match self {
            Blob::Mem(v) => v.size(),
            Blob::File(f) => f.size(),
        }
    }
    fn read_exact_at(&self, buf: &mut [u8], off: u64) -> std::io::Result<()> {
        match self {
            Blob::Mem(v) => v.read_exact_at(buf, off),
            Blob::File(f) => f.read_exact_at(buf, off),
        }
    }
}

/// Up to this many bytes, a [`Blob`] stays in memory.
const BLOB_IN_MEMORY: usize = 1 << 20;

/// Fills a [`Blob`], moving to a temp file in the transaction's staging
/// directory once it outgrows [`BLOB_IN_MEMORY`].
struct BlobWriter<'a, 'r> {
    tx: &'a Transaction<'r>,
    mem: Vec<u8>,
    file: Option<BufWriter<std::fs::File>>,
}

impl<'a, 'r> BlobWriter<'a, 'r> {
    fn new(tx: &'a Transaction<'r>) -> Self {
        BlobWriter {
            tx,
            mem: Vec::new(),
            file: None,
        }
    }

    fn finish(self) -> std::io::Result<Blob> {
        match self.file {
            Some(w) => Ok(Blob::File(FileAt::new(
                w.into_inner().map_err(|e| e.into_error())?,
            )?)),
            None => Ok(Blob::Mem(self.mem)),
        }
    }
}

impl Write for BlobWriter<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.file.is_none() && self.mem.len() + buf.len() > BLOB_IN_MEMORY {
            let mut w = BufWriter::with_capacity(128 << 10, self.tx.temp_file()?);
            w.write_all(&std::mem::take(&mut self.mem))?;
            self.file = Some(w);
        }
        match &mut self.file {
            Some(w) => w.write(buf),
            None => {
                self.mem.extend_from_slice(buf);
                Ok(buf.len())
            }
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.file {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }
}

/// Passes bytes on to `out` (if any) while hashing them.
struct HashingWriter<W> {
    hasher: oxtree_object::Hasher,
    out: W,
    len: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Writes a part's objects through a transaction, verified.
struct TxSink<'a, 'r> {
    tx: &'a Transaction<'r>,
    /// Bytes the part may still produce (its declared `usize`).
    budget: u64,
    header_usize: u64,
}

impl TxSink<'_, '_> {
    fn charge(&mut self, n: u64, what: &str) -> Result<()> {
        if n > self.budget {
            return Err(invalid(format!(
                "static delta part builds more than its declared {} bytes (at {what})",
                self.header_usize
            )));
        }
        self.budget -= n;
        Ok(())
    }
}

impl DeltaSink for TxSink<'_, '_> {
    type Error = RepoError;
    type Source = Blob;

    /// The source's content, its checksum verified once: read in place
    /// for bare modes, decompressed to a [`Blob`] for archive.
    fn read_source(&mut self, csum: &Checksum) -> Result<Blob> {
        let mut f = self.tx.repo().open_file(csum)?;
        if !f.header.is_regular() {
            return Err(invalid(format!(
                "delta read source {csum}.file is not a regular file"
            )));
        }
        if f.size > sd::MAX_OBJECT_SIZE {
            return Err(invalid(format!(
                "delta read source {csum}.file is too large"
            )));
        }
        let reading = || format!("reading {csum}.file");
        let hasher = f.header.hasher();
        let mut content =
            std::io::BufReader::with_capacity(128 << 10, (&mut f.content).take(f.size + 1));
        let (actual, len, blob) = match f.fd.take() {
            Some(fd) => {
                let mut w = HashingWriter {
                    hasher,
                    out: std::io::sink(),
                    len: 0,
                };
                std::io::copy(&mut content, &mut w).ctx(reading)?;
                let file = FileAt::new(std::fs::File::from(fd)).ctx(reading)?;
                (w.hasher.finish(), w.len, Blob::File(file))
            }
            None => {
                let mut w = HashingWriter {
                    hasher,
                    out: BlobWriter::new(self.tx),
                    len: 0,
                };
                std::io::copy(&mut content, &mut w).ctx(reading)?;
                let blob = w.out.finish().ctx(reading)?;
                (w.hasher.finish(), w.len, blob)
            }
        };
        if actual != *csum || len != f.size || blob.size() != f.size {
            return Err(RepoError::BadObject {
                checksum: *csum,
                kind: ObjectType::File,
                reason: format!("corrupt delta read source: content hashes to {actual}"),
            });
        }
        Ok(blob)
    }

    fn write_meta(&mut self, kind: ObjectType, csum: &Checksum, bytes: &[u8]) -> Result<()> {
        self.charge(bytes.len() as u64, &format!("{csum}.{}", kind.as_str()))?;
        self.tx.write_meta_trusted_name(kind, csum, bytes)
    }

    fn write_content(
        &mut self,
        csum: &Checksum,
        header: &FileHeader,
        size: u64,
        content: &mut dyn Read,
    ) -> Result<()> {
        self.charge(size, &format!("{csum}.file"))?;
        self.tx.write_content_expect(csum, header, size, content)?;
        Ok(())
    }
}

/// Applies the parts of one delta; the pull code calls `apply_part` for
/// each part it fetched, then `finish`.
#[derive(Debug)]
pub struct StaticDeltaApplier<'a, 'r> {
    pub superblock: &'a Superblock,
    tx: &'a Transaction<'r>,
}

impl<'a, 'r> StaticDeltaApplier<'a, 'r> {
    /// Check the superblock against the repository: its commit must hash
    /// to its target and its source commit must be present.
    pub fn new(superblock: &'a Superblock, tx: &'a Transaction<'r>) -> Result<Self> {
        let actual = Checksum::of(&superblock.commit_bytes);
        if actual != superblock.to {
            return Err(RepoError::BadObject {
                checksum: superblock.to,
                kind: ObjectType::Commit,
                reason: format!("static delta superblock carries a commit hashing to {actual}"),
            });
        }
        if let Some(from) = &superblock.from {
            if !tx.repo().has_object(ObjectType::Commit, from)? {
                return Err(invalid(format!(
                    "static delta source commit {from} is not in the repository"
                )));
            }
        }
        Ok(StaticDeltaApplier { superblock, tx })
    }

    /// True when every object of part `i` is already present.
    pub fn part_is_present(&self, i: usize) -> Result<bool> {
        let p = self
            .superblock
            .parts
            .get(i)
            .ok_or_else(|| invalid(format!("no part {i}")))?;
        for (k, c) in &p.objects {
            if !self.tx.repo().has_object(*k, c)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Verify part `i`'s bytes (size and checksum from the superblock),
    /// decompress them within bounds and write its objects, verified.
    /// The part is read by offset (from memory or a file): large parts and
    /// objects are streamed, never held whole in memory.
    pub fn apply_part<D: RandomRead + ?Sized>(&self, i: usize, part: &D) -> Result<()> {
        let h = self
            .superblock
            .parts
            .get(i)
            .ok_or_else(|| invalid(format!("no part {i}")))?;
        apply_part(h, i, part, self.tx)
    }

    /// The target commit's detached metadata carried in the superblock
    /// (`a{sv}` bytes), if any.
    pub fn detached_metadata(&self) -> Result<Option<Vec<u8>>> {
        let sb = self.superblock;
        match sb.metadata.get(&sb.detached_key()) {
            Some(v) => {
                let md = match v {
                    Value::Value(inner) => value_to_metadata(inner),
                    other => value_to_metadata(other),
                }
                .ok_or_else(|| invalid("static delta detached metadata is not an a{sv}"))?;
                Ok(Some(md.encode()))
            }
            None => Ok(None),
        }
    }

    /// Write the commit once all parts and fallback objects are in.
    /// Returns the detached metadata the superblock carries, which the
    /// caller stores (`Repo::write_detached_metadata_bytes`) after the
    /// transaction committed, as it is named by the commit, not its bytes.
    pub fn finish(&self) -> Result<Option<Vec<u8>>> {
        let sb = self.superblock;
        for f in &sb.fallbacks {
            if !self.tx.repo().has_object(f.kind, &f.checksum)? {
                return Err(invalid(format!(
                    "fallback object {}.{} is missing",
                    f.checksum,
                    f.kind.as_str()
                )));
            }
        }
        let detached = self.detached_metadata()?;
        self.tx
            .write_meta_trusted_name(ObjectType::Commit, &sb.to, &sb.commit_bytes)?;
        Ok(detached)
    }
}

fn value_to_metadata(v: &Value<'_>) -> Option<Metadata> {
    let Value::Dict(d) = v else { return None };
    let mut md = Metadata::new();
    for (k, val) in d.iter() {
        let Value::Str(k) = k else { return None };
        let val = match val {
            Value::Value(inner) => (**inner).try_clone().ok()?,
            other => other.try_clone().ok()?,
        };
        md.set(k.as_str(), val);
    }
    Some(md)
}

/// Verify and apply one part (the API the pull code uses per fetched part).
pub fn apply_part<D: RandomRead + ?Sized>(
    h: &PartHeader,
    i: usize,
    part: &D,
    tx: &Transaction<'_>,
) -> Result<()> {
    if part.size() != h.size {
        return Err(invalid(format!(
            "static delta part {i} ({}) is {} bytes, the superblock says {}",
            h.checksum,
            part.size(),
            h.size
        )));
    }
    let mut hasher = oxtree_object::Hasher::new();
    std::io::copy(
        &mut std::io::BufReader::with_capacity(128 << 10, SeqReader::new(part)),
        &mut hasher,
    )
    .ctx(|| format!("reading static delta part {i}"))?;
    let actual = hasher.finish();
    if actual != h.checksum {
        return Err(invalid(format!(
            "static delta part {i} is corrupt: expected checksum {}, got {actual}",
            h.checksum
        )));
    }
    let bad_part = |e: ObjectError| {
        invalid(format!(
            "static delta part {i} ({}): {}",
            h.checksum,
            Chain(&e)
        ))
    };
    // The payload holds the objects' bytes (or patches about as large),
    // tables and opcodes: twice the declared object bytes plus 16 MiB is
    // generous and stops a small part from inflating without bound. Past
    // 1 MiB it goes to an unnamed temp file, read back by offset.
    let max = h
        .usize
        .saturating_mul(2)
        .saturating_add(16 << 20)
        .min(sd::MAX_PART_PAYLOAD);
    let mut w = BlobWriter::new(tx);
    sd::decompress_part_to(part, &mut w, max).map_err(bad_part)?;
    let payload = w
        .finish()
        .ctx(|| format!("writing static delta part {i}"))?;
    let tables = PartTables::read(&payload).map_err(bad_part)?;
    let mut sink = TxSink {
        tx,
        budget: h.usize,
        header_usize: h.usize,
    };
    sd::execute_part_at(&h.objects, &tables, &payload, &mut sink).map_err(|e| match e {
        RepoError::Object(o) => invalid(format!("static delta part {i}: {o}")),
        other => other,
    })
}

/// Where a delta's files are: its directory, and the superblock file.
fn locate(repo: &Repo, spec: &str) -> Result<(PathBuf, PathBuf)> {
    let p = Path::new(spec);
    if p.is_dir() {
        return Ok((p.to_path_buf(), p.join("superblock")));
    }
    if p.is_file() {
        let dir = p
            .parent()
            .map(|d| d.to_path_buf())
            .unwrap_or_else(|| PathBuf::from("."));
        return Ok((dir, p.to_path_buf()));
    }
    let dir = repo.static_delta_dir(spec)?;
    let sb = dir.join("superblock");
    Ok((dir, sb))
}

/// `static-delta apply-offline`: apply a delta given as a directory, a
/// superblock file or a delta name in this repository. Returns the target.
pub fn apply_offline(repo: &Repo, spec: &str) -> Result<Checksum> {
    let (dir, sbpath) = locate(repo, spec)?;
    let bytes = std::fs::read(&sbpath).ctx(|| format!("reading {}", sbpath.display()))?;
    let (sb, _sigs) = parse_superblock_file(&bytes)?;
    apply_superblock(repo, &sb, |i, tx| {
        if let Some(b) = sb.inline_part(i) {
            return Ok(Box::new(b));
        }
        // A copy of our own: the part is read twice (checksum, then
        // payload), and a file someone else can write could change between.
        let p = dir.join(i.to_string());
        let mut w = BlobWriter::new(tx);
        std::fs::File::open(&p)
            .and_then(|mut f| std::io::copy(&mut f, &mut w))
            .and_then(|_| w.finish())
            .map(|b| Box::new(b) as Box<dyn RandomRead>)
            .ctx(|| format!("reading {}", p.display()))
    })?;
    Ok(sb.to)
}

/// Apply a parsed superblock, reading parts with `part`, in one transaction.
pub fn apply_superblock(
    repo: &Repo,
    sb: &Superblock,
    mut part: impl FnMut(usize, &Transaction<'_>) -> Result<Box<dyn RandomRead>>,
) -> Result<()> {
    let tx = repo.begin()?;
    let applier = StaticDeltaApplier::new(sb, &tx)?;
    for i in 0..sb.parts.len() {
        if applier.part_is_present(i)? {
            continue;
        }
        let b = part(i, &tx)?;
        applier.apply_part(i, &*b)?;
    }
    let detached = applier.finish()?;
    let sync = tx.sync_enabled();
    tx.commit()?;
    if let Some(d) = detached {
        repo.write_detached_metadata_bytes(&sb.to, &d, sync)?;
    }
    Ok(())
}

// ------------------------------------------------------------------ generate

struct PartBuilder {
    payload: PartPayload,
    modes: HashMap<(u32, u32, u32), usize>,
    xattrs: HashMap<oxtree_object::Xattrs, usize>,
    objects: Vec<(ObjectType, Checksum)>,
    usize: u64,
}

impl PartBuilder {
    fn new() -> Self {
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
type PartJob = (usize, PartPayload);
/// A compressed part: (index, checksum, size, bytes when inline).
type PartDone = (usize, Checksum, u64, Option<Vec<u8>>);

struct Builder<'a> {
    opts: &'a GenerateOptions,
    cur: PartBuilder,
    /// (usize, objects) of each finished part, by index.
    headers: Vec<(u64, Vec<(ObjectType, Checksum)>)>,
    /// To the compressing thread (bounded: at most one part waits).
    send: std::sync::mpsc::SyncSender<PartJob>,
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

    fn flush(&mut self) -> Result<()> {
        if self.cur.objects.is_empty() {
            return Ok(());
        }
        self.flush_part()
    }

    fn flush_part(&mut self) -> Result<()> {
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
fn compress_parts(
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
    fn add_meta(&mut self, kind: ObjectType, csum: Checksum, bytes: &[u8]) -> Result<()> {
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

    fn add_content(&mut self, csum: Checksum, h: &FileHeader, content: &[u8]) -> Result<()> {
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

    fn add_bsdiff(
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

/// path → file checksum of every file in a commit's tree, except below
/// directories whose dirtree is in `skip`.
fn files_by_path(
    repo: &Repo,
    commit: &Checksum,
    skip: Option<&crate::traverse::Reachable>,
) -> Result<BTreeMap<String, Checksum>> {
    let c = repo.load_commit(commit)?;
    let mut out = BTreeMap::new();
    let mut stack = vec![(String::new(), c.root_tree)];
    while let Some((prefix, tree)) = stack.pop() {
        let t = repo.load_dirtree(&tree)?;
        for f in &t.files {
            out.insert(format!("{prefix}/{}", f.name), f.checksum);
        }
        for d in &t.dirs {
            if skip.is_some_and(|s| s.contains(&(ObjectType::DirTree, d.tree))) {
                continue;
            }
            stack.push((format!("{prefix}/{}", d.name), d.tree));
        }
    }
    Ok(out)
}

fn storage_size(repo: &Repo, kind: ObjectType, csum: &Checksum) -> Result<u64> {
    let p = loose_path(csum, kind, repo.mode());
    let st = rfs::statat(repo.objects_dir(), &p, AtFlags::SYMLINK_NOFOLLOW)
        .ctx(|| format!("stat {p}"))?;
    Ok(st.st_size as u64)
}

fn load_file(repo: &Repo, csum: &Checksum) -> Result<(FileHeader, Vec<u8>)> {
    repo.open_file(csum)?
        .read_all()
        .ctx(|| format!("reading {csum}.file"))
}

/// Memory the diffs in flight (and the objects waiting behind them) may
/// hold; one diff larger than this still runs, alone.
const DIFF_BUDGET: usize = 64 << 20;

/// What a bsdiff of `old` → `new` holds at once: both files, the 4-byte
/// suffix array of `old`, and a patch about as long as `new`.
fn diff_cost(old: usize, new: usize) -> usize {
    5 * old + 2 * new
}

/// A new object on its way into the parts, in order.
enum Item {
    Meta(ObjectType, Checksum, Vec<u8>),
    File {
        csum: Checksum,
        h: FileHeader,
        /// Shared with the diff's worker, which drops it before answering.
        content: std::sync::Arc<Vec<u8>>,
        /// The old file it is diffed against, and the diff's sequence
        /// number while it is computed.
        diff: Option<(Checksum, usize)>,
    },
}

/// A diff for a worker: (sequence number, old, new).
type DiffJob = (usize, Vec<u8>, std::sync::Arc<Vec<u8>>);
/// A worker's answer: (sequence number, the patch if it pays, or Err if
/// the diff panicked).
type DiffDone = (usize, std::result::Result<Option<Vec<u8>>, ()>);

/// The ordered queue between reading objects and adding them to parts.
struct Filler<'a, 'b, 'c> {
    b: &'a mut Builder<'b>,
    report: &'a mut GenerateReport,
    opts: &'a GenerateOptions,
    repo: &'c Repo,
    queue: std::collections::VecDeque<(Item, usize)>,
    /// Sum of the queued items' costs.
    held: usize,
    /// Answers not yet consumed, by sequence number.
    patches: HashMap<usize, Option<Vec<u8>>>,
    done_recv: std::sync::mpsc::Receiver<DiffDone>,
    fallbacks: Vec<Fallback>,
    deferred_symlinks: Vec<(Checksum, FileHeader)>,
}

impl Filler<'_, '_, '_> {
    fn push(&mut self, item: Item, cost: usize) -> Result<()> {
        self.queue.push_back((item, cost));
        self.held += cost;
        self.drain(false)
    }

    /// Wait until `cost` more fits in [`DIFF_BUDGET`] (or nothing is held).
    fn make_room(&mut self, cost: usize) -> Result<()> {
        self.drain(false)?;
        while self.held > 0 && self.held + cost > DIFF_BUDGET {
            self.wait()?;
            self.drain(false)?;
        }
        Ok(())
    }

    /// Take one answer, blocking.
    fn wait(&mut self) -> Result<()> {
        let (seq, r) = self
            .done_recv
            .recv()
            .map_err(|_| invalid("the bsdiff workers stopped"))?;
        let patch = r.map_err(|()| invalid("a bsdiff worker panicked"))?;
        self.patches.insert(seq, patch);
        Ok(())
    }

    /// Add the queue's ready prefix to the parts; with `all`, wait for
    /// answers until the queue is empty.
    fn drain(&mut self, all: bool) -> Result<()> {
        while let Ok((seq, r)) = self.done_recv.try_recv() {
            let patch = r.map_err(|()| invalid("a bsdiff worker panicked"))?;
            self.patches.insert(seq, patch);
        }
        loop {
            let ready = match self.queue.front() {
                None => return Ok(()),
                Some((
                    Item::File {
                        diff: Some((_, seq)),
                        ..
                    },
                    _,
                )) => self.patches.contains_key(seq),
                Some(_) => true,
            };
            if !ready {
                if !all {
                    return Ok(());
                }
                self.wait()?;
                continue;
            }
            let Some((item, cost)) = self.queue.pop_front() else {
                return Ok(());
            };
            self.consume(item)?;
            self.held -= cost;
        }
    }

    fn consume(&mut self, item: Item) -> Result<()> {
        let (csum, h, content, diff) = match item {
            Item::Meta(kind, csum, bytes) => return self.b.add_meta(kind, csum, &bytes),
            Item::File {
                csum,
                h,
                content,
                diff,
            } => (csum, h, content, diff),
        };
        if let Some((oc, seq)) = diff {
            if let Some(patch) = self.patches.remove(&seq).flatten() {
                self.b
                    .add_bsdiff(csum, &h, &oc, content.len() as u64, &patch)?;
                self.report.bsdiff += 1;
                return Ok(());
            }
        }
        let min = self.opts.min_fallback_size;
        if min > 0 && content.len() as u64 > min {
            self.fallbacks.push(Fallback {
                kind: ObjectType::File,
                checksum: csum,
                size: storage_size(self.repo, ObjectType::File, &csum)?,
                usize: content.len() as u64,
            });
            return Ok(());
        }
        self.b.add_content(csum, &h, &content)
    }
}

/// The raw bsdiff stream from `old` to `new` when it pays: the stream is
/// uncompressed (the part's xz squeezes the mostly-zero diff bytes), so
/// judge it by what is left.
fn diff_if_it_pays(
    old: &[u8],
    new: &[u8],
    scratch: &mut crate::bsdiff::Scratch,
) -> Option<Vec<u8>> {
    let mut patch = Vec::new();
    crate::bsdiff::diff(old, new, scratch, &mut patch);
    scratch.trim();
    let weight = patch.iter().filter(|&&x| x != 0).count();
    (weight < new.len()).then_some(patch)
}

/// Put every new object into parts (metadata, then bsdiff'd or raw
/// files, then symlinks); returns the objects left as fallbacks.
///
/// Objects are read in order on this thread; bsdiffs run on a worker per
/// core (they are most of the time) while later objects are read, within
/// [`DIFF_BUDGET`], and everything enters the parts in the original order
/// so the delta does not depend on scheduling.
fn fill_parts(
    repo: &Repo,
    new: &[(ObjectType, Checksum)],
    modified: &HashMap<Checksum, Checksum>,
    opts: &GenerateOptions,
    b: &mut Builder<'_>,
    report: &mut GenerateReport,
) -> Result<Vec<Fallback>> {
    use std::sync::{mpsc, Arc, Mutex};
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let (job_send, job_recv) = mpsc::channel::<DiffJob>();
    let job_recv = Mutex::new(job_recv);
    let (done_send, done_recv) = mpsc::channel::<DiffDone>();
    std::thread::scope(|s| {
        for _ in 0..workers {
            let done_send = done_send.clone();
            let job_recv = &job_recv;
            s.spawn(move || {
                let mut scratch = crate::bsdiff::Scratch::default();
                loop {
                    // The lock is held only while waiting for the next job.
                    let job = job_recv.lock().map(|r| r.recv());
                    let Ok(Ok((seq, old, new))) = job else { break };
                    // A panic becomes an error: the reader waits for every
                    // answer, so a lost one would hang it.
                    let patch = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        diff_if_it_pays(&old, &new, &mut scratch)
                    }))
                    .map_err(|_| ());
                    drop((old, new));
                    if done_send.send((seq, patch)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(done_send);
        let mut f = Filler {
            b,
            report,
            opts,
            repo,
            queue: std::collections::VecDeque::new(),
            held: 0,
            patches: HashMap::new(),
            done_recv,
            fallbacks: Vec::new(),
            deferred_symlinks: Vec::new(),
        };
        let r = (|| -> Result<()> {
            let mut seq = 0;
            for (kind, csum) in new {
                if kind.is_meta() {
                    let bytes = repo.load_meta_bytes(*kind, csum)?;
                    let cost = bytes.len();
                    f.make_room(cost)?;
                    f.push(Item::Meta(*kind, *csum, bytes), cost)?;
                    continue;
                }
                let (h, content) = load_file(repo, csum)?;
                if h.is_symlink() {
                    f.deferred_symlinks.push((*csum, h));
                    continue;
                }
                if let Some(oc) = modified.get(csum) {
                    let (oh, old) = load_file(repo, oc)?;
                    let world_readable = oh.mode & 0o004 != 0;
                    if oh.is_regular()
                        && world_readable
                        && (old.len() + content.len()) as u64 <= opts.max_bsdiff_size
                        && old.len() <= crate::bsdiff::MAX_OLD_SIZE
                    {
                        let cost = diff_cost(old.len(), content.len());
                        f.make_room(cost)?;
                        let content = Arc::new(content);
                        job_send
                            .send((seq, old, Arc::clone(&content)))
                            .map_err(|_| invalid("the bsdiff workers stopped"))?;
                        f.push(
                            Item::File {
                                csum: *csum,
                                h,
                                content,
                                diff: Some((*oc, seq)),
                            },
                            cost,
                        )?;
                        seq += 1;
                        continue;
                    }
                }
                let cost = content.len();
                f.make_room(cost)?;
                f.push(
                    Item::File {
                        csum: *csum,
                        h,
                        content: Arc::new(content),
                        diff: None,
                    },
                    cost,
                )?;
            }
            f.drain(true)?;
            Ok(())
        })();
        drop(job_send);
        r?;
        for (csum, h) in std::mem::take(&mut f.deferred_symlinks) {
            f.b.add_content(csum, &h, &[])?;
        }
        f.b.flush()?;
        // A delta always has a part, even an empty one between commits of
        // one tree, as ostree writes it (its `show` and pull expect one).
        if f.b.headers.is_empty() {
            f.b.flush_part()?;
        }
        Ok(f.fallbacks)
    })
}

/// Generate `from → to` (or from scratch) into the repository's `deltas/`.
pub fn generate(
    repo: &Repo,
    from: Option<&Checksum>,
    to: &Checksum,
    opts: &GenerateOptions,
) -> Result<GenerateReport> {
    let to_commit_bytes = repo.load_meta_bytes(ObjectType::Commit, to)?;
    let _to_commit: Commit = repo.load_commit(to)?;
    // The two walks are independent: one per core.
    let (to_set, from_set) = rayon::join(
        || -> Result<_> {
            let mut to_set = HashSet::new();
            repo.traverse_commit(to, 0, &mut to_set)?;
            Ok(to_set)
        },
        || -> Result<_> {
            let mut from_set = HashSet::new();
            if let Some(f) = from {
                repo.traverse_commit(f, 0, &mut from_set)?;
            }
            Ok(from_set)
        },
    );
    let (to_set, from_set) = (to_set?, from_set?);
    let mut new: Vec<(ObjectType, Checksum)> = to_set
        .iter()
        .filter(|o| !from_set.contains(*o))
        .filter(|o| !(o.0 == ObjectType::Commit && o.1 == *to))
        // Detached metadata is named by its commit, not its bytes: it
        // travels in the superblock, never as a part object.
        .filter(|o| o.0 != ObjectType::CommitMeta)
        .map(|o| (o.0, o.1))
        .collect();
    new.sort_by(|a, b| (b.0.is_meta(), a.0, a.1 .0).cmp(&(a.0.is_meta(), b.0, b.1 .0)));
    let new_files: HashSet<Checksum> = new
        .iter()
        .filter(|o| o.0 == ObjectType::File)
        .map(|o| o.1)
        .collect();

    // Modified files: the old file at the same path, else the first old
    // file with the same name (bsdiff output is only kept when it pays).
    let mut modified: HashMap<Checksum, Checksum> = HashMap::new();
    if let (Some(f), true) = (from, opts.bsdiff) {
        // New files only live under directories `from` lacks, so the new
        // side's walk skips the rest (most of the tree).
        let (old, newp) = rayon::join(
            || files_by_path(repo, f, None),
            || files_by_path(repo, to, Some(&from_set)),
        );
        let (old, newp) = (old?, newp?);
        let mut by_name: HashMap<String, Vec<Checksum>> = HashMap::new();
        for (p, c) in &old {
            let base = p.rsplit('/').next().unwrap_or("").to_string();
            by_name.entry(base).or_default().push(*c);
        }
        for (p, c) in &newp {
            if !new_files.contains(c) || modified.contains_key(c) {
                continue;
            }
            let cand = old.get(p).copied().or_else(|| {
                let base = p.rsplit('/').next().unwrap_or("");
                by_name.get(base).and_then(|v| v.first().copied())
            });
            if let Some(oc) = cand {
                if oc != *c && !new_files.contains(&oc) {
                    modified.insert(*c, oc);
                }
            }
        }
    }

    let (dir, sb_name) = match &opts.output {
        Some(file) => {
            let name = file
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| invalid(format!("--filename {}: no file name", file.display())))?;
            let dir = match file.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            (dir, name.to_string())
        }
        None => {
            let dir = repo.path().join(sd::delta_dir(from, to));
            if dir.exists() {
                crate::transaction::remove_tree_at(repo.dir(), &sd::delta_dir(from, to))
                    .ctx(|| format!("removing old {}", dir.display()))?;
            }
            (dir, "superblock".to_string())
        }
    };
    std::fs::create_dir_all(&dir).ctx(|| format!("creating {}", dir.display()))?;
    let mut report = GenerateReport {
        name: sd::delta_name(from, to),
        ..Default::default()
    };
    let (send, recv) = std::sync::mpsc::sync_channel::<PartJob>(1);
    let (built, fallbacks, done) = std::thread::scope(|s| {
        let worker = s.spawn(|| compress_parts(recv, &dir, opts.inline));
        let mut b = Builder {
            opts,
            cur: PartBuilder::new(),
            headers: Vec::new(),
            send,
        };
        let filled = fill_parts(repo, &new, &modified, opts, &mut b, &mut report);
        let Builder { headers, send, .. } = b;
        drop(send);
        // The compressor's own error (a failed write) explains a failed
        // send better than the send does.
        let done = worker
            .join()
            .map_err(|_| invalid("the part compressor panicked"))??;
        let fallbacks = filled?;
        Ok::<_, RepoError>((headers, fallbacks, done))
    })?;
    let mut headers = Vec::with_capacity(built.len());
    let mut inline = Vec::new();
    let mut done = done;
    done.sort_by_key(|d| d.0);
    for ((usize, objects), (_, checksum, size, bytes)) in built.into_iter().zip(done) {
        headers.push(PartHeader {
            version: sd::PART_VERSION,
            checksum,
            size,
            usize,
            objects,
        });
        if let Some(b) = bytes {
            inline.push(b);
        }
    }

    let mut md = Metadata::new();
    let endianness = if opts.big_endian {
        sd::Endianness::Big
    } else {
        sd::Endianness::Little
    };
    let key = if opts.big_endian { b'B' } else { b'l' };
    md.set(sd::KEY_ENDIANNESS, Value::U8(key));
    let mut sb = Superblock {
        metadata: md,
        timestamp: opts.timestamp,
        from: from.copied(),
        to: *to,
        commit: Commit::decode(&to_commit_bytes)?,
        commit_bytes: to_commit_bytes,
        parts: headers,
        fallbacks,
        endianness,
    };
    for (i, p) in inline.iter().enumerate() {
        let key = sb.inline_part_key(i);
        sb.metadata.set(&key, sd::inline_part_value(p));
    }
    if let Some(detached) = repo.load_commitmeta(to)? {
        let key = sb.detached_key();
        let mut dict =
            zvariant::Dict::new(&zvariant::Signature::Str, &zvariant::Signature::Variant);
        for (k, v) in &detached.0 {
            dict.append(
                Value::from(k.clone()),
                Value::Value(Box::new(
                    v.try_clone().map_err(|e| invalid(e.to_string()))?.into(),
                )),
            )
            .map_err(|e| invalid(e.to_string()))?;
        }
        sb.metadata.set(&key, Value::Dict(dict));
    }
    let bytes = sb.encode();
    fsutil::write_atomic_at(
        fsutil::open_dir(&dir).ctx(|| "opening delta dir")?,
        &sb_name,
        &bytes,
        false,
    )
    .ctx(|| "writing superblock")?;
    report.parts = sb.parts.len();
    report.fallbacks = sb.fallbacks.len();
    report.superblock_checksum = Some(Checksum::of(&bytes));
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RepoMode;

    fn bytes(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    fn read_back(b: &Blob) -> Vec<u8> {
        let mut v = vec![0u8; b.size() as usize];
        b.read_exact_at(&mut v, 0).unwrap();
        v
    }

    #[test]
    fn blobs_spill_to_a_file_past_one_mib() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = Repo::init(&tmp.path().join("repo"), RepoMode::Archive).unwrap();
        let tx = repo.begin().unwrap();
        for (n, in_file) in [(1000, false), (BLOB_IN_MEMORY, false), (3 << 20, true)] {
            let data = bytes(n);
            let mut w = BlobWriter::new(&tx);
            for chunk in data.chunks(100_003) {
                w.write_all(chunk).unwrap();
            }
            let b = w.finish().unwrap();
            assert_eq!(matches!(b, Blob::File(_)), in_file, "{n} bytes");
            assert_eq!(read_back(&b), data);
        }
    }

    #[test]
    fn read_sources_are_verified_and_read_by_offset() {
        for mode in [RepoMode::Archive, RepoMode::BareUserOnly] {
            let tmp = tempfile::tempdir().unwrap();
            let repo = Repo::init(&tmp.path().join("repo"), mode).unwrap();
            let content = bytes(2 << 20);
            let h = FileHeader::regular(0, 0, 0o100644, oxtree_object::Xattrs::new());
            let tx = repo.begin().unwrap();
            let csum = tx
                .write_content(&h, content.len() as u64, &content[..])
                .unwrap()
                .checksum;
            tx.commit().unwrap();

            let tx = repo.begin().unwrap();
            let mut sink = TxSink {
                tx: &tx,
                budget: 0,
                header_usize: 0,
            };
            let b = sink.read_source(&csum).unwrap();
            assert!(matches!(b, Blob::File(_)), "{mode:?}");
            assert_eq!(read_back(&b), content, "{mode:?}");
            drop(b);

            // A source whose content does not hash to its name is refused.
            let path = repo
                .path()
                .join("objects")
                .join(loose_path(&csum, ObjectType::File, mode));
            let mut stored = std::fs::read(&path).unwrap();
            let n = stored.len();
            stored[n / 2] ^= 1;
            let mut perms = std::fs::metadata(&path).unwrap().permissions();
            std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o644);
            std::fs::set_permissions(&path, perms).unwrap();
            std::fs::write(&path, &stored).unwrap();
            drop(tx);
            let tx = repo.begin().unwrap();
            let mut sink = TxSink {
                tx: &tx,
                budget: 0,
                header_usize: 0,
            };
            assert!(sink.read_source(&csum).is_err(), "{mode:?}");
        }
    }
}

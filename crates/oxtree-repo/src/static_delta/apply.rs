//! Applying a delta: each part checked against the superblock's size
//! and checksum, then decompressed within bounds and its objects written
//! through the transaction's verified writes ([`StaticDeltaApplier`]);
//! `apply-offline` from a directory or superblock file.

use super::blob::{Blob, BlobWriter};
use super::{invalid, parse_superblock_file};
use crate::error::{IoContext, RepoError, Result};
use crate::{Repo, Transaction};
use oxtree_io::Chain;
use oxtree_object::gvariant::Value;
use oxtree_object::static_delta::{
    self as sd, DeltaSink, FileAt, PartHeader, PartTables, RandomRead, SeqReader, Superblock,
};
use oxtree_object::ObjectError;
use oxtree_object::{Checksum, FileHeader, Metadata, ObjectType};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

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
                let md = value_to_metadata(v.unvariant())
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

/// A dictionary with string keys as metadata (values unwrapped from
/// their `v`).
fn value_to_metadata(v: &Value) -> Option<Metadata> {
    let Value::Dict(_, _, entries) = v else {
        return None;
    };
    let mut md = Metadata::new();
    for (k, val) in entries {
        md.set(k.as_str()?, val.unvariant().clone());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::loose_path;
    use crate::static_delta::blob::tests::{bytes, read_back};
    use crate::RepoMode;

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

//! [`Blob`]: bytes held in memory while small, else in an unnamed temp
//! file in the transaction's staging directory; what applying a delta
//! reads by offset (part payloads, read sources, offline parts).

use crate::Transaction;
use oxtree_object::static_delta::{FileAt, RandomRead};
use std::io::{BufWriter, Write};

/// Bytes held in memory while small, else in an unnamed temp file: a
/// decompressed part payload or a delta's read source.
pub(super) enum Blob {
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
pub(super) struct BlobWriter<'a, 'r> {
    tx: &'a Transaction<'r>,
    mem: Vec<u8>,
    file: Option<BufWriter<std::fs::File>>,
}

impl<'a, 'r> BlobWriter<'a, 'r> {
    pub(super) fn new(tx: &'a Transaction<'r>) -> Self {
        BlobWriter {
            tx,
            mem: Vec::new(),
            file: None,
        }
    }

    pub(super) fn finish(self) -> std::io::Result<Blob> {
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::{Repo, RepoMode};

    pub(crate) fn bytes(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    pub(crate) fn read_back(b: &Blob) -> Vec<u8> {
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
}

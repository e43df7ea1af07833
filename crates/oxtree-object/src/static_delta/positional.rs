//! Positional IO: bytes read by offset ([`RandomRead`]) in memory or in a
//! file, windows onto them, and a sequential reader over them.

use std::io::Read;

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
pub(super) struct Window<'a, D: ?Sized> {
    pub(super) inner: &'a D,
    pub(super) start: u64,
    pub(super) len: u64,
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
#[derive(Debug)]
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

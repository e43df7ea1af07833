//! The file-writer thread: fetched `.filez` objects are decoded,
//! inflated, re-hashed and written into the pull's transaction on a
//! thread of their own ([`FileWriter`], [`import_filez`]), with the checks
//! each file object gets beyond its checksum ([`FileChecks`]).

use super::{object_err, PullOptions};
use crate::error::{Result, TransportError};
use crate::fetch::Body;
use oxtree_object::file::{inflate_reader, MAX_HEADER_SIZE};
use oxtree_object::{ArchiveHeader, Checksum, ObjectType};
use oxtree_repo::{Repo, RepoError, RepoMode, Transaction};
use std::io::Read;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Largest total size of fetched file objects held in memory while they
/// wait for the writer thread (bodies over 1 MiB are in temp files).
const WRITER_QUEUE_BYTES: usize = 1 << 20;

/// File objects are verified and written on a thread of their own while
/// the pull's thread goes on fetching: inflating, hashing and writing the
/// content is most of a pull's CPU time, and the fetching (HTTP, parsing
/// trees) then overlaps with it on a second core.
pub(super) struct FileWriter {
    jobs: std::sync::mpsc::Sender<(Checksum, Body, OwnedSemaphorePermit)>,
    done: tokio::sync::mpsc::UnboundedReceiver<(Checksum, Result<u64>)>,
    /// Permits are KiB of queued in-memory bodies.
    budget: Arc<Semaphore>,
    queued: usize,
}

impl FileWriter {
    pub(super) fn start<'scope>(
        scope: &'scope std::thread::Scope<'scope, '_>,
        tx: &'scope Transaction<'_>,
        checks: FileChecks,
    ) -> FileWriter {
        let (jobs, queue) = std::sync::mpsc::channel::<(Checksum, Body, OwnedSemaphorePermit)>();
        let (report, done) = tokio::sync::mpsc::unbounded_channel();
        scope.spawn(move || {
            for (csum, body, permit) in queue {
                let r = import_filez(tx, &csum, body, checks);
                drop(permit);
                if report.send((csum, r)).is_err() {
                    break;
                }
            }
        });
        FileWriter {
            jobs,
            done,
            budget: Arc::new(Semaphore::new(WRITER_QUEUE_BYTES >> 10)),
            queued: 0,
        }
    }

    /// Queue a fetched file object; waits while the queue is full.
    pub(super) async fn write(&mut self, csum: Checksum, body: Body) -> Result<()> {
        let kib = match &body {
            Body::Mem(v) => (v.len() >> 10).clamp(1, WRITER_QUEUE_BYTES >> 10),
            Body::File(_) => 1,
        };
        let permit = Arc::clone(&self.budget)
            .acquire_many_owned(kib as u32)
            .await
            .map_err(|e| TransportError::bad("file writer", e))?;
        self.jobs
            .send((csum, body, permit))
            .map_err(|_| TransportError::bad("file writer", "the writer thread stopped"))?;
        self.queued += 1;
        Ok(())
    }

    /// A finished object (size written) without waiting; None: none yet.
    pub(super) fn try_finished(&mut self) -> Option<Result<u64>> {
        let (_, r) = self.done.try_recv().ok()?;
        self.queued -= 1;
        Some(r)
    }

    /// Wait for the next finished object; None: nothing is queued.
    pub(super) async fn finished(&mut self) -> Option<Result<u64>> {
        if self.queued == 0 {
            return None;
        }
        let r = match self.done.recv().await {
            Some((_, r)) => r,
            None => Err(TransportError::bad(
                "file writer",
                "the writer thread stopped",
            )),
        };
        self.queued -= 1;
        Some(r)
    }
}

/// Content that must be exactly `remaining` bytes long.
struct Exact<R> {
    inner: R,
    remaining: u64,
    total: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(self.remaining.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "content ends after {} of {} bytes",
                    self.total - self.remaining,
                    self.total
                ),
            ));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// A repo error that already names the object passes through as is.
fn keep_bad(
    e: RepoError,
    bad: &dyn Fn(&dyn std::fmt::Display) -> TransportError,
) -> TransportError {
    match e {
        RepoError::BadObject { .. } => TransportError::Repo(e),
        other => bad(&other),
    }
}

/// What is checked of each file object beyond its checksum.
#[derive(Clone, Copy, Debug)]
pub(super) struct FileChecks {
    bareuseronly: bool,
    /// Store archive objects unverified (see `PullOptions::trusted_http`).
    trusted: bool,
    limit: u64,
}

impl FileChecks {
    pub(super) fn of(repo: &Repo, opts: &PullOptions) -> FileChecks {
        FileChecks {
            bareuseronly: opts.bareuseronly_files,
            trusted: opts.trusted_http && opts.mirror && repo.mode() == RepoMode::Archive,
            limit: opts.max_content_size,
        }
    }
}

/// `--bareuseronly-files` (see [`oxtree_repo::mode::check_bareuseronly_mode`]).
pub(super) fn check_bareuseronly(csum: &Checksum, mode: u32) -> Result<()> {
    Ok(oxtree_repo::mode::check_bareuseronly_mode(csum, mode)?)
}

/// Verify and store one `.filez` object, which `resolve_locally` found
/// absent before it was fetched; returns its uncompressed size.
fn import_filez(
    tx: &Transaction<'_>,
    csum: &Checksum,
    body: Body,
    checks: FileChecks,
) -> Result<u64> {
    let bad = |r: &dyn std::fmt::Display| object_err(ObjectType::File, csum, r);
    let mut r = body.into_reader();
    if checks.trusted && !checks.bareuseronly {
        return tx
            .write_archive_content_unverified(csum, r, checks.limit)
            .map_err(|e| keep_bad(e, &bad));
    }
    let mut prefix = [0u8; 8];
    r.read_exact(&mut prefix)
        .map_err(|e| bad(&format!("truncated header: {e}")))?;
    let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
    if len > MAX_HEADER_SIZE {
        return Err(bad(&format!("header size {len} is too large")));
    }
    let mut head = prefix.to_vec();
    head.resize(8 + len, 0);
    r.read_exact(&mut head[8..])
        .map_err(|e| bad(&format!("truncated header: {e}")))?;
    let (ah, _) = ArchiveHeader::decode(&head).map_err(|e| bad(&e))?;
    if checks.bareuseronly {
        check_bareuseronly(csum, ah.file.mode)?;
    }
    if ah.file.is_symlink() {
        tx.write_content_fetched(csum, &ah.file, 0, std::io::empty())
            .map_err(|e| keep_bad(e, &bad))?;
        return Ok(0);
    }
    let mut inflater = inflate_reader(r);
    let mut exact = Exact {
        inner: &mut inflater,
        remaining: ah.size,
        total: ah.size,
    };
    tx.write_content_fetched(csum, &ah.file, ah.size, &mut exact)
        .map_err(|e| keep_bad(e, &bad))?;
    let mut extra = [0u8; 1];
    match inflater.read(&mut extra) {
        Ok(0) => Ok(ah.size),
        Ok(_) => Err(bad(&"content is longer than its header says")),
        Err(e) => Err(bad(&format!("corrupt compressed content: {e}"))),
    }
}

//! Disk space while writing: the min-free-space budget a transaction may
//! write (`core.min-free-space-*`), charged as objects are written, and
//! the writeback started early so that `commit`'s syncfs waits less.

use super::Transaction;
use crate::error::{IoContext, RepoError, Result};
use crate::Repo;
use rustix::fd::AsFd;
use rustix::fs;
use std::sync::atomic::Ordering;
use std::sync::Arc;

impl Repo {
    /// Bytes that may be written before the repository's filesystem drops
    /// below `core.min-free-space-size` (e.g. `500MB`) or, if unset,
    /// `core.min-free-space-percent` (default 3) of its size.
    pub fn free_space_budget(&self) -> Result<u64> {
        let st = fs::fstatvfs(self.dir()).ctx(|| "statvfs of the repository")?;
        let avail = st.f_bavail.saturating_mul(st.f_frsize);
        let total = st.f_blocks.saturating_mul(st.f_frsize);
        let reserve = match self.config().get("core", "min-free-space-size") {
            Some(v) => parse_size(v).ok_or_else(|| {
                RepoError::Config(format!("core.min-free-space-size: invalid size '{v}'"))
            })?,
            None => {
                let pct: u64 = match self.config().get("core", "min-free-space-percent") {
                    Some(v) => v.parse().ok().filter(|p| *p <= 99).ok_or_else(|| {
                        RepoError::Config(format!(
                            "core.min-free-space-percent: invalid value '{v}'"
                        ))
                    })?,
                    None => 3,
                };
                total / 100 * pct
            }
        };
        if avail <= reserve {
            return Err(RepoError::NoSpace(format!(
                "{} has {avail} bytes free, and min-free-space keeps {reserve} bytes free",
                self.path().display()
            )));
        }
        Ok(avail - reserve)
    }
}

/// `500MB`, `2GB`, `100KB` or plain bytes (ostree's min-free-space-size).
fn parse_size(v: &str) -> Option<u64> {
    let v = v.trim();
    let (num, mult) = [
        ("KB", 1u64 << 10),
        ("MB", 1 << 20),
        ("GB", 1 << 30),
        ("TB", 1 << 40),
    ]
    .iter()
    .find_map(|(suf, m)| v.strip_suffix(suf).map(|n| (n, *m)))
    .unwrap_or((v, 1));
    num.trim().parse::<u64>().ok()?.checked_mul(mult)
}

impl Transaction<'_> {
    /// Account for `n` more bytes written; fails before the budget is exceeded.
    pub(super) fn charge(&self, n: u64) -> Result<()> {
        let before = self.used.fetch_add(n, Ordering::Relaxed);
        let used = before + n;
        if used > self.budget {
            return Err(RepoError::NoSpace(format!(
                "writing {used} bytes would exceed the {} bytes allowed by min-free-space",
                self.budget
            )));
        }
        if self.sync && before / BACKGROUND_SYNC_BYTES != used / BACKGROUND_SYNC_BYTES {
            self.background_sync();
        }
        Ok(())
    }

    /// Start a syncfs on another thread unless one is running: the disk
    /// writes back while the transaction goes on, and the syncfs in
    /// `commit` (which alone makes the objects durable) finds little left.
    fn background_sync(&self) {
        if self.syncing.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(fd) = self.staging.try_clone() else {
            self.syncing.store(false, Ordering::Release);
            return;
        };
        let busy = Arc::clone(&self.syncing);
        let spawned = std::thread::Builder::new()
            .name("oxtree-writeback".into())
            .spawn(move || {
                let _ = fs::syncfs(&fd);
                busy.store(false, Ordering::Release);
            });
        if spawned.is_err() {
            self.syncing.store(false, Ordering::Release);
        }
    }

    pub(super) fn refund(&self, n: u64) {
        self.used.fetch_sub(n, Ordering::Relaxed);
    }
}

/// Objects at least this large start their writeback as soon as they are
/// written, so the disk works while the commit goes on and the final
/// syncfs has less left to wait for.
pub(super) const EARLY_WRITEBACK_BYTES: u64 = 1 << 20;

/// Written bytes between background syncfs calls (see `background_sync`).
const BACKGROUND_SYNC_BYTES: u64 = 64 << 20;

/// Ask the kernel to start writing a file's dirty pages now, without
/// waiting (sync_file_range with SYNC_FILE_RANGE_WRITE). Durability still
/// comes from the syncfs in `commit`; this only moves the work earlier.
/// rustix has no wrapper for this call, hence libc.
pub(super) fn start_writeback(fd: impl AsFd) {
    use rustix::fd::AsRawFd;
    // SAFETY: a valid open fd and plain integer arguments; the call does
    // not touch memory of ours. Failure only loses the head start.
    #[allow(unsafe_code)]
    unsafe {
        libc::sync_file_range(fd.as_fd().as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
    }
}

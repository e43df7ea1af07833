//! RepoLock: the repository's `.lock`, shared for writers that only add
//! objects, exclusive for prune. Uses open-file-description locks, the same
//! kind libostree takes, so oxtree and ostree exclude each other too.

use crate::error::{IoContext, RepoError, Result};
use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{self, FlockOperation, Mode, OFlags};
use rustix::io::Errno;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct RepoLock {
    _fd: OwnedFd,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockKind {
    Shared,
    Exclusive,
}

impl RepoLock {
    pub fn acquire<Fd: AsFd>(repo_dir: Fd, kind: LockKind, timeout_secs: u64) -> Result<Self> {
        let fd = fs::openat(
            repo_dir,
            ".lock",
            OFlags::CREATE | OFlags::RDWR | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .ctx(|| "opening the repository lock file .lock")?;
        let op = match kind {
            LockKind::Shared => FlockOperation::NonBlockingLockShared,
            LockKind::Exclusive => FlockOperation::NonBlockingLockExclusive,
        };
        let start = Instant::now();
        let mut wait = Duration::from_millis(5);
        loop {
            match fs::fcntl_lock(&fd, op) {
                Ok(()) => return Ok(RepoLock { _fd: fd }),
                Err(Errno::AGAIN) | Err(Errno::ACCESS) | Err(Errno::INTR) => {
                    if start.elapsed() >= Duration::from_secs(timeout_secs) {
                        return Err(RepoError::LockTimeout(timeout_secs));
                    }
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(Duration::from_millis(200));
                }
                Err(e) => return Err(e).ctx(|| "locking the repository"),
            }
        }
    }
}

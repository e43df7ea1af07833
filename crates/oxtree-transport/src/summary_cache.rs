//! ostree's summary cache: a verified `summary` and its `summary.sig` are
//! kept as `CACHE/summaries/REMOTE` and `REMOTE.sig` (CACHE is the
//! repository's `tmp/cache` unless `--cache-dir` names another), so a pull
//! whose remote still publishes the same signature uses the cached summary
//! instead of downloading it again. Only signed summaries are cached (the
//! signature is the cache key), and only after they verified; a cached
//! summary that no longer verifies against the published signature is
//! fetched again.

use crate::error::{Result, TransportError};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SummaryCache {
    /// The `summaries` directory.
    dir: PathBuf,
}

impl SummaryCache {
    /// The cache under `cache_dir` (a repository's `tmp/cache`, or the
    /// directory given with `--cache-dir`).
    pub fn new(cache_dir: &Path) -> Self {
        SummaryCache {
            dir: cache_dir.join("summaries"),
        }
    }

    /// The cached `(summary, summary.sig)` of `remote`, when both exist.
    pub fn load(&self, remote: &str) -> Option<(Vec<u8>, Vec<u8>)> {
        let s = std::fs::read(self.dir.join(remote)).ok()?;
        let sig = std::fs::read(self.dir.join(format!("{remote}.sig"))).ok()?;
        Some((s, sig))
    }

    /// Store a verified summary and its signature (each written to a
    /// temporary file and renamed into place).
    pub fn store(&self, remote: &str, summary: &[u8], sig: &[u8]) -> Result<()> {
        let io = |e: std::io::Error| TransportError::io("writing the summary cache", e);
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        for (name, bytes) in [
            (remote.to_string(), summary),
            (format!("{remote}.sig"), sig),
        ] {
            let tmp = self.dir.join(format!(".{name}.tmp"));
            std::fs::write(&tmp, bytes).map_err(io)?;
            std::fs::rename(&tmp, self.dir.join(&name)).map_err(io)?;
        }
        Ok(())
    }

    /// Remove cached summaries of remotes not in `remotes` (as ostree's
    /// prune does).
    pub fn prune(&self, remotes: &[String]) -> Result<()> {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return Ok(());
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let remote = name.strip_suffix(".sig").unwrap_or(&name);
            if !remotes.iter().any(|r| r == remote) {
                std::fs::remove_file(e.path())
                    .map_err(|e| TransportError::io("pruning the summary cache", e))?;
            }
        }
        Ok(())
    }
}

//! The remote's `summary` file: fetched (from the metalink or the
//! remote's `url`), its `summary.sig` checked when the remote asks for
//! signed summaries, and a verified signed summary reused from the cache.

use super::{check_url, MAX_METADATA_SIZE};
use crate::error::{Result, TransportError};
use crate::fetch::{runtime, FetchOptions, Fetcher};
use crate::mirrors::{Mirrors, Sources};
use crate::remote::Remote;
use crate::summary::Summary;
use crate::summary_cache::SummaryCache;
use crate::verify::RemoteVerifier;

/// Fetch and parse the remote's summary (`None` when it has none),
/// checking its signature when `verifier` asks for that.
pub fn fetch_summary(
    remote: &Remote,
    verifier: &RemoteVerifier,
    fetch: &FetchOptions,
) -> Result<Option<Summary>> {
    let fetcher = Fetcher::new(fetch.clone())?;
    let rt = runtime()?;
    rt.block_on(async {
        check_url(remote)?;
        let sources = Sources::resolve(&fetcher, remote).await?;
        fetch_summary_async(&fetcher, remote, &sources, verifier, None).await
    })
}

/// A summary's bytes and, when published, its `summary.sig` bytes.
pub type RawSummary = (Vec<u8>, Option<Vec<u8>>);

/// The remote's `summary` and `summary.sig` bytes as published (checked
/// when the remote asks for signed summaries), for a mirror to keep.
pub fn fetch_summary_raw(
    remote: &Remote,
    verifier: &RemoteVerifier,
    fetch: &FetchOptions,
) -> Result<Option<RawSummary>> {
    let fetcher = Fetcher::new(fetch.clone())?;
    let rt = runtime()?;
    rt.block_on(async {
        check_url(remote)?;
        let sources = Sources::resolve(&fetcher, remote).await?;
        let bytes = match sources.metalink_summary {
            Some(b) => b,
            None => match get_metadata_file(&fetcher, &sources.meta, "summary").await? {
                Some(b) => b,
                None => return Ok(None),
            },
        };
        let sig = get_metadata_file(&fetcher, &sources.meta, "summary.sig").await?;
        if verifier.verifies_summary() {
            verifier.verify_summary(&bytes, sig.as_deref())?;
        }
        Summary::decode(&bytes)?;
        Ok(Some((bytes, sig)))
    })
}

/// A small file at the top of the remote (`summary`, `summary.sig`), or
/// None when the remote has none.
async fn get_metadata_file(
    fetcher: &Fetcher,
    meta: &Mirrors,
    name: &str,
) -> Result<Option<Vec<u8>>> {
    meta.get_vec(fetcher, name, MAX_METADATA_SIZE).await
}

pub(super) async fn fetch_summary_async(
    fetcher: &Fetcher,
    remote: &Remote,
    sources: &Sources,
    verifier: &RemoteVerifier,
    cache: Option<&SummaryCache>,
) -> Result<Option<Summary>> {
    // A signed summary: its signature first, then the cached summary when
    // the cache holds the same signature and the summary still verifies.
    let mut sig = None;
    if verifier.verifies_summary() {
        sig = get_metadata_file(fetcher, &sources.meta, "summary.sig").await?;
        if let (Some(c), Some(sig)) = (cache, &sig) {
            if let Some((cached, cached_sig)) = c.load(&remote.name) {
                if cached_sig == *sig {
                    if verifier.verify_summary(&cached, Some(sig)).is_ok() {
                        if let Ok(s) = Summary::decode(&cached) {
                            return Ok(Some(s));
                        }
                    }
                    // ostree's fault injection for its test of this path.
                    if std::env::var("OSTREE_REPO_TEST_ERROR")
                        .is_ok_and(|v| v.split(',').any(|f| f == "invalid-cache"))
                    {
                        return Err(TransportError::Signature(
                            "OSTREE_REPO_TEST_ERROR_INVALID_CACHE".into(),
                        ));
                    }
                }
            }
        }
    }
    let published = match &sources.metalink_summary {
        Some(b) => Some(b.clone()),
        None => get_metadata_file(fetcher, &sources.meta, "summary").await?,
    };
    let bytes = match published {
        None if verifier.verifies_summary() => {
            return Err(TransportError::Signature(format!(
                "remote '{}' requires a signed summary, but it publishes no summary",
                remote.name
            )))
        }
        None => return Ok(None),
        Some(b) => b,
    };
    if verifier.verifies_summary() {
        verifier.verify_summary(&bytes, sig.as_deref())?;
    }
    let s = Summary::decode(&bytes)?;
    if let (Some(c), Some(sig)) = (cache, &sig) {
        c.store(&remote.name, &bytes, sig)?;
    }
    Ok(Some(s))
}

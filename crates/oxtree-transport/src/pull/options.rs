//! What a pull is asked for and what it gives back: [`PullOptions`], the
//! requested refs ([`RefRequest`]), and the results and progress counters
//! it reports.

use super::MAX_METADATA_SIZE;
use crate::error::{Result, TransportError};
use crate::fetch::FetchOptions;
use oxtree_object::Checksum;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Clone, Debug)]
pub struct PullOptions {
    /// Parents to follow (0: the commit only; negative: all).
    pub depth: i64,
    /// Fetch commit objects only (the commits stay partial).
    pub commit_metadata_only: bool,
    /// Write refs/heads/REF instead of refs/remotes/REMOTE/REF.
    pub mirror: bool,
    /// Fetch objects one by one even when the remote has a static delta.
    pub disable_static_deltas: bool,
    /// Only these paths of each commit's tree (`/usr/bin`, `/etc/os-release`),
    /// plus the directories leading to them; the commits stay partial.
    pub subpaths: Vec<String>,
    /// Requests in flight at once.
    pub max_in_flight: usize,
    pub fetch: FetchOptions,
    /// Overrides `core.fsync`.
    pub sync: Option<bool>,
    pub max_metadata_size: u64,
    /// Largest compressed content object accepted.
    pub max_content_size: u64,
    /// Set (by another thread) to stop the pull between objects: it then
    /// fails with [`TransportError::Cancelled`], keeps what was verified
    /// (a later pull resumes from it) and moves no ref.
    pub cancel: Option<Arc<AtomicBool>>,
    /// Skip the ref and collection binding checks of requested commits
    /// (`--disable-verify-bindings`).
    pub disable_verify_bindings: bool,
    /// Where verified signed summaries are cached (`summaries/REMOTE`):
    /// the repository's `tmp/cache` or `--cache-dir`; None: no cache.
    pub cache_dir: Option<std::path::PathBuf>,
    /// Fail unless each requested commit not yet here comes by a static
    /// delta (`--require-static-deltas`).
    pub require_static_deltas: bool,
    /// With `require_static_deltas`: only find the deltas and count their
    /// parts ([`PullResult::deltas`]); fetch nothing else, move no ref.
    pub dry_run: bool,
    /// Refuse file objects a bare-user-only repository could not hold
    /// safely (setuid, setgid, world-writable: bits outside 0775).
    pub bareuseronly_files: bool,
    /// With `mirror` into an archive repository: store file objects as
    /// fetched, without verifying their checksums (`--http-trusted`).
    pub trusted_http: bool,
    /// Refuse a commit older than the one its ref points to now
    /// (`-T`), or than this commit (`--timestamp-check-from-rev`).
    pub timestamp_check: bool,
    pub timestamp_check_from: Option<Checksum>,
    /// Local repositories to take objects from before fetching them
    /// (`--localcache-repo`); what comes from them is verified as if
    /// fetched.
    pub localcache: Vec<std::path::PathBuf>,
}

impl PullOptions {
    /// `Err(Cancelled)` once [`PullOptions::cancel`] is set.
    pub(super) fn check_cancelled(&self) -> Result<()> {
        match &self.cancel {
            Some(c) if c.load(Ordering::Relaxed) => Err(TransportError::Cancelled),
            _ => Ok(()),
        }
    }
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            depth: 0,
            commit_metadata_only: false,
            mirror: false,
            disable_static_deltas: false,
            subpaths: Vec::new(),
            // Each small object costs a round trip: on a 50 ms link, 32
            // requests in flight fetch ~640 objects/s where 12 gave ~240
            // (ostree keeps 8). Loopback pulls do not mind the extra.
            max_in_flight: 32,
            fetch: FetchOptions::default(),
            sync: None,
            max_metadata_size: MAX_METADATA_SIZE,
            max_content_size: 64 << 30,
            cancel: None,
            disable_verify_bindings: false,
            cache_dir: None,
            require_static_deltas: false,
            dry_run: false,
            bareuseronly_files: false,
            trusted_http: false,
            timestamp_check: false,
            timestamp_check_from: None,
            localcache: Vec::new(),
        }
    }
}

/// The static delta parts a pull used (or, with `dry_run`, would use).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeltaStats {
    pub parts: u64,
    /// Parts whose objects were all present already.
    pub parts_present: u64,
    /// Compressed size of all parts, and of the present ones.
    pub size: u64,
    pub size_present: u64,
    /// Uncompressed size of all parts.
    pub usize: u64,
}

/// Counters reported while pulling.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PullProgress {
    /// Objects requested from the server so far (grows as trees arrive).
    pub requested: u64,
    /// Objects fetched and verified.
    pub fetched: u64,
    pub fetched_metadata: u64,
    pub fetched_content: u64,
    /// Metadata objects read from the local repo instead.
    pub scanned_local: u64,
    /// Objects copied from a local cache repository
    /// (`--localcache-repo`) instead of fetched.
    pub cache_metadata: u64,
    pub cache_content: u64,
    /// Bytes received over the network.
    pub bytes: u64,
    /// Uncompressed size of the content objects written.
    pub content_bytes: u64,
}

#[derive(Clone, Debug, Default)]
pub struct PullResult {
    /// Refs written, as refspecs (`REMOTE:REF`, or `REF` with mirror).
    pub refs: Vec<(String, Checksum)>,
    /// Commits pulled (requested ones, not parents).
    pub commits: Vec<Checksum>,
    pub progress: PullProgress,
    pub deltas: DeltaStats,
}

/// A requested ref: `REF`, `REF@COMMIT` or a bare commit checksum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefRequest {
    pub name: Option<String>,
    pub commit: Option<Checksum>,
}

pub fn parse_ref_request(s: &str) -> Result<RefRequest> {
    if Checksum::is_hex(s) {
        return Ok(RefRequest {
            name: None,
            commit: Some(Checksum::from_hex(s)?),
        });
    }
    let (name, commit) = match s.rsplit_once('@') {
        Some((n, c)) => (n, Some(Checksum::from_hex(c)?)),
        None => (s, None),
    };
    oxtree_repo::refs::validate_ref_name(name)?;
    Ok(RefRequest {
        name: Some(name.to_string()),
        commit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_requests() {
        let c = Checksum::of(b"x");
        assert_eq!(
            parse_ref_request("main").unwrap(),
            RefRequest {
                name: Some("main".into()),
                commit: None
            }
        );
        assert_eq!(
            parse_ref_request(&format!("a/b@{c}")).unwrap(),
            RefRequest {
                name: Some("a/b".into()),
                commit: Some(c)
            }
        );
        assert_eq!(parse_ref_request(&c.to_hex()).unwrap().name, None);
        assert!(parse_ref_request("../x").is_err());
        assert!(parse_ref_request("a@zz").is_err());
    }
}

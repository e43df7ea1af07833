//! Pull: fetch commits and everything they reach from an `archive` repo
//! served over HTTP into a local repo of any mode.
//!
//! Refs resolve through the remote `summary` when it has one, else through
//! `refs/heads/REF`. Every object is verified before it enters the repo:
//! metadata by the SHA-256 of its bytes (`write_meta_trusted_name`), content
//! by decoding the `.filez` header, inflating and re-hashing
//! (`write_content_expect`). A commit is marked `state/CSUM.commitpartial`
//! before it is stored and unmarked only once its whole tree is present.
//! All objects go into one transaction; refs move only after it commits.
//! On failure the verified objects are still committed (a later pull
//! resumes from them), the commit stays partial and no ref moves. Objects
//! already present are skipped; present dirtrees are read locally so a
//! resumed pull finds what is still missing below them.
//!
//! Signatures: when the remote asks for them (`gpg-verify`,
//! `sign-verify`), each commit's detached metadata is fetched alongside the
//! commit, and the commit is checked before it is written, before any of
//! its tree is requested and before any ref moves; an unsigned or badly
//! signed commit fails the pull. `gpg-verify-summary` /
//! `sign-verify-summary` check `summary.sig` before the summary is used.
//!
//! Static deltas: unless `disable_static_deltas`, a target listed in the
//! summary's `ostree.static-deltas` (`FROM-TO` from the local ref's commit,
//! or from scratch when there is none) is fetched as a superblock (checked
//! against the summary's checksum) and parts (fetched concurrently, each
//! verified and applied in its own transaction); the commit is then stored
//! partial and the normal walk fetches the fallback objects and clears it.
//!
//! Fetches run concurrently (bounded by `max_in_flight`) on a tokio
//! runtime; verification and writing happen on the calling thread.

use crate::error::{Result, TransportError};
use crate::fetch::{client_runtime, join_url, runtime, Body, FetchOptions, Fetcher};
use crate::mirrors::{Mirrors, Sources};
use crate::remote::Remote;
use crate::summary::Summary;
use crate::summary_cache::SummaryCache;
use crate::verify::RemoteVerifier;
use oxtree_object::file::{inflate_reader, MAX_HEADER_SIZE};
use oxtree_object::{ArchiveHeader, Checksum, Commit, DirMeta, DirTree, Metadata, ObjectType};
use oxtree_repo::objects::loose_path;
use oxtree_repo::traverse::MAX_TREE_DEPTH;
use oxtree_repo::{Repo, RepoConfig, RepoError, RepoMode, Transaction};
use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

/// ostree's OSTREE_MAX_METADATA_SIZE.
pub const MAX_METADATA_SIZE: u64 = 128 << 20;
const MAX_CONFIG_SIZE: u64 = 1 << 20;
const MAX_REF_SIZE: u64 = 4096;

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
    fn check_cancelled(&self) -> Result<()> {
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

/// One thing the pull still has to obtain.
#[derive(Clone, Copy, Debug)]
enum Job {
    /// `depth`: parents still to follow; `parent`: a 404 ends the history.
    Commit {
        csum: Checksum,
        depth: i64,
        parent: bool,
    },
    CommitMeta(Checksum),
    /// A tree at `level`, within `scope` (see [`ALL`]).
    DirTree(Checksum, usize, u32),
    DirMeta(Checksum),
    File(Checksum),
}

impl Job {
    fn name(&self) -> (ObjectType, Checksum) {
        match *self {
            Job::Commit { csum, .. } => (ObjectType::Commit, csum),
            Job::CommitMeta(c) => (ObjectType::CommitMeta, c),
            Job::DirTree(c, _, _) => (ObjectType::DirTree, c),
            Job::DirMeta(c) => (ObjectType::DirMeta, c),
            Job::File(c) => (ObjectType::File, c),
        }
    }
}

/// A tree wanted whole; other scopes index `State::scopes`, the path of a
/// directory on the way to a `--subpath`.
const ALL: u32 = u32::MAX;

/// `/usr/bin` → `["usr", "bin"]`; `.`/`..` and empty names are refused.
fn split_subpath(p: &str) -> Result<Vec<String>> {
    let parts: Vec<String> = p
        .split('/')
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect();
    if parts.iter().any(|c| c == "." || c == "..") {
        return Err(TransportError::Config(format!("invalid subpath '{p}'")));
    }
    Ok(parts)
}

fn object_err(kind: ObjectType, csum: &Checksum, reason: impl std::fmt::Display) -> TransportError {
    TransportError::bad(format!("object {csum}.{kind}"), reason)
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

async fn fetch_summary_async(
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

fn check_url(remote: &Remote) -> Result<()> {
    if let Some(b) = &remote.custom_backend {
        return Err(TransportError::Config(format!(
            "remote '{}' uses custom backend '{b}'",
            remote.name
        )));
    }
    if let Some(why) = &remote.unconfigured_state {
        return Err(TransportError::Config(why.clone()));
    }
    if remote.metalink.is_none() {
        crate::mirrors::check_spec(&remote.name, remote.require_url()?)?;
    }
    if let Some(c) = &remote.content_url {
        crate::mirrors::check_spec(&remote.name, c)?;
    }
    Ok(())
}

/// Pull `refs` (or the remote's configured branches when empty) from
/// `remote` into `repo`. Never prints; `progress` is called on the calling
/// thread after each object.
pub fn pull(
    repo: &Repo,
    remote: &Remote,
    refs: &[String],
    opts: &PullOptions,
    progress: &dyn Fn(&PullProgress),
) -> Result<PullResult> {
    check_url(remote)?;
    // Keys first: a remote that asks for signatures but has no keys fails
    // before anything is fetched.
    let verifier = RemoteVerifier::for_remote(repo, remote)?;
    let requests = refs
        .iter()
        .map(|r| parse_ref_request(r))
        .collect::<Result<Vec<_>>>()?;
    let mut fetch = opts.fetch.clone();
    if let Some(c) = crate::cookies::header_for(repo, &remote.name, &remote.url)? {
        fetch.headers.push(("Cookie".into(), c));
    }
    let fetcher = Fetcher::new(fetch)?;
    let rt = client_runtime()?;
    let mut tx = repo.begin()?;
    if let Some(s) = opts.sync {
        tx.set_sync(s);
    }
    let walk = std::thread::scope(|scope| {
        let out = Outputs {
            tx: &tx,
            files: FileWriter::start(scope, &tx, FileChecks::of(repo, opts)),
            progress,
        };
        rt.block_on(pull_async(
            repo, remote, &verifier, requests, opts, &fetcher, out,
        ))
        // The writer thread ends once its queue is empty (joined here).
    })?;
    let sync = tx.sync_enabled();
    if let Err(e) = walk.outcome {
        // Keep what was verified for the next pull; move no ref.
        let _ = tx.commit();
        return Err(e);
    }
    if let Err(e) = opts.check_cancelled() {
        let _ = tx.commit();
        return Err(e);
    }
    tx.commit()?;
    for (c, b) in walk.detached {
        repo.write_detached_metadata_bytes(&c, &b, sync)?;
    }
    for c in walk.partial {
        repo.clear_commit_partial(&c)?;
    }
    let mut result = PullResult {
        progress: walk.progress,
        deltas: walk.deltas,
        ..Default::default()
    };
    for (name, c) in walk.targets {
        result.commits.push(c);
        if let Some(n) = name {
            // A mirror of a remote with a collection ID keeps the
            // collection: `refs/mirrors/ID/REF` (or `refs/heads/REF` when
            // it is this repository's own collection), as ostree does.
            if let (true, Some(id)) = (opts.mirror, remote.collection_id.as_deref()) {
                let cref = oxtree_repo::collections::CollectionRef {
                    collection_id: id.to_string(),
                    ref_name: n.clone(),
                };
                repo.write_collection_ref(&cref, Some(&c), sync)?;
                result.refs.push((n, c));
                continue;
            }
            let spec = if opts.mirror {
                n.clone()
            } else {
                format!("{}:{n}", remote.name)
            };
            repo.write_ref(&spec, Some(&c), sync)?;
            result.refs.push((spec, c));
        }
    }
    Ok(result)
}

/// For `-T`/`--timestamp-check-from-rev`: the floor of each requested
/// commit (see `State::ts_floor`).
fn timestamp_floors(
    repo: &Repo,
    remote: &Remote,
    opts: &PullOptions,
    targets: &[(Option<String>, Checksum)],
) -> Result<HashMap<Checksum, (Checksum, u64)>> {
    let mut out = HashMap::new();
    if !opts.timestamp_check && opts.timestamp_check_from.is_none() {
        return Ok(out);
    }
    for (name, c) in targets {
        let current = match (&opts.timestamp_check_from, name) {
            (Some(from), _) => Some(*from),
            (None, Some(n)) => repo.read_ref(&ref_spec(remote, opts, n))?,
            (None, None) => None,
        };
        if let Some(cur) = current.filter(|cur| cur != c) {
            out.insert(*c, (cur, repo.load_commit(&cur)?.timestamp));
        }
    }
    Ok(out)
}

/// The local ref a pulled ref goes to (before collection mirrors).
fn ref_spec(remote: &Remote, opts: &PullOptions, name: &str) -> String {
    if opts.mirror {
        name.to_string()
    } else {
        format!("{}:{name}", remote.name)
    }
}

/// Refuse a commit `new` (timestamp `new_ts`) older than `current`
/// (timestamp `cur_ts`), in ostree's words.
fn check_not_older(current: &Checksum, cur_ts: u64, new: &Checksum, new_ts: u64) -> Result<()> {
    if new_ts < cur_ts {
        let iso = |t: u64| {
            chrono::DateTime::from_timestamp(t as i64, 0)
                .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
                .unwrap_or_else(|| t.to_string())
        };
        return Err(TransportError::bad(
            "pull",
            format!(
                "Upgrade target revision '{new}' with timestamp '{}' is chronologically older than current revision '{current}' with timestamp '{}'; use --allow-downgrade to permit",
                iso(new_ts),
                iso(cur_ts)
            ),
        ));
    }
    Ok(())
}

/// What the walk of the commits left for `pull` to finish: the
/// transaction is committed (also after a failure, keeping what was
/// verified), then refs move only when `outcome` is Ok.
struct Walk {
    outcome: Result<()>,
    deltas: DeltaStats,
    targets: Vec<(Option<String>, Checksum)>,
    partial: Vec<Checksum>,
    detached: Vec<(Checksum, Vec<u8>)>,
    progress: PullProgress,
}

/// Where the walk's results go: objects into the pull's transaction (file
/// objects through the writer thread), progress to the caller.
struct Outputs<'a> {
    tx: &'a Transaction<'a>,
    files: FileWriter,
    progress: &'a dyn Fn(&PullProgress),
}

/// Largest total size of fetched file objects held in memory while they
/// wait for the writer thread (bodies over 1 MiB are in temp files).
const WRITER_QUEUE_BYTES: usize = 1 << 20;

/// File objects are verified and written on a thread of their own while
/// the pull's thread goes on fetching: inflating, hashing and writing the
/// content is most of a pull's CPU time, and the fetching (HTTP, parsing
/// trees) then overlaps with it on a second core.
struct FileWriter {
    jobs: std::sync::mpsc::Sender<(Checksum, Body, OwnedSemaphorePermit)>,
    done: tokio::sync::mpsc::UnboundedReceiver<(Checksum, Result<u64>)>,
    /// Permits are KiB of queued in-memory bodies.
    budget: Arc<Semaphore>,
    queued: usize,
}

impl FileWriter {
    fn start<'scope>(
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
    async fn write(&mut self, csum: Checksum, body: Body) -> Result<()> {
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
    fn try_finished(&mut self) -> Option<Result<u64>> {
        let (_, r) = self.done.try_recv().ok()?;
        self.queued -= 1;
        Some(r)
    }

    /// Wait for the next finished object; None: nothing is queued.
    async fn finished(&mut self) -> Option<Result<u64>> {
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

async fn pull_async(
    repo: &Repo,
    remote: &Remote,
    verifier: &RemoteVerifier,
    mut requests: Vec<RefRequest>,
    opts: &PullOptions,
    fetcher: &Fetcher,
    out: Outputs<'_>,
) -> Result<Walk> {
    let progress = out.progress;
    let sources = Sources::resolve(fetcher, remote).await?;
    // The remote must be an archive repository.
    let config_url = join_url(sources.meta.first(), "config");
    let cache = opts.cache_dir.as_deref().map(SummaryCache::new);
    // Commits named by checksum need no summary (ostree does not fetch
    // it then either), unless deltas are required, which it lists.
    let named = !requests.is_empty() && requests.iter().all(|r| r.commit.is_some());
    let want_summary = !named || opts.require_static_deltas;
    // The config and the summary at once: on a link with latency that is
    // one round trip less before anything else can start.
    let (cfg, summary) = tokio::join!(
        sources.meta.get(fetcher, "config", MAX_CONFIG_SIZE, None),
        async {
            match want_summary {
                true => {
                    fetch_summary_async(fetcher, remote, &sources, verifier, cache.as_ref()).await
                }
                false => Ok(None),
            }
        }
    );
    let cfg = cfg?
        .ok_or_else(|| {
            TransportError::bad(
                format!("remote '{}'", remote.name),
                format!("no repository config at {config_url} (404 Not Found)"),
            )
        })?
        .into_vec()
        .map_err(|e| TransportError::io("reading remote config", e))?;
    let cfg = String::from_utf8(cfg)
        .map_err(|_| TransportError::bad("remote config", "not UTF-8"))
        .and_then(|t| Ok(RepoConfig::parse(&t)?))?;
    let mode = RepoMode::parse(cfg.get("core", "mode").unwrap_or("bare"))?;
    // A `file://` remote of another mode is read as a local repository,
    // as ostree does: its metadata objects are stored as in an archive
    // repository (same names, same bytes), so only file objects are taken
    // from it directly (re-hashed, or hard-linked within one filesystem).
    let local = match sources.content.first().strip_prefix("file://") {
        _ if mode == RepoMode::Archive => None,
        Some(path) => Some(Repo::open(std::path::Path::new(path))?),
        None => {
            return Err(TransportError::Unsupported(format!(
                "remote '{}' is a {} repository; only archive repositories can be pulled over HTTP",
                remote.name,
                mode.config_name()
            )))
        }
    };

    let summary = summary?;
    if requests.is_empty() {
        if opts.mirror && remote.branches.is_empty() {
            let s = summary.as_ref().ok_or_else(|| {
                TransportError::Config(format!(
                    "no refs given, and remote '{}' has no summary to mirror",
                    remote.name
                ))
            })?;
            for r in &s.refs {
                requests.push(RefRequest {
                    name: Some(r.name.clone()),
                    commit: None,
                });
            }
        } else if remote.branches.is_empty() {
            return Err(TransportError::Config(format!(
                "no refs specified and no branches configured for remote '{}'",
                remote.name
            )));
        } else {
            for b in &remote.branches {
                requests.push(parse_ref_request(b)?);
            }
        }
    }

    // Resolve every request to (ref name, commit).
    let mut targets: Vec<(Option<String>, Checksum)> = Vec::new();
    for rq in &requests {
        let commit = match (&rq.name, rq.commit) {
            (_, Some(c)) => c,
            (Some(name), None) => match &summary {
                Some(s) => {
                    // A remote with a collection ID names (collection, ref)
                    // pairs: its own collection's refs, or the map's.
                    let found = match remote.collection_id.as_deref() {
                        Some(id)
                            if s.collection_id().is_some() || !s.collection_map()?.is_empty() =>
                        {
                            s.find_collection_ref(id, name)?
                        }
                        _ => s.get(name).cloned(),
                    };
                    found
                        .ok_or_else(|| {
                            TransportError::bad(
                                format!("remote '{}'", remote.name),
                                format!("no such branch '{name}' in the remote summary"),
                            )
                        })?
                        .commit
                }
                None => {
                    let b = sources
                        .meta
                        .get(fetcher, &format!("refs/heads/{name}"), MAX_REF_SIZE, None)
                        .await?
                        .ok_or_else(|| {
                            TransportError::bad(
                                format!("remote '{}'", remote.name),
                                format!("no such branch '{name}'"),
                            )
                        })?;
                    let b = b
                        .into_vec()
                        .map_err(|e| TransportError::io("reading a ref", e))?;
                    oxtree_repo::refs::parse_ref_contents(&b).map_err(|_| {
                        // ostree's words, with at most 64 printable
                        // characters of what came (an HTML page, say).
                        let shown: String = String::from_utf8_lossy(&b)
                            .trim_end()
                            .chars()
                            .take(64)
                            .map(|c| {
                                if c.is_ascii_graphic() || c == ' ' {
                                    c
                                } else {
                                    ' '
                                }
                            })
                            .collect();
                        let id = remote.collection_id.as_deref().unwrap_or("(empty)");
                        TransportError::bad(
                            format!("Fetching checksum for ref ({id}, {name})"),
                            format!("Invalid rev {shown}"),
                        )
                    })?
                }
            },
            (None, None) => unreachable!("parse_ref_request sets one"),
        };
        targets.push((rq.name.clone(), commit));
    }

    // Static deltas first: each one applies in its own transaction, leaving
    // the target commit stored but partial, so the walk below finds the
    // delta's objects locally and fetches only the fallback objects.
    // A subpath wants part of a tree; a delta carries all of it.
    let mut delta_stats = DeltaStats::default();
    if opts.require_static_deltas && repo.mode() == RepoMode::Archive {
        return Err(TransportError::Config(
            "Can't use static deltas in an archive repo".into(),
        ));
    }
    if opts.require_static_deltas
        || (!opts.disable_static_deltas && !opts.commit_metadata_only && opts.subpaths.is_empty())
    {
        let (deltas, indexed) = match &summary {
            Some(s) => (s.static_delta_map(), s.indexed_deltas()),
            None => (Vec::new(), false),
        };
        {
            for (name, to) in &targets {
                let spec = name.as_ref().map(|n| {
                    if opts.mirror {
                        n.clone()
                    } else {
                        format!("{}:{n}", remote.name)
                    }
                });
                let used = pull_static_delta(
                    repo,
                    &sources.content,
                    verifier,
                    fetcher,
                    opts,
                    &deltas,
                    indexed,
                    spec.as_deref(),
                    to,
                    &mut delta_stats,
                )
                .await?;
                let complete =
                    repo.has_object(ObjectType::Commit, to)? && !repo.is_commit_partial(to)?;
                if opts.require_static_deltas && !used && !complete {
                    // ostree names the local ref's commit, or "(null)".
                    let from = spec
                        .as_deref()
                        .and_then(|r| repo.read_ref(r).ok().flatten())
                        .map_or("(null)".to_string(), |c| c.to_hex());
                    return Err(TransportError::bad(
                        format!("remote '{}'", remote.name),
                        format!("Static deltas required, but none found for {from} to {to}"),
                    ));
                }
            }
        }
    }
    if opts.dry_run {
        return Ok(Walk {
            outcome: Ok(()),
            deltas: delta_stats,
            targets: Vec::new(),
            partial: Vec::new(),
            detached: Vec::new(),
            progress: PullProgress::default(),
        });
    }

    let mut st = State {
        repo,
        tx: out.tx,
        files: out.files,
        opts,
        verifier,
        waiting: HashMap::new(),
        metas: HashMap::new(),
        meta: sources.meta.clone(),
        content: sources.content.clone(),
        local: local.as_ref(),
        caches: opts
            .localcache
            .iter()
            .map(|p| Repo::open(p))
            .collect::<std::result::Result<_, _>>()?,
        seen: HashSet::new(),
        pending: VecDeque::new(),
        partial: Vec::new(),
        detached: Vec::new(),
        bindings: HashMap::new(),
        collection_id: remote.collection_id.clone(),
        progress: PullProgress::default(),
        subpaths: opts
            .subpaths
            .iter()
            .map(|p| split_subpath(p))
            .collect::<Result<_>>()?,
        ts_floor: timestamp_floors(repo, remote, opts, &targets)?,
        targets: targets.iter().map(|(_, c)| *c).collect(),
        commit_sizes: summary
            .as_ref()
            .map(|s| {
                s.refs
                    .iter()
                    .filter(|r| r.commit_size > 0)
                    .map(|r| (r.commit, r.commit_size))
                    .collect()
            })
            .unwrap_or_default(),
        scopes: Vec::new(),
    };
    for (name, c) in &targets {
        if let Some(n) = name {
            st.bindings.entry(*c).or_default().push(n.clone());
        }
        st.pending.push_back(Job::Commit {
            csum: *c,
            depth: opts.depth,
            parent: false,
        });
    }
    let mut outcome = st.run(fetcher, progress).await;
    // Whatever happened, let the writer finish what it was given (it
    // writes only verified objects) before the transaction is committed.
    while let Some(r) = st.files.finished().await {
        if let (Err(e), Ok(())) = (st.file_written(r), &outcome) {
            outcome = Err(e);
        }
    }
    let mut prog = st.progress.clone();
    prog.bytes = fetcher.bytes_received();
    Ok(Walk {
        outcome,
        deltas: delta_stats,
        targets,
        partial: std::mem::take(&mut st.partial),
        detached: std::mem::take(&mut st.detached),
        progress: prog,
    })
}

/// Use a static delta to `to` when the summary lists one: `FROM-TO` from
/// the commit `local_ref` points at, else a from-scratch delta when there is
/// no local commit. The superblock must hash to the summary's checksum;
/// parts are fetched concurrently and each verified (size, checksum, every
/// object) before use. On success the target commit is stored, marked
/// partial. When the remote requires signed commits, the signatures the
/// superblock carries for the commit are checked before anything is
/// applied (no signatures there: no delta), and so are the superblock's
/// own ed25519 signatures, if it is signed. Returns whether a delta was
/// used.
#[allow(clippy::too_many_arguments)]
async fn pull_static_delta(
    repo: &Repo,
    content: &Mirrors,
    verifier: &RemoteVerifier,
    fetcher: &Fetcher,
    opts: &PullOptions,
    listed: &[(String, Checksum)],
    indexed: bool,
    local_ref: Option<&str>,
    to: &Checksum,
    stats: &mut DeltaStats,
) -> Result<bool> {
    use oxtree_object::static_delta as sd;
    use oxtree_repo::static_delta::{parse_superblock_file, StaticDeltaApplier};
    if repo.has_object(ObjectType::Commit, to)? {
        return Ok(false);
    }
    let from_index = match indexed {
        true => fetch_delta_index(content, fetcher, to).await?,
        false => None,
    };
    let deltas = from_index.as_deref().unwrap_or(listed);
    if deltas.is_empty() {
        return Ok(false);
    }
    let complete = |c: &Checksum| {
        repo.has_object(ObjectType::Commit, c).unwrap_or(false)
            && !repo.is_commit_partial(c).unwrap_or(true)
    };
    // The commit the local ref points to; else, as ostree, the newest
    // complete local commit some listed delta to `to` starts from.
    let from = match local_ref {
        Some(r) => repo.read_ref(r).ok().flatten(),
        None => None,
    }
    .filter(|c| repo.has_object(ObjectType::Commit, c).unwrap_or(false))
    .or_else(|| {
        deltas
            .iter()
            .filter_map(|(n, _)| match sd::parse_delta_name(n) {
                Ok((Some(f), t)) if t == *to && complete(&f) => Some(f),
                _ => None,
            })
            .max_by_key(|f| repo.load_commit(f).map(|c| c.timestamp).unwrap_or(0))
    });
    let lookup = |f: Option<&Checksum>| {
        let n = sd::delta_name(f, to);
        deltas
            .iter()
            .find(|(k, _)| *k == n)
            .map(|(_, c)| (f.copied(), *c))
    };
    let Some((from, sb_csum)) = (match &from {
        Some(f) => lookup(Some(f)),
        None => lookup(None),
    }) else {
        return Ok(false);
    };
    let dir = sd::delta_dir(from.as_ref(), to);
    let what = format!("static delta {}", sd::delta_name(from.as_ref(), to));
    let Some(body) = content
        .get(
            fetcher,
            &format!("{dir}/superblock"),
            sd::MAX_SUPERBLOCK_SIZE as u64,
            None,
        )
        .await?
    else {
        return Ok(false);
    };
    let sb_bytes = body
        .into_vec()
        .map_err(|e| TransportError::io("reading a delta superblock", e))?;
    let actual = Checksum::of(&sb_bytes);
    if actual != sb_csum {
        return Err(TransportError::bad(
            what,
            format!("superblock hashes to {actual}, the summary says {sb_csum}"),
        ));
    }
    let (sb, sigs) = parse_superblock_file(&sb_bytes)?;
    if sb.to != *to || sb.from != from {
        return Err(TransportError::bad(what, "superblock is for another delta"));
    }
    if let Some((inner, _)) = sd::decode_signed(&sb_bytes)? {
        verifier.verify_delta_superblock(
            &sd::delta_name(from.as_ref(), to),
            &inner,
            sigs.as_ref(),
        )?;
    }
    for h in &sb.parts {
        stats.parts += 1;
        stats.size += h.size;
        stats.usize += h.usize;
        let mut present = true;
        for (k, c) in &h.objects {
            if !repo.has_object(*k, c)? {
                present = false;
                break;
            }
        }
        if present {
            stats.parts_present += 1;
            stats.size_present += h.size;
        }
    }
    if opts.dry_run {
        return Ok(true);
    }
    let mut tx = repo.begin()?;
    if let Some(s) = opts.sync {
        tx.set_sync(s);
    }
    let applier = StaticDeltaApplier::new(&sb, &tx)?;
    let detached = applier.detached_metadata()?;
    if verifier.verifies_commits() {
        // The commit's signatures must check out before anything of the
        // delta is stored; without them in the superblock, pull objects.
        let Some(d) = &detached else {
            return Ok(false);
        };
        let md = Metadata::decode(d).map_err(|e| object_err(ObjectType::CommitMeta, to, e))?;
        verifier.verify_commit(to, &sb.commit_bytes, Some(&md))?;
    }
    let mut fetch = Vec::new();
    for (i, _) in sb.parts.iter().enumerate() {
        opts.check_cancelled()?;
        if applier.part_is_present(i)? {
            continue;
        }
        match sb.inline_part(i) {
            Some(b) => applier.apply_part(i, &b[..])?,
            None => fetch.push(i),
        }
    }
    // The requests in flight go to the parts first; a few big parts (the
    // usual incremental delta has one) are each fetched as ranges at once.
    let budget = fetcher.parallelism(opts.max_in_flight.max(1));
    let pieces = (budget / fetch.len().max(1)).max(1);
    let mut inflight: JoinSet<(usize, Result<Option<Body>>)> = JoinSet::new();
    for i in fetch {
        opts.check_cancelled()?;
        let rel = format!("{dir}/{i}");
        let f = fetcher.clone();
        let m = content.clone();
        let size = sb.parts[i].size;
        let spill = Some(repo.path().join("tmp"));
        inflight.spawn(async move { (i, m.get_split(&f, &rel, size, pieces, size, spill).await) });
        while inflight.len() >= opts.max_in_flight.max(1) {
            let done = inflight.join_next().await.expect("non-empty");
            delta_part_arrived(&applier, &what, done)?;
        }
    }
    while let Some(done) = inflight.join_next().await {
        delta_part_arrived(&applier, &what, done)?;
    }
    // Partial before it can become visible: its fallback objects are
    // fetched by the walk, which then clears the mark.
    repo.mark_commit_partial(to, b"")?;
    tx.write_meta_trusted_name(ObjectType::Commit, to, &sb.commit_bytes)?;
    let sync = tx.sync_enabled();
    tx.commit()?;
    if let Some(d) = detached {
        repo.write_detached_metadata_bytes(to, &d, sync)?;
    }
    Ok(true)
}

/// Largest delta index accepted (ostree's list a few deltas per target).
const MAX_DELTA_INDEX_SIZE: u64 = 4 << 20;

/// The deltas to `to` listed in the remote's `delta-indexes/` (None: it
/// has no index for `to`). The index is not signed: what it names is
/// checked like the summary's list (the superblock against the checksum
/// given here, the commit it carries against `to`, every object).
async fn fetch_delta_index(
    content: &Mirrors,
    fetcher: &Fetcher,
    to: &Checksum,
) -> Result<Option<Vec<(String, Checksum)>>> {
    use oxtree_object::static_delta as sd;
    let rel = sd::delta_index_path(to);
    let Some(body) = content
        .get(fetcher, &rel, MAX_DELTA_INDEX_SIZE, None)
        .await?
    else {
        return Ok(None);
    };
    let bytes = body
        .into_vec()
        .map_err(|e| TransportError::io("reading a delta index", e))?;
    let md = Metadata::decode(&bytes)
        .map_err(|e| TransportError::bad(format!("delta index {rel}"), e))?;
    Ok(Some(crate::summary::static_delta_map_in(&md)))
}

fn delta_part_arrived(
    applier: &oxtree_repo::static_delta::StaticDeltaApplier<'_, '_>,
    what: &str,
    done: std::result::Result<(usize, Result<Option<Body>>), tokio::task::JoinError>,
) -> Result<()> {
    let (i, body) = done.map_err(|e| TransportError::bad("fetch task", e))?;
    let body = body?.ok_or_else(|| {
        TransportError::bad(what.to_string(), format!("part {i} not found (HTTP 404)"))
    })?;
    // A large part was spilled to a temp file: read it from there by
    // offset rather than into memory.
    let applied = match body {
        Body::Mem(bytes) => applier.apply_part(i, &bytes[..]),
        Body::File(f) => {
            let f = oxtree_object::static_delta::FileAt::new(f)
                .map_err(|e| TransportError::io("reading a delta part", e))?;
            applier.apply_part(i, &f)
        }
    };
    applied.map_err(|e| TransportError::bad(what.to_string(), e))
}

struct State<'a> {
    repo: &'a Repo,
    tx: &'a Transaction<'a>,
    files: FileWriter,
    opts: &'a PullOptions,
    verifier: &'a RemoteVerifier,
    /// Commits fetched (or found locally) whose signatures are still to be
    /// checked: they wait for their detached metadata.
    waiting: HashMap<Checksum, Waiting>,
    /// Detached metadata fetched for commits to verify (`None`: 404).
    metas: HashMap<Checksum, Option<Vec<u8>>>,
    /// Where detached commit metadata (the signatures) comes from: the
    /// remote's `url`, never its `contenturl`, as with ostree.
    meta: Mirrors,
    /// Where objects come from.
    content: Mirrors,
    /// The remote, when it is a local repository not in archive mode:
    /// file objects are taken from it instead of fetched.
    local: Option<&'a Repo>,
    /// `--localcache-repo`s, tried before the network.
    caches: Vec<Repo>,
    seen: HashSet<(ObjectType, Checksum)>,
    pending: VecDeque<Job>,
    /// Commits whose trees this pull completes (unmarked at the end).
    partial: Vec<Checksum>,
    detached: Vec<(Checksum, Vec<u8>)>,
    /// Requested ref names per commit, checked against ref bindings.
    bindings: HashMap<Checksum, Vec<String>>,
    /// The remote's `collection-id`: requested commits must be bound to it.
    collection_id: Option<String>,
    progress: PullProgress,
    /// `--subpath`s as components; empty: whole trees.
    subpaths: Vec<Vec<String>>,
    /// With timestamp checking: each requested commit's floor, the commit
    /// it must not be older than and that commit's timestamp. Checked as
    /// the commit object arrives, before anything of its tree is fetched.
    ts_floor: HashMap<Checksum, (Checksum, u64)>,
    /// The requested commits: their detached metadata is fetched again
    /// even when they are here already (signatures may have been added
    /// or removed since), as ostree does.
    targets: HashSet<Checksum>,
    /// Commit object sizes the summary gives: a commit fetched bigger is
    /// refused as soon as it passes that size (ostree does the same).
    commit_sizes: HashMap<Checksum, u64>,
    /// Paths of the partly wanted directories (see [`ALL`]).
    scopes: Vec<Vec<String>>,
}

type Fetched = (Job, Result<Option<Body>>);

/// A commit held back until its signatures are checked.
struct Waiting {
    bytes: Vec<u8>,
    depth: i64,
    incomplete: bool,
    new: bool,
}

impl State<'_> {
    async fn run(&mut self, fetcher: &Fetcher, progress: &dyn Fn(&PullProgress)) -> Result<()> {
        let mut inflight: JoinSet<Fetched> = JoinSet::new();
        let spill = self.repo.path().join("tmp");
        loop {
            // Between objects: a cancelled pull stops here (the caller
            // commits what was verified and moves no ref).
            self.opts.check_cancelled()?;
            let max = fetcher.parallelism(self.opts.max_in_flight.max(1));
            while inflight.len() < max {
                let Some(job) = self.pending.pop_front() else {
                    break;
                };
                if !self.seen.insert(job.name()) {
                    continue;
                }
                if let Job::Commit { csum, .. } = job {
                    if self.verifier.verifies_commits() {
                        // Its signatures come with it, fetched in parallel.
                        self.pending.push_front(Job::CommitMeta(csum));
                    }
                }
                if self.resolve_locally(job)? {
                    progress(&self.snapshot(fetcher));
                    continue;
                }
                let (kind, csum) = job.name();
                if let (ObjectType::File, Some(src)) = (kind, self.local) {
                    self.import_local_file(src, &csum)?;
                    progress(&self.snapshot(fetcher));
                    continue;
                }
                let rel = format!("objects/{}", loose_path(&csum, kind, RepoMode::Archive));
                let mirrors = match kind {
                    ObjectType::CommitMeta => self.meta.clone(),
                    _ => self.content.clone(),
                };
                let limit = match kind {
                    ObjectType::File => self.opts.max_content_size,
                    ObjectType::Commit => self
                        .commit_sizes
                        .get(&csum)
                        .copied()
                        .unwrap_or(self.opts.max_metadata_size),
                    _ => self.opts.max_metadata_size,
                };
                let f = fetcher.clone();
                let spill = Some(spill.clone());
                self.progress.requested += 1;
                inflight.spawn(async move { (job, mirrors.get(&f, &rel, limit, spill).await) });
            }
            let Some(done) = inflight.join_next().await else {
                if self.pending.is_empty() {
                    if let Some(c) = self.waiting.keys().next() {
                        return Err(TransportError::Signature(format!(
                            "commit {c}: its signatures could not be checked"
                        )));
                    }
                    return Ok(());
                }
                continue;
            };
            let (job, body) = done.map_err(|e| TransportError::bad("fetch task", e))?;
            let (kind, csum) = job.name();
            let body = body.map_err(|e| object_err(kind, &csum, e))?;
            self.process(job, body).await?;
            while let Some(r) = self.files.try_finished() {
                self.file_written(r)?;
            }
            progress(&self.snapshot(fetcher));
        }
    }

    /// Copy (or hard-link) file object `csum` from the local repository
    /// the remote is; its content is re-hashed on the way in.
    fn import_local_file(&mut self, src: &Repo, csum: &Checksum) -> Result<()> {
        self.progress.requested += 1;
        self.progress.fetched += 1;
        if self.opts.bareuseronly_files {
            check_bareuseronly(csum, src.open_file(csum)?.header.mode)?;
        }
        let size = match self.tx.link_object_from(src, ObjectType::File, csum)? {
            Some(_) => src.open_file(csum)?.size,
            None => {
                let f = src.open_file(csum)?;
                let size = f.size;
                self.tx
                    .write_content_expect(csum, &f.header, size, f.content)?;
                size
            }
        };
        self.file_written(Ok(size))
    }

    /// Account for a file object the writer thread has finished.
    fn file_written(&mut self, r: Result<u64>) -> Result<()> {
        let size = r?;
        self.progress.fetched_content += 1;
        self.progress.content_bytes += size;
        Ok(())
    }

    fn snapshot(&self, fetcher: &Fetcher) -> PullProgress {
        let mut p = self.progress.clone();
        p.bytes = fetcher.bytes_received();
        p
    }

    /// Handle a job from the local repo when possible; false: fetch it.
    fn resolve_locally(&mut self, job: Job) -> Result<bool> {
        let (kind, csum) = job.name();
        if let Job::CommitMeta(c) = job {
            if self.verifier.verifies_commits() || self.targets.contains(&c) {
                // The remote's signatures are what gets checked (and a
                // requested commit's are refreshed).
                return Ok(false);
            }
        }
        if !self.repo.has_object(kind, &csum)? {
            return self.take_from_cache(job);
        }
        match job {
            Job::Commit { depth, .. } => {
                let bytes = self.repo.load_meta_bytes(ObjectType::Commit, &csum)?;
                let partial = self.repo.is_commit_partial(&csum)?;
                self.progress.scanned_local += 1;
                self.commit_arrived(csum, bytes, depth, partial, false)?;
            }
            Job::DirTree(_, level, scope) => {
                let t = self.repo.load_dirtree(&csum)?;
                self.progress.scanned_local += 1;
                self.queue_tree_children(&t, level, scope)?;
            }
            Job::CommitMeta(_) | Job::DirMeta(_) | Job::File(_) => {}
        }
        Ok(true)
    }

    /// Take the object from a `--localcache-repo` that has it, verified as
    /// a fetched one would be; false when none has it.
    fn take_from_cache(&mut self, job: Job) -> Result<bool> {
        let (kind, csum) = job.name();
        if kind == ObjectType::CommitMeta {
            return Ok(false);
        }
        let mut found = None;
        for (i, c) in self.caches.iter().enumerate() {
            if c.has_object(kind, &csum)? {
                found = Some(i);
                break;
            }
        }
        let Some(i) = found else {
            return Ok(false);
        };
        if kind == ObjectType::File {
            let src = &self.caches[i];
            if self.tx.link_object_from(src, kind, &csum)?.is_none() {
                let f = src.open_file(&csum)?;
                self.tx
                    .write_content_expect(&csum, &f.header, f.size, f.content)?;
            }
            self.progress.cache_content += 1;
            return Ok(true);
        }
        let bytes = self.caches[i].load_meta_bytes(kind, &csum)?;
        verify_meta(kind, &csum, &bytes)?;
        self.progress.cache_metadata += 1;
        match job {
            Job::Commit { depth, .. } => self.commit_arrived(csum, bytes, depth, true, true)?,
            Job::DirTree(_, level, scope) => {
                let t = DirTree::decode(&bytes).map_err(|e| object_err(kind, &csum, e))?;
                self.tx.write_meta_fetched(kind, &csum, &bytes)?;
                self.queue_tree_children(&t, level, scope)?;
            }
            _ => {
                DirMeta::decode(&bytes).map_err(|e| object_err(kind, &csum, e))?;
                self.tx.write_meta_fetched(kind, &csum, &bytes)?;
            }
        }
        Ok(true)
    }

    async fn process(&mut self, job: Job, body: Option<Body>) -> Result<()> {
        let (kind, csum) = job.name();
        let Some(body) = body else {
            return match job {
                // Detached metadata is optional; a missing parent ends history.
                Job::CommitMeta(c) => self.meta_arrived(c, None),
                Job::Commit { parent: true, .. } => Ok(()),
                _ => Err(object_err(
                    kind,
                    &csum,
                    "not found on the remote (HTTP 404)",
                )),
            };
        };
        self.progress.fetched += 1;
        if kind == ObjectType::File {
            return self.files.write(csum, body).await;
        }
        self.progress.fetched_metadata += 1;
        let bytes = body
            .into_vec()
            .map_err(|e| object_err(kind, &csum, format!("reading body: {e}")))?;
        match job {
            Job::CommitMeta(_) => {
                if let Err(e) = Metadata::decode(&bytes) {
                    if self.verifier.verifies_commits() {
                        return Err(object_err(kind, &csum, e));
                    }
                    // Nothing checks it: malformed detached metadata is
                    // left behind rather than failing the pull (ostree
                    // too pulls such a commit with gpg-verify=false).
                    return Ok(());
                }
                self.meta_arrived(csum, Some(bytes))?;
            }
            Job::Commit { depth, .. } => {
                verify_meta(kind, &csum, &bytes)?;
                self.commit_arrived(csum, bytes, depth, true, true)?;
            }
            Job::DirTree(_, level, scope) => {
                verify_meta(kind, &csum, &bytes)?;
                let t = DirTree::decode(&bytes).map_err(|e| object_err(kind, &csum, e))?;
                // resolve_locally found it absent before it was fetched.
                self.tx.write_meta_fetched(kind, &csum, &bytes)?;
                self.queue_tree_children(&t, level, scope)?;
            }
            Job::DirMeta(_) => {
                verify_meta(kind, &csum, &bytes)?;
                DirMeta::decode(&bytes).map_err(|e| object_err(kind, &csum, e))?;
                self.tx.write_meta_fetched(kind, &csum, &bytes)?;
            }
            Job::File(_) => unreachable!("handled above"),
        }
        Ok(())
    }

    /// A commit whose bytes match its checksum: handled at once when the
    /// remote asks for no signatures, else once its detached metadata is in.
    fn commit_arrived(
        &mut self,
        csum: Checksum,
        bytes: Vec<u8>,
        depth: i64,
        incomplete: bool,
        new: bool,
    ) -> Result<()> {
        if !self.verifier.verifies_commits() {
            return self.handle_commit(csum, &bytes, depth, incomplete, new);
        }
        let w = Waiting {
            bytes,
            depth,
            incomplete,
            new,
        };
        match self.metas.remove(&csum) {
            Some(meta) => self.verified(csum, w, meta),
            None => {
                self.waiting.insert(csum, w);
                Ok(())
            }
        }
    }

    /// Detached metadata (already decoded once), or its absence.
    fn meta_arrived(&mut self, csum: Checksum, bytes: Option<Vec<u8>>) -> Result<()> {
        if !self.verifier.verifies_commits() {
            match bytes {
                Some(b) => self.detached.push((csum, b)),
                // Gone on the remote: a requested commit's local copy
                // goes too (written empty).
                None if self.targets.contains(&csum)
                    && self.repo.has_object(ObjectType::CommitMeta, &csum)? =>
                {
                    self.detached.push((csum, Vec::new()))
                }
                None => {}
            }
            return Ok(());
        }
        match self.waiting.remove(&csum) {
            Some(w) => self.verified(csum, w, bytes),
            None => {
                self.metas.insert(csum, bytes);
                Ok(())
            }
        }
    }

    /// Check a commit's signatures (the remote's detached metadata, else
    /// the local one); only then store and traverse it.
    fn verified(&mut self, csum: Checksum, w: Waiting, meta: Option<Vec<u8>>) -> Result<()> {
        let md = match &meta {
            Some(b) => Some(
                Metadata::decode(b).map_err(|e| object_err(ObjectType::CommitMeta, &csum, e))?,
            ),
            None => self.repo.load_commitmeta(&csum)?,
        };
        self.verifier.verify_commit(&csum, &w.bytes, md.as_ref())?;
        if let Some(b) = meta {
            self.detached.push((csum, b));
        }
        self.handle_commit(csum, &w.bytes, w.depth, w.incomplete, w.new)
    }

    /// A commit (verified): store it if new, then queue its tree unless it
    /// is known complete, and its parent while depth remains.
    fn handle_commit(
        &mut self,
        csum: Checksum,
        bytes: &[u8],
        depth: i64,
        incomplete: bool,
        new: bool,
    ) -> Result<()> {
        let kind = ObjectType::Commit;
        let commit = Commit::decode(bytes).map_err(|e| object_err(kind, &csum, e))?;
        if let Some((cur, floor)) = self.ts_floor.get(&csum) {
            check_not_older(cur, *floor, &csum, commit.timestamp)?;
        }
        if let Some(names) = self.bindings.get(&csum) {
            if !self.opts.disable_verify_bindings {
                for n in names {
                    oxtree_repo::bindings::verify_bindings(
                        self.collection_id.as_deref(),
                        Some(n),
                        &commit,
                    )
                    .map_err(|e| object_err(kind, &csum, e))?;
                }
            }
        }
        if new {
            // Partial before it can become visible; cleared at the end.
            self.repo.mark_commit_partial(&csum, b"")?;
            self.tx.write_meta_trusted_name(kind, &csum, bytes)?;
            self.pending.push_back(Job::CommitMeta(csum));
        } else if self.targets.contains(&csum) {
            self.pending.push_back(Job::CommitMeta(csum));
        }
        if incomplete && !self.opts.commit_metadata_only {
            let scope = if self.subpaths.is_empty() {
                // The whole tree: the commit is complete at the end.
                self.partial.push(csum);
                ALL
            } else {
                self.scope_for(Vec::new())
            };
            self.pending.push_back(Job::DirMeta(commit.root_meta));
            self.pending
                .push_back(Job::DirTree(commit.root_tree, 0, scope));
        }
        if depth != 0 {
            if let Some(p) = commit.parent {
                self.pending.push_back(Job::Commit {
                    csum: p,
                    depth: depth - 1,
                    parent: true,
                });
            }
        }
        Ok(())
    }

    fn scope_for(&mut self, path: Vec<String>) -> u32 {
        let id = self.scopes.len() as u32;
        self.scopes.push(path);
        id
    }

    /// Whether `path` lies at or below a subpath (wanted whole), on the
    /// way to one (wanted in part), or neither.
    fn wanted(&self, path: &[String]) -> (bool, bool) {
        let whole = self.subpaths.iter().any(|s| path.starts_with(s));
        let on_way = self
            .subpaths
            .iter()
            .any(|s| s.len() > path.len() && s.starts_with(path));
        (whole, on_way)
    }

    fn queue_tree_children(&mut self, t: &DirTree, level: usize, scope: u32) -> Result<()> {
        if level >= MAX_TREE_DEPTH && !t.dirs.is_empty() {
            return Err(TransportError::bad(
                "tree",
                format!("directories nested deeper than {MAX_TREE_DEPTH}"),
            ));
        }
        let here = (scope != ALL).then(|| self.scopes[scope as usize].clone());
        let child_path = |name: &str| {
            let mut p = here.clone().unwrap_or_default();
            p.push(name.to_string());
            p
        };
        for f in &t.files {
            if here.is_none() || self.wanted(&child_path(&f.name)).0 {
                self.pending.push_back(Job::File(f.checksum));
            }
        }
        for d in &t.dirs {
            let child = if here.is_none() {
                ALL
            } else {
                match self.wanted(&child_path(&d.name)) {
                    (true, _) => ALL,
                    (false, true) => self.scope_for(child_path(&d.name)),
                    (false, false) => continue,
                }
            };
            self.pending.push_back(Job::DirMeta(d.meta));
            self.pending
                .push_back(Job::DirTree(d.tree, level + 1, child));
        }
        Ok(())
    }
}

fn verify_meta(kind: ObjectType, csum: &Checksum, bytes: &[u8]) -> Result<()> {
    let actual = Checksum::of(bytes);
    if actual != *csum {
        return Err(object_err(
            kind,
            csum,
            oxtree_repo::fsck::checksum_mismatch(kind, csum, &actual),
        ));
    }
    Ok(())
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

/// Verify and store one `.filez` object, which `resolve_locally` found
/// absent before it was fetched; returns its uncompressed size.
/// What is checked of each file object beyond its checksum.
#[derive(Clone, Copy, Debug)]
struct FileChecks {
    bareuseronly: bool,
    /// Store archive objects unverified (see `PullOptions::trusted_http`).
    trusted: bool,
    limit: u64,
}

impl FileChecks {
    fn of(repo: &Repo, opts: &PullOptions) -> FileChecks {
        FileChecks {
            bareuseronly: opts.bareuseronly_files,
            trusted: opts.trusted_http && opts.mirror && repo.mode() == RepoMode::Archive,
            limit: opts.max_content_size,
        }
    }
}

/// `--bareuseronly-files` (see [`oxtree_repo::mode::check_bareuseronly_mode`]).
fn check_bareuseronly(csum: &Checksum, mode: u32) -> Result<()> {
    Ok(oxtree_repo::mode::check_bareuseronly_mode(csum, mode)?)
}

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

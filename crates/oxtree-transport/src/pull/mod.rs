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
//! runtime; metadata is verified and written on the calling thread, file
//! objects on a writer thread of their own (`writer`).
//!
//! The pieces: `options` (what a caller asks for and gets back),
//! `summary` (the remote's summary and its signature), `delta` (static
//! deltas), `walk` (the object walk from commits down to files),
//! `writer` (the thread that verifies and writes file objects) and
//! `timestamp` (the downgrade check of `-T`).

mod delta;
mod options;
mod summary;
mod timestamp;
mod walk;
mod writer;

use crate::error::{Result, TransportError};
use crate::fetch::{client_runtime, join_url, Fetcher};
use crate::mirrors::Sources;
use crate::remote::Remote;
use crate::summary_cache::SummaryCache;
use crate::verify::RemoteVerifier;
use delta::pull_static_delta;
use oxtree_object::{Checksum, ObjectType};
use oxtree_repo::{Repo, RepoConfig, RepoMode, Transaction};
use std::collections::{HashMap, HashSet, VecDeque};
use summary::fetch_summary_async;
use timestamp::timestamp_floors;
use walk::{split_subpath, Job, State};
use writer::{FileChecks, FileWriter};

pub use options::{
    parse_ref_request, DeltaStats, PullOptions, PullProgress, PullResult, RefRequest,
};
pub use summary::{fetch_summary, fetch_summary_raw, RawSummary};

/// ostree's OSTREE_MAX_METADATA_SIZE.
pub const MAX_METADATA_SIZE: u64 = 128 << 20;
const MAX_CONFIG_SIZE: u64 = 1 << 20;
const MAX_REF_SIZE: u64 = 4096;

fn object_err(kind: ObjectType, csum: &Checksum, reason: impl std::fmt::Display) -> TransportError {
    TransportError::bad(format!("object {csum}.{kind}"), reason)
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

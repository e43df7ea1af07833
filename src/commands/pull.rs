//! `oxtree pull REMOTE [REF[@COMMIT]…]`: fetch commits from a remote
//! archive repository over HTTP, with a progress bar on a terminal
//! (objects, bytes, rate, ETA) or, with `--json`, one JSON object per line
//! for machines: `{"event":"progress",…}` at most every 200 ms, then one
//! `{"event":"done",…}` with the refs written.

use crate::output::format_size;
use crate::util::open_repo;
use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use oxtree_transport::{PullOptions, PullProgress, Remote};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// Traverse DEPTH parents (-1 = infinite)
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    depth: i64,
    /// Fetch only the commit metadata
    #[arg(long)]
    commit_metadata_only: bool,
    /// Write refs suitable for a mirror (refs/heads instead of refs/remotes)
    #[arg(long)]
    mirror: bool,
    /// Do not use static deltas
    #[arg(long, conflicts_with = "require_static_deltas")]
    disable_static_deltas: bool,
    /// Fail unless every commit comes by a static delta
    #[arg(long)]
    require_static_deltas: bool,
    /// Only show what the static deltas would fetch (needs
    /// --require-static-deltas)
    #[arg(long, requires = "require_static_deltas")]
    dry_run: bool,
    /// Only pull the provided subpath(s)
    #[arg(long = "subpath", value_name = "SUBPATH")]
    subpaths: Vec<String>,
    /// Do not invoke fsync()
    #[arg(long)]
    disable_fsync: bool,
    /// Make the pulled objects durable even where core.fsync is off
    /// (ostree fsyncs each object; oxtree syncs the filesystem once before
    /// the objects become visible, which makes them as durable)
    #[arg(long)]
    per_object_fsync: bool,
    /// Network retries per request
    #[arg(long, value_name = "N", default_value_t = 5)]
    network_retries: u32,
    /// Abort a request when no bytes arrive for SECS (then retry)
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    stall_timeout: u64,
    /// Progress and result as JSON lines on stdout
    #[arg(long)]
    json: bool,
    /// Do not check that commits are bound to the refs (and collection)
    /// they were pulled as
    #[arg(long)]
    disable_verify_bindings: bool,
    /// Cache signed summaries in DIR/summaries instead of the repository's
    /// tmp/cache
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Take objects from this local repository before fetching them
    /// (repeatable)
    #[arg(short = 'L', long = "localcache-repo", value_name = "REPO")]
    localcache_repo: Vec<PathBuf>,
    /// Refuse file objects with modes a bare-user-only repository
    /// cannot hold (setuid, setgid, world-writable)
    #[arg(long)]
    bareuseronly_files: bool,
    /// With --mirror into an archive repository: store file objects
    /// without verifying their checksums
    #[arg(long)]
    http_trusted: bool,
    /// Refuse a commit older than the one the ref points to
    #[arg(short = 'T', long)]
    timestamp_check: bool,
    /// Refuse a commit older than this one
    #[arg(long, value_name = "COMMIT")]
    timestamp_check_from_rev: Option<String>,
    /// Send this HTTP header with every request (repeatable)
    #[arg(long = "http-header", value_name = "NAME=VALUE")]
    http_headers: Vec<String>,
    /// Append this to the User-Agent
    #[arg(long, value_name = "PRODUCT/VERSION")]
    append_user_agent: Option<String>,
    /// Pull from this URL instead of the remote's configured one
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// Remote name, or REMOTE:REF
    remote: String,
    /// Refs to pull (REF, REF@COMMIT or a commit checksum); default: the
    /// remote's configured branches
    #[arg(value_name = "REF")]
    refs: Vec<String>,
}

pub fn run(repo: Option<PathBuf>, a: Args) -> Result<()> {
    let repo = open_repo(repo)?;
    // `pull REMOTE:REF` is `pull REMOTE REF`.
    let mut a = a;
    if let Some((r, rf)) = a.remote.clone().split_once(':') {
        if !a.refs.is_empty() {
            anyhow::bail!("Cannot specify a refspec (REMOTE:REF) with further refs");
        }
        a.remote = r.to_string();
        a.refs = vec![rf.to_string()];
    }
    let mut remote = Remote::open(&repo, &a.remote)?;
    // As ostree: `--url` replaces both `url` and `contenturl`, unless the
    // remote has a metalink, which wins.
    if let (Some(u), None) = (&a.url, &remote.metalink) {
        remote.url = u.clone();
        remote.content_url = None;
    }
    let mut opts = PullOptions {
        depth: a.depth,
        commit_metadata_only: a.commit_metadata_only,
        mirror: a.mirror,
        disable_static_deltas: a.disable_static_deltas,
        require_static_deltas: a.require_static_deltas,
        bareuseronly_files: a.bareuseronly_files,
        localcache: a.localcache_repo.clone(),
        trusted_http: a.http_trusted,
        timestamp_check: a.timestamp_check,
        timestamp_check_from: a
            .timestamp_check_from_rev
            .as_deref()
            .map(|r| repo.resolve_rev(r))
            .transpose()?,
        dry_run: a.dry_run,
        subpaths: a.subpaths.clone(),
        sync: if a.disable_fsync {
            Some(false)
        } else {
            a.per_object_fsync.then_some(true)
        },
        disable_verify_bindings: a.disable_verify_bindings,
        cache_dir: Some(
            a.cache_dir
                .clone()
                .unwrap_or_else(|| repo.path().join("tmp/cache")),
        ),
        ..Default::default()
    };
    opts.fetch.retries = a.network_retries;
    opts.fetch.stall_timeout = std::time::Duration::from_secs(a.stall_timeout.max(1));
    opts.fetch = remote.fetch_options(opts.fetch)?;
    for h in &a.http_headers {
        let (k, v) = h
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--http-header takes NAME=VALUE, not '{h}'"))?;
        opts.fetch.headers.push((k.to_string(), v.to_string()));
    }
    opts.fetch.append_user_agent = a.append_user_agent.clone();

    let pb = if std::io::stderr().is_terminal() && !a.json {
        let pb = ProgressBar::new(0);
        pb.set_style(
            ProgressStyle::with_template(
                "{spinner} pull {msg} [{bar:30}] {pos}/{len} objects ({elapsed}, ETA {eta})",
            )
            .unwrap()
            .progress_chars("=> "),
        );
        pb
    } else {
        ProgressBar::hidden()
    };
    let start = Instant::now();
    let last_json = std::cell::Cell::new(None::<Instant>);
    let report = |p: &PullProgress| {
        if a.json {
            let due = last_json
                .get()
                .is_none_or(|t| t.elapsed().as_millis() >= 200);
            if due {
                last_json.set(Some(Instant::now()));
                let secs = start.elapsed().as_secs_f64().max(0.001);
                let line = serde_json::json!({
                    "event": "progress",
                    "requested": p.requested,
                    "fetched": p.fetched,
                    "fetched-metadata": p.fetched_metadata,
                    "fetched-content": p.fetched_content,
                    "scanned-local": p.scanned_local,
                    "bytes": p.bytes,
                    "bytes-per-second": (p.bytes as f64 / secs) as u64,
                    "elapsed-seconds": secs,
                });
                println!("{line}");
            }
            return;
        }
        pb.set_length(p.requested);
        pb.set_position(p.fetched);
        let secs = start.elapsed().as_secs_f64().max(0.001);
        pb.set_message(format!(
            "{} ({}/s)",
            format_size(p.bytes),
            format_size((p.bytes as f64 / secs) as u64)
        ));
    };
    let res = oxtree_transport::pull(&repo, &remote, &a.refs, &opts, &report);
    pb.finish_and_clear();
    let res = res?;
    if a.dry_run {
        let d = &res.deltas;
        println!(
            "Delta update: {}/{} parts, {}/{}, {} total uncompressed",
            d.parts_present,
            d.parts,
            format_size(d.size_present),
            format_size(d.size),
            format_size(d.usize)
        );
        return Ok(());
    }
    if a.mirror && a.refs.is_empty() {
        mirror_summary(&repo, &remote, &opts)?;
    }
    let p = &res.progress;
    if a.json {
        let refs: serde_json::Map<String, serde_json::Value> = res
            .refs
            .iter()
            .map(|(r, c)| (r.clone(), serde_json::Value::String(c.to_hex())))
            .collect();
        let line = serde_json::json!({
            "event": "done",
            "refs": refs,
            "commits": res.commits.iter().map(|c| c.to_hex()).collect::<Vec<_>>(),
            "fetched-metadata": p.fetched_metadata,
            "fetched-content": p.fetched_content,
            "scanned-local": p.scanned_local,
            "bytes": p.bytes,
            "content-bytes": p.content_bytes,
            "elapsed-seconds": start.elapsed().as_secs_f64(),
        });
        println!("{line}");
        return Ok(());
    }
    if p.cache_metadata + p.cache_content > 0 {
        // ostree's line when a local cache was used.
        println!(
            "{} metadata, {} content objects fetched ({} meta, {} content local); {} transferred in {} seconds; {} content written",
            p.fetched_metadata,
            p.fetched_content,
            p.cache_metadata,
            p.cache_content,
            format_size(p.bytes),
            start.elapsed().as_secs(),
            format_size(p.content_bytes)
        );
    } else if p.fetched > 0 {
        println!(
            "{} metadata, {} content objects fetched; {} transferred in {} seconds; {} content written",
            p.fetched_metadata,
            p.fetched_content,
            format_size(p.bytes),
            start.elapsed().as_secs(),
            format_size(p.content_bytes)
        );
    }
    Ok(())
}

/// A full `pull --mirror` also copies the remote's `summary` and
/// `summary.sig`, so that the mirror serves them as the original does.
fn mirror_summary(repo: &oxtree_repo::Repo, remote: &Remote, opts: &PullOptions) -> Result<()> {
    use oxtree_repo::fsutil::write_atomic_at;
    let v = oxtree_transport::verify::RemoteVerifier::for_summary(repo, remote)?;
    let Some((summary, sig)) = oxtree_transport::pull::fetch_summary_raw(remote, &v, &opts.fetch)?
    else {
        return Ok(());
    };
    let sync = repo.fsync_enabled()?;
    match sig {
        Some(sig) => write_atomic_at(repo.dir(), "summary.sig", &sig, sync)?,
        None => match rustix::fs::unlinkat(repo.dir(), "summary.sig", rustix::fs::AtFlags::empty())
        {
            Ok(()) | Err(rustix::io::Errno::NOENT) => {}
            Err(e) => return Err(std::io::Error::from(e).into()),
        },
    }
    write_atomic_at(repo.dir(), "summary", &summary, sync)?;
    Ok(())
}

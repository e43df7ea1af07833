//! Static deltas in a pull: the superblock (checked against the summary
//! or the remote's delta index, and its signatures), then the parts,
//! fetched concurrently and each verified as it is applied.

use super::{object_err, DeltaStats, PullOptions};
use crate::error::{Result, TransportError};
use crate::fetch::{Body, Fetcher};
use crate::mirrors::Mirrors;
use crate::verify::RemoteVerifier;
use oxtree_object::{Checksum, Metadata, ObjectType};
use oxtree_repo::Repo;
use tokio::task::JoinSet;

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
pub(super) async fn pull_static_delta(
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

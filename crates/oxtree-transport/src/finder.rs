//! Finding peers by collection ref, and pulling from what was found.
//!
//! A collection ref `(COLLECTION-ID, REF)` names a branch independently of
//! where it is served, so any repository that carries it (the configured
//! remote, a mirror, a USB stick) can supply it; commits are then checked
//! against the GPG keys of the remote configured for that collection.
//!
//! Finders propose candidate repositories:
//! - [`Finder::Config`]: the configured remotes that have a `collection-id`
//!   and list a requested ref of that collection in their summary;
//! - [`Finder::Mount`]: repositories on mounted volumes (`.ostree/repos.d/*`,
//!   `.ostree/repo`, `ostree/repo`, `var/lib/flatpak/repo`) holding a
//!   requested ref in `refs/heads` of their collection or in
//!   `refs/mirrors/`, when a configured remote of that collection supplies
//!   the keys.
//!
//! [`find_remotes`] then reads each candidate's summary and keeps, for each
//! ref, only the candidates that offer its newest commit (by the commit
//! timestamp the summary lists, else the commit's own; on a tie within
//! the same second, a child beats its parent), so an outdated mirror is
//! never pulled from. [`pull_from_results`] pulls each ref from
//! the first result offering it (results from remotes the repository
//! already follows the ref from go first), verifying GPG signatures with the keys of
//! the collection's remote whatever that remote's own settings (peers are
//! untrusted), and tries the next result when a pull fails.
//!
//! Library code never prints.

use crate::error::{Result, TransportError};
use crate::fetch::{join_url, FetchOptions, Fetcher};
use crate::pull::{pull, PullOptions, PullProgress, MAX_METADATA_SIZE};
use crate::remote::{remote_entries, Remote};
use crate::signapi::SignVerify;
use crate::summary::{Summary, SummaryRef};
use crate::verify::RemoteVerifier;
use oxtree_object::{Checksum, Commit, ObjectType};
use oxtree_repo::collections::CollectionRef;
use oxtree_repo::objects::loose_path;
use oxtree_repo::{Repo, RepoMode};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Priority of a result from the configured remotes (lower is preferred).
pub const CONFIG_PRIORITY: i32 = 100;
/// Priority of a result from a mounted volume: local and fast.
pub const MOUNT_PRIORITY: i32 = 50;

/// A source of candidate repositories.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finder {
    /// The repository's configured remotes with a `collection-id`.
    Config,
    /// Repositories on these mounted volumes (their root directories).
    Mount(Vec<PathBuf>),
}

/// Which finder proposed a result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinderKind {
    Config,
    Mount,
}

/// A repository offering some of the requested refs.
#[derive(Clone, Debug)]
pub struct FindResult {
    /// What to pull from: for a configured remote, that remote; for a
    /// volume, the remote of the collection (name, keys, options) with the
    /// volume's repository as its URL.
    pub remote: Remote,
    pub finder: FinderKind,
    pub priority: i32,
    /// `ostree.summary.last-modified` of its summary, when it has one.
    pub summary_last_modified: Option<u64>,
    /// Every requested ref, in request order, with the commit this result
    /// would supply: None when it lacks the ref or offers an older commit
    /// than another result.
    pub refs: Vec<(CollectionRef, Option<Checksum>)>,
}

impl FindResult {
    /// The keyring file its commits are checked with, as ostree names it.
    pub fn keyring(&self) -> String {
        format!("{}.trustedkeys.gpg", self.remote.name)
    }

    fn n_refs(&self) -> usize {
        self.refs.iter().filter(|(_, c)| c.is_some()).count()
    }
}

/// A candidate before its summary is read.
struct Candidate {
    remote: Remote,
    finder: FinderKind,
    priority: i32,
    /// What the finder saw (a mount's refs); the summary decides for
    /// configured remotes.
    refs: HashMap<CollectionRef, Checksum>,
    /// Its summary, when the finder already fetched it.
    summary: Option<Summary>,
}

/// Find the repositories offering `refs`, best first (see the module
/// documentation). A candidate whose summary cannot be fetched or read is
/// skipped, as is one that offers no ref's newest commit. `fetch` is the
/// base of each remote's own fetch options.
pub fn find_remotes(
    repo: &Repo,
    refs: &[CollectionRef],
    finders: &[Finder],
    fetch: &FetchOptions,
) -> Result<Vec<FindResult>> {
    for r in refs {
        oxtree_repo::refs::validate_collection_id(&r.collection_id)?;
        oxtree_repo::refs::validate_ref_name(&r.ref_name)?;
    }
    let mut candidates = Vec::new();
    for f in finders {
        match f {
            Finder::Config => config_candidates(repo, refs, fetch, &mut candidates)?,
            Finder::Mount(roots) => mount_candidates(repo, refs, roots, &mut candidates)?,
        }
    }

    // Each candidate's summary: the commit (and what is known of it) it
    // lists for each requested ref.
    struct Listed {
        last_modified: Option<u64>,
        refs: Vec<Option<SummaryRef>>,
    }
    let mut listed: Vec<Option<Listed>> = Vec::with_capacity(candidates.len());
    for c in &mut candidates {
        let s = match c.summary.take() {
            Some(s) => s,
            None => match candidate_summary(repo, &c.remote, fetch) {
                Ok(Some(s)) => s,
                // ostree skips such a candidate too.
                Ok(None) | Err(_) => {
                    listed.push(None);
                    continue;
                }
            },
        };
        let mut per_ref = Vec::with_capacity(refs.len());
        for r in refs {
            let found = s
                .find_collection_ref(&r.collection_id, &r.ref_name)
                .ok()
                .flatten();
            // A mount's refs must agree with its summary.
            let found = match (c.finder, &found) {
                (FinderKind::Mount, Some(f)) if c.refs.get(r) != Some(&f.commit) => None,
                _ => found,
            };
            per_ref.push(found);
        }
        listed.push(Some(Listed {
            last_modified: s.last_modified(),
            refs: per_ref,
        }));
    }

    // The timestamp of each listed commit: from a summary, else the local
    // object, else fetched from a candidate listing it.
    let mut timestamps: HashMap<Checksum, u64> = HashMap::new();
    for l in listed.iter().flatten() {
        for sr in l.refs.iter().flatten() {
            if let Some(t) = sr.timestamp() {
                timestamps.entry(sr.commit).or_insert(t);
            }
        }
    }
    for (ci, l) in listed.iter().enumerate() {
        let Some(l) = l else { continue };
        for sr in l.refs.iter().flatten() {
            if timestamps.contains_key(&sr.commit) {
                continue;
            }
            let t = match repo.load_commit(&sr.commit) {
                Ok(c) => Some(c.timestamp),
                Err(_) => fetch_commit_timestamp(&candidates[ci].remote, &sr.commit, fetch).ok(),
            };
            if let Some(t) = t {
                timestamps.insert(sr.commit, t);
            }
        }
    }

    // The newest commit of each ref across all candidates. Timestamps
    // have whole seconds: two commits made in the same second tie, and
    // then a child beats its parent (an outdated mirror must not win by
    // being listed first); otherwise the first candidate wins.
    let parent_of = |ci: usize, c: &Checksum| -> Option<Checksum> {
        match repo.load_commit(c) {
            Ok(c) => c.parent,
            Err(_) => fetch_commit(&candidates[ci].remote, c, fetch).ok()?.parent,
        }
    };
    let mut newest: Vec<Option<(Checksum, u64)>> = vec![None; refs.len()];
    for (ci, l) in listed.iter().enumerate() {
        let Some(l) = l else { continue };
        for (i, sr) in l.refs.iter().enumerate() {
            let Some(sr) = sr else { continue };
            let t = timestamps.get(&sr.commit).copied().unwrap_or(0);
            let newer = match newest[i] {
                None => true,
                Some((nc, nt)) => {
                    t > nt || (t == nt && nc != sr.commit && parent_of(ci, &sr.commit) == Some(nc))
                }
            };
            if newer {
                newest[i] = Some((sr.commit, t));
            }
        }
    }

    let mut out = Vec::new();
    for (c, l) in candidates.into_iter().zip(listed) {
        let Some(l) = l else { continue };
        let refs: Vec<(CollectionRef, Option<Checksum>)> = refs
            .iter()
            .zip(&l.refs)
            .zip(&newest)
            .map(|((r, sr), n)| {
                let c = match (sr, n) {
                    (Some(sr), Some((nc, _))) if sr.commit == *nc => Some(sr.commit),
                    _ => None,
                };
                (r.clone(), c)
            })
            .collect();
        let res = FindResult {
            remote: c.remote,
            finder: c.finder,
            priority: c.priority,
            summary_last_modified: l.last_modified,
            refs,
        };
        if res.n_refs() > 0 {
            out.push(res);
        }
    }
    // Preferred first: lower priority value, then more refs, then the
    // newer summary, then by name (for a stable order).
    out.sort_by(|a, b| {
        a.priority
            .cmp(&b.priority)
            .then(b.n_refs().cmp(&a.n_refs()))
            .then(b.summary_last_modified.cmp(&a.summary_last_modified))
            .then(a.remote.name.cmp(&b.remote.name))
            .then(a.remote.url.cmp(&b.remote.url))
    });
    Ok(out)
}

/// The configured remotes that have a collection ID and whose summary lists
/// a requested ref of that collection.
fn config_candidates(
    repo: &Repo,
    refs: &[CollectionRef],
    fetch: &FetchOptions,
    out: &mut Vec<Candidate>,
) -> Result<()> {
    for e in remote_entries(repo)? {
        let Ok(remote) = e.remote() else { continue };
        let Some(id) = remote.collection_id.as_deref() else {
            continue;
        };
        if oxtree_repo::refs::validate_collection_id(id).is_err()
            || !refs.iter().any(|r| r.collection_id == id)
        {
            continue;
        }
        let Ok(Some(s)) = candidate_summary(repo, &remote, fetch) else {
            continue;
        };
        let has_one = refs.iter().any(|r| {
            r.collection_id == id
                && s.find_collection_ref(id, &r.ref_name)
                    .ok()
                    .flatten()
                    .is_some()
        });
        if has_one {
            out.push(Candidate {
                remote,
                finder: FinderKind::Config,
                priority: CONFIG_PRIORITY,
                refs: HashMap::new(),
                summary: Some(s),
            });
        }
    }
    Ok(())
}

/// A candidate's summary, checked as its remote asks.
fn candidate_summary(
    repo: &Repo,
    remote: &Remote,
    fetch: &FetchOptions,
) -> Result<Option<Summary>> {
    let v = RemoteVerifier::for_summary(repo, remote)?;
    crate::pull::fetch_summary(remote, &v, &remote.fetch_options(fetch.clone())?)
}

/// The timestamp of `commit` as `remote` serves it.
fn fetch_commit_timestamp(remote: &Remote, commit: &Checksum, fetch: &FetchOptions) -> Result<u64> {
    Ok(fetch_commit(remote, commit, fetch)?.timestamp)
}

/// `commit` as `remote` serves it, verified.
fn fetch_commit(remote: &Remote, commit: &Checksum, fetch: &FetchOptions) -> Result<Commit> {
    let fetcher = Fetcher::new(remote.fetch_options(fetch.clone())?)?;
    let rel = format!(
        "objects/{}",
        loose_path(commit, ObjectType::Commit, RepoMode::Archive)
    );
    let url = join_url(remote.objects_base(), &rel);
    let bytes = crate::fetch::get_blocking(&fetcher, &url, MAX_METADATA_SIZE)?
        .ok_or_else(|| TransportError::NotFound { url: url.clone() })?;
    if Checksum::of(&bytes) != *commit {
        return Err(TransportError::bad(format!("commit {commit}"), "corrupted"));
    }
    Ok(Commit::decode(&bytes)?)
}

/// Where a volume may hold repositories: `.ostree/repos.d/*` (sorted by
/// name), then the well-known locations.
const WELL_KNOWN_REPOS: [&str; 3] = [".ostree/repo", "ostree/repo", "var/lib/flatpak/repo"];

/// Repositories on the volumes at `roots` holding requested refs, one
/// candidate per (repository, collection remote).
fn mount_candidates(
    repo: &Repo,
    refs: &[CollectionRef],
    roots: &[PathBuf],
    out: &mut Vec<Candidate>,
) -> Result<()> {
    let own = rustix::fs::fstat(repo.dir()).map_err(|e| TransportError::io("stat", e.into()))?;
    // The remote supplying the keys of each collection.
    let mut keyring_remotes: HashMap<String, Remote> = HashMap::new();
    for e in remote_entries(repo)? {
        if let Ok(r) = e.remote() {
            if let Some(id) = r.collection_id.clone() {
                keyring_remotes.entry(id).or_insert(r);
            }
        }
    }
    for root in roots {
        let Ok(root_st) = rustix::fs::stat(root) else {
            continue;
        };
        let mut paths = Vec::new();
        let repos_d = root.join(".ostree/repos.d");
        if let Ok(rd) = std::fs::read_dir(&repos_d) {
            let mut names: Vec<_> = rd.filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
            names.sort();
            paths.extend(names.into_iter().map(|n| repos_d.join(n)));
        }
        paths.extend(WELL_KNOWN_REPOS.iter().map(|p| root.join(p)));
        // (repository path, collection ID) → its refs found.
        let mut groups: Vec<(PathBuf, String, HashMap<CollectionRef, Checksum>)> = Vec::new();
        let mut scanned: Vec<(PathBuf, Vec<(CollectionRef, Checksum)>)> = Vec::new();
        for p in paths {
            let Ok(r) = Repo::open(&p) else { continue };
            let Ok(st) = rustix::fs::fstat(r.dir()) else {
                continue;
            };
            // On the volume itself, and not the repository we resolve for.
            if st.st_dev != root_st.st_dev || (st.st_dev == own.st_dev && st.st_ino == own.st_ino) {
                continue;
            }
            let Ok(canonical) = std::fs::canonicalize(&p) else {
                continue;
            };
            if scanned.iter().any(|(q, _)| *q == canonical) {
                continue;
            }
            let Ok(listed) = r.list_collection_refs(None, &|_| None) else {
                continue;
            };
            scanned.push((canonical, listed));
        }
        for r in refs {
            let Some((path, c)) = scanned.iter().find_map(|(p, l)| {
                l.iter()
                    .find(|(cr, _)| cr == r)
                    .map(|(_, c)| (p.clone(), *c))
            }) else {
                continue;
            };
            if !keyring_remotes.contains_key(&r.collection_id) {
                continue;
            }
            match groups
                .iter_mut()
                .find(|(p, id, _)| *p == path && *id == r.collection_id)
            {
                Some((_, _, m)) => {
                    m.insert(r.clone(), c);
                }
                None => groups.push((
                    path,
                    r.collection_id.clone(),
                    HashMap::from([(r.clone(), c)]),
                )),
            }
        }
        for (path, id, found) in groups {
            let mut remote = keyring_remotes[&id].clone();
            remote.url = format!("file://{}", path.display());
            remote.content_url = None;
            remote.gpg_verify = true;
            remote.gpg_verify_summary = false;
            out.push(Candidate {
                remote,
                finder: FinderKind::Mount,
                priority: MOUNT_PRIORITY,
                refs: found,
                summary: None,
            });
        }
    }
    Ok(())
}

/// Mount points of removable and user volumes, for [`Finder::Mount`]:
/// those below `/media`, `/run/media` and `/mnt` in `/proc/self/mountinfo`.
pub fn user_mounts() -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in text.lines() {
        let Some(mp) = line.split(' ').nth(4) else {
            continue;
        };
        let mp = unescape_mountinfo(mp);
        let p = Path::new(&mp);
        if ["/media", "/run/media", "/mnt"]
            .iter()
            .any(|b| p.starts_with(b) && p != Path::new(b))
        {
            out.push(p.to_path_buf());
        }
    }
    out
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 4 <= b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What [`pull_from_results`] did.
#[derive(Debug, Default)]
pub struct PeersPulled {
    /// Refs pulled, with their commit, in request order.
    pub pulled: Vec<(CollectionRef, Checksum)>,
    /// Refs that every result offering them failed to supply, with the
    /// last error (shared by the refs pulled together).
    pub failed: Vec<(CollectionRef, Arc<TransportError>)>,
}

/// Pull each ref some result offers from the first result offering it,
/// falling back to the next on failure. Commits must carry a good GPG
/// signature by the keys of the result's remote (summaries are not
/// required to be signed), whatever the remote's own settings. The refs
/// written are those of a pull from that remote: `refs/remotes/REMOTE/REF`,
/// or with `opts.mirror` the collection ref (`refs/mirrors/ID/REF`).
pub fn pull_from_results(
    repo: &Repo,
    results: &[FindResult],
    opts: &PullOptions,
    progress: &dyn Fn(&PullProgress),
) -> Result<PeersPulled> {
    let mut done: HashMap<CollectionRef, std::result::Result<Checksum, Arc<TransportError>>> =
        HashMap::new();
    // Every result offers the same (newest) commit of a ref; prefer the
    // remotes this repository already follows those refs from, so that a
    // ref keeps one home (`refs/remotes/REMOTE/REF`) instead of a copy per
    // mirror that a later `rev-parse REF` would have to choose between.
    // Otherwise the results' order stands.
    let follows = |res: &FindResult| {
        res.refs
            .iter()
            .filter(|(r, c)| {
                c.is_some()
                    && repo
                        .read_ref(&format!("{}:{}", res.remote.name, r.ref_name))
                        .is_ok_and(|v| v.is_some())
            })
            .count()
    };
    let mut ordered: Vec<&FindResult> = results.iter().collect();
    ordered.sort_by_key(|res| std::cmp::Reverse(follows(res)));
    for res in ordered {
        // This result's refs not pulled yet, by collection.
        let mut by_collection: Vec<(String, Vec<(CollectionRef, Checksum)>)> = Vec::new();
        for (r, c) in &res.refs {
            let Some(c) = c else { continue };
            if matches!(done.get(r), Some(Ok(_))) {
                continue;
            }
            match by_collection
                .iter_mut()
                .find(|(id, _)| *id == r.collection_id)
            {
                Some((_, v)) => v.push((r.clone(), *c)),
                None => by_collection.push((r.collection_id.clone(), vec![(r.clone(), *c)])),
            }
        }
        for (id, wanted) in by_collection {
            let mut remote = res.remote.clone();
            remote.collection_id = Some(id);
            remote.gpg_verify = true;
            remote.gpg_verify_summary = false;
            remote.sign_verify_mode = SignVerify::Off;
            remote.sign_verify_summary_mode = SignVerify::Off;
            let specs: Vec<String> = wanted
                .iter()
                .map(|(r, c)| format!("{}@{c}", r.ref_name))
                .collect();
            let mut o = opts.clone();
            o.fetch = match remote.fetch_options(opts.fetch.clone()) {
                Ok(f) => f,
                Err(e) => {
                    record_failure(&mut done, &wanted, e);
                    continue;
                }
            };
            match pull(repo, &remote, &specs, &o, progress) {
                Ok(_) => {
                    for (r, c) in wanted {
                        done.insert(r, Ok(c));
                    }
                }
                Err(TransportError::Cancelled) => return Err(TransportError::Cancelled),
                Err(e) => record_failure(&mut done, &wanted, e),
            }
        }
    }
    let mut out = PeersPulled::default();
    let mut order: Vec<&CollectionRef> = Vec::new();
    for res in results {
        for (r, _) in &res.refs {
            if !order.contains(&r) {
                order.push(r);
            }
        }
    }
    for r in order {
        match done.remove(r) {
            Some(Ok(c)) => out.pulled.push((r.clone(), c)),
            Some(Err(e)) => out.failed.push((r.clone(), e)),
            None => {}
        }
    }
    Ok(out)
}

/// Note that `wanted` failed with `e` (unless an earlier result supplied
/// them; the error is shared by the group).
fn record_failure(
    done: &mut HashMap<CollectionRef, std::result::Result<Checksum, Arc<TransportError>>>,
    wanted: &[(CollectionRef, Checksum)],
    e: TransportError,
) {
    let e = Arc::new(e);
    for (r, _) in wanted {
        done.insert(r.clone(), Err(e.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo("/media/my\\040stick"), "/media/my stick");
        assert_eq!(unescape_mountinfo("/a\\134b"), "/a\\b");
        // Not an escape: kept as it is.
        assert_eq!(unescape_mountinfo("/a\\9"), "/a\\9");
        assert_eq!(unescape_mountinfo("/a\\04"), "/a\\04");
    }
}

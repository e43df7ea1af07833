//! The object walk: a queue of [`Job`]s from the requested commits down
//! through their trees to the file objects, fetched concurrently, each
//! verified before it is stored; commits wait for their signatures
//! ([`Waiting`]), and `--subpath` narrows the trees walked (scopes).

use super::timestamp::check_not_older;
use super::writer::{check_bareuseronly, FileWriter};
use super::{object_err, PullOptions, PullProgress};
use crate::error::{Result, TransportError};
use crate::fetch::{Body, Fetcher};
use crate::mirrors::Mirrors;
use crate::verify::RemoteVerifier;
use oxtree_object::{Checksum, Commit, DirMeta, DirTree, Metadata, ObjectType};
use oxtree_repo::objects::loose_path;
use oxtree_repo::traverse::MAX_TREE_DEPTH;
use oxtree_repo::{Repo, RepoMode, Transaction};
use std::collections::{HashMap, HashSet, VecDeque};
use tokio::task::JoinSet;

/// One thing the pull still has to obtain.
#[derive(Clone, Copy, Debug)]
pub(super) enum Job {
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
pub(super) fn split_subpath(p: &str) -> Result<Vec<String>> {
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

pub(super) struct State<'a> {
    pub(super) repo: &'a Repo,
    pub(super) tx: &'a Transaction<'a>,
    pub(super) files: FileWriter,
    pub(super) opts: &'a PullOptions,
    pub(super) verifier: &'a RemoteVerifier,
    /// Commits fetched (or found locally) whose signatures are still to be
    /// checked: they wait for their detached metadata.
    pub(super) waiting: HashMap<Checksum, Waiting>,
    /// Detached metadata fetched for commits to verify (`None`: 404).
    pub(super) metas: HashMap<Checksum, Option<Vec<u8>>>,
    /// Where detached commit metadata (the signatures) comes from: the
    /// remote's `url`, never its `contenturl`, as with ostree.
    pub(super) meta: Mirrors,
    /// Where objects come from.
    pub(super) content: Mirrors,
    /// The remote, when it is a local repository not in archive mode:
    /// file objects are taken from it instead of fetched.
    pub(super) local: Option<&'a Repo>,
    /// `--localcache-repo`s, tried before the network.
    pub(super) caches: Vec<Repo>,
    pub(super) seen: HashSet<(ObjectType, Checksum)>,
    pub(super) pending: VecDeque<Job>,
    /// Commits whose trees this pull completes (unmarked at the end).
    pub(super) partial: Vec<Checksum>,
    pub(super) detached: Vec<(Checksum, Vec<u8>)>,
    /// Requested ref names per commit, checked against ref bindings.
    pub(super) bindings: HashMap<Checksum, Vec<String>>,
    /// The remote's `collection-id`: requested commits must be bound to it.
    pub(super) collection_id: Option<String>,
    pub(super) progress: PullProgress,
    /// `--subpath`s as components; empty: whole trees.
    pub(super) subpaths: Vec<Vec<String>>,
    /// With timestamp checking: each requested commit's floor, the commit
    /// it must not be older than and that commit's timestamp. Checked as
    /// the commit object arrives, before anything of its tree is fetched.
    pub(super) ts_floor: HashMap<Checksum, (Checksum, u64)>,
    /// The requested commits: their detached metadata is fetched again
    /// even when they are here already (signatures may have been added
    /// or removed since), as ostree does.
    pub(super) targets: HashSet<Checksum>,
    /// Commit object sizes the summary gives: a commit fetched bigger is
    /// refused as soon as it passes that size (ostree does the same).
    pub(super) commit_sizes: HashMap<Checksum, u64>,
    /// Paths of the partly wanted directories (see [`ALL`]).
    pub(super) scopes: Vec<Vec<String>>,
}

type Fetched = (Job, Result<Option<Body>>);

/// A commit held back until its signatures are checked.
pub(super) struct Waiting {
    bytes: Vec<u8>,
    depth: i64,
    incomplete: bool,
    new: bool,
}

impl State<'_> {
    pub(super) async fn run(
        &mut self,
        fetcher: &Fetcher,
        progress: &dyn Fn(&PullProgress),
    ) -> Result<()> {
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
    pub(super) fn file_written(&mut self, r: Result<u64>) -> Result<()> {
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

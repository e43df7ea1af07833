//! Prune: delete objects no root reaches, under the exclusive repository
//! lock. Roots are every ref (with `depth` parents), plus, unless
//! `refs_only`, every commit object, as in `ostree prune`. With
//! `keep_younger_than`, only refs are roots and each ref keeps its tip and
//! the unbroken run of ancestors at least that new.
//!
//! Unreachable commits are deleted first, so an interrupted prune never
//! leaves a stored commit whose tree is gone.

use crate::error::{IoContext, RepoError, Result};
use crate::fsutil;
use crate::lock::LockKind;
use crate::objects::loose_path;
use crate::traverse::Reachable;
use crate::Repo;
use oxtree_object::{Checksum, Metadata, ObjectType};
use rayon::prelude::*;
use rustix::fs::{self, AtFlags};
use rustix::io::Errno;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Clone, Debug)]
pub struct PruneOptions {
    /// Only refs are roots (not every stored commit).
    pub refs_only: bool,
    /// Parents kept below each root: 0 none, negative all.
    pub depth: i64,
    /// Keep ref tips and their ancestors with timestamps >= this (seconds
    /// since the epoch); older history is deleted. Implies refs only.
    pub keep_younger_than: Option<u64>,
    /// Delete this commit first (refused if a ref points at it).
    pub delete_commit: Option<Checksum>,
    /// Count what would be deleted, delete nothing (`--no-prune`).
    pub dry_run: bool,
    /// `--retain-branch-depth=REF=DEPTH`: that ref keeps DEPTH parents
    /// (negative: all), whatever `depth` and `keep_younger_than` say.
    pub retain_branch_depth: Vec<(String, i64)>,
    /// `--only-branch`: prune the history of these refs only; every other
    /// ref keeps all of its history.
    pub only_branches: Vec<String>,
    /// `--commit-only`: reachability and deletion of commit objects only;
    /// trees and files stay.
    pub commit_only: bool,
    /// `--static-deltas-only` (with `delete_commit`): delete the static
    /// deltas to that commit instead of the commit.
    pub static_deltas_only: bool,
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions {
            refs_only: false,
            depth: -1,
            keep_younger_than: None,
            delete_commit: None,
            dry_run: false,
            retain_branch_depth: Vec::new(),
            only_branches: Vec::new(),
            commit_only: false,
            static_deltas_only: false,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Loose objects before pruning.
    pub total: u64,
    /// Objects deleted (or that would be, in a dry run).
    pub deleted: u64,
    /// Bytes they occupied.
    pub freed: u64,
}

/// A tombstone's bytes: `a{sv}` holding the commit's hex checksum as a
/// NUL-terminated bytestring.
fn tombstone_bytes(c: &Checksum) -> Vec<u8> {
    let mut md = Metadata::new();
    let mut hex = c.to_hex().into_bytes();
    hex.push(0);
    md.set("commit", hex.into());
    md.encode()
}

/// The object types prune manages; others (tombstones, links) are left alone.
fn prunable(kind: ObjectType) -> bool {
    matches!(
        kind,
        ObjectType::File
            | ObjectType::DirTree
            | ObjectType::DirMeta
            | ObjectType::Commit
            | ObjectType::CommitMeta
    )
}

impl Repo {
    /// Size of a loose object on disk (0 if it vanished).
    pub fn object_storage_size(&self, kind: ObjectType, csum: &Checksum) -> Result<u64> {
        let p = loose_path(csum, kind, self.mode());
        match fs::statat(self.objects_dir(), &p, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(st.st_size as u64),
            Err(Errno::NOENT) => Ok(0),
            Err(e) => Err(e).ctx(|| format!("stat of object {p}")),
        }
    }

    /// Every ref that keeps commits alive: local and remote refs, and
    /// mirrored collection refs (`refs/mirrors/ID/REF`, named `(ID, REF)`).
    pub(crate) fn refs_for_reachability(&self) -> Result<Vec<(String, Checksum)>> {
        let mut refs = self.list_refs()?;
        for (r, c) in self.list_mirror_refs()? {
            refs.push((format!("({}, {})", r.collection_id, r.ref_name), c));
        }
        Ok(refs)
    }

    /// The objects prune keeps.
    pub fn prune_reachable(&self, opts: &PruneOptions) -> Result<Reachable> {
        let mut reachable = Reachable::new();
        let refs = self.refs_for_reachability()?;
        let per_ref = opts.keep_younger_than.is_some()
            || !opts.retain_branch_depth.is_empty()
            || !opts.only_branches.is_empty();
        if per_ref {
            // Refs only, each with its own rule, as `ostree prune` with
            // these options.
            let mut depths: std::collections::HashMap<&str, i64> = opts
                .retain_branch_depth
                .iter()
                .map(|(r, d)| (r.as_str(), *d))
                .collect();
            if !opts.only_branches.is_empty() {
                for b in &opts.only_branches {
                    if !refs.iter().any(|(r, _)| r == b) {
                        self.resolve_rev(b)?;
                    }
                }
                for (r, _) in &refs {
                    if !opts.only_branches.contains(r) {
                        depths.entry(r.as_str()).or_insert(-1);
                    }
                }
            }
            for (name, tip) in &refs {
                match (depths.get(name.as_str()), opts.keep_younger_than) {
                    (Some(d), _) => {
                        self.traverse_commit_with(tip, *d, opts.commit_only, &mut reachable)?
                    }
                    (None, Some(ts)) => {
                        self.keep_younger_than(tip, ts, opts.commit_only, &mut reachable)?
                    }
                    (None, None) => self.traverse_commit_with(
                        tip,
                        opts.depth,
                        opts.commit_only,
                        &mut reachable,
                    )?,
                }
            }
            return Ok(reachable);
        }
        for (_, tip) in &refs {
            self.traverse_commit_with(tip, opts.depth, opts.commit_only, &mut reachable)?;
        }
        if !opts.refs_only {
            for c in self.list_commits()? {
                self.traverse_commit_with(&c, opts.depth, opts.commit_only, &mut reachable)?;
            }
        }
        Ok(reachable)
    }

    /// A ref's tip and the unbroken run of its ancestors at least `ts` new.
    fn keep_younger_than(
        &self,
        tip: &Checksum,
        ts: u64,
        commit_only: bool,
        reachable: &mut Reachable,
    ) -> Result<()> {
        self.traverse_commit_with(tip, 0, commit_only, reachable)?;
        let mut next = self.load_commit(tip)?.parent;
        while let Some(c) = next {
            let commit = match self.load_commit(&c) {
                Ok(commit) => commit,
                Err(RepoError::MissingObject { .. }) => break,
                Err(e) => return Err(e),
            };
            if commit.timestamp < ts {
                break;
            }
            self.traverse_commit_with(&c, 0, commit_only, reachable)?;
            next = commit.parent;
        }
        Ok(())
    }

    /// Delete unreachable objects. Takes the exclusive lock for the whole
    /// run; `progress` gets (objects deleted, to delete).
    pub fn prune(
        &mut self,
        opts: &PruneOptions,
        progress: &(dyn Fn(u64, u64) + Sync),
    ) -> Result<PruneReport> {
        let _lock = self.lock(LockKind::Exclusive)?;
        match (&opts.delete_commit, opts.static_deltas_only) {
            // Only the deltas to the commit go; the commit stays (and may
            // well be a ref's).
            (Some(c), true) => {
                if !opts.dry_run {
                    self.delete_static_deltas_to(Some(c))?;
                }
            }
            (Some(c), false) => {
                if let Some((name, _)) = self
                    .refs_for_reachability()?
                    .into_iter()
                    .find(|(_, r)| r == c)
                {
                    return Err(RepoError::Invalid(format!(
                        "Commit '{c}' is referenced by '{name}'"
                    )));
                }
                if !self.has_object(ObjectType::Commit, c)? {
                    return Err(RepoError::MissingObject {
                        checksum: *c,
                        kind: ObjectType::Commit,
                    });
                }
                if !opts.dry_run {
                    self.enable_tombstone_commits()?;
                    self.delete_commit_object(c)?;
                }
            }
            (None, true) => {
                return Err(RepoError::Invalid(
                    "--static-deltas-only requires --delete-commit".into(),
                ))
            }
            (None, false) => {}
        }
        let this: &Repo = self;
        let report = this.prune_unreachable(opts, progress)?;
        if !opts.dry_run {
            // Deltas to commits that are gone serve nothing.
            this.delete_static_deltas_to(None)?;
        }
        Ok(report)
    }

    /// Delete the static deltas whose target is `to`, or with None, those
    /// whose target commit is not in the repository.
    fn delete_static_deltas_to(&self, to: Option<&Checksum>) -> Result<()> {
        for name in self.list_static_deltas()? {
            let target = name.rsplit('-').next().unwrap_or(&name);
            let Ok(target) = Checksum::from_hex(target) else {
                continue;
            };
            let doomed = match to {
                Some(c) => target == *c,
                None => !self.has_object(ObjectType::Commit, &target)?,
            };
            if doomed {
                self.delete_static_delta(&name)?;
            }
        }
        Ok(())
    }

    fn prune_unreachable(
        &self,
        opts: &PruneOptions,
        progress: &(dyn Fn(u64, u64) + Sync),
    ) -> Result<PruneReport> {
        let mut reachable = self.prune_reachable(opts)?;
        if opts.dry_run {
            if let Some(c) = &opts.delete_commit {
                // What the run would see had the commit been deleted first.
                reachable.remove(&(ObjectType::Commit, *c));
                reachable.remove(&(ObjectType::CommitMeta, *c));
            }
        }
        let objects = self.list_objects()?;
        // Like ostree, count neither detached metadata (it goes with its
        // commit) nor object kinds prune leaves alone.
        let counted = |k: ObjectType| {
            prunable(k)
                && k != ObjectType::CommitMeta
                && (!opts.commit_only || k == ObjectType::Commit)
        };
        let mut report = PruneReport {
            total: objects.iter().filter(|(_, k)| counted(*k)).count() as u64,
            ..Default::default()
        };
        let mut doomed: Vec<(ObjectType, Checksum)> = objects
            .into_iter()
            .map(|(c, k)| (k, c))
            .filter(|o| prunable(o.0) && !reachable.contains(o))
            .filter(|o| {
                !opts.commit_only || matches!(o.0, ObjectType::Commit | ObjectType::CommitMeta)
            })
            .collect();
        // Commits (and their detached metadata) first, then the rest.
        doomed.sort_by_key(|(k, c)| {
            let rank = match k {
                ObjectType::Commit => 0,
                ObjectType::CommitMeta => 1,
                _ => 2,
            };
            (rank, *c)
        });
        let n = doomed.len() as u64;
        let done = AtomicU64::new(0);
        let freed = AtomicU64::new(0);
        progress(0, n);
        let split = doomed
            .iter()
            .position(|(k, _)| *k != ObjectType::Commit && *k != ObjectType::CommitMeta)
            .unwrap_or(doomed.len());
        let (commits, rest) = doomed.split_at(split);
        let delete = |(k, c): &(ObjectType, Checksum)| -> Result<()> {
            if counted(*k) {
                freed.fetch_add(self.object_storage_size(*k, c)?, Ordering::Relaxed);
            }
            if !opts.dry_run {
                if *k == ObjectType::Commit {
                    self.delete_commit_object(c)?;
                } else {
                    self.delete_object(*k, c)?;
                }
            }
            let d = done.fetch_add(1, Ordering::Relaxed) + 1;
            if d.is_multiple_of(256) || d == n {
                progress(d, n);
            }
            Ok(())
        };
        commits.iter().try_for_each(delete)?;
        rest.par_iter().try_for_each(delete)?;
        report.deleted = doomed.iter().filter(|(k, _)| counted(*k)).count() as u64;
        report.freed = freed.load(Ordering::Relaxed);
        Ok(report)
    }

    /// Delete a commit object and its partial marker (its detached metadata
    /// is pruned with it when unreachable). With `core.tombstone-commits`,
    /// leave a tombstone saying the commit was deleted on purpose.
    fn delete_commit_object(&self, c: &Checksum) -> Result<()> {
        self.delete_object(ObjectType::Commit, c)?;
        if self.config().get_bool("core", "tombstone-commits", false)? {
            self.write_tombstone(c)?;
        }
        self.clear_commit_partial(c)
    }

    /// Write the tombstone of a deleted commit: `{'commit': <b'CHECKSUM'>}`,
    /// stored under the commit's checksum, as ostree does.
    fn write_tombstone(&self, c: &Checksum) -> Result<()> {
        let bytes = tombstone_bytes(c);
        let p = loose_path(c, ObjectType::TombstoneCommit, self.mode());
        let (dir, name) = p.split_once('/').expect("loose paths have a directory");
        let d = fsutil::mkdir_p_at(self.objects_dir(), dir)
            .ctx(|| format!("creating objects/{dir}"))?;
        fsutil::write_atomic_at(&d, name, &bytes, self.fsync_enabled()?)
            .ctx(|| format!("writing object {p}"))
    }

    /// `fsck --add-tombstones`: turn tombstones on and write one for each
    /// parent commit that is gone (pruned), so that later pulls know it
    /// was deleted on purpose. Returns how many were written.
    pub fn add_tombstones(&mut self) -> Result<usize> {
        self.enable_tombstone_commits()?;
        let objects = self.list_objects()?;
        let present: std::collections::HashSet<(ObjectType, Checksum)> =
            objects.iter().map(|(c, k)| (*k, *c)).collect();
        let mut written = 0;
        for (c, k) in &objects {
            if *k != ObjectType::Commit {
                continue;
            }
            let Some(parent) = self.load_commit(c)?.parent else {
                continue;
            };
            if present.contains(&(ObjectType::Commit, parent))
                || present.contains(&(ObjectType::TombstoneCommit, parent))
            {
                continue;
            }
            self.write_tombstone(&parent)?;
            written += 1;
        }
        Ok(written)
    }

    /// `--delete-commit` turns tombstones on first (like ostree), once the
    /// commit is known to be deletable.
    pub fn enable_tombstone_commits(&mut self) -> Result<()> {
        if self.config().get_bool("core", "tombstone-commits", false)? {
            return Ok(());
        }
        let mut cfg = self.config().clone();
        cfg.set("core", "tombstone-commits", "true");
        self.write_config(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mode::RepoMode;
    use crate::traverse::commit_dir_for_test;
    use std::collections::HashSet;

    fn all(repo: &Repo) -> HashSet<(Checksum, ObjectType)> {
        repo.list_objects().unwrap().into_iter().collect()
    }

    #[test]
    fn prune_keeps_reachable_and_deletes_the_rest() {
        let tmp = tempfile::tempdir().unwrap();
        let mut repo = Repo::init(&tmp.path().join("repo"), RepoMode::Archive).unwrap();
        let src = tmp.path().join("src");
        std::fs::create_dir_all(src.join("d")).unwrap();
        std::fs::write(src.join("a"), b"one").unwrap();
        std::fs::write(src.join("d/b"), b"shared").unwrap();
        let c1 = commit_dir_for_test(&repo, &src, None, 1000);
        std::fs::write(src.join("a"), b"two").unwrap();
        let c2 = commit_dir_for_test(&repo, &src, Some(c1), 2000);
        repo.write_ref("main", Some(&c2), false).unwrap();
        // An orphan commit nobody references.
        std::fs::write(src.join("orphan"), b"orphan").unwrap();
        let orphan = commit_dir_for_test(&repo, &src, None, 3000);

        let before = all(&repo);
        // Every commit is a root: nothing to delete.
        let r = repo.prune(&PruneOptions::default(), &|_, _| {}).unwrap();
        assert_eq!((r.total, r.deleted), (before.len() as u64, 0));

        // Refs only, no history: c1's "one", c1 itself and the orphan go.
        let opts = PruneOptions {
            refs_only: true,
            depth: 0,
            ..Default::default()
        };
        let dry = repo
            .prune(
                &PruneOptions {
                    dry_run: true,
                    ..opts.clone()
                },
                &|_, _| {},
            )
            .unwrap();
        assert_eq!(all(&repo), before);
        let r = repo.prune(&opts, &|_, _| {}).unwrap();
        assert_eq!(r, dry);
        assert!(r.deleted >= 4);
        let after = all(&repo);
        let mut keep = Reachable::new();
        repo.traverse_commit(&c2, 0, &mut keep).unwrap();
        let keep: HashSet<_> = keep.into_iter().map(|(k, c)| (c, k)).collect();
        assert_eq!(after, keep);
        assert!(!after.contains(&(c1, ObjectType::Commit)));
        assert!(!after.contains(&(orphan, ObjectType::Commit)));
        let f = repo.fsck(&Default::default(), &|_| {}, &|_, _| {}).unwrap();
        assert!(f.is_clean(), "{:?}", f.problems);
    }

    #[test]
    fn tombstone_matches_ostree() {
        let c =
            Checksum::from_hex("7100c3c88496b87210118ecc2b497d27f180afead518819ca04d48175299aacb")
                .unwrap();
        let mut want = b"commit\0\0".to_vec();
        want.extend_from_slice(c.to_hex().as_bytes());
        want.extend_from_slice(b"\0\0ay\x07\x4d");
        assert_eq!(tombstone_bytes(&c), want);
    }

    #[test]
    fn delete_commit_refuses_ref_targets() {
        let tmp = tempfile::tempdir().unwrap();
        let mut repo = Repo::init(&tmp.path().join("repo"), RepoMode::Archive).unwrap();
        let src = tmp.path().join("src");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("a"), b"x").unwrap();
        let c = commit_dir_for_test(&repo, &src, None, 1);
        repo.write_ref("main", Some(&c), false).unwrap();
        let opts = PruneOptions {
            delete_commit: Some(c),
            ..Default::default()
        };
        assert!(repo.prune(&opts, &|_, _| {}).is_err());
        assert!(repo.has_object(ObjectType::Commit, &c).unwrap());
    }
}

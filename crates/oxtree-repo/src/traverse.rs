//! Reachability: the objects a commit needs (the commit, its detached
//! commitmeta if present, every dirtree, dirmeta and file below its root),
//! optionally following parent commits, and partial-commit state.
//!
//! Like ostree, a missing parent ends the walk, and a commit marked partial
//! (`state/CHECKSUM.commitpartial`) may lack metadata objects; file objects
//! are named, not opened.

use crate::error::{IoContext, RepoError, Result};
use crate::fsutil;
use crate::Repo;
use oxtree_object::{Checksum, ObjectType};
use rustix::fs::{self, AtFlags};
use rustix::io::Errno;
use std::collections::HashSet;

/// Deepest directory nesting followed (ostree's OSTREE_MAX_RECURSION);
/// deeper trees are refused rather than risking the stack.
pub const MAX_TREE_DEPTH: usize = 256;

/// An object's identity: its type and checksum.
pub type ObjectName = (ObjectType, Checksum);

/// A set of reachable objects.
pub type Reachable = HashSet<ObjectName>;

fn partial_path(commit: &Checksum) -> String {
    format!("state/{commit}.commitpartial")
}

impl Repo {
    /// True when `commit` is marked partial (some of its objects may be
    /// missing: an interrupted pull, or fsck --delete removed some).
    pub fn is_commit_partial(&self, commit: &Checksum) -> Result<bool> {
        match fs::statat(self.dir(), partial_path(commit), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(_) => Ok(true),
            Err(Errno::NOENT) | Err(Errno::NOTDIR) => Ok(false),
            Err(e) => Err(e).ctx(|| format!("checking {}", partial_path(commit))),
        }
    }

    /// The contents of a partial marker (`f` when fsck made it), if any.
    pub fn commit_partial_reason(&self, commit: &Checksum) -> Result<Option<Vec<u8>>> {
        match fsutil::read_at(self.dir(), &partial_path(commit)) {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).ctx(|| format!("reading {}", partial_path(commit))),
        }
    }

    /// Mark `commit` partial; `reason` is the marker's content (ostree
    /// writes `f` for corruption found by fsck, nothing for a pull).
    pub fn mark_commit_partial(&self, commit: &Checksum, reason: &[u8]) -> Result<()> {
        fsutil::ensure_dir_at(self.dir(), "state", 0o755).ctx(|| "creating state/")?;
        let state = fsutil::open_dir_at(self.dir(), "state").ctx(|| "opening state/")?;
        fsutil::write_atomic_at(&state, &format!("{commit}.commitpartial"), reason, false)
            .ctx(|| format!("writing {}", partial_path(commit)))
    }

    /// Remove a partial marker (absent is fine).
    pub fn clear_commit_partial(&self, commit: &Checksum) -> Result<()> {
        match fs::unlinkat(self.dir(), partial_path(commit), AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) | Err(Errno::NOTDIR) => Ok(()),
            Err(e) => Err(e).ctx(|| format!("removing {}", partial_path(commit))),
        }
    }

    /// Add to `out` every object reachable from `commit`, following up to
    /// `depth` parents (0: this commit only, negative: all ancestors). The
    /// first commit must exist; a missing parent ends the walk. Missing or
    /// corrupt metadata below a commit is an error unless that commit is
    /// partial, in which case it is skipped.
    pub fn traverse_commit(
        &self,
        commit: &Checksum,
        depth: i64,
        out: &mut Reachable,
    ) -> Result<()> {
        self.traverse_commit_with(commit, depth, false, out)
    }

    /// [`Repo::traverse_commit`]; with `commit_only`, the commits (and
    /// their detached metadata) alone, not their trees.
    pub fn traverse_commit_with(
        &self,
        commit: &Checksum,
        depth: i64,
        commit_only: bool,
        out: &mut Reachable,
    ) -> Result<()> {
        let mut next = Some(*commit);
        let mut remaining = depth;
        let mut first = true;
        while let Some(c) = next {
            let obj = match self.load_commit(&c) {
                Ok(obj) => obj,
                Err(RepoError::MissingObject { .. }) if !first => break,
                Err(e) => return Err(e),
            };
            first = false;
            if out.insert((ObjectType::Commit, c)) {
                if self.has_object(ObjectType::CommitMeta, &c)? {
                    out.insert((ObjectType::CommitMeta, c));
                }
                if !commit_only {
                    let partial = self.is_commit_partial(&c)?;
                    self.traverse_dir(&obj.root_tree, &obj.root_meta, partial, 0, out)?;
                }
            }
            if remaining == 0 {
                break;
            }
            remaining -= 1;
            next = obj.parent;
        }
        Ok(())
    }

    /// Add a directory's dirmeta, dirtree and everything below it.
    fn traverse_dir(
        &self,
        tree: &Checksum,
        meta: &Checksum,
        partial: bool,
        depth: usize,
        out: &mut Reachable,
    ) -> Result<()> {
        if depth > MAX_TREE_DEPTH {
            return Err(RepoError::BadObject {
                checksum: *tree,
                kind: ObjectType::DirTree,
                reason: format!("directories nested deeper than {MAX_TREE_DEPTH}"),
            });
        }
        out.insert((ObjectType::DirMeta, *meta));
        // A dirtree already in the set had its subtree added with it.
        if !out.insert((ObjectType::DirTree, *tree)) {
            return Ok(());
        }
        let t = match self.load_dirtree(tree) {
            Ok(t) => t,
            Err(RepoError::MissingObject { .. }) | Err(RepoError::BadObject { .. }) if partial => {
                return Ok(())
            }
            Err(e) => return Err(e),
        };
        for f in &t.files {
            out.insert((ObjectType::File, f.checksum));
        }
        for d in &t.dirs {
            self.traverse_dir(&d.tree, &d.meta, partial, depth + 1, out)?;
        }
        Ok(())
    }

    /// Every commit object in the repository.
    pub fn list_commits(&self) -> Result<Vec<Checksum>> {
        Ok(self
            .list_objects()?
            .into_iter()
            .filter(|(_, k)| *k == ObjectType::Commit)
            .map(|(c, _)| c)
            .collect())
    }
}

/// Test helper shared by the modules built on traversal: commit a
/// directory in one transaction.
#[cfg(test)]
pub(crate) fn commit_dir_for_test(
    repo: &Repo,
    dir: &std::path::Path,
    parent: Option<Checksum>,
    timestamp: u64,
) -> Checksum {
    let tx = repo.begin().unwrap();
    let mut mt = crate::MutableTree::new();
    tx.write_dir_into(dir, &mut mt, &Default::default(), &|_, _| {})
        .unwrap();
    let root = mt.write(&tx).unwrap();
    let opts = crate::CommitOptions {
        subject: "s".into(),
        timestamp,
        parent,
        ..Default::default()
    };
    let c = tx.write_commit_object(root, &opts).unwrap();
    tx.commit().unwrap();
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mode::RepoMode;

    #[test]
    fn depth_and_missing_parent() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = Repo::init(&tmp.path().join("repo"), RepoMode::Archive).unwrap();
        let src = tmp.path().join("src");
        std::fs::create_dir_all(src.join("d/e")).unwrap();
        std::fs::write(src.join("d/e/f"), b"1").unwrap();
        let c1 = commit_dir_for_test(&repo, &src, None, 1);
        std::fs::write(src.join("d/e/f"), b"2").unwrap();
        let c2 = commit_dir_for_test(&repo, &src, Some(c1), 2);
        let mut only = Reachable::new();
        repo.traverse_commit(&c2, 0, &mut only).unwrap();
        assert!(!only.contains(&(ObjectType::Commit, c1)));
        // commit, 3 dirtrees, 1 dirmeta, 1 file
        assert_eq!(only.len(), 6);
        let mut all = Reachable::new();
        repo.traverse_commit(&c2, -1, &mut all).unwrap();
        assert!(all.contains(&(ObjectType::Commit, c1)));
        assert_eq!(all.len(), 6 + 1 + 3 + 1);
        // A missing parent ends the walk; a missing root commit is an error.
        repo.delete_object(ObjectType::Commit, &c1).unwrap();
        let mut again = Reachable::new();
        repo.traverse_commit(&c2, -1, &mut again).unwrap();
        assert_eq!(again, only);
        assert!(repo.traverse_commit(&c1, 0, &mut again).is_err());
    }
}

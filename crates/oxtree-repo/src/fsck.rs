//! Fsck: verify every loose object (metadata hashes to its name and parses;
//! file objects re-hash from their stored header and content to their name,
//! with the announced size), then check that each ref's commit and
//! everything each complete commit needs is present and sound.
//!
//! Hashing runs in parallel. Nothing here panics on hostile bytes: every
//! failure becomes a `FsckProblem` naming the object.

use crate::error::{RepoError, Result};
use crate::traverse::{ObjectName, MAX_TREE_DEPTH};
use crate::Repo;
use oxtree_io::Chain;
use oxtree_object::{Checksum, Commit, DirMeta, DirTree, Metadata, ObjectType};
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Clone, Debug, Default)]
pub struct FsckOptions {
    /// Remove corrupted objects and mark the commits that needed them
    /// partial (as `ostree fsck --delete` does).
    pub delete: bool,
}

/// The phases of a check, reported as they start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsckStage {
    ValidatingRefs,
    EnumeratingCommits,
    /// Object verification begins; `commits` complete commits will be checked.
    Verifying {
        commits: usize,
    },
}

/// One bad or missing object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FsckProblem {
    pub checksum: Checksum,
    pub kind: ObjectType,
    /// True when the object is absent (referenced but not stored).
    pub missing: bool,
    pub reason: String,
    /// `--delete` removed it.
    pub deleted: bool,
    /// The complete commits whose trees need it.
    pub commits: Vec<Checksum>,
}

impl std::fmt::Display for FsckProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // ostree's words: "In commits A, B: …" when commits need it.
        if !self.commits.is_empty() {
            let list: Vec<String> = self.commits.iter().map(|c| c.to_hex()).collect();
            write!(f, "In commits {}: ", list.join(", "))?;
        }
        write!(f, "{}.{}: {}", self.checksum, self.kind, self.reason)?;
        if self.deleted {
            f.write_str(" (deleted)")?;
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Default)]
pub struct FsckReport {
    pub refs: usize,
    /// Loose objects verified.
    pub objects: usize,
    /// Complete (non-partial) commits whose trees were checked.
    pub commits: usize,
    /// Commits marked partial before this run, not checked.
    pub partial_commits: usize,
    /// Of those, how many an earlier fsck marked (corruption, an error).
    pub fsck_partial_commits: usize,
    /// Sorted by checksum and type.
    pub problems: Vec<FsckProblem>,
    /// Commits marked partial: missing objects, or (with `--delete`)
    /// corrupt ones deleted.
    pub marked_partial: Vec<Checksum>,
}

impl FsckReport {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty() && self.fsck_partial_commits == 0
    }
}

impl Repo {
    /// Check the repository. `stage` is told when each phase starts;
    /// `progress` gets (objects verified, total).
    pub fn fsck(
        &self,
        opts: &FsckOptions,
        stage: &dyn Fn(FsckStage),
        progress: &(dyn Fn(u64, u64) + Sync),
    ) -> Result<FsckReport> {
        let mut report = FsckReport::default();

        stage(FsckStage::ValidatingRefs);
        let refs = self.refs_for_reachability()?;
        report.refs = refs.len();

        stage(FsckStage::EnumeratingCommits);
        let objects = self.list_objects()?;
        let mut loose: HashSet<ObjectName> = objects.iter().map(|(c, k)| (*k, *c)).collect();
        // A parent repository's objects count as present (they are read
        // from there); they are its fsck's to verify.
        let mut parent = self.parent();
        while let Some(p) = parent {
            loose.extend(p.list_objects()?.into_iter().map(|(c, k)| (k, c)));
            parent = p.parent();
        }
        let mut commits = Vec::new();
        for (c, k) in &objects {
            if *k != ObjectType::Commit {
                continue;
            }
            match self.commit_partial_reason(c)? {
                Some(reason) => {
                    report.partial_commits += 1;
                    if reason.first() == Some(&b'f') {
                        report.fsck_partial_commits += 1;
                    }
                }
                None => commits.push(*c),
            }
        }
        commits.sort();
        report.commits = commits.len();

        stage(FsckStage::Verifying {
            commits: commits.len(),
        });
        let total = objects.len() as u64;
        let done = AtomicU64::new(0);
        progress(0, total);
        let mut problems: Vec<FsckProblem> = objects
            .par_iter()
            .filter_map(|(c, k)| {
                let r = self.verify_object(c, *k);
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_multiple_of(64) || n == total {
                    progress(n, total);
                }
                r.err().map(|reason| FsckProblem {
                    checksum: *c,
                    kind: *k,
                    missing: false,
                    // As ostree: `CSUM.KIND: REASON`, in its words
                    // (scripts match them).
                    reason,
                    deleted: false,
                    commits: Vec::new(),
                })
            })
            .collect();
        report.objects = objects.len();
        let bad: HashSet<ObjectName> = problems.iter().map(|p| (p.kind, p.checksum)).collect();

        // Reachability: refs name stored commits, complete commits have
        // every object they need, and those objects are sound.
        let mut found: HashMap<ObjectName, (bool, String)> = HashMap::new();
        for (name, c) in &refs {
            if !loose.contains(&(ObjectType::Commit, *c)) {
                found.entry((ObjectType::Commit, *c)).or_insert_with(|| {
                    (
                        true,
                        format!(
                            "Loading commit for ref {name}: No such metadata object {c}.commit"
                        ),
                    )
                });
            }
        }
        let mut walker = Walker {
            repo: self,
            loose: &loose,
            bad: &bad,
            memo: HashMap::new(),
            found: &mut found,
            context: String::new(),
            hits: Vec::new(),
        };
        let mut damaged = Vec::new();
        let mut needed_by: HashMap<ObjectName, Vec<Checksum>> = HashMap::new();
        for c in &commits {
            if bad.contains(&(ObjectType::Commit, *c)) {
                continue;
            }
            let Ok(commit) = self.load_commit(c) else {
                continue;
            };
            walker.context = format!("needed by commit {c}");
            walker.hits.clear();
            let d = walker.meta(&commit.root_meta) | walker.tree(&commit.root_tree, 0);
            if d != 0 {
                damaged.push((*c, d));
            }
            for h in walker.hits.drain(..) {
                let v = needed_by.entry(h).or_default();
                if !v.contains(c) {
                    v.push(*c);
                }
            }
        }
        problems.extend(
            found
                .into_iter()
                .map(|((k, c), (missing, reason))| FsckProblem {
                    checksum: c,
                    kind: k,
                    missing,
                    reason,
                    deleted: false,
                    commits: Vec::new(),
                }),
        );
        for p in &mut problems {
            if let Some(v) = needed_by.get(&(p.kind, p.checksum)) {
                p.commits = v.clone();
                p.commits.sort();
            }
        }
        problems.sort_by_key(|p| (p.checksum, p.kind));

        if opts.delete {
            for p in problems
                .iter_mut()
                .filter(|p| bad.contains(&(p.kind, p.checksum)))
            {
                // Something that cannot be unlinked (a directory in an
                // object's place) is reported, not fatal.
                match self.delete_object(p.kind, &p.checksum) {
                    Ok(()) => p.deleted = true,
                    Err(e) => p.reason.push_str(&format!(" (not deleted: {})", Chain(&e))),
                }
            }
        }
        // As ostree: a commit missing objects is partial (a pull completes
        // it); with --delete, so is one whose corrupt objects were deleted.
        for (c, d) in damaged {
            if opts.delete || d & MISSING != 0 {
                self.mark_commit_partial(&c, b"f")?;
                report.marked_partial.push(c);
            }
        }
        report.problems = problems;
        Ok(report)
    }

    /// Check one loose object against its name; the error says what is wrong.
    pub fn verify_object(
        &self,
        csum: &Checksum,
        kind: ObjectType,
    ) -> std::result::Result<(), String> {
        match kind {
            ObjectType::File => self.verify_file(csum),
            ObjectType::DirTree
            | ObjectType::DirMeta
            | ObjectType::Commit
            | ObjectType::CommitMeta
            | ObjectType::TombstoneCommit => {
                let bytes = self
                    .load_meta_bytes(kind, csum)
                    .map_err(|e| Chain(&e).to_string())?;
                // Detached metadata and tombstones are named by their commit.
                if matches!(
                    kind,
                    ObjectType::DirTree | ObjectType::DirMeta | ObjectType::Commit
                ) {
                    let actual = Checksum::of(&bytes);
                    if actual != *csum {
                        return Err(checksum_mismatch(kind, csum, &actual));
                    }
                }
                let r = match kind {
                    ObjectType::DirTree => DirTree::decode(&bytes).map(drop),
                    ObjectType::DirMeta => DirMeta::decode(&bytes).map(drop),
                    ObjectType::Commit => Commit::decode(&bytes).map(drop),
                    _ => Metadata::decode(&bytes).map(drop),
                };
                r.map_err(|e| e.to_string())
            }
            // Objects of repository modes oxtree does not write: not checked.
            _ => Ok(()),
        }
    }

    fn verify_file(&self, csum: &Checksum) -> std::result::Result<(), String> {
        let p = crate::objects::loose_path(csum, ObjectType::File, self.mode());
        self.verify_file_in(self.objects_dir(), &p, csum)
    }

    /// Check a file object stored (in this repository's mode) at `p` below
    /// `dir` against its name.
    pub(crate) fn verify_file_in(
        &self,
        dir: rustix::fd::BorrowedFd<'_>,
        p: &str,
        csum: &Checksum,
    ) -> std::result::Result<(), String> {
        let stored = self.open_file_in(dir, p, csum).map_err(|e| match e {
            RepoError::BadObject { reason, .. } => reason,
            e => Chain(&e).to_string(),
        })?;
        stored.header.validate().map_err(|e| e.to_string())?;
        let mut hasher = stored.header.hasher();
        let mut content = stored.content.take(stored.size.saturating_add(1));
        let mut buf = vec![0u8; 128 << 10];
        let mut total = 0u64;
        loop {
            let n = match content.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("reading content: {e}")),
            };
            hasher.update(&buf[..n]);
            total += n as u64;
        }
        if total != stored.size {
            return Err(format!(
                "content is {}{} bytes, expected {}",
                if total > stored.size {
                    "more than "
                } else {
                    ""
                },
                total.min(stored.size),
                stored.size
            ));
        }
        let actual = hasher.finish();
        if actual != *csum {
            return Err(checksum_mismatch(ObjectType::File, csum, &actual));
        }
        Ok(())
    }
}

/// ostree's words for an object whose content does not hash to its name.
pub fn checksum_mismatch(kind: ObjectType, expected: &Checksum, actual: &Checksum) -> String {
    format!("Corrupted {kind} object; checksum expected='{expected}' actual='{actual}'")
}

/// What a walk found below a commit: bits of [`CORRUPT`] and [`MISSING`].
type Damage = u8;
const CORRUPT: Damage = 1;
const MISSING: Damage = 2;

/// Walks commit trees against the set of stored objects, remembering which
/// dirtrees have damage below them.
struct Walker<'a> {
    repo: &'a Repo,
    loose: &'a HashSet<ObjectName>,
    bad: &'a HashSet<ObjectName>,
    /// Per tree: its damage and the corrupt or missing objects below it.
    memo: HashMap<Checksum, (Damage, Vec<ObjectName>)>,
    /// Absent or unusable objects: (missing?, reason).
    found: &'a mut HashMap<ObjectName, (bool, String)>,
    context: String,
    /// The corrupt or missing objects met since cleared (per commit).
    hits: Vec<ObjectName>,
}

impl Walker<'_> {
    /// What is wrong with the object: [`CORRUPT`], [`MISSING`] (recorded),
    /// or nothing (0).
    fn leaf(&mut self, kind: ObjectType, c: &Checksum) -> Damage {
        let name = (kind, *c);
        if self.bad.contains(&name) {
            self.hits.push(name);
            return CORRUPT;
        }
        if !self.loose.contains(&name) {
            let ctx = &self.context;
            self.found
                .entry(name)
                .or_insert_with(|| (true, format!("Object missing ({ctx})")));
            self.hits.push(name);
            return MISSING;
        }
        0
    }

    fn meta(&mut self, c: &Checksum) -> Damage {
        self.leaf(ObjectType::DirMeta, c)
    }

    /// What is missing or corrupt in the tree or below it.
    fn tree(&mut self, c: &Checksum, depth: usize) -> Damage {
        if let Some((d, below)) = self.memo.get(c) {
            self.hits.extend(below.iter().copied());
            return *d;
        }
        let start = self.hits.len();
        let leaf = self.leaf(ObjectType::DirTree, c);
        let damaged = if leaf != 0 {
            leaf
        } else if depth > MAX_TREE_DEPTH {
            self.found
                .entry((ObjectType::DirTree, *c))
                .or_insert_with(|| {
                    (
                        false,
                        format!("directories nested deeper than {MAX_TREE_DEPTH}"),
                    )
                });
            self.hits.push((ObjectType::DirTree, *c));
            CORRUPT
        } else {
            match self.repo.load_dirtree(c) {
                Err(_) => {
                    self.hits.push((ObjectType::DirTree, *c));
                    CORRUPT
                }
                Ok(t) => {
                    let mut d = 0;
                    for f in &t.files {
                        d |= self.leaf(ObjectType::File, &f.checksum);
                    }
                    for e in &t.dirs {
                        d |= self.meta(&e.meta);
                        d |= self.tree(&e.tree, depth + 1);
                    }
                    d
                }
            }
        };
        let below = self.hits[start..].to_vec();
        self.memo.insert(*c, (damaged, below));
        damaged
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mode::RepoMode;
    use crate::objects::loose_path;
    use crate::traverse::commit_dir_for_test;

    fn check(repo: &Repo, delete: bool) -> FsckReport {
        repo.fsck(&FsckOptions { delete }, &|_| {}, &|_, _| {})
            .unwrap()
    }

    fn setup(mode: RepoMode) -> (tempfile::TempDir, Repo, Checksum) {
        let tmp = tempfile::tempdir().unwrap();
        let repo = Repo::init(&tmp.path().join("repo"), mode).unwrap();
        let src = tmp.path().join("src");
        std::fs::create_dir_all(src.join("d")).unwrap();
        std::fs::write(src.join("a"), vec![b'a'; 5000]).unwrap();
        std::fs::write(src.join("d/b"), b"bee").unwrap();
        std::os::unix::fs::symlink("a", src.join("l")).unwrap();
        let c = commit_dir_for_test(&repo, &src, None, 7);
        repo.write_ref("main", Some(&c), false).unwrap();
        (tmp, repo, c)
    }

    fn file_of(repo: &Repo, name: &str) -> Checksum {
        let c = repo.read_ref("main").unwrap().unwrap();
        let commit = repo.load_commit(&c).unwrap();
        let t = repo.load_dirtree(&commit.root_tree).unwrap();
        t.files.iter().find(|f| f.name == name).unwrap().checksum
    }

    fn object_path(repo: &Repo, c: &Checksum, k: ObjectType) -> std::path::PathBuf {
        repo.path()
            .join("objects")
            .join(loose_path(c, k, repo.mode()))
    }

    #[test]
    fn clean_repo_passes() {
        for mode in [RepoMode::Archive, RepoMode::BareUserOnly] {
            let (_t, repo, _) = setup(mode);
            let r = check(&repo, false);
            assert!(r.is_clean(), "{:?}", r.problems);
            assert_eq!((r.commits, r.refs), (1, 1));
            assert_eq!(r.objects, repo.list_objects().unwrap().len());
        }
    }

    #[test]
    fn detects_flipped_byte_and_deletes() {
        for mode in [RepoMode::Archive, RepoMode::BareUserOnly] {
            let (_t, repo, c) = setup(mode);
            let f = file_of(&repo, "a");
            let p = object_path(&repo, &f, ObjectType::File);
            let mut bytes = std::fs::read(&p).unwrap();
            let n = bytes.len();
            bytes[n - 3] ^= 0x40;
            std::fs::write(&p, &bytes).unwrap();
            let r = check(&repo, false);
            assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
            assert_eq!(
                (r.problems[0].checksum, r.problems[0].kind),
                (f, ObjectType::File)
            );
            assert!(!r.is_clean());
            // Corrupt, not missing: partial only once --delete removes it.
            assert!(r.marked_partial.is_empty());
            let r = check(&repo, true);
            assert!(r.problems[0].deleted);
            assert_eq!(r.marked_partial, vec![c]);
            assert!(!p.exists());
            // The commit is now partial from fsck: an error, not re-checked.
            let r = check(&repo, false);
            assert!(r.problems.is_empty());
            assert_eq!((r.partial_commits, r.fsck_partial_commits), (1, 1));
            assert!(!r.is_clean());
        }
    }

    #[test]
    fn detects_truncation_garbage_and_missing() {
        let (_t, repo, c) = setup(RepoMode::Archive);
        let f = file_of(&repo, "a");
        let p = object_path(&repo, &f, ObjectType::File);
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 4]).unwrap();
        let commit = repo.load_commit(&c).unwrap();
        // Garbage where the root dirmeta should be; the root dirtree removed.
        std::fs::write(
            object_path(&repo, &commit.root_meta, ObjectType::DirMeta),
            b"\xff\x00garbage",
        )
        .unwrap();
        std::fs::remove_file(object_path(&repo, &commit.root_tree, ObjectType::DirTree)).unwrap();
        let r = check(&repo, false);
        let got: Vec<_> = r
            .problems
            .iter()
            .map(|p| (p.checksum, p.kind, p.missing))
            .collect();
        assert!(got.contains(&(f, ObjectType::File, false)), "{got:?}");
        assert!(got.contains(&(commit.root_meta, ObjectType::DirMeta, false)));
        assert!(got.contains(&(commit.root_tree, ObjectType::DirTree, true)));
        // A commit missing objects is partial, as in ostree, even without
        // --delete.
        assert_eq!(r.marked_partial, vec![c]);
        // A dirmeta's bytes stored under a dirtree name: wrong type.
        let dm = crate::mtree::default_dirmeta().encode();
        let fake = Checksum::of(&dm);
        let fp = object_path(&repo, &fake, ObjectType::DirTree);
        std::fs::create_dir_all(fp.parent().unwrap()).unwrap();
        std::fs::write(&fp, &dm).unwrap();
        assert!(repo.verify_object(&fake, ObjectType::DirTree).is_err());
    }
}

//! Pull-local: copy commits and everything they reach from another local
//! repository (any mode) into this one (any mode), re-hashing every object
//! on the way in; the objects of a repository of the same mode on the
//! same filesystem are hard-linked, as ostree does, not copied. Objects already present are skipped. All objects go into
//! one transaction, written content first (in parallel), then dirmetas,
//! dirtrees and commits, so a commit never becomes visible before its tree;
//! detached commit metadata is written after the transaction commits.
//! Refs are the caller's business, after this returns.

use crate::error::{IoContext, RepoError, Result};
use crate::fsutil;
use crate::objects::loose_path;
use crate::traverse::{ObjectName, Reachable};
use crate::Repo;
use oxtree_object::{Checksum, DirMeta, Metadata, ObjectType};
use rayon::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};

/// How [`Repo::pull_local_with`] copies.
#[derive(Clone, Debug, Default)]
pub struct PullLocalOptions {
    /// Parents to copy (negative: all).
    pub depth: i64,
    /// Overrides `core.fsync`.
    pub sync: Option<bool>,
    /// Trust `src`'s file objects (as ostree's pull-local does unless
    /// `--untrusted`): linked or copied under their names without
    /// re-hashing. Metadata objects are checked either way (they are
    /// small, and the walk decodes them).
    pub trusted: bool,
    /// Refuse file objects a bare-user-only repository could not hold.
    pub bareuseronly_files: bool,
    /// Copy the commit objects only; they stay marked partial.
    pub commit_metadata_only: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PullStats {
    /// Metadata objects written (commits, dirtrees, dirmetas; like ostree,
    /// detached metadata is not counted).
    pub metadata: u64,
    /// File objects written.
    pub content: u64,
    /// Uncompressed size of the file objects written.
    pub content_bytes: u64,
}

impl Repo {
    /// Copy `commits` (each with `depth` parents; negative: all) and what
    /// they reach from `src`. `sync` overrides `core.fsync` when given.
    /// `progress` gets (file objects done, total to copy).
    pub fn pull_local(
        &self,
        src: &Repo,
        commits: &[Checksum],
        depth: i64,
        sync: Option<bool>,
        progress: &(dyn Fn(u64, u64) + Sync),
    ) -> Result<PullStats> {
        let o = PullLocalOptions {
            depth,
            sync,
            ..Default::default()
        };
        self.pull_local_with(src, commits, &o, progress)
    }

    /// [`Repo::pull_local`] with every option (see [`PullLocalOptions`]).
    pub fn pull_local_with(
        &self,
        src: &Repo,
        commits: &[Checksum],
        o: &PullLocalOptions,
        progress: &(dyn Fn(u64, u64) + Sync),
    ) -> Result<PullStats> {
        let (depth, sync, trusted) = (o.depth, o.sync, o.trusted);
        let mut want = Reachable::new();
        for c in commits {
            if o.commit_metadata_only {
                src.commit_chain(c, depth, &mut want)?;
            } else {
                src.traverse_commit(c, depth, &mut want)?;
            }
        }
        let wanted_commits: Vec<Checksum> = want
            .iter()
            .filter(|(k, _)| *k == ObjectType::Commit)
            .map(|(_, c)| *c)
            .collect();
        let mut missing: Vec<ObjectName> = Vec::new();
        for o in want {
            if !self.has_object(o.0, &o.1)? {
                missing.push(o);
            }
        }
        // Publication order: files, dirmetas, dirtrees, commits.
        let rank = |k: ObjectType| match k {
            ObjectType::File => 0,
            ObjectType::DirMeta => 1,
            ObjectType::DirTree => 2,
            ObjectType::CommitMeta => 4,
            _ => 3,
        };
        missing.sort_by_key(|(k, c)| (rank(*k), *c));
        let (files, meta): (Vec<ObjectName>, Vec<ObjectName>) = missing
            .into_iter()
            .partition(|(k, _)| *k == ObjectType::File);

        let mut tx = self.begin()?;
        if let Some(s) = sync {
            tx.set_sync(s);
        }
        let total = files.len() as u64;
        let done = AtomicU64::new(0);
        let written = AtomicU64::new(0);
        let bytes = AtomicU64::new(0);
        progress(0, total);
        let new_commits: Vec<Checksum> = meta
            .iter()
            .filter(|(k, _)| *k == ObjectType::Commit)
            .map(|(_, c)| *c)
            .collect();
        files.par_iter().try_for_each(|(_, c)| -> Result<()> {
            if o.bareuseronly_files {
                crate::mode::check_bareuseronly_mode(c, src.open_file(c)?.header.mode)?;
            }
            let linked = if trusted {
                tx.link_object_from_trusted(src, ObjectType::File, c)?
            } else {
                tx.link_object_from(src, ObjectType::File, c)?
            };
            match linked {
                Some(new) => {
                    if new {
                        written.fetch_add(1, Ordering::Relaxed);
                    }
                }
                None => {
                    let f = src.open_file(c)?;
                    let size = f.size;
                    let w = if trusted {
                        tx.write_content_trusted(c, &f.header, size, f.content)?
                    } else {
                        tx.write_content_expect(c, &f.header, size, f.content)?
                    };
                    if w.new {
                        written.fetch_add(1, Ordering::Relaxed);
                        bytes.fetch_add(size, Ordering::Relaxed);
                    }
                }
            }
            let d = done.fetch_add(1, Ordering::Relaxed) + 1;
            if d.is_multiple_of(64) || d == total {
                progress(d, total);
            }
            Ok(())
        })?;

        let mut stats = PullStats {
            content: written.load(Ordering::Relaxed),
            content_bytes: bytes.load(Ordering::Relaxed),
            ..Default::default()
        };
        let mut detached = Vec::new();
        for (k, c) in &meta {
            // A link is checked (hash, decoding) on the source's object.
            if *k != ObjectType::CommitMeta && tx.link_object_from(src, *k, c)?.is_some() {
                stats.metadata += 1;
                continue;
            }
            let b = src.load_meta_bytes(*k, c)?;
            let bad = |e: oxtree_object::ObjectError| RepoError::BadObject {
                checksum: *c,
                kind: *k,
                reason: oxtree_io::Chain(&e).to_string(),
            };
            match k {
                // Named by its commit, not its bytes: written after the
                // transaction, like ostree's detached-metadata writes.
                ObjectType::CommitMeta => {
                    Metadata::decode(&b).map_err(bad)?;
                    detached.push((*c, b));
                    continue;
                }
                // Dirtrees and commits were decoded by the traversal.
                ObjectType::DirMeta => {
                    DirMeta::decode(&b).map_err(bad)?;
                }
                _ => {}
            }
            tx.write_meta_trusted_name(*k, c, &b)?;
            stats.metadata += 1;
        }
        let sync = tx.sync_enabled();
        if o.commit_metadata_only {
            // Marked before the commits become visible.
            for c in &new_commits {
                self.mark_commit_partial(c, b"")?;
            }
        }
        tx.commit()?;
        for (c, b) in detached {
            self.write_detached_metadata_bytes(&c, &b, sync)?;
        }
        if !o.commit_metadata_only {
            // Everything these commits reach is here now.
            for c in &wanted_commits {
                if self.is_commit_partial(c)? {
                    self.clear_commit_partial(c)?;
                }
            }
        }
        Ok(stats)
    }

    /// The commit objects (and detached metadata) of `commit` and `depth`
    /// parents (negative: all), without their trees; a missing parent ends
    /// the chain, a missing `commit` is an error.
    fn commit_chain(&self, commit: &Checksum, depth: i64, out: &mut Reachable) -> Result<()> {
        let mut next = Some(*commit);
        let mut remaining = depth;
        let mut first = true;
        while let Some(c) = next {
            let obj = match self.load_commit(&c) {
                Ok(o) => o,
                Err(_) if !first => break,
                Err(e) => return Err(e),
            };
            out.insert((ObjectType::Commit, c));
            if self.has_object(ObjectType::CommitMeta, &c)? {
                out.insert((ObjectType::CommitMeta, c));
            }
            first = false;
            if remaining == 0 {
                break;
            }
            remaining -= 1;
            next = obj.parent;
        }
        Ok(())
    }

    /// Store the detached metadata of `commit` (replacing any).
    pub fn write_detached_metadata_bytes(
        &self,
        commit: &Checksum,
        bytes: &[u8],
        sync: bool,
    ) -> Result<()> {
        let p = loose_path(commit, ObjectType::CommitMeta, self.mode());
        let (dir, name) = p.split_once('/').expect("loose paths have a directory");
        let d = fsutil::mkdir_p_at(self.objects_dir(), dir)
            .ctx(|| format!("creating objects/{dir}"))?;
        fsutil::write_atomic_at(&d, name, bytes, sync).ctx(|| format!("writing object {p}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mode::RepoMode;
    use crate::traverse::commit_dir_for_test;
    use std::fs;

    #[test]
    fn pull_between_modes_skips_present_and_verifies() {
        let tmp = tempfile::tempdir().unwrap();
        let src = Repo::init(&tmp.path().join("src"), RepoMode::Archive).unwrap();
        let s = tmp.path().join("tree");
        fs::create_dir_all(s.join("d")).unwrap();
        fs::write(s.join("a"), "hello").unwrap();
        fs::write(s.join("d/b"), vec![7u8; 100_000]).unwrap();
        std::os::unix::fs::symlink("a", s.join("l")).unwrap();
        let c1 = commit_dir_for_test(&src, &s, None, 1);
        fs::write(s.join("a"), "changed").unwrap();
        let c2 = commit_dir_for_test(&src, &s, Some(c1), 2);

        let dst = Repo::init(&tmp.path().join("dst"), RepoMode::BareUserOnly).unwrap();
        let st = dst
            .pull_local(&src, &[c2], 0, Some(false), &|_, _| {})
            .unwrap();
        // commit, 2 dirtrees, 1 dirmeta; 3 files (5+... bytes).
        assert_eq!((st.metadata, st.content), (4, 3));
        assert_eq!(st.content_bytes, 7 + 100_000);
        assert!(!dst.has_object(ObjectType::Commit, &c1).unwrap());
        let again = dst
            .pull_local(&src, &[c2], -1, Some(false), &|_, _| {})
            .unwrap();
        // Only c1, its root dirtree and "hello" are new.
        assert_eq!(
            (again.metadata, again.content, again.content_bytes),
            (2, 1, 5)
        );
        let r = dst.fsck(&Default::default(), &|_| {}, &|_, _| {}).unwrap();
        assert!(r.is_clean(), "{:?}", r.problems);
        assert_eq!(r.commits, 2);

        // A corrupt source object is refused, and nothing becomes visible.
        let src2 = Repo::init(&tmp.path().join("src2"), RepoMode::BareUserOnly).unwrap();
        let c = commit_dir_for_test(&src2, &s, None, 3);
        let commit = src2.load_commit(&c).unwrap();
        let t = src2.load_dirtree(&commit.root_tree).unwrap();
        let a = t.files.iter().find(|f| f.name == "a").unwrap().checksum;
        let p = src2
            .path()
            .join("objects")
            .join(loose_path(&a, ObjectType::File, src2.mode()));
        fs::write(&p, "chXnged").unwrap();
        let dst2 = Repo::init(&tmp.path().join("dst2"), RepoMode::Archive).unwrap();
        assert!(dst2
            .pull_local(&src2, &[c], 0, Some(false), &|_, _| {})
            .is_err());
        assert!(dst2.list_objects().unwrap().is_empty());
    }

    /// Same mode, same filesystem: file objects are hard links to the
    /// source's, still checked; a corrupt one is refused.
    #[test]
    fn same_mode_links_and_still_verifies() {
        use std::os::unix::fs::MetadataExt;
        let tmp = tempfile::tempdir().unwrap();
        let s = tmp.path().join("tree");
        fs::create_dir_all(&s).unwrap();
        fs::write(s.join("a"), "hello").unwrap();
        let src = Repo::init(&tmp.path().join("src"), RepoMode::Archive).unwrap();
        let c = commit_dir_for_test(&src, &s, None, 1);
        let t = src
            .load_dirtree(&src.load_commit(&c).unwrap().root_tree)
            .unwrap();
        let a = t.files[0].checksum;
        let rel = loose_path(&a, ObjectType::File, RepoMode::Archive);
        let dst = Repo::init(&tmp.path().join("dst"), RepoMode::Archive).unwrap();
        let st = dst
            .pull_local(&src, &[c], 0, Some(false), &|_, _| {})
            .unwrap();
        assert_eq!((st.content, st.content_bytes), (1, 0));
        let ino = |r: &Repo| {
            fs::metadata(r.path().join("objects").join(&rel))
                .unwrap()
                .ino()
        };
        assert_eq!(ino(&src), ino(&dst));
        let r = dst.fsck(&Default::default(), &|_| {}, &|_, _| {}).unwrap();
        assert!(r.is_clean(), "{:?}", r.problems);

        // The source object corrupted: refused, nothing linked.
        fs::write(src.path().join("objects").join(&rel), "garbage").unwrap();
        let dst2 = Repo::init(&tmp.path().join("dst2"), RepoMode::Archive).unwrap();
        assert!(dst2
            .pull_local(&src, &[c], 0, Some(false), &|_, _| {})
            .is_err());
        assert!(dst2.list_objects().unwrap().is_empty());
    }
}

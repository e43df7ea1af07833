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
        let mut want = Reachable::new();
        for c in commits {
            src.traverse_commit(c, depth, &mut want)?;
        }
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
        files.par_iter().try_for_each(|(_, c)| -> Result<()> {
            match tx.link_object_from(src, ObjectType::File, c)? {
                Some(new) => {
                    if new {
                        written.fetch_add(1, Ordering::Relaxed);
                    }
                }
                None => {
                    let f = src.open_file(c)?;
                    let size = f.size;
                    let w = tx.write_content_expect(c, &f.header, size, f.content)?;
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
        tx.commit()?;
        for (c, b) in detached {
            self.write_detached_metadata_bytes(&c, &b, sync)?;
        }
        Ok(stats)
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

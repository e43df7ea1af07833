//! What a commit's transaction did (`commit --table-output`, ostree's
//! transaction statistics): objects of the tree, and those it wrote.

use crate::error::{IoContext, Result};
use crate::fsutil;
use crate::transaction::Transaction;
use oxtree_object::{Checksum, DirTree, ObjectType};
use std::collections::HashSet;

/// Counts as ostree's `OstreeRepoTransactionStats` gives them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TransactionStats {
    /// Metadata objects of the tree (dirtrees, dirmetas) plus the commit.
    pub metadata_total: u64,
    /// Of those, the ones new to the repository.
    pub metadata_written: u64,
    /// File objects of the tree.
    pub content_total: u64,
    /// Of those, the ones new to the repository.
    pub content_written: u64,
    /// Bytes of the new file objects as stored.
    pub content_bytes_written: u64,
    /// Files taken as stored objects because they were hardlinks of them.
    pub devino_cache_hits: u64,
}

impl Transaction<'_> {
    /// Statistics for the tree `root` and the commit about to be made of
    /// it (counted in: call before writing the commit object).
    pub fn stats(&self, root: (Checksum, Checksum)) -> Result<TransactionStats> {
        let mut seen: HashSet<(ObjectType, Checksum)> = HashSet::new();
        seen.insert((ObjectType::DirMeta, root.1));
        let mut trees = vec![root.0];
        while let Some(t) = trees.pop() {
            if !seen.insert((ObjectType::DirTree, t)) {
                continue;
            }
            let (dir, name) = self.object_location(ObjectType::DirTree, &t);
            let bytes =
                fsutil::read_at(dir, &name).ctx(|| format!("reading object {t}.dirtree"))?;
            let tree = DirTree::decode(&bytes)?;
            for f in &tree.files {
                seen.insert((ObjectType::File, f.checksum));
            }
            for d in &tree.dirs {
                seen.insert((ObjectType::DirMeta, d.meta));
                trees.push(d.tree);
            }
        }
        let content_total = seen.iter().filter(|(k, _)| *k == ObjectType::File).count() as u64;
        let mut s = TransactionStats {
            // The commit about to be written is one more, and new.
            metadata_total: (seen.len() as u64 - content_total) + 1,
            metadata_written: 1,
            content_total,
            devino_cache_hits: self.devino_hits.load(std::sync::atomic::Ordering::Relaxed),
            ..Default::default()
        };
        for (kind, size) in self.staged_objects() {
            match kind {
                ObjectType::File => {
                    s.content_written += 1;
                    s.content_bytes_written += size;
                }
                ObjectType::DirTree | ObjectType::DirMeta => s.metadata_written += 1,
                _ => {}
            }
        }
        Ok(s)
    }
}

//! `commit --generate-sizes`: the `ostree.sizes` entries of a tree written
//! in a transaction (see `oxtree_object::sizes` for the format). As ostree,
//! only an archive repository records them: the archived size is the size
//! of the object there.

use crate::error::{IoContext, Result};
use crate::fsutil;
use crate::mode::RepoMode;
use crate::transaction::Transaction;
use oxtree_object::sizes::SizeEntry;
use oxtree_object::{Checksum, DirTree, ObjectType};
use rustix::fs::{self, AtFlags};
use std::collections::HashSet;

impl Transaction<'_> {
    /// Sizes of every dirtree, dirmeta and file object under the root
    /// `(tree, meta)`, staged here or already stored. None unless the
    /// repository is an archive.
    pub fn object_sizes(&self, root: (Checksum, Checksum)) -> Result<Option<Vec<SizeEntry>>> {
        if self.repo().mode() != RepoMode::Archive {
            return Ok(None);
        }
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        self.meta_size(ObjectType::DirMeta, &root.1, &mut seen, &mut out)?;
        let mut trees = vec![root.0];
        while let Some(t) = trees.pop() {
            let Some(bytes) = self.meta_size(ObjectType::DirTree, &t, &mut seen, &mut out)? else {
                continue;
            };
            let tree = DirTree::decode(&bytes)?;
            for f in &tree.files {
                if seen.insert((ObjectType::File, f.checksum)) {
                    out.push(self.file_size(&f.checksum)?);
                }
            }
            for d in &tree.dirs {
                self.meta_size(ObjectType::DirMeta, &d.meta, &mut seen, &mut out)?;
                trees.push(d.tree);
            }
        }
        Ok(Some(out))
    }

    /// Record a metadata object once; returns its bytes when new.
    fn meta_size(
        &self,
        kind: ObjectType,
        csum: &Checksum,
        seen: &mut HashSet<(ObjectType, Checksum)>,
        out: &mut Vec<SizeEntry>,
    ) -> Result<Option<Vec<u8>>> {
        if !seen.insert((kind, *csum)) {
            return Ok(None);
        }
        let (dir, name) = self.object_location(kind, csum);
        let bytes = fsutil::read_at(dir, &name).ctx(|| format!("reading object {csum}.{kind}"))?;
        let len = bytes.len() as u64;
        out.push(SizeEntry {
            checksum: *csum,
            kind,
            archived: len,
            unpacked: len,
        });
        Ok(Some(bytes))
    }

    fn file_size(&self, csum: &Checksum) -> Result<SizeEntry> {
        let (dir, name) = self.object_location(ObjectType::File, csum);
        let archived = fs::statat(dir, &name, AtFlags::SYMLINK_NOFOLLOW)
            .ctx(|| format!("reading object {csum}.file"))?
            .st_size as u64;
        let stored = self.repo().open_file_in(dir, &name, csum)?;
        let unpacked = if stored.header.is_symlink() {
            stored.header.symlink_target.len() as u64
        } else {
            stored.size
        };
        Ok(SizeEntry {
            checksum: *csum,
            kind: ObjectType::File,
            archived,
            unpacked,
        })
    }
}

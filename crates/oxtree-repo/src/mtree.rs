//! MutableTree: a directory tree being assembled for a commit, holding the
//! checksums of already-written file and dirmeta objects. Several sources
//! (`--tree=dir=`, `--tree=tar=`, `--tree=ref=`) overlay into one.

use crate::error::Result;
use crate::transaction::Transaction;
use crate::Repo;
use oxtree_object::{mode, Checksum, DirEntry, DirMeta, DirTree, FileEntry, Xattrs};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default)]
pub struct MutableTree {
    /// Checksum of this directory's dirmeta; None until a source sets it.
    pub meta: Option<Checksum>,
    pub files: BTreeMap<String, Checksum>,
    pub dirs: BTreeMap<String, MutableTree>,
}

/// The dirmeta ostree gives directories a source did not describe.
pub fn default_dirmeta() -> DirMeta {
    DirMeta {
        uid: 0,
        gid: 0,
        mode: mode::S_IFDIR | 0o755,
        xattrs: Xattrs::new(),
    }
}

impl MutableTree {
    pub fn new() -> Self {
        Self::default()
    }

    /// The subdirectory `name`, created if missing; replaces a file of that name.
    pub fn dir_mut(&mut self, name: &str) -> &mut MutableTree {
        self.files.remove(name);
        self.dirs.entry(name.to_string()).or_default()
    }

    /// Add or replace a file; replaces a directory of that name.
    pub fn set_file(&mut self, name: &str, csum: Checksum) {
        self.dirs.remove(name);
        self.files.insert(name.to_string(), csum);
    }

    /// Walk `a/b/c` creating directories as needed.
    pub fn dir_at_path(&mut self, components: &[&str]) -> &mut MutableTree {
        let mut cur = self;
        for c in components {
            cur = cur.dir_mut(c);
        }
        cur
    }

    /// Find a file checksum by path.
    pub fn lookup_file(&self, components: &[&str]) -> Option<Checksum> {
        let (last, dirs) = components.split_last()?;
        let mut cur = self;
        for d in dirs {
            cur = cur.dirs.get(*d)?;
        }
        cur.files.get(*last).copied()
    }

    /// Load a stored tree (for `--tree=ref=`).
    pub fn from_stored(repo: &Repo, tree: &Checksum, meta: &Checksum) -> Result<MutableTree> {
        let t = repo.load_dirtree(tree)?;
        let mut mt = MutableTree {
            meta: Some(*meta),
            ..Default::default()
        };
        for f in t.files {
            mt.files.insert(f.name, f.checksum);
        }
        for d in t.dirs {
            let sub = MutableTree::from_stored(repo, &d.tree, &d.meta)?;
            mt.dirs.insert(d.name, sub);
        }
        Ok(mt)
    }

    /// Lay `other` over this tree: its entries win, directories merge.
    pub fn overlay(&mut self, other: MutableTree) {
        if other.meta.is_some() {
            self.meta = other.meta;
        }
        for (n, c) in other.files {
            self.set_file(&n, c);
        }
        for (n, sub) in other.dirs {
            self.dir_mut(&n).overlay(sub);
        }
    }

    /// Write every dirtree (and default dirmetas) bottom-up; returns the
    /// root (dirtree, dirmeta) checksums.
    pub fn write(&self, tx: &Transaction<'_>) -> Result<(Checksum, Checksum)> {
        let mut default_meta = None;
        self.write_inner(tx, &mut default_meta)
    }

    fn write_inner(
        &self,
        tx: &Transaction<'_>,
        default_meta: &mut Option<Checksum>,
    ) -> Result<(Checksum, Checksum)> {
        let mut dt = DirTree::default();
        for (n, c) in &self.files {
            dt.files.push(FileEntry {
                name: n.clone(),
                checksum: *c,
            });
        }
        for (n, sub) in &self.dirs {
            let (tree, meta) = sub.write_inner(tx, default_meta)?;
            dt.dirs.push(DirEntry {
                name: n.clone(),
                tree,
                meta,
            });
        }
        let tree = tx.write_dirtree(&dt)?;
        let meta = match self.meta {
            Some(m) => m,
            None => match default_meta {
                Some(m) => *m,
                None => {
                    let m = tx.write_dirmeta(&default_dirmeta())?;
                    *default_meta = Some(m);
                    m
                }
            },
        };
        Ok((tree, meta))
    }
}

//! Paths inside a commit: resolving `/a/b` to a directory or file node.

use crate::error::{RepoError, Result};
use crate::Repo;
use oxtree_object::Checksum;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Node {
    Dir { tree: Checksum, meta: Checksum },
    File(Checksum),
}

impl Repo {
    /// Resolve a `/`-separated path from a root (tree, meta).
    pub fn resolve_path(&self, root: (Checksum, Checksum), path: &str) -> Result<Node> {
        let mut node = Node::Dir {
            tree: root.0,
            meta: root.1,
        };
        for comp in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
            let Node::Dir { tree, .. } = node else {
                return Err(RepoError::NotADirectory(path.to_string()));
            };
            let t = self.load_dirtree(&tree)?;
            node = if let Some(d) = t.dirs.iter().find(|d| d.name == comp) {
                Node::Dir {
                    tree: d.tree,
                    meta: d.meta,
                }
            } else if let Some(f) = t.files.iter().find(|f| f.name == comp) {
                Node::File(f.checksum)
            } else {
                return Err(RepoError::NoSuchPath(path.to_string()));
            };
        }
        Ok(node)
    }
}

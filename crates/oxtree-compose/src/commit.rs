//! Commit a composed (or layered) root, the same way for both.

use crate::error::Result;
use oxtree_object::{Checksum, Metadata};
use oxtree_repo::{CommitModifier, CommitOptions, MutableTree, Repo};
use std::path::Path;

/// Progress of a commit: (files done, files total).
pub type CommitProgress<'a> = &'a (dyn Fn(u64, u64) + Sync);

/// Commit directory `root` to `branch` with `metadata` and `timestamp`,
/// and move the branch to it. Ownership, modes and xattrs are kept as on
/// disk; `ostree.ref-binding` is set to the branch, as `ostree commit -b`
/// does. The subject is the `version` metadata, if any.
pub fn commit_root(
    repo: &mut Repo,
    root: &Path,
    branch: &str,
    metadata: Metadata,
    timestamp: u64,
    parent: Option<Checksum>,
) -> Result<Checksum> {
    let (c, _) = commit_root_with_progress(
        repo,
        root,
        branch,
        metadata,
        timestamp,
        parent,
        false,
        &|_, _| {},
    )?;
    Ok(c)
}

/// [`commit_root`] reporting progress. With `reuse_parent`, when the
/// parent has the same tree, timestamp and metadata, no commit is written,
/// the ref is left alone and `(parent, false)` is returned; otherwise
/// `(new commit, true)`.
#[allow(clippy::too_many_arguments)]
pub fn commit_root_with_progress(
    repo: &mut Repo,
    root: &Path,
    branch: &str,
    mut metadata: Metadata,
    timestamp: u64,
    parent: Option<Checksum>,
    reuse_parent: bool,
    progress: CommitProgress<'_>,
) -> Result<(Checksum, bool)> {
    oxtree_repo::refs::parse_refspec(branch)?;
    metadata.set_strv("ostree.ref-binding", &[branch.to_string()]);
    let subject = metadata.get_str("version").unwrap_or("").to_string();
    let tx = repo.begin()?;
    let mut mt = MutableTree::new();
    tx.write_dir_into(root, &mut mt, &CommitModifier::default(), progress)?;
    let tree = mt.write(&tx)?;
    if let (true, Some(p)) = (reuse_parent, parent) {
        let pc = repo.load_commit(&p)?;
        if (pc.root_tree, pc.root_meta) == tree
            && pc.timestamp == timestamp
            && pc.metadata == metadata
            && pc.subject == subject
        {
            drop(tx);
            return Ok((p, false));
        }
    }
    let opts = CommitOptions {
        subject,
        body: String::new(),
        timestamp,
        parent,
        metadata,
    };
    let csum = tx.write_commit_object(tree, &opts)?;
    let sync = tx.sync_enabled();
    tx.commit()?;
    repo.write_ref(branch, Some(&csum), sync)?;
    Ok((csum, true))
}

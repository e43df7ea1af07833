//! `oxtree reset REF COMMIT`: move a ref back to a commit of its history.

use crate::util::open_repo;
use anyhow::{bail, Result};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    #[arg(value_name = "REF")]
    refname: String,
    commit: String,
}

pub fn run(repo: Option<PathBuf>, a: Args) -> Result<()> {
    let repo = open_repo(repo)?;
    let current = repo
        .read_ref(&a.refname)?
        .ok_or_else(|| oxtree_repo::RepoError::RefNotFound(a.refname.clone()))?;
    let target = repo.resolve_rev(&a.commit)?;
    let mut walk = Some(current);
    while let Some(c) = walk {
        if c == target {
            repo.write_ref(&a.refname, Some(&target), repo.fsync_enabled()?)?;
            return Ok(());
        }
        walk = match repo.load_commit(&c) {
            Ok(commit) => commit.parent,
            Err(oxtree_repo::RepoError::MissingObject { .. }) => None,
            Err(e) => return Err(e.into()),
        };
    }
    bail!("Commit {target} is not in the history of {}", a.refname)
}

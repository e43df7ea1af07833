//! `oxtree reset REF COMMIT`: point a ref at another existing commit (as
//! ostree, also one outside its history).

use crate::util::open_repo;
use anyhow::{Context, Result};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    #[arg(value_name = "REF")]
    refname: String,
    commit: String,
}

pub fn run(repo: Option<PathBuf>, a: Args) -> Result<()> {
    let repo = open_repo(repo)?;
    repo.read_ref(&a.refname)?
        .ok_or_else(|| oxtree_repo::RepoError::RefNotFound(a.refname.clone()))?;
    let target = repo.resolve_rev(&a.commit)?;
    repo.load_commit(&target)
        .with_context(|| format!("commit {target}"))?;
    repo.write_ref(&a.refname, Some(&target), repo.fsync_enabled()?)?;
    Ok(())
}

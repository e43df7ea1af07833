//! `oxtree rev-parse REV`.

use crate::util::open_repo;
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    rev: String,
}

pub fn run(repo: Option<PathBuf>, a: Args) -> Result<()> {
    let repo = open_repo(repo)?;
    println!("{}", repo.resolve_rev(&a.rev)?);
    Ok(())
}

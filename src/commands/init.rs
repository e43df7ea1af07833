//! `oxtree init --mode=MODE`.

use crate::util::repo_path;
use anyhow::{Context, Result};
use oxtree_repo::{Repo, RepoMode};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// bare, bare-user, bare-user-only or archive (archive-z2)
    #[arg(long, default_value = "bare")]
    mode: String,
}

pub fn run(repo: Option<PathBuf>, a: Args) -> Result<()> {
    let path = repo_path(repo)?;
    let mode = RepoMode::parse(&a.mode)?;
    Repo::init(&path, mode).with_context(|| format!("initializing {}", path.display()))?;
    Ok(())
}

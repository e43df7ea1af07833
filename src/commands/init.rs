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
    /// Globally unique ID of the repository's collection (core.collection-id)
    #[arg(long, value_name = "COLLECTION-ID")]
    collection_id: Option<String>,
    /// Further words are ignored, as ostree ignores them (scripts pass
    /// some: libtest's `ostree_repo_init repo init --mode=…`)
    #[arg(hide = true)]
    _ignored: Vec<String>,
}

pub fn run(repo: Option<PathBuf>, a: Args) -> Result<()> {
    let path = repo_path(repo)?;
    let mode = RepoMode::parse(&a.mode)?;
    let mut r =
        Repo::init(&path, mode).with_context(|| format!("initializing {}", path.display()))?;
    if let Some(id) = &a.collection_id {
        oxtree_repo::refs::validate_collection_id(id)?;
        let mut c = r.config().clone();
        c.set("core", "collection-id", id);
        r.write_config(c)?;
    }
    Ok(())
}

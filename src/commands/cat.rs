//! `oxtree cat REV PATH…`: file contents to stdout.

use crate::util::open_repo;
use anyhow::{bail, Context, Result};
use oxtree_repo::Node;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    rev: String,
    #[arg(required = true)]
    paths: Vec<String>,
}

pub fn run(repo: Option<PathBuf>, a: Args) -> Result<()> {
    let repo = open_repo(repo)?;
    let c = repo.load_commit(&repo.resolve_rev(&a.rev)?)?;
    let mut out = std::io::stdout().lock();
    for p in &a.paths {
        match repo.resolve_path((c.root_tree, c.root_meta), p)? {
            Node::File(csum) => {
                let mut f = repo.open_file(&csum)?;
                std::io::copy(&mut f.content, &mut out).with_context(|| format!("reading {p}"))?;
            }
            Node::Dir { .. } => bail!("{p} is a directory"),
        }
    }
    Ok(())
}

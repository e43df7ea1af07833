//! `oxtree show REV`: a commit, or one of its metadata keys.

use crate::output::{commit_json, commit_text};
use crate::util::open_repo;
use anyhow::{anyhow, Result};
use oxtree_object::text;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Print only the value of this commit metadata key
    #[arg(long)]
    print_metadata_key: Option<String>,
    /// Print only the value of this detached metadata key
    #[arg(long)]
    print_detached_metadata_key: Option<String>,
    /// Machine-readable output
    #[arg(long)]
    json: bool,
    rev: String,
}

pub fn run(repo: Option<PathBuf>, a: Args) -> Result<()> {
    let repo = open_repo(repo)?;
    let csum = repo.resolve_rev(&a.rev)?;
    let c = repo.load_commit(&csum)?;
    if let Some(k) = &a.print_metadata_key {
        let v = c
            .metadata
            .get(k)
            .ok_or_else(|| anyhow!("No such metadata key '{k}'"))?;
        println!("{}", text::print(v));
        return Ok(());
    }
    if let Some(k) = &a.print_detached_metadata_key {
        let md = repo
            .load_commitmeta(&csum)?
            .ok_or_else(|| anyhow!("No detached metadata for commit {csum}"))?;
        let v = md
            .get(k)
            .ok_or_else(|| anyhow!("No such detached metadata key '{k}'"))?;
        println!("{}", text::print(v));
        return Ok(());
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&commit_json(&csum, &c))?);
    } else {
        print!("{}", commit_text(&csum, &c));
    }
    Ok(())
}

//! `oxtree log REV`: the commit and its ancestors.

use crate::output::{commit_json, commit_text};
use crate::util::open_repo;
use anyhow::Result;
use oxtree_repo::RepoError;
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Machine-readable output (a JSON array, newest first)
    #[arg(long)]
    json: bool,
    rev: String,
}

pub fn run(repo: Option<PathBuf>, a: Args) -> Result<()> {
    let repo = open_repo(repo)?;
    let mut next = Some(repo.resolve_rev(&a.rev)?);
    let mut out = std::io::stdout().lock();
    let mut items = Vec::new();
    while let Some(csum) = next {
        let c = match repo.load_commit(&csum) {
            Ok(c) => c,
            Err(RepoError::MissingObject { .. }) if !items.is_empty() => {
                if !a.json {
                    writeln!(out, "<< History beyond this commit not fetched >>")?;
                }
                break;
            }
            Err(e) => return Err(e.into()),
        };
        if a.json {
            items.push(commit_json(&csum, &c));
        } else {
            write!(out, "{}", commit_text(&csum, &c))?;
            items.push(serde_json::Value::Null);
        }
        next = c.parent;
    }
    if a.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&items)?)?;
    }
    Ok(())
}

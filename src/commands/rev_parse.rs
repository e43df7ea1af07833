//! `oxtree rev-parse REV`, or `rev-parse --single`: the only commit of the
//! repository.

use crate::util::open_repo;
use anyhow::{bail, Result};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Print the only commit object of the repository (fails when there
    /// are none or several)
    #[arg(short = 'S', long, conflicts_with = "rev")]
    single: bool,
    #[arg(required_unless_present = "single")]
    rev: Option<String>,
}

pub fn run(repo: Option<PathBuf>, a: Args) -> Result<()> {
    let repo = open_repo(repo)?;
    if a.single {
        let commits = repo.list_commits()?;
        match commits.as_slice() {
            [] => bail!("No commit objects found"),
            [c] => println!("{c}"),
            _ => bail!("Multiple commit objects found"),
        }
        return Ok(());
    }
    println!(
        "{}",
        repo.resolve_rev(a.rev.as_deref().expect("clap requires REV"))?
    );
    Ok(())
}

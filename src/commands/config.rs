//! `oxtree config get|set|unset SECTION.KEY [VALUE]`.

use crate::util::open_repo;
use anyhow::{anyhow, Result};
use oxtree_repo::config::split_key;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Print a value
    Get { key: String },
    /// Set a value
    Set { key: String, value: String },
    /// Remove a key
    Unset { key: String },
}

pub fn run(repo: Option<PathBuf>, a: Args) -> Result<()> {
    let mut repo = open_repo(repo)?;
    match a.action {
        Action::Get { key } => {
            let (s, k) = split_key(&key)?;
            let v = repo
                .config()
                .get(s, k)
                .ok_or_else(|| anyhow!("Key file does not have key “{k}” in group “{s}”"))?;
            println!("{v}");
        }
        Action::Set { key, value } => {
            let (s, k) = split_key(&key)?;
            let mut c = repo.config().clone();
            c.set(s, k, &value);
            repo.write_config(c)?;
        }
        Action::Unset { key } => {
            let (s, k) = split_key(&key)?;
            let mut c = repo.config().clone();
            c.remove_key(s, k);
            repo.write_config(c)?;
        }
    }
    Ok(())
}

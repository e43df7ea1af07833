//! `oxtree config get|set|unset SECTION.KEY [VALUE]`.

use crate::util::open_repo;
use anyhow::{anyhow, Result};
use oxtree_repo::config::split_key;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Group (section) of the key; then KEY has no SECTION. prefix
    #[arg(long)]
    group: Option<String>,
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
    let group = a.group.clone();
    let split = |key: &str| -> Result<(String, String)> {
        match &group {
            Some(g) => Ok((g.clone(), key.to_string())),
            None => split_key(key)
                .map(|(s, k)| (s.to_string(), k.to_string()))
                .map_err(Into::into),
        }
    };
    match a.action {
        Action::Get { key } => {
            let (s, k) = split(&key)?;
            let (s, k) = (s.as_str(), k.as_str());
            let v = repo
                .config()
                .get(s, k)
                .ok_or_else(|| anyhow!("Key file does not have key “{k}” in group “{s}”"))?;
            println!("{v}");
        }
        Action::Set { key, value } => {
            let (s, k) = split(&key)?;
            let (s, k) = (s.as_str(), k.as_str());
            let mut c = repo.config().clone();
            c.set(s, k, &value);
            repo.write_config(c)?;
        }
        Action::Unset { key } => {
            let (s, k) = split(&key)?;
            let (s, k) = (s.as_str(), k.as_str());
            let mut c = repo.config().clone();
            c.remove_key(s, k);
            repo.write_config(c)?;
        }
    }
    Ok(())
}

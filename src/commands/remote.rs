//! `oxtree remote add|delete|list|show-url|refs|summary`: manage remotes in
//! the repository config and look at what they publish.

use crate::util::open_repo;
use anyhow::{anyhow, Result};
use oxtree_transport::{remote, FetchOptions, Remote};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Add a remote repository
    Add {
        /// Disable GPG verification
        #[arg(long)]
        no_gpg_verify: bool,
        /// Set a config option (repeatable)
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Do nothing if the remote already exists
        #[arg(long)]
        if_not_exists: bool,
        name: String,
        url: String,
        /// Branches `pull NAME` fetches by default
        #[arg(value_name = "BRANCH")]
        branches: Vec<String>,
    },
    /// Delete a remote repository
    Delete {
        /// Do nothing if the remote does not exist
        #[arg(long)]
        if_exists: bool,
        name: String,
    },
    /// List remote repository names
    List {
        /// Show remote URLs in the list
        #[arg(short = 'u', long)]
        show_urls: bool,
    },
    /// Show the URL of a remote repository
    ShowUrl { name: String },
    /// List the refs a remote publishes (from its summary)
    Refs { name: String },
    /// Show the summary of a remote
    Summary {
        name: String,
        /// Print the raw variant
        #[arg(long)]
        raw: bool,
    },
}

pub fn run(repo: Option<PathBuf>, a: Args) -> Result<()> {
    let mut repo = open_repo(repo)?;
    match a.action {
        Action::Add {
            no_gpg_verify,
            set,
            if_not_exists,
            name,
            url,
            branches,
        } => {
            let mut opts = Vec::new();
            for kv in &set {
                let (k, v) = kv
                    .split_once('=')
                    .ok_or_else(|| anyhow!("invalid --set '{kv}': expected KEY=VALUE"))?;
                opts.push((k.to_string(), v.to_string()));
            }
            if no_gpg_verify {
                opts.push(("gpg-verify".into(), "false".into()));
            }
            remote::add_remote(&mut repo, &name, &url, &branches, &opts, if_not_exists)?;
        }
        Action::Delete { if_exists, name } => {
            remote::delete_remote(&mut repo, &name, if_exists)?;
        }
        Action::List { show_urls } => {
            let names = remote::list_remotes(repo.config());
            let width = names.iter().map(|n| n.len()).max().unwrap_or(0);
            for n in names {
                if show_urls {
                    let url = repo.config().get(&remote::section(&n), "url").unwrap_or("");
                    println!("{n:<width$}  {url}");
                } else {
                    println!("{n}");
                }
            }
        }
        Action::ShowUrl { name } => {
            println!("{}", Remote::open(&repo, &name)?.url);
        }
        Action::Refs { name } => {
            let r = Remote::open(&repo, &name)?;
            let s = oxtree_transport::pull::fetch_summary(&r, &FetchOptions::default())?
                .ok_or_else(|| anyhow!("remote '{name}' publishes no summary"))?;
            for x in &s.refs {
                println!("{name}:{}", x.name);
            }
        }
        Action::Summary { name, raw } => {
            let r = Remote::open(&repo, &name)?;
            let s = oxtree_transport::pull::fetch_summary(&r, &FetchOptions::default())?
                .ok_or_else(|| anyhow!("remote '{name}' publishes no summary"))?;
            if raw {
                println!("{s:?}");
            } else {
                print!("{}", super::summary::render(&s));
            }
        }
    }
    Ok(())
}

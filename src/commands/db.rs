//! `oxtree db list|diff`: the Debian packages of composed commits (from
//! their `oxtree.packages` metadata).

use crate::util::open_repo;
use anyhow::Result;
use oxtree_compose::packages::{self, Package};
use serde_json::json;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Subcommand)]
enum Cmd {
    /// List the packages of a commit
    List {
        /// Revision (ref or checksum)
        rev: String,
        /// Only packages whose name contains one of these
        patterns: Vec<String>,
        /// Output JSON
        #[arg(long)]
        json: bool,
    },
    /// Show the package changes between two commits
    Diff {
        from: String,
        to: String,
        /// Output JSON
        #[arg(long)]
        json: bool,
    },
}

pub fn run(repo: Option<PathBuf>, a: Args) -> Result<()> {
    let repo = open_repo(repo)?;
    match a.cmd {
        Cmd::List {
            rev,
            patterns,
            json,
        } => {
            let csum = repo.resolve_rev(&rev)?;
            let pk: Vec<Package> = packages::from_commit(&repo, &csum)?
                .into_iter()
                .filter(|p| patterns.is_empty() || patterns.iter().any(|x| p.name.contains(x)))
                .collect();
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &json!({ "commit": csum.to_string(), "packages": pk })
                    )?
                );
            } else {
                println!("ostree commit: {rev} ({csum})");
                let w = pk.iter().map(|p| p.name.len()).max().unwrap_or(0);
                let wv = pk.iter().map(|p| p.version.len()).max().unwrap_or(0);
                for p in &pk {
                    println!(" {:w$} {:wv$} {}", p.name, p.version, p.architecture);
                }
            }
        }
        Cmd::Diff { from, to, json } => {
            let (a, b) = (repo.resolve_rev(&from)?, repo.resolve_rev(&to)?);
            let d = packages::diff(
                &packages::from_commit(&repo, &a)?,
                &packages::from_commit(&repo, &b)?,
            );
            if json {
                let change = |v: &[(Package, Package)]| {
                    v.iter()
                        .map(|(o, n)| {
                            json!({"name": n.name, "architecture": n.architecture,
                                   "old": o.version, "new": n.version,
                                   "old-architecture": o.architecture})
                        })
                        .collect::<Vec<_>>()
                };
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({
                        "from": a.to_string(), "to": b.to_string(),
                        "added": d.added, "removed": d.removed,
                        "upgraded": change(&d.upgraded), "downgraded": change(&d.downgraded),
                    }))?
                );
                return Ok(());
            }
            println!("ostree diff commit from: {from} ({a})");
            println!("ostree diff commit to:   {to} ({b})");
            if d.is_empty() {
                println!("No package changes.");
            }
            for (title, v) in [("Upgraded", &d.upgraded), ("Downgraded", &d.downgraded)] {
                if !v.is_empty() {
                    println!("{title}:");
                    for (o, n) in v {
                        println!("  {} {} -> {}", n.name, o.version, n.version);
                    }
                }
            }
            for (title, v) in [("Removed", &d.removed), ("Added", &d.added)] {
                if !v.is_empty() {
                    println!("{title}:");
                    for p in v {
                        println!("  {} {} {}", p.name, p.version, p.architecture);
                    }
                }
            }
        }
    }
    Ok(())
}

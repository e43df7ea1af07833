//! `oxtree prune [--refs-only] [--depth=N] [--keep-younger-than=DATE]
//! [--no-prune] [--delete-commit=REV]`: delete unreachable objects.

use crate::output::format_size;
use crate::util::{open_repo, parse_timestamp, progress_bar};
use anyhow::{bail, Result};
use oxtree_repo::prune::PruneOptions;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Only display unreachable objects; don't delete
    #[arg(long)]
    no_prune: bool,
    /// Only compute reachability via refs
    #[arg(long)]
    refs_only: bool,
    /// Only traverse DEPTH parents for each commit (-1 = infinite)
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    depth: i64,
    /// Specify a commit to delete
    #[arg(long, value_name = "COMMIT")]
    delete_commit: Option<String>,
    /// Prune all commits older than the specified date
    #[arg(long, value_name = "DATE")]
    keep_younger_than: Option<String>,
    /// Additionally retain BRANCH=DEPTH commits (DEPTH -1: all)
    #[arg(long, value_name = "BRANCH=DEPTH")]
    retain_branch_depth: Vec<String>,
    /// Only prune BRANCH (repeatable); other refs keep all their history
    #[arg(long = "only-branch", value_name = "BRANCH")]
    only_branches: Vec<String>,
    /// Only traverse and delete commit objects
    #[arg(long)]
    commit_only: bool,
    /// With --delete-commit: delete the static deltas to that commit
    /// instead of the commit
    #[arg(long)]
    static_deltas_only: bool,
}

pub fn run(repo: Option<PathBuf>, a: Args) -> Result<()> {
    let mut repo = open_repo(repo)?;
    if a.delete_commit.is_some() && a.no_prune {
        bail!("Cannot specify both --delete-commit and --no-prune");
    }
    if a.delete_commit.is_some() && a.keep_younger_than.is_some() && !a.static_deltas_only {
        bail!("Cannot specify both --delete-commit and --keep-younger-than");
    }
    let opts = PruneOptions {
        refs_only: a.refs_only,
        depth: a.depth,
        keep_younger_than: a
            .keep_younger_than
            .as_deref()
            .map(parse_timestamp)
            .transpose()?,
        delete_commit: a
            .delete_commit
            .as_deref()
            .map(|r| repo.resolve_rev(r))
            .transpose()?,
        dry_run: a.no_prune,
        retain_branch_depth: a
            .retain_branch_depth
            .iter()
            .map(|bd| parse_branch_depth(bd))
            .collect::<Result<_>>()?,
        only_branches: a.only_branches.clone(),
        commit_only: a.commit_only,
        static_deltas_only: a.static_deltas_only,
    };
    let pb = progress_bar(0, "prune");
    let progress = |done: u64, total: u64| {
        pb.set_length(total);
        pb.set_position(done);
    };
    let r = repo.prune(&opts, &progress)?;
    pb.finish_and_clear();
    if !a.no_prune {
        // As ostree: cached summaries of remotes that no longer exist go.
        let remotes = oxtree_transport::remote::list_remotes(&repo)?;
        oxtree_transport::summary_cache::SummaryCache::new(&repo.path().join("tmp/cache"))
            .prune(&remotes)?;
    }
    if a.commit_only {
        println!("Total (commit only) objects: {}", r.total);
    } else {
        println!("Total objects: {}", r.total);
    }
    if r.deleted == 0 {
        println!("No unreachable objects");
    } else if a.no_prune {
        println!(
            "Would delete: {} objects, freeing {}",
            r.deleted,
            format_size(r.freed)
        );
    } else {
        println!(
            "Deleted {} objects, {} freed",
            r.deleted,
            format_size(r.freed)
        );
    }
    Ok(())
}

/// `BRANCH=DEPTH`, in ostree's words when it is not.
fn parse_branch_depth(bd: &str) -> Result<(String, i64)> {
    let (branch, depth) = bd
        .split_once('=')
        .ok_or_else(|| anyhow::anyhow!("Invalid value {bd}, must specify BRANCH=DEPTH"))?;
    let depth = depth
        .parse::<i64>()
        .map_err(|_| anyhow::anyhow!("Invalid depth {depth}"))?;
    Ok((branch.to_string(), depth))
}

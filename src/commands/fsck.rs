//! `oxtree fsck [--delete] [--quiet]`: verify every object and what each
//! ref and commit needs, in ostree's words.

use crate::util::{open_repo, progress_bar};
use anyhow::{bail, Result};
use oxtree_repo::fsck::{FsckOptions, FsckStage};
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Only print error messages
    #[arg(short, long)]
    quiet: bool,
    /// Remove corrupted objects (commits that needed them become partial)
    #[arg(long)]
    delete: bool,
    /// Accepted for compatibility: every problem is always reported
    #[arg(short, long)]
    all: bool,
    /// Check that each ref's commit is bound to that ref (and collection)
    #[arg(long)]
    verify_bindings: bool,
    /// Check that the refs each commit is bound to point back to it
    /// (implies --verify-bindings)
    #[arg(long)]
    verify_back_refs: bool,
    /// Turn on tombstone commits and add one for each missing parent
    #[arg(long)]
    add_tombstones: bool,
}

pub fn run(repo: Option<PathBuf>, a: Args) -> Result<()> {
    let mut repo = open_repo(repo)?;
    let quiet = a.quiet;
    let say = |s: &str| {
        if !quiet {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{s}");
            let _ = out.flush();
        }
    };
    let pb = progress_bar(0, "fsck objects");
    let checks_bindings = a.verify_bindings || a.verify_back_refs;
    if checks_bindings {
        say("Validating refs...");
        verify_ref_bindings(&repo, false)?;
        say("Validating refs in collections...");
        verify_ref_bindings(&repo, true)?;
    }
    if a.verify_back_refs {
        verify_back_refs(&repo)?;
    }
    let stage = |s: FsckStage| match s {
        FsckStage::ValidatingRefs if checks_bindings => {}
        FsckStage::ValidatingRefs => {
            say("Validating refs...");
            say("Validating refs in collections...");
        }
        FsckStage::EnumeratingCommits => say("Enumerating commits..."),
        FsckStage::Verifying { commits } => say(&format!(
            "Verifying content integrity of {commits} commit objects..."
        )),
    };
    let progress = |done: u64, total: u64| {
        pb.set_length(total);
        pb.set_position(done);
    };
    let report = repo.fsck(&FsckOptions { delete: a.delete }, &stage, &progress)?;
    pb.finish_and_clear();

    // As ostree: without --delete the first problem is the error (the
    // others are listed before it); with --delete each is listed as it
    // is removed.
    let first_is_error = !a.delete && !report.problems.is_empty();
    let mut err = std::io::stderr().lock();
    let listed = if first_is_error {
        &report.problems[1..]
    } else {
        &report.problems[..]
    };
    for p in listed {
        writeln!(err, "{p}")?;
    }
    for c in &report.marked_partial {
        writeln!(err, "Marking commit as partial: {c}")?;
    }
    drop(err);
    if first_is_error && !a.all {
        bail!("{}", report.problems[0]);
    }
    if first_is_error {
        eprintln!("{}", report.problems[0]);
    }
    if report.partial_commits > 0 {
        say(&format!(
            "{} partial commits not verified",
            report.partial_commits
        ));
    }
    if !report.problems.is_empty() {
        bail!("Repository corruption encountered");
    }
    if report.fsck_partial_commits > 0 {
        bail!(
            "{} partial commits from fsck-detected corruption",
            report.fsck_partial_commits
        );
    }
    if a.add_tombstones {
        let n = repo.add_tombstones()?;
        if n > 0 {
            say(&format!("Added {n} tombstone commits"));
        }
    }
    say(&format!(
        "object fsck of {} commits completed successfully - no errors found.",
        report.commits
    ));
    Ok(())
}

/// `--verify-bindings`: each ref's commit must be bound to it, as ostree
/// checks: local and remote refs by name only, collection refs (the
/// repository's own and mirrors) by name and collection.
fn verify_ref_bindings(repo: &oxtree_repo::Repo, collections: bool) -> Result<()> {
    let refs: Vec<(Option<String>, String, oxtree_object::Checksum)> = if collections {
        repo.list_collection_refs(None, &|_: &str| None)?
            .into_iter()
            .map(|(r, c)| (Some(r.collection_id), r.ref_name, c))
            .collect()
    } else {
        repo.list_refs()?
            .into_iter()
            .map(|(n, c)| {
                let name = n.split_once(':').map_or(n.clone(), |(_, r)| r.to_string());
                (None, name, c)
            })
            .collect()
    };
    for (id, name, c) in refs {
        let commit = repo.load_commit(&c).map_err(|e| match &id {
            Some(id) => anyhow::anyhow!("Loading commit for ref ({id}, {name}): {e}"),
            None => anyhow::anyhow!("Loading commit for ref {name}: {e}"),
        })?;
        oxtree_repo::bindings::verify_bindings(id.as_deref(), Some(&name), &commit)
            .map_err(|e| anyhow::anyhow!("Commit {c}: {e}"))?;
    }
    Ok(())
}

/// `--verify-back-refs`: every ref a commit is bound to exists and points
/// to it (a collection ref when the commit names its collection).
fn verify_back_refs(repo: &oxtree_repo::Repo) -> Result<()> {
    for c in repo.list_commits()? {
        let Ok(commit) = repo.load_commit(&c) else {
            continue;
        };
        let Some(refs) = oxtree_repo::bindings::ref_binding(&commit) else {
            continue;
        };
        let id = commit.metadata.get_str("ostree.collection-binding");
        for r in refs {
            let target = match id {
                Some(id) => oxtree_transport::remote::collection_refs(repo, Some(id))?
                    .into_iter()
                    .find(|(cr, _)| cr.ref_name == r)
                    .map(|(_, t)| t),
                None => repo.resolve_rev(&r).ok(),
            };
            match (target, id) {
                (None, Some(id)) => bail!(
                    "Collection–ref ({id}, {r}) in bindings for commit {c} does not exist"
                ),
                (None, None) => bail!("Ref ‘{r}’ in bindings for commit {c} does not exist"),
                (Some(t), Some(id)) if t != c => bail!(
                    "Collection–ref ({id}, {r}) in bindings for commit {c} does not resolve to that commit"
                ),
                (Some(t), None) if t != c => bail!(
                    "Ref ‘{r}’ in bindings for commit {c} does not resolve to that commit"
                ),
                _ => {}
            }
        }
    }
    Ok(())
}

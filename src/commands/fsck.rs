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
}

pub fn run(repo: Option<PathBuf>, a: Args) -> Result<()> {
    let repo = open_repo(repo)?;
    let quiet = a.quiet;
    let say = |s: &str| {
        if !quiet {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{s}");
            let _ = out.flush();
        }
    };
    let pb = progress_bar(0, "fsck objects");
    let stage = |s: FsckStage| match s {
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

    let mut err = std::io::stderr().lock();
    for p in &report.problems {
        writeln!(err, "{p}")?;
    }
    for c in &report.marked_partial {
        writeln!(err, "Marking commit as partial: {c}")?;
    }
    drop(err);
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
    say(&format!(
        "object fsck of {} commits completed successfully - no errors found.",
        report.commits
    ));
    Ok(())
}

//! `oxtree compose tree`: build a bootable commit from a treefile (Debian
//! packages via mmdebstrap). Prints the commit checksum.

use crate::util::open_repo;
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use oxtree_compose::{compose_tree, ComposeOptions, Event, Treefile};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Mutex;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Subcommand)]
enum Cmd {
    /// Compose a commit from a treefile (TOML)
    Tree(TreeArgs),
}

#[derive(clap::Args)]
struct TreeArgs {
    /// Write the commit checksum to FILE
    #[arg(long, value_name = "FILE")]
    write_commitid_to: Option<PathBuf>,
    /// Keep downloaded packages in DIR (reused by later composes)
    #[arg(long, value_name = "DIR")]
    cachedir: Option<PathBuf>,
    /// Build the root under DIR
    #[arg(long, value_name = "DIR", default_value = "/var/tmp")]
    workdir: PathBuf,
    /// Show every line of the tools' output
    #[arg(short, long)]
    verbose: bool,
    /// The treefile
    treefile: PathBuf,
}

pub fn run(repo: Option<PathBuf>, a: Args) -> Result<()> {
    match a.cmd {
        Cmd::Tree(t) => tree(repo, t),
    }
}

fn tree(repo: Option<PathBuf>, a: TreeArgs) -> Result<()> {
    let tf = Treefile::load(&a.treefile)?;
    let mut repo = open_repo(repo)?;
    let exe = std::env::current_exe().context("finding the oxtree binary")?;
    let mut opts = ComposeOptions::new(exe);
    opts.cachedir = a.cachedir.clone();
    opts.workdir = a.workdir.clone();
    if let Ok(e) = std::env::var("SOURCE_DATE_EPOCH") {
        opts.source_date_epoch = Some(
            e.trim()
                .parse()
                .with_context(|| format!("SOURCE_DATE_EPOCH={e:?} is not a number"))?,
        );
    }

    let tty = std::io::stderr().is_terminal();
    let spinner = if tty {
        let pb = ProgressBar::new_spinner();
        pb.set_style(ProgressStyle::with_template("{spinner} {prefix}: {wide_msg}").unwrap());
        pb.enable_steady_tick(std::time::Duration::from_millis(120));
        pb
    } else {
        ProgressBar::hidden()
    };
    let started = std::time::Instant::now();
    let step_started = Mutex::new(std::time::Instant::now());
    let verbose = a.verbose;
    let progress = |e: Event<'_>| match e {
        Event::Step(s) => {
            let mut t = step_started.lock().unwrap();
            spinner.set_prefix(s.to_string());
            spinner.set_message("");
            spinner.suspend(|| eprintln!("==> {s}"));
            *t = std::time::Instant::now();
        }
        Event::Output(l) => {
            // mmdebstrap's "I:" lines summarize its phases; the rest is
            // apt and dpkg chatter, shown with --verbose.
            if verbose || l.starts_with("I: ") || l.starts_with("E: ") || l.starts_with("W: ") {
                spinner.suspend(|| eprintln!("    {l}"));
            } else {
                spinner.set_message(l.to_string());
            }
        }
        Event::Commit { done, total } => {
            if done.is_multiple_of(256) || done == total {
                spinner.set_message(format!("{done}/{total} files"));
            }
        }
    };
    let res = compose_tree(&mut repo, &tf, &opts, &progress);
    spinner.finish_and_clear();
    let c = res?;
    if let Some(f) = &a.write_commitid_to {
        std::fs::write(f, format!("{}\n", c.checksum))
            .with_context(|| format!("writing {}", f.display()))?;
    }
    eprintln!(
        "{} {} ({} packages{}) in {:.0?}{}",
        if c.changed { "Wrote" } else { "Unchanged:" },
        c.ref_,
        c.packages.len(),
        c.kernel
            .as_deref()
            .map(|k| format!(", kernel {k}"))
            .unwrap_or_default(),
        started.elapsed(),
        if c.changed { "" } else { " (ref kept)" },
    );
    println!("{}", c.checksum);
    Ok(())
}

//! `oxtree checkout [-U] [--force-copy] [--union|--union-add] [--subpath] REV DEST`.

use crate::util::{open_repo, progress_bar};
use anyhow::{bail, Context, Result};
use oxtree_repo::{CheckoutOptions, Overwrite};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Do not change file ownership or set xattrs; drop setuid/setgid
    #[arg(short = 'U', long = "user-mode")]
    user_mode: bool,
    /// Copy files instead of hardlinking them
    #[arg(short = 'C', long)]
    force_copy: bool,
    /// Fail unless files can be hardlinked to the repository's objects
    #[arg(short = 'H', long)]
    require_hardlinks: bool,
    /// Replace existing files in DEST
    #[arg(long)]
    union: bool,
    /// Keep existing files in DEST, add new ones
    #[arg(long)]
    union_add: bool,
    /// Check out only this path
    #[arg(long)]
    subpath: Option<String>,
    /// Turn `.ostree-wh.NAME` files into overlayfs whiteouts (character
    /// devices 0:0) named NAME
    #[arg(long)]
    process_passthrough_whiteouts: bool,
    /// Keep existing files identical to the commit's; any other existing
    /// file is an error (needs --require-hardlinks)
    #[arg(long)]
    union_identical: bool,
    /// Never hardlink empty files (oxtree never does: they are the files
    /// written in place later)
    #[arg(short = 'z', long)]
    force_copy_zerosized: bool,
    /// Directories lose setuid/setgid/sticky and world-writable bits
    #[arg(short = 'M', long)]
    bareuseronly_dirs: bool,
    /// A --subpath missing from the commit is not an error
    #[arg(long)]
    allow_noent: bool,
    /// Do not fill an archive repository's uncompressed-objects-cache
    #[arg(long)]
    disable_cache: bool,
    /// Leave out the paths listed in FILE (one per line, from the root of
    /// the commit), with everything below them
    #[arg(long, value_name = "FILE")]
    skip_list: Option<PathBuf>,
    /// Accepted for compatibility (checkouts are not synced)
    #[arg(long, value_name = "BOOL", hide = true)]
    fsync: Option<String>,
    rev: String,
    /// Destination (default: the revision's name)
    dest: Option<PathBuf>,
}

pub fn run(repo: Option<PathBuf>, a: Args) -> Result<()> {
    let repo = open_repo(repo)?;
    if [a.union, a.union_add, a.union_identical]
        .iter()
        .filter(|b| **b)
        .count()
        > 1
    {
        bail!("--union, --union-add and --union-identical are mutually exclusive");
    }
    if a.union_identical && !a.require_hardlinks {
        // ostree's words.
        bail!("--union-identical requires --require-hardlinks");
    }
    let _ = a.force_copy_zerosized;
    if a.require_hardlinks {
        use oxtree_repo::RepoMode;
        if a.force_copy {
            bail!("Cannot specify both --require-hardlinks and --force-copy");
        }
        // Hard links cannot cross filesystems: said first, as ostree does.
        let dest = a.dest.clone().unwrap_or_else(|| PathBuf::from(&a.rev));
        let parent = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if let (Ok(r), Ok(d)) = (
            rustix::fs::fstat(repo.objects_dir()),
            rustix::fs::stat(&parent),
        ) {
            if r.st_dev != d.st_dev {
                bail!(
                    "Unable to do hardlink checkout across devices (src={} destination={})",
                    r.st_dev,
                    d.st_dev
                );
            }
        }
        match repo.mode() {
            RepoMode::Bare if a.user_mode => {
                bail!("Bare repository mode cannot hardlink in user checkout mode")
            }
            RepoMode::BareUser if !a.user_mode => {
                bail!("User repository mode requires user checkout mode to hardlink")
            }
            RepoMode::Archive => {
                bail!("Cannot hardlink from an archive repository (its objects are compressed)")
            }
            _ => {}
        }
    }
    let csum = repo.resolve_rev(&a.rev)?;
    let dest = a.dest.clone().unwrap_or_else(|| PathBuf::from(&a.rev));
    let opts = CheckoutOptions {
        user_mode: a.user_mode,
        force_copy: a.force_copy,
        overwrite: if a.union {
            Overwrite::UnionFiles
        } else if a.union_identical {
            Overwrite::UnionIdentical
        } else if a.union_add {
            Overwrite::AddFiles
        } else {
            Overwrite::None
        },
        subpath: a.subpath.clone(),
        passthrough_whiteouts: a.process_passthrough_whiteouts,
        bareuseronly_dirs: a.bareuseronly_dirs,
        no_cache: a.disable_cache,
        skip: match &a.skip_list {
            Some(f) => {
                let text = std::fs::read_to_string(f)
                    .with_context(|| format!("reading {}", f.display()))?;
                Some(std::sync::Arc::new(
                    text.lines()
                        .filter(|l| !l.is_empty())
                        .map(|l| format!("/{}", l.trim_matches('/')))
                        .collect(),
                ))
            }
            None => None,
        },
    };
    let pb = progress_bar(0, "checkout");
    pb.set_style(indicatif::ProgressStyle::with_template("{msg} {pos} files ({per_sec})").unwrap());
    let report = |n: u64| pb.set_position(n);
    match repo.checkout(&csum, &dest, &opts, &report) {
        Err(oxtree_repo::RepoError::NoSuchPath(_)) if a.allow_noent => {}
        r => {
            r.with_context(|| format!("checking out {} to {}", a.rev, dest.display()))?;
        }
    }
    pb.finish_and_clear();
    Ok(())
}

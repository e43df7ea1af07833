//! `oxtree diff [--stats] [--fs-diff] [--no-xattrs] [--owner-uid=UID]
//! [--owner-gid=GID] REV_OR_DIR [REV_OR_DIR]`: changed paths between two
//! commits or directories (`REV^` and `REV` when one is given), as ostree
//! prints them.

use crate::output::format_size;
use crate::util::open_repo;
use anyhow::{bail, Result};
use oxtree_repo::diff::{DiffOptions, DiffSide};
use oxtree_repo::Repo;
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Print various statistics
    #[arg(long)]
    stats: bool,
    /// Print filesystem diff (the default unless --stats)
    #[arg(long)]
    fs_diff: bool,
    /// Skip output of extended attributes (of files on disk)
    #[arg(long)]
    no_xattrs: bool,
    /// Use file ownership user id for local files
    #[arg(long, value_name = "UID")]
    owner_uid: Option<u32>,
    /// Use file ownership group id for local files
    #[arg(long, value_name = "GID")]
    owner_gid: Option<u32>,
    #[arg(value_name = "REV_OR_DIR")]
    a: String,
    #[arg(value_name = "REV_OR_DIR")]
    b: Option<String>,
}

/// Like ostree: an argument starting with `/` or `./` is a directory.
fn side(repo: &Repo, arg: &str) -> Result<DiffSide> {
    if arg.starts_with('/') || arg.starts_with("./") {
        Ok(DiffSide::Dir(PathBuf::from(arg)))
    } else {
        Ok(DiffSide::Commit(repo.resolve_rev(arg)?))
    }
}

/// A path as ostree prints it: `/a/b` inside a commit, `a/b` on disk.
fn shown(side: &DiffSide, rel: &str) -> String {
    match side {
        DiffSide::Commit(_) => format!("/{rel}"),
        DiffSide::Dir(_) => rel.to_string(),
    }
}

pub fn run(repo: Option<PathBuf>, a: Args) -> Result<()> {
    let repo = open_repo(repo)?;
    let (src, target) = match &a.b {
        Some(b) => (a.a.clone(), b.clone()),
        None => (format!("{}^", a.a), a.a.clone()),
    };
    let sa = side(&repo, &src)?;
    let sb = side(&repo, &target)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if a.fs_diff || !a.stats {
        let opts = DiffOptions {
            no_xattrs: a.no_xattrs,
            owner_uid: a.owner_uid,
            owner_gid: a.owner_gid,
        };
        let d = repo.diff(&sa, &sb, &opts)?;
        for p in &d.modified {
            writeln!(out, "M    {}", shown(&sa, p))?;
        }
        for p in &d.removed {
            writeln!(out, "D    {}", shown(&sa, p))?;
        }
        for p in &d.added {
            writeln!(out, "A    {}", shown(&sb, p))?;
        }
    }
    if a.stats {
        let (DiffSide::Commit(ca), DiffSide::Commit(cb)) = (&sa, &sb) else {
            bail!("--stats needs two commits");
        };
        let s = repo.diff_stats(ca, cb)?;
        writeln!(out, "[A] Object Count: {}", s.a_objects)?;
        writeln!(out, "[B] Object Count: {}", s.b_objects)?;
        writeln!(out, "Common Object Count: {}", s.common_objects)?;
        writeln!(out, "Common Object Size: {}", format_size(s.common_size))?;
    }
    out.flush()?;
    Ok(())
}

//! `oxtree export [--output=FILE|-] [--subpath=P] [--prefix=P] [--no-xattrs]
//! COMMIT`: stream a commit as a tar archive.

use crate::util::open_repo;
use anyhow::{Context, Result};
use oxtree_repo::export::ExportOptions;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Output to PATH ('-' or none: standard output)
    #[arg(short, long, value_name = "PATH")]
    output: Option<PathBuf>,
    /// Export only this sub-directory
    #[arg(long, value_name = "PATH")]
    subpath: Option<String>,
    /// Add PATH as prefix to archive pathnames
    #[arg(long, value_name = "PATH")]
    prefix: Option<String>,
    /// Skip output of extended attributes
    #[arg(long)]
    no_xattrs: bool,
    #[arg(value_name = "COMMIT")]
    rev: String,
}

pub fn run(repo: Option<PathBuf>, a: Args) -> Result<()> {
    let repo = open_repo(repo)?;
    let commit = repo.resolve_rev(&a.rev)?;
    let opts = ExportOptions {
        subpath: a.subpath.clone(),
        prefix: a.prefix.clone(),
        xattrs: !a.no_xattrs,
        pad_to_record: false,
    };
    let none = |_: u64, _: u64| {};
    match a.output.as_deref() {
        Some(p) if p.as_os_str() != "-" => {
            let f =
                std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?;
            let w = std::io::BufWriter::with_capacity(256 << 10, f);
            let w = repo.export_tar(&commit, w, &opts, &none)?;
            w.into_inner()
                .map_err(|e| e.into_error())
                .and_then(|f| f.sync_all())
                .with_context(|| format!("writing {}", p.display()))?;
        }
        _ => {
            let stdout = std::io::stdout();
            if stdout.is_terminal() {
                anyhow::bail!("refusing to write a tar archive to a terminal (use --output)");
            }
            let w = std::io::BufWriter::with_capacity(256 << 10, stdout.lock());
            // libarchive pads a stream to a whole record; ostree too, then.
            let opts = ExportOptions {
                pad_to_record: true,
                ..opts
            };
            repo.export_tar(&commit, w, &opts, &none)?.flush()?;
        }
    }
    Ok(())
}

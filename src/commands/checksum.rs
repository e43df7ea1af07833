//! `oxtree checksum PATH…`: the object checksum ostree would give a file
//! (its content object) or a directory (its dirmeta).

use anyhow::{Context, Result};
use oxtree_object::{DirMeta, FileHeader, Xattrs};
use oxtree_repo::fsutil;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Ignore extended attributes
    #[arg(long)]
    ignore_xattrs: bool,
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

pub fn run(_repo: Option<PathBuf>, a: Args) -> Result<()> {
    for p in &a.paths {
        let md = std::fs::symlink_metadata(p).with_context(|| format!("stat {}", p.display()))?;
        let xattrs = if a.ignore_xattrs {
            Xattrs::new()
        } else {
            fsutil::link_xattrs(p).with_context(|| format!("reading xattrs of {}", p.display()))?
        };
        let csum = if md.is_dir() {
            DirMeta {
                uid: md.uid(),
                gid: md.gid(),
                mode: md.mode(),
                xattrs,
            }
            .checksum()
        } else if md.file_type().is_symlink() {
            let t = std::fs::read_link(p)?;
            let t = t
                .to_str()
                .context("symlink target is not UTF-8")?
                .to_string();
            FileHeader::symlink(md.uid(), md.gid(), t, xattrs).checksum(b"")
        } else if md.is_file() {
            let h = FileHeader::regular(md.uid(), md.gid(), md.mode(), xattrs);
            let mut hasher = h.hasher();
            let mut f =
                std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?;
            std::io::copy(&mut f, &mut hasher)?;
            hasher.finish()
        } else {
            anyhow::bail!("{}: not a regular file, symlink or directory", p.display());
        };
        println!("{csum}");
    }
    Ok(())
}

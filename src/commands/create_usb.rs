//! `oxtree create-usb MOUNT-PATH COLLECTION-ID REF…`: copy collection refs
//! into a repository on a removable volume that ostree's (and oxtree's)
//! mount finder reads.

use crate::util::open_repo;
use anyhow::{bail, Result};
use oxtree_object::Checksum;
use oxtree_transport::usb::{create_usb, UsbOptions};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Do not invoke fsync()
    #[arg(long)]
    disable_fsync: bool,
    /// The repository's directory below MOUNT-PATH (default .ostree/repo)
    #[arg(long, value_name = "DEST")]
    destination_repo: Option<String>,
    /// Copy this commit (only with a single COLLECTION-ID REF pair)
    #[arg(long, value_name = "COMMIT")]
    commit: Option<String>,
    /// The volume's mount point
    #[arg(value_name = "MOUNT-PATH")]
    mount: PathBuf,
    /// COLLECTION-ID REF pairs
    #[arg(value_name = "COLLECTION-ID REF", required = true)]
    pairs: Vec<String>,
}

pub fn run(repo: Option<PathBuf>, a: Args) -> Result<()> {
    let refs = super::find_remotes::collection_refs(&a.pairs)?;
    if a.commit.is_some() && refs.len() > 1 {
        bail!(
            "The --commit option can only be used when a single COLLECTION-ID REF pair is specified"
        );
    }
    let src = open_repo(repo)?;
    let commit = match &a.commit {
        Some(c) => Some(src.resolve_rev(c)?),
        None => None::<Checksum>,
    };
    let o = UsbOptions {
        dest_repo: a.destination_repo.clone(),
        commit,
        sync: a.disable_fsync.then_some(false),
        trusted: crate::util::owned_by_us(&src),
    };
    let done = create_usb(&src, &a.mount, &refs, &o)?;
    println!(
        "Copied {}/{} refs successfully from ‘{}’ to ‘{}’ repository in ‘{}’.",
        done.refs.len(),
        refs.len(),
        src.path().display(),
        done.dest_repo,
        a.mount.display()
    );
    Ok(())
}

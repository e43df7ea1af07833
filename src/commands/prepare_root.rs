//! `prepare-root`: the initramfs step that makes the deployment named by
//! `ostree=` on the kernel command line the root. Shared by
//! `oxtree [admin] prepare-root` and the small `oxtree-prepare-root` binary
//! that the initramfs carries (see src/bin/oxtree-prepare-root.rs).

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// `prepare-root` with the physical root it works on.
#[derive(clap::Parser)]
#[command(name = "oxtree-prepare-root")]
pub struct Cmd {
    /// The physical root filesystem, mounted by the initramfs
    #[arg(long, default_value = "/sysroot")]
    pub sysroot: PathBuf,
    #[command(flatten)]
    pub args: Args,
}

#[derive(clap::Args)]
pub struct Args {
    /// Kernel command line to use instead of /proc/cmdline
    #[arg(long, value_name = "STRING", conflicts_with = "cmdline_file")]
    cmdline: Option<String>,
    /// Read the kernel command line from FILE
    #[arg(long, value_name = "FILE")]
    cmdline_file: Option<PathBuf>,
    /// Move the prepared deployment onto the sysroot mount point
    #[arg(long)]
    switch_root: bool,
}

/// Run `prepare-root` against the physical root mounted at `root`.
pub fn run(a: Args, root: &Path) -> Result<()> {
    let cmdline = match (&a.cmdline, &a.cmdline_file) {
        (Some(c), _) => c.clone(),
        (None, Some(f)) => {
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?
        }
        (None, None) => {
            std::fs::read_to_string("/proc/cmdline").context("reading /proc/cmdline")?
        }
    };
    let r = oxtree_sysroot::prepare_root::prepare_root(root, &cmdline, a.switch_root)?;
    println!(
        "Resolved {} to deployment {}{}",
        oxtree_sysroot::prepare_root::ostree_arg(&cmdline)?,
        r.deployment.display(),
        if r.hotfix {
            " (hotfix overlay on /usr)"
        } else {
            ""
        }
    );
    Ok(())
}

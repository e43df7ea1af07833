//! `oxtree NAME ARGS…` for a NAME that is no built-in command: runs
//! `ostree-NAME` from PATH with ARGS, as ostree does for its CLI extensions.

use anyhow::{bail, Result};
use std::ffi::OsString;
use std::os::unix::process::CommandExt;

pub fn run(argv: Vec<OsString>) -> Result<()> {
    let Some((name, args)) = argv.split_first() else {
        bail!("No command specified\n\n{}", crate::usage_of(&[]));
    };
    let mut prog = OsString::from("ostree-");
    prog.push(name);
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(&prog).is_file()))
        .unwrap_or(false);
    if !found {
        bail!(
            "Unknown command '{}'\n\n{}",
            name.to_string_lossy(),
            crate::usage_of(&[])
        );
    }
    let err = std::process::Command::new(&prog).args(args).exec();
    bail!("running {}: {err}", prog.to_string_lossy())
}

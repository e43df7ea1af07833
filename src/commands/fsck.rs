//! `oxtree fsck` (being implemented).

use anyhow::{bail, Result};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    rest: Vec<String>,
}

pub fn run(_repo: Option<PathBuf>, _a: Args) -> Result<()> {
    bail!("'fsck' is not implemented yet")
}

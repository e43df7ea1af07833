//! `oxtree refs [PREFIX]`, `--create=NEW REV`, `--delete REF…`.

use crate::util::open_repo;
use anyhow::{anyhow, bail, Result};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// List refs (the default)
    #[arg(long)]
    list: bool,
    /// Create ref NEW pointing at the given revision
    #[arg(long, value_name = "NEW")]
    create: Option<String>,
    /// Delete the given refs
    #[arg(long)]
    delete: bool,
    /// Machine-readable output
    #[arg(long)]
    json: bool,
    /// Prefix to filter by; the revision for --create; refs for --delete
    args: Vec<String>,
}

pub fn run(repo: Option<PathBuf>, a: Args) -> Result<()> {
    let repo = open_repo(repo)?;
    let sync = repo.fsync_enabled()?;
    if let Some(new) = &a.create {
        let [rev] = a.args.as_slice() else {
            bail!("--create requires exactly one existing revision argument");
        };
        if repo.read_ref(new)?.is_some() {
            bail!("--create specified but ref {new} already exists");
        }
        let c = repo.resolve_rev(rev)?;
        repo.load_commit(&c).map_err(|e| anyhow!("{rev}: {e}"))?;
        repo.write_ref(new, Some(&c), sync)?;
        return Ok(());
    }
    if a.delete {
        if a.args.is_empty() {
            bail!("--delete requires at least one ref");
        }
        for r in &a.args {
            match repo.write_ref(r, None, sync) {
                Ok(()) | Err(oxtree_repo::RepoError::RefNotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        return Ok(());
    }
    let prefix = a.args.first().map(|s| s.as_str()).unwrap_or("");
    let refs: Vec<_> = repo
        .list_refs()?
        .into_iter()
        .filter(|(n, _)| n.starts_with(prefix))
        .collect();
    if a.json {
        let v: Vec<_> = refs
            .iter()
            .map(|(n, c)| serde_json::json!({"name": n, "checksum": c.to_hex()}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        for (n, _) in refs {
            println!("{n}");
        }
    }
    Ok(())
}

//! `oxtree refs [PREFIX]`, `--create=NEW REV`, `--delete REF…`.

use crate::util::open_repo;
use anyhow::{anyhow, bail, Result};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// List refs (the default); with a PREFIX, name them in full
    #[arg(long)]
    list: bool,
    /// Create ref NEW pointing at the given revision
    #[arg(long, value_name = "NEW")]
    create: Option<String>,
    /// Delete the given refs
    #[arg(long)]
    delete: bool,
    /// With --create, replace an existing ref
    #[arg(long)]
    force: bool,
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
        // Only a local ref of that name is in the way (not a remote's).
        let exists = repo.list_refs()?.iter().any(|(n, _)| n == new);
        if !a.force && exists {
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
        // Like ostree, each argument is a ref or a prefix of refs.
        let all = repo.list_refs()?;
        for r in &a.args {
            for (name, _) in under_prefix(&all, r) {
                let full = if name == *r {
                    name
                } else {
                    format!("{r}/{name}")
                };
                match repo.write_ref(&full, None, sync) {
                    Ok(()) | Err(oxtree_repo::RepoError::RefNotFound(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        return Ok(());
    }
    let all = repo.list_refs()?;
    let refs = match a.args.first() {
        // `REMOTE:` (or flatpak's `REMOTE:.`): every ref of that remote.
        Some(p) if p.ends_with(':') || p.ends_with(":.") => {
            let remote = p.trim_end_matches('.');
            all.into_iter()
                .filter(|(n, _)| n.starts_with(remote))
                .collect()
        }
        // --list names refs in full, as ostree does.
        Some(prefix) if a.list => {
            let dir = format!("{}/", prefix.trim_end_matches('/'));
            all.into_iter()
                .filter(|(n, _)| n == prefix || n.starts_with(&dir))
                .collect()
        }
        Some(prefix) => under_prefix(&all, prefix),
        None => all,
    };
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

/// Refs selected by a prefix argument, as ostree lists them: the ref itself
/// if it exists, else every ref below `prefix/`, named relative to it.
fn under_prefix(
    all: &[(String, oxtree_object::Checksum)],
    prefix: &str,
) -> Vec<(String, oxtree_object::Checksum)> {
    if let Some(exact) = all.iter().find(|(n, _)| n == prefix) {
        return vec![exact.clone()];
    }
    let dir = format!("{}/", prefix.trim_end_matches('/'));
    all.iter()
        .filter_map(|(n, c)| n.strip_prefix(&dir).map(|rest| (rest.to_string(), *c)))
        .collect()
}

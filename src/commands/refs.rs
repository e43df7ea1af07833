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
    /// With --create, replace an existing ref (a collection ref is always
    /// replaced)
    #[arg(long)]
    force: bool,
    /// Name refs with their collection IDs, `(ID, REF)`; a PREFIX is then
    /// a collection ID, and --create takes `ID:REF`
    #[arg(short = 'c', long)]
    collections: bool,
    /// List aliases (`ALIAS -> REF`); with --create, create an alias
    #[arg(short = 'A', long)]
    alias: bool,
    /// Show each ref's commit
    #[arg(short = 'r', long)]
    revision: bool,
    /// Machine-readable output
    #[arg(long)]
    json: bool,
    /// Prefix to filter by; the revision for --create; refs for --delete
    args: Vec<String>,
}

pub fn run(repo: Option<PathBuf>, a: Args) -> Result<()> {
    let repo = open_repo(repo)?;
    let sync = repo.fsync_enabled()?;
    if a.collections {
        return with_collections(&repo, &a, sync);
    }
    if a.alias {
        return aliases(&repo, &a);
    }
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
        repo.load_commit(&c)
            .map_err(|e| anyhow!("{rev}: {}", oxtree_io::Chain(&e)))?;
        repo.write_ref(new, Some(&c), sync)?;
        return Ok(());
    }
    if a.delete {
        if a.args.is_empty() {
            bail!("--delete requires at least one ref");
        }
        // Like ostree, each argument is a ref or a prefix of refs.
        let all = repo.list_refs()?;
        let aliases = repo.list_ref_aliases()?;
        for r in &a.args {
            if let Some((alias, _)) = aliases.iter().find(|(_, t)| t == r) {
                bail!("Ref '{r}' has an active alias: '{alias}'");
            }
        }
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
        for (n, c) in refs {
            if a.revision {
                println!("{n}\t{c}");
            } else {
                println!("{n}");
            }
        }
    }
    Ok(())
}

/// Refs selected by a prefix argument, as ostree lists them: the ref itself
/// if it exists, else every ref below `prefix/`, named relative to it (and,
/// for a `REMOTE:PATH` prefix, still with `REMOTE:` before that name).
fn under_prefix(
    all: &[(String, oxtree_object::Checksum)],
    prefix: &str,
) -> Vec<(String, oxtree_object::Checksum)> {
    if let Some(exact) = all.iter().find(|(n, _)| n == prefix) {
        return vec![exact.clone()];
    }
    let dir = format!("{}/", prefix.trim_end_matches('/'));
    let remote = prefix.split_once(':').map(|(r, _)| r);
    all.iter()
        .filter_map(|(n, c)| {
            let rest = n.strip_prefix(&dir)?;
            Some(match remote {
                Some(r) => (format!("{r}:{rest}"), *c),
                None => (rest.to_string(), *c),
            })
        })
        .collect()
}

/// `refs --collections`: list, create (`--create=ID:REF REV`) or delete
/// (every ref of the collection given) collection refs, as ostree does.
fn with_collections(repo: &oxtree_repo::Repo, a: &Args, sync: bool) -> Result<()> {
    use oxtree_repo::collections::CollectionRef;
    if let Some(new) = &a.create {
        let [rev] = a.args.as_slice() else {
            bail!("--create requires exactly one existing revision argument");
        };
        let Some((id, name)) = new.split_once(':') else {
            bail!("Invalid collection ref {new}: expected COLLECTION-ID:REF");
        };
        oxtree_repo::refs::validate_collection_id(id)?;
        oxtree_repo::refs::validate_ref_name(name)?;
        let r = CollectionRef {
            collection_id: id.to_string(),
            ref_name: name.to_string(),
        };
        // An existing collection ref is moved, with or without --force,
        // as with ostree (its check looks for a remote ref named `ID:REF`,
        // which is never what --create writes); scripts rely on that to
        // point a mirrored ref at a newer commit.
        let c = repo.resolve_rev(rev)?;
        repo.load_commit(&c).map_err(|e| anyhow!("{rev}: {e}"))?;
        repo.write_collection_ref(&r, Some(&c), sync)?;
        return Ok(());
    }
    let refs = oxtree_transport::remote::collection_refs(repo, a.args.first().map(String::as_str))?;
    if a.delete {
        let main = repo.collection_id();
        for (r, _) in refs {
            // A remote's refs stay: only local and mirrored refs are ours.
            let ours = Some(&r.collection_id) == main.as_ref()
                || repo.list_mirror_refs()?.iter().any(|(m, _)| *m == r);
            if !ours {
                continue;
            }
            match repo.write_collection_ref(&r, None, sync) {
                Ok(()) | Err(oxtree_repo::RepoError::RefNotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        return Ok(());
    }
    for (r, c) in refs {
        if a.revision {
            println!("({}, {})\t{c}", r.collection_id, r.ref_name);
        } else {
            println!("({}, {})", r.collection_id, r.ref_name);
        }
    }
    Ok(())
}

/// `refs -A`: list aliases, or `--create=ALIAS REF` one (replacing an
/// alias of that name), as ostree does.
fn aliases(repo: &oxtree_repo::Repo, a: &Args) -> Result<()> {
    let all = repo.list_ref_aliases()?;
    if let Some(new) = &a.create {
        let [target] = a.args.as_slice() else {
            bail!("--create requires exactly one existing ref argument");
        };
        if let Some((remote, _)) = new.split_once(':') {
            bail!("Cannot create alias to remote ref: {remote}");
        }
        if target.contains(':') || repo.read_ref(target).ok().flatten().is_none() {
            bail!("Cannot create alias to non-existent ref: {target}");
        }
        let is_alias = all.iter().any(|(n, _)| n == new);
        if !is_alias && !a.force && repo.read_ref(new).ok().flatten().is_some() {
            bail!("--create specified but ref {new} already exists");
        }
        repo.write_ref_alias(new, target)?;
        return Ok(());
    }
    for (alias, target) in all {
        if a.args
            .first()
            .is_none_or(|p| alias == *p || alias.starts_with(&format!("{p}/")))
        {
            println!("{alias} -> {target}");
        }
    }
    Ok(())
}

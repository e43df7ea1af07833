//! `oxtree find-remotes [--pull] COLLECTION-ID REF…`: which repositories
//! (configured remotes, mounted volumes) offer the newest commits of some
//! collection refs, as ostree lists them; with `--pull`, pull them.

use crate::util::open_repo;
use anyhow::{bail, Result};
use oxtree_repo::collections::CollectionRef;
use oxtree_transport::finder::{self, Finder, FinderKind};
use oxtree_transport::PullOptions;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Cache signed summaries in DIR/summaries instead of the repository's
    /// tmp/cache
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Do not invoke fsync()
    #[arg(long)]
    disable_fsync: bool,
    /// Where to look, comma-separated: config (the configured remotes),
    /// mount (volumes mounted below /media, /run/media and /mnt); lan is
    /// not supported. Default: config,mount
    #[arg(long, value_name = "FINDERS")]
    finders: Option<String>,
    /// With the mount finder: look for volumes at DIR instead of the
    /// mounted ones (repeatable; an oxtree extension)
    #[arg(long = "mount-root", value_name = "DIR")]
    mount_roots: Vec<PathBuf>,
    /// Pull the updates after finding them
    #[arg(long)]
    pull: bool,
    /// Do a mirror pull (see pull --mirror); needs --pull
    #[arg(long)]
    mirror: bool,
    /// COLLECTION-ID REF pairs
    #[arg(value_name = "COLLECTION-ID REF", required = true)]
    pairs: Vec<String>,
}

fn finders(spec: Option<&str>, roots: &[PathBuf]) -> Result<Vec<Finder>> {
    let mount = || {
        Finder::Mount(if roots.is_empty() {
            finder::user_mounts()
        } else {
            roots.to_vec()
        })
    };
    let Some(spec) = spec else {
        return Ok(vec![Finder::Config, mount()]);
    };
    let mut out: Vec<Finder> = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for name in spec.split(',') {
        if seen.contains(&name) {
            bail!("Unknown or duplicate finder type given in --finders option: ‘{name}’");
        }
        seen.push(name);
        match name {
            "config" => out.push(Finder::Config),
            "mount" => out.push(mount()),
            "lan" => bail!("LAN repo finder requested, but oxtree has no LAN (Avahi) finder"),
            "" if spec.is_empty() => {
                bail!("List of finders in --finders option must not be empty")
            }
            _ => bail!("Unknown or duplicate finder type given in --finders option: ‘{name}’"),
        }
    }
    Ok(out)
}

/// `COLLECTION-ID REF…` pairs, validated.
pub fn collection_refs(pairs: &[String]) -> Result<Vec<CollectionRef>> {
    if !pairs.len().is_multiple_of(2) {
        bail!("Only complete COLLECTION-ID REF pairs may be specified");
    }
    let mut out = Vec::with_capacity(pairs.len() / 2);
    for p in pairs.chunks(2) {
        oxtree_repo::refs::validate_collection_id(&p[0])?;
        oxtree_repo::refs::validate_ref_name(&p[1])?;
        let r = CollectionRef {
            collection_id: p[0].clone(),
            ref_name: p[1].clone(),
        };
        if !out.contains(&r) {
            out.push(r);
        }
    }
    Ok(out)
}

fn iso8601(secs: u64) -> String {
    chrono::DateTime::from_timestamp(secs as i64, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| "invalid".into())
}

pub fn run(repo: Option<PathBuf>, a: Args) -> Result<()> {
    if a.mirror && !a.pull {
        bail!("When --mirror is specified, --pull must also be");
    }
    let refs = collection_refs(&a.pairs)?;
    let finders = finders(a.finders.as_deref(), &a.mount_roots)?;
    let repo = open_repo(repo)?;
    let opts = PullOptions {
        mirror: a.mirror,
        sync: a.disable_fsync.then_some(false),
        cache_dir: Some(
            a.cache_dir
                .clone()
                .unwrap_or_else(|| repo.path().join("tmp/cache")),
        ),
        ..Default::default()
    };
    let results = finder::find_remotes(&repo, &refs, &finders, &opts.fetch)?;
    if results.is_empty() {
        println!("No results.");
        return Ok(());
    }
    for (i, r) in results.iter().enumerate() {
        // ostree names its finder classes; scripts may match them.
        let finder = match r.finder {
            FinderKind::Config => "OstreeRepoFinderConfig",
            FinderKind::Mount => "OstreeRepoFinderMount",
        };
        println!("Result {i}: {}", r.remote.url);
        println!(" - Finder: {finder}");
        println!(" - Keyring: {}", r.keyring());
        println!(" - Priority: {}", r.priority);
        println!(
            " - Summary last modified: {}",
            r.summary_last_modified
                .filter(|t| *t > 0)
                .map_or_else(|| "unknown".into(), iso8601)
        );
        println!(" - Refs:");
        for (cr, c) in &r.refs {
            let c = c.map_or_else(|| "(not found)".into(), |c| c.to_hex());
            println!("    - ({}, {}) = {c}", cr.collection_id, cr.ref_name);
        }
        println!();
    }
    let found: Vec<&CollectionRef> = refs
        .iter()
        .filter(|r| {
            results
                .iter()
                .any(|res| res.refs.iter().any(|(cr, c)| cr == *r && c.is_some()))
        })
        .collect();
    println!("{}/{} refs were found.", found.len(), refs.len());
    if found.len() != refs.len() {
        println!("Refs not found in any remote:");
        for r in refs.iter().filter(|r| !found.contains(r)) {
            println!(" - ({}, {})", r.collection_id, r.ref_name);
        }
    }
    if !a.pull {
        return Ok(());
    }
    let out = finder::pull_from_results(&repo, &results, &opts, &|_| {})?;
    if !out.failed.is_empty() {
        for (r, e) in &out.failed {
            eprintln!(
                "error: ({}, {}): {}",
                r.collection_id,
                r.ref_name,
                oxtree_io::Chain(e.as_ref())
            );
        }
        let names: Vec<String> = out
            .failed
            .iter()
            .map(|(r, _)| format!("({}, {})", r.collection_id, r.ref_name))
            .collect();
        bail!(
            "Failed to pull some refs from the remotes: {}",
            names.join(", ")
        );
    }
    println!(
        "Pulled {}/{} refs successfully.",
        out.pulled.len(),
        found.len()
    );
    Ok(())
}

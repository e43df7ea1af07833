//! `oxtree show REV`: a commit, or one of its metadata keys.

use crate::output::{commit_json, commit_text, format_size};
use crate::util::open_repo;
use anyhow::{anyhow, Result};
use oxtree_object::text;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Print only the value of this commit metadata key
    #[arg(long)]
    print_metadata_key: Option<String>,
    /// Print only the value of this detached metadata key
    #[arg(long)]
    print_detached_metadata_key: Option<String>,
    /// Show what the commit's objects weigh (from its ostree.sizes) and
    /// how much of it this repository still needs
    #[arg(long)]
    print_sizes: bool,
    /// Print metadata numbers as stored (by default they are byteswapped,
    /// as ostree prints its own big-endian numbers)
    #[arg(short = 'B', long)]
    no_byteswap: bool,
    /// Machine-readable output
    #[arg(long)]
    json: bool,
    /// Print the commit object as GVariant text
    #[arg(long)]
    raw: bool,
    /// Check GPG signatures with this remote's keys
    #[arg(long, value_name = "REMOTE")]
    gpg_verify_remote: Option<String>,
    /// Also trust the keyrings (*.gpg) in this directory
    #[arg(long, value_name = "DIR")]
    gpg_homedir: Option<PathBuf>,
    rev: String,
}

pub fn run(repo: Option<PathBuf>, a: Args) -> Result<()> {
    let repo = open_repo(repo)?;
    let csum = repo.resolve_rev(&a.rev)?;
    let c = repo.load_commit(&csum)?;
    if let Some(k) = &a.print_metadata_key {
        let v = c
            .metadata
            .get(k)
            .ok_or_else(|| anyhow!("No such metadata key '{k}'"))?;
        println!("{}", print_value(v, a.no_byteswap));
        return Ok(());
    }
    if let Some(k) = &a.print_detached_metadata_key {
        let md = repo
            .load_commitmeta(&csum)?
            .ok_or_else(|| anyhow!("No detached metadata for commit {csum}"))?;
        let v = md
            .get(k)
            .ok_or_else(|| anyhow!("No such detached metadata key '{k}'"))?;
        println!("{}", print_value(v, a.no_byteswap));
        return Ok(());
    }
    if a.print_sizes {
        return print_sizes(&repo, &c);
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&commit_json(&csum, &c))?);
    } else if a.raw {
        println!("{}", raw_commit(&c));
    } else {
        print!("{}", commit_text(&csum, &c));
        print_gpg_signatures(&repo, &csum, &a)?;
    }
    Ok(())
}

/// A metadata value as ostree's `show` prints it.
fn print_value(v: &oxtree_object::gvariant::Value, no_byteswap: bool) -> String {
    match (no_byteswap, text::byteswap_scalar(v)) {
        (false, Some(swapped)) => text::print(&swapped),
        _ => text::print(v),
    }
}

/// `--print-sizes`, in ostree's words.
fn print_sizes(repo: &oxtree_repo::Repo, c: &oxtree_object::Commit) -> Result<()> {
    use oxtree_object::sizes::{decode_sizes, KEY_SIZES};
    let v = c
        .metadata
        .get(KEY_SIZES)
        .ok_or_else(|| anyhow!("No metadata key {KEY_SIZES} in commit"))?;
    let (mut archived, mut unpacked, mut objects) = (0u64, 0u64, 0u64);
    let (mut need_archived, mut need_unpacked, mut need_objects) = (0u64, 0u64, 0u64);
    for e in decode_sizes(v)? {
        archived += e.archived;
        unpacked += e.unpacked;
        objects += 1;
        if !repo.has_object(e.kind, &e.checksum)? {
            need_archived += e.archived;
            need_unpacked += e.unpacked;
            need_objects += 1;
        }
    }
    println!(
        "Compressed size (needed/total): {}/{}",
        format_size(need_archived),
        format_size(archived)
    );
    println!(
        "Unpacked size (needed/total): {}/{}",
        format_size(need_unpacked),
        format_size(unpacked)
    );
    println!("Number of objects (needed/total): {need_objects}/{objects}");
    Ok(())
}

/// The commit's GPG signatures, each checked and described as ostree's
/// `show` does ("Found N signatures:"); nothing for an unsigned commit.
fn print_gpg_signatures(
    repo: &oxtree_repo::Repo,
    csum: &oxtree_object::Checksum,
    a: &Args,
) -> Result<()> {
    use oxtree_transport::{sign, verify};
    let Some(md) = repo.load_commitmeta(csum)? else {
        return Ok(());
    };
    let sigs = sign::signatures_in(&md, sign::GPG_KEY)?;
    if sigs.is_empty() {
        return Ok(());
    }
    let ring = match &a.gpg_verify_remote {
        Some(r) => {
            let remote = oxtree_transport::Remote::open(repo, r)?;
            verify::remote_gpg_keyring(repo, &remote)?
        }
        None => {
            let mut ring = verify::global_gpg_keyring()?;
            if let Some(d) = &a.gpg_homedir {
                ring.add_dir(d)?;
            }
            ring
        }
    };
    let bytes = repo.load_meta_bytes(oxtree_object::ObjectType::Commit, csum)?;
    let reports = ring.describe(&bytes, &sigs);
    let n = reports.len();
    println!("Found {n} signature{}:", if n == 1 { "" } else { "s" });
    for r in &reports {
        println!();
        print!("{}", r.describe("  "));
    }
    Ok(())
}

/// A commit object, `(a{sv}aya(say)sstayay)`, as GVariant text (ostree's
/// `show --raw`; the timestamp as stored, big-endian).
fn raw_commit(c: &oxtree_object::Commit) -> String {
    let md: Vec<String> = c
        .metadata
        .0
        .iter()
        .map(|(k, v)| format!("'{k}': <{}>", text::print(v)))
        .collect();
    let md = if md.is_empty() {
        "@a{sv} {}".to_string()
    } else {
        format!("{{{}}}", md.join(", "))
    };
    let parent = c
        .parent
        .map_or_else(|| "@ay []".to_string(), |p| text::bytestring(&p.0, true));
    let related: Vec<String> = c
        .related
        .iter()
        .map(|(n, r)| format!("('{n}', {})", text::bytestring(&r.0, true)))
        .collect();
    let related = if related.is_empty() {
        "@a(say) []".to_string()
    } else {
        format!("[{}]", related.join(", "))
    };
    let quote = |s: &str| text::print(&oxtree_object::gvariant::Value::from(s));
    format!(
        "({md}, {parent}, {related}, {}, {}, uint64 {}, {}, {})",
        quote(&c.subject),
        quote(&c.body),
        c.timestamp.to_be(),
        text::bytestring(&c.root_tree.0, true),
        text::bytestring(&c.root_meta.0, true)
    )
}

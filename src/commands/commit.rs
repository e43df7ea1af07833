//! `oxtree commit`: write a tree (directory, tarball or existing ref) as a
//! new commit and move the branch to it. Prints the commit checksum.

use crate::util::{now, open_repo, parse_bool, parse_timestamp, progress_bar};
use anyhow::{anyhow, bail, Context, Result};
use oxtree_object::Metadata;
use oxtree_repo::{CommitModifier, CommitOptions, MutableTree};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Branch to commit to
    #[arg(short = 'b', long)]
    branch: Option<String>,
    /// Overlay a tree: dir=PATH, tar=FILE or ref=REV (repeatable, in order)
    #[arg(long = "tree", value_name = "dir=PATH|tar=FILE|ref=REV")]
    trees: Vec<String>,
    /// One-line subject
    #[arg(short = 's', long)]
    subject: Option<String>,
    /// Full description
    #[arg(short = 'm', long)]
    body: Option<String>,
    /// Read the body from a file
    #[arg(long = "body-file", short = 'F')]
    body_file: Option<PathBuf>,
    /// Override the commit timestamp (@EPOCH, YYYY-MM-DD, RFC 3339)
    #[arg(long)]
    timestamp: Option<String>,
    /// Parent commit ("none" for no parent)
    #[arg(long)]
    parent: Option<String>,
    /// Add a string metadata key (KEY=VALUE, repeatable)
    #[arg(long = "add-metadata-string", value_name = "KEY=VALUE")]
    add_metadata_string: Vec<String>,
    /// Canonicalize permissions: owner 0:0, files & 0755, dirs 0755, no xattrs
    /// Add a key/value pair to the detached metadata
    #[arg(long = "add-detached-metadata-string", value_name = "KEY=VALUE")]
    add_detached_metadata_string: Vec<String>,
    /// File of `MODE PATH` (mode bits added) or `=MODE PATH` (mode set)
    /// lines, modes in decimal
    #[arg(long, value_name = "FILE")]
    statoverride: Option<PathBuf>,
    /// Start from this commit's tree; the trees given are laid over it
    #[arg(long, value_name = "REV")]
    base: Option<String>,
    /// File of paths (one a line) to leave out
    #[arg(long = "skip-list", value_name = "FILE")]
    skip_list: Option<PathBuf>,
    #[arg(long)]
    canonical_permissions: bool,
    /// Set the owner uid of every file
    #[arg(long)]
    owner_uid: Option<u32>,
    /// Set the owner gid of every file
    #[arg(long)]
    owner_gid: Option<u32>,
    /// Do not record extended attributes
    #[arg(long)]
    no_xattrs: bool,
    /// Do not create a commit if the tree equals the parent's
    #[arg(long)]
    skip_if_unchanged: bool,
    /// Do not bind the commit to its branch (no ostree.ref-binding)
    #[arg(long)]
    no_bindings: bool,
    /// Also bind the commit to this ref (repeatable)
    #[arg(long = "bind-ref")]
    bind_refs: Vec<String>,
    /// Commit without a branch
    #[arg(long)]
    orphan: bool,
    /// Sync before making objects and the ref visible (default: core.fsync)
    #[arg(long, value_name = "BOOL")]
    fsync: Option<String>,
    /// Files hardlinked from this repository (checkout -H) are taken as
    /// its objects, keeping their stored owner and xattrs
    #[arg(long)]
    link_checkout_speedup: bool,
    /// Like --link-checkout-speedup, and modifiers do not apply to such
    /// files
    #[arg(short = 'I', long)]
    devino_canonical: bool,
    /// GPG Key ID to sign the commit with (repeatable)
    #[arg(long = "gpg-sign", value_name = "KEY-ID")]
    gpg_sign: Vec<String>,
    #[command(flatten)]
    gpg_keys: super::gpg_sign::GpgKeyArgs,
    /// Mark the commit bootable: record the kernel version of
    /// usr/lib/modules/KVER/vmlinuz (ostree.linux, ostree.bootable)
    #[arg(long)]
    bootable: bool,
    /// Record every object's archived and unpacked size in the commit
    /// (ostree.sizes; archive repositories only, as ostree)
    #[arg(long)]
    generate_sizes: bool,
    /// Executable regular files lose their write bits (W^X)
    #[arg(long)]
    mode_ro_executables: bool,
    /// When importing an archive, create the directories it does not list
    /// (0755, owned per --owner-uid/--owner-gid)
    #[arg(long)]
    tar_autocreate_parents: bool,
    /// Print the transaction's statistics as a table instead of the
    /// checksum alone
    #[arg(long)]
    table_output: bool,
    /// Add a metadata key whose value is GVariant text (`uint64 42`)
    #[arg(long = "add-metadata", value_name = "KEY=VALUE")]
    add_metadata: Vec<String>,
    /// Copy this metadata key from the parent commit (repeatable)
    #[arg(long = "keep-metadata", value_name = "KEY")]
    keep_metadata: Vec<String>,
    /// When importing an archive, rewrite each member path with
    /// REGEX,REPLACEMENT (the replacement is literal)
    #[arg(long, value_name = "REGEX,REPLACEMENT")]
    tar_pathname_filter: Option<String>,
    /// Sign the commit with this key (repeatable; see --sign-type)
    #[arg(long = "sign", value_name = "KEY-ID")]
    sign: Vec<String>,
    /// Signature type of --sign: ed25519 (default) or dummy (ostree's
    /// test-only type)
    #[arg(long = "sign-type", default_value = "ed25519")]
    sign_type: String,
    /// Delete the committed directories afterwards (as ostree's --consume)
    #[arg(long)]
    consume: bool,
    /// Directory to commit (same as --tree=dir=PATH)
    path: Option<PathBuf>,
}

/// `--bootable`: the kernel version of the first usr/lib/modules/KVER that
/// holds a `vmlinuz`, with ostree's errors when there is none.
fn bootable_kernel(mt: &MutableTree) -> Result<String> {
    let modules = ["usr", "lib", "modules"]
        .iter()
        .try_fold(mt, |t, d| t.dirs.get(*d));
    let Some(modules) = modules else {
        bail!("No such file or directory: /usr/lib/modules");
    };
    modules
        .dirs
        .iter()
        .find(|(_, d)| d.files.contains_key("vmlinuz"))
        .map(|(k, _)| k.clone())
        .ok_or_else(|| anyhow!("No kernel found in /usr/lib/modules"))
}

enum Source {
    Dir(PathBuf),
    Tar(PathBuf),
    Ref(String),
}

pub fn run(repo: Option<PathBuf>, a: Args) -> Result<()> {
    let repo = open_repo(repo)?;
    if a.branch.is_none() && !a.orphan {
        bail!("A branch must be specified with --branch, or use --orphan");
    }
    if let Some(b) = &a.branch {
        oxtree_repo::refs::parse_refspec(b)?;
    }
    let mut sources: Vec<Source> = Vec::new();
    for t in &a.trees {
        let (kind, val) = t.split_once('=').ok_or_else(|| {
            anyhow!("invalid --tree '{t}': expected dir=PATH, tar=FILE or ref=REV")
        })?;
        sources.push(match kind {
            "dir" => Source::Dir(val.into()),
            "tar" => Source::Tar(val.into()),
            "ref" => Source::Ref(val.into()),
            _ => bail!("invalid --tree kind '{kind}': expected dir, tar or ref"),
        });
    }
    if let Some(p) = &a.path {
        sources.push(Source::Dir(p.clone()));
    }
    if sources.is_empty() {
        sources.push(Source::Dir(".".into()));
    }

    let paths = if a.statoverride.is_some() || a.skip_list.is_some() {
        let mut r = oxtree_repo::commit::PathRules::default();
        if let Some(f) = &a.statoverride {
            let t =
                std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
            r.add_statoverride(&t)?;
        }
        if let Some(f) = &a.skip_list {
            let t =
                std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
            r.add_skip_list(&t);
        }
        Some(std::sync::Arc::new(r))
    } else {
        None
    };
    let modifier = CommitModifier {
        canonical_permissions: a.canonical_permissions,
        owner_uid: a.owner_uid,
        owner_gid: a.owner_gid,
        skip_xattrs: a.no_xattrs,
        paths: paths.clone(),
        ro_executables: a.mode_ro_executables,
        link_checkout_speedup: a.link_checkout_speedup,
        devino_canonical: a.devino_canonical,
        adopt: a.consume,
    };
    let archive = oxtree_repo::archive::ArchiveOptions {
        autocreate_parents: a.tar_autocreate_parents,
        pathname_filter: a
            .tar_pathname_filter
            .as_deref()
            .map(oxtree_repo::archive::PathnameFilter::parse)
            .transpose()?,
    };

    let parent = match a.parent.as_deref() {
        Some("none") => None,
        Some(p) => Some(repo.resolve_rev(p)?),
        None if a.orphan => None,
        None => repo.read_ref(a.branch.as_deref().unwrap())?,
    };

    let mut metadata = Metadata::new();
    // All KEY=VALUE options are checked before anything is written.
    for kv in &a.add_detached_metadata_string {
        key_value("--add-detached-metadata-string", kv)?;
    }
    for kv in &a.add_metadata_string {
        let (k, v) = key_value("--add-metadata-string", kv)?;
        metadata.set_str(k, v);
    }
    for kv in &a.add_metadata {
        let (k, v) = key_value("--add-metadata", kv)?;
        let v = oxtree_object::text::parse(v)
            .map_err(|e| anyhow!("--add-metadata {k}: parsing '{v}': {e}"))?;
        metadata.set(k, v);
    }
    if !a.keep_metadata.is_empty() {
        let p = parent.ok_or_else(|| anyhow!("--keep-metadata needs a parent commit"))?;
        let pc = repo.load_commit(&p)?;
        for k in &a.keep_metadata {
            let v = pc
                .metadata
                .get(k)
                .ok_or_else(|| anyhow!("Missing metadata key '{k}' from commit '{p}'"))?;
            metadata.set(k, v.clone());
        }
    }
    if !a.no_bindings {
        let mut binds: Vec<String> = a.bind_refs.clone();
        if let Some(b) = &a.branch {
            binds.push(b.clone());
        }
        binds.sort();
        binds.dedup();
        // Written even when empty (an --orphan commit), as ostree does.
        metadata.set_strv("ostree.ref-binding", &binds);
        // The repository's collection, unless the user gave one with
        // --add-metadata-string (ostree allows that override).
        if metadata.get("ostree.collection-binding").is_none() {
            if let Some(id) = repo.collection_id() {
                metadata.set_str("ostree.collection-binding", &id);
            }
        }
    }
    let body = match &a.body_file {
        Some(f) => {
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?
        }
        None => a.body.clone().unwrap_or_default(),
    };
    // Reproducible builds: SOURCE_DATE_EPOCH stands in for the clock.
    let timestamp = match (&a.timestamp, std::env::var("SOURCE_DATE_EPOCH")) {
        (Some(t), _) => parse_timestamp(t)?,
        (None, Ok(e)) => source_date_epoch(&e)?,
        (None, Err(_)) => now(),
    };

    let mut tx = repo.begin()?;
    if let Some(f) = &a.fsync {
        tx.set_sync(parse_bool(f)?);
    }
    let mut mt = match &a.base {
        Some(b) => {
            let c = repo.load_commit(&repo.resolve_rev(b)?)?;
            MutableTree::from_stored(&repo, &c.root_tree, &c.root_meta)?
        }
        None => MutableTree::new(),
    };
    let pb = progress_bar(0, "commit");
    let report = |done: u64, total: u64| {
        if pb.length() != Some(total) {
            pb.set_length(total);
        }
        if done.is_multiple_of(64) || done == total {
            pb.set_position(done);
        }
    };
    for s in &sources {
        match s {
            Source::Dir(p) => tx.write_dir_into(p, &mut mt, &modifier, &report)?,
            Source::Tar(f) if f.as_os_str() == "-" => {
                let stdin = std::io::stdin().lock();
                tx.write_archive_stream_into(stdin, &mut mt, &modifier, &archive)
                    .context("importing the archive on standard input")?;
            }
            Source::Tar(f) => {
                let file =
                    std::fs::File::open(f).with_context(|| format!("opening {}", f.display()))?;
                tx.write_archive_file_into(file, &mut mt, &modifier, &archive)
                    .with_context(|| format!("importing {}", f.display()))?;
            }
            Source::Ref(r) => {
                let c = repo.load_commit(&repo.resolve_rev(r)?)?;
                let mut stored = MutableTree::from_stored(&repo, &c.root_tree, &c.root_meta)?;
                if !modifier.is_identity() {
                    tx.rewrite_stored_tree(&mut stored, "/", &modifier)?;
                }
                mt.overlay(stored);
            }
        }
    }
    pb.finish_and_clear();
    if a.bootable {
        // ostree's key order: the kernel first, the flag after the user's keys.
        let kver = bootable_kernel(&mt)?;
        let mut md = Metadata::new();
        md.set_str("ostree.linux", &kver);
        for (k, v) in std::mem::take(&mut metadata.0) {
            if k == "ostree.ref-binding" {
                md.set("ostree.bootable", true.into());
            }
            md.0.push((k, v));
        }
        if md.get("ostree.bootable").is_none() {
            md.set("ostree.bootable", true.into());
        }
        metadata = md;
    }
    let root = mt.write(&tx)?;
    if a.generate_sizes {
        if let Some(mut sizes) = tx.object_sizes(root)? {
            use oxtree_object::sizes::{encode_sizes, KEY_SIZES};
            metadata.set(KEY_SIZES, encode_sizes(&mut sizes));
        }
    }
    if let Some(p) = &paths {
        // Before anything is committed: no ref moves.
        p.unmatched()?;
    }

    if a.skip_if_unchanged {
        if let Some(p) = parent {
            let pc = repo.load_commit(&p)?;
            if (pc.root_tree, pc.root_meta) == root {
                drop(tx);
                println!("{p}");
                return Ok(());
            }
        }
    }
    let opts = CommitOptions {
        subject: a.subject.clone().unwrap_or_default(),
        body,
        timestamp,
        parent,
        metadata,
    };
    let stats = a.table_output.then(|| tx.stats(root)).transpose()?;
    let csum = tx.write_commit_object(root, &opts)?;
    let sync = tx.sync_enabled();
    tx.commit()?;
    if !a.add_detached_metadata_string.is_empty() {
        let mut md = repo.load_commitmeta(&csum)?.unwrap_or_default();
        for kv in &a.add_detached_metadata_string {
            let (k, v) = key_value("--add-detached-metadata-string", kv)?;
            md.set_str(k, v);
        }
        repo.write_detached_metadata_bytes(&csum, &md.encode(), sync)?;
    }
    // Signed before the ref moves: a signing failure leaves the ref alone.
    if !a.gpg_sign.is_empty() || a.gpg_keys.gpg_key_file.is_some() {
        let bytes = repo.load_meta_bytes(oxtree_object::ObjectType::Commit, &csum)?;
        let mut md = repo.load_commitmeta(&csum)?.unwrap_or_default();
        for signer in a.gpg_keys.signers(&a.gpg_sign)? {
            let sig = signer.sign(&bytes).context("signing the commit")?;
            oxtree_transport::sign::append_signature(
                &mut md,
                oxtree_transport::sign::GPG_KEY,
                sig,
            )?;
        }
        repo.write_detached_metadata_bytes(&csum, &md.encode(), sync)?;
    }
    if !a.sign.is_empty() {
        use oxtree_transport::sign;
        let bytes = repo.load_meta_bytes(oxtree_object::ObjectType::Commit, &csum)?;
        let mut md = repo.load_commitmeta(&csum)?.unwrap_or_default();
        for k in &a.sign {
            let (key, sig) = match a.sign_type.as_str() {
                "ed25519" => (
                    sign::ED25519_KEY,
                    sign::sign_data(&sign::parse_secret_key(k)?, &bytes),
                ),
                "dummy" => (sign::DUMMY_KEY, sign::dummy_sign(k)),
                t => bail!("Requested signature type is not implemented: '{t}'"),
            };
            sign::append_signature(&mut md, key, sig)?;
        }
        repo.write_detached_metadata_bytes(&csum, &md.encode(), sync)?;
    }
    if let Some(b) = &a.branch {
        repo.write_ref(b, Some(&csum), sync)?;
    }
    if a.consume {
        for s in &sources {
            if let Source::Dir(p) = s {
                std::fs::remove_dir_all(p)
                    .with_context(|| format!("--consume: removing {}", p.display()))?;
            }
        }
    }
    match stats {
        // ostree's table, which scripts read.
        Some(s) => {
            println!("Commit: {csum}");
            println!("Metadata Total: {}", s.metadata_total);
            println!("Metadata Written: {}", s.metadata_written);
            println!("Content Total: {}", s.content_total);
            println!("Content Written: {}", s.content_written);
            println!("Content Cache Hits: {}", s.devino_cache_hits);
            println!("Content Bytes Written: {}", s.content_bytes_written);
        }
        None => println!("{csum}"),
    }
    Ok(())
}

/// `SOURCE_DATE_EPOCH` as ostree reads it: a signed 64-bit decimal, with
/// its error wordings (scripts match them).
fn source_date_epoch(e: &str) -> Result<u64> {
    let t = e.trim();
    let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        bail!("Failed to convert SOURCE_DATE_EPOCH = '{e}' to integer");
    }
    let v: i64 = t
        .parse()
        .map_err(|_| anyhow!("Parsing SOURCE_DATE_EPOCH: Numerical result out of range"))?;
    u64::try_from(v).map_err(|_| anyhow!("Failed to convert SOURCE_DATE_EPOCH = '{e}' to integer"))
}

/// `KEY=VALUE` of a metadata option; an empty key is refused in ostree's
/// words.
fn key_value<'a>(flag: &str, kv: &'a str) -> Result<(&'a str, &'a str)> {
    let (k, v) = kv
        .split_once('=')
        .ok_or_else(|| anyhow!("invalid {flag} '{kv}': expected KEY=VALUE"))?;
    if k.is_empty() {
        bail!("Empty metadata key in {flag} '{kv}'");
    }
    Ok((k, v))
}

//! `oxtree pull-local [--depth=N] [--untrusted] [--remote=R] SRC_REPO
//! [REF…]`: copy commits from another local repository of any mode.

use crate::output::format_size;
use crate::util::{open_repo, progress_bar};
use anyhow::{Context, Result};
use oxtree_object::Checksum;
use oxtree_repo::{refs, Repo, RepoError};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Traverse DEPTH parents (-1 = infinite)
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    depth: i64,
    /// Verify checksums of the source's file objects (done anyway for
    /// a repository another user owns)
    #[arg(long)]
    untrusted: bool,
    /// Refuse file objects with modes a bare-user-only repository cannot
    /// hold (setuid, setgid, world-writable)
    #[arg(long)]
    bareuseronly_files: bool,
    /// Copy the commit objects only (they stay partial)
    #[arg(long)]
    commit_metadata_only: bool,
    /// Add REMOTE to the refspecs written here
    #[arg(long, value_name = "REMOTE")]
    remote: Option<String>,
    /// Do not invoke fsync()
    #[arg(long)]
    disable_fsync: bool,
    /// Build the commits only from the source's static deltas (an error
    /// when it has none for a commit)
    #[arg(long)]
    require_static_deltas: bool,
    /// Do not check that commits are bound to the refs (and the source's
    /// collection) they are pulled as
    #[arg(long)]
    disable_verify_bindings: bool,
    /// Require the named commits to carry a GPG signature by a key of
    /// --remote's keyring
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    gpg_verify: Option<bool>,
    /// Require the source's summary to be signed by a key of --remote's
    /// keyring
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    gpg_verify_summary: Option<bool>,
    #[arg(value_name = "SRC_REPO")]
    src: PathBuf,
    /// Refs (or commit checksums) to copy; all refs when none are given
    #[arg(value_name = "REF")]
    refs: Vec<String>,
}

pub fn run(repo: Option<PathBuf>, a: Args) -> Result<()> {
    let repo = open_repo(repo)?;
    let src = Repo::open(&a.src)
        .with_context(|| format!("opening source repository {}", a.src.display()))?;
    if let Some(r) = &a.remote {
        refs::validate_ref_name(r)?;
    }
    // (ref to write here, commit); checksums copy without a ref.
    let mut wanted: Vec<(Option<String>, Checksum)> = Vec::new();
    if a.refs.is_empty() {
        for (name, c) in src.list_refs()? {
            // Every ref is copied under its own name, which a remote ref
            // (`origin:main`) cannot be; ostree refuses the same way.
            if name.contains(':') {
                anyhow::bail!("Invalid ref name {name}");
            }
            wanted.push((Some(name), c));
        }
    } else {
        for r in &a.refs {
            if Checksum::is_hex(r) {
                wanted.push((None, Checksum::from_hex(r)?));
                continue;
            }
            let c = src
                .read_ref(r)
                .map_err(|_| RepoError::RefNotFound(r.clone()))?
                .ok_or_else(|| RepoError::RefNotFound(r.clone()))?;
            wanted.push((Some(r.clone()), c));
        }
    }
    // As a pull: a named commit must be bound to its ref, and to the
    // source's collection when it has one.
    if !a.disable_verify_bindings {
        let id = src.collection_id();
        for (name, c) in &wanted {
            let Some(name) = name else { continue };
            let bare = name.split_once(':').map_or(name.as_str(), |(_, n)| n);
            let commit = src.load_commit(c)?;
            oxtree_repo::bindings::verify_bindings(id.as_deref(), Some(bare), &commit)
                .map_err(|e| anyhow::anyhow!("Commit {c}: {e}"))?;
        }
    }
    verify_signatures(&repo, &src, &a, &wanted)?;
    let dest_ref = |name: &str| match &a.remote {
        Some(remote) => {
            let bare = name.split_once(':').map_or(name, |(_, n)| n);
            format!("{remote}:{bare}")
        }
        None => name.to_string(),
    };
    let commits: Vec<Checksum> = wanted.iter().map(|(_, c)| *c).collect();
    let sync = if a.disable_fsync { Some(false) } else { None };
    if a.require_static_deltas {
        pull_by_deltas(&repo, &a.src, &commits, sync)?;
        let sync = sync.unwrap_or(repo.fsync_enabled()?);
        for (name, c) in &wanted {
            if let Some(name) = name {
                repo.write_ref(&dest_ref(name), Some(c), sync)?;
            }
        }
        return Ok(());
    }
    let pb = progress_bar(0, "pull-local");
    let progress = |done: u64, total: u64| {
        pb.set_length(total);
        pb.set_position(done);
    };
    // As ostree, a local source is trusted unless --untrusted; oxtree
    // also checks a repository another user owns.
    let trusted = !a.untrusted && crate::util::owned_by_us(&src);
    let opts = oxtree_repo::pull_local::PullLocalOptions {
        depth: a.depth,
        sync,
        trusted,
        bareuseronly_files: a.bareuseronly_files,
        commit_metadata_only: a.commit_metadata_only,
    };
    let stats = repo.pull_local_with(&src, &commits, &opts, &progress)?;
    pb.finish_and_clear();
    let sync = sync.unwrap_or(repo.fsync_enabled()?);
    for (name, c) in &wanted {
        if let Some(name) = name {
            repo.write_ref(&dest_ref(name), Some(c), sync)?;
        }
    }
    // ostree copies objects between repos of the same mode (or bare-user
    // into bare-user-only) as they are, and counts only bytes it re-encoded.
    use oxtree_repo::RepoMode::{BareUser, BareUserOnly};
    let direct = src.mode() == repo.mode() || (src.mode(), repo.mode()) == (BareUser, BareUserOnly);
    let bytes = if direct { 0 } else { stats.content_bytes };
    println!(
        "{} metadata, {} content objects imported; {} content written",
        stats.metadata,
        stats.content,
        format_size(bytes)
    );
    Ok(())
}

/// `--require-static-deltas`: as ostree, a pull from the source as a
/// `file://` URL that may only use its static deltas (the summary lists
/// them). No remote is configured and no signature is asked for: the
/// source is local, as in any pull-local.
fn pull_by_deltas(
    repo: &Repo,
    src: &std::path::Path,
    commits: &[Checksum],
    sync: Option<bool>,
) -> Result<()> {
    let abs = std::fs::canonicalize(src)?;
    let name = "_pull-local";
    let config = oxtree_repo::config::RepoConfig::parse(&format!(
        "[remote \"{name}\"]\nurl=file://{}\ngpg-verify=false\n",
        abs.display()
    ))?;
    let remote = oxtree_transport::remote::Remote::from_config(&config, name)?;
    let opts = oxtree_transport::PullOptions {
        require_static_deltas: true,
        sync,
        ..Default::default()
    };
    let refs: Vec<String> = commits.iter().map(|c| c.to_hex()).collect();
    oxtree_transport::pull(repo, &remote, &refs, &opts, &|_| {})?;
    Ok(())
}

/// `--gpg-verify` and `--gpg-verify-summary`, with the keys of `--remote`
/// (as ostree: the source is checked before anything is copied).
fn verify_signatures(
    repo: &Repo,
    src: &Repo,
    a: &Args,
    wanted: &[(Option<String>, Checksum)],
) -> Result<()> {
    use oxtree_transport::remote::Remote;
    use oxtree_transport::verify::RemoteVerifier;
    let (commits, summary) = (
        a.gpg_verify.unwrap_or(false),
        a.gpg_verify_summary.unwrap_or(false),
    );
    if !commits && !summary {
        return Ok(());
    }
    let Some(name) = &a.remote else {
        anyhow::bail!("--gpg-verify and --gpg-verify-summary need --remote to name the keys");
    };
    let mut remote = Remote::open(repo, name)?;
    remote.gpg_verify = commits;
    remote.gpg_verify_summary = summary;
    remote.sign_verify_mode = oxtree_transport::signapi::SignVerify::Off;
    remote.sign_verify_summary_mode = oxtree_transport::signapi::SignVerify::Off;
    let verifier = RemoteVerifier::for_remote(repo, &remote)?;
    if summary {
        let bytes = std::fs::read(src.path().join("summary"))
            .with_context(|| format!("remote '{name}': the source has no summary to verify"))?;
        let sig = std::fs::read(src.path().join("summary.sig")).ok();
        verifier.verify_summary(&bytes, sig.as_deref())?;
    }
    if commits {
        for (_, c) in wanted {
            let bytes = src.load_meta_bytes(oxtree_object::ObjectType::Commit, c)?;
            verifier.verify_commit(c, &bytes, src.load_commitmeta(c)?.as_ref())?;
        }
    }
    Ok(())
}

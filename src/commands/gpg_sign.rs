//! `oxtree gpg-sign --gpg-key-file=FILE COMMIT [KEY-ID…]`: add OpenPGP
//! signatures to a commit's detached metadata (`ostree.gpgsigs`), which
//! ostree's `gpg-verify` accepts; `--delete` drops signatures by KEY-IDs.
//!
//! oxtree's variant: the secret key is read from a file (`gpg
//! --export-secret-keys --armor KEYID`, without a passphrase) since oxtree
//! does not talk to gpg-agent; `--gpg-homedir` alone is refused with that
//! advice.

use crate::util::open_repo;
use anyhow::{bail, Context, Result};
use oxtree_object::ObjectType;
use oxtree_transport::gpg;
use oxtree_transport::sign::{self, GPG_KEY};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Delete signatures having any of the GPG KEY-IDs
    #[arg(short = 'd', long)]
    delete: bool,
    /// Secret key file (armored or binary OpenPGP, unprotected)
    #[arg(long = "gpg-key-file", value_name = "FILE")]
    gpg_key_file: Option<PathBuf>,
    /// GnuPG home directory (not supported: use --gpg-key-file)
    #[arg(long = "gpg-homedir", value_name = "HOMEDIR")]
    gpg_homedir: Option<PathBuf>,
    /// The commit to sign
    commit: String,
    /// Keys to sign with (fingerprint or key id); default: every key of
    /// the key file
    #[arg(value_name = "KEY-ID")]
    key_ids: Vec<String>,
}

/// The secret keys to sign with, from `--gpg-key-file`.
pub fn secret_keys(
    key_file: Option<&PathBuf>,
    homedir: Option<&PathBuf>,
    ids: &[String],
) -> Result<Vec<gpg::SecretKey>> {
    let Some(f) = key_file else {
        bail!(
            "oxtree reads GPG secret keys from a file, not from a GnuPG home directory{}: \
             export one with `gpg{} --export-secret-keys --armor KEYID > key.asc` and pass \
             --gpg-key-file=key.asc",
            if homedir.is_some() {
                " (--gpg-homedir)"
            } else {
                ""
            },
            homedir
                .map(|h| format!(" --homedir {}", h.display()))
                .unwrap_or_default()
        );
    };
    Ok(gpg::load_secret_keys(f, ids)?)
}

pub fn run(repo: Option<PathBuf>, a: Args) -> Result<()> {
    let repo = open_repo(repo)?;
    let csum = repo.resolve_rev(&a.commit)?;
    let commit = repo
        .load_meta_bytes(ObjectType::Commit, &csum)
        .with_context(|| format!("loading commit {csum}"))?;
    let sync = repo.fsync_enabled()?;
    let mut md = repo.load_commitmeta(&csum)?.unwrap_or_default();
    if a.delete {
        if a.key_ids.is_empty() {
            bail!("--delete needs KEY-IDs");
        }
        let sigs = sign::signatures_in(&md, GPG_KEY)?;
        let before = sigs.len();
        let kept: Vec<Vec<u8>> = sigs
            .into_iter()
            .filter(|s| {
                !gpg::signature_issuers(s)
                    .iter()
                    .any(|iss| a.key_ids.iter().any(|id| gpg::key_id_matches(id, iss)))
            })
            .collect();
        let removed = before - kept.len();
        sign::set_signatures(&mut md, GPG_KEY, kept);
        repo.write_detached_metadata_bytes(&csum, &md.encode(), sync)?;
        println!("Signatures deleted: {removed}");
        return Ok(());
    }
    let keys = secret_keys(a.gpg_key_file.as_ref(), a.gpg_homedir.as_ref(), &a.key_ids)?;
    for k in &keys {
        let (sig, _fpr) = gpg::sign_data(k, &commit)?;
        sign::append_signature(&mut md, GPG_KEY, sig)?;
    }
    repo.write_detached_metadata_bytes(&csum, &md.encode(), sync)?;
    Ok(())
}

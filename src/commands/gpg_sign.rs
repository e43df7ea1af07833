//! `oxtree gpg-sign --gpg-key-file=FILE COMMIT [KEY-ID…]`: add OpenPGP
//! signatures to a commit's detached metadata (`ostree.gpgsigs`), which
//! ostree's `gpg-verify` accepts; `--delete` drops signatures by KEY-IDs.
//!
//! Keys come from a GnuPG home directory (`--gpg-homedir`, else GnuPG's
//! default home), signed by gpg itself as ostree's gpgme does, or from an
//! exported secret key file (`--gpg-key-file`, oxtree's addition, signed
//! without gpg). `--gpg-passphrase-file` unlocks a protected key either way.

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
    #[command(flatten)]
    keys: GpgKeyArgs,
    /// The commit to sign
    commit: String,
    /// Keys to sign with (fingerprint or key id); with --gpg-key-file the
    /// default is every key of the file
    #[arg(value_name = "KEY-ID")]
    key_ids: Vec<String>,
}

/// Where GPG signing keys come from (shared by gpg-sign, commit and
/// summary).
#[derive(clap::Args, Default)]
pub struct GpgKeyArgs {
    /// GnuPG home directory holding the secret keys (default: GnuPG's)
    #[arg(long = "gpg-homedir", value_name = "HOMEDIR")]
    pub gpg_homedir: Option<PathBuf>,
    /// Sign with a secret key file instead (armored or binary OpenPGP)
    #[arg(long = "gpg-key-file", value_name = "FILE")]
    pub gpg_key_file: Option<PathBuf>,
    /// Read the passphrase of a protected key from FILE
    #[arg(long = "gpg-passphrase-file", value_name = "FILE")]
    pub gpg_passphrase_file: Option<PathBuf>,
}

impl GpgKeyArgs {
    /// One signer per requested key.
    pub fn signers(&self, ids: &[String]) -> Result<Vec<gpg::GpgSigner>> {
        if let Some(f) = &self.gpg_key_file {
            let passphrase = match &self.gpg_passphrase_file {
                Some(p) => {
                    let text = std::fs::read_to_string(p)
                        .with_context(|| format!("reading {}", p.display()))?;
                    Some(text.trim_end_matches(['\n', '\r']).to_string())
                }
                None => None,
            };
            return Ok(gpg::load_secret_keys(f, ids)?
                .into_iter()
                .map(|k| gpg::GpgSigner::Key {
                    key: Box::new(k),
                    passphrase: passphrase.clone(),
                })
                .collect());
        }
        if ids.is_empty() {
            bail!("name the GPG key to sign with (KEY-ID)");
        }
        Ok(ids
            .iter()
            .map(|id| gpg::GpgSigner::Gnupg {
                homedir: self.gpg_homedir.clone(),
                key_id: id.clone(),
                passphrase_file: self.gpg_passphrase_file.clone(),
            })
            .collect())
    }
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
    // As ostree: one signature per key.
    let existing = sign::signatures_in(&md, GPG_KEY)?;
    for id in &a.key_ids {
        let signed = existing.iter().any(|s| {
            gpg::signature_issuers(s)
                .iter()
                .any(|iss| gpg::key_id_matches(id, iss))
        });
        if signed {
            bail!("Commit is already signed with GPG key {id}");
        }
    }
    for signer in a.keys.signers(&a.key_ids)? {
        sign::append_signature(&mut md, GPG_KEY, signer.sign(&commit)?)?;
    }
    repo.write_detached_metadata_bytes(&csum, &md.encode(), sync)?;
    Ok(())
}

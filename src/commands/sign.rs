//! `oxtree sign`: ed25519 signatures of commits, like `ostree sign`
//! (signatures go into the commit's detached metadata under
//! `ostree.sign.ed25519`).
//!
//! - `sign [--keys-file=F] COMMIT [SECRET-KEY…]`: add signatures.
//! - `sign --verify [--keys-file=F] [--keys-dir=D] COMMIT [PUBLIC-KEY…]`:
//!   check them; without keys, the system directories are searched.
//! - `sign --delete [--keys-file=F] COMMIT [KEY…]`: drop the signatures a
//!   key (secret or public) verifies.
//! - `sign --generate-key` (oxtree extension): print a new secret key and
//!   its public key, base64, one per line.

use crate::util::open_repo;
use anyhow::{bail, Context, Result};
use oxtree_object::ObjectType;
use oxtree_transport::sign::{self, Ed25519Trust, ED25519_KEY};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Delete signatures made by any of the KEYs
    #[arg(short = 'd', long)]
    delete: bool,
    /// Verify signatures
    #[arg(long)]
    verify: bool,
    /// Signature type to use (only 'ed25519')
    #[arg(short = 's', long = "sign-type", default_value = "ed25519")]
    sign_type: String,
    /// Read keys (one base64 key per line) from FILE
    #[arg(long = "keys-file", value_name = "FILE")]
    keys_file: Option<PathBuf>,
    /// With --verify: search trusted/revoked keys in DIR instead of
    /// /etc/ostree and /usr/share/ostree
    #[arg(long = "keys-dir", value_name = "DIR")]
    keys_dir: Option<PathBuf>,
    /// Print a new secret key and its public key (base64), then exit
    #[arg(long = "generate-key", conflicts_with_all = ["commit", "keys", "delete", "verify"])]
    generate_key: bool,
    /// The commit to sign or verify
    #[arg(required_unless_present = "generate_key")]
    commit: Option<String>,
    /// Keys: secret keys to sign with, public keys to verify with
    #[arg(value_name = "KEY")]
    keys: Vec<String>,
}

/// The key texts: arguments, then the lines of --keys-file.
fn key_texts(a: &Args) -> Result<Vec<String>> {
    let mut v = a.keys.clone();
    if let Some(f) = &a.keys_file {
        let b = sign::read_key_file(f)?;
        v.extend(sign::key_lines(&b));
    }
    Ok(v)
}

pub fn run(repo: Option<PathBuf>, a: Args) -> Result<()> {
    if a.generate_key {
        let (s, p) = sign::generate_keypair();
        println!("{s}\n{p}");
        return Ok(());
    }
    if a.sign_type != "ed25519" && a.sign_type != "dummy" {
        bail!(
            "Requested signature type is not implemented: '{}' (ed25519 and ostree's test-only dummy; use `oxtree gpg-sign` for GPG)",
            a.sign_type
        );
    }
    if a.verify && a.delete {
        bail!("--verify and --delete cannot be combined");
    }
    let repo = open_repo(repo)?;
    let rev = a.commit.as_deref().expect("clap requires COMMIT");
    let csum = repo.resolve_rev(rev)?;
    let commit = repo
        .load_meta_bytes(ObjectType::Commit, &csum)
        .with_context(|| format!("loading commit {csum}"))?;
    let sync = repo.fsync_enabled()?;
    let keys = key_texts(&a)?;
    if a.sign_type == "dummy" {
        return dummy(&repo, &csum, &a, &keys, sync);
    }

    if a.verify {
        let mut trust = Ed25519Trust::new();
        for k in &keys {
            match sign::parse_candidate_key(k)? {
                Some(k) => trust.add_trusted(k),
                None => trust.add_unusable(),
            }
        }
        // Revoked keys are always honoured; trusted ones come from the
        // directories only when none were given.
        let dirs = match &a.keys_dir {
            Some(d) => vec![d.clone()],
            None => sign::system_dirs(),
        };
        let mut sys = Ed25519Trust::new();
        sys.add_dirs(&dirs)?;
        if trust.is_empty() {
            trust = sys;
        } else {
            trust.add_revoked_from(&sys);
        }
        let md = repo.load_commitmeta(&csum)?.unwrap_or_default();
        let sigs = sign::signatures_in(&md, ED25519_KEY)?;
        let key = trust
            .verify(&commit, &sigs)
            .with_context(|| format!("verifying commit {csum}"))?;
        println!("ed25519: Signature verified successfully with key '{key}'");
        return Ok(());
    }

    if keys.is_empty() {
        bail!("no keys given: pass KEY arguments or --keys-file");
    }
    let mut md = repo.load_commitmeta(&csum)?.unwrap_or_default();
    if a.delete {
        let pubs = keys
            .iter()
            .map(|k| sign::public_of_text(k))
            .collect::<oxtree_transport::Result<Vec<_>>>()?;
        let sigs = sign::signatures_in(&md, ED25519_KEY)?;
        let before = sigs.len();
        let kept: Vec<Vec<u8>> = sigs
            .into_iter()
            .filter(|s| {
                !pubs.iter().any(|p| {
                    let mut t = Ed25519Trust::new();
                    t.add_trusted(*p);
                    t.verify(&commit, std::slice::from_ref(s)).is_ok()
                })
            })
            .collect();
        let removed = before - kept.len();
        sign::set_signatures(&mut md, ED25519_KEY, kept);
        repo.write_detached_metadata_bytes(&csum, &md.encode(), sync)?;
        println!("Signatures deleted: {removed}");
        return Ok(());
    }
    for k in &keys {
        let sk = sign::parse_secret_key(k)?;
        sign::append_signature(&mut md, ED25519_KEY, sign::sign_data(&sk, &commit))?;
    }
    repo.write_detached_metadata_bytes(&csum, &md.encode(), sync)?;
    Ok(())
}

/// Whether ostree's test-only `dummy` sign type may verify (it proves
/// nothing, so only test suites enable it).
pub fn dummy_enabled() -> bool {
    std::env::var_os("OSTREE_DUMMY_SIGN_ENABLED").is_some()
}

/// `sign --sign-type=dummy`: ostree's test signature (the key text).
fn dummy(
    repo: &oxtree_repo::Repo,
    csum: &oxtree_object::Checksum,
    a: &Args,
    keys: &[String],
    sync: bool,
) -> Result<()> {
    use sign::DUMMY_KEY;
    let mut md = repo.load_commitmeta(csum)?.unwrap_or_default();
    let sigs = sign::signatures_in(&md, DUMMY_KEY)?;
    if a.verify {
        if !dummy_enabled() {
            bail!("No valid signatures found: the dummy signature type is only for ostree testing (set OSTREE_DUMMY_SIGN_ENABLED)");
        }
        let k =
            sign::dummy_verify(keys, &sigs).with_context(|| format!("verifying commit {csum}"))?;
        println!("dummy: Signature verified successfully with key '{k}'");
        return Ok(());
    }
    if keys.is_empty() {
        bail!("no keys given: pass KEY arguments or --keys-file");
    }
    if a.delete {
        let kept: Vec<Vec<u8>> = sigs
            .iter()
            .filter(|s| !keys.iter().any(|k| s.as_slice() == k.as_bytes()))
            .cloned()
            .collect();
        let removed = sigs.len() - kept.len();
        sign::set_signatures(&mut md, DUMMY_KEY, kept);
        repo.write_detached_metadata_bytes(csum, &md.encode(), sync)?;
        println!("Signatures deleted: {removed}");
        return Ok(());
    }
    for k in keys {
        sign::append_signature(&mut md, DUMMY_KEY, sign::dummy_sign(k))?;
    }
    repo.write_detached_metadata_bytes(csum, &md.encode(), sync)?;
    Ok(())
}

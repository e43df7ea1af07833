//! Making signatures ([`GpgSigner`]): with a secret key from a key file
//! (rPGP, unlocked with a passphrase when protected), or with GnuPG's
//! `gpg --detach-sign` for keys kept in a GnuPG home.

use super::{fingerprint_hex, parse_signatures, sig_err};
use crate::error::Result;
use pgp::composed::{DetachedSignature, SignedSecretKey};
use pgp::crypto::hash::HashAlgorithm;
use pgp::ser::Serialize;
use pgp::types::Password;
use std::path::{Path, PathBuf};

/// Sign `data` with a secret key, choosing a signing subkey when the key
/// has one with a valid binding, else the primary key. Returns one binary
/// detached signature packet and the fingerprint of the key used.
pub fn sign_data(key: &SignedSecretKey, data: &[u8]) -> Result<(Vec<u8>, String)> {
    sign_data_unlocked(key, &Password::empty(), data)
}

fn sign_data_unlocked(
    key: &SignedSecretKey,
    pw: &Password,
    data: &[u8],
) -> Result<(Vec<u8>, String)> {
    let rng = rand::thread_rng();
    let public = key.to_public_key();
    let sub = key
        .secret_subkeys
        .iter()
        .zip(public.public_subkeys.iter())
        .find(|(s, p)| {
            s.signatures.iter().any(|x| x.key_flags().sign())
                && p.verify_bindings(&public.primary_key).is_ok()
        });
    let (sig, fpr) = match sub {
        Some((s, _)) => (
            DetachedSignature::sign_binary_data(rng, &s.key, pw, HashAlgorithm::Sha256, data),
            fingerprint_hex(&s.key),
        ),
        None => (
            DetachedSignature::sign_binary_data(
                rng,
                &key.primary_key,
                pw,
                HashAlgorithm::Sha256,
                data,
            ),
            fingerprint_hex(&key.primary_key),
        ),
    };
    let sig = sig.map_err(|e| {
        sig_err(format!(
            "GPG: signing with {fpr} failed (is the key passphrase-protected? give the \
             passphrase): {e}"
        ))
    })?;
    let bytes = sig
        .to_bytes()
        .map_err(|e| sig_err(format!("GPG: serializing the signature: {e}")))?;
    Ok((bytes, fpr))
}

/// Who makes GPG signatures.
pub enum GpgSigner {
    /// A secret key from a key file; `passphrase` unlocks a protected one.
    Key {
        key: Box<SignedSecretKey>,
        passphrase: Option<String>,
    },
    /// GnuPG (`gpg --detach-sign`) with the key `key_id` of `homedir`
    /// (GnuPG's default home when `None`); a `passphrase_file` is handed
    /// to gpg in loopback pinentry mode, else gpg-agent asks as usual.
    Gnupg {
        homedir: Option<PathBuf>,
        key_id: String,
        passphrase_file: Option<PathBuf>,
    },
}

impl std::fmt::Debug for GpgSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Neither the key nor a passphrase.
        match self {
            GpgSigner::Key { .. } => f.debug_struct("GpgSigner::Key").finish_non_exhaustive(),
            GpgSigner::Gnupg {
                homedir, key_id, ..
            } => f
                .debug_struct("GpgSigner::Gnupg")
                .field("homedir", homedir)
                .field("key_id", key_id)
                .finish_non_exhaustive(),
        }
    }
}

impl GpgSigner {
    /// One binary detached signature of `data`.
    pub fn sign(&self, data: &[u8]) -> Result<Vec<u8>> {
        match self {
            GpgSigner::Key { key, passphrase } => {
                let pw = passphrase
                    .as_deref()
                    .map(Password::from)
                    .unwrap_or_else(Password::empty);
                Ok(sign_data_unlocked(key, &pw, data)?.0)
            }
            GpgSigner::Gnupg {
                homedir,
                key_id,
                passphrase_file,
            } => gnupg_sign(homedir.as_deref(), key_id, passphrase_file.as_deref(), data),
        }
    }
}

fn gnupg_sign(
    homedir: Option<&Path>,
    key_id: &str,
    passphrase_file: Option<&Path>,
    data: &[u8],
) -> Result<Vec<u8>> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut cmd = Command::new("gpg");
    cmd.args(["--batch", "--no-tty", "--quiet"]);
    if let Some(h) = homedir {
        cmd.arg("--homedir").arg(h);
    }
    if let Some(f) = passphrase_file {
        cmd.args(["--pinentry-mode", "loopback", "--passphrase-file"])
            .arg(f);
    }
    cmd.args(["--local-user", key_id, "--digest-algo", "SHA256"])
        .args(["--detach-sign", "--output", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| {
        sig_err(format!(
            "GPG: running gpg to sign with {key_id} (is gnupg installed?): {e}"
        ))
    })?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    // Feed the data from another thread so a full stdout pipe cannot
    // deadlock against a full stdin pipe.
    let out = std::thread::scope(|s| {
        let writer = s.spawn(move || stdin.write_all(data));
        let out = child.wait_with_output();
        let _ = writer.join();
        out
    })
    .map_err(|e| sig_err(format!("GPG: waiting for gpg: {e}")))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(sig_err(format!(
            "GPG: gpg could not sign with {key_id}: {}",
            err.trim()
        )));
    }
    if out.stdout.is_empty() || out.stdout.len() > crate::sign::MAX_SIGNATURE_SIZE {
        return Err(sig_err(format!(
            "GPG: gpg returned no usable signature for {key_id}"
        )));
    }
    // Only what parses as a signature goes into metadata.
    parse_signatures(&out.stdout)?;
    Ok(out.stdout)
}

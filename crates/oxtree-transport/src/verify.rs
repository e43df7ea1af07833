//! What a remote's configuration asks to verify, with the keys to do it:
//! `gpg-verify` / `gpg-verify-summary` (OpenPGP, keys from the remote's
//! keyring) and `sign-verify` / `sign-verify-summary` (ed25519, keys from
//! `verification-ed25519-key` / `-file` or the system directories).
//!
//! Keys are loaded when the verifier is built, so a remote that asks for
//! verification but has no keys fails before anything is fetched.

use crate::error::{Result, TransportError};
use crate::gpg::{self, Keyring};
use crate::remote::Remote;
use crate::sign::{self, Ed25519Trust, GPG_KEY};
use crate::signapi::{self, Verifier};
use oxtree_io::Chain;
use oxtree_object::{Checksum, Metadata};
use oxtree_repo::Repo;
use std::path::{Path, PathBuf};

/// `REPO/NAME.trustedkeys.gpg`, where ostree keeps a remote's keys.
pub fn remote_keyring_path(repo: &Repo, remote: &str) -> PathBuf {
    repo.path().join(format!("{remote}.trustedkeys.gpg"))
}

/// Delete a remote's keyring (no error when it has none).
pub fn remove_remote_keyring(repo: &Repo, remote: &str) -> Result<()> {
    let p = remote_keyring_path(repo, remote);
    match std::fs::remove_file(&p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(TransportError::io(format!("removing {}", p.display()), e)),
    }
}

/// Import OpenPGP public keys (each input binary or armored; only those
/// named by `ids` when not empty) into the remote's keyring. Returns how
/// many keys were new (as ostree reports it; known keys are refreshed).
pub fn import_gpg_keys(
    repo: &Repo,
    remote: &str,
    inputs: &[Vec<u8>],
    ids: &[String],
) -> Result<usize> {
    crate::remote::validate_remote_name(remote)?;
    let mut keys = Vec::new();
    for i in inputs {
        keys.extend(gpg::parse_public_keys(i)?);
        if keys.len() > gpg::MAX_KEYS {
            return Err(TransportError::Config(format!(
                "more than {} OpenPGP keys",
                gpg::MAX_KEYS
            )));
        }
    }
    if keys.is_empty() {
        return Err(TransportError::Config(
            "no OpenPGP public keys in the input".into(),
        ));
    }
    let keys = gpg::select_public_keys(keys, ids)?;
    gpg::check_keys(&keys)?;
    let path = remote_keyring_path(repo, remote);
    let mut ring = Keyring::new();
    if path.exists() {
        ring.add_file(&path)?;
    }
    let n = ring.merge(keys);
    let bytes = ring.to_bytes()?;
    oxtree_repo::fsutil::write_atomic_at(
        repo.dir(),
        &format!("{remote}.trustedkeys.gpg"),
        &bytes,
        true,
    )
    .map_err(|e| TransportError::io(format!("writing {}", path.display()), e))?;
    Ok(n)
}

/// The OpenPGP keys trusted for `remote`: its keyring and `gpgkeypath`;
/// when it has neither, `trusted.gpg.d/` of the system directories.
/// The keys `remote gpg-list-keys REMOTE` shows: the remote's own
/// keyring only (`REMOTE.trustedkeys.gpg`), as ostree lists them.
pub fn remote_own_keyring(repo: &Repo, remote: &str) -> Result<Keyring> {
    let mut ring = Keyring::new();
    let own = remote_keyring_path(repo, remote);
    if own.exists() {
        ring.add_file(&own)?;
    }
    Ok(ring)
}

/// The global keys (`remote gpg-list-keys` without a remote):
/// `OSTREE_GPG_HOME`, else the system keyring directories.
pub fn global_gpg_keyring() -> Result<Keyring> {
    let mut ring = Keyring::new();
    match std::env::var_os("OSTREE_GPG_HOME") {
        Some(d) if !d.is_empty() => ring.add_dir(Path::new(&d))?,
        _ => {
            for d in sign::system_dirs() {
                ring.add_dir(&d.join("trusted.gpg.d"))?;
            }
        }
    }
    Ok(ring)
}

pub fn remote_gpg_keyring(repo: &Repo, remote: &Remote) -> Result<Keyring> {
    let mut ring = remote_own_keyring(repo, &remote.name)?;
    let mut specific = remote_keyring_path(repo, &remote.name).exists();
    for p in &remote.gpg_key_path {
        if p.is_empty() {
            return Err(TransportError::io(
                "gpgkeypath entry ()",
                std::io::Error::from_raw_os_error(2),
            ));
        }
        add_path(&mut ring, Path::new(p))?;
        specific = true;
    }
    if !specific {
        // As libostree: OSTREE_GPG_HOME names the global keyring directory
        // in place of the system ones.
        return global_gpg_keyring();
    }
    Ok(ring)
}

/// A `gpgkeypath` entry: a key file, or a directory whose regular files
/// are each tried as one, as ostree does; files there that hold no key
/// (a GnuPG home's trustdb.gpg, say) are skipped.
fn add_path(ring: &mut Keyring, p: &Path) -> Result<()> {
    if !p.is_dir() {
        return ring.add_file(p);
    }
    let rd = std::fs::read_dir(p)
        .map_err(|e| TransportError::io(format!("reading {}", p.display()), e))?;
    let mut files: Vec<std::path::PathBuf> = rd
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.path())
        .take(4096)
        .collect();
    files.sort();
    for f in files {
        let _ = ring.add_file(&f);
    }
    Ok(())
}

/// The ed25519 keys trusted for `remote`.
pub fn remote_ed25519_trust(remote: &Remote) -> Result<Ed25519Trust> {
    let mut t = Ed25519Trust::new();
    if let Some(k) = &remote.ed25519_key {
        let k = sign::parse_candidate_key(k).map_err(|e| {
            TransportError::Config(format!(
                "remote '{}': verification-ed25519-key: {e}",
                remote.name
            ))
        })?;
        match k {
            Some(k) => t.add_trusted(k),
            None => t.add_unusable(),
        }
    }
    if let Some(f) = &remote.ed25519_file {
        t.add_trusted_file(Path::new(f))?;
    }
    // Revoked keys always come from the system directories; trusted ones
    // too when the remote names none.
    let mut sys = Ed25519Trust::new();
    sys.add_dirs(&sign::system_dirs())?;
    if t.is_empty() {
        Ok(sys)
    } else {
        t.add_revoked_from(&sys);
        Ok(t)
    }
}

/// The checks one remote asks for.
#[derive(Clone, Debug, Default)]
pub struct RemoteVerifier {
    remote: String,
    gpg_commits: bool,
    gpg_summary: bool,
    ed_commits: bool,
    ed_summary: bool,
    gpg: Keyring,
    /// signapi verifiers (ed25519, dummy) of commits and of the summary.
    commit_signers: Vec<Verifier>,
    summary_signers: Vec<Verifier>,
}

impl RemoteVerifier {
    /// Nothing to verify (e.g. `--no-gpg-verify` on an unsigned remote).
    pub fn none() -> Self {
        Self::default()
    }

    /// Load the keys `remote` needs; fails when it asks for verification
    /// and no key is available.
    pub fn for_remote(repo: &Repo, remote: &Remote) -> Result<Self> {
        let mut v = RemoteVerifier {
            remote: remote.name.clone(),
            gpg_commits: remote.gpg_verify,
            gpg_summary: remote.gpg_verify_summary,
            ed_commits: remote.sign_verify(),
            ed_summary: remote.sign_verify_summary(),
            ..Default::default()
        };
        let n = &remote.name;
        if v.gpg_commits || v.gpg_summary {
            v.gpg = remote_gpg_keyring(repo, remote)?;
            if v.gpg.is_empty() {
                return Err(TransportError::Signature(format!(
                    "remote '{n}' requires GPG signatures (gpg-verify{}), but no trusted GPG keys \
                     are available; import them with `oxtree remote gpg-import {n} -k KEYFILE`, \
                     or use `--no-gpg-verify`",
                    if v.gpg_summary && !v.gpg_commits {
                        "-summary"
                    } else {
                        ""
                    }
                )));
            }
        }
        if v.ed_commits {
            v.commit_signers = signapi::verifiers(remote, &remote.sign_verify_mode, || {
                remote_ed25519_trust(remote)
            })?;
        }
        if v.ed_summary {
            v.summary_signers =
                signapi::verifiers(remote, &remote.sign_verify_summary_mode, || {
                    remote_ed25519_trust(remote)
                })?;
        }
        Ok(v)
    }

    /// Only the summary checks of `remote` (for `remote summary|refs`).
    pub fn for_summary(repo: &Repo, remote: &Remote) -> Result<Self> {
        let mut r = remote.clone();
        r.gpg_verify = false;
        r.sign_verify_mode = crate::signapi::SignVerify::Off;
        Self::for_remote(repo, &r)
    }

    pub fn verifies_commits(&self) -> bool {
        self.gpg_commits || self.ed_commits
    }

    pub fn verifies_summary(&self) -> bool {
        self.gpg_summary || self.ed_summary
    }

    /// Check a commit's signatures (`commit` are its raw bytes).
    pub fn verify_commit(
        &self,
        csum: &Checksum,
        commit: &[u8],
        detached: Option<&Metadata>,
    ) -> Result<()> {
        let fail = |what: &str, e: TransportError| {
            TransportError::Signature(format!(
                "commit {csum} from remote '{}': {what} verification failed: {}",
                self.remote,
                Chain(&e)
            ))
        };
        let empty = Metadata::new();
        let md = detached.unwrap_or(&empty);
        if self.gpg_commits {
            let sigs = sign::signatures_in(md, GPG_KEY).map_err(|e| fail("GPG", e))?;
            if sigs.is_empty() {
                return Err(fail(
                    "GPG",
                    TransportError::Signature(
                        "GPG verification enabled, but no signatures found (use gpg-verify=false in remote config to disable)".into(),
                    ),
                ));
            }
            self.gpg.verify(commit, &sigs).map_err(|e| fail("GPG", e))?;
        }
        if self.ed_commits {
            signapi::verify_any(&self.commit_signers, commit, md)
                .map_err(|e| fail("signapi", e))?;
        }
        Ok(())
    }

    /// Check the ed25519 signatures a static delta superblock carries
    /// (`inner` is the signed superblock, `sigs` the signed container's
    /// `a{sv}`), when the remote verifies ed25519 signatures and the
    /// superblock has some: a bad or foreign signature refuses the delta.
    /// An unsigned superblock is accepted, as ostree does: the summary
    /// names its checksum and the commit's own signatures are checked.
    pub fn verify_delta_superblock(
        &self,
        delta: &str,
        inner: &[u8],
        sigs: Option<&Metadata>,
    ) -> Result<()> {
        let Some(md) = sigs.filter(|_| self.ed_commits) else {
            return Ok(());
        };
        let fail = |e: TransportError| {
            TransportError::Signature(format!(
                "static delta {delta} from remote '{}': superblock signature verification \
                 failed: {}",
                self.remote,
                Chain(&e)
            ))
        };
        if !signapi::has_signatures(&self.commit_signers, md).map_err(fail)? {
            return Ok(());
        }
        signapi::verify_any(&self.commit_signers, inner, md).map_err(fail)
    }

    /// Check `summary.sig` (`sig`, when the remote has one) over `summary`.
    pub fn verify_summary(&self, summary: &[u8], sig: Option<&[u8]>) -> Result<()> {
        if !self.verifies_summary() {
            return Ok(());
        }
        let n = &self.remote;
        let fail = |e: TransportError| {
            TransportError::Signature(format!(
                "summary of remote '{n}': signature verification failed: {}",
                Chain(&e)
            ))
        };
        let sig = sig.ok_or_else(|| {
            TransportError::Signature(format!(
                "remote '{n}' requires a signed summary, but it has no summary.sig"
            ))
        })?;
        // Bytes that are no `a{sv}` read as an empty one, as GVariant
        // does: no signatures.
        let md = Metadata::decode(sig).unwrap_or_default();
        if self.gpg_summary {
            let sigs = sign::signatures_in(&md, GPG_KEY).map_err(fail)?;
            self.gpg.verify(summary, &sigs).map_err(fail)?;
        }
        if self.ed_summary {
            signapi::verify_any(&self.summary_signers, summary, &md).map_err(fail)?;
        }
        Ok(())
    }
}

/// Add `sig` under `key` of the commit's detached metadata in `repo`
/// (creating it), keeping what is there.
pub fn append_commit_signature(
    repo: &Repo,
    commit: &Checksum,
    key: &str,
    sig: Vec<u8>,
    sync: bool,
) -> Result<()> {
    let mut md = repo.load_commitmeta(commit)?.unwrap_or_default();
    sign::append_signature(&mut md, key, sig)?;
    repo.write_detached_metadata_bytes(commit, &md.encode(), sync)?;
    Ok(())
}

/// Add `sig` under `key` of `summary.sig` in `repo`.
pub fn append_summary_signature(repo: &Repo, key: &str, sig: Vec<u8>) -> Result<()> {
    let dir = repo.dir();
    let mut md = match oxtree_repo::fsutil::read_at(dir, "summary.sig") {
        Ok(b) => Metadata::decode(&b).map_err(|e| TransportError::bad("summary.sig", e))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Metadata::new(),
        Err(e) => return Err(TransportError::io("reading summary.sig", e)),
    };
    sign::append_signature(&mut md, key, sig)?;
    oxtree_repo::fsutil::write_atomic_at(dir, "summary.sig", &md.encode(), true)
        .map_err(|e| TransportError::io("writing summary.sig", e))
}

/// The GPG signatures of a `summary.sig` (`sig`) over `summary`, each
/// checked against `ring` and described, for `remote summary`: a bad or unknown signature is a report, not an
/// error. Empty when `sig` holds no GPG signature (bytes that are no
/// `a{sv}` hold none).
pub fn describe_summary_signatures(
    ring: &Keyring,
    summary: &[u8],
    sig: &[u8],
) -> Result<Vec<gpg::SignatureReport>> {
    let md = Metadata::decode(sig).unwrap_or_default();
    let sigs = sign::signatures_in(&md, GPG_KEY)?;
    Ok(ring.describe(summary, &sigs))
}

//! ed25519 signatures of commits and summaries, as ostree's `sign` engine
//! `ed25519` makes them: a 64-byte signature over the raw commit variant
//! (or the raw `summary` file), appended to the `aay` under
//! `ostree.sign.ed25519` in the commit's detached metadata (or in
//! `summary.sig`).
//!
//! Keys are base64, one per line: a public key is 32 bytes, a secret key
//! 64 bytes (the seed followed by the public key). Without explicit keys,
//! trusted keys come from `trusted.ed25519` and `trusted.ed25519.d/*`, and
//! revoked ones from `revoked.ed25519` and `revoked.ed25519.d/*`, in each of
//! the system directories (`/etc/ostree`, `/usr/share/ostree`; the
//! environment variable `OXTREE_SIGN_DIRS`, a `:`-separated list, replaces
//! them, for tests and for unusual installs).

use crate::error::{Result, TransportError};
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use oxtree_object::gvariant::{Value, Variant};
use oxtree_object::Metadata;
use std::path::{Path, PathBuf};

/// Detached-metadata key of ed25519 signatures.
pub const ED25519_KEY: &str = "ostree.sign.ed25519";
/// Detached-metadata key of OpenPGP signatures.
pub const GPG_KEY: &str = "ostree.gpgsigs";

/// Signatures considered per metadata key (more are refused).
pub const MAX_SIGNATURES: usize = 256;
/// Largest single signature blob considered.
pub const MAX_SIGNATURE_SIZE: usize = 1 << 20;
/// Largest key file read.
pub const MAX_KEY_FILE_SIZE: u64 = 16 << 20;
/// Key files read from a `*.d` directory.
pub const MAX_DIR_ENTRIES: usize = 4096;

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

fn sig_err(reason: impl Into<String>) -> TransportError {
    TransportError::Signature(reason.into())
}

/// Read a (trusted, local) key file with a size bound.
pub fn read_key_file(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let f = std::fs::File::open(path)
        .map_err(|e| TransportError::io(format!("opening {}", path.display()), e))?;
    let mut v = Vec::new();
    f.take(MAX_KEY_FILE_SIZE + 1)
        .read_to_end(&mut v)
        .map_err(|e| TransportError::io(format!("reading {}", path.display()), e))?;
    if v.len() as u64 > MAX_KEY_FILE_SIZE {
        return Err(TransportError::Config(format!(
            "{}: key file larger than {MAX_KEY_FILE_SIZE} bytes",
            path.display()
        )));
    }
    Ok(v)
}

/// The non-empty, non-comment lines of a key file.
pub fn key_lines(text: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(text)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// A base64 secret key: 64 bytes, seed then public key.
pub fn parse_secret_key(b64text: &str) -> Result<SigningKey> {
    let raw = b64()
        .decode(b64text.trim())
        .map_err(|e| TransportError::Config(format!("ed25519 secret key: invalid base64: {e}")))?;
    let arr: [u8; 64] = raw.as_slice().try_into().map_err(|_| {
        TransportError::Config(format!(
            "ed25519 secret key: {} bytes, expected 64 (seed and public key)",
            raw.len()
        ))
    })?;
    SigningKey::from_keypair_bytes(&arr).map_err(|_| {
        TransportError::Config("ed25519 secret key: public half does not match the seed".into())
    })
}

/// A base64 public key of 32 bytes that may not be a curve point: such a
/// key can verify nothing, so (as ostree) it is skipped, not an error.
pub fn parse_candidate_key(b64text: &str) -> Result<Option<VerifyingKey>> {
    let raw = b64()
        .decode(b64text.trim())
        .map_err(|e| TransportError::Config(format!("ed25519 public key: invalid base64: {e}")))?;
    let arr: [u8; 32] = raw.as_slice().try_into().map_err(|_| {
        TransportError::Config(format!(
            "ed25519 public key: {} bytes, expected 32",
            raw.len()
        ))
    })?;
    Ok(VerifyingKey::from_bytes(&arr).ok())
}

/// A base64 public key: 32 bytes.
pub fn parse_public_key(b64text: &str) -> Result<VerifyingKey> {
    let raw = b64()
        .decode(b64text.trim())
        .map_err(|e| TransportError::Config(format!("ed25519 public key: invalid base64: {e}")))?;
    let arr: [u8; 32] = raw.as_slice().try_into().map_err(|_| {
        TransportError::Config(format!(
            "ed25519 public key: {} bytes, expected 32",
            raw.len()
        ))
    })?;
    VerifyingKey::from_bytes(&arr)
        .map_err(|_| TransportError::Config("ed25519 public key: not a valid point".into()))
}

/// Base64 text of a key pair, as ostree writes them: (secret, public).
pub fn encode_keypair(key: &SigningKey) -> (String, String) {
    (
        b64().encode(key.to_keypair_bytes()),
        b64().encode(key.verifying_key().to_bytes()),
    )
}

/// A new random key pair, base64: (secret, public).
pub fn generate_keypair() -> (String, String) {
    use rand::RngCore;
    let mut seed = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut seed);
    encode_keypair(&SigningKey::from_bytes(&seed))
}

/// The public key of a public or a secret key text.
pub fn public_of_text(text: &str) -> Result<VerifyingKey> {
    match parse_public_key(text) {
        Ok(k) => Ok(k),
        Err(_) => Ok(parse_secret_key(text)?.verifying_key()),
    }
}

/// Public key (base64) of a public key.
pub fn encode_public(key: &VerifyingKey) -> String {
    b64().encode(key.to_bytes())
}

/// Sign `data` (raw commit or summary bytes).
pub fn sign_data(key: &SigningKey, data: &[u8]) -> Vec<u8> {
    key.sign(data).to_bytes().to_vec()
}

/// The system key directories (`OXTREE_SIGN_DIRS` overrides).
pub fn system_dirs() -> Vec<PathBuf> {
    match std::env::var_os("OXTREE_SIGN_DIRS") {
        Some(v) => std::env::split_paths(&v)
            .filter(|p| !p.as_os_str().is_empty())
            .collect(),
        None => vec![
            PathBuf::from("/etc/ostree"),
            PathBuf::from("/usr/share/ostree"),
        ],
    }
}

/// Trusted and revoked ed25519 public keys.
#[derive(Clone, Debug, Default)]
pub struct Ed25519Trust {
    trusted: Vec<VerifyingKey>,
    revoked: Vec<[u8; 32]>,
    /// Trusted keys that are no curve point, skipped.
    unusable: usize,
}

impl Ed25519Trust {
    pub fn new() -> Self {
        Self::default()
    }

    /// A trusted key that is no curve point (it verifies nothing).
    pub fn add_unusable(&mut self) {
        self.unusable += 1;
    }

    pub fn is_empty(&self) -> bool {
        self.trusted.is_empty() && self.unusable == 0
    }

    pub fn add_trusted(&mut self, key: VerifyingKey) {
        self.trusted.push(key);
    }

    pub fn add_revoked(&mut self, key: VerifyingKey) {
        self.revoked.push(key.to_bytes());
    }

    /// Take over the revoked keys of `other`.
    pub fn add_revoked_from(&mut self, other: &Ed25519Trust) {
        self.revoked.extend_from_slice(&other.revoked);
    }

    /// Add every key of a key file (one base64 public key per line).
    pub fn add_trusted_file(&mut self, path: &Path) -> Result<()> {
        for l in key_lines(&read_key_file(path)?) {
            let k = parse_candidate_key(&l)
                .map_err(|e| TransportError::Config(format!("{}: {e}", path.display())))?;
            match k {
                Some(k) => self.add_trusted(k),
                None => self.unusable += 1,
            }
        }
        Ok(())
    }

    fn add_revoked_file(&mut self, path: &Path) -> Result<()> {
        for l in key_lines(&read_key_file(path)?) {
            let k = parse_public_key(&l)
                .map_err(|e| TransportError::Config(format!("{}: {e}", path.display())))?;
            self.add_revoked(k);
        }
        Ok(())
    }

    /// Keys from `DIR/{trusted,revoked}.ed25519` and `….d/*` of each dir.
    /// Missing files and directories are skipped.
    pub fn add_dirs(&mut self, dirs: &[PathBuf]) -> Result<()> {
        for d in dirs {
            for (base, revoked) in [("trusted.ed25519", false), ("revoked.ed25519", true)] {
                let mut files = Vec::new();
                let single = d.join(base);
                if single.is_file() {
                    files.push(single);
                }
                if let Ok(rd) = std::fs::read_dir(d.join(format!("{base}.d"))) {
                    let mut names: Vec<PathBuf> = rd
                        .filter_map(|e| e.ok())
                        .map(|e| e.path())
                        .filter(|p| p.is_file())
                        .take(MAX_DIR_ENTRIES)
                        .collect();
                    names.sort();
                    files.extend(names);
                }
                for f in files {
                    if revoked {
                        self.add_revoked_file(&f)?;
                    } else {
                        self.add_trusted_file(&f)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Succeeds when one of `sigs` is a valid signature of `data` by a
    /// trusted, unrevoked key; returns that key (base64).
    pub fn verify(&self, data: &[u8], sigs: &[Vec<u8>]) -> Result<String> {
        let usable: Vec<&VerifyingKey> = self
            .trusted
            .iter()
            .filter(|k| !self.revoked.contains(&k.to_bytes()))
            .collect();
        if usable.is_empty() && self.unusable == 0 {
            return Err(sig_err(
                "ed25519: no trusted public keys to verify with (all missing or revoked)",
            ));
        }
        if sigs.is_empty() {
            return Err(sig_err("ed25519: no signatures found"));
        }
        for s in sigs {
            let Ok(arr) = <[u8; 64]>::try_from(s.as_slice()) else {
                continue;
            };
            let sig = Signature::from_bytes(&arr);
            for k in &usable {
                if k.verify_strict(data, &sig).is_ok() {
                    return Ok(encode_public(k));
                }
            }
        }
        // ostree's wording, which scripts match.
        let tried = usable.len() + self.unusable;
        let why = format!(
            "none of the {} signature(s) is valid for the {} trusted key(s){}",
            sigs.len(),
            usable.len(),
            if self.unusable > 0 {
                format!(", {} not a valid point", self.unusable)
            } else {
                String::new()
            }
        );
        Err(sig_err(if tried == 1 {
            let key = usable
                .first()
                .map(|k| encode_public(k))
                .unwrap_or_else(|| "(not a valid ed25519 point)".into());
            format!("ed25519: Signature couldn't be verified with: key {key} ({why})")
        } else {
            format!("ed25519: Signature couldn't be verified; tried {tried} keys ({why})")
        }))
    }
}

/// The byte strings of an `aay` value (bounded in count and size).
pub fn byte_strings(value: &Value, what: &str) -> Result<Vec<Vec<u8>>> {
    let Value::Array(_, outer) = value else {
        return Err(sig_err(format!("{what}: expected type aay")));
    };
    if outer.len() > MAX_SIGNATURES {
        return Err(sig_err(format!(
            "{what}: {} signatures, more than the {MAX_SIGNATURES} accepted",
            outer.len()
        )));
    }
    let mut out = Vec::with_capacity(outer.len());
    for item in outer {
        let Value::Bytes(b) = item else {
            return Err(sig_err(format!("{what}: expected type aay")));
        };
        if b.len() > MAX_SIGNATURE_SIZE {
            return Err(sig_err(format!(
                "{what}: a signature of {} bytes exceeds {MAX_SIGNATURE_SIZE}",
                b.len()
            )));
        }
        out.push(b.clone());
    }
    Ok(out)
}

/// The detached-metadata key of ostree's `dummy` signatures.
pub const DUMMY_KEY: &str = "ostree.sign.dummy";

/// ostree's `dummy` sign type, for test suites only: the "signature" is the
/// key text itself, so it proves nothing. Callers must gate it (ostree and
/// oxtree require OSTREE_DUMMY_SIGN_ENABLED for verification).
pub fn dummy_sign(key: &str) -> Vec<u8> {
    key.as_bytes().to_vec()
}

/// The key of the first dummy signature equal to one of `keys`. Errors
/// in ostree's words.
pub fn dummy_verify<'k>(keys: &'k [String], sigs: &[Vec<u8>]) -> Result<&'k str> {
    if keys.is_empty() {
        return Err(sig_err("No keys found for required signapi type dummy"));
    }
    if sigs.is_empty() {
        return Err(sig_err("signature: dummy: no signatures"));
    }
    keys.iter()
        .find(|k| sigs.iter().any(|s| s.as_slice() == k.as_bytes()))
        .map(String::as_str)
        .ok_or_else(|| {
            sig_err(format!(
                "signature: dummy: incorrect signatures found: {}",
                sigs.len()
            ))
        })
}

/// The signatures stored under `key` (empty when absent).
pub fn signatures_in(md: &Metadata, key: &str) -> Result<Vec<Vec<u8>>> {
    match md.get(key) {
        None => Ok(Vec::new()),
        Some(v) => byte_strings(v, key),
    }
}

/// Append `sig` to the `aay` under `key`, keeping earlier signatures.
pub fn append_signature(md: &mut Metadata, key: &str, sig: Vec<u8>) -> Result<()> {
    let mut all = signatures_in(md, key)?;
    all.push(sig);
    md.set(key, all.to_value());
    Ok(())
}

/// Replace the signatures under `key` (removing the key when empty).
pub fn set_signatures(md: &mut Metadata, key: &str, sigs: Vec<Vec<u8>>) {
    if sigs.is_empty() {
        md.remove(key);
    } else {
        md.set(key, sigs.to_value());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    #[test]
    fn key_text_round_trip_and_verify() {
        let k = key(7);
        let (sec, public) = encode_keypair(&k);
        assert_eq!(parse_secret_key(&sec).unwrap().to_bytes(), k.to_bytes());
        let pk = parse_public_key(&public).unwrap();
        assert!(parse_public_key(&sec).is_err());
        assert!(parse_secret_key(&public).is_err());
        assert!(parse_public_key("!!").is_err());

        let data = b"commit bytes";
        let sig = sign_data(&k, data);
        let mut md = Metadata::new();
        append_signature(&mut md, ED25519_KEY, vec![1, 2, 3]).unwrap();
        append_signature(&mut md, ED25519_KEY, sig.clone()).unwrap();
        let md = Metadata::decode(&md.encode()).unwrap();
        let sigs = signatures_in(&md, ED25519_KEY).unwrap();
        assert_eq!(sigs, vec![vec![1, 2, 3], sig.clone()]);

        let mut t = Ed25519Trust::new();
        assert!(t.verify(data, &sigs).is_err());
        t.add_trusted(key(8).verifying_key());
        assert!(t.verify(data, &sigs).is_err());
        t.add_trusted(pk);
        assert_eq!(t.verify(data, &sigs).unwrap(), public);
        assert!(t.verify(b"other", &sigs).is_err());
        t.add_revoked(pk);
        assert!(t.verify(data, &sigs).is_err());
    }

    #[test]
    fn wrong_types_are_errors() {
        let mut md = Metadata::new();
        md.set_str(ED25519_KEY, "x");
        assert!(signatures_in(&md, ED25519_KEY).is_err());
        assert!(signatures_in(&Metadata::new(), ED25519_KEY)
            .unwrap()
            .is_empty());
    }
}

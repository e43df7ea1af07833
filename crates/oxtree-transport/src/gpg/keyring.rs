//! Trusted keys: OpenPGP public keyrings (binary or armored, GnuPG 1's
//! trust packets dropped) gathered into a [`Keyring`], secret keys read
//! from key files, and keys picked by id or fingerprint.

use super::fingerprint_hex;
use crate::error::{Result, TransportError};
use crate::sign::{read_key_file, MAX_DIR_ENTRIES};
use pgp::composed::{Deserializable, SignedPublicKey, SignedSecretKey};
use pgp::ser::Serialize;
use pgp::types::KeyDetails;
use std::io::Cursor;
use std::path::{Path, PathBuf};

/// Read secret keys from a file and pick those named by `ids`.
pub fn load_secret_keys(path: &Path, ids: &[String]) -> Result<Vec<SignedSecretKey>> {
    let bytes = read_key_file(path)?;
    let keys = parse_secret_keys(&bytes)
        .map_err(|e| TransportError::Config(format!("{}: {e}", path.display())))?;
    select_secret_keys(keys, ids)
}

/// Keys accepted from one keyring file or import.
pub const MAX_KEYS: usize = 10_000;

/// The message of a config error without its prefix.
fn strip_config(e: &TransportError) -> String {
    match e {
        TransportError::Config(m) => m.clone(),
        other => other.to_string(),
    }
}

/// Parse OpenPGP public keys (binary or ASCII-armored, any number; also
/// several armored blocks one after another, as `cat a.asc b.asc` gives).
pub fn parse_public_keys(bytes: &[u8]) -> Result<Vec<SignedPublicKey>> {
    const BEGIN: &[u8] = b"-----BEGIN PGP PUBLIC KEY BLOCK-----";
    let starts: Vec<usize> = bytes
        .windows(BEGIN.len())
        .enumerate()
        .filter(|(_, w)| *w == BEGIN)
        .map(|(i, _)| i)
        .collect();
    if starts.len() > 1 {
        let mut out = Vec::new();
        for (n, &s) in starts.iter().enumerate() {
            let end = starts.get(n + 1).copied().unwrap_or(bytes.len());
            out.extend(parse_public_keys_one(&bytes[s..end])?);
            if out.len() > MAX_KEYS {
                return Err(TransportError::Config(format!(
                    "more than {MAX_KEYS} OpenPGP keys"
                )));
            }
        }
        return Ok(out);
    }
    parse_public_keys_one(bytes)
}

/// A binary keyring without its trust packets (tag 12), which GnuPG 1's
/// `pubring.gpg` keeps after each packet and which are local bookkeeping,
/// not part of the keys; the key parser stops short of a key's subkeys
/// on them. Armored input, and anything that does not parse as packets,
/// is returned as is.
fn without_trust_packets(bytes: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    let mut dropped = false;
    while i < bytes.len() {
        let h = bytes[i];
        if h & 0x80 == 0 {
            return std::borrow::Cow::Borrowed(bytes);
        }
        let (tag, len, hdr) = if h & 0x40 != 0 {
            // New format: one-, two- or five-octet lengths (partial
            // lengths only occur in data packets, never in keyrings).
            let tag = h & 0x3f;
            let Some(&l0) = bytes.get(i + 1) else {
                return std::borrow::Cow::Borrowed(bytes);
            };
            match l0 {
                0..=191 => (tag, usize::from(l0), 2),
                192..=223 => {
                    let Some(&l1) = bytes.get(i + 2) else {
                        return std::borrow::Cow::Borrowed(bytes);
                    };
                    (
                        tag,
                        ((usize::from(l0) - 192) << 8) + usize::from(l1) + 192,
                        3,
                    )
                }
                255 => {
                    let Some(b) = bytes.get(i + 2..i + 6) else {
                        return std::borrow::Cow::Borrowed(bytes);
                    };
                    (
                        tag,
                        u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize,
                        6,
                    )
                }
                _ => return std::borrow::Cow::Borrowed(bytes),
            }
        } else {
            let tag = (h >> 2) & 0x0f;
            let n = match h & 3 {
                0 => 1,
                1 => 2,
                2 => 4,
                _ => return std::borrow::Cow::Borrowed(bytes),
            };
            let Some(b) = bytes.get(i + 1..i + 1 + n) else {
                return std::borrow::Cow::Borrowed(bytes);
            };
            let len = b.iter().fold(0usize, |a, x| (a << 8) | usize::from(*x));
            (tag, len, 1 + n)
        };
        let end = i + hdr + len;
        if end > bytes.len() {
            return std::borrow::Cow::Borrowed(bytes);
        }
        if tag == 12 {
            dropped = true;
        } else {
            out.extend_from_slice(&bytes[i..end]);
        }
        i = end;
    }
    if dropped {
        std::borrow::Cow::Owned(out)
    } else {
        std::borrow::Cow::Borrowed(bytes)
    }
}

fn parse_public_keys_one(bytes: &[u8]) -> Result<Vec<SignedPublicKey>> {
    let bytes = &*without_trust_packets(bytes);
    let (iter, _) = SignedPublicKey::from_reader_many(Cursor::new(bytes))
        .map_err(|e| TransportError::Config(format!("reading OpenPGP keys: {e}")))?;
    let mut out = Vec::new();
    for k in iter {
        let k = k.map_err(|e| TransportError::Config(format!("reading OpenPGP keys: {e}")))?;
        if out.len() >= MAX_KEYS {
            return Err(TransportError::Config(format!(
                "more than {MAX_KEYS} OpenPGP keys"
            )));
        }
        out.push(k);
    }
    Ok(out)
}

/// Parse OpenPGP secret keys (binary or ASCII-armored).
pub fn parse_secret_keys(bytes: &[u8]) -> Result<Vec<SignedSecretKey>> {
    let (iter, _) = SignedSecretKey::from_reader_many(Cursor::new(bytes))
        .map_err(|e| TransportError::Config(format!("reading OpenPGP secret keys: {e}")))?;
    let mut out = Vec::new();
    for k in iter {
        let k =
            k.map_err(|e| TransportError::Config(format!("reading OpenPGP secret keys: {e}")))?;
        if out.len() >= MAX_KEYS {
            return Err(TransportError::Config(format!(
                "more than {MAX_KEYS} OpenPGP keys"
            )));
        }
        out.push(k);
    }
    if out.is_empty() {
        return Err(TransportError::Config(
            "no OpenPGP secret key found (export one with `gpg --export-secret-keys --armor KEYID`)"
                .into(),
        ));
    }
    Ok(out)
}

/// True when `id` (hex key id or fingerprint, any case, optional `0x`)
/// names `fpr` (upper-case hex fingerprint): a suffix match, like gpg.
pub fn key_id_matches(id: &str, fpr: &str) -> bool {
    let id = id.trim().trim_start_matches("0x").to_ascii_uppercase();
    id.len() >= 8 && fpr.ends_with(&id)
}

/// A set of trusted OpenPGP public keys.
#[derive(Clone, Debug, Default)]
pub struct Keyring {
    pub(super) keys: Vec<SignedPublicKey>,
}

impl Keyring {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn from_keys(keys: Vec<SignedPublicKey>) -> Self {
        Keyring { keys }
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn keys(&self) -> &[SignedPublicKey] {
        &self.keys
    }

    /// Add keys; a key already present (same fingerprint) is replaced.
    /// Returns how many keys were new.
    pub fn merge(&mut self, keys: Vec<SignedPublicKey>) -> usize {
        let mut new = 0;
        for k in keys {
            let f = k.primary_key.fingerprint();
            match self
                .keys
                .iter_mut()
                .find(|x| x.primary_key.fingerprint() == f)
            {
                Some(slot) => *slot = k,
                None => {
                    self.keys.push(k);
                    new += 1;
                }
            }
        }
        new
    }

    /// Add the keys of a keyring file (binary or armored).
    pub fn add_file(&mut self, path: &Path) -> Result<()> {
        let bytes = read_key_file(path)?;
        let keys = parse_public_keys(&bytes).map_err(|e| {
            TransportError::Config(format!("keyring {}: {}", path.display(), strip_config(&e)))
        })?;
        self.merge(keys);
        Ok(())
    }

    /// Add every `*.gpg` file of a directory (sorted), like ostree's
    /// keyring directories.
    pub fn add_dir(&mut self, dir: &Path) -> Result<()> {
        let rd = match std::fs::read_dir(dir) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(TransportError::io(format!("reading {}", dir.display()), e)),
        };
        let mut files: Vec<PathBuf> = rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            // GnuPG's trust database and secret keyring are no keyrings
            // of public keys (ostree skips them too).
            .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "gpg"))
            .filter(|p| {
                !p.file_name()
                    .is_some_and(|n| n == "trustdb.gpg" || n == "secring.gpg")
            })
            .take(MAX_DIR_ENTRIES)
            .collect();
        files.sort();
        for f in files {
            self.add_file(&f)?;
        }
        Ok(())
    }

    /// A binary keyring (concatenated transferable public keys).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        for k in &self.keys {
            k.to_writer(&mut out)
                .map_err(|e| TransportError::Config(format!("serializing a key: {e}")))?;
        }
        Ok(out)
    }
}

/// The keys named by `ids` (all when `ids` is empty), an id matching the
/// primary key or a subkey (by `fingerprints`); an id matching no key is
/// an error (`no {what} '{id}' in {place}`).
fn select_keys<K: Clone>(
    keys: Vec<K>,
    ids: &[String],
    fingerprints: impl Fn(&K) -> Vec<String>,
    what: &str,
    place: &str,
) -> Result<Vec<K>> {
    if ids.is_empty() {
        return Ok(keys);
    }
    let mut out = Vec::new();
    for id in ids {
        let k = keys
            .iter()
            .find(|k| fingerprints(k).iter().any(|f| key_id_matches(id, f)))
            .ok_or_else(|| TransportError::Config(format!("no {what} '{id}' in {place}")))?;
        out.push(k.clone());
    }
    Ok(out)
}

/// Pick the secret keys named by `ids` (all when `ids` is empty).
pub fn select_secret_keys(
    keys: Vec<SignedSecretKey>,
    ids: &[String],
) -> Result<Vec<SignedSecretKey>> {
    let fprs = |k: &SignedSecretKey| {
        std::iter::once(fingerprint_hex(&k.primary_key))
            .chain(k.secret_subkeys.iter().map(|s| fingerprint_hex(&s.key)))
            .collect()
    };
    select_keys(keys, ids, fprs, "secret key", "the key file")
}

/// Pick the public keys named by `ids` (all when empty).
pub fn select_public_keys(
    keys: Vec<SignedPublicKey>,
    ids: &[String],
) -> Result<Vec<SignedPublicKey>> {
    let fprs = |k: &SignedPublicKey| {
        std::iter::once(fingerprint_hex(&k.primary_key))
            .chain(k.public_subkeys.iter().map(|s| fingerprint_hex(&s.key)))
            .collect()
    };
    select_keys(keys, ids, fprs, "key", "the input")
}

/// Verify each key's self-signatures (a key failing them is refused at
/// import, as gpg would not use it).
pub fn check_keys(keys: &[SignedPublicKey]) -> Result<()> {
    for k in keys {
        k.verify_bindings().map_err(|e| {
            TransportError::Config(format!(
                "key {}: invalid self-signatures: {e}",
                fingerprint_hex(&k.primary_key)
            ))
        })?;
    }
    Ok(())
}

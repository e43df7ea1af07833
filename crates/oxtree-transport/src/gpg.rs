//! OpenPGP signatures of commits and summaries, as ostree (through gpgme)
//! makes and checks them: detached binary signatures over the raw commit
//! variant (or the raw `summary` file), collected in the `aay` under
//! `ostree.gpgsigs` of the detached metadata (or of `summary.sig`).
//!
//! Trusted keys are plain OpenPGP keyrings (binary, or ASCII-armored when
//! read): per remote `REPO/NAME.trustedkeys.gpg` (what `remote gpg-import`
//! writes, like ostree), the remote's `gpgkeypath` files and directories,
//! and, for a remote with neither, `trusted.gpg.d/` of the system key
//! directories (see [`crate::sign::system_dirs`]).
//!
//! A signature counts when it verifies against a key of the keyring (the
//! primary key or a signing subkey with a valid binding), the key is not
//! revoked or expired, and the signature itself has not expired. A commit
//! needs at least one such signature; others (unknown keys) are ignored,
//! as gpgme-based ostree does.
//!
//! Signing ([`GpgSigner`]) uses either an OpenPGP secret key read from a
//! file (`gpg --export-secret-keys`; a protected key is unlocked with a
//! passphrase), signed here with rPGP, or — for keys kept in a GnuPG home
//! directory, as ostree (gpgme) uses them — GnuPG itself through `gpg
//! --detach-sign`: GnuPG ≥ 2.1 keeps secret keys inside gpg-agent's own
//! store, which only gpg-agent should read.

use crate::error::{Result, TransportError};
use crate::sign::{read_key_file, MAX_DIR_ENTRIES};
use pgp::composed::{Deserializable, DetachedSignature, SignedPublicKey, SignedSecretKey};
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::{Signature, SignatureType};
use pgp::ser::Serialize;
use pgp::types::{KeyDetails, Password, Timestamp};
use std::io::Cursor;
use std::path::{Path, PathBuf};

pub use pgp::composed::SignedSecretKey as SecretKey;

/// Read secret keys from a file and pick those named by `ids`.
pub fn load_secret_keys(path: &Path, ids: &[String]) -> Result<Vec<SignedSecretKey>> {
    let bytes = read_key_file(path)?;
    let keys = parse_secret_keys(&bytes)
        .map_err(|e| TransportError::Config(format!("{}: {e}", path.display())))?;
    select_secret_keys(keys, ids)
}

/// Keys accepted from one keyring file or import.
pub const MAX_KEYS: usize = 10_000;

fn sig_err(reason: impl Into<String>) -> TransportError {
    TransportError::Signature(reason.into())
}

fn hex_upper(b: &[u8]) -> String {
    hex::encode_upper(b)
}

/// The message of a config error without its prefix.
fn strip_config(e: &TransportError) -> String {
    match e {
        TransportError::Config(m) => m.clone(),
        other => other.to_string(),
    }
}

/// Fingerprint of a key, upper-case hex (as gpg prints it).
pub fn fingerprint_hex(k: &impl KeyDetails) -> String {
    hex_upper(k.fingerprint().as_bytes())
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
    keys: Vec<SignedPublicKey>,
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

    /// Every signature in `sig_blobs` over `data`, checked against these
    /// keys, for display (`show`, `admin status`): unlike [`Self::verify`]
    /// a bad or unknown signature is a result, not an error.
    pub fn describe(&self, data: &[u8], sig_blobs: &[Vec<u8>]) -> Vec<SignatureReport> {
        let now = Timestamp::now().as_secs();
        let mut out = Vec::new();
        for blob in sig_blobs {
            let Ok(sigs) = parse_signatures(blob) else {
                continue;
            };
            for sig in &sigs {
                out.push(self.report_one(sig, data, now));
            }
        }
        out
    }

    fn report_one(&self, sig: &Signature, data: &[u8], now: u32) -> SignatureReport {
        let issuer = sig
            .issuer_fingerprint()
            .first()
            .map(|f| hex_upper(f.as_bytes()))
            .or_else(|| sig.issuer_key_id().first().map(|k| hex_upper(k.as_ref())))
            .unwrap_or_default();
        let created = sig.created().map(|t| u64::from(t.as_secs())).unwrap_or(0);
        let sig_expires = match (sig.created(), sig.signature_expiration_time()) {
            (Some(c), Some(e)) if e.as_secs() != 0 => {
                Some(u64::from(c.as_secs()) + u64::from(e.as_secs()))
            }
            _ => None,
        };
        let mut r = SignatureReport {
            created,
            algorithm: algorithm_name(sig),
            fingerprint: issuer.clone(),
            primary_fingerprint: None,
            user: None,
            status: SignatureStatus::KeyMissing,
            expires: sig_expires,
            key_expires: None,
            primary_expires: None,
        };
        for k in &self.keys {
            for (signer, fpr) in signing_keys(k) {
                let ours = !issuer.is_empty() && fpr.ends_with(&issuer);
                let good = signer.verify_signature(sig, data).is_ok();
                if !ours && !good {
                    continue;
                }
                let primary = fingerprint_hex(&k.primary_key);
                r.fingerprint = fpr.clone();
                r.primary_fingerprint = Some(primary);
                r.user = k
                    .details
                    .users
                    .first()
                    .map(|u| String::from_utf8_lossy(u.id.id()).into_owned());
                let primary_expires = key_expiry(k);
                // The signing key's own expiry: a subkey's from its
                // binding, the primary's otherwise.
                r.key_expires = match k
                    .public_subkeys
                    .iter()
                    .find(|sk| fingerprint_hex(&sk.key) == fpr)
                {
                    Some(sk) => {
                        let created = u64::from(sk.key.created_at().as_secs());
                        sk.signatures
                            .iter()
                            .filter_map(|s| s.key_expiration_time().map(|d| d.as_secs()))
                            .find(|d| *d != 0)
                            .map(|d| created + u64::from(d))
                    }
                    None => primary_expires,
                };
                if r.primary_fingerprint.as_deref() != Some(fpr.as_str()) {
                    r.primary_expires = primary_expires;
                }
                let expired = |t: Option<u64>| t.is_some_and(|e| e <= u64::from(now));
                r.status = if !good {
                    SignatureStatus::Bad
                } else if is_revoked(k) {
                    SignatureStatus::KeyRevoked
                } else if expired(sig_expires) {
                    SignatureStatus::Expired
                } else if expired(r.key_expires) || expired(primary_expires) {
                    SignatureStatus::KeyExpired
                } else {
                    SignatureStatus::Good
                };
                return r;
            }
        }
        r
    }

    /// Verify `sig_blobs` (each one or more binary signature packets) over
    /// `data`; succeeds with the first good signature.
    pub fn verify(&self, data: &[u8], sig_blobs: &[Vec<u8>]) -> Result<GoodSignature> {
        if self.keys.is_empty() {
            return Err(sig_err("GPG: no trusted keys to verify with"));
        }
        let mut sigs: Vec<Signature> = Vec::new();
        let mut malformed = 0usize;
        for blob in sig_blobs {
            match parse_signatures(blob) {
                Ok(s) => sigs.extend(s),
                Err(_) => malformed += 1,
            }
        }
        if sigs.is_empty() {
            return Err(sig_err(if malformed > 0 {
                format!("GPG: {malformed} malformed signature(s) and no valid one")
            } else {
                "GPG: no signatures found".to_string()
            }));
        }
        let now = Timestamp::now().as_secs();
        let mut reasons: Vec<String> = Vec::new();
        for sig in &sigs {
            match self.check_one(sig, data, now) {
                Ok(g) => return Ok(g),
                Err(r) => reasons.push(r),
            }
        }
        reasons.dedup();
        Err(sig_err(format!(
            "GPG: none of the {} signature(s) is valid: {}",
            sigs.len() + malformed,
            reasons.join("; ")
        )))
    }

    fn check_one(
        &self,
        sig: &Signature,
        data: &[u8],
        now: u32,
    ) -> std::result::Result<GoodSignature, String> {
        if !matches!(sig.typ(), Some(SignatureType::Binary | SignatureType::Text)) {
            return Err(format!(
                "signature of type {:?} is not a data signature",
                sig.typ()
            ));
        }
        let issuer = sig
            .issuer_fingerprint()
            .first()
            .map(|f| hex_upper(f.as_bytes()))
            .or_else(|| sig.issuer_key_id().first().map(|k| hex_upper(k.as_ref())))
            .unwrap_or_else(|| "unknown".into());
        if let (Some(c), Some(e)) = (sig.created(), sig.signature_expiration_time()) {
            if e.as_secs() != 0 && u64::from(c.as_secs()) + u64::from(e.as_secs()) <= u64::from(now)
            {
                return Err(format!("Signature expired: signature by {issuer}"));
            }
        }
        for k in &self.keys {
            for (signer, fpr) in signing_keys(k) {
                if signer.verify_signature(sig, data).is_err() {
                    continue;
                }
                let primary = fingerprint_hex(&k.primary_key);
                if is_revoked(k) {
                    return Err(format!("Key revoked: key {primary}"));
                }
                if let Some(exp) = key_expiry(k) {
                    if exp <= u64::from(now) {
                        return Err(format!("Key expired: key {primary}"));
                    }
                }
                return Ok(GoodSignature {
                    key_fingerprint: primary,
                    signing_fingerprint: fpr,
                    created: sig.created().map(|t| t.as_secs()),
                });
            }
        }
        // gpgme's (and so ostree's) words when no trusted key has the
        // signer's id, which scripts match; otherwise a key of that id
        // was there but the signature is bad.
        let known = self.keys.iter().find(|k| {
            signing_keys(k)
                .into_iter()
                .any(|(_, fpr)| issuer != "unknown" && fpr.ends_with(&issuer))
        });
        let Some(k) = known else {
            return Err(format!(
                "signature by key {issuer} does not verify against any trusted key: public key not found"
            ));
        };
        // gpgme's words for it, as ostree reports them.
        let user = k
            .details
            .users
            .first()
            .map(|u| String::from_utf8_lossy(u.id.id()).into_owned());
        Err(format!(
            "signature by key {issuer} does not verify: BAD signature from \"{}\"",
            name_and_email(user.as_deref())
        ))
    }
}

/// A key that can verify: the primary or a bound signing subkey.
enum Signer<'a> {
    Primary(&'a pgp::packet::PublicKey),
    Sub(&'a pgp::packet::PublicSubkey),
}

impl Signer<'_> {
    fn verify_signature(&self, sig: &Signature, data: &[u8]) -> pgp::errors::Result<()> {
        match self {
            Signer::Primary(k) => sig.verify(*k, data),
            Signer::Sub(k) => sig.verify(*k, data),
        }
    }
}

fn signing_keys(k: &SignedPublicKey) -> Vec<(Signer<'_>, String)> {
    let mut v = vec![(
        Signer::Primary(&k.primary_key),
        fingerprint_hex(&k.primary_key),
    )];
    for sk in &k.public_subkeys {
        let signs = sk.signatures.iter().any(|s| s.key_flags().sign());
        if signs && sk.verify_bindings(&k.primary_key).is_ok() {
            v.push((Signer::Sub(&sk.key), fingerprint_hex(&sk.key)));
        }
    }
    v
}

/// What `remote gpg-list-keys` shows of a key, as ostree lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    pub fingerprint: String,
    /// Seconds since the epoch.
    pub created: u64,
    pub expires: Option<u64>,
    pub revoked: bool,
    /// User IDs, each with whether it was revoked.
    pub uids: Vec<(String, bool)>,
    pub subkeys: Vec<SubkeyInfo>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubkeyInfo {
    pub fingerprint: String,
    pub created: u64,
    pub expires: Option<u64>,
    pub revoked: bool,
}

/// Describe `k` for listing.
pub fn key_info(k: &SignedPublicKey) -> KeyInfo {
    let revoked = is_revoked(k);
    let uids = k
        .details
        .users
        .iter()
        .map(|u| {
            let r = u
                .signatures
                .iter()
                .any(|s| s.typ() == Some(SignatureType::CertRevocation));
            (
                String::from_utf8_lossy(u.id.id()).into_owned(),
                r || revoked,
            )
        })
        .collect();
    let subkeys = k
        .public_subkeys
        .iter()
        .map(|sk| {
            let created = u64::from(sk.key.created_at().as_secs());
            let expires = sk
                .signatures
                .iter()
                .filter_map(|s| s.key_expiration_time().map(|d| d.as_secs()))
                .find(|d| *d != 0)
                .map(|d| created + u64::from(d));
            let r = sk
                .signatures
                .iter()
                .any(|s| s.typ() == Some(SignatureType::SubkeyRevocation));
            SubkeyInfo {
                fingerprint: fingerprint_hex(&sk.key),
                created,
                expires,
                revoked: r || revoked,
            }
        })
        .collect();
    KeyInfo {
        fingerprint: fingerprint_hex(&k.primary_key),
        created: u64::from(k.primary_key.created_at().as_secs()),
        expires: key_expiry(k),
        revoked,
        uids,
        subkeys,
    }
}

/// The Web Key Directory addresses of `email` (advanced, direct), as
/// ostree prints them: the local part's SHA-1 in z-base-32.
pub fn wkd_urls(email: &str) -> Option<(String, String)> {
    use sha1::{Digest, Sha1};
    let (local, domain) = email.rsplit_once('@')?;
    let digest = Sha1::digest(local.to_lowercase().as_bytes());
    const ALPHABET: &[u8; 32] = b"ybndrfg8ejkmcpqxot1uwisza345h769";
    let mut hash = String::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for b in digest.iter() {
        acc = (acc << 8) | u32::from(*b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            hash.push(ALPHABET[((acc >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        hash.push(ALPHABET[((acc << (5 - bits)) & 31) as usize] as char);
    }
    let domain = domain.to_lowercase();
    Some((
        format!("https://openpgpkey.{domain}/.well-known/openpgpkey/{domain}/hu/{hash}?l={local}"),
        format!("https://{domain}/.well-known/openpgpkey/hu/{hash}?l={local}"),
    ))
}

fn is_revoked(k: &SignedPublicKey) -> bool {
    k.details
        .revocation_signatures
        .iter()
        .any(|s| s.verify_key(&k.primary_key).is_ok())
}

/// Expiry (seconds since the epoch) of the primary key, from its newest
/// valid self-signature that says.
fn key_expiry(k: &SignedPublicKey) -> Option<u64> {
    let created = u64::from(k.primary_key.created_at().as_secs());
    let mut best: Option<(u32, Option<u32>)> = None;
    for u in &k.details.users {
        for s in &u.signatures {
            if s.verify_certification(&k.primary_key, pgp::types::Tag::UserId, &u.id)
                .is_err()
            {
                continue;
            }
            let t = s.created().map(|t| t.as_secs()).unwrap_or(0);
            if best.is_none_or(|(bt, _)| t >= bt) {
                best = Some((t, s.key_expiration_time().map(|d| d.as_secs())));
            }
        }
    }
    match best {
        Some((_, Some(d))) if d != 0 => Some(created + u64::from(d)),
        _ => None,
    }
}

/// What a signature check found (see [`Keyring::describe`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignatureStatus {
    Good,
    /// Made by a trusted key, but does not verify.
    Bad,
    KeyMissing,
    KeyRevoked,
    KeyExpired,
    Expired,
}

/// One signature, described as `gpg --verify` (and ostree) do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureReport {
    /// Seconds since the epoch.
    pub created: u64,
    /// "RSA", "DSA", "EdDSA", "ECDSA"…
    pub algorithm: String,
    /// Fingerprint (or key id) of the key that signed.
    pub fingerprint: String,
    /// Its primary key's, when the key is known.
    pub primary_fingerprint: Option<String>,
    /// The key's first user ID (`Name <email>`), when known.
    pub user: Option<String>,
    pub status: SignatureStatus,
    /// Expiry of the signature, of the key that made it, and of its
    /// primary key when that is another key.
    pub expires: Option<u64>,
    pub key_expires: Option<u64>,
    pub primary_expires: Option<u64>,
}

impl SignatureReport {
    /// ostree's description (`ostree_gpg_verify_result_describe`), each
    /// line after `prefix`; dates as `%c` in the C locale, UTC.
    pub fn describe(&self, prefix: &str) -> String {
        use std::fmt::Write;
        let date = |t: u64| {
            chrono::DateTime::from_timestamp(t as i64, 0)
                .map(|d| d.format("%a %b %e %H:%M:%S %Y").to_string())
                .unwrap_or_default()
        };
        let id = |f: &str| f[f.len().saturating_sub(16)..].to_string();
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{prefix}Signature made {} using {} key ID {}",
            date(self.created),
            self.algorithm,
            id(&self.fingerprint)
        );
        let who = name_and_email(self.user.as_deref());
        let line = match self.status {
            SignatureStatus::KeyMissing => {
                "Can't check signature: public key not found".to_string()
            }
            SignatureStatus::Good => format!("Good signature from \"{who}\""),
            // Not valid, as gpgme counts it; the expiry line says why.
            SignatureStatus::KeyExpired => format!("BAD signature from \"{who}\""),
            SignatureStatus::KeyRevoked => "Key revoked".to_string(),
            SignatureStatus::Expired => format!("Expired signature from \"{who}\""),
            SignatureStatus::Bad => format!("BAD signature from \"{who}\""),
        };
        let _ = writeln!(s, "{prefix}{line}");
        if let Some(p) = &self.primary_fingerprint {
            if *p != self.fingerprint {
                let _ = writeln!(s, "{prefix}Primary key ID {}", id(p));
            }
        }
        let now = chrono::Utc::now().timestamp() as u64;
        for (what, t) in [
            ("Signature", self.expires),
            ("Key", self.key_expires),
            ("Primary key", self.primary_expires),
        ] {
            if let Some(t) = t {
                let verb = if t <= now { "expired" } else { "expires" };
                let _ = writeln!(s, "{prefix}{what} {verb} {}", date(t));
            }
        }
        s
    }
}

/// gpgme's name and email of a user ID, printed as "NAME <EMAIL>" even
/// when the user ID has no email (then "NAME <>").
fn name_and_email(uid: Option<&str>) -> String {
    let uid = uid.unwrap_or_default();
    match uid.rsplit_once(" <") {
        Some((name, rest)) if rest.ends_with('>') => {
            format!("{name} <{}>", rest.trim_end_matches('>'))
        }
        _ => format!("{uid} <>"),
    }
}

fn algorithm_name(sig: &Signature) -> String {
    use pgp::crypto::public_key::PublicKeyAlgorithm as A;
    match sig.config().map(|c| c.pub_alg) {
        Some(A::RSA | A::RSASign | A::RSAEncrypt) => "RSA",
        Some(A::DSA) => "DSA",
        Some(A::ECDSA) => "ECDSA",
        Some(A::EdDSALegacy | A::Ed25519) => "EdDSA",
        _ => "unknown",
    }
    .to_string()
}

/// A signature that verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoodSignature {
    /// Primary key fingerprint (upper-case hex).
    pub key_fingerprint: String,
    /// Fingerprint of the (sub)key that made the signature.
    pub signing_fingerprint: String,
    /// Creation time, seconds since the epoch.
    pub created: Option<u32>,
}

/// Parse the signature packets of one blob (binary, or armored).
pub fn parse_signatures(blob: &[u8]) -> Result<Vec<Signature>> {
    if blob.len() > crate::sign::MAX_SIGNATURE_SIZE {
        return Err(sig_err("GPG: signature blob too large"));
    }
    let (iter, _) = DetachedSignature::from_reader_many(Cursor::new(blob))
        .map_err(|e| sig_err(format!("GPG: malformed signature: {e}")))?;
    let mut out = Vec::new();
    for s in iter {
        let s = s.map_err(|e| sig_err(format!("GPG: malformed signature: {e}")))?;
        if out.len() >= crate::sign::MAX_SIGNATURES {
            return Err(sig_err("GPG: too many signatures in one blob"));
        }
        out.push(s.signature);
    }
    if out.is_empty() {
        return Err(sig_err("GPG: empty signature"));
    }
    Ok(out)
}

/// Issuer (fingerprint or key id, upper-case hex) of each signature of a
/// blob, for listing and `--delete`.
pub fn signature_issuers(blob: &[u8]) -> Vec<String> {
    parse_signatures(blob)
        .map(|v| {
            v.iter()
                .map(|s| {
                    s.issuer_fingerprint()
                        .first()
                        .map(|f| hex_upper(f.as_bytes()))
                        .or_else(|| s.issuer_key_id().first().map(|k| hex_upper(k.as_ref())))
                        .unwrap_or_default()
                })
                .collect()
        })
        .unwrap_or_default()
}

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

//! Checking signatures: [`Keyring::verify`] (the first good signature
//! over the data, or why none is) and [`Keyring::describe`] (every
//! signature, as `gpg --verify` and ostree print them), and parsing the
//! signature packets of a blob.

use super::keyinfo::{is_revoked, key_expiry};
use super::{fingerprint_hex, hex_upper, sig_err, Keyring};
use crate::error::Result;
use pgp::composed::{Deserializable, DetachedSignature, SignedPublicKey};
use pgp::packet::{Signature, SignatureType};
use pgp::types::{KeyDetails, Timestamp};
use std::io::Cursor;

impl Keyring {
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

//! What is known of one public key: its listing (`remote
//! gpg-list-keys`), revocation and expiry, and its Web Key Directory
//! addresses.

use super::fingerprint_hex;
use pgp::composed::SignedPublicKey;
use pgp::packet::SignatureType;
use pgp::types::KeyDetails;

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

pub(super) fn is_revoked(k: &SignedPublicKey) -> bool {
    k.details
        .revocation_signatures
        .iter()
        .any(|s| s.verify_key(&k.primary_key).is_ok())
}

/// Expiry (seconds since the epoch) of the primary key, from its newest
/// valid self-signature that says.
pub(super) fn key_expiry(k: &SignedPublicKey) -> Option<u64> {
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

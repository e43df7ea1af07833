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
//!
//! The pieces: `keyring` reads keys (keyring files, secret key files) and
//! picks them by id; `keyinfo` describes a key for listing;
//! `signatures` checks and describes signatures against a [`Keyring`];
//! `signer` makes them.

mod keyinfo;
mod keyring;
mod signatures;
mod signer;

use crate::error::TransportError;
use pgp::types::KeyDetails;

pub use pgp::composed::SignedSecretKey as SecretKey;

pub use keyinfo::{key_info, wkd_urls, KeyInfo, SubkeyInfo};
pub use keyring::{
    check_keys, key_id_matches, load_secret_keys, parse_public_keys, parse_secret_keys,
    select_public_keys, select_secret_keys, Keyring, MAX_KEYS,
};
pub use signatures::{
    parse_signatures, signature_issuers, GoodSignature, SignatureReport, SignatureStatus,
};
pub use signer::{sign_data, GpgSigner};

fn sig_err(reason: impl Into<String>) -> TransportError {
    TransportError::Signature(reason.into())
}

fn hex_upper(b: &[u8]) -> String {
    hex::encode_upper(b)
}

/// Fingerprint of a key, upper-case hex (as gpg prints it).
pub fn fingerprint_hex(k: &impl KeyDetails) -> String {
    hex_upper(k.fingerprint().as_bytes())
}

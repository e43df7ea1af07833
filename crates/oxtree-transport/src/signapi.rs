//! ostree's "signapi" verification of a remote: `sign-verify` (commits,
//! static delta superblocks) and `sign-verify-summary` (the summary) are
//! either a boolean (true: every type that has keys configured) or a list
//! of types (`ed25519`, `dummy`), each then required to have keys. Keys of
//! type T come from `verification-T-key` (inline) and `verification-T-file`.
//! A signature is accepted when any configured type verifies it.
//!
//! `dummy` is ostree's test-only type: the "signature" is the key text and
//! it only verifies with `OSTREE_DUMMY_SIGN_ENABLED` set, as in ostree.

use crate::error::{Result, TransportError};
use crate::remote::Remote;
use crate::sign::{self, Ed25519Trust, DUMMY_KEY, ED25519_KEY};
use oxtree_object::Metadata;

/// What `sign-verify` or `sign-verify-summary` asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum SignVerify {
    /// Unset, empty or false.
    #[default]
    Off,
    /// A true value: every type with keys configured.
    Any,
    /// An explicit list of types, each of which must have keys.
    Types(Vec<String>),
}

impl SignVerify {
    /// Parse a keyfile value as ostree does (GKeyFile truthiness first,
    /// else a `;`-separated list).
    pub fn parse(raw: Option<&str>) -> Self {
        match raw.map(str::trim) {
            None | Some("") | Some("false") | Some("0") => SignVerify::Off,
            Some("true") | Some("1") => SignVerify::Any,
            Some(list) => SignVerify::Types(
                list.split([';', ','])
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
            ),
        }
    }

    pub fn enabled(&self) -> bool {
        *self != SignVerify::Off
    }
}

/// One signature type with the keys it trusts.
#[derive(Clone, Debug)]
pub enum Verifier {
    Ed25519(Ed25519Trust),
    Dummy(Vec<String>),
}

impl Verifier {
    fn metadata_key(&self) -> &'static str {
        match self {
            Verifier::Ed25519(_) => ED25519_KEY,
            Verifier::Dummy(_) => DUMMY_KEY,
        }
    }

    fn verify(&self, data: &[u8], sigs: &[Vec<u8>]) -> Result<()> {
        match self {
            Verifier::Ed25519(t) => t.verify(data, sigs).map(|_| ()),
            Verifier::Dummy(keys) => {
                if !dummy_enabled() {
                    return Err(TransportError::Signature(
                        "dummy signature type is only for ostree testing".into(),
                    ));
                }
                sign::dummy_verify(keys, sigs).map(|_| ())
            }
        }
    }
}

/// ostree's switch for the test-only `dummy` type.
pub fn dummy_enabled() -> bool {
    std::env::var("OSTREE_DUMMY_SIGN_ENABLED").is_ok_and(|v| v == "1")
}

/// The dummy keys configured for `remote` (inline key, then key file
/// lines). A key file that cannot be read is an error, as in ostree.
fn dummy_keys(remote: &Remote) -> Result<Vec<String>> {
    let mut keys = Vec::new();
    if let Some(f) = &remote.dummy_file {
        let text = std::fs::read(f).map_err(|_| {
            TransportError::Signature(format!("Failed loading 'dummy' keys from '{f}"))
        })?;
        keys.extend(sign::key_lines(&text));
    }
    if let Some(k) = &remote.dummy_key {
        keys.push(k.clone());
    }
    Ok(keys)
}

/// The verifiers `what` of `remote` asks for; empty when it is off.
/// `ed25519` is the remote's ed25519 trust (configured or system keys).
pub fn verifiers(
    remote: &Remote,
    what: &SignVerify,
    ed25519: impl Fn() -> Result<Ed25519Trust>,
) -> Result<Vec<Verifier>> {
    let none =
        |t: &str| TransportError::Signature(format!("No keys found for required signapi type {t}"));
    match what {
        SignVerify::Off => Ok(Vec::new()),
        SignVerify::Any => {
            let mut v = Vec::new();
            let ed = ed25519()?;
            if !ed.is_empty() {
                v.push(Verifier::Ed25519(ed));
            }
            let dummy = dummy_keys(remote)?;
            if !dummy.is_empty() {
                v.push(Verifier::Dummy(dummy));
            }
            if v.is_empty() {
                return Err(TransportError::Signature(format!(
                    "remote '{}' requires ed25519 signatures (sign-verify), but no trusted keys \
                     are configured; set verification-ed25519-key or verification-ed25519-file",
                    remote.name
                )));
            }
            Ok(v)
        }
        SignVerify::Types(types) => {
            let mut v = Vec::new();
            for t in types {
                match t.as_str() {
                    "ed25519" => {
                        if remote.ed25519_key.is_none() && remote.ed25519_file.is_none() {
                            return Err(none(t));
                        }
                        v.push(Verifier::Ed25519(ed25519()?));
                    }
                    "dummy" => {
                        let keys = dummy_keys(remote)?;
                        if keys.is_empty() {
                            return Err(none(t));
                        }
                        v.push(Verifier::Dummy(keys));
                    }
                    _ => {
                        return Err(TransportError::Signature(format!(
                            "Requested signature type is not implemented: '{t}'"
                        )))
                    }
                }
            }
            Ok(v)
        }
    }
}

/// Accept `data` when one verifier finds a valid signature of its type in
/// `md` (ostree's `_sign_verify_for_remote`).
pub fn verify_any(verifiers: &[Verifier], data: &[u8], md: &Metadata) -> Result<()> {
    let mut found = false;
    let mut first_err = None;
    let mut invalid = 0;
    for v in verifiers {
        let sigs = sign::signatures_in(md, v.metadata_key())?;
        if sigs.is_empty() {
            continue;
        }
        found = true;
        match v.verify(data, &sigs) {
            Ok(()) => return Ok(()),
            Err(e) => {
                invalid += 1;
                first_err.get_or_insert(e);
            }
        }
    }
    if !found {
        return Err(TransportError::Signature("No signatures found".into()));
    }
    let e = first_err.expect("a signature was found and failed");
    if invalid > 1 {
        return Err(TransportError::Signature(format!(
            "({} other invalid signatures): {e}",
            invalid - 1
        )));
    }
    Err(e)
}

/// Whether `md` holds a signature of one of the verifiers' types.
pub fn has_signatures(verifiers: &[Verifier], md: &Metadata) -> Result<bool> {
    for v in verifiers {
        if !sign::signatures_in(md, v.metadata_key())?.is_empty() {
            return Ok(true);
        }
    }
    Ok(false)
}

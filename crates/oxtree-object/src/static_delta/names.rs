//! Delta names: `FROM-TO` as `static-delta list` prints it, and the
//! `deltas/XX/REST` and `delta-indexes/` paths in ostree's "modified base64".

use super::bad;
use crate::checksum::Checksum;
use crate::error::Result;
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, Engine};

/// ostree's "modified base64": the standard alphabet with `/` as `_` (a
/// path component), no `=` padding. Decoding ignores the two bits left over
/// after the 32 bytes, as GLib's decoder does.
const MB64: GeneralPurpose = GeneralPurpose::new(
    &match alphabet::Alphabet::new(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+_",
    ) {
        Ok(a) => a,
        Err(_) => panic!("a valid base64 alphabet"),
    },
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(true),
);

/// "Modified base64" of a checksum: 43 characters.
pub fn mb64(c: &Checksum) -> String {
    MB64.encode(c.0)
}

/// Inverse of `mb64`.
pub fn from_mb64(s: &str) -> Result<Checksum> {
    let invalid = || bad(format!("invalid delta path component {s:?}"));
    if s.len() != 43 {
        return Err(invalid());
    }
    let bytes = MB64.decode(s).map_err(|_| invalid())?;
    Checksum::from_bytes(&bytes)
}

/// The delta's name as `ostree static-delta list` prints it.
pub fn delta_name(from: Option<&Checksum>, to: &Checksum) -> String {
    match from {
        Some(f) => format!("{f}-{to}"),
        None => to.to_string(),
    }
}

/// Parse `FROM-TO` or `TO`.
pub fn parse_delta_name(name: &str) -> Result<(Option<Checksum>, Checksum)> {
    match name.split_once('-') {
        Some((f, t)) => Ok((Some(Checksum::from_hex(f)?), Checksum::from_hex(t)?)),
        None => Ok((None, Checksum::from_hex(name)?)),
    }
}

/// Directory of a delta relative to the repository: `deltas/XX/REST`.
pub fn delta_dir(from: Option<&Checksum>, to: &Checksum) -> String {
    match from {
        Some(f) => {
            let m = mb64(f);
            format!("deltas/{}/{}-{}", &m[..2], &m[2..], mb64(to))
        }
        None => {
            let m = mb64(to);
            format!("deltas/{}/{}", &m[..2], &m[2..])
        }
    }
}

/// Parse `XX` and `REST` of `deltas/XX/REST` back to (from, to).
pub fn parse_delta_dir(prefix: &str, rest: &str) -> Result<(Option<Checksum>, Checksum)> {
    let full = format!("{prefix}{rest}");
    match full.split_once('-') {
        Some((f, t)) => Ok((Some(from_mb64(f)?), from_mb64(t)?)),
        None => Ok((None, from_mb64(&full)?)),
    }
}

/// The delta index of a target commit: `delta-indexes/XX/REST.index`.
pub fn delta_index_path(to: &Checksum) -> String {
    let m = mb64(to);
    format!("delta-indexes/{}/{}.index", &m[..2], &m[2..])
}

//! GVariant codec: thin glue over `zvariant`'s GVariant format.
//!
//! ostree serializes objects as native (little-endian on every platform it
//! ships) GVariant in normal form, and swaps the integer fields it defines to
//! big-endian by hand. We do the same: encode with a little-endian context
//! (framing offsets are little-endian by the GVariant spec anyway) and store
//! `be32`/`be64` values, so the bytes match libostree's exactly.

use crate::error::{ObjectError, Result};
use serde::{de::DeserializeOwned, Serialize};
use zvariant::serialized::{Context, Data, Format};
use zvariant::{Type, LE};

/// The bytes of an `ay` held in a dynamic value; None unless every
/// element is a byte.
pub fn byte_array(a: &zvariant::Array<'_>) -> Option<Vec<u8>> {
    a.iter()
        .map(|x| match x {
            zvariant::Value::U8(b) => Some(*b),
            _ => None,
        })
        .collect()
}

fn context() -> Context {
    Context::new(Format::GVariant, LE, 0)
}

/// Serialize a value to normal-form GVariant bytes.
pub fn encode<T: Serialize + Type>(value: &T) -> Vec<u8> {
    // Serializing our own plain data types cannot fail: zvariant only errors
    // on values that have no GVariant representation (e.g. maps with
    // non-basic keys), which none of ours are.
    zvariant::to_bytes(context(), value)
        .expect("GVariant encoding of an ostree object")
        .to_vec()
}

/// Parse GVariant bytes of a known type. Untrusted input: errors, never panics.
pub fn decode<T: DeserializeOwned + Type>(what: &'static str, bytes: &[u8]) -> Result<T> {
    let data = Data::new(bytes, context());
    let (value, _) = data
        .deserialize::<T>()
        .map_err(|e| ObjectError::malformed(what, e))?;
    Ok(value)
}

/// A big-endian field stored in a natively encoded variant.
pub fn be32(v: u32) -> u32 {
    u32::from_le_bytes(v.to_be_bytes())
}
pub fn from_be32(v: u32) -> u32 {
    u32::from_be_bytes(v.to_le_bytes())
}
pub fn be64(v: u64) -> u64 {
    u64::from_le_bytes(v.to_be_bytes())
}
pub fn from_be64(v: u64) -> u64 {
    u64::from_be_bytes(v.to_le_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_offsets_widen_past_255_bytes() {
        // 10 names of 40 bytes: the array needs 2-byte little-endian offsets.
        let files: Vec<(String, Vec<u8>)> = (0..10)
            .map(|i| (format!("{i:040}"), vec![i as u8; 32]))
            .collect();
        let bytes = encode(&files);
        let back: Vec<(String, Vec<u8>)> = decode("test", &bytes).unwrap();
        assert_eq!(back, files);
        // Each element is 41 (string+NUL) + 32 + 1 (offset) = 74 bytes; the
        // array's own offsets are 2 bytes each, little-endian.
        assert_eq!(bytes.len(), 10 * 74 + 10 * 2);
        let last = &bytes[bytes.len() - 2..];
        assert_eq!(u16::from_le_bytes([last[0], last[1]]), 740);
    }

    #[test]
    fn be_fields_round_trip() {
        assert_eq!(from_be32(be32(0x41ed)), 0x41ed);
        assert_eq!(be32(1).to_le_bytes(), [0, 0, 0, 1]);
        assert_eq!(from_be64(be64(1_577_836_800)), 1_577_836_800);
    }
}

//! GVariant, the serialization ostree stores every object in, written by
//! hand: one small codec of our own, rather than a dependency.
//!
//! Why hand-written: zvariant's GVariant support is deprecated, and it
//! mis-encoded containers whose members are all zero-length (an empty `ay`
//! in an `aay` got no framing offset, an empty dirtree no `00` byte), which
//! we had to work around object by object. The `gvariant` crate is
//! unmaintained and read-oriented; glib-rs would put a C runtime in a binary
//! that is copied into composed images. ostree needs a small, fully known
//! subset: normal-form serialization of plain values and a strict reader
//! for untrusted ones, which is what this is (GLib's
//! `gvariant-serialiser.c` and the GVariant specification are the
//! reference; the tests compare with bytes GLib wrote).
//!
//! One file per concept: [`signature`] (types), [`value`] (the dynamic
//! [`Value`]), `ser` (normal form), `de` (untrusted input), [`convert`]
//! (the [`Variant`] trait that maps Rust types of the object structs to
//! values).
//!
//! ostree serializes objects as native (little-endian on every platform it
//! ships) GVariant in normal form, and swaps the integer fields it defines to
//! big-endian by hand. We do the same: encode little-endian (framing offsets
//! are little-endian by the GVariant spec anyway) and store `be32`/`be64`
//! values, so the bytes match libostree's exactly.

pub mod convert;
mod de;
mod ser;
pub mod signature;
#[cfg(test)]
mod tests;
pub mod value;

pub use convert::Variant;
pub(crate) use de::read_width;
pub(crate) use ser::offset_width;
pub use signature::Type;
pub use value::Value;

use crate::error::{ObjectError, Result};

/// Normal-form bytes of a dynamic value.
pub fn to_bytes(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ser::write(&mut out, v);
    out
}

/// Parse untrusted bytes as a value of type `t`: errors, never panics.
pub fn from_bytes(what: &'static str, t: &Type, bytes: &[u8]) -> Result<Value> {
    de::read(t, bytes, 0).map_err(|e| ObjectError::malformed(what, e))
}

/// Serialize a typed value to normal-form GVariant bytes.
pub fn encode<T: Variant>(value: &T) -> Vec<u8> {
    to_bytes(&value.to_value())
}

/// Parse GVariant bytes of a known type. Untrusted input: errors, never panics.
pub fn decode<T: Variant>(what: &'static str, bytes: &[u8]) -> Result<T> {
    let v = from_bytes(what, &T::signature(), bytes)?;
    T::from_value(v).ok_or_else(|| ObjectError::malformed(what, "unexpected value shape"))
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

//! Checksum: the SHA-256 name of an object, its hex form, and the hasher.
//!
//! `sha2` picks the SHA-NI / ARMv8 crypto instructions at run time when the
//! CPU has them, so hashing is hardware-accelerated without a feature flag.

use crate::error::{ObjectError, Result};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Checksum(pub [u8; 32]);

impl Checksum {
    /// Parse 64 lowercase hex digits (ostree rejects upper case too).
    pub fn from_hex(s: &str) -> Result<Self> {
        let b = s.as_bytes();
        if b.len() != 64
            || !b
                .iter()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
        {
            return Err(ObjectError::InvalidChecksum(s.to_string()));
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| ObjectError::InvalidChecksum(s.into()))?;
        Ok(Checksum(out))
    }

    /// From the 32 raw bytes stored inside GVariant objects.
    pub fn from_bytes(b: &[u8]) -> Result<Self> {
        let arr: [u8; 32] = b.try_into().map_err(|_| {
            ObjectError::malformed("checksum", format!("{} bytes instead of 32", b.len()))
        })?;
        Ok(Checksum(arr))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// SHA-256 of a byte slice: the name of a metadata object.
    pub fn of(data: &[u8]) -> Self {
        Checksum(Sha256::digest(data).into())
    }

    /// True for a string that looks like a full checksum.
    pub fn is_hex(s: &str) -> bool {
        Self::from_hex(s).is_ok()
    }
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Checksum({})", self.to_hex())
    }
}

impl FromStr for Checksum {
    type Err = ObjectError;
    fn from_str(s: &str) -> Result<Self> {
        Self::from_hex(s)
    }
}

/// Incremental SHA-256, for file objects whose content is streamed.
#[derive(Clone, Debug, Default)]
pub struct Hasher(Sha256);

impl Hasher {
    pub fn new() -> Self {
        Hasher(Sha256::new())
    }
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }
    pub fn finish(self) -> Checksum {
        Checksum(self.0.finalize().into())
    }
}

impl std::io::Write for Hasher {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The "content checksum" `ostree log` shows: SHA-256 over the root dirtree
/// and dirmeta checksums, so two commits of the same tree share it.
pub fn content_checksum(root_tree: &Checksum, root_meta: &Checksum) -> Checksum {
    let mut h = Hasher::new();
    h.update(&root_tree.0);
    h.update(&root_meta.0);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_rejects() {
        let c = Checksum::of(b"");
        assert_eq!(
            c.to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(Checksum::from_hex(&c.to_hex()).unwrap(), c);
        assert!(Checksum::from_hex(&c.to_hex().to_uppercase()).is_err());
        assert!(Checksum::from_hex("abc").is_err());
        assert!(Checksum::from_bytes(&[0u8; 31]).is_err());
    }
}

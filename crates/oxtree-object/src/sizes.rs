//! `ostree.sizes`, the commit metadata `commit --generate-sizes` writes:
//! for every dirtree, dirmeta and file object of the tree, its size as
//! stored in an archive repository and unpacked, so that a client can tell
//! what a pull will cost before it pulls (`show --print-sizes`).
//!
//! Each entry is one `ay`: the 32-byte checksum, the archived size and the
//! unpacked size as varints, then the object type byte (entries written
//! before ostree 2020.1 end without it and mean file objects). Entries are
//! sorted by checksum.

use crate::checksum::Checksum;
use crate::error::{ObjectError, Result};
use crate::gvariant::{Value, Variant};
use crate::objtype::ObjectType;
use crate::static_delta::{read_varuint64, write_varuint64};

/// The metadata key.
pub const KEY_SIZES: &str = "ostree.sizes";

/// One object's sizes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SizeEntry {
    pub checksum: Checksum,
    pub kind: ObjectType,
    /// Bytes of the object in an archive repository (compressed for files).
    pub archived: u64,
    /// Bytes unpacked: a file's content (a symlink's target), or the
    /// metadata object itself.
    pub unpacked: u64,
}

impl SizeEntry {
    fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(32 + 20 + 1);
        v.extend_from_slice(&self.checksum.0);
        write_varuint64(&mut v, self.archived);
        write_varuint64(&mut v, self.unpacked);
        v.push(self.kind as u8);
        v
    }

    fn decode(b: &[u8]) -> Result<Self> {
        let bad = |why: &str| ObjectError::malformed("ostree.sizes entry", why);
        if b.len() < 32 {
            return Err(bad("shorter than a checksum"));
        }
        let checksum = Checksum::from_bytes(&b[..32])?;
        let (archived, n) = read_varuint64(&b[32..]).ok_or_else(|| bad("bad archived size"))?;
        let rest = &b[32 + n..];
        let (unpacked, n) = read_varuint64(rest).ok_or_else(|| bad("bad unpacked size"))?;
        let kind = match &rest[n..] {
            [] => ObjectType::File,
            [k] => ObjectType::from_u8(*k)?,
            _ => return Err(bad("trailing bytes")),
        };
        Ok(SizeEntry {
            checksum,
            kind,
            archived,
            unpacked,
        })
    }
}

/// The metadata value for `entries`, sorted by checksum as ostree sorts.
pub fn encode_sizes(entries: &mut [SizeEntry]) -> Value {
    entries.sort_by_key(|a| a.checksum.0);
    let v: Vec<Vec<u8>> = entries.iter().map(SizeEntry::encode).collect();
    v.to_value()
}

/// Parse the `ostree.sizes` value (`aay`).
pub fn decode_sizes(value: &Value) -> Result<Vec<SizeEntry>> {
    let bad = || ObjectError::malformed("ostree.sizes", "not an array of byte arrays");
    let Value::Array(_, a) = value else {
        return Err(bad());
    };
    a.iter()
        .map(|e| match e {
            Value::Bytes(b) => SizeEntry::decode(b),
            _ => Err(bad()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_legacy_entries() {
        let c = |b: u8| Checksum([b; 32]);
        let mut e = vec![
            SizeEntry {
                checksum: c(9),
                kind: ObjectType::DirTree,
                archived: 300,
                unpacked: 300,
            },
            SizeEntry {
                checksum: c(1),
                kind: ObjectType::File,
                archived: 1 << 40,
                unpacked: 5,
            },
        ];
        let v = encode_sizes(&mut e);
        let back = decode_sizes(&v).unwrap();
        assert_eq!(back, e);
        assert_eq!(back[0].checksum, c(1), "sorted by checksum");
        // A pre-2020.1 entry has no type byte: a file.
        let mut old = c(2).0.to_vec();
        old.extend_from_slice(&[10, 20]);
        let d = SizeEntry::decode(&old).unwrap();
        assert_eq!((d.kind, d.archived, d.unpacked), (ObjectType::File, 10, 20));
        assert!(SizeEntry::decode(&old[..31]).is_err());
    }
}

//! The superblock `(a{sv}tayay<commit>aya(uayttay)a(yaytt))`: part headers,
//! fallbacks, inline parts, and the signed `(taya{sv})` wrapper.

use super::names::{delta_dir, delta_name};
use super::{
    bad, KEY_ENDIANNESS, MAX_SUPERBLOCK_SIZE, OBJTYPE_CSUM_LEN, PART_VERSION, SIGNED_MAGIC,
};
use crate::checksum::Checksum;
use crate::commit::{Commit, Metadata, Wire as CommitWire};
use crate::error::Result;
use crate::gvariant::{be64, decode, encode, from_be64, Value};
use crate::objtype::ObjectType;

/// One part's entry in the superblock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartHeader {
    pub version: u32,
    /// SHA-256 of the part file (`(yay)` bytes).
    pub checksum: Checksum,
    /// Size of the part file.
    pub size: u64,
    /// Total size of the objects it builds.
    pub usize: u64,
    pub objects: Vec<(ObjectType, Checksum)>,
}

/// An object the client fetches on its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fallback {
    pub kind: ObjectType,
    pub checksum: Checksum,
    pub size: u64,
    pub usize: u64,
}

/// The byte order of a delta's part and fallback sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endianness {
    Little,
    Big,
    /// No `ostree.endianness` key (deltas written before ostree 2016.6):
    /// the sizes only make sense byteswapped, so the writer was big-endian.
    BigByHeuristic,
    /// No key, and nothing suggests the sizes are swapped. ostree calls this
    /// "invalid" and reads it in native (little-endian) order.
    Unknown,
}

impl Endianness {
    /// Did the writer store the sizes big-endian?
    pub fn is_big(self) -> bool {
        matches!(self, Endianness::Big | Endianness::BigByHeuristic)
    }

    /// The words `static-delta show` prints, as ostree does.
    pub fn describe(self) -> &'static str {
        match self {
            Endianness::Little => "little",
            Endianness::Big => "big",
            Endianness::BigByHeuristic => "big (heuristic)",
            Endianness::Unknown => "invalid",
        }
    }

    /// A superblock without the key: guess from the raw (unswapped) part
    /// sizes, by ostree's rule. Compression never makes a part more than 20%
    /// bigger than what it builds, and no delta averages 4 GiB per object.
    fn guess(parts: &[PartWire]) -> Self {
        let (mut total, mut objects) = (0u64, 0u64);
        for (_, _, size, usize, objs) in parts {
            let (size, usize) = (u64::from_le(*size), u64::from_le(*usize));
            objects += (objs.len() / OBJTYPE_CSUM_LEN) as u64;
            total = total.saturating_add(size);
            if size > usize && size as f64 / usize as f64 > 1.2 {
                return Endianness::BigByHeuristic;
            }
        }
        if objects > 0 && total / objects > u64::from(u32::MAX) {
            return Endianness::BigByHeuristic;
        }
        Endianness::Unknown
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Superblock {
    pub metadata: Metadata,
    pub timestamp: u64,
    pub from: Option<Checksum>,
    pub to: Checksum,
    pub commit: Commit,
    /// The embedded commit exactly as stored.
    pub commit_bytes: Vec<u8>,
    pub parts: Vec<PartHeader>,
    pub fallbacks: Vec<Fallback>,
    /// The order its sizes were written in (encode writes the same).
    pub endianness: Endianness,
}

type PartWire = (u32, Vec<u8>, u64, u64, Vec<u8>);
type FallbackWire = (u8, Vec<u8>, u64, u64);
type SuperWire = (
    Metadata,
    u64,
    Vec<u8>,
    Vec<u8>,
    CommitWire,
    Vec<u8>,
    Vec<PartWire>,
    Vec<FallbackWire>,
);

/// Parse a concatenated (objtype, checksum) array.
pub fn parse_objects(b: &[u8]) -> Result<Vec<(ObjectType, Checksum)>> {
    if !b.len().is_multiple_of(OBJTYPE_CSUM_LEN) {
        return Err(bad("object list is not a multiple of 33 bytes"));
    }
    b.chunks(OBJTYPE_CSUM_LEN)
        .map(|c| Ok((ObjectType::from_u8(c[0])?, Checksum::from_bytes(&c[1..])?)))
        .collect()
}

fn encode_objects(o: &[(ObjectType, Checksum)]) -> Vec<u8> {
    let mut v = Vec::with_capacity(o.len() * OBJTYPE_CSUM_LEN);
    for (k, c) in o {
        v.push(*k as u8);
        v.extend_from_slice(&c.0);
    }
    v
}

impl Superblock {
    /// Is the part/fallback data in big-endian order?
    pub fn big_endian(&self) -> bool {
        self.endianness.is_big()
    }

    pub fn name(&self) -> String {
        delta_name(self.from.as_ref(), &self.to)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_SUPERBLOCK_SIZE {
            return Err(bad(format!("superblock of {} bytes", bytes.len())));
        }
        let (md, ts, from, to, cw, _recurse, parts, fallbacks): SuperWire =
            decode("static delta superblock", bytes)?;
        let metadata = md;
        let endianness = match metadata.get(KEY_ENDIANNESS) {
            Some(Value::U8(b'B')) => Endianness::Big,
            Some(Value::U8(b'l')) => Endianness::Little,
            Some(_) => return Err(bad("invalid ostree.endianness")),
            None => Endianness::guess(&parts),
        };
        let big = endianness.is_big();
        let sw32 = |v: u32| if big { v.swap_bytes() } else { v };
        let sw64 = |v: u64| if big { v.swap_bytes() } else { v };
        let from = match from.len() {
            0 => None,
            _ => Some(Checksum::from_bytes(&from)?),
        };
        let to = Checksum::from_bytes(&to)?;
        let commit_bytes = encode(&cw);
        let commit = Commit::decode(&commit_bytes)?;
        let parts = parts
            .into_iter()
            .map(|(v, c, s, u, o)| {
                let version = sw32(v);
                if version != PART_VERSION {
                    return Err(bad(format!("unknown part version {version}")));
                }
                Ok(PartHeader {
                    version,
                    checksum: Checksum::from_bytes(&c)?,
                    size: sw64(s),
                    usize: sw64(u),
                    objects: parse_objects(&o)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let fallbacks = fallbacks
            .into_iter()
            .map(|(k, c, s, u)| {
                Ok(Fallback {
                    kind: ObjectType::from_u8(k)?,
                    checksum: Checksum::from_bytes(&c)?,
                    size: sw64(s),
                    usize: sw64(u),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Superblock {
            metadata,
            timestamp: from_be64(ts),
            from,
            to,
            commit,
            commit_bytes,
            parts,
            fallbacks,
            endianness,
        })
    }

    /// Encode in little-endian order (what ostree writes on x86 and arm).
    pub fn encode(&self) -> Vec<u8> {
        let big = self.big_endian();
        let sw32 = |v: u32| if big { v.swap_bytes() } else { v };
        let sw64 = |v: u64| if big { v.swap_bytes() } else { v };
        let cw: CommitWire = decode("commit", &self.commit_bytes).expect("valid commit bytes");
        let w: SuperWire = (
            self.metadata.clone(),
            be64(self.timestamp),
            self.from.map(|f| f.0.to_vec()).unwrap_or_default(),
            self.to.0.to_vec(),
            cw,
            Vec::new(),
            self.parts
                .iter()
                .map(|p| {
                    (
                        sw32(p.version),
                        p.checksum.0.to_vec(),
                        sw64(p.size),
                        sw64(p.usize),
                        encode_objects(&p.objects),
                    )
                })
                .collect(),
            self.fallbacks
                .iter()
                .map(|f| {
                    (
                        f.kind as u8,
                        f.checksum.0.to_vec(),
                        sw64(f.size),
                        sw64(f.usize),
                    )
                })
                .collect(),
        );
        encode(&w)
    }

    /// The key of inline part `i` in the metadata (ostree uses the part's
    /// path relative to the repository).
    pub fn inline_part_key(&self, i: usize) -> String {
        format!("{}/{i}", delta_dir(self.from.as_ref(), &self.to))
    }

    /// An inline part's bytes, if the superblock carries it.
    pub fn inline_part(&self, i: usize) -> Option<Vec<u8>> {
        let v = self.metadata.get(&self.inline_part_key(i))?;
        let Value::Struct(f) = v.unvariant() else {
            return None;
        };
        let [Value::U8(c), Value::Bytes(data)] = f.as_slice() else {
            return None;
        };
        let mut out = Vec::with_capacity(1 + data.len());
        out.push(*c);
        out.extend_from_slice(data);
        Some(out)
    }

    /// Detached metadata of the target commit carried in the superblock.
    pub fn detached_key(&self) -> String {
        format!("{}/commitmeta", delta_dir(self.from.as_ref(), &self.to))
    }
}

/// A `(yay)` value for an inline part.
pub fn inline_part_value(part: &[u8]) -> Value {
    Value::Struct(vec![Value::U8(part[0]), Value::Bytes(part[1..].to_vec())])
}

/// A signed superblock `(taya{sv})`: magic, superblock bytes, signatures.
pub fn decode_signed(bytes: &[u8]) -> Result<Option<(Vec<u8>, Metadata)>> {
    if bytes.len() < 8 || &bytes[..8] != SIGNED_MAGIC {
        return Ok(None);
    }
    let (_magic, sb, sigs): (u64, Vec<u8>, Metadata) =
        decode("signed static delta superblock", bytes)?;
    Ok(Some((sb, sigs)))
}

pub fn encode_signed(superblock: &[u8], sigs: &Metadata) -> Vec<u8> {
    let magic = u64::from_le_bytes(*SIGNED_MAGIC);
    encode(&(magic, superblock.to_vec(), sigs.clone()))
}

#[cfg(test)]
mod endianness_tests {
    use super::*;

    fn part(size: u64, usize: u64, objects: usize) -> PartWire {
        (
            0,
            vec![0; 32],
            size,
            usize,
            vec![0; objects * OBJTYPE_CSUM_LEN],
        )
    }

    #[test]
    fn guess_follows_ostrees_rule() {
        // Sizes that read sensibly in little-endian order prove nothing.
        let le = [part(1000u64.to_le(), 4000u64.to_le(), 3)];
        assert_eq!(Endianness::guess(&le), Endianness::Unknown);
        // A part "compressed" to 16x its content: written big-endian.
        let swapped = [part(1000u64.to_be(), 4000u64.to_be(), 3)];
        assert_eq!(Endianness::guess(&swapped), Endianness::BigByHeuristic);
        // Average object over 4 GiB.
        let huge = [part(10u64 << 40, 11u64 << 40, 1)];
        assert_eq!(Endianness::guess(&huge), Endianness::BigByHeuristic);
        assert_eq!(Endianness::BigByHeuristic.describe(), "big (heuristic)");
        assert!(Endianness::BigByHeuristic.is_big());
    }
}

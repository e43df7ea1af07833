//! Commit: `(a{sv}aya(say)sstayay)`: metadata, parent, related objects,
//! subject, body, timestamp (BE), root dirtree and root dirmeta checksums.
//! Also the detached commitmeta `a{sv}`, which shares the Metadata type.

use crate::checksum::{content_checksum, Checksum};
use crate::error::{ObjectError, Result};
use crate::gvariant::{be64, decode, encode, from_be64, Type, Value, Variant};

/// An ordered `a{sv}`. ostree keeps insertion order (the command-line
/// `--add-metadata-*` order, then the ref binding), and the order is part of
/// the commit checksum, so this is a list, not a map.
/// Each value is the one inside its `v`.
#[derive(Clone, Debug, Default)]
pub struct Metadata(pub Vec<(String, Value)>);

impl PartialEq for Metadata {
    fn eq(&self, other: &Self) -> bool {
        self.encode() == other.encode()
    }
}

impl Metadata {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key)?.as_str()
    }

    /// Set a key, replacing an earlier value in place (keeps its position).
    pub fn set(&mut self, key: &str, value: Value) {
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key.to_string(), value)),
        }
    }

    pub fn set_str(&mut self, key: &str, value: &str) {
        self.set(key, Value::from(value));
    }

    pub fn set_strv(&mut self, key: &str, values: &[String]) {
        self.set(key, values.to_vec().to_value());
    }

    pub fn remove(&mut self, key: &str) {
        self.0.retain(|(k, _)| k != key);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// Decode a standalone `a{sv}` (a detached commitmeta object).
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        decode("metadata", bytes)
    }
}

/// `a{sv}`, in order.
impl Variant for Metadata {
    fn signature() -> Type {
        Type::dict(Type::Str, Type::Variant)
    }
    fn to_value(&self) -> Value {
        Value::Dict(
            Type::Str,
            Type::Variant,
            self.0
                .iter()
                .map(|(k, v)| (Value::Str(k.clone()), Value::variant(v.clone())))
                .collect(),
        )
    }
    fn from_value(v: Value) -> Option<Self> {
        let Value::Dict(_, _, entries) = v else {
            return None;
        };
        entries
            .into_iter()
            .map(|(k, v)| match (k, v) {
                (Value::Str(k), Value::Variant(v)) => Some((k, *v)),
                _ => None,
            })
            .collect::<Option<_>>()
            .map(Metadata)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Commit {
    pub metadata: Metadata,
    pub parent: Option<Checksum>,
    pub related: Vec<(String, Checksum)>,
    pub subject: String,
    pub body: String,
    /// Seconds since the epoch, UTC.
    pub timestamp: u64,
    pub root_tree: Checksum,
    pub root_meta: Checksum,
}

/// A commit's GVariant tuple (also embedded in a delta superblock).
pub(crate) type Wire = (
    Metadata,
    Vec<u8>,
    Vec<(String, Vec<u8>)>,
    String,
    String,
    u64,
    Vec<u8>,
    Vec<u8>,
);

impl Commit {
    pub fn encode(&self) -> Vec<u8> {
        let w: Wire = (
            self.metadata.clone(),
            self.parent.map(|p| p.0.to_vec()).unwrap_or_default(),
            self.related
                .iter()
                .map(|(n, c)| (n.clone(), c.0.to_vec()))
                .collect(),
            self.subject.clone(),
            self.body.clone(),
            be64(self.timestamp),
            self.root_tree.0.to_vec(),
            self.root_meta.0.to_vec(),
        );
        encode(&w)
    }

    pub fn checksum(&self) -> Checksum {
        Checksum::of(&self.encode())
    }

    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let (md, parent, related, subject, body, ts, tree, meta): Wire = decode("commit", bytes)?;
        let parent = match parent.len() {
            0 => None,
            _ => Some(Checksum::from_bytes(&parent)?),
        };
        let related = related
            .into_iter()
            .map(|(n, c)| Ok((n, Checksum::from_bytes(&c)?)))
            .collect::<Result<Vec<_>>>()?;
        let root_tree = Checksum::from_bytes(&tree).map_err(|_| {
            ObjectError::malformed("commit", "root dirtree checksum is not 32 bytes")
        })?;
        let root_meta = Checksum::from_bytes(&meta).map_err(|_| {
            ObjectError::malformed("commit", "root dirmeta checksum is not 32 bytes")
        })?;
        Ok(Commit {
            metadata: md,
            parent,
            related,
            subject,
            body,
            timestamp: from_be64(ts),
            root_tree,
            root_meta,
        })
    }

    pub fn content_checksum(&self) -> Checksum {
        content_checksum(&self.root_tree, &self.root_meta)
    }

    /// `version` metadata, if any.
    pub fn version(&self) -> Option<&str> {
        self.metadata.get_str("version")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes ostree 2022.7 wrote for `ostree commit -b main -s subj
    /// --timestamp=2020-01-01` of a small tree; its checksum is the one the
    /// real binary printed.
    #[test]
    fn matches_ostree_commit_bytes() {
        let mut md = Metadata::new();
        md.set_strv("ostree.ref-binding", &["main".to_string()]);
        let c = Commit {
            metadata: md,
            parent: None,
            related: vec![],
            subject: "subj".into(),
            body: String::new(),
            timestamp: 1_577_836_800,
            root_tree: Checksum::from_hex(
                "44b707cc6b783cd170986d71ec9cc3d88e5be39dd9e1570764cc2b3403a65383",
            )
            .unwrap(),
            root_meta: Checksum::from_hex(
                "446a0ef11b7cc167f3b603e585c7eeeeb675faa412d5ec73f62988eb0b6c5488",
            )
            .unwrap(),
        };
        assert_eq!(
            c.checksum().to_hex(),
            "bb66c5a010828e082ff9d5a0da75f19cb6b5104b95e584a5bd80d61f5e03f010"
        );
        let back = Commit::decode(&c.encode()).unwrap();
        assert_eq!(back, c);
        assert_eq!(
            back.metadata
                .get("ostree.ref-binding")
                .unwrap()
                .type_()
                .to_string(),
            "as"
        );
    }
}

//! Xattrs: extended attributes as ostree stores them, `a(ayay)` with each
//! name carrying its trailing NUL, sorted by name (strcmp order).

use crate::error::{ObjectError, Result};

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Xattrs(Vec<(Vec<u8>, Vec<u8>)>);

impl Xattrs {
    pub fn new() -> Self {
        Xattrs(Vec::new())
    }

    /// Build from (name without NUL, value) pairs; sorts into canonical order.
    pub fn from_pairs<I: IntoIterator<Item = (Vec<u8>, Vec<u8>)>>(pairs: I) -> Self {
        let mut v: Vec<(Vec<u8>, Vec<u8>)> = pairs
            .into_iter()
            .map(|(mut n, val)| {
                n.push(0);
                (n, val)
            })
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        Xattrs(v)
    }

    /// From the wire form (names with NUL), validating each name.
    pub fn from_wire(v: Vec<(Vec<u8>, Vec<u8>)>) -> Result<Self> {
        for (n, _) in &v {
            match n.split_last() {
                Some((0, rest)) if !rest.is_empty() && !rest.contains(&0) => {}
                _ => {
                    return Err(ObjectError::malformed(
                        "xattrs",
                        format!("bad xattr name {:?}", String::from_utf8_lossy(n)),
                    ))
                }
            }
        }
        Ok(Xattrs(v))
    }

    pub fn wire(&self) -> &Vec<(Vec<u8>, Vec<u8>)> {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// (name without its NUL, value) pairs.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.0
            .iter()
            .map(|(n, v)| (&n[..n.len().saturating_sub(1)], v.as_slice()))
    }

    pub fn get(&self, name: &[u8]) -> Option<&[u8]> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
}

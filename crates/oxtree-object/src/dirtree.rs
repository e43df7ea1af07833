//! DirTree: the entries of one directory, `(a(say)a(sayay))`: files as
//! (name, content checksum) and subdirectories as (name, dirtree, dirmeta),
//! each list sorted by name in byte order.

use crate::checksum::Checksum;
use crate::error::{ObjectError, Result};
use crate::gvariant::{decode, encode};
use crate::name::validate_filename;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    pub name: String,
    pub checksum: Checksum,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    pub name: String,
    pub tree: Checksum,
    pub meta: Checksum,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DirTree {
    pub files: Vec<FileEntry>,
    pub dirs: Vec<DirEntry>,
}

type Wire = (Vec<(String, Vec<u8>)>, Vec<(String, Vec<u8>, Vec<u8>)>);

impl DirTree {
    /// Encode; entries are sorted first so callers may add them in any order.
    pub fn encode(&self) -> Vec<u8> {
        let mut files: Vec<_> = self
            .files
            .iter()
            .map(|f| (f.name.clone(), f.checksum.0.to_vec()))
            .collect();
        files.sort_by(|a, b| a.0.cmp(&b.0));
        let mut dirs: Vec<_> = self
            .dirs
            .iter()
            .map(|d| (d.name.clone(), d.tree.0.to_vec(), d.meta.0.to_vec()))
            .collect();
        dirs.sort_by(|a, b| a.0.cmp(&b.0));
        let w: Wire = (files, dirs);
        encode(&w)
    }

    pub fn checksum(&self) -> Checksum {
        Checksum::of(&self.encode())
    }

    /// Decode untrusted bytes. Every name is validated (no empty, `.`, `..`,
    /// `/` or NUL), lists must be strictly sorted, and a name may not be both
    /// a file and a directory, so a checkout can trust the result.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let (files, dirs): Wire = decode("dirtree", bytes)?;
        let files = files
            .into_iter()
            .map(|(name, c)| {
                validate_filename(&name)?;
                Ok(FileEntry {
                    name,
                    checksum: Checksum::from_bytes(&c)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let dirs = dirs
            .into_iter()
            .map(|(name, t, m)| {
                validate_filename(&name)?;
                Ok(DirEntry {
                    name,
                    tree: Checksum::from_bytes(&t)?,
                    meta: Checksum::from_bytes(&m)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        check_sorted(files.iter().map(|f| f.name.as_str()))?;
        check_sorted(dirs.iter().map(|d| d.name.as_str()))?;
        // Both lists are sorted: a merge walk finds a name present in both.
        let (mut i, mut j) = (0, 0);
        while i < files.len() && j < dirs.len() {
            match files[i].name.cmp(&dirs[j].name) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    return Err(ObjectError::malformed(
                        "dirtree",
                        format!("{:?} is both a file and a directory", files[i].name),
                    ))
                }
            }
        }
        Ok(DirTree { files, dirs })
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.dirs.is_empty()
    }
}

fn check_sorted<'a>(names: impl Iterator<Item = &'a str>) -> Result<()> {
    let mut prev: Option<&str> = None;
    for n in names {
        if let Some(p) = prev {
            if p >= n {
                return Err(ObjectError::malformed(
                    "dirtree",
                    format!("entries not strictly sorted at {n:?}"),
                ));
            }
        }
        prev = Some(n);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(b: u8) -> Checksum {
        Checksum([b; 32])
    }

    #[test]
    fn round_trip_sorts_entries() {
        let t = DirTree {
            files: vec![
                FileEntry {
                    name: "b".into(),
                    checksum: c(2),
                },
                FileEntry {
                    name: "a".into(),
                    checksum: c(1),
                },
            ],
            dirs: vec![DirEntry {
                name: "d".into(),
                tree: c(3),
                meta: c(4),
            }],
        };
        let back = DirTree::decode(&t.encode()).unwrap();
        assert_eq!(back.files[0].name, "a");
        assert_eq!(back.dirs[0].meta, c(4));
    }

    #[test]
    fn empty_tree_matches_glib() {
        // ostree's checksum for an empty directory's dirtree.
        assert_eq!(
            DirTree::default().checksum().to_hex(),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
        assert!(DirTree::decode(&[0]).unwrap().is_empty());
    }

    #[test]
    fn rejects_hostile_entries() {
        let enc = |files: Vec<(String, Vec<u8>)>, dirs: Vec<(String, Vec<u8>, Vec<u8>)>| {
            encode(&(files, dirs))
        };
        let ok = vec![0u8; 32];
        for bad in ["..", ".", "", "a/b", "x\0y"] {
            let b = enc(vec![(bad.into(), ok.clone())], vec![]);
            assert!(DirTree::decode(&b).is_err(), "{bad:?}");
            let b = enc(vec![], vec![(bad.into(), ok.clone(), ok.clone())]);
            assert!(DirTree::decode(&b).is_err(), "{bad:?}");
        }
        let unsorted = enc(
            vec![("b".into(), ok.clone()), ("a".into(), ok.clone())],
            vec![],
        );
        assert!(DirTree::decode(&unsorted).is_err());
        let dup = enc(
            vec![("a".into(), ok.clone()), ("a".into(), ok.clone())],
            vec![],
        );
        assert!(DirTree::decode(&dup).is_err());
        let both = enc(
            vec![("a".into(), ok.clone())],
            vec![("a".into(), ok.clone(), ok.clone())],
        );
        assert!(DirTree::decode(&both).is_err());
        let short = enc(vec![("a".into(), vec![1, 2, 3])], vec![]);
        assert!(DirTree::decode(&short).is_err());
        assert!(DirTree::decode(&[0xff, 0x13, 0x00]).is_err());
    }
}

//! cpio members (the "newc" format, with or without CRC) as [`Entry`]
//! values, through the `cpio` crate.
//!
//! Hard links: newc gives every name of a multiply-linked file (same inode)
//! its own member, and GNU cpio stores the data once, with the last of
//! them; the others have size 0. Names seen before the data are held back
//! and linked to it when it comes; a group that never brings data is an
//! empty file.

use super::{Entry, Importer, Kind};
use crate::error::{IoContext, RepoError, Result};
use oxtree_object::{mode, Xattrs};
use std::collections::HashMap;
use std::io::Read;

/// The longest symlink target read (Linux's PATH_MAX).
const MAX_TARGET: u32 = 4096;

/// Import every member of a newc cpio stream.
pub(super) fn import<R: Read>(imp: &mut Importer<'_, '_>, mut reader: R) -> Result<()> {
    // Per (dev, ino) of a multiply-linked file: the member that holds its
    // data, or the names still waiting for it.
    let mut stored: HashMap<(u32, u32, u32), String> = HashMap::new();
    let mut waiting: HashMap<(u32, u32, u32), Vec<Entry>> = HashMap::new();
    loop {
        let mut r = cpio::newc::Reader::new(reader).ctx(|| "reading cpio member")?;
        let e = r.entry().clone();
        if e.is_trailer() {
            break;
        }
        let name = e.name().to_string();
        let key = (e.dev_major(), e.dev_minor(), e.ino());
        let (nlink, size) = (e.nlink(), e.file_size());
        let entry = |kind| Entry {
            path: name.clone(),
            uid: e.uid(),
            gid: e.gid(),
            perms: e.mode() & 0o7777,
            xattrs: Xattrs::new(),
            kind,
        };
        match e.mode() & mode::S_IFMT {
            mode::S_IFDIR => imp.add(entry(Kind::Dir), &mut std::io::empty())?,
            mode::S_IFLNK => {
                if size > MAX_TARGET {
                    return Err(RepoError::Invalid(format!(
                        "cpio symlink {name}: target of {size} bytes"
                    )));
                }
                let mut t = Vec::new();
                (&mut r)
                    .take(u64::from(size))
                    .read_to_end(&mut t)
                    .ctx(|| format!("reading cpio member {name}"))?;
                let t = String::from_utf8(t).map_err(|_| {
                    RepoError::Invalid(format!("cpio symlink {name}: target is not UTF-8"))
                })?;
                imp.add(entry(Kind::Symlink(t)), &mut std::io::empty())?;
            }
            mode::S_IFREG if nlink > 1 => {
                if let Some(first) = stored.get(&key) {
                    imp.add(entry(Kind::HardLink(first.clone())), &mut std::io::empty())?;
                } else if size == 0 {
                    waiting
                        .entry(key)
                        .or_default()
                        .push(entry(Kind::File { size: 0 }));
                } else {
                    imp.add(entry(Kind::File { size: size.into() }), &mut r)?;
                    for w in waiting.remove(&key).unwrap_or_default() {
                        let link = Entry {
                            kind: Kind::HardLink(name.clone()),
                            ..w
                        };
                        imp.add(link, &mut std::io::empty())?;
                    }
                    stored.insert(key, name.clone());
                }
            }
            mode::S_IFREG => imp.add(entry(Kind::File { size: size.into() }), &mut r)?,
            other => {
                return Err(RepoError::Invalid(format!(
                    "cpio member {name} has an unsupported type (mode {other:o})"
                )))
            }
        }
        reader = r.finish().ctx(|| format!("reading cpio member {name}"))?;
    }
    // Linked names whose data never came: an empty file and its links.
    let mut groups: Vec<_> = waiting.into_values().collect();
    groups.sort_by(|a, b| a[0].path.cmp(&b[0].path));
    for group in groups {
        let mut it = group.into_iter();
        let Some(first) = it.next() else { continue };
        let first_path = first.path.clone();
        imp.add(first, &mut std::io::empty())?;
        for w in it {
            let link = Entry {
                kind: Kind::HardLink(first_path.clone()),
                ..w
            };
            imp.add(link, &mut std::io::empty())?;
        }
    }
    Ok(())
}

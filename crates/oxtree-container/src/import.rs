//! Reading a layer of an ostree-ext image back into a repository: the
//! objects under `sysroot/ostree/repo/objects/` are written through a
//! transaction, each verified against its name; the other members (the
//! hardlinked paths, directories) are only checked. Refused: absolute
//! names, `..`, NUL, device nodes, FIFOs and other special entries, links
//! to anything but an object, symlinks (other than objects) that climb out
//! of the tree, metadata objects over 64 MiB, xattrs that do not parse.
//! Nothing is ever extracted to a filesystem.

use crate::error::{ContainerError, Result};
use crate::layer::REPO;
use oxtree_object::{Checksum, FileHeader, ObjectType, Xattrs};
use oxtree_repo::Transaction;
use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use tar::EntryType;

/// Largest commit, dirtree or dirmeta object accepted.
pub const MAX_METADATA: u64 = 64 << 20;

/// What a layer held.
#[derive(Debug, Default)]
pub struct Imported {
    /// The commit object, for the commit layer.
    pub commit: Option<Checksum>,
    /// Its detached metadata, written after the transaction.
    pub commitmeta: Option<Vec<u8>>,
    /// The content objects of the layer.
    pub content: BTreeSet<Checksum>,
}

fn bad(what: impl std::fmt::Display) -> ContainerError {
    ContainerError::Invalid(format!("layer: {what}"))
}

/// A member name, checked: relative, no `..`, no NUL, not empty.
pub fn check_name(name: &[u8]) -> Result<String> {
    let s = std::str::from_utf8(name).map_err(|_| bad("a member name is not UTF-8"))?;
    if s.is_empty() || s.contains('\0') {
        return Err(bad(format!("bad member name {s:?}")));
    }
    if s.starts_with('/') {
        return Err(bad(format!("absolute member name {s:?}")));
    }
    if s.split('/').any(|c| c == "..") {
        return Err(bad(format!("member name with `..`: {s:?}")));
    }
    Ok(s.trim_start_matches("./").to_string())
}

/// Whether the relative symlink `target` of the member `name` climbs out
/// of the tree (lexically: `a/b -> ../../..`).
pub fn symlink_escapes(name: &str, target: &str) -> bool {
    if target.starts_with('/') {
        return false;
    }
    let mut depth = name
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .count() as i64
        - 1;
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            _ => depth += 1,
        }
    }
    false
}

/// `objects/XX/REST.EXT` under the repository: (checksum, EXT).
fn parse_object(name: &str) -> Result<Option<(Checksum, &str)>> {
    let Some(rest) = name
        .strip_prefix(REPO)
        .and_then(|r| r.strip_prefix("/objects/"))
    else {
        return Ok(None);
    };
    let Some((dir, file)) = rest.split_once('/') else {
        return Ok(None);
    };
    if file.is_empty() {
        return Ok(None);
    }
    let (hex, ext) = file
        .split_once('.')
        .ok_or_else(|| bad(format!("object without a type: {name}")))?;
    if dir.len() != 2 || hex.len() != 62 {
        return Err(bad(format!("bad object name {name}")));
    }
    let c = Checksum::from_hex(&format!("{dir}{hex}"))
        .map_err(|_| bad(format!("bad object name {name}")))?;
    Ok(Some((c, ext)))
}

fn read_limited(r: &mut impl Read, size: u64, what: &str) -> Result<Vec<u8>> {
    if size > MAX_METADATA {
        return Err(bad(format!("{what} is {size} bytes")));
    }
    let mut v = Vec::with_capacity(size as usize);
    r.take(size)
        .read_to_end(&mut v)
        .map_err(|e| bad(format!("reading {what}: {e}")))?;
    Ok(v)
}

fn parse_xattrs(bytes: &[u8]) -> Result<Xattrs> {
    if bytes.is_empty() {
        return Ok(Xattrs::new());
    }
    let wire: Vec<(Vec<u8>, Vec<u8>)> = oxtree_object::gvariant::decode("xattrs", bytes)
        .map_err(|e| bad(format!("xattrs: {e}")))?;
    Xattrs::from_wire(wire).map_err(|e| bad(format!("xattrs: {e}")))
}

/// Import one uncompressed layer tar from `r` into `txn`.
pub fn import_layer(txn: &Transaction<'_>, r: impl Read, cancel: &AtomicBool) -> Result<Imported> {
    let mut ar = tar::Archive::new(r);
    let mut out = Imported::default();
    // Xattrs of the objects to come (`.file-xattrs-link`), and the
    // split xattrs objects of the older form (`xattrs/HASH`).
    let mut pending: HashMap<Checksum, Xattrs> = HashMap::new();
    let mut split: HashMap<String, Xattrs> = HashMap::new();
    let entries = ar.entries().map_err(bad)?;
    for e in entries {
        if cancel.load(Ordering::Relaxed) {
            return Err(ContainerError::Cancelled);
        }
        let mut e = e.map_err(|e| bad(format!("reading the archive: {e}")))?;
        let name = check_name(&e.path_bytes())?;
        let h = e.header().clone();
        let kind = h.entry_type();
        let link = match e.link_name_bytes() {
            Some(l) => Some(
                std::str::from_utf8(&l)
                    .map_err(|_| bad(format!("{name}: link target is not UTF-8")))?
                    .to_string(),
            ),
            None => None,
        };
        match kind {
            EntryType::Regular | EntryType::Directory | EntryType::Symlink | EntryType::Link => {}
            EntryType::Char | EntryType::Block => {
                return Err(bad(format!("device node {name}")));
            }
            other => return Err(bad(format!("{name}: unsupported entry type {other:?}"))),
        }
        if let Some(l) = &link {
            if l.contains('\0') {
                return Err(bad(format!("{name}: link target with NUL")));
            }
            // An object's target is content, relative to its paths, not
            // to the object store: only other symlinks are checked.
            let object = name.starts_with(&format!("{REPO}/objects/"));
            if kind == EntryType::Symlink && !object && symlink_escapes(&name, l) {
                return Err(bad(format!("{name}: symlink escapes the tree: {l:?}")));
            }
            if kind == EntryType::Link {
                let target = check_name(l.as_bytes())?;
                let ok = target.starts_with(&format!("{REPO}/objects/"))
                    || target.starts_with(&format!("{REPO}/xattrs/"));
                if !ok {
                    return Err(bad(format!("{name}: hardlink to {l:?}")));
                }
            }
        }
        let size = h.size().map_err(|e| bad(format!("{name}: {e}")))?;
        let uid = h.uid().map_err(|e| bad(format!("{name}: {e}")))? as u32;
        let gid = h.gid().map_err(|e| bad(format!("{name}: {e}")))? as u32;
        let mode = h.mode().map_err(|e| bad(format!("{name}: {e}")))?;

        if let Some(hash) = name.strip_prefix(&format!("{REPO}/xattrs/")) {
            if kind == EntryType::Regular {
                let b = read_limited(&mut e, size, &name)?;
                split.insert(hash.to_string(), parse_xattrs(&b)?);
            }
            continue;
        }
        let Some((csum, ext)) = parse_object(&name)? else {
            continue;
        };
        match (ext, kind) {
            ("commit", EntryType::Regular) => {
                let b = read_limited(&mut e, size, &name)?;
                txn.write_meta_trusted_name(ObjectType::Commit, &csum, &b)?;
                if out.commit.replace(csum).is_some() {
                    return Err(bad("more than one commit object"));
                }
            }
            ("commitmeta", EntryType::Regular) => {
                let b = read_limited(&mut e, size, &name)?;
                oxtree_object::Metadata::decode(&b).map_err(|e| bad(format!("{name}: {e}")))?;
                out.commitmeta = Some(b);
            }
            ("dirtree", EntryType::Regular) => {
                let b = read_limited(&mut e, size, &name)?;
                oxtree_object::DirTree::decode(&b).map_err(|e| bad(format!("{name}: {e}")))?;
                txn.write_meta_trusted_name(ObjectType::DirTree, &csum, &b)?;
            }
            ("dirmeta", EntryType::Regular) => {
                let b = read_limited(&mut e, size, &name)?;
                oxtree_object::DirMeta::decode(&b).map_err(|e| bad(format!("{name}: {e}")))?;
                txn.write_meta_trusted_name(ObjectType::DirMeta, &csum, &b)?;
            }
            ("file-xattrs-link", EntryType::Regular) => {
                let b = read_limited(&mut e, size, &name)?;
                pending.insert(csum, parse_xattrs(&b)?);
            }
            ("file-xattrs-link", EntryType::Link) => {
                let target = link.unwrap_or_default();
                let hash = target.rsplit('/').next().unwrap_or_default();
                let x = split
                    .get(hash)
                    .cloned()
                    .ok_or_else(|| bad(format!("{name}: no xattrs object {target}")))?;
                pending.insert(csum, x);
            }
            ("file", EntryType::Regular) => {
                let xattrs = pending.remove(&csum).unwrap_or_default();
                let fh = FileHeader::regular(uid, gid, mode, xattrs);
                txn.write_content_expect(&csum, &fh, size, &mut e)?;
                out.content.insert(csum);
            }
            ("file", EntryType::Symlink) => {
                let xattrs = pending.remove(&csum).unwrap_or_default();
                let target = link.ok_or_else(|| bad(format!("{name}: symlink without target")))?;
                let fh = FileHeader::symlink(uid, gid, target, xattrs);
                txn.write_content_expect(&csum, &fh, 0, std::io::empty())?;
                out.content.insert(csum);
            }
            ("file", EntryType::Link) => {
                // Another name of an object of this layer.
            }
            (ext, kind) => {
                return Err(bad(format!(
                    "{name}: unexpected {ext} entry of type {kind:?}"
                )))
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert_eq!(check_name(b"./usr/bin").unwrap(), "usr/bin");
        assert!(check_name(b"../x").is_err());
        assert!(check_name(b"a/../../x").is_err());
        assert!(check_name(b"/etc/passwd").is_err());
        assert!(check_name(b"").is_err());
        assert!(check_name(b"a\0b").is_err());
        let h = "a".repeat(64);
        let name = format!("{REPO}/objects/{}/{}.file", &h[..2], &h[2..]);
        let (c, ext) = parse_object(&name).unwrap().unwrap();
        assert_eq!((c.to_hex(), ext), (h, "file"));
        assert!(parse_object(&format!("{REPO}/objects/aa/zz.file")).is_err());
        assert!(parse_object("usr/bin/x").unwrap().is_none());
        assert!(symlink_escapes("usr/x", "../../etc"));
        assert!(symlink_escapes("x", ".."));
        assert!(!symlink_escapes("usr/lib/x", "../../etc/y"));
        assert!(!symlink_escapes("usr/x", "/etc/shadow"));
        assert!(!symlink_escapes("usr/bin/sh", "dash"));
    }
}

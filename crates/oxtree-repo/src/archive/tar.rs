//! tar members as [`Entry`] values: GNU and PAX tar through the `tar`
//! crate, with `SCHILY.xattr.*` PAX records read in a raw first pass.

use super::{Entry, Importer, Kind};
use crate::error::{IoContext, RepoError, Result};
use oxtree_object::Xattrs;
use std::io::{Read, Seek};

/// Import every member of a tar stream.
pub(super) fn import<R: Read + Seek>(imp: &mut Importer<'_, '_>, mut reader: R) -> Result<()> {
    // First pass: xattrs from the raw PAX records (see `pax_xattrs`).
    let xattrs_by_entry = pax_xattrs(&mut reader)?;
    reader.rewind().ctx(|| "rewinding tar archive")?;
    let mut ar = tar::Archive::new(reader);
    let entries = ar.entries().ctx(|| "reading tar archive")?;
    for (index, entry) in entries.enumerate() {
        let mut e = entry.ctx(|| "reading tar entry")?;
        let path = utf8(&e.path().ctx(|| "reading tar entry path")?)?;
        let hdr = e.header();
        let etype = hdr.entry_type();
        let link = e
            .link_name()
            .ctx(|| "reading tar link name")?
            .map(|p| utf8(&p))
            .transpose()?;
        let missing_link = || RepoError::Invalid(format!("tar member {path} has no link target"));
        let kind = if etype.is_dir() {
            Kind::Dir
        } else if etype.is_symlink() {
            Kind::Symlink(link.ok_or_else(missing_link)?)
        } else if etype.is_hard_link() {
            Kind::HardLink(link.ok_or_else(missing_link)?)
        } else if etype.is_file() || etype == tar::EntryType::Continuous {
            Kind::File { size: e.size() }
        } else {
            return Err(RepoError::Invalid(format!(
                "tar member {path} has an unsupported type {etype:?}"
            )));
        };
        let entry = Entry {
            uid: hdr.uid().unwrap_or(0) as u32,
            gid: hdr.gid().unwrap_or(0) as u32,
            perms: hdr.mode().unwrap_or(0o644) & 0o7777,
            xattrs: Xattrs::from_pairs(xattrs_by_entry.get(&index).cloned().unwrap_or_default()),
            path,
            kind,
        };
        imp.add(entry, &mut e)?;
    }
    Ok(())
}

fn utf8(p: &std::path::Path) -> Result<String> {
    p.to_str()
        .map(str::to_string)
        .ok_or_else(|| RepoError::Invalid(format!("non-UTF-8 path in tar: {}", p.display())))
}

/// The `SCHILY.xattr.*` PAX records of each member, by member index.
///
/// Read in a raw pass because the `tar` crate splits PAX records at
/// newlines, which loses binary xattr values that contain one; records are
/// length-prefixed (`LEN KEY=VALUE\n`), so this parses them by length.
fn pax_xattrs<R: Read>(reader: R) -> Result<std::collections::HashMap<usize, XattrPairs>> {
    let mut out = std::collections::HashMap::new();
    let mut ar = tar::Archive::new(reader);
    let mut entries = ar.entries().ctx(|| "reading tar archive")?.raw(true);
    let mut pending: XattrPairs = Vec::new();
    let mut index = 0usize;
    for entry in &mut entries {
        let mut e = entry.ctx(|| "reading tar entry")?;
        match e.header().entry_type() {
            tar::EntryType::XHeader => {
                let mut data = Vec::new();
                (&mut e)
                    .take(16 << 20)
                    .read_to_end(&mut data)
                    .ctx(|| "reading PAX header")?;
                for (k, v) in parse_pax_records(&data)? {
                    if let Some(name) = k.strip_prefix(b"SCHILY.xattr.") {
                        pending.push((name.to_vec(), v));
                    }
                }
            }
            tar::EntryType::XGlobalHeader
            | tar::EntryType::GNULongName
            | tar::EntryType::GNULongLink => {}
            _ => {
                if !pending.is_empty() {
                    out.insert(index, std::mem::take(&mut pending));
                }
                index += 1;
            }
        }
    }
    Ok(out)
}

type XattrPairs = Vec<(Vec<u8>, Vec<u8>)>;

/// Parse `LEN KEY=VALUE\n` records; LEN counts the whole record.
fn parse_pax_records(mut data: &[u8]) -> Result<XattrPairs> {
    let bad = || RepoError::Invalid("malformed PAX extended header in tar".into());
    let mut out = Vec::new();
    while !data.is_empty() {
        let sp = data.iter().position(|b| *b == b' ').ok_or_else(bad)?;
        let len: usize = std::str::from_utf8(&data[..sp])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(bad)?;
        if len <= sp + 1 || len > data.len() || data[len - 1] != b'\n' {
            return Err(bad());
        }
        let kv = &data[sp + 1..len - 1];
        let eq = kv.iter().position(|b| *b == b'=').ok_or_else(bad)?;
        out.push((kv[..eq].to_vec(), kv[eq + 1..].to_vec()));
        data = &data[len..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::parse_pax_records;

    #[test]
    fn pax_records_keep_binary_values() {
        let rec = b"27 SCHILY.xattr.user.b=\x00\n\xff\n12 path=abc\n";
        let r = parse_pax_records(rec).unwrap();
        assert_eq!(
            r[0],
            (b"SCHILY.xattr.user.b".to_vec(), b"\x00\n\xff".to_vec())
        );
        assert_eq!(r[1], (b"path".to_vec(), b"abc".to_vec()));
        assert!(parse_pax_records(b"99 a=b\n").is_err());
        assert!(parse_pax_records(b"x a=b\n").is_err());
        assert!(parse_pax_records(b"3 a").is_err());
    }
}

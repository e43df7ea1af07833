//! Export: stream a commit (or a subpath of it) as a tar archive laid out
//! as `ostree export` writes it: GNU format, the root as `./` (or the
//! prefix), then each directory's files before its subdirectories, in name
//! order; owner, mode and the commit's timestamp on every entry; long names
//! and link targets as GNU `././@LongLink` records. Extended attributes,
//! which ostree's GNU-format export drops, are added as PAX
//! `SCHILY.xattr.*` records unless disabled.
//!
//! File content is verified against its checksum while it is written.

use crate::error::{IoContext, RepoError, Result};
use crate::traverse::MAX_TREE_DEPTH;
use crate::tree::Node;
use crate::Repo;
use oxtree_object::{Checksum, ObjectType, Xattrs};
use std::io::{Read, Write};
use tar::{EntryType, Header};

#[derive(Clone, Debug)]
pub struct ExportOptions {
    /// Export only this path of the commit.
    pub subpath: Option<String>,
    /// Prepended verbatim to every member name (as ostree does: `--prefix=p`
    /// gives `p/` for the root but `pNAME` below it; end it with `/`).
    pub prefix: Option<String>,
    /// Write xattrs as PAX records.
    pub xattrs: bool,
    /// Pad the archive to a whole 10240-byte record, as libarchive (and so
    /// `ostree export`) does when writing to standard output.
    pub pad_to_record: bool,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            subpath: None,
            prefix: None,
            xattrs: true,
            pad_to_record: false,
        }
    }
}

struct Exporter<'a, W: Write> {
    repo: &'a Repo,
    out: W,
    mtime: u64,
    opts: &'a ExportOptions,
    files: u64,
    written: u64,
    progress: &'a (dyn Fn(u64, u64) + Sync),
}

impl Repo {
    /// Write `commit` as a tar stream to `out` (finished with the two zero
    /// blocks); returns the writer. `progress` gets (files written, 0).
    pub fn export_tar<W: Write>(
        &self,
        commit: &Checksum,
        out: W,
        opts: &ExportOptions,
        progress: &(dyn Fn(u64, u64) + Sync),
    ) -> Result<W> {
        let c = self.load_commit(commit)?;
        let root = (c.root_tree, c.root_meta);
        let node = match opts.subpath.as_deref() {
            Some(p) => self.resolve_path(root, p)?,
            None => Node::Dir {
                tree: root.0,
                meta: root.1,
            },
        };
        let mut ex = Exporter {
            repo: self,
            out,
            mtime: c.timestamp,
            opts,
            files: 0,
            written: 0,
            progress,
        };
        let prefix = opts.prefix.clone().unwrap_or_default();
        match node {
            Node::Dir { tree, meta } => {
                let top = if prefix.is_empty() {
                    ".".to_string()
                } else {
                    prefix.clone()
                };
                ex.dir(&top, &prefix, &tree, &meta, 0)?;
            }
            Node::File(f) => {
                let name = opts
                    .subpath
                    .as_deref()
                    .and_then(|p| p.rsplit('/').find(|c| !c.is_empty()))
                    .unwrap_or("file");
                ex.file(&format!("{prefix}{name}"), &f)?;
            }
        }
        ex.io("the end of the archive", &[0u8; 1024])?;
        if opts.pad_to_record {
            let rest = (RECORD - ex.written % RECORD) % RECORD;
            ex.io("the end of the archive", &vec![0u8; rest as usize])?;
        }
        ex.out.flush().ctx(|| "flushing the archive")?;
        Ok(ex.out)
    }
}

/// libarchive's default block size.
const RECORD: u64 = 10240;

/// A GNU header with the fields every entry shares.
fn header(kind: EntryType, mode: u32, uid: u32, gid: u32, size: u64, mtime: u64) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode & 0o7777);
    h.set_uid(uid as u64);
    h.set_gid(gid as u64);
    h.set_size(size);
    h.set_mtime(mtime);
    h
}

/// The header checksum as libarchive formats it (`%06o\0 `); the tar
/// crate writes seven digits.
fn set_cksum(h: &mut Header) {
    let b = h.as_mut_bytes();
    b[148..156].fill(b' ');
    let sum: u32 = b.iter().map(|&x| x as u32).sum();
    b[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

fn pad(len: u64) -> usize {
    ((512 - (len % 512)) % 512) as usize
}

impl<W: Write> Exporter<'_, W> {
    fn io(&mut self, what: &str, data: &[u8]) -> Result<()> {
        self.written += data.len() as u64;
        self.out
            .write_all(data)
            .ctx(|| format!("writing {what} to the archive"))
    }

    /// A GNU long-name (`L`) or long-link (`K`) record, as libarchive
    /// writes them (with the entry's link target, truncated, in both).
    fn long_record(&mut self, kind: u8, value: &[u8], link: Option<&str>) -> Result<()> {
        let len = value.len() as u64 + 1;
        let mut h = header(EntryType::new(kind), 0, 0, 0, len, 0);
        if let Some(l) = link {
            let n = l.len().min(100);
            h.as_old_mut().linkname[..n].copy_from_slice(&l.as_bytes()[..n]);
        }
        let gnu = h.as_gnu_mut().expect("GNU header");
        gnu.name[..13].copy_from_slice(b"././@LongLink");
        gnu.uname[..4].copy_from_slice(b"root");
        gnu.gname[..5].copy_from_slice(b"wheel");
        set_cksum(&mut h);
        self.io("a long name", h.as_bytes())?;
        self.io("a long name", value)?;
        self.io("a long name", &[0])?;
        self.io("padding", &vec![0u8; pad(len)])
    }

    /// PAX `SCHILY.xattr.NAME=VALUE` records for an entry's xattrs.
    fn pax_xattrs(&mut self, name: &str, xattrs: &Xattrs) -> Result<()> {
        if !self.opts.xattrs || xattrs.is_empty() {
            return Ok(());
        }
        let mut body = Vec::new();
        for (k, v) in xattrs.iter() {
            let mut rec = b" SCHILY.xattr.".to_vec();
            rec.extend_from_slice(k);
            rec.push(b'=');
            rec.extend_from_slice(v);
            rec.push(b'\n');
            // The length prefix counts itself.
            let mut n = rec.len() + 1;
            while n.to_string().len() + rec.len() != n {
                n = n.to_string().len() + rec.len();
            }
            body.extend_from_slice(n.to_string().as_bytes());
            body.extend_from_slice(&rec);
        }
        let mut h = Header::new_ustar();
        h.set_entry_type(EntryType::XHeader);
        h.set_mode(0o644);
        h.set_size(body.len() as u64);
        h.set_mtime(self.mtime);
        let base = name.trim_end_matches('/').rsplit('/').next().unwrap_or("");
        let mut pax_name = format!("PaxHeaders/{base}").into_bytes();
        pax_name.truncate(100);
        h.as_old_mut().name[..pax_name.len()].copy_from_slice(&pax_name);
        set_cksum(&mut h);
        self.io("xattrs", h.as_bytes())?;
        self.io("xattrs", &body)?;
        self.io("padding", &vec![0u8; pad(body.len() as u64)])
    }

    /// Write a header named `name` (long forms first when needed).
    fn entry(&mut self, mut h: Header, name: &str, link: Option<&str>) -> Result<()> {
        if let Some(l) = link {
            if l.len() > 100 {
                self.long_record(b'K', l.as_bytes(), link)?;
            }
            let n = l.len().min(100);
            h.as_old_mut().linkname[..n].copy_from_slice(&l.as_bytes()[..n]);
        }
        if name.len() > 100 {
            self.long_record(b'L', name.as_bytes(), link)?;
        }
        let n = name.len().min(100);
        h.as_old_mut().name[..n].copy_from_slice(&name.as_bytes()[..n]);
        set_cksum(&mut h);
        self.io("a header", h.as_bytes())
    }

    fn dir(
        &mut self,
        name: &str,
        path: &str,
        tree: &Checksum,
        meta: &Checksum,
        depth: usize,
    ) -> Result<()> {
        if depth > MAX_TREE_DEPTH {
            return Err(RepoError::BadObject {
                checksum: *tree,
                kind: ObjectType::DirTree,
                reason: format!("directories nested deeper than {MAX_TREE_DEPTH}"),
            });
        }
        let m = self.repo.load_dirmeta(meta)?;
        let t = self.repo.load_dirtree(tree)?;
        let mut name = name.to_string();
        if !name.ends_with('/') {
            name.push('/');
        }
        self.pax_xattrs(&name, &m.xattrs)?;
        let h = header(EntryType::Directory, m.mode, m.uid, m.gid, 0, self.mtime);
        self.entry(h, &name, None)?;
        for f in &t.files {
            self.file(&format!("{path}{}", f.name), &f.checksum)?;
        }
        for d in &t.dirs {
            let p = format!("{path}{}", d.name);
            self.dir(&p, &format!("{p}/"), &d.tree, &d.meta, depth + 1)?;
        }
        Ok(())
    }

    fn file(&mut self, name: &str, csum: &Checksum) -> Result<()> {
        let stored = self.repo.open_file(csum)?;
        let fh = stored.header.clone();
        self.pax_xattrs(name, &fh.xattrs)?;
        if fh.is_symlink() {
            let h = header(EntryType::Symlink, fh.mode, fh.uid, fh.gid, 0, self.mtime);
            self.entry(h, name, Some(&fh.symlink_target))?;
        } else {
            let size = stored.size;
            let h = header(
                EntryType::Regular,
                fh.mode,
                fh.uid,
                fh.gid,
                size,
                self.mtime,
            );
            self.entry(h, name, None)?;
            let mut hasher = fh.hasher();
            let mut content = stored.content.take(size);
            let mut buf = vec![0u8; 128 << 10];
            let mut total = 0u64;
            let bad = |reason: String| RepoError::BadObject {
                checksum: *csum,
                kind: ObjectType::File,
                reason,
            };
            loop {
                let n = match content.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(bad(format!("reading content: {e}"))),
                };
                hasher.update(&buf[..n]);
                self.io("file content", &buf[..n])?;
                total += n as u64;
            }
            let actual = hasher.finish();
            if total != size || actual != *csum {
                return Err(bad(format!(
                    "corrupt object: content hashes to {actual} ({total} of {size} bytes)"
                )));
            }
            self.io("padding", &vec![0u8; pad(size)])?;
        }
        self.files += 1;
        if self.files.is_multiple_of(256) {
            (self.progress)(self.files, 0);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mode::RepoMode;
    use crate::traverse::commit_dir_for_test;
    use std::fs;

    #[test]
    fn export_lists_like_ostree_and_round_trips() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = Repo::init(&tmp.path().join("repo"), RepoMode::Archive).unwrap();
        let s = tmp.path().join("src");
        let long = "n".repeat(150);
        fs::create_dir_all(s.join("d/e")).unwrap();
        fs::write(s.join("b"), "bee").unwrap();
        fs::write(s.join("d/e").join(&long), "long").unwrap();
        std::os::unix::fs::symlink("b", s.join("a")).unwrap();
        let c = commit_dir_for_test(&repo, &s, None, 1_577_836_800);
        let tar = repo
            .export_tar(&c, Vec::new(), &ExportOptions::default(), &|_, _| {})
            .unwrap();
        assert_eq!(tar.len() % 512, 0);
        let mut ar = tar::Archive::new(&tar[..]);
        let mut seen = Vec::new();
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let p = e.path().unwrap().to_string_lossy().into_owned();
            assert_eq!(e.header().mtime().unwrap(), 1_577_836_800);
            let mut body = String::new();
            e.read_to_string(&mut body).unwrap();
            seen.push((p, body));
        }
        let names: Vec<&str> = seen.iter().map(|(p, _)| p.as_str()).collect();
        let long_path = format!("d/e/{long}");
        assert_eq!(names, ["./", "a", "b", "d/", "d/e/", long_path.as_str()]);
        assert_eq!(seen[2].1, "bee");
        assert_eq!(seen[5].1, "long");
    }
}

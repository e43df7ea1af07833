//! Archive import for `commit --tree=tar=`: tar (plain or gzip, with PAX
//! xattrs) and cpio (newc, as `find | cpio -o -H newc` writes it), the
//! formats ostree's libarchive import reads. Each format's reader turns its
//! members into [`Entry`] values; one [`Importer`] stores them into a
//! [`MutableTree`], applying the commit modifier, the skip list,
//! `--tar-pathname-filter` and `--tar-autocreate-parents`.
//!
//! Member paths are untrusted: `..`, NUL and invalid names are refused
//! before anything is stored, and a filter's output is checked again.

mod cpio;
mod tar;

use crate::commit::CommitModifier;
use crate::error::{IoContext, RepoError, Result};
use crate::mode::RepoMode;
use crate::mtree::{default_dirmeta, MutableTree};
use crate::transaction::Transaction;
use oxtree_object::{mode, DirMeta, FileHeader, Xattrs};
use std::io::{Read, Seek};

/// How an archive is imported, beyond the commit modifier.
#[derive(Clone, Debug, Default)]
pub struct ArchiveOptions {
    /// `--tar-autocreate-parents`: directories the archive does not list
    /// get the default metadata (0755, owner per the modifier).
    pub autocreate_parents: bool,
    /// `--tar-pathname-filter=REGEX,REPLACEMENT`.
    pub pathname_filter: Option<PathnameFilter>,
}

/// A regex replacement applied to each member's path (relative, without a
/// leading `./`) before anything else looks at it.
#[derive(Clone, Debug)]
pub struct PathnameFilter {
    regex: regex::Regex,
    replacement: String,
}

impl PathnameFilter {
    /// Parse `REGEX,REPLACEMENT`; the replacement is literal.
    pub fn parse(spec: &str) -> Result<Self> {
        let (re, replacement) = spec.split_once(',').ok_or_else(|| {
            RepoError::Invalid(format!(
                "--tar-pathname-filter '{spec}': expected REGEX,REPLACEMENT"
            ))
        })?;
        let regex = regex::Regex::new(re)
            .map_err(|e| RepoError::Invalid(format!("--tar-pathname-filter regex '{re}': {e}")))?;
        Ok(PathnameFilter {
            regex,
            replacement: replacement.to_string(),
        })
    }

    fn apply(&self, path: &str) -> String {
        self.regex
            .replace_all(path, regex::NoExpand(&self.replacement))
            .into_owned()
    }
}

/// What a member is.
#[derive(Debug)]
enum Kind {
    Dir,
    File {
        size: u64,
    },
    Symlink(String),
    /// A hard link to an earlier member, by that member's raw path.
    HardLink(String),
}

/// One archive member, as any format gives it.
#[derive(Debug)]
struct Entry {
    /// The member's path as the archive spells it.
    path: String,
    uid: u32,
    gid: u32,
    perms: u32,
    xattrs: Xattrs,
    kind: Kind,
}

/// Stores members into a tree being built.
struct Importer<'a, 'r> {
    tx: &'a Transaction<'r>,
    m: &'a CommitModifier,
    opts: &'a ArchiveOptions,
    mode: RepoMode,
    built: MutableTree,
}

impl Importer<'_, '_> {
    /// The member path's components after the filter; refuses escapes.
    fn components(&self, raw: &str) -> Result<Vec<String>> {
        let canonical = split_path(raw)?.join("/");
        let path = match &self.opts.pathname_filter {
            Some(f) => f.apply(&canonical),
            None => canonical,
        };
        split_path(&path)
    }

    /// Store one member; `content` is its data (files only).
    fn add(&mut self, e: Entry, content: &mut dyn Read) -> Result<()> {
        let comps = self.components(&e.path)?;
        let strs: Vec<&str> = comps.iter().map(String::as_str).collect();
        let path = format!("/{}", strs.join("/"));
        // A skipped member, or one below a skipped directory.
        if (1..=strs.len()).any(|n| self.m.skips(&format!("/{}", strs[..n].join("/")))) {
            return Ok(());
        }
        let (uid, gid, xattrs) = (e.uid, e.gid, e.xattrs);
        if self.opts.autocreate_parents {
            self.autocreate(&strs[..strs.len().saturating_sub(1)], uid, gid)?;
        }
        if let Kind::Dir = e.kind {
            let meta = self.m.dir(
                &path,
                self.mode,
                DirMeta {
                    uid,
                    gid,
                    mode: mode::S_IFDIR | e.perms,
                    xattrs,
                },
            );
            let csum = self.tx.write_dirmeta(&meta)?;
            self.built.dir_at_path(&strs).meta = Some(csum);
            return Ok(());
        }
        let Some((leaf, parents)) = strs.split_last() else {
            return Err(RepoError::Invalid(format!(
                "archive member '{}' has an empty path",
                e.path
            )));
        };
        let csum = match e.kind {
            Kind::Dir => unreachable!("handled above"),
            Kind::Symlink(target) => {
                let h = self.m.file(
                    &path,
                    self.mode,
                    FileHeader::symlink(uid, gid, target, xattrs),
                );
                self.tx.write_content(&h, 0, std::io::empty())?.checksum
            }
            Kind::HardLink(target) => {
                let tc = self.components(&target)?;
                let ts: Vec<&str> = tc.iter().map(String::as_str).collect();
                self.built.lookup_file(&ts).ok_or_else(|| {
                    RepoError::Invalid(format!(
                        "archive hard link '{}' to unknown member '{target}'",
                        e.path
                    ))
                })?
            }
            Kind::File { size } => {
                let h = self.m.file(
                    &path,
                    self.mode,
                    FileHeader::regular(uid, gid, e.perms, xattrs),
                );
                self.tx.write_content(&h, size, content)?.checksum
            }
        };
        self.built.dir_at_path(parents).set_file(leaf, csum);
        Ok(())
    }

    /// `--tar-autocreate-parents`: the root and each directory of
    /// `parents` the archive has not described yet get 0755 and the owner
    /// of the member that needs them (ostree's rule; the modifier is not
    /// applied, and a later member for the directory replaces this).
    fn autocreate(&mut self, parents: &[&str], uid: u32, gid: u32) -> Result<()> {
        let meta = DirMeta {
            uid,
            gid,
            ..default_dirmeta()
        };
        for n in 0..=parents.len() {
            let dir = self.built.dir_at_path(&parents[..n]);
            if dir.meta.is_none() {
                dir.meta = Some(self.tx.write_dirmeta(&meta)?);
            }
        }
        Ok(())
    }

    /// Overlay what was built onto `mt`. With `autocreate_parents`, an
    /// archive that described no root (an empty one) gets the default
    /// root, through the modifier.
    fn finish(mut self, mt: &mut MutableTree) -> Result<()> {
        if self.opts.autocreate_parents && self.built.meta.is_none() {
            let root = self.m.dir("/", self.mode, default_dirmeta());
            self.built.meta = Some(self.tx.write_dirmeta(&root)?);
        }
        mt.overlay(self.built);
        Ok(())
    }
}

/// Components of a member path: `.` and empty ones dropped, `..` refused,
/// each a valid file name.
fn split_path(p: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                return Err(RepoError::Invalid(format!(
                    "archive member {p} escapes the tree"
                )))
            }
            c => {
                oxtree_object::name::validate_filename(c)?;
                out.push(c.to_string());
            }
        }
    }
    Ok(out)
}

impl Transaction<'_> {
    /// Commit the archive `file` into `mt` (overlaying): tar or cpio,
    /// plain or gzip-compressed (inflated first into an unnamed temp file
    /// in the staging directory: the tar import reads it twice).
    pub fn write_archive_file_into(
        &self,
        mut file: std::fs::File,
        mt: &mut MutableTree,
        m: &CommitModifier,
        opts: &ArchiveOptions,
    ) -> Result<()> {
        let magic = read_magic(&mut file)?;
        if magic.starts_with(&[0x1f, 0x8b]) {
            let mut plain = self.temp_file().ctx(|| "creating a temp file")?;
            let mut gz = flate2::read::MultiGzDecoder::new(std::io::BufReader::new(file));
            std::io::copy(&mut gz, &mut plain).ctx(|| "inflating the gzip archive")?;
            plain.rewind().ctx(|| "rewinding the inflated archive")?;
            return self.write_archive_file_into(plain, mt, m, opts);
        }
        let mut imp = Importer {
            tx: self,
            m,
            opts,
            mode: self.repo().mode(),
            built: MutableTree::new(),
        };
        let reader = std::io::BufReader::new(file);
        if magic.starts_with(b"070701") || magic.starts_with(b"070702") {
            cpio::import(&mut imp, reader)?;
        } else {
            tar::import(&mut imp, reader)?;
        }
        imp.finish(mt)
    }

    /// [`Transaction::write_archive_file_into`] for a stream (standard
    /// input), spooled to an unnamed temp file first.
    pub fn write_archive_stream_into(
        &self,
        mut stream: impl Read,
        mt: &mut MutableTree,
        m: &CommitModifier,
        opts: &ArchiveOptions,
    ) -> Result<()> {
        let mut f = self.temp_file().ctx(|| "creating a temp file")?;
        std::io::copy(&mut stream, &mut f).ctx(|| "reading the archive")?;
        f.rewind().ctx(|| "rewinding the archive")?;
        self.write_archive_file_into(f, mt, m, opts)
    }
}

/// The first bytes of a file (up to 6), leaving it rewound.
fn read_magic(file: &mut std::fs::File) -> Result<Vec<u8>> {
    let mut magic = Vec::with_capacity(6);
    (&mut *file)
        .take(6)
        .read_to_end(&mut magic)
        .ctx(|| "reading the archive")?;
    file.rewind().ctx(|| "rewinding the archive")?;
    Ok(magic)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_canonical_and_filtered() {
        assert_eq!(split_path("./usr//bin/").unwrap(), vec!["usr", "bin"]);
        assert!(split_path("usr/../../etc").is_err());
        let f = PathnameFilter::parse("^usr/bin/,usr/sbin/").unwrap();
        assert_eq!(f.apply("usr/bin/foo"), "usr/sbin/foo");
        assert_eq!(f.apply("usr/bin"), "usr/bin");
        let f = PathnameFilter::parse("^,foo/").unwrap();
        assert_eq!(f.apply("usr"), "foo/usr");
        // A filter cannot smuggle an escape in: its output is checked.
        let f = PathnameFilter::parse("^,../").unwrap();
        assert!(split_path(&f.apply("usr")).is_err());
        assert!(PathnameFilter::parse("no-comma").is_err());
    }
}

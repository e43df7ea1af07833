//! Diff: what changed between two trees, each a commit or a directory on
//! disk, in `ostree diff`'s order.
//!
//! Walking A's entries (a commit's files then directories, by name; a
//! directory's in readdir order): a name gone from B is removed; a name
//! whose type changed, or whose content (files) or dirmeta (directories)
//! differs, is modified, and directories present in both are compared
//! recursively. Then B's entries absent from A are added, each added
//! directory followed by everything below it. Identical dirtrees of two
//! commits are skipped without loading them. Files on disk are checksummed
//! as a commit would store them.

use crate::error::{IoContext, RepoError, Result};
use crate::fsutil;
use crate::traverse::{Reachable, MAX_TREE_DEPTH};
use crate::Repo;
use oxtree_object::{Checksum, DirMeta, DirTree, FileHeader, Xattrs};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// One side of a diff.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiffSide {
    Commit(Checksum),
    /// A directory on disk.
    Dir(PathBuf),
}

/// How files on disk are read (`--no-xattrs`, `--owner-uid`, `--owner-gid`).
#[derive(Clone, Debug, Default)]
pub struct DiffOptions {
    pub no_xattrs: bool,
    pub owner_uid: Option<u32>,
    pub owner_gid: Option<u32>,
}

/// Changed paths, relative to each side's root (`a/b`), each list in
/// ostree's order. Modified and removed paths name A's entries, added ones
/// B's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TreeDiff {
    pub modified: Vec<String>,
    pub removed: Vec<String>,
    pub added: Vec<String>,
}

impl TreeDiff {
    pub fn is_empty(&self) -> bool {
        self.modified.is_empty() && self.removed.is_empty() && self.added.is_empty()
    }
}

/// Object counts of two commits (`ostree diff --stats`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiffStats {
    pub a_objects: u64,
    pub b_objects: u64,
    pub common_objects: u64,
    /// Bytes the shared objects occupy on disk.
    pub common_size: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Item {
    RepoFile(Checksum),
    RepoDir {
        tree: Checksum,
        meta: Checksum,
    },
    /// On disk: path, and whether it is a directory, or neither a regular
    /// file, symlink nor directory.
    Local {
        path: PathBuf,
        dir: bool,
        special: bool,
    },
}

impl Item {
    fn is_dir(&self) -> bool {
        matches!(self, Item::RepoDir { .. } | Item::Local { dir: true, .. })
    }
    fn is_special(&self) -> bool {
        matches!(self, Item::Local { special: true, .. })
    }
}

enum DirRef<'a> {
    Repo(DirTree),
    Local(&'a Path),
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

fn too_deep(what: &str) -> RepoError {
    RepoError::Invalid(format!(
        "{what}: directories nested deeper than {MAX_TREE_DEPTH}"
    ))
}

fn local_item(path: PathBuf) -> Result<Option<Item>> {
    match std::fs::symlink_metadata(&path) {
        Ok(md) => {
            let ft = md.file_type();
            Ok(Some(Item::Local {
                path,
                dir: ft.is_dir(),
                special: !(ft.is_dir() || ft.is_file() || ft.is_symlink()),
            }))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).ctx(|| format!("stat of {}", path.display())),
    }
}

/// Entry names in the order GLib enumerates a local directory (and so
/// `ostree diff` reports it): readdir order without `.` and `..`, read in
/// chunks of 1000 entries, each chunk sorted by inode number.
fn glib_order(p: &Path) -> Result<Vec<String>> {
    const CHUNK: usize = 1000;
    let fd = fsutil::open_dir(p).ctx(|| format!("opening {}", p.display()))?;
    let mut all = Vec::new();
    for ent in rustix::fs::Dir::read_from(&fd).ctx(|| format!("listing {}", p.display()))? {
        let ent = ent.ctx(|| format!("listing {}", p.display()))?;
        let name = ent.file_name().to_bytes();
        if name != b"." && name != b".." {
            all.push((ent.ino(), name.to_vec()));
        }
    }
    let mut out = Vec::new();
    for chunk in all.chunks_mut(CHUNK) {
        chunk.sort_by_key(|(ino, _)| *ino);
        for (_, name) in chunk.iter() {
            out.push(String::from_utf8(name.clone()).map_err(|_| {
                RepoError::Invalid(format!(
                    "{}: file name {:?} is not UTF-8",
                    p.display(),
                    String::from_utf8_lossy(name)
                ))
            })?);
        }
    }
    Ok(out)
}

impl DirRef<'_> {
    /// Entries in enumeration order.
    fn entries(&self) -> Result<Vec<(String, Item)>> {
        match self {
            DirRef::Repo(t) => Ok(t
                .files
                .iter()
                .map(|f| (f.name.clone(), Item::RepoFile(f.checksum)))
                .chain(t.dirs.iter().map(|d| {
                    (
                        d.name.clone(),
                        Item::RepoDir {
                            tree: d.tree,
                            meta: d.meta,
                        },
                    )
                }))
                .collect()),
            DirRef::Local(p) => {
                let mut out = Vec::new();
                for name in glib_order(p)? {
                    if let Some(item) = local_item(p.join(&name))? {
                        out.push((name, item));
                    }
                }
                Ok(out)
            }
        }
    }

    fn lookup(&self, name: &str) -> Result<Option<Item>> {
        match self {
            DirRef::Repo(t) => {
                if let Ok(i) = t.files.binary_search_by(|f| f.name.as_str().cmp(name)) {
                    return Ok(Some(Item::RepoFile(t.files[i].checksum)));
                }
                Ok(t.dirs
                    .binary_search_by(|d| d.name.as_str().cmp(name))
                    .ok()
                    .map(|i| Item::RepoDir {
                        tree: t.dirs[i].tree,
                        meta: t.dirs[i].meta,
                    }))
            }
            DirRef::Local(p) => local_item(p.join(name)),
        }
    }
}

impl Repo {
    /// Compare two commits' trees.
    pub fn diff_commits(&self, a: &Checksum, b: &Checksum) -> Result<TreeDiff> {
        self.diff(
            &DiffSide::Commit(*a),
            &DiffSide::Commit(*b),
            &DiffOptions::default(),
        )
    }

    /// Compare two trees, each a commit or a directory on disk.
    pub fn diff(&self, a: &DiffSide, b: &DiffSide, opts: &DiffOptions) -> Result<TreeDiff> {
        let root = |s: &DiffSide| -> Result<Item> {
            Ok(match s {
                DiffSide::Commit(c) => {
                    let commit = self.load_commit(c)?;
                    Item::RepoDir {
                        tree: commit.root_tree,
                        meta: commit.root_meta,
                    }
                }
                DiffSide::Dir(p) => Item::Local {
                    path: p.clone(),
                    dir: true,
                    special: false,
                },
            })
        };
        let mut d = TreeDiff::default();
        let w = Walk { repo: self, opts };
        w.dirs(&root(a)?, &root(b)?, "", 0, &mut d)?;
        Ok(d)
    }

    /// How many objects each commit needs and how many they share.
    pub fn diff_stats(&self, a: &Checksum, b: &Checksum) -> Result<DiffStats> {
        let mut ra = Reachable::new();
        self.traverse_commit(a, 0, &mut ra)?;
        let mut rb = Reachable::new();
        self.traverse_commit(b, 0, &mut rb)?;
        let mut st = DiffStats {
            a_objects: ra.len() as u64,
            b_objects: rb.len() as u64,
            ..Default::default()
        };
        for (k, c) in ra.intersection(&rb) {
            st.common_objects += 1;
            st.common_size += self.object_storage_size(*k, c)?;
        }
        Ok(st)
    }
}

struct Walk<'a> {
    repo: &'a Repo,
    opts: &'a DiffOptions,
}

impl Walk<'_> {
    fn open<'p>(&self, item: &'p Item) -> Result<DirRef<'p>> {
        Ok(match item {
            Item::RepoDir { tree, .. } => DirRef::Repo(self.repo.load_dirtree(tree)?),
            Item::Local { path, .. } => DirRef::Local(path),
            Item::RepoFile(c) => return Err(RepoError::Invalid(format!("{c} is not a directory"))),
        })
    }

    fn local_xattrs(&self, path: &Path) -> Result<Xattrs> {
        if self.opts.no_xattrs {
            return Ok(Xattrs::new());
        }
        fsutil::link_xattrs(path).ctx(|| format!("reading xattrs of {}", path.display()))
    }

    /// A file's content checksum, or a directory's dirmeta checksum.
    fn ident(&self, item: &Item) -> Result<Checksum> {
        let (path, dir) = match item {
            Item::RepoFile(c) => return Ok(*c),
            Item::RepoDir { meta, .. } => return Ok(*meta),
            Item::Local { path, dir, .. } => (path, *dir),
        };
        let md = std::fs::symlink_metadata(path).ctx(|| format!("stat of {}", path.display()))?;
        let uid = self.opts.owner_uid.unwrap_or(md.uid());
        let gid = self.opts.owner_gid.unwrap_or(md.gid());
        let xattrs = self.local_xattrs(path)?;
        if dir {
            return Ok(DirMeta {
                uid,
                gid,
                mode: md.mode(),
                xattrs,
            }
            .checksum());
        }
        if md.file_type().is_symlink() {
            let t = std::fs::read_link(path).ctx(|| format!("reading link {}", path.display()))?;
            let t = t.into_os_string().into_string().map_err(|_| {
                RepoError::Invalid(format!("{}: symlink target is not UTF-8", path.display()))
            })?;
            return Ok(FileHeader::symlink(uid, gid, t, xattrs).checksum(b""));
        }
        let mut hasher = FileHeader::regular(uid, gid, md.mode(), xattrs).hasher();
        let mut f = std::fs::File::open(path).ctx(|| format!("opening {}", path.display()))?;
        std::io::copy(&mut f, &mut hasher).ctx(|| format!("reading {}", path.display()))?;
        Ok(hasher.finish())
    }

    fn dirs(&self, a: &Item, b: &Item, path: &str, depth: usize, out: &mut TreeDiff) -> Result<()> {
        if let (Item::RepoDir { tree: ta, .. }, Item::RepoDir { tree: tb, .. }) = (a, b) {
            if ta == tb {
                return Ok(());
            }
        }
        if depth > MAX_TREE_DEPTH {
            return Err(too_deep(path));
        }
        let da = self.open(a)?;
        let db = self.open(b)?;
        let ea = da.entries()?;
        for (name, ia) in &ea {
            let p = join(path, name);
            let Some(ib) = db.lookup(name)? else {
                out.removed.push(p);
                continue;
            };
            if ia.is_dir() != ib.is_dir() || ia.is_special() || ib.is_special() {
                out.modified.push(p);
                continue;
            }
            if self.ident(ia)? != self.ident(&ib)? {
                out.modified.push(p.clone());
            }
            if ia.is_dir() {
                self.dirs(ia, &ib, &p, depth + 1, out)?;
            }
        }
        for (name, ib) in db.entries()? {
            if da.lookup(&name)?.is_none() {
                let p = join(path, &name);
                out.added.push(p.clone());
                if ib.is_dir() {
                    self.add_recursive(&ib, &p, depth + 1, &mut out.added)?;
                }
            }
        }
        Ok(())
    }

    fn add_recursive(
        &self,
        item: &Item,
        path: &str,
        depth: usize,
        out: &mut Vec<String>,
    ) -> Result<()> {
        if depth > MAX_TREE_DEPTH {
            return Err(too_deep(path));
        }
        for (name, e) in self.open(item)?.entries()? {
            let p = join(path, &name);
            out.push(p.clone());
            if e.is_dir() {
                self.add_recursive(&e, &p, depth + 1, out)?;
            }
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
    fn diff_matches_ostree_order() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = Repo::init(&tmp.path().join("repo"), RepoMode::Archive).unwrap();
        let s = tmp.path().join("src");
        fs::create_dir_all(s.join("gone/sub")).unwrap();
        fs::create_dir_all(s.join("ftod")).unwrap();
        fs::write(s.join("f"), "1").unwrap();
        fs::write(s.join("gone/w"), "w").unwrap();
        fs::write(s.join("gone/sub/z"), "z").unwrap();
        fs::write(s.join("ftod/in"), "k").unwrap();
        fs::write(s.join("same"), "s").unwrap();
        let a = commit_dir_for_test(&repo, &s, None, 1);
        fs::remove_dir_all(s.join("gone")).unwrap();
        fs::remove_dir_all(s.join("ftod")).unwrap();
        fs::write(s.join("ftod"), "now a file").unwrap();
        fs::write(s.join("f"), "2").unwrap();
        fs::create_dir_all(s.join("new/deep")).unwrap();
        fs::write(s.join("new/deep/n"), "n").unwrap();
        fs::write(s.join("new/aa"), "a").unwrap();
        let b = commit_dir_for_test(&repo, &s, None, 2);
        let d = repo.diff_commits(&a, &b).unwrap();
        assert_eq!(d.modified, ["f", "ftod"]);
        assert_eq!(d.removed, ["gone"]);
        assert_eq!(d.added, ["new", "new/aa", "new/deep", "new/deep/n"]);
        let r = repo.diff_commits(&b, &a).unwrap();
        assert_eq!(r.modified, ["f", "ftod"]);
        assert_eq!(r.removed, ["new"]);
        assert_eq!(r.added, ["gone", "gone/w", "gone/sub", "gone/sub/z"]);
        assert!(repo.diff_commits(&a, &a).unwrap().is_empty());

        // A commit against the directory it was made from, then changed.
        let o = DiffOptions::default();
        let side_b = DiffSide::Commit(b);
        let dir = DiffSide::Dir(s.clone());
        assert!(repo.diff(&side_b, &dir, &o).unwrap().is_empty());
        fs::write(s.join("f"), "3").unwrap();
        fs::create_dir(s.join("x")).unwrap();
        fs::write(s.join("x/y"), "y").unwrap();
        let d = repo.diff(&side_b, &dir, &o).unwrap();
        assert_eq!(d.modified, ["f"]);
        assert_eq!(d.added, ["x", "x/y"]);
        let d = repo.diff(&dir, &side_b, &o).unwrap();
        assert_eq!(d.removed, ["x"]);
    }
}

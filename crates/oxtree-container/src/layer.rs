//! The tar streams of the layers, in ostree-ext's chunked (version 1)
//! format: every layer starts with the skeleton of a `bare-split-xattrs`
//! repository under `sysroot/ostree/repo`; a content layer then holds, per
//! object, its xattrs (`objects/XX/REST.file-xattrs-link`, the `a(ayay)`
//! GVariant), the object (`objects/XX/REST.file`, with owner and mode, and
//! its xattrs but `security.selinux` as PAX records) and one hardlink to it
//! per path of the commit (an empty regular file instead for empty files);
//! the commit layer holds the root directory, the commit, commitmeta,
//! dirtree and dirmeta objects and every directory. `usr/etc` is written
//! as `etc`. Entries have mtime 0, so a layer depends on its content only.

use crate::chunking::ObjectInfo;
use crate::error::{ContainerError, Result};
use oxtree_object::{Checksum, DirMeta, FileHeader, ObjectType, Xattrs};
use oxtree_repo::traverse::MAX_TREE_DEPTH;
use oxtree_repo::{Repo, RepoError};
use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use tar::{EntryType, Header};

pub const REPO: &str = "sysroot/ostree/repo";
const REPO_CONFIG: &str = "[core]\nrepo_version=1\nmode=bare-split-xattrs\n";
const SELINUX: &str = "security.selinux";

/// The tar member of an object.
pub fn object_path(csum: &Checksum, ext: &str) -> String {
    let h = csum.to_hex();
    format!("{REPO}/objects/{}/{}.{ext}", &h[..2], &h[2..])
}

/// A commit path as the layer names it: `usr/etc/x` as `etc/x`.
pub fn tar_path(commit_path: &str) -> &str {
    match commit_path.strip_prefix("usr/") {
        Some(r) if r == "etc" || r.starts_with("etc/") => r,
        _ => commit_path,
    }
}

fn tar_err(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> ContainerError {
    move |e| oxtree_io::IoError::new(format!("writing {what} to a layer"), e).into()
}

fn default_header(kind: EntryType, mode: u32) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mode(mode);
    h.set_size(0);
    h.set_mtime(0);
    h
}

fn dir_header(m: &DirMeta) -> Header {
    let mut h = default_header(EntryType::Directory, m.mode & 0o7777);
    h.set_uid(m.uid as u64);
    h.set_gid(m.gid as u64);
    h
}

pub(crate) struct LayerWriter<'a, W: Write> {
    repo: &'a Repo,
    tar: tar::Builder<W>,
    cancel: &'a AtomicBool,
}

impl<'a, W: Write> LayerWriter<'a, W> {
    pub fn new(repo: &'a Repo, out: W, cancel: &'a AtomicBool) -> Self {
        let mut tar = tar::Builder::new(out);
        tar.mode(tar::HeaderMode::Complete);
        LayerWriter { repo, tar, cancel }
    }

    pub fn finish(self) -> Result<W> {
        self.tar.into_inner().map_err(tar_err("the end"))
    }

    fn data(&mut self, path: &str, data: &[u8]) -> Result<()> {
        let mut h = default_header(EntryType::Regular, 0o644);
        h.set_size(data.len() as u64);
        self.tar
            .append_data(&mut h, path, data)
            .map_err(tar_err(path))
    }

    fn dir(&mut self, path: &str, mut h: Header) -> Result<()> {
        self.tar
            .append_data(&mut h, path, std::io::empty())
            .map_err(tar_err(path))
    }

    /// `sysroot/ostree/repo` with its 256 object directories and config.
    pub fn repo_structure(&mut self) -> Result<()> {
        let d = || default_header(EntryType::Directory, 0o755);
        for p in ["sysroot", "sysroot/ostree", REPO] {
            self.dir(p, d())?;
        }
        self.dir(&format!("{REPO}/objects"), d())?;
        for i in 0..=0xffu32 {
            self.dir(&format!("{REPO}/objects/{i:02x}"), d())?;
        }
        // The rest of what `ostree init` makes (objects/ came above).
        for s in oxtree_repo::LAYOUT.iter().filter(|s| **s != "objects") {
            self.dir(&format!("{REPO}/{s}"), d())?;
        }
        self.data(&format!("{REPO}/config"), REPO_CONFIG.as_bytes())
    }

    fn pax_xattrs(&mut self, xattrs: &Xattrs) -> Result<()> {
        let mut ext = Vec::new();
        for (k, v) in xattrs.iter() {
            let k = std::str::from_utf8(k).map_err(|_| {
                ContainerError::Invalid(format!(
                    "xattr name {:?} is not UTF-8",
                    String::from_utf8_lossy(k)
                ))
            })?;
            if k != SELINUX {
                ext.push((format!("SCHILY.xattr.{k}"), v));
            }
        }
        if ext.is_empty() {
            return Ok(());
        }
        self.tar
            .append_pax_extensions(ext.iter().map(|(k, v)| (k.as_str(), *v)))
            .map_err(tar_err("xattrs"))
    }

    /// One content object and its hardlinks.
    fn content(&mut self, csum: &Checksum, info: &ObjectInfo) -> Result<()> {
        let stored = self.repo.open_file(csum)?;
        let fh: FileHeader = stored.header.clone();
        let size = stored.size;
        let objpath = object_path(csum, "file");
        let xattrs = oxtree_object::gvariant::encode(fh.xattrs.wire());
        self.data(&object_path(csum, "file-xattrs-link"), &xattrs)?;
        self.pax_xattrs(&fh.xattrs)?;
        let mut h = default_header(EntryType::Regular, fh.mode & 0o7777);
        h.set_uid(fh.uid as u64);
        h.set_gid(fh.gid as u64);
        if fh.is_symlink() {
            h.set_entry_type(EntryType::Symlink);
            let target = fh.symlink_target.as_str();
            if target.contains("//") {
                // A "denormal" target is kept as it is.
                h.set_link_name_literal(target).map_err(tar_err(&objpath))?;
                self.tar
                    .append_data(&mut h.clone(), &objpath, std::io::empty())
                    .map_err(tar_err(&objpath))?;
            } else {
                self.tar
                    .append_link(&mut h.clone(), &objpath, target)
                    .map_err(tar_err(&objpath))?;
            }
        } else {
            h.set_size(size);
            let mut r = VerifyingReader {
                inner: stored.content.take(size),
                hasher: Some(fh.hasher()),
                n: 0,
            };
            self.tar
                .append_data(&mut h.clone(), &objpath, &mut r)
                .map_err(tar_err(&objpath))?;
            let actual = r.hasher.take().expect("hasher").finish();
            if r.n != size || actual != *csum {
                return Err(RepoError::BadObject {
                    checksum: *csum,
                    kind: ObjectType::File,
                    reason: format!("corrupt object: content hashes to {actual}"),
                }
                .into());
            }
        }
        for p in &info.paths {
            let dest = tar_path(p);
            let mut l = h.clone();
            l.set_size(0);
            if fh.is_regular() && size == 0 {
                l.set_entry_type(EntryType::Regular);
                self.tar
                    .append_data(&mut l, dest, std::io::empty())
                    .map_err(tar_err(dest))?;
            } else {
                l.set_entry_type(EntryType::Link);
                self.tar
                    .append_link(&mut l, dest, &objpath)
                    .map_err(tar_err(dest))?;
            }
        }
        Ok(())
    }

    /// A content layer: the repository skeleton and `objects`.
    pub fn content_layer(
        &mut self,
        objects: &[Checksum],
        infos: &BTreeMap<Checksum, ObjectInfo>,
    ) -> Result<()> {
        self.repo_structure()?;
        for c in objects {
            if self.cancel.load(Ordering::Relaxed) {
                return Err(ContainerError::Cancelled);
            }
            let info = infos.get(c).cloned().unwrap_or_default();
            self.content(c, &info)?;
        }
        Ok(())
    }

    /// The commit layer: the root, the skeleton, the commit (and its
    /// detached metadata), the metadata objects and every directory.
    pub fn commit_layer(&mut self, commit: &Checksum) -> Result<()> {
        let c = self.repo.load_commit(commit)?;
        let root_meta = self.repo.load_dirmeta(&c.root_meta)?;
        self.dir("./", dir_header(&root_meta))?;
        self.repo_structure()?;
        let bytes = self.repo.load_meta_bytes(ObjectType::Commit, commit)?;
        self.data(&object_path(commit, "commit"), &bytes)?;
        if let Ok(b) = self.repo.load_meta_bytes(ObjectType::CommitMeta, commit) {
            self.data(&object_path(commit, "commitmeta"), &b)?;
        }
        let mut seen = Seen::default();
        self.meta_object(ObjectType::DirMeta, &c.root_meta, &mut seen)?;
        let mut var_tmp = false;
        self.tree("", &c.root_tree, &mut seen, &mut var_tmp, 0)?;
        if !var_tmp {
            self.dir("var/tmp", default_header(EntryType::Directory, 0o1777))?;
        }
        self.var_skeleton((c.root_tree, c.root_meta))
    }

    /// The directories and symlinks of `/var` that the commit describes in
    /// its tmpfiles.d file (a composed tree keeps `/var` empty): written
    /// into the image so that a container build `FROM` it finds what apt
    /// and dpkg need (`/var/lib/dpkg` pointing into
    /// `/usr/share/dpkg/database`, apt's state and cache directories).
    /// An import ignores them, as it ignores every path outside the
    /// object store; file lines (`f`, `C`) are left to systemd-tmpfiles.
    fn var_skeleton(&mut self, root: (Checksum, Checksum)) -> Result<()> {
        use oxtree_compose::layout::{split_fields, VAR_TMPFILES};
        let Ok(oxtree_repo::Node::File(csum)) = self.repo.resolve_path(root, VAR_TMPFILES) else {
            return Ok(());
        };
        let f = self.repo.open_file(&csum)?;
        if f.size > 16 << 20 {
            return Err(ContainerError::Invalid(format!(
                "{VAR_TMPFILES} is {} bytes",
                f.size
            )));
        }
        let (_, text) = f.read_all().map_err(|e| RepoError::BadObject {
            checksum: csum,
            kind: ObjectType::File,
            reason: e.to_string(),
        })?;
        for line in String::from_utf8_lossy(&text).lines() {
            let f = split_fields(line);
            let (Some(kind), Some(path)) = (f.first(), f.get(1)) else {
                continue;
            };
            let Some(rel) = path.strip_prefix("/var/") else {
                continue;
            };
            // Checked as an import would: no `..`, nothing empty.
            if rel
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
                || rel == "tmp"
            {
                continue;
            }
            let rel = format!("var/{rel}");
            match kind.as_str() {
                "d" => {
                    let mode = f
                        .get(2)
                        .and_then(|m| u32::from_str_radix(m, 8).ok())
                        .unwrap_or(0o755);
                    let mut h = default_header(EntryType::Directory, mode & 0o7777);
                    let id = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
                    h.set_uid(id(3));
                    h.set_gid(id(4));
                    self.dir(&rel, h)?;
                }
                "L" => {
                    let Some(target) = f.get(6).filter(|t| !t.contains('\0')) else {
                        continue;
                    };
                    if crate::import::symlink_escapes(&rel, target) {
                        continue;
                    }
                    let mut h = default_header(EntryType::Symlink, 0o777);
                    self.tar
                        .append_link(&mut h, &rel, target)
                        .map_err(tar_err(&rel))?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn meta_object(&mut self, kind: ObjectType, csum: &Checksum, seen: &mut Seen) -> Result<()> {
        let (set, ext) = match kind {
            ObjectType::DirTree => (&mut seen.trees, "dirtree"),
            _ => (&mut seen.metas, "dirmeta"),
        };
        if !set.insert(*csum) {
            return Ok(());
        }
        let b = self.repo.load_meta_bytes(kind, csum)?;
        if Checksum::of(&b) != *csum {
            return Err(RepoError::BadObject {
                checksum: *csum,
                kind,
                reason: "corrupt object".into(),
            }
            .into());
        }
        self.data(&object_path(csum, ext), &b)
    }

    fn tree(
        &mut self,
        path: &str,
        tree: &Checksum,
        seen: &mut Seen,
        var_tmp: &mut bool,
        depth: usize,
    ) -> Result<()> {
        if depth > MAX_TREE_DEPTH {
            return Err(ContainerError::Invalid(format!(
                "directories nested deeper than {MAX_TREE_DEPTH}"
            )));
        }
        if self.cancel.load(Ordering::Relaxed) {
            return Err(ContainerError::Cancelled);
        }
        self.meta_object(ObjectType::DirTree, tree, seen)?;
        if path == "var/tmp" {
            *var_tmp = true;
        }
        let t = self.repo.load_dirtree(tree)?;
        for d in &t.dirs {
            self.meta_object(ObjectType::DirMeta, &d.meta, seen)?;
            // The repository skeleton is the layer's sysroot.
            if path.is_empty() && d.name == "sysroot" {
                continue;
            }
            let sub = if path.is_empty() {
                d.name.clone()
            } else {
                format!("{path}/{}", d.name)
            };
            let meta = self.repo.load_dirmeta(&d.meta)?;
            self.dir(tar_path(&sub), dir_header(&meta))?;
            self.tree(&sub, &d.tree, seen, var_tmp, depth + 1)?;
        }
        Ok(())
    }
}

#[derive(Default)]
struct Seen {
    trees: HashSet<Checksum>,
    metas: HashSet<Checksum>,
}

/// Reads an object's content while hashing it as the object.
struct VerifyingReader<R> {
    inner: R,
    hasher: Option<oxtree_object::Hasher>,
    n: u64,
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(h) = self.hasher.as_mut() {
            h.update(&buf[..n]);
        }
        self.n += n as u64;
        Ok(n)
    }
}

/// Every content object of a commit with its paths, size and
/// `user.component` xattr.
pub fn collect_objects(
    repo: &Repo,
    commit: &Checksum,
    cancel: &AtomicBool,
) -> Result<BTreeMap<Checksum, ObjectInfo>> {
    let c = repo.load_commit(commit)?;
    let mut out: BTreeMap<Checksum, ObjectInfo> = BTreeMap::new();
    walk(repo, "", &c.root_tree, &mut out, cancel, 0)?;
    for v in out.values_mut() {
        v.paths.sort();
    }
    Ok(out)
}

fn walk(
    repo: &Repo,
    path: &str,
    tree: &Checksum,
    out: &mut BTreeMap<Checksum, ObjectInfo>,
    cancel: &AtomicBool,
    depth: usize,
) -> Result<()> {
    if depth > MAX_TREE_DEPTH {
        return Err(ContainerError::Invalid(format!(
            "directories nested deeper than {MAX_TREE_DEPTH}"
        )));
    }
    if cancel.load(Ordering::Relaxed) {
        return Err(ContainerError::Cancelled);
    }
    let t = repo.load_dirtree(tree)?;
    let join = |n: &str| {
        if path.is_empty() {
            n.to_string()
        } else {
            format!("{path}/{n}")
        }
    };
    for f in &t.files {
        let p = join(&f.name);
        if let Some(info) = out.get_mut(&f.checksum) {
            info.paths.push(p);
            continue;
        }
        let stored = repo.open_file(&f.checksum)?;
        let component = stored
            .header
            .xattrs
            .get(b"user.component")
            .map(|v| String::from_utf8_lossy(v).trim().to_string())
            .filter(|v| !v.is_empty() && !v.contains(','));
        out.insert(
            f.checksum,
            ObjectInfo {
                size: stored.size,
                paths: vec![p],
                component,
            },
        );
    }
    for d in &t.dirs {
        walk(repo, &join(&d.name), &d.tree, out, cancel, depth + 1)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_as_ostree_ext_writes_them() {
        assert_eq!(tar_path("usr/etc"), "etc");
        assert_eq!(tar_path("usr/etc/passwd"), "etc/passwd");
        assert_eq!(tar_path("usr/etcetera/x"), "usr/etcetera/x");
        assert_eq!(tar_path("usr/bin/ls"), "usr/bin/ls");
        let c = Checksum([0xab; 32]);
        assert_eq!(
            object_path(&c, "file"),
            format!("sysroot/ostree/repo/objects/ab/{}.file", "ab".repeat(31))
        );
    }
}

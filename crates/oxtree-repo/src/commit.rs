//! Commit: turn a directory, a tarball or an existing tree into objects and
//! a commit object. File objects are hashed and written in parallel; the
//! dirtrees are then written bottom-up.

use crate::error::{IoContext, RepoError, Result};
use crate::fsutil;
use crate::mode::RepoMode;
use crate::mtree::MutableTree;
use crate::transaction::Transaction;
use oxtree_object::{mode, Checksum, Commit, DirMeta, FileHeader, Metadata, Xattrs};
use rayon::prelude::*;
use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{self, AtFlags, FileType, Mode, OFlags};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// How file metadata is rewritten on the way in (ostree's commit modifier).
#[derive(Clone, Debug, Default)]
pub struct CommitModifier {
    /// `--canonical-permissions`: owner 0:0, no xattrs, modes `& 0755`. Always on for bare-user-only repos.
    pub canonical_permissions: bool,
    pub owner_uid: Option<u32>,
    pub owner_gid: Option<u32>,
    /// `--no-xattrs`.
    pub skip_xattrs: bool,
    /// `--statoverride` and `--skip-list`, by path.
    pub paths: Option<std::sync::Arc<PathRules>>,
    /// `--mode-ro-executables`: executable regular files lose their write
    /// bits (W^X).
    pub ro_executables: bool,
    /// `--link-checkout-speedup`: a file hardlinked to one of the
    /// repository's file objects (a `checkout -H`) is that object, with the
    /// object's owner and xattrs, not the checkout's; a modifier that
    /// changes its metadata still applies.
    pub link_checkout_speedup: bool,
    /// `--devino-canonical`: such a file is the object, modifiers or not.
    pub devino_canonical: bool,
    /// `--consume` into a bare repository whose objects may be the files
    /// themselves: unmodified regular files (any, in bare-user-only) are
    /// moved into the repository instead of copied.
    pub adopt: bool,
}

/// Changes to single paths of a commit (`/usr/bin/x`, from the tree's
/// root): `--statoverride` lines `MODE PATH` (mode bits added, decimal)
/// or `=MODE PATH` (permission bits replaced), and `--skip-list` paths
/// left out with everything below them. Entries no path matched are an
/// error at the end ([`PathRules::unmatched`]), as in ostree.
#[derive(Debug, Default)]
pub struct PathRules {
    pub mode_add: std::collections::HashMap<String, u32>,
    pub mode_set: std::collections::HashMap<String, u32>,
    pub skip: std::collections::HashSet<String>,
    used: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl PathRules {
    /// Parse a statoverride file's text into `self`.
    pub fn add_statoverride(&mut self, text: &str) -> Result<()> {
        for line in text.lines().filter(|l| !l.is_empty()) {
            let (m, path) = line.split_once(' ').ok_or_else(|| {
                RepoError::Invalid("Malformed statoverride file (no space found)".into())
            })?;
            let (set, m) = match m.strip_prefix('=') {
                Some(m) => (true, m),
                None => (false, m),
            };
            let mode: u32 = m.parse().map_err(|_| {
                RepoError::Invalid(format!("statoverride: '{m}' is not a decimal mode"))
            })?;
            if set {
                self.mode_set.insert(path.to_string(), mode);
            } else {
                self.mode_add.insert(path.to_string(), mode);
            }
        }
        Ok(())
    }

    /// Parse a skip-list file's text (one path a line) into `self`.
    pub fn add_skip_list(&mut self, text: &str) {
        self.skip
            .extend(text.lines().filter(|l| !l.is_empty()).map(str::to_string));
    }

    fn mark(&self, path: &str) {
        if let Ok(mut u) = self.used.lock() {
            u.insert(path.to_string());
        }
    }

    /// Whether `path` is skipped.
    pub(crate) fn skips(&self, path: &str) -> bool {
        let hit = self.skip.contains(path);
        if hit {
            self.mark(path);
        }
        hit
    }

    /// `mode` with the override for `path`, if any.
    fn mode(&self, path: &str, mode: u32) -> u32 {
        if let Some(add) = self.mode_add.get(path) {
            self.mark(path);
            mode | add
        } else if let Some(set) = self.mode_set.get(path) {
            self.mark(path);
            (mode & mode::S_IFMT) | (set & !mode::S_IFMT)
        } else {
            mode
        }
    }

    /// The statoverride and skip-list paths that matched nothing; an
    /// error names them.
    pub fn unmatched(&self) -> Result<()> {
        let used = self.used.lock().map(|u| u.clone()).unwrap_or_default();
        let mut stat: Vec<&String> = self
            .mode_add
            .keys()
            .chain(self.mode_set.keys())
            .filter(|p| !used.contains(*p))
            .collect();
        stat.sort();
        if !stat.is_empty() {
            let list: Vec<&str> = stat.iter().map(|s| s.as_str()).collect();
            return Err(RepoError::Invalid(format!(
                "Unmatched statoverride paths: {}",
                list.join(", ")
            )));
        }
        let mut skip: Vec<&str> = self
            .skip
            .iter()
            .filter(|p| !used.contains(*p))
            .map(|s| s.as_str())
            .collect();
        skip.sort();
        if !skip.is_empty() {
            return Err(RepoError::Invalid(format!(
                "Unmatched skip-list paths: {}",
                skip.join(", ")
            )));
        }
        Ok(())
    }
}

/// `/` + a tree-relative path.
fn tree_path(rel: &Path) -> String {
    format!("/{}", rel.to_string_lossy())
}

impl CommitModifier {
    fn canonical(&self, repo: RepoMode) -> bool {
        self.canonical_permissions || repo == RepoMode::BareUserOnly
    }

    /// Whether the entry at `path` is left out of the commit.
    pub(crate) fn skips(&self, path: &str) -> bool {
        self.paths.as_ref().is_some_and(|p| p.skips(path))
    }

    /// Whether this modifier asks for no change (a stored tree is then
    /// taken as it is; one in a bare-user-only repository is canonical
    /// already).
    pub fn is_identity(&self) -> bool {
        !self.canonical_permissions
            && self.owner_uid.is_none()
            && self.owner_gid.is_none()
            && !self.skip_xattrs
            && self.paths.is_none()
            && !self.ro_executables
    }

    pub fn file(&self, path: &str, repo: RepoMode, mut h: FileHeader) -> FileHeader {
        if self.ro_executables && h.is_regular() && h.mode & 0o111 != 0 {
            h.mode &= !0o222;
        }
        if let Some(u) = self.owner_uid {
            h.uid = u;
        }
        if let Some(g) = self.owner_gid {
            h.gid = g;
        }
        if let Some(p) = &self.paths {
            h.mode = p.mode(path, h.mode);
        }
        if self.canonical(repo) {
            h.uid = 0;
            h.gid = 0;
            h.xattrs = Xattrs::new();
            if h.is_regular() {
                h.mode = mode::S_IFREG | (h.mode & 0o755);
            }
        }
        if self.skip_xattrs {
            h.xattrs = Xattrs::new();
        }
        h
    }

    pub fn dir(&self, path: &str, repo: RepoMode, mut m: DirMeta) -> DirMeta {
        if let Some(u) = self.owner_uid {
            m.uid = u;
        }
        if let Some(g) = self.owner_gid {
            m.gid = g;
        }
        if let Some(p) = &self.paths {
            m.mode = p.mode(path, m.mode);
        }
        if self.canonical(repo) {
            m.uid = 0;
            m.gid = 0;
            m.xattrs = Xattrs::new();
            m.mode = mode::S_IFDIR | (m.mode & 0o755);
        }
        if self.skip_xattrs {
            m.xattrs = Xattrs::new();
        }
        m
    }
}

/// The commit object's fields other than the tree.
#[derive(Clone, Debug, Default)]
pub struct CommitOptions {
    pub subject: String,
    pub body: String,
    pub timestamp: u64,
    pub parent: Option<Checksum>,
    pub metadata: Metadata,
}

/// Progress of a long write: (files done, files total).
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Sync);

struct ScanDir {
    meta: DirMeta,
    /// Indexes into the job list, which owns the names.
    files: Vec<usize>,
    dirs: Vec<(String, ScanDir)>,
}

/// One file to store. Its path is its directory's (kept once per
/// directory) plus its name: a full path per file would cost more memory
/// than anything else a commit holds.
struct FileJob {
    dir: u32,
    name: String,
    uid: u32,
    gid: u32,
    mode: u32,
    size: u64,
    is_link: bool,
    /// (st_dev, st_ino) when the file has other links (a checkout
    /// hardlinked from the repository, for `--link-checkout-speedup`).
    devino: Option<(u64, u64)>,
}

impl<'r> Transaction<'r> {
    /// `--tree=ref=` with a modifier: pass every entry of the stored tree
    /// `mt` (rooted at `path`, "/" for the root) through `m`, writing the
    /// file and dirmeta objects whose metadata it changes.
    pub fn rewrite_stored_tree(
        &self,
        mt: &mut MutableTree,
        path: &str,
        m: &CommitModifier,
    ) -> Result<()> {
        let repo = self.repo();
        let mode = repo.mode();
        if let Some(meta) = mt.meta {
            let old = repo.load_dirmeta(&meta)?;
            let new = m.dir(path, mode, old.clone());
            if new != old {
                mt.meta = Some(self.write_dirmeta(&new)?);
            }
        }
        let child = |name: &str| match path {
            "/" => format!("/{name}"),
            _ => format!("{path}/{name}"),
        };
        mt.files.retain(|name, _| !m.skips(&child(name)));
        mt.dirs.retain(|name, _| !m.skips(&child(name)));
        for (name, csum) in mt.files.iter_mut() {
            let stored = repo.open_file(csum)?;
            let new = m.file(&child(name), mode, stored.header.clone());
            if new != stored.header {
                let size = stored.size;
                *csum = self.write_content(&new, size, stored.content)?.checksum;
            }
        }
        for (name, sub) in mt.dirs.iter_mut() {
            self.rewrite_stored_tree(sub, &child(name), m)?;
        }
        Ok(())
    }

    /// Commit the contents of directory `path` into `mt` (overlaying).
    pub fn write_dir_into(
        &self,
        path: &Path,
        mt: &mut MutableTree,
        m: &CommitModifier,
        progress: Progress<'_>,
    ) -> Result<()> {
        let root = fsutil::open_dir(path).ctx(|| format!("opening {}", path.display()))?;
        let mut jobs = Vec::new();
        let mut dirs = Vec::new();
        let scan = scan_dir(
            &root,
            &root,
            Path::new(""),
            m.skip_xattrs || m.canonical(self.repo().mode()),
            m,
            &mut jobs,
            &mut dirs,
        )?;
        let total = jobs.len() as u64;
        let done = AtomicU64::new(0);
        let repo_mode = self.repo().mode();
        let devino = if (m.link_checkout_speedup || m.devino_canonical)
            && repo_mode != RepoMode::Archive
            && jobs.iter().any(|j| j.devino.is_some())
        {
            self.repo().devino_index()?
        } else {
            Default::default()
        };
        let sums: Vec<Checksum> = jobs
            .par_iter()
            .map(|j| {
                let rel = dirs[j.dir as usize].join(&j.name);
                let c = match j.devino.and_then(|k| devino.get(&k)) {
                    Some(obj) => self.write_linked_job(&rel, obj, m, repo_mode),
                    None => self.write_job(&root, &rel, j, m, repo_mode),
                };
                progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
                c
            })
            .collect::<Result<Vec<_>>>()?;
        let built = self.assemble(scan, Path::new(""), &sums, &mut jobs, m)?;
        mt.overlay(built);
        Ok(())
    }

    /// A file that is a hardlink of the repository's object `obj`: that
    /// object, unless the modifier changes its metadata (then the file's
    /// content with the modified header).
    fn write_linked_job(
        &self,
        rel: &Path,
        obj: &Checksum,
        m: &CommitModifier,
        repo_mode: RepoMode,
    ) -> Result<Checksum> {
        let hit = || {
            self.devino_hits.fetch_add(1, Ordering::Relaxed);
            Ok(*obj)
        };
        if m.devino_canonical || (m.is_identity() && !m.canonical(repo_mode)) {
            return hit();
        }
        let stored = self.repo().open_file(obj)?;
        let h = m.file(&tree_path(rel), repo_mode, stored.header.clone());
        if h == stored.header {
            return hit();
        }
        if h.is_symlink() {
            return Ok(self.write_content(&h, 0, std::io::empty())?.checksum);
        }
        let size = stored.size;
        Ok(self.write_content(&h, size, stored.content)?.checksum)
    }

    fn write_job(
        &self,
        root: &OwnedFd,
        rel: &Path,
        j: &FileJob,
        m: &CommitModifier,
        repo_mode: RepoMode,
    ) -> Result<Checksum> {
        let want_xattrs = !(m.skip_xattrs || m.canonical(repo_mode));
        let shown = || rel.display().to_string();
        if j.is_link {
            let target = fs::readlinkat(root, rel, Vec::new())
                .ctx(|| format!("reading symlink {}", shown()))?;
            let target = target.into_string().map_err(|_| {
                RepoError::Invalid(format!("symlink {} has a non-UTF-8 target", shown()))
            })?;
            let xattrs = if want_xattrs {
                fsutil::link_xattrs(&fsutil::proc_path(root, &rel.to_string_lossy()))
                    .ctx(|| format!("reading xattrs of {}", shown()))?
            } else {
                Xattrs::new()
            };
            let h = m.file(
                &tree_path(rel),
                repo_mode,
                FileHeader::symlink(j.uid, j.gid, target, xattrs),
            );
            return Ok(self.write_content(&h, 0, std::io::empty())?.checksum);
        }
        let fd = fs::openat(
            root,
            rel,
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NOCTTY,
            Mode::empty(),
        )
        .ctx(|| format!("opening {}", shown()))?;
        let xattrs = if want_xattrs {
            fsutil::fd_xattrs(&fd).ctx(|| format!("reading xattrs of {}", shown()))?
        } else {
            Xattrs::new()
        };
        let found = FileHeader::regular(j.uid, j.gid, j.mode, xattrs);
        let h = m.file(&tree_path(rel), repo_mode, found.clone());
        let adoptable = match repo_mode {
            RepoMode::Bare => h == found,
            RepoMode::BareUserOnly => true,
            _ => false,
        };
        if m.adopt && adoptable {
            drop(fd);
            let path = rel.to_string_lossy();
            if let Some(w) = self.adopt_file(root.as_fd(), &path, &h)? {
                return Ok(w.checksum);
            }
            return self.write_job(
                root,
                rel,
                j,
                &CommitModifier {
                    adopt: false,
                    ..m.clone()
                },
                repo_mode,
            );
        }
        let f = std::fs::File::from(fd);
        self.write_content(&h, j.size, f)
            .map(|w| w.checksum)
            .map_err(|e| match e {
                RepoError::Invalid(msg) => RepoError::Invalid(format!("{}: {msg}", shown())),
                other => other,
            })
    }

    fn assemble(
        &self,
        scan: ScanDir,
        rel: &Path,
        sums: &[Checksum],
        jobs: &mut [FileJob],
        m: &CommitModifier,
    ) -> Result<MutableTree> {
        let meta = m.dir(&tree_path(rel), self.repo().mode(), scan.meta);
        let mut mt = MutableTree {
            meta: Some(self.write_dirmeta(&meta)?),
            ..Default::default()
        };
        for idx in scan.files {
            mt.files
                .insert(std::mem::take(&mut jobs[idx].name), sums[idx]);
        }
        for (name, sub) in scan.dirs {
            let sub_rel = rel.join(&name);
            mt.dirs
                .insert(name, self.assemble(sub, &sub_rel, sums, jobs, m)?);
        }
        Ok(mt)
    }

    /// Write the commit object for a root.
    pub fn write_commit_object(
        &self,
        root: (Checksum, Checksum),
        o: &CommitOptions,
    ) -> Result<Checksum> {
        let c = Commit {
            metadata: o.metadata.clone(),
            parent: o.parent,
            related: vec![],
            subject: o.subject.clone(),
            body: o.body.clone(),
            timestamp: o.timestamp,
            root_tree: root.0,
            root_meta: root.1,
        };
        self.write_commit(&c)
    }
}

fn scan_dir(
    root: &OwnedFd,
    dirfd: &OwnedFd,
    rel: &Path,
    skip_xattrs: bool,
    m: &CommitModifier,
    jobs: &mut Vec<FileJob>,
    dirs: &mut Vec<PathBuf>,
) -> Result<ScanDir> {
    let dir_index =
        u32::try_from(dirs.len()).map_err(|_| RepoError::Invalid("too many directories".into()))?;
    dirs.push(rel.to_path_buf());
    let shown = || {
        if rel.as_os_str().is_empty() {
            "/".to_string()
        } else {
            rel.display().to_string()
        }
    };
    let st = fs::fstat(dirfd).ctx(|| format!("stat {}", shown()))?;
    let xattrs = if skip_xattrs {
        Xattrs::new()
    } else {
        fsutil::fd_xattrs(dirfd).ctx(|| format!("reading xattrs of {}", shown()))?
    };
    let mut out = ScanDir {
        meta: DirMeta {
            uid: st.st_uid,
            gid: st.st_gid,
            mode: st.st_mode,
            xattrs,
        },
        files: Vec::new(),
        dirs: Vec::new(),
    };
    let mut entries = fsutil::list_dir(dirfd).ctx(|| format!("listing {}", shown()))?;
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, _) in entries {
        let child_rel = || rel.join(&name);
        if m.skips(&tree_path(&child_rel())) {
            continue;
        }
        let st = fs::statat(dirfd, name.as_str(), AtFlags::SYMLINK_NOFOLLOW)
            .ctx(|| format!("stat {}", child_rel().display()))?;
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => {
                let sub = fsutil::open_dir_at(dirfd, &name)
                    .ctx(|| format!("opening {}", child_rel().display()))?;
                let s = scan_dir(root, &sub, &child_rel(), skip_xattrs, m, jobs, dirs)?;
                out.dirs.push((name, s));
            }
            t @ (FileType::RegularFile | FileType::Symlink) => {
                jobs.push(FileJob {
                    dir: dir_index,
                    name,
                    uid: st.st_uid,
                    gid: st.st_gid,
                    mode: st.st_mode,
                    size: st.st_size as u64,
                    is_link: t == FileType::Symlink,
                    devino: (st.st_nlink > 1).then_some((st.st_dev, st.st_ino)),
                });
                out.files.push(jobs.len() - 1);
            }
            other => {
                return Err(RepoError::Invalid(format!(
                    "{}: unsupported file type {other:?} (only files, symlinks and directories can be committed)",
                    child_rel().display()
                )))
            }
        }
    }
    let _ = root;
    Ok(out)
}

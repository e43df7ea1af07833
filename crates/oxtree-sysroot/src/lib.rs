//! An ostree-compatible sysroot: `ostree/repo` (bare), stateroots under
//! `ostree/deploy/OS/{deploy,var}`, deployments `CSUM.SERIAL` with
//! `.origin` files, kernels in `boot/ostree/OS-BOOTCSUM/`, the
//! `ostree/boot.N -> boot.N.M` symlink farm and BLS entries in
//! `boot/loader.N/entries`, switched by one atomic rename of `boot/loader`.
//!
//! As in ostree, the boot entries are the source of truth for the
//! deployment list and its order. A sysroot written here is read and
//! extended by `ostree admin` (2022.7) and the other way round.
//!
//! The library never prints; operations return reports.

pub mod bls;
pub mod boot_health;
pub mod bootloader;
pub mod cleanup;
pub mod deploy;
pub mod deployment;
pub mod error;
pub mod etc_merge;
pub mod grubenv;
pub mod kargs;
pub mod kernel;
pub mod prepare_root;
pub mod staged;
#[cfg(test)]
mod test_fixture;
pub mod to_disk;
pub mod unlock;
pub mod upgrade;
mod util;
pub mod write;

pub use deploy::{DeployOptions, DeployReport};
pub use deployment::Deployment;
pub use error::{Result, SysrootError};
// Origins are GLib keyfiles, read and written by the repository's one parser.
pub use oxtree_repo::keyfile::KeyFile;

use error::{IoContext, IoError};
use oxtree_repo::{fsutil, Repo, RepoMode};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{self, AtFlags, Mode, OFlags};
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct Sysroot {
    path: PathBuf,
    dir: OwnedFd,
    repo: Repo,
    bootversion: u32,
    subbootversion: u32,
    deployments: Vec<Deployment>,
    booted: Option<usize>,
    /// Where runtime state lives (`/run`): the staged deployment.
    run_dir: PathBuf,
    staged: Option<Deployment>,
    _lock: Option<OwnedFd>,
}

/// Stateroot names are one path component.
pub fn validate_osname(name: &str) -> Result<()> {
    if name.is_empty()
        || name == "."
        || name == ".."
        || name.contains('/')
        || name.contains('\0')
        || name.starts_with('.')
    {
        return Err(SysrootError::InvalidStateroot(name.to_string()));
    }
    Ok(())
}

/// `admin init-fs PATH`: the top-level directories of a root filesystem and
/// an empty bare repository at `ostree/repo`.
/// With `modern`, only `boot` and `ostree` (the rest comes from the
/// deployment or the initramfs).
pub fn init_fs(path: &Path, modern: bool) -> Result<()> {
    std::fs::create_dir_all(path).ctx(|| format!("creating {}", path.display()))?;
    let dir = fsutil::open_dir(path).ctx(|| format!("opening {}", path.display()))?;
    for (d, mode) in [
        ("boot", 0o755),
        ("dev", 0o755),
        ("home", 0o755),
        ("proc", 0o755),
        ("run", 0o755),
        ("sys", 0o755),
        ("root", 0o700),
        ("tmp", 0o1777),
        ("ostree", 0o755),
    ] {
        if modern && d != "boot" && d != "ostree" {
            continue;
        }
        if !util::exists(dir.as_fd(), d) {
            fs::mkdirat(&dir, d, Mode::from_raw_mode(mode)).ctx(|| format!("creating {d}"))?;
            // mkdir applies the umask; set the exact mode.
            fs::chmodat(&dir, d, Mode::from_raw_mode(mode), AtFlags::empty())
                .ctx(|| format!("chmod {d}"))?;
        }
    }
    fsutil::ensure_dir_at(&dir, "ostree/deploy", 0o755).ctx(|| "creating ostree/deploy")?;
    Repo::init(&path.join("ostree/repo"), RepoMode::Bare)?;
    Ok(())
}

/// The directory of the sysroot at `path`. On a booted system `/` is the
/// deployment, whose `/ostree` is only a symlink into the physical root
/// mounted at `/sysroot`: the sysroot's directory handle is then
/// `/sysroot` (the deployment's own paths still resolve through `/`).
fn open_physical(path: &Path) -> Result<OwnedFd> {
    let booted_root = std::fs::canonicalize(path).is_ok_and(|p| p == Path::new("/"))
        && std::fs::symlink_metadata("/ostree").is_ok_and(|m| m.file_type().is_symlink())
        && std::fs::metadata("/sysroot/ostree").is_ok_and(|m| m.is_dir());
    let real = if booted_root {
        Path::new("/sysroot")
    } else {
        path
    };
    fsutil::open_dir(real).map_err(|source| SysrootError::OpenDir {
        path: real.display().to_string(),
        source,
    })
}

fn parse_suffix(link: Option<String>, prefix: &str) -> Option<u32> {
    link?.strip_prefix(prefix)?.parse().ok()
}

impl Sysroot {
    /// Open a sysroot and load its deployments (no lock taken).
    pub fn open(path: &Path) -> Result<Sysroot> {
        let dir = open_physical(path)?;
        if util::open_path(dir.as_fd(), "ostree/repo").is_none() {
            return Err(SysrootError::NotASysroot(path.display().to_string()));
        }
        let repo = Repo::open(&path.join("ostree/repo"))?;
        let mut s = Sysroot {
            path: path.to_path_buf(),
            dir,
            repo,
            bootversion: 0,
            subbootversion: 0,
            deployments: Vec::new(),
            booted: None,
            run_dir: PathBuf::from("/run"),
            staged: None,
            _lock: None,
        };
        s.load()?;
        Ok(s)
    }

    /// Open and take the exclusive sysroot lock (`ostree/lock`, the same
    /// flock ostree takes), held until the value is dropped.
    pub fn open_locked(path: &Path) -> Result<Sysroot> {
        Self::open_with_lock(path, true)
    }

    /// As [`Sysroot::open_locked`], but fail at once with
    /// [`SysrootError::Busy`] when another process holds the lock.
    pub fn try_open_locked(path: &Path) -> Result<Sysroot> {
        Self::open_with_lock(path, false)
    }

    fn open_with_lock(path: &Path, wait: bool) -> Result<Sysroot> {
        let dir = open_physical(path)?;
        let lock = fs::openat(
            &dir,
            "ostree/lock",
            OFlags::CREATE | OFlags::RDWR | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| match e {
            rustix::io::Errno::NOENT => SysrootError::NotASysroot(path.display().to_string()),
            e => IoError::new("opening ostree/lock", e).into(),
        })?;
        if wait {
            fs::flock(&lock, fs::FlockOperation::LockExclusive).ctx(|| "locking the sysroot")?;
        } else {
            fs::flock(&lock, fs::FlockOperation::NonBlockingLockExclusive).map_err(|e| {
                if e == rustix::io::Errno::WOULDBLOCK {
                    SysrootError::Busy(path.display().to_string())
                } else {
                    IoError::new("locking the sysroot", e).into()
                }
            })?;
        }
        let mut s = Sysroot::open(path)?;
        s._lock = Some(lock);
        Ok(s)
    }

    /// Re-read the boot entries and origins.
    pub fn load(&mut self) -> Result<()> {
        let bv = parse_suffix(util::read_link(self.dir(), "boot/loader"), "loader.").unwrap_or(0);
        let sub = parse_suffix(
            util::read_link(self.dir(), &format!("ostree/boot.{bv}")),
            &format!("boot.{bv}."),
        )
        .unwrap_or(0);
        self.bootversion = bv;
        self.subbootversion = sub;
        self.deployments = self.read_entries(bv)?;
        self.booted = self.find_booted();
        self.staged = self.read_staged()?;
        Ok(())
    }

    /// Use `run` instead of `/run` for runtime state (the staged
    /// deployment), and re-read it.
    pub fn set_run_dir(&mut self, run: &Path) -> Result<()> {
        self.run_dir = run.to_path_buf();
        self.staged = self.read_staged()?;
        Ok(())
    }

    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// The staged deployment (`deploy --stage`), not yet in the boot list.
    pub fn staged(&self) -> Option<&Deployment> {
        self.staged.as_ref()
    }

    fn read_entries(&self, bv: u32) -> Result<Vec<Deployment>> {
        let entries_rel = format!("boot/loader.{bv}/entries");
        let Some(entries) = util::open_path(self.dir(), &entries_rel) else {
            return Ok(Vec::new());
        };
        let mut list = Vec::new();
        for (name, _) in fsutil::list_dir(&entries).ctx(|| format!("listing {entries_rel}"))? {
            if !name.ends_with(".conf") || name.starts_with('.') {
                continue;
            }
            let text = fsutil::read_at(&entries, &name).ctx(|| format!("reading {name}"))?;
            let e = bls::BlsEntry::parse(&String::from_utf8_lossy(&text));
            // Entries without ostree= belong to someone else.
            let Some(arg) = e.ostree_arg() else { continue };
            let bad = |reason: &str| SysrootError::BadEntry {
                file: name.clone(),
                reason: reason.to_string(),
            };
            let parts: Vec<&str> = arg.trim_start_matches('/').split('/').collect();
            let [_, _, os, bootcsum, bootserial] = parts[..] else {
                return Err(bad(&format!("unexpected ostree= argument {arg}")));
            };
            let link_rel = arg.trim_start_matches('/');
            let target = util::read_link(self.dir(), link_rel)
                .ok_or_else(|| bad(&format!("{arg} is not a symlink")))?;
            let leaf = target.rsplit('/').next().unwrap_or_default();
            let (csum, serial) = leaf
                .rsplit_once('.')
                .and_then(|(c, s)| Some((c.to_string(), s.parse::<u32>().ok()?)))
                .ok_or_else(|| bad(&format!("bad deployment link target {target}")))?;
            let mut d = Deployment {
                osname: os.to_string(),
                csum,
                deployserial: serial,
                bootcsum: bootcsum.to_string(),
                bootserial: bootserial.parse().map_err(|_| bad("bad boot serial"))?,
                kargs: e.get("options").unwrap_or_default().to_string(),
                origin: None,
            };
            d.origin = self.read_origin(&d)?;
            list.push((e.get("version").unwrap_or("0").to_string(), d));
        }
        // Highest version first: that is deployment 0, the default.
        list.sort_by(|a, b| bls::compare_versions(&b.0, &a.0));
        Ok(list.into_iter().map(|(_, d)| d).collect())
    }

    pub(crate) fn read_origin(&self, d: &Deployment) -> Result<Option<KeyFile>> {
        let rel = d.origin_relpath();
        match fsutil::read_at(self.dir(), &rel) {
            Ok(b) => KeyFile::parse(&String::from_utf8_lossy(&b))
                .map(Some)
                .map_err(|e| SysrootError::BadOrigin {
                    file: rel,
                    reason: e.to_string(),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).ctx(|| format!("reading {rel}")),
        }
    }

    /// The booted deployment: only when this sysroot is `/` and `/` is one
    /// of its deployment directories.
    fn find_booted(&self) -> Option<usize> {
        let canon = std::fs::canonicalize(&self.path).ok()?;
        if canon != Path::new("/") {
            return None;
        }
        let root = fs::stat("/").ok()?;
        self.deployments.iter().position(|d| {
            fs::statat(self.dir(), d.relpath().as_str(), AtFlags::empty())
                .map(|st| st.st_dev == root.st_dev && st.st_ino == root.st_ino)
                .unwrap_or(false)
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn dir(&self) -> BorrowedFd<'_> {
        self.dir.as_fd()
    }
    pub fn repo(&self) -> &Repo {
        &self.repo
    }
    pub fn repo_mut(&mut self) -> &mut Repo {
        &mut self.repo
    }
    pub fn bootversion(&self) -> u32 {
        self.bootversion
    }
    pub fn subbootversion(&self) -> u32 {
        self.subbootversion
    }
    pub fn deployments(&self) -> &[Deployment] {
        &self.deployments
    }
    pub fn booted_index(&self) -> Option<usize> {
        self.booted
    }

    pub fn deployment(&self, index: usize) -> Result<&Deployment> {
        self.deployments
            .get(index)
            .ok_or(SysrootError::NoSuchIndex {
                index,
                count: self.deployments.len(),
            })
    }

    /// Stateroots: the directories under `ostree/deploy`.
    pub fn stateroots(&self) -> Result<Vec<String>> {
        let Some(d) = util::open_path(self.dir(), "ostree/deploy") else {
            return Ok(Vec::new());
        };
        let mut v: Vec<String> = fsutil::list_dir(&d)
            .ctx(|| "listing ostree/deploy")?
            .into_iter()
            .filter(|(_, t)| *t == fs::FileType::Directory)
            .map(|(n, _)| n)
            .collect();
        v.sort();
        Ok(v)
    }

    /// `admin os-init OS`: the stateroot directory and its shared `var`.
    pub fn init_stateroot(&self, osname: &str) -> Result<()> {
        validate_osname(osname)?;
        let base = format!("ostree/deploy/{osname}");
        let os = fsutil::mkdir_p_at(self.dir(), &base).ctx(|| format!("creating {base}"))?;
        fsutil::ensure_dir_at(&os, "var", 0o755).ctx(|| "creating var")?;
        let var = fsutil::open_dir_at(&os, "var").ctx(|| "opening var")?;
        for (d, mode) in [("tmp", 0o1777), ("lib", 0o755), ("log", 0o755)] {
            if !util::exists(var.as_fd(), d) {
                fs::mkdirat(&var, d, Mode::from_raw_mode(mode))
                    .ctx(|| format!("creating var/{d}"))?;
                fs::chmodat(&var, d, Mode::from_raw_mode(mode), AtFlags::empty())
                    .ctx(|| format!("chmod var/{d}"))?;
            }
        }
        for (name, target) in [("run", "../run"), ("lock", "../run/lock")] {
            if !util::exists(var.as_fd(), name) {
                fs::symlinkat(target, &var, name).ctx(|| format!("creating var/{name}"))?;
            }
        }
        fs::fsync(&var).ctx(|| "syncing var")?;
        fs::fsync(&os).ctx(|| "syncing stateroot")?;
        Ok(())
    }

    /// The deployment whose /etc and kernel arguments a new deployment of
    /// `osname` inherits: the booted one if it is of that stateroot, else
    /// the first (default) one of it.
    pub fn merge_deployment(&self, osname: &str) -> Option<&Deployment> {
        if let Some(b) = self.booted {
            if self.deployments[b].osname == osname {
                return Some(&self.deployments[b]);
            }
        }
        self.deployments.iter().find(|d| d.osname == osname)
    }

    /// `[sysroot] KEY` of the repository config.
    pub fn config(&self, key: &str) -> Option<&str> {
        self.repo.config().get("sysroot", key)
    }

    /// Rewrite a deployment's origin file (pin, unpin, set-origin).
    pub fn write_origin(&mut self, index: usize, origin: &KeyFile) -> Result<()> {
        let d = self.deployment(index)?.clone();
        let parent = format!("ostree/deploy/{}/deploy", d.osname);
        let dir = util::open_path(self.dir(), &parent)
            .ok_or_else(|| SysrootError::Invalid(format!("{parent} is missing")))?;
        util::write_file(
            dir.as_fd(),
            &format!("{}.origin", d.name()),
            origin.to_text().as_bytes(),
        )?;
        self.deployments[index].origin = Some(origin.clone());
        Ok(())
    }

    /// Pin or unpin (`[libostree-transient] pinned`), as `ostree admin pin`.
    pub fn set_pinned(&mut self, index: usize, pinned: bool) -> Result<()> {
        let mut o = self.deployment(index)?.origin.clone().unwrap_or_default();
        if pinned {
            o.set("libostree-transient", "pinned", "true");
        } else {
            o.remove("libostree-transient", "pinned");
        }
        self.write_origin(index, &o)
    }
}

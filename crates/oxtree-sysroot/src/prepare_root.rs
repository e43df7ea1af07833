//! `prepare-root`: the early-boot step that turns the physical root
//! (mounted at `/sysroot` by the initrd) into the deployment root named by
//! the `ostree=/ostree/boot.N/OS/BOOTCSUM/SERIAL` kernel argument:
//!
//! 1. resolve that symlink (through `ostree/boot.N -> boot.N.M`) inside
//!    the sysroot with `RESOLVE_IN_ROOT`, and require the result to be a
//!    deployment directory `ostree/deploy/OS/deploy/CSUM.SERIAL`;
//! 2. bind-mount the deployment onto itself;
//! 3. bind the stateroot's `ostree/deploy/OS/var` onto `DEPLOY/var`;
//! 4. make `DEPLOY/usr` read-only (bind + remount ro), or, for a deployment
//!    unlocked with `--hotfix`, mount its persistent overlay there;
//! 5. bind the physical sysroot onto `DEPLOY/sysroot`, and its `boot`
//!    onto `DEPLOY/boot` when /boot is on the same filesystem;
//! 6. with `switch_root`, move the deployment mount onto the sysroot mount
//!    point (as ostree-prepare-root does under systemd; the initrd's
//!    switch-root then enters it).
//!
//! Everything is checked before the first mount; if a mount fails, those
//! already made are undone, so an error leaves nothing mounted.

use crate::error::{IoContext, Result, SysrootError};
use crate::KeyFile;
use rustix::fs::{self, FileType, Mode, OFlags, ResolveFlags};
use rustix::mount::{self, MountFlags, UnmountFlags};
use std::path::{Component, Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrepareRootReport {
    /// The deployment directory (absolute).
    pub deployment: PathBuf,
    pub stateroot: String,
    /// Mount points set up, in order.
    pub mounts: Vec<PathBuf>,
    /// `/usr` got the hotfix overlay instead of a read-only bind.
    pub hotfix: bool,
    pub switched: bool,
}

/// The value of the last `ostree=` argument of a kernel command line.
pub fn ostree_arg(cmdline: &str) -> Result<&str> {
    cmdline
        .split_whitespace()
        .filter_map(|a| a.strip_prefix("ostree="))
        .next_back()
        .ok_or_else(|| {
            SysrootError::Invalid("no ostree= argument on the kernel command line".into())
        })
}

fn is_dir(p: &Path) -> bool {
    fs::lstat(p)
        .map(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory)
        .unwrap_or(false)
}

/// Resolve `ostree=` inside `sysroot` to a deployment directory; returns
/// (deployment path, stateroot).
pub fn resolve_deployment(sysroot: &Path, arg: &str) -> Result<(PathBuf, String)> {
    let bad = |why: &str| SysrootError::Invalid(format!("ostree={arg}: {why}"));
    let rel = Path::new(arg);
    if !rel.is_absolute() {
        return Err(bad("not an absolute path"));
    }
    if rel
        .components()
        .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
    {
        return Err(bad("escapes the sysroot ('..' or '.' component)"));
    }
    if !arg.starts_with("/ostree/boot.") {
        return Err(bad("not of the form /ostree/boot.N/OS/BOOTCSUM/SERIAL"));
    }
    let root = std::fs::canonicalize(sysroot).ctx(|| format!("resolving {}", sysroot.display()))?;
    let rootfd = fs::open(
        &root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("opening {}", root.display()))?;
    let fd = fs::openat2(
        &rootfd,
        arg.trim_start_matches('/'),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS | ResolveFlags::NO_XDEV,
    )
    .map_err(|e| {
        bad(&format!(
            "cannot resolve the deployment inside {}: {e}",
            root.display()
        ))
    })?;
    let proc = format!("/proc/self/fd/{}", rustix::fd::AsRawFd::as_raw_fd(&fd));
    let target = std::fs::read_link(&proc).ctx(|| format!("reading {proc}"))?;
    let inner = target
        .strip_prefix(root.join("ostree/deploy"))
        .map_err(|_| {
            bad(&format!(
                "resolves to {}, not a deployment",
                target.display()
            ))
        })?;
    let parts: Vec<&str> = inner.iter().filter_map(|c| c.to_str()).collect();
    let [os, "deploy", name] = parts[..] else {
        return Err(bad(&format!(
            "resolves to {}, not a deployment",
            target.display()
        )));
    };
    let name_ok = name
        .rsplit_once('.')
        .is_some_and(|(c, s)| c.len() == 64 && s.parse::<u32>().is_ok());
    if !name_ok {
        return Err(bad(&format!(
            "resolves to {}, not a deployment",
            target.display()
        )));
    }
    crate::validate_osname(os)?;
    Ok((target.clone(), os.to_string()))
}

/// Mounts made so far; undone (in reverse) unless `keep` is called.
struct Undo(Vec<PathBuf>);

impl Undo {
    fn push(&mut self, p: &Path) {
        self.0.push(p.to_path_buf());
    }
}

impl Drop for Undo {
    fn drop(&mut self) {
        for p in self.0.iter().rev() {
            let _ = mount::unmount(p, UnmountFlags::DETACH);
        }
    }
}

/// Set up the deployment named by `cmdline` under `sysroot` (see the module
/// documentation).
pub fn prepare_root(sysroot: &Path, cmdline: &str, switch_root: bool) -> Result<PrepareRootReport> {
    let arg = ostree_arg(cmdline)?;
    let (deploy, os) = resolve_deployment(sysroot, arg)?;
    let root = std::fs::canonicalize(sysroot).ctx(|| format!("resolving {}", sysroot.display()))?;
    let var = root.join("ostree/deploy").join(&os).join("var");
    for (p, what) in [
        (deploy.join("usr"), "the deployment's /usr"),
        (deploy.join("var"), "the deployment's /var mount point"),
        (
            deploy.join("sysroot"),
            "the deployment's /sysroot mount point",
        ),
        (var.clone(), "the stateroot's var"),
    ] {
        if !is_dir(&p) {
            return Err(SysrootError::Invalid(format!(
                "{what} ({}) is missing or not a directory",
                p.display()
            )));
        }
    }
    let origin_path = PathBuf::from(format!("{}.origin", deploy.display()));
    let hotfix = std::fs::read_to_string(&origin_path)
        .ok()
        .and_then(|t| KeyFile::parse(&t).ok())
        .is_some_and(|k| k.get("origin", "unlocked") == Some("hotfix"))
        && is_dir(&deploy.join(".usr-ovl-upper"))
        && is_dir(&deploy.join(".usr-ovl-work"));

    let mut undo = Undo(Vec::new());
    mount::mount_bind(&deploy, &deploy)
        .ctx(|| format!("bind-mounting {} onto itself", deploy.display()))?;
    undo.push(&deploy);
    let usr = deploy.join("usr");
    if hotfix {
        let opts = format!(
            "lowerdir={},upperdir={},workdir={}",
            usr.display(),
            deploy.join(".usr-ovl-upper").display(),
            deploy.join(".usr-ovl-work").display()
        );
        let data = std::ffi::CString::new(opts)
            .map_err(|_| SysrootError::Invalid("NUL in path".into()))?;
        mount::mount(
            "overlay",
            &usr,
            "overlay",
            MountFlags::empty(),
            data.as_c_str(),
        )
        .ctx(|| format!("mounting the hotfix overlay on {}", usr.display()))?;
        undo.push(&usr);
    } else {
        mount::mount_bind(&usr, &usr).ctx(|| format!("bind-mounting {}", usr.display()))?;
        undo.push(&usr);
        mount::mount_remount(&usr, MountFlags::BIND | MountFlags::RDONLY, "")
            .ctx(|| format!("remounting {} read-only", usr.display()))?;
    }
    let dvar = deploy.join("var");
    mount::mount_bind(&var, &dvar)
        .ctx(|| format!("bind-mounting {} on {}", var.display(), dvar.display()))?;
    undo.push(&dvar);
    let dsys = deploy.join("sysroot");
    mount::mount_bind(&root, &dsys)
        .ctx(|| format!("bind-mounting {} on {}", root.display(), dsys.display()))?;
    undo.push(&dsys);
    // /boot on the root filesystem (no partition of its own to mount):
    // show the physical root's boot directory at the deployment's /boot,
    // as ostree-prepare-root does, so the booted system sees its loader.
    let pboot = root.join("boot");
    let dboot = deploy.join("boot");
    let boot_here = fs::lstat(pboot.join("loader"))
        .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink);
    if boot_here && is_dir(&dboot) {
        mount::mount_bind(&pboot, &dboot)
            .ctx(|| format!("bind-mounting {} on {}", pboot.display(), dboot.display()))?;
        undo.push(&dboot);
    }
    let mounts = undo.0.clone();
    if switch_root {
        mount::mount_move(&deploy, &root)
            .ctx(|| format!("moving {} onto {}", deploy.display(), root.display()))?;
    }
    undo.0.clear();
    Ok(PrepareRootReport {
        deployment: deploy,
        stateroot: os,
        mounts,
        hotfix,
        switched: switch_root,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn parse_arg() {
        assert_eq!(
            ostree_arg("quiet ostree=/ostree/boot.1/os/abc/0 rw").unwrap(),
            "/ostree/boot.1/os/abc/0"
        );
        assert!(ostree_arg("quiet root=/dev/sda").is_err());
        let t = tempfile::tempdir().unwrap();
        assert!(resolve_deployment(t.path(), "/ostree/boot.0/../../etc").is_err());
        assert!(resolve_deployment(t.path(), "ostree/boot.0/os/x/0").is_err());
        assert!(resolve_deployment(t.path(), "/etc").is_err());
    }
}

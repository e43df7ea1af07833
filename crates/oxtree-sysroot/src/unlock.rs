//! `admin unlock`: make a deployment's `/usr` writable with an overlayfs
//! whose lower layer is the deployment's own `usr`.
//!
//! - transient (default): upper and work directories on a fresh tmpfs
//!   under `RUN/oxtree/unlock/CSUM.SERIAL`; everything is gone at reboot.
//!   As ostree does for its development/transient modes, the state is kept
//!   in run-time state (`RUN/ostree/deployment-state/CSUM.SERIAL/unlocked`),
//!   not in the origin file, which outlives the boot.
//! - hotfix: upper and work in `DEPLOY/.usr-ovl-upper` and
//!   `.usr-ovl-work` (persistent; `prepare-root` mounts them again at
//!   boot), the origin records `[origin] unlocked=hotfix`, and a pristine
//!   clone of the deployment is inserted right after it as the rollback.
//!
//! ostree only unlocks the booted deployment; here any deployment of the
//! sysroot can be named, so it works on a sysroot that is not booted.

use crate::deploy::DeployOptions;
use crate::deployment::Deployment;
use crate::error::{IoContext, Result, SysrootError};
use crate::util;
use crate::Sysroot;
use oxtree_repo::fsutil;
use rustix::fd::AsFd;
use rustix::mount::{self, MountFlags, UnmountFlags};
use std::ffi::CString;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnlockMode {
    Transient,
    Hotfix,
}

impl UnlockMode {
    pub fn as_str(self) -> &'static str {
        match self {
            UnlockMode::Transient => "transient",
            UnlockMode::Hotfix => "hotfix",
        }
    }
}

#[derive(Clone, Debug)]
pub struct UnlockReport {
    pub deployment: Deployment,
    /// The overlay's upper directory.
    pub upper: PathBuf,
    /// Hotfix: the pristine clone inserted as the rollback.
    pub rollback: Option<Deployment>,
}

fn overlay_path_ok(p: &Path) -> Result<String> {
    let s = p.to_str().unwrap_or_default();
    if s.is_empty() || s.contains([',', ':', '\\']) || s.contains(char::is_whitespace) {
        return Err(SysrootError::Invalid(format!(
            "path {} cannot be given to overlayfs",
            p.display()
        )));
    }
    Ok(s.to_string())
}

fn mount_overlay(usr: &Path, upper: &Path, work: &Path) -> Result<()> {
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        overlay_path_ok(usr)?,
        overlay_path_ok(upper)?,
        overlay_path_ok(work)?
    );
    let data = CString::new(opts).map_err(|_| SysrootError::Invalid("NUL in path".into()))?;
    mount::mount(
        "overlay",
        usr,
        "overlay",
        MountFlags::empty(),
        data.as_c_str(),
    )
    .ctx(|| format!("mounting an overlayfs on {}", usr.display()))
}

impl Sysroot {
    fn runstate_dir(&self, d: &Deployment) -> PathBuf {
        self.run_dir.join("ostree/deployment-state").join(d.name())
    }

    /// The unlock state of a deployment: `hotfix` from its origin, or the
    /// run-time `transient` state.
    pub fn unlocked_state(&self, d: &Deployment) -> Option<String> {
        if let Some(u) = d.origin.as_ref().and_then(|o| o.get("origin", "unlocked")) {
            if u != "none" {
                return Some(u.to_string());
            }
        }
        std::fs::read_to_string(self.runstate_dir(d).join("unlocked"))
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }

    /// Unlock deployment `index` (the booted one, if any, is the usual one).
    pub fn unlock(&mut self, index: usize, mode: UnlockMode) -> Result<UnlockReport> {
        let d = self.deployment(index)?.clone();
        if let Some(s) = self.unlocked_state(&d) {
            return Err(SysrootError::Refused(format!(
                "Deployment is already in unlocked state: {s}"
            )));
        }
        let deploy = self.path().join(d.relpath());
        let usr = deploy.join("usr");
        match mode {
            UnlockMode::Transient => {
                let base = self.run_dir.join("oxtree/unlock").join(d.name());
                std::fs::create_dir_all(&base).ctx(|| format!("creating {}", base.display()))?;
                mount::mount("tmpfs", &base, "tmpfs", MountFlags::empty(), c"mode=0755")
                    .ctx(|| format!("mounting a tmpfs on {}", base.display()))?;
                let r = (|| {
                    for sub in ["upper", "work"] {
                        std::fs::create_dir(base.join(sub))
                            .ctx(|| format!("creating {sub} on the tmpfs"))?;
                    }
                    // The upper root takes usr's mode and owner.
                    let st = rustix::fs::stat(&usr).ctx(|| "stat of usr")?;
                    let upper = base.join("upper");
                    rustix::fs::chmod(&upper, rustix::fs::Mode::from_raw_mode(st.st_mode & 0o7777))
                        .ctx(|| "chmod of the upper dir")?;
                    mount_overlay(&usr, &upper, &base.join("work"))?;
                    let rs = self.runstate_dir(&d);
                    if let Err(e) = std::fs::create_dir_all(&rs)
                        .and_then(|_| std::fs::write(rs.join("unlocked"), "transient\n"))
                    {
                        let _ = mount::unmount(&usr, UnmountFlags::DETACH);
                        return Err(e).ctx(|| format!("writing {}", rs.display()));
                    }
                    Ok(upper)
                })();
                match r {
                    Ok(upper) => Ok(UnlockReport {
                        deployment: d,
                        upper,
                        rollback: None,
                    }),
                    Err(e) => {
                        let _ = mount::unmount(&base, UnmountFlags::DETACH);
                        Err(e)
                    }
                }
            }
            UnlockMode::Hotfix => {
                // A pristine copy of the deployment becomes the rollback.
                let opts = DeployOptions {
                    osname: Some(d.osname.clone()),
                    origin: d.origin.clone(),
                    ..DeployOptions::default()
                };
                let (clone, _, _) = self.create_deployment(&d.csum, &opts, false)?;
                // Its /etc is a copy of the unlocked deployment's /etc.
                let r = (|| {
                    let croot = util::open_path(self.dir(), &clone.relpath())
                        .ok_or_else(|| SysrootError::Invalid("clone vanished".into()))?;
                    let droot = util::open_path(self.dir(), &d.relpath()).ok_or_else(|| {
                        SysrootError::Invalid(format!("{} is missing", d.relpath()))
                    })?;
                    util::set_immutable(croot.as_fd(), false)?;
                    let c =
                        crate::etc_merge::copy_entry(droot.as_fd(), "etc", croot.as_fd(), "etc");
                    util::set_immutable(croot.as_fd(), true)?;
                    c?;
                    let mut list = self.deployments().to_vec();
                    let mut c2 = clone.clone();
                    c2.kargs = d.kargs.clone();
                    list.insert(index + 1, c2);
                    self.write_deployments(list)
                })();
                if let Err(e) = r {
                    if !self.deployments().iter().any(|x| x.same(&clone)) {
                        if let Some(parent) = util::open_path(
                            self.dir(),
                            &format!("ostree/deploy/{}/deploy", clone.osname),
                        ) {
                            let _ = util::remove_all(parent.as_fd(), &clone.name());
                            let _ = util::remove_all(
                                parent.as_fd(),
                                &format!("{}.origin", clone.name()),
                            );
                        }
                    }
                    return Err(e);
                }
                let root = util::open_path(self.dir(), &d.relpath())
                    .ok_or_else(|| SysrootError::Invalid(format!("{} is missing", d.relpath())))?;
                util::set_immutable(root.as_fd(), false)?;
                let mk = (|| {
                    fsutil::ensure_dir_at(&root, ".usr-ovl-upper", 0o755)
                        .ctx(|| "creating .usr-ovl-upper")?;
                    fsutil::ensure_dir_at(&root, ".usr-ovl-work", 0o755)
                        .ctx(|| "creating .usr-ovl-work")
                })();
                util::set_immutable(root.as_fd(), true)?;
                mk?;
                let upper = deploy.join(".usr-ovl-upper");
                mount_overlay(&usr, &upper, &deploy.join(".usr-ovl-work"))?;
                let i = self
                    .deployments()
                    .iter()
                    .position(|x| x.same(&d))
                    .unwrap_or(index);
                let mut o = d.origin.clone().unwrap_or_default();
                o.set("origin", "unlocked", "hotfix");
                self.write_origin(i, &o)?;
                let rollback = self.deployments().iter().find(|x| x.same(&clone)).cloned();
                Ok(UnlockReport {
                    deployment: self.deployments()[i].clone(),
                    upper,
                    rollback,
                })
            }
        }
    }
}

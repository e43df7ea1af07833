//! Staged deployments (`deploy --stage`): the deployment is checked out and
//! its kernel copied to /boot ahead of time, then described in
//! `RUN/ostree/staged-deployment` (RUN is normally /run, so the state dies
//! with the boot). The boot configuration is not touched until
//! `finalize-staged` (run by `oxtree-finalize-staged.service` at shutdown)
//! merges /etc against the merge deployment *as it is then* — so /etc
//! edits made after staging are carried over — and swaps the boot entries.
//!
//! As ostree, finalization first removes the staged state, so a failure is
//! not retried at every shutdown; the reason goes to
//! `boot/ostree/finalize-failure.stamp` and the current boot entries stay
//! as they were. `RUN/ostree/staged-deployment-locked` holds finalization
//! back. The state file is an oxtree keyfile (ostree's is a GVariant),
//! naming the sysroot it belongs to so a foreign one is ignored.

use crate::deploy::{DeployOptions, DeployReport};
use crate::deployment::Deployment;
use crate::error::{IoContext, Result, SysrootError};
use crate::util;
use crate::KeyFile;
use crate::Sysroot;
use oxtree_repo::fsutil;
use rustix::fd::AsFd;
use std::path::{Path, PathBuf};

pub const STAGED_FILE: &str = "ostree/staged-deployment";
pub const STAGED_LOCK: &str = "ostree/staged-deployment-locked";
pub const FAILURE_STAMP: &str = "boot/ostree/finalize-failure.stamp";

/// What `finalize_staged` did.
#[derive(Clone, Debug)]
pub enum FinalizeOutcome {
    NothingStaged,
    /// `staged-deployment-locked` exists: left for later.
    Locked,
    Done(Box<DeployReport>),
}

fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

impl Sysroot {
    pub(crate) fn staged_path(&self) -> PathBuf {
        self.run_dir.join(STAGED_FILE)
    }

    /// Read `RUN/ostree/staged-deployment` if it belongs to this sysroot.
    pub(crate) fn read_staged(&self) -> Result<Option<Deployment>> {
        let p = self.staged_path();
        let text = match std::fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).ctx(|| format!("reading {}", p.display())),
        };
        let bad = |reason: &str| SysrootError::Invalid(format!("{}: {reason}", p.display()));
        let kf = KeyFile::parse(&text).map_err(|e| bad(&e.to_string()))?;
        let get = |k: &str| kf.get("staged", k).ok_or_else(|| bad(&format!("no {k}")));
        if Path::new(get("sysroot")?) != canonical(self.path()) {
            return Ok(None);
        }
        let mut d = Deployment {
            osname: get("osname")?.to_string(),
            csum: get("checksum")?.to_string(),
            deployserial: get("serial")?.parse().map_err(|_| bad("bad serial"))?,
            bootcsum: get("bootcsum")?.to_string(),
            bootserial: 0,
            kargs: get("kargs")?.to_string(),
            origin: None,
        };
        crate::validate_osname(&d.osname)?;
        if d.csum.len() != 64 || !d.csum.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("bad checksum"));
        }
        if util::open_path(self.dir(), &d.relpath()).is_none() {
            // The deployment went away (cleanup after a finalize elsewhere).
            return Ok(None);
        }
        d.origin = self.read_origin(&d)?;
        Ok(Some(d))
    }

    fn write_staged(&self, d: &Deployment) -> Result<()> {
        let mut kf = KeyFile::new();
        let root = canonical(self.path());
        kf.set("staged", "sysroot", &root.to_string_lossy());
        kf.set("staged", "osname", &d.osname);
        kf.set("staged", "checksum", &d.csum);
        kf.set("staged", "serial", &d.deployserial.to_string());
        kf.set("staged", "bootcsum", &d.bootcsum);
        kf.set("staged", "kargs", &d.kargs);
        let dir = self.run_dir.join("ostree");
        std::fs::create_dir_all(&dir).ctx(|| format!("creating {}", dir.display()))?;
        let fd = fsutil::open_dir(&dir).ctx(|| format!("opening {}", dir.display()))?;
        util::write_file(fd.as_fd(), "staged-deployment", kf.to_text().as_bytes())
    }

    /// Forget the staged deployment (its directory goes at the next cleanup).
    pub fn drop_staged(&mut self) -> Result<()> {
        if self.staged.take().is_some() {
            let p = self.staged_path();
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).ctx(|| format!("removing {}", p.display())),
            }
        }
        Ok(())
    }

    /// `deploy --stage`: check out `rev`, copy its kernel to /boot and
    /// record it as staged; the boot entries are not touched.
    /// Refused, as ostree refuses it, on a sysroot that is not booted,
    /// unless the caller set a run directory of its own (then it finalizes
    /// with `admin finalize-staged --run-dir`, as the tests do).
    pub fn stage(&mut self, rev: &str, opts: &DeployOptions, lock: bool) -> Result<Deployment> {
        if self.booted_index().is_none() && self.run_dir == std::path::Path::new("/run") {
            return Err(SysrootError::StageNotBooted);
        }
        let (new, _, _) = self.create_deployment(rev, opts, false)?;
        let r = self.install_kernels_for(&new).and_then(|_| {
            if lock {
                let p = self.run_dir.join(STAGED_LOCK);
                std::fs::create_dir_all(self.run_dir.join("ostree"))
                    .and_then(|_| std::fs::write(&p, b""))
                    .ctx(|| format!("writing {}", p.display()))?;
            }
            self.write_staged(&new)
        });
        if let Err(e) = r {
            if let Some(parent) =
                util::open_path(self.dir(), &format!("ostree/deploy/{}/deploy", new.osname))
            {
                let _ = util::remove_all(parent.as_fd(), &new.name());
                let _ = util::remove_all(parent.as_fd(), &format!("{}.origin", new.name()));
            }
            return Err(e);
        }
        self.staged = Some(new.clone());
        Ok(new)
    }

    /// `admin finalize-staged`: merge /etc now and write the boot entries.
    pub fn finalize_staged(&mut self) -> Result<FinalizeOutcome> {
        let Some(staged) = self.staged.clone() else {
            return Ok(FinalizeOutcome::NothingStaged);
        };
        if self.run_dir.join(STAGED_LOCK).exists() {
            return Ok(FinalizeOutcome::Locked);
        }
        // Not retried after a failure, as in ostree.
        self.drop_staged()?;
        match self.finalize_inner(&staged) {
            Ok(r) => Ok(FinalizeOutcome::Done(Box::new(r))),
            Err(e) => {
                let msg = format!("{}\n", oxtree_io::Chain(&e));
                if let Ok(bo) = fsutil::mkdir_p_at(self.dir(), "boot/ostree") {
                    let _ = util::write_file(bo.as_fd(), "finalize-failure.stamp", msg.as_bytes());
                }
                Err(e)
            }
        }
    }

    fn finalize_inner(&mut self, staged: &Deployment) -> Result<DeployReport> {
        let merge = self.merge_deployment(&staged.osname).cloned();
        let root = util::open_path(self.dir(), &staged.relpath()).ok_or_else(|| {
            SysrootError::Invalid(format!("staged deployment {} is missing", staged.relpath()))
        })?;
        let etc = if util::exists(root.as_fd(), "etc") {
            None
        } else {
            util::set_immutable(root.as_fd(), false)?;
            let r = self.build_etc(root.as_fd(), merge.as_ref());
            let _ = rustix::fs::syncfs(&root);
            util::set_immutable(root.as_fd(), true)?;
            r?
        };
        let opts = DeployOptions {
            osname: Some(staged.osname.clone()),
            ..DeployOptions::default()
        };
        let write = self.install_new_deployment(staged, merge.as_ref(), &opts)?;
        let deployment = self
            .deployments()
            .iter()
            .find(|d| d.same(staged))
            .cloned()
            .unwrap_or_else(|| staged.clone());
        Ok(DeployReport {
            deployment,
            etc,
            write,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{FinalizeOutcome, STAGED_LOCK};
    use crate::test_fixture::{commit, sysroot};
    use crate::{DeployOptions, SysrootError};

    #[test]
    fn stage_then_finalize_honours_the_lock() {
        let (d, mut s) = sysroot();
        let opts = DeployOptions {
            osname: Some("os".into()),
            ..Default::default()
        };
        commit(&s, "1", &[]);
        s.deploy("os/main", &opts).unwrap();
        commit(&s, "2", &[("usr/share/two", "2\n")]);
        // Not booted and the default run directory: nobody would finalize.
        assert!(matches!(
            s.stage("os/main", &opts, false),
            Err(SysrootError::StageNotBooted)
        ));
        let run = d.path().join("run");
        s.set_run_dir(&run).unwrap();
        let staged = s.stage("os/main", &opts, true).unwrap();
        assert_eq!(s.deployments().len(), 1, "staging writes no boot entry");
        assert!(run.join(STAGED_LOCK).exists());
        assert!(matches!(
            s.finalize_staged().unwrap(),
            FinalizeOutcome::Locked
        ));
        std::fs::remove_file(run.join(STAGED_LOCK)).unwrap();
        match s.finalize_staged().unwrap() {
            FinalizeOutcome::Done(r) => assert!(r.deployment.same(&staged)),
            other => panic!(
                "not finalized: {:?}",
                matches!(other, FinalizeOutcome::NothingStaged)
            ),
        }
        assert_eq!(s.deployments().len(), 2);
        assert!(
            s.deployments()[0].same(&staged),
            "the staged one is the new default"
        );
        assert!(matches!(
            s.finalize_staged().unwrap(),
            FinalizeOutcome::NothingStaged
        ));
    }
}

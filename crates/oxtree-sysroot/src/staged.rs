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
    use super::{FinalizeOutcome, FAILURE_STAMP, STAGED_FILE, STAGED_LOCK};
    use crate::test_fixture::{commit, os_opts, sysroot};
    use crate::{DeployOptions, SysrootError};
    use rustix::fd::AsFd;

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

    /// A sysroot with version 1 deployed and version 2 staged under the
    /// run directory `DIR/run`.
    fn staged_sysroot(
        extra2: &[(&str, &str)],
    ) -> (tempfile::TempDir, crate::Sysroot, crate::Deployment) {
        let (d, mut s) = sysroot();
        commit(&s, "1", &[]);
        s.deploy("os/main", &os_opts()).unwrap();
        commit(&s, "2", extra2);
        s.set_run_dir(&d.path().join("run")).unwrap();
        let staged = s
            .stage("os/main", &os_opts(), false)
            .unwrap_or_else(|e| panic!("{e}"));
        (d, s, staged)
    }

    fn reopen(d: &std::path::Path) -> Result<crate::Sysroot, SysrootError> {
        let mut s = crate::Sysroot::open(d)?;
        s.set_run_dir(&d.join("run"))?;
        Ok(s)
    }

    #[test]
    fn the_staged_file_round_trips_through_a_new_sysroot() {
        let (d, s, staged) = staged_sysroot(&[]);
        assert!(s.staged().is_some_and(|x| x == &staged));
        drop(s);
        let s = reopen(d.path()).unwrap();
        let read = s.staged().expect("the staged deployment is read back");
        // Every field, the origin too.
        assert_eq!(read, &staged);
        assert_eq!(read.refspec(), Some("os/main"));
        assert_eq!(read.bootcsum.len(), 64);
        // Not in the boot list until finalized.
        assert_eq!(s.deployments().len(), 1);
        // Another run directory has nothing staged.
        let mut s = s;
        s.set_run_dir(&d.path().join("elsewhere")).unwrap();
        assert!(s.staged().is_none());
    }

    #[test]
    fn a_corrupt_staged_file_is_an_error_naming_it() {
        let (d, s, _) = staged_sysroot(&[]);
        drop(s);
        let file = d.path().join("run").join(STAGED_FILE);
        let good = std::fs::read_to_string(&file).unwrap();
        let csum_line = good.lines().find(|l| l.starts_with("checksum=")).unwrap();
        let serial_line = good.lines().find(|l| l.starts_with("serial=")).unwrap();
        for (what, text) in [
            ("not a keyfile", "this is not [a keyfile\n".to_string()),
            ("no checksum", good.replace(&format!("{csum_line}\n"), "")),
            (
                "bad checksum",
                good.replace(csum_line, "checksum=../../etc"),
            ),
            ("bad serial", good.replace(serial_line, "serial=x")),
        ] {
            std::fs::write(&file, &text).unwrap();
            match reopen(d.path()) {
                Err(SysrootError::Invalid(m)) => {
                    assert!(m.contains(&file.display().to_string()), "{what}: {m}")
                }
                Err(e) => panic!("{what}: {e}"),
                Ok(_) => panic!("{what}: accepted:\n{text}"),
            }
        }
        // One naming another sysroot is not ours: nothing staged.
        let root = std::fs::canonicalize(d.path()).unwrap();
        let foreign = good.replace(
            &format!("sysroot={}", root.display()),
            "sysroot=/somewhere/else",
        );
        assert_ne!(foreign, good);
        std::fs::write(&file, foreign).unwrap();
        assert!(reopen(d.path()).unwrap().staged().is_none());
        // Nor is one whose deployment directory went away.
        std::fs::write(&file, &good).unwrap();
        assert!(reopen(d.path()).unwrap().staged().is_some());
        let s = reopen(d.path()).unwrap();
        let dep = d.path().join(s.staged().unwrap().relpath());
        crate::util::set_immutable(
            crate::util::open_path(s.dir(), &s.staged().unwrap().relpath())
                .unwrap()
                .as_fd(),
            false,
        )
        .unwrap();
        drop(s);
        std::fs::remove_dir_all(&dep).unwrap();
        assert!(reopen(d.path()).unwrap().staged().is_none());
    }

    #[test]
    fn drop_staged_removes_the_file() {
        let (d, mut s, _) = staged_sysroot(&[]);
        let file = d.path().join("run").join(STAGED_FILE);
        assert!(file.is_file());
        s.drop_staged().unwrap();
        assert!(s.staged().is_none());
        assert!(!file.exists());
        // Twice is fine.
        s.drop_staged().unwrap();
        assert!(matches!(
            s.finalize_staged().unwrap(),
            FinalizeOutcome::NothingStaged
        ));
    }

    /// /etc is merged at finalization, against the merge deployment as it
    /// is then: a conflict fails it once (the state is gone, not retried),
    /// leaves the reason in the failure stamp and the boot entries as they
    /// were.
    #[test]
    fn a_failed_finalization_leaves_a_stamp_and_the_entries() {
        let (d, mut s, _) = staged_sysroot(&[("usr/etc/conf.d/x", "x\n")]);
        let etc1 = d.path().join(s.deployments()[0].relpath()).join("etc");
        // Edited after staging: a local file where the new default has a
        // directory.
        std::fs::write(etc1.join("conf.d"), "local\n").unwrap();
        let loader = std::fs::read_link(d.path().join("boot/loader")).unwrap();
        let e = s.finalize_staged().unwrap_err();
        assert!(
            matches!(&e, SysrootError::EtcConflict { path, .. } if path == "conf.d"),
            "{e}"
        );
        let stamp = std::fs::read_to_string(d.path().join(FAILURE_STAMP)).unwrap();
        assert!(stamp.contains("conf.d"), "{stamp}");
        assert!(!d.path().join("run").join(STAGED_FILE).exists());
        assert!(s.staged().is_none());
        assert!(matches!(
            s.finalize_staged().unwrap(),
            FinalizeOutcome::NothingStaged
        ));
        assert_eq!(s.deployments().len(), 1);
        assert_eq!(
            std::fs::read_link(d.path().join("boot/loader")).unwrap(),
            loader
        );
    }

    /// Edits made to /etc after staging are carried into the finalized
    /// deployment.
    #[test]
    fn finalization_merges_etc_as_it_is_at_shutdown() {
        let (d, mut s, staged) = staged_sysroot(&[]);
        let etc1 = d.path().join(s.deployments()[0].relpath()).join("etc");
        std::fs::write(etc1.join("hostname"), "late edit\n").unwrap();
        match s.finalize_staged().unwrap() {
            FinalizeOutcome::Done(r) => {
                let etc = r.etc.expect("an /etc merge at finalization");
                assert_eq!(etc.modified, ["hostname"]);
            }
            _ => panic!("not finalized"),
        }
        let etc2 = d.path().join(staged.relpath()).join("etc");
        assert_eq!(
            std::fs::read_to_string(etc2.join("hostname")).unwrap(),
            "late edit\n"
        );
        assert!(s.deployments()[0].same(&staged));
    }
}

//! Cleanup: remove what no boot entry references any more — deployment
//! directories and origins, `boot/ostree/OS-BOOTCSUM` directories, stale
//! `loader.N` / `ostree/boot.N.M` — then prune the repository. As ostree
//! 2022.7 does, the prune is refs-only with depth 0: deployed commits stay
//! because each deployment has a `ostree/BOOTVERSION/SUBBOOTVERSION/INDEX`
//! ref.

use crate::error::{IoContext, Result};
use crate::util;
use crate::Sysroot;
use oxtree_repo::fsutil;
use oxtree_repo::prune::{PruneOptions, PruneReport};
use rustix::fd::AsFd;
use std::collections::HashSet;

#[derive(Clone, Debug, Default)]
pub struct CleanupReport {
    pub deployments_removed: Vec<String>,
    pub boot_dirs_removed: Vec<String>,
    pub prune: PruneReport,
    /// Bound container images no deployment names any more, removed from
    /// the sysroot's store (image ids; filled in by oxtree-host, which
    /// owns bound images).
    pub bound_images_removed: Vec<String>,
}

impl Sysroot {
    pub fn cleanup(&mut self) -> Result<CleanupReport> {
        let mut r = CleanupReport::default();
        let live: HashSet<String> = self
            .deployments()
            .iter()
            .chain(self.staged())
            .map(|d| d.relpath())
            .collect();
        for os in self.stateroots()? {
            let rel = format!("ostree/deploy/{os}/deploy");
            let Some(dir) = util::open_path(self.dir(), &rel) else {
                continue;
            };
            for (n, _) in fsutil::list_dir(&dir).ctx(|| format!("listing {rel}"))? {
                let base = n.strip_suffix(".origin").unwrap_or(&n);
                let is_deploy = base
                    .rsplit_once('.')
                    .is_some_and(|(c, s)| c.len() == 64 && s.parse::<u32>().is_ok());
                if is_deploy && !live.contains(&format!("{rel}/{base}")) {
                    util::remove_all(dir.as_fd(), &n)?;
                    if n == base {
                        r.deployments_removed.push(format!("{os} {n}"));
                    }
                }
            }
        }
        let boot_live: HashSet<String> = self
            .deployments()
            .iter()
            .chain(self.staged())
            .map(|d| format!("{}-{}", d.osname, d.bootcsum))
            .collect();
        if let Some(bo) = util::open_path(self.dir(), "boot/ostree") {
            for (n, _) in fsutil::list_dir(&bo).ctx(|| "listing boot/ostree")? {
                let bootdir = n.rsplit_once('-').is_some_and(|(_, c)| c.len() == 64);
                if (bootdir && !boot_live.contains(&n)) || n.ends_with(".tmp") {
                    util::remove_all(bo.as_fd(), &n)?;
                    r.boot_dirs_removed.push(n);
                }
            }
        }
        let (bv, sub) = (self.bootversion(), self.subbootversion());
        if util::exists(self.dir(), "boot/loader") {
            let other = 1 - bv.min(1);
            if let Some(boot) = util::open_path(self.dir(), "boot") {
                util::remove_all(boot.as_fd(), &format!("loader.{other}"))?;
            }
            if let Some(od) = util::open_path(self.dir(), "ostree") {
                for (n, _) in fsutil::list_dir(&od).ctx(|| "listing ostree/")? {
                    let keep = n == format!("boot.{bv}") || n == format!("boot.{bv}.{sub}");
                    if n.starts_with("boot.") && !keep {
                        util::remove_all(od.as_fd(), &n)?;
                    }
                }
            }
            self.remove_stale_refs(bv, sub, self.deployments().len())?;
        }
        let opts = PruneOptions {
            refs_only: true,
            depth: 0,
            ..PruneOptions::default()
        };
        r.prune = self.repo_mut().prune(&opts, &|_, _| {})?;
        Ok(r)
    }

    /// Remove deployment `index` from the list (then clean up).
    pub fn undeploy(
        &mut self,
        index: usize,
    ) -> Result<(crate::deployment::Deployment, crate::write::WriteReport)> {
        let d = self.deployment(index)?.clone();
        if Some(index) == self.booted_index() {
            return Err(crate::SysrootError::Refused(format!(
                "cannot undeploy the booted deployment {index}"
            )));
        }
        let mut list = self.deployments().to_vec();
        list.remove(index);
        let w = self.write_deployments(list)?;
        Ok((d, w))
    }

    /// Make deployment `index` the default; the others keep their order.
    pub fn set_default(&mut self, index: usize) -> Result<crate::write::WriteReport> {
        self.deployment(index)?;
        let mut list = self.deployments().to_vec();
        let d = list.remove(index);
        list.insert(0, d);
        self.write_deployments(list)
    }

    /// rpm-ostree's rollback: the previous deployment (index 1) becomes the
    /// default and the current default becomes the rollback.
    pub fn rollback(&mut self) -> Result<crate::write::WriteReport> {
        if self.deployments().len() < 2 {
            return Err(crate::SysrootError::Refused(
                "no rollback deployment available".into(),
            ));
        }
        self.set_default(1)
    }
}

#[cfg(test)]
mod tests {
    use crate::test_fixture::{commit, os_opts, sysroot};
    use crate::DeployOptions;

    #[test]
    fn undeploy_then_cleanup_removes_the_directory_and_its_objects() {
        let (d, mut s) = sysroot();
        commit(&s, "1", &[("usr/share/big", &"one\n".repeat(10_000))]);
        s.deploy("os/main", &os_opts()).unwrap();
        commit(&s, "2", &[("usr/share/other", "two\n")]);
        s.deploy("os/main", &os_opts()).unwrap();
        assert_eq!(s.deployments().len(), 2);
        let old = s.deployments()[1].clone();
        let dir = d.path().join(old.relpath());
        assert!(dir.is_dir());
        // The booted deployment cannot go; on a sysroot not booted there is
        // none, and index 2 does not exist.
        assert!(s.undeploy(2).is_err());
        s.undeploy(1).unwrap();
        // Its ref is gone with it; the commit only it used is pruned.
        s.repo().write_ref("os/main", None, false).unwrap();
        let r = s.cleanup().unwrap();
        assert!(!dir.exists(), "{} still there", dir.display());
        assert!(
            r.deployments_removed
                .iter()
                .any(|n| n.contains(&old.name())),
            "{r:?}"
        );
        assert!(r.prune.freed > 0, "{r:?}");
        // The remaining deployment is whole, and a second cleanup is a no-op.
        assert!(d
            .path()
            .join(s.deployments()[0].relpath())
            .join("usr/share/other")
            .is_file());
        let again = s.cleanup().unwrap();
        assert!(
            again.deployments_removed.is_empty() && again.prune.freed == 0,
            "{again:?}"
        );
    }

    /// Cleanup removes exactly what nothing references: deployment
    /// directories (and their origins) no entry and no staged deployment
    /// names, `boot/ostree` kernel directories of no deployment and
    /// leftover `.tmp` ones, stale `ostree/boot.N.M` farms; anything not
    /// named like its own stays.
    #[test]
    fn cleanup_removes_exactly_the_unreferenced() {
        let (d, mut s) = sysroot();
        commit(&s, "1", &[]);
        s.deploy("os/main", &os_opts()).unwrap();
        commit(&s, "2", &[("usr/share/two", "2\n")]);
        s.set_run_dir(&d.path().join("run")).unwrap();
        let staged = s.stage("os/main", &os_opts(), false).unwrap();
        let live = s.deployments()[0].clone();
        let p = |rel: &str| d.path().join(rel);
        let deploy_dir = p("ostree/deploy/os/deploy");
        let stray = format!("{}.0", "ab".repeat(32));
        std::fs::create_dir(deploy_dir.join(&stray)).unwrap();
        std::fs::write(deploy_dir.join(format!("{stray}.origin")), "").unwrap();
        // An origin whose directory is gone already.
        let orphan = format!("{}.3", "cd".repeat(32));
        std::fs::write(deploy_dir.join(format!("{orphan}.origin")), "").unwrap();
        // Not a deployment's name: not cleanup's to remove.
        for keep in ["notes", "abc.0", &format!("{}.x", "ef".repeat(32))] {
            std::fs::create_dir(deploy_dir.join(keep)).unwrap();
        }
        let stray_boot = format!("os-{}", "01".repeat(32));
        std::fs::create_dir_all(p("boot/ostree").join(&stray_boot)).unwrap();
        std::fs::create_dir_all(p("boot/ostree/os-partial.tmp")).unwrap();
        std::fs::create_dir_all(p("boot/ostree/keep-me")).unwrap();
        std::fs::create_dir_all(p("ostree/boot.1.7")).unwrap();

        let r = s.cleanup().unwrap();
        assert_eq!(r.deployments_removed, [format!("os {stray}")]);
        let mut boot = r.boot_dirs_removed.clone();
        boot.sort();
        assert_eq!(boot, [stray_boot.clone(), "os-partial.tmp".to_string()]);
        assert!(!deploy_dir.join(&stray).exists());
        assert!(!deploy_dir.join(format!("{stray}.origin")).exists());
        assert!(!deploy_dir.join(format!("{orphan}.origin")).exists());
        for keep in ["notes", "abc.0", &format!("{}.x", "ef".repeat(32))] {
            assert!(deploy_dir.join(keep).is_dir(), "{keep} removed");
        }
        assert!(p("boot/ostree/keep-me").is_dir());
        assert!(!p("ostree/boot.1.7").exists());
        // The deployed and the staged deployment, their origins and their
        // kernels stay.
        for dep in [&live, &staged] {
            assert!(p(&dep.relpath()).join("usr/bin/tool").is_file());
            assert!(p(&dep.origin_relpath()).is_file());
            assert!(p(&format!("boot/ostree/os-{}", dep.bootcsum)).is_dir());
        }
        let bv = s.bootversion();
        let farm = format!("ostree/boot.{bv}.{}", s.subbootversion());
        assert!(p(&farm).is_dir(), "{farm}");
        assert!(std::fs::read_link(p(&format!("ostree/boot.{bv}"))).is_ok());
        assert!(p(&format!("boot/loader.{bv}/entries")).is_dir());
        // The deployed commit is kept by its ref.
        assert!(s
            .repo()
            .list_refs()
            .unwrap()
            .iter()
            .any(|(n, _)| n.starts_with("ostree/")));
    }

    /// Deployments of another stateroot are referenced too.
    #[test]
    fn cleanup_keeps_the_deployments_of_every_stateroot() {
        let (d, mut s) = sysroot();
        s.init_stateroot("other").unwrap();
        commit(&s, "1", &[]);
        s.deploy("os/main", &os_opts()).unwrap();
        let other = DeployOptions {
            osname: Some("other".into()),
            ..Default::default()
        };
        s.deploy("os/main", &other).unwrap();
        assert_eq!(s.deployments().len(), 2);
        let r = s.cleanup().unwrap();
        assert!(r.deployments_removed.is_empty(), "{r:?}");
        for dep in s.deployments() {
            assert!(d.path().join(dep.relpath()).join("usr").is_dir());
        }
        // Undeploying one removes it, and only it, at the next cleanup.
        let (gone, _) = s.undeploy(1).unwrap();
        let r = s.cleanup().unwrap();
        assert_eq!(
            r.deployments_removed,
            [format!("{} {}", gone.osname, gone.name())]
        );
        assert!(!d.path().join(gone.relpath()).exists());
        assert!(d.path().join(s.deployments()[0].relpath()).is_dir());
    }
}

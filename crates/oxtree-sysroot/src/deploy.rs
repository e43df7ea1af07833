//! `admin deploy`: check out a commit from the sysroot repository as a new
//! deployment, build its /etc, and write the new deployment list with
//! ostree's retention policy.

use crate::deployment::Deployment;
use crate::error::{IoContext, Result, SysrootError};
use crate::etc_merge::{self, EtcDiff};
use crate::kargs::KernelArgs;

/// Kernel arguments an image asks for, one line of whitespace-separated
/// arguments (written by `compose tree` from the treefile's kernel-args).
pub const IMAGE_KARGS: &str = "usr/lib/oxtree/kargs";
use crate::util;
use crate::write::WriteReport;
use crate::KeyFile;
use crate::Sysroot;
use oxtree_repo::{fsutil, CheckoutOptions};
use rustix::fd::AsFd;

#[derive(Clone, Debug, Default)]
pub struct DeployOptions {
    /// Stateroot; default: the only one there is.
    pub osname: Option<String>,
    /// `--karg=K=V`: replace (or add) an argument.
    pub karg_replace: Vec<String>,
    /// `--karg-append=K=V`.
    pub karg_append: Vec<String>,
    /// `--karg-delete=K` or `K=V`: drop an argument (after the others).
    pub karg_delete: Vec<String>,
    /// `--karg-proc-cmdline`: start from these arguments instead of the
    /// merge deployment's (`--karg`/`--karg-append` then apply on top).
    pub karg_base: Option<String>,
    /// `--origin-file`: use this origin instead of `[origin] refspec=REV`.
    pub origin: Option<KeyFile>,
    /// `--retain`: keep every existing deployment.
    pub retain: bool,
    /// `--retain-pending`: keep the deployments before the booted one
    /// (or, on a sysroot not booted, before the merge deployment).
    pub retain_pending: bool,
    /// `--retain-rollback`: keep the deployments after it.
    pub retain_rollback: bool,
    /// `--not-as-default`: place the new deployment after the default.
    pub not_as_default: bool,
    /// `--no-merge`: start from the new tree's /etc and no kernel
    /// arguments, ignoring the current deployment.
    pub no_merge: bool,
}

#[derive(Clone, Debug)]
pub struct DeployReport {
    pub deployment: Deployment,
    /// The /etc changes carried over from the merge deployment, if any.
    pub etc: Option<EtcDiff>,
    pub write: WriteReport,
}

impl Sysroot {
    /// Resolve which stateroot an operation is about.
    pub fn resolve_osname(&self, os: Option<&str>) -> Result<String> {
        if let Some(os) = os {
            crate::validate_osname(os)?;
            if !self.stateroots()?.iter().any(|s| s == os) {
                return Err(SysrootError::NoStateroot(os.to_string()));
            }
            return Ok(os.to_string());
        }
        if let Some(b) = self.booted_index() {
            return Ok(self.deployments()[b].osname.clone());
        }
        match &self.stateroots()?[..] {
            [one] => Ok(one.clone()),
            [] => Err(SysrootError::Refused(
                "no stateroot exists; run `admin os-init OS` first".into(),
            )),
            _ => Err(SysrootError::Refused(
                "not booted into a deployment and several stateroots exist; pass --os".into(),
            )),
        }
    }

    fn allocate_serial(&self, osname: &str, csum: &str) -> Result<u32> {
        let mut next = 0;
        if let Some(d) = util::open_path(self.dir(), &format!("ostree/deploy/{osname}/deploy")) {
            for (n, _) in fsutil::list_dir(&d).ctx(|| "listing deployments")? {
                let n = n.strip_suffix(".origin").unwrap_or(&n);
                if let Some((c, s)) = n.rsplit_once('.') {
                    if c == csum {
                        if let Ok(s) = s.parse::<u32>() {
                            next = next.max(s + 1);
                        }
                    }
                }
            }
        }
        for d in self.deployments() {
            if d.osname == osname && d.csum == csum {
                next = next.max(d.deployserial + 1);
            }
        }
        Ok(next)
    }

    /// Deploy `rev` (a refspec or checksum present in the sysroot repo).
    /// A staged deployment, if any, is dropped (as ostree does).
    pub fn deploy(&mut self, rev: &str, opts: &DeployOptions) -> Result<DeployReport> {
        let (new, etc, merge) = self.create_deployment(rev, opts, true)?;
        self.drop_staged()?;
        let write = self.install_new_deployment(&new, merge.as_ref(), opts)?;
        let deployment = self
            .deployments()
            .iter()
            .find(|d| d.same(&new))
            .cloned()
            .unwrap_or(new);
        Ok(DeployReport {
            deployment,
            etc,
            write,
        })
    }

    /// The kernel arguments a commit's image ships in [`IMAGE_KARGS`].
    fn image_kargs(&self, csum: &oxtree_object::Checksum) -> Result<Vec<String>> {
        let c = self.repo().load_commit(csum)?;
        let node = match self
            .repo()
            .resolve_path((c.root_tree, c.root_meta), IMAGE_KARGS)
        {
            Ok(n) => n,
            Err(oxtree_repo::RepoError::NoSuchPath(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let oxtree_repo::Node::File(f) = node else {
            return Ok(Vec::new());
        };
        let mut text = String::new();
        use std::io::Read;
        self.repo()
            .open_file(&f)?
            .content
            .take(64 << 10)
            .read_to_string(&mut text)
            .ctx(|| format!("reading {IMAGE_KARGS} of {csum}"))?;
        Ok(text.split_whitespace().map(str::to_string).collect())
    }

    /// Check out `rev` as a new deployment directory with its origin (and,
    /// with `with_etc`, its merged /etc); nothing refers to it yet. Returns
    /// the deployment, the /etc changes carried over, and the merge
    /// deployment.
    pub(crate) fn create_deployment(
        &self,
        rev: &str,
        opts: &DeployOptions,
        with_etc: bool,
    ) -> Result<(Deployment, Option<EtcDiff>, Option<Deployment>)> {
        let osname = self.resolve_osname(opts.osname.as_deref())?;
        let csum = self.repo().resolve_rev(rev)?;
        self.repo().load_commit(&csum)?;
        let merge = if opts.no_merge {
            None
        } else {
            self.merge_deployment(&osname).cloned()
        };
        let serial = self.allocate_serial(&osname, &csum.to_hex())?;
        let origin = match &opts.origin {
            Some(o) => o.clone(),
            None => {
                let mut o = KeyFile::new();
                o.set("origin", "refspec", rev);
                o
            }
        };
        let base = match &opts.karg_base {
            Some(b) => b.as_str(),
            None => merge.as_ref().map(|m| m.kargs.as_str()).unwrap_or(""),
        };
        let mut kargs = KernelArgs::parse(base);
        // Kernel arguments the image asks for (`usr/lib/oxtree/kargs`, from
        // the treefile's kernel-args): those the previous image had and
        // this one dropped go, new ones are added, the admin's own stay.
        let new_image = self.image_kargs(&csum)?;
        let old_image = match &merge {
            Some(m) => self.image_kargs(&self.repo().resolve_rev(&m.csum)?)?,
            None => Vec::new(),
        };
        for k in old_image.iter().filter(|k| !new_image.contains(k)) {
            kargs.delete(k);
        }
        for k in &new_image {
            if !kargs.contains(k) {
                kargs.append(k);
            }
        }
        for k in &opts.karg_replace {
            kargs.replace(k);
        }
        for k in &opts.karg_append {
            kargs.append(k);
        }
        for k in &opts.karg_delete {
            kargs.delete(k);
        }
        let mut new = Deployment {
            osname: osname.clone(),
            csum: csum.to_hex(),
            deployserial: serial,
            bootcsum: String::new(),
            bootserial: 0,
            kargs: kargs.to_cmdline(),
            origin: Some(origin.clone()),
        };
        let parent_rel = format!("ostree/deploy/{osname}/deploy");
        let parent =
            fsutil::mkdir_p_at(self.dir(), &parent_rel).ctx(|| format!("creating {parent_rel}"))?;
        let name = new.name();
        let dest = self.path().join(&parent_rel).join(&name);
        let built = (|| -> Result<(Option<EtcDiff>, String)> {
            self.repo().checkout(
                &csum,
                &dest,
                &CheckoutOptions {
                    passthrough_whiteouts: true,
                    ..Default::default()
                },
                &|_| {},
            )?;
            let root = fsutil::open_dir_at(&parent, &name).ctx(|| format!("opening {name}"))?;
            // Fail early (before /boot is touched) on a tree without a kernel.
            let layout = crate::kernel::find_kernel(root.as_fd(), &new.relpath())?;
            let etc = if with_etc {
                let etc = self.build_etc(root.as_fd(), merge.as_ref())?;
                // systemd's ConditionNeedsUpdate= stamps: a new deployment
                // needs its update units run again.
                let var_rel = format!("ostree/deploy/{osname}/var");
                for (dir, stamp) in [
                    (util::open_path(root.as_fd(), "etc"), "/etc/.updated"),
                    (util::open_path(self.dir(), &var_rel), "/var/.updated"),
                ] {
                    if let Some(d) = dir {
                        match rustix::fs::unlinkat(&d, ".updated", rustix::fs::AtFlags::empty()) {
                            Ok(()) | Err(rustix::io::Errno::NOENT) => {}
                            Err(e) => return Err(e).ctx(|| format!("removing {stamp}")),
                        }
                    }
                }
                etc
            } else {
                None
            };
            util::write_file(
                parent.as_fd(),
                &format!("{name}.origin"),
                origin.to_text().as_bytes(),
            )?;
            rustix::fs::syncfs(&root).ctx(|| "syncfs of the deployment")?;
            util::set_immutable(root.as_fd(), true)?;
            Ok((etc, layout.bootcsum))
        })();
        match built {
            Ok((etc, bootcsum)) => {
                new.bootcsum = bootcsum;
                Ok((new, etc, merge))
            }
            Err(e) => {
                let _ = util::remove_all(parent.as_fd(), &name);
                let _ = util::remove_all(parent.as_fd(), &format!("{name}.origin"));
                Err(e)
            }
        }
    }

    /// Put a created deployment into the boot list with ostree's simple
    /// write policy (not booted: keep the merge one) and write it. If the
    /// write fails, the unreferenced deployment directory is removed.
    pub(crate) fn install_new_deployment(
        &mut self,
        new: &Deployment,
        merge: Option<&Deployment>,
        opts: &DeployOptions,
    ) -> Result<WriteReport> {
        let osname = new.osname.clone();
        let mut list = Vec::new();
        let booted = self.booted_index();
        let mut added = false;
        if !opts.not_as_default {
            list.push(new.clone());
            added = true;
        }
        // As ostree's simple write policy: the booted deployment (else the
        // merge one) divides pending deployments (before it) from rollback
        // ones (after it); without either, keeping some means keeping all.
        let retain = opts.retain
            || (booted.is_none()
                && merge.is_none()
                && (opts.retain_pending || opts.retain_rollback));
        let mut crossed = false;
        for (i, d) in self.deployments().iter().enumerate() {
            let is_booted = Some(i) == booted;
            let is_merge = merge.is_some_and(|m| m.same(d));
            if (booted.is_some() && is_booted) || (booted.is_none() && is_merge) {
                crossed = true;
            }
            let keep = retain
                || d.is_pinned()
                || d.osname != osname
                || is_booted
                || is_merge
                || (opts.retain_pending && !crossed)
                || (opts.retain_rollback && crossed);
            if keep {
                list.push(d.clone());
            }
            if !added && crossed {
                list.push(new.clone());
                added = true;
            }
        }
        if !added {
            list.push(new.clone());
        }
        match self.write_deployments(list) {
            Ok(w) => Ok(w),
            Err(e) => {
                // Not referenced by any entry yet: take it away again.
                if !self.deployments().iter().any(|d| d.same(new)) {
                    let parent_rel = format!("ostree/deploy/{osname}/deploy");
                    if let Some(parent) = util::open_path(self.dir(), &parent_rel) {
                        let name = new.name();
                        let _ = util::remove_all(parent.as_fd(), &name);
                        let _ = util::remove_all(parent.as_fd(), &format!("{name}.origin"));
                    }
                }
                Err(e)
            }
        }
    }

    /// `etc` = copy of `usr/etc`, plus the merge deployment's local changes.
    pub(crate) fn build_etc(
        &self,
        root: rustix::fd::BorrowedFd<'_>,
        merge: Option<&Deployment>,
    ) -> Result<Option<EtcDiff>> {
        let Some(usr) = fsutil::open_dir_at(root, "usr").ok() else {
            return Err(SysrootError::Refused("the commit has no /usr".into()));
        };
        if util::exists(root, "etc") {
            return Err(SysrootError::Refused(
                "the commit has /etc; ostree trees carry their defaults in /usr/etc".into(),
            ));
        }
        if !util::exists(usr.as_fd(), "etc") {
            return Err(SysrootError::Refused("the commit has no /usr/etc".into()));
        }
        let Some(m) = merge else {
            etc_merge::copy_entry(usr.as_fd(), "etc", root, "etc")?;
            return Ok(None);
        };
        let mroot = util::open_path(self.dir(), &m.relpath())
            .ok_or_else(|| SysrootError::Invalid(format!("{} is missing", m.relpath())))?;
        let morig = util::open_path(mroot.as_fd(), "usr/etc")
            .ok_or_else(|| SysrootError::Invalid(format!("{}/usr/etc is missing", m.relpath())))?;
        let mmod = util::open_path(mroot.as_fd(), "etc")
            .ok_or_else(|| SysrootError::Invalid(format!("{}/etc is missing", m.relpath())))?;
        let diff = etc_merge::diff(morig.as_fd(), mmod.as_fd())?;
        // Build in a temp name so a conflict leaves no half-merged etc.
        let tmp = ".etc.oxtree-tmp";
        etc_merge::copy_entry(usr.as_fd(), "etc", root, tmp)?;
        let new = fsutil::open_dir_at(root, tmp).ctx(|| "opening new etc")?;
        etc_merge::apply(&diff, mmod.as_fd(), new.as_fd())?;
        rustix::fs::renameat(root, tmp, root, "etc").ctx(|| "placing etc")?;
        Ok(Some(diff))
    }

    /// `admin config-diff`: local /etc changes of the merge deployment.
    pub fn config_diff(&self, osname: &str) -> Result<EtcDiff> {
        let m = self
            .merge_deployment(osname)
            .ok_or_else(|| SysrootError::Refused(format!("no deployment of stateroot {osname}")))?;
        let root = util::open_path(self.dir(), &m.relpath())
            .ok_or_else(|| SysrootError::Invalid(format!("{} is missing", m.relpath())))?;
        let orig = util::open_path(root.as_fd(), "usr/etc")
            .ok_or_else(|| SysrootError::Invalid("usr/etc is missing".into()))?;
        let modi = util::open_path(root.as_fd(), "etc")
            .ok_or_else(|| SysrootError::Invalid("etc is missing".into()))?;
        etc_merge::diff(orig.as_fd(), modi.as_fd())
    }
}

#[cfg(test)]
mod tests {
    use crate::test_fixture::{commit, os_opts, sysroot};
    use crate::{DeployOptions, SysrootError};

    #[test]
    fn deploy_merges_local_etc_changes_into_the_next_deployment() {
        let (d, mut s) = sysroot();
        let opts = DeployOptions {
            osname: Some("os".into()),
            ..Default::default()
        };
        commit(&s, "1", &[]);
        let r1 = s.deploy("os/main", &opts).unwrap();
        let etc1 = d.path().join(r1.deployment.relpath()).join("etc");
        // /etc starts as a copy of usr/etc.
        assert_eq!(
            std::fs::read_to_string(etc1.join("hostname")).unwrap(),
            "fixture\n"
        );
        std::fs::write(etc1.join("hostname"), "mine\n").unwrap();
        std::fs::write(etc1.join("local.conf"), "added\n").unwrap();
        std::fs::remove_file(etc1.join("os-release")).unwrap();
        let diff = s.config_diff("os").unwrap();
        assert_eq!(diff.modified, ["hostname"]);
        assert_eq!(diff.added, ["local.conf"]);
        assert_eq!(diff.removed, ["os-release"]);

        // The next version changes a default the host did not touch and
        // one it did: the local change wins, the rest follows the tree.
        commit(
            &s,
            "2",
            &[
                ("usr/etc/hostname", "new-default\n"),
                ("usr/etc/new.conf", "n\n"),
            ],
        );
        let r2 = s.deploy("os/main", &opts).unwrap();
        let etc2 = d.path().join(r2.deployment.relpath()).join("etc");
        let read = |n: &str| std::fs::read_to_string(etc2.join(n)).ok();
        assert_eq!(read("hostname").as_deref(), Some("mine\n"));
        assert_eq!(read("local.conf").as_deref(), Some("added\n"));
        assert_eq!(read("new.conf").as_deref(), Some("n\n"));
        assert_eq!(read("os-release"), None);
        let etc = r2.etc.expect("an /etc merge report");
        assert!(etc.modified.contains(&"hostname".to_string()), "{etc:?}");
        // The first deployment's /etc is untouched.
        assert_eq!(
            std::fs::read_to_string(etc1.join("hostname")).unwrap(),
            "mine\n"
        );
    }

    #[test]
    fn a_stateroot_must_be_named_when_several_exist() {
        let (_d, s) = sysroot();
        assert_eq!(s.resolve_osname(None).unwrap(), "os");
        s.init_stateroot("other").unwrap();
        let s = {
            let p = s.path().to_path_buf();
            drop(s);
            crate::Sysroot::open(&p).unwrap()
        };
        assert!(matches!(
            s.resolve_osname(None),
            Err(SysrootError::Refused(_))
        ));
        assert_eq!(s.resolve_osname(Some("other")).unwrap(), "other");
        assert!(matches!(
            s.resolve_osname(Some("../x")),
            Err(SysrootError::InvalidStateroot(_))
        ));
    }

    #[test]
    fn a_tree_with_etc_or_without_usr_is_refused() {
        let (_d, mut s) = sysroot();
        let opts = DeployOptions {
            osname: Some("os".into()),
            ..Default::default()
        };
        commit(&s, "1", &[("etc/passwd", "root:x:0:0::/root:/bin/sh\n")]);
        let e = s.deploy("os/main", &opts).unwrap_err();
        assert!(matches!(e, SysrootError::Refused(_)), "{e}");
        assert!(e.to_string().contains("/usr/etc"), "{e}");
        assert!(s.deployments().is_empty());
    }

    /// The same commit deployed again gets the next serial; each
    /// deployment has its origin naming what was deployed.
    #[test]
    fn a_commit_deployed_twice_gets_the_next_serial() {
        let (d, mut s) = sysroot();
        let c = commit(&s, "1", &[]);
        let a = s.deploy("os/main", &os_opts()).unwrap().deployment;
        let b = s.deploy(&c.to_hex(), &os_opts()).unwrap().deployment;
        assert_eq!((a.csum.as_str(), a.deployserial), (b.csum.as_str(), 0));
        assert_eq!(b.deployserial, 1);
        assert_eq!(s.deployments().len(), 2);
        let origin = |dep: &crate::Deployment| {
            std::fs::read_to_string(d.path().join(dep.origin_relpath())).unwrap()
        };
        assert!(origin(&a).contains("refspec=os/main"), "{}", origin(&a));
        assert!(origin(&b).contains(&format!("refspec={}", c.to_hex())));
        // Both share one kernel directory; their boot serials differ.
        assert_eq!(s.deployments()[0].bootcsum, s.deployments()[1].bootcsum);
        let mut serials: Vec<u32> = s.deployments().iter().map(|x| x.bootserial).collect();
        serials.sort();
        assert_eq!(serials, [0, 1]);
    }

    /// Kernel arguments: the merge deployment's, minus what the previous
    /// image asked for and the new one does not, plus the new image's,
    /// then the admin's edits.
    #[test]
    fn kernel_arguments_follow_the_image_and_keep_the_admins() {
        let (_d, mut s) = sysroot();
        commit(&s, "1", &[(super::IMAGE_KARGS, "quiet splash\n")]);
        let first = DeployOptions {
            karg_replace: vec!["console=ttyS0".into()],
            karg_append: vec!["x=1".into()],
            ..os_opts()
        };
        let k1 = s.deploy("os/main", &first).unwrap().deployment.kargs;
        for a in ["quiet", "splash", "console=ttyS0", "x=1"] {
            assert!(k1.split(' ').any(|x| x == a), "{a} in {k1}");
        }
        commit(&s, "2", &[(super::IMAGE_KARGS, "quiet mitigations=off\n")]);
        let second = DeployOptions {
            karg_delete: vec!["x=1".into()],
            ..os_opts()
        };
        let k2 = s.deploy("os/main", &second).unwrap().deployment.kargs;
        let args: Vec<&str> = k2.split(' ').collect();
        assert!(
            args.contains(&"quiet") && args.contains(&"mitigations=off"),
            "{k2}"
        );
        assert!(args.contains(&"console=ttyS0"), "the admin's stays: {k2}");
        assert!(!args.contains(&"splash"), "the old image's goes: {k2}");
        assert!(!args.contains(&"x=1"), "deleted: {k2}");
        assert_eq!(args.iter().filter(|a| **a == "quiet").count(), 1, "{k2}");
        // --no-merge starts from nothing but the image's.
        let k3 = s
            .deploy(
                "os/main",
                &DeployOptions {
                    no_merge: true,
                    ..os_opts()
                },
            )
            .unwrap()
            .deployment
            .kargs;
        let k3: Vec<&str> = k3
            .split(' ')
            .filter(|a| !a.starts_with("ostree="))
            .collect();
        assert_eq!(k3, ["quiet", "mitigations=off"]);
    }

    /// Not booted: a new deployment keeps the merge deployment (the
    /// default) and drops the older ones, except a pinned one; `retain`
    /// keeps all; `not_as_default` puts the new one second.
    #[test]
    fn the_retention_policy_when_not_booted() {
        let (d, mut s) = sysroot();
        let mut names = Vec::new();
        for v in ["1", "22", "333"] {
            commit(&s, v, &[("usr/share/v", v)]);
            names.push(s.deploy("os/main", &os_opts()).unwrap().deployment);
        }
        let list = |s: &crate::Sysroot| -> Vec<String> {
            s.deployments().iter().map(|x| x.name()).collect()
        };
        assert_eq!(list(&s), [names[2].name(), names[1].name()]);
        // Pin the rollback: it survives the next deploy.
        s.set_pinned(1, true).unwrap();
        commit(&s, "4444", &[("usr/share/v", "4")]);
        let four = s.deploy("os/main", &os_opts()).unwrap().deployment;
        assert_eq!(list(&s), [four.name(), names[2].name(), names[1].name()]);
        commit(&s, "55555", &[("usr/share/v", "5")]);
        let retain = DeployOptions {
            retain: true,
            not_as_default: true,
            ..os_opts()
        };
        let five = s.deploy("os/main", &retain).unwrap().deployment;
        assert_eq!(
            list(&s),
            [four.name(), five.name(), names[2].name(), names[1].name()]
        );
        // The dropped deployment's directory goes at cleanup, not before.
        assert!(d.path().join(names[0].relpath()).is_dir());
        s.cleanup().unwrap();
        assert!(!d.path().join(names[0].relpath()).exists());
    }

    /// A deploy whose /etc merge conflicts fails before anything is
    /// written: no new deployment directory or origin, the list as it was.
    #[test]
    fn an_etc_conflict_leaves_no_deployment_behind() {
        let (d, mut s) = sysroot();
        commit(&s, "1", &[]);
        let first = s.deploy("os/main", &os_opts()).unwrap().deployment;
        let etc1 = d.path().join(first.relpath()).join("etc");
        std::fs::write(etc1.join("conf.d"), "a local file\n").unwrap();
        commit(&s, "2", &[("usr/etc/conf.d/x", "a directory now\n")]);
        let e = s.deploy("os/main", &os_opts()).unwrap_err();
        assert!(
            matches!(&e, SysrootError::EtcConflict { path, .. } if path == "conf.d"),
            "{e}"
        );
        let mut left: Vec<String> = std::fs::read_dir(d.path().join("ostree/deploy/os/deploy"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, [first.name(), format!("{}.origin", first.name())]);
        assert_eq!(s.deployments(), std::slice::from_ref(&first));
    }
}

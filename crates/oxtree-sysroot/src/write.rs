//! Writing a new deployment list: kernels into `boot/ostree/OS-BOOTCSUM/`,
//! the `ostree/boot.N.M` symlink farm, BLS entries in `boot/loader.N`, the
//! `ostree/N/M/I` refs that keep deployed commits from being pruned, then
//! one atomic swap.
//!
//! Order (so that every boot entry, at every moment, names files that
//! exist): kernels, farm and entries of the new bootversion are written and
//! synced (fsync + syncfs of both filesystems) before the single
//! `rename(boot/loader.tmp, boot/loader)`; what only the old bootversion
//! referenced is removed after it. When the entries would be byte-identical,
//! only the symlink farm is swapped (`ostree/boot.N` to the other
//! subbootversion), as ostree does ("bootconfig swap: no").
//!
//! No FIFREEZE by default: ostree freezes and thaws /boot after its sync to
//! flush journaled metadata for bootloaders that read the raw disk, but a
//! process killed inside that window leaves the filesystem frozen and the
//! machine hung. syncfs already makes the data durable for the kernel's
//! filesystem drivers; set `[sysroot] oxtree-freeze-boot=true` in the repo
//! config to opt in to the freeze for bootloaders that need it.

use crate::bls::BlsEntry;
use crate::deployment::Deployment;
use crate::error::{IoContext, Result, SysrootError};
use crate::kargs::KernelArgs;
use crate::kernel::{find_kernel, KernelLayout};
use crate::util;
use crate::Sysroot;
use oxtree_object::Checksum;
use oxtree_repo::fsutil;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{self, Mode, OFlags};
use std::collections::{BTreeMap, HashMap};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteReport {
    /// A new bootversion was written (false: only the subbootversion).
    pub bootconfig_swap: bool,
    pub bootversion: u32,
    pub subbootversion: u32,
    pub count_change: i64,
}

/// What goes into a deployment's boot entry.
struct Prepared {
    layout: KernelLayout,
    title_name: String,
    version: Option<String>,
}

fn os_release(root: BorrowedFd<'_>) -> HashMap<String, String> {
    let mut m = HashMap::new();
    for p in ["usr/lib/os-release", "etc/os-release"] {
        let (dir, leaf) = p.rsplit_once('/').unwrap();
        let Some(d) = util::open_path(root, dir) else {
            continue;
        };
        let Ok(b) = fsutil::read_at(&d, leaf) else {
            continue;
        };
        for line in String::from_utf8_lossy(&b).lines() {
            if let Some((k, v)) = line.split_once('=') {
                let v = v.trim();
                let v = v
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                    .unwrap_or(v);
                m.insert(k.trim().to_string(), v.to_string());
            }
        }
        break;
    }
    m
}

impl Sysroot {
    fn open_boot(&self) -> Result<OwnedFd> {
        fsutil::ensure_dir_at(self.dir(), "boot", 0o755).ctx(|| "creating boot")?;
        // /boot may be a mount point: follow it (it is ours), O_DIRECTORY.
        fs::openat(self.dir(), "boot", fsutil::DIR_FLAGS, Mode::empty()).ctx(|| "opening boot")
    }

    fn prepare(&self, d: &Deployment) -> Result<Prepared> {
        let root = util::open_path(self.dir(), &d.relpath()).ok_or_else(|| {
            SysrootError::Invalid(format!("deployment directory {} is missing", d.relpath()))
        })?;
        let layout = find_kernel(root.as_fd(), &d.relpath())?;
        let osr = os_release(root.as_fd());
        let title_name = osr
            .get("PRETTY_NAME")
            .or_else(|| osr.get("ID"))
            .cloned()
            .unwrap_or_else(|| "ostree".into());
        let version = Checksum::from_hex(&d.csum)
            .ok()
            .and_then(|c| self.repo().load_commit(&c).ok())
            .and_then(|c| c.metadata.get_str("version").map(str::to_string));
        Ok(Prepared {
            layout,
            title_name,
            version,
        })
    }

    /// Copy missing kernel files into `boot/ostree/OS-BOOTCSUM/`, after
    /// checking that they fit; a new directory appears by one rename.
    fn install_kernels(&self, boot: BorrowedFd<'_>, list: &[(Deployment, Prepared)]) -> Result<()> {
        let ostree = fsutil::mkdir_p_at(boot, "ostree").ctx(|| "creating boot/ostree")?;
        let mut todo: BTreeMap<String, (&Deployment, &KernelLayout)> = BTreeMap::new();
        for (d, p) in list {
            let bootcsum = match d.bootcsum.as_str() {
                "" => &p.layout.bootcsum,
                c => c,
            };
            todo.entry(format!("{}-{bootcsum}", d.osname))
                .or_insert((d, &p.layout));
        }
        let mut needed = 0u64;
        let mut copies = Vec::new();
        for (dirname, (d, layout)) in &todo {
            let existing = fsutil::open_dir_at(&ostree, dirname).ok();
            for f in layout.files() {
                if let Some(e) = &existing {
                    if util::exists(e.as_fd(), &f.dest) {
                        continue;
                    }
                }
                needed += f.size + 4096;
                copies.push((dirname.clone(), *d, f.clone()));
            }
        }
        if copies.is_empty() {
            return Ok(());
        }
        let st = fs::fstatvfs(&ostree).ctx(|| "statvfs of /boot")?;
        let available = st.f_bavail.saturating_mul(st.f_frsize);
        if needed > available {
            return Err(SysrootError::BootSpace { needed, available });
        }
        for (dirname, (d, _)) in &todo {
            if !copies.iter().any(|(n, _, _)| n == dirname) {
                continue;
            }
            let root = util::open_path(self.dir(), &d.relpath())
                .ok_or_else(|| SysrootError::Invalid(format!("{} is missing", d.relpath())))?;
            let exists = util::exists(ostree.as_fd(), dirname);
            let work = if exists {
                dirname.clone()
            } else {
                let tmp = format!(".{dirname}.tmp");
                util::remove_all(ostree.as_fd(), &tmp)?;
                fs::mkdirat(&ostree, tmp.as_str(), Mode::from_raw_mode(0o755))
                    .ctx(|| format!("creating boot/ostree/{tmp}"))?;
                tmp
            };
            let wd = fsutil::open_dir_at(&ostree, &work).ctx(|| format!("opening {work}"))?;
            for (_, _, f) in copies.iter().filter(|(n, _, _)| n == dirname) {
                match f.dest.rsplit_once('/') {
                    // A device tree directory's file (`dtb/…`).
                    Some((parent, name)) => {
                        let pd = fsutil::mkdir_p_at(&wd, parent)
                            .ctx(|| format!("creating {dirname}/{parent}"))?;
                        copy_file(root.as_fd(), &f.src, pd.as_fd(), name)?;
                    }
                    None => copy_file(root.as_fd(), &f.src, wd.as_fd(), &f.dest)?,
                }
            }
            fs::fsync(&wd).ctx(|| "syncing boot dir")?;
            if !exists {
                fs::renameat(&ostree, work.as_str(), &ostree, dirname.as_str())
                    .ctx(|| format!("renaming boot/ostree/{dirname}"))?;
            }
        }
        fs::fsync(&ostree).ctx(|| "syncing boot/ostree")?;
        Ok(())
    }

    /// Copy one deployment's kernel files to /boot (for staging).
    pub(crate) fn install_kernels_for(&self, d: &Deployment) -> Result<()> {
        let boot = self.open_boot()?;
        let p = self.prepare(d)?;
        self.install_kernels(boot.as_fd(), &[(d.clone(), p)])
    }

    /// Make `new` the deployment list (index 0 is the default).
    pub fn write_deployments(&mut self, new: Vec<Deployment>) -> Result<WriteReport> {
        let boot = self.open_boot()?;
        let bootloader = crate::bootloader::from_config(
            self.config("oxtree-bootloader"),
            self.config("bootloader"),
            self.config("boot-counting-tries"),
            boot.as_fd(),
        )?;
        let mut list = Vec::with_capacity(new.len());
        for d in new {
            let p = self.prepare(&d)?;
            list.push((d, p));
        }
        // Boot serials count deployments sharing (osname, bootcsum).
        let mut serials: HashMap<(String, String), u32> = HashMap::new();
        for (d, p) in &mut list {
            // A deployment keeps the bootcsum it was created with, as in
            // ostree, even if its kernel files would hash differently now
            // (device trees ignored then, `OSTREE_SYSROOT_DEBUG=no-dtb`).
            if d.bootcsum.is_empty() {
                d.bootcsum = p.layout.bootcsum.clone();
            }
            let s = serials
                .entry((d.osname.clone(), d.bootcsum.clone()))
                .or_insert(0);
            d.bootserial = *s;
            *s += 1;
        }
        self.install_kernels(boot.as_fd(), &list)?;

        let old_bv = self.bootversion;
        // Titles name the stateroot only when there is more than one, as
        // ostree's do.
        let show_osname = list.iter().any(|(d, _)| d.osname != list[0].0.osname);
        let entries_for = |bv: u32| -> Vec<(String, String)> {
            let n = list.len();
            list.iter()
                .enumerate()
                .map(|(i, (d, p))| {
                    let mut e = BlsEntry::new();
                    let mut title = p.title_name.clone();
                    if let Some(v) = p.version.as_deref().filter(|v| !v.is_empty()) {
                        if !title.contains(v) {
                            title.push(' ');
                            title.push_str(v);
                        }
                    }
                    if show_osname {
                        title.push_str(&format!(" (ostree:{}:{i})", d.osname));
                    } else {
                        title.push_str(&format!(" (ostree:{i})"));
                    }
                    e.set("title", &title);
                    e.set("version", &(n - i).to_string());
                    let mut k = KernelArgs::parse(&d.kargs);
                    k.replace(&format!(
                        "ostree=/ostree/boot.{bv}/{}/{}/{}",
                        d.osname, d.bootcsum, d.bootserial
                    ));
                    // Without an initramfs the kernel runs prepare-root
                    // from the deployment itself, as ostree arranges.
                    if p.layout.initramfs.is_none() {
                        k.replace(&format!(
                            "init=/ostree/boot.{bv}/{}/{}/{}/usr/lib/ostree/ostree-prepare-root",
                            d.osname, d.bootcsum, d.bootserial
                        ));
                    }
                    e.set("options", &k.to_cmdline());
                    let dir = format!("/ostree/{}-{}", d.osname, d.bootcsum);
                    e.set("linux", &format!("{dir}/{}", p.layout.kernel.dest));
                    if let Some(f) = &p.layout.initramfs {
                        e.set("initrd", &format!("{dir}/{}", f.dest));
                    }
                    if let Some(f) = &p.layout.devicetree {
                        e.set("devicetree", &format!("{dir}/{}", f.dest));
                    } else if p.layout.dtb.is_some() {
                        e.set("fdtdir", &format!("{dir}/dtb"));
                    }
                    (format!("ostree-{}-{}.conf", n - i, d.osname), e.to_text())
                })
                .collect()
        };
        let deployments: Vec<Deployment> = list.iter().map(|(d, _)| d.clone()).collect();
        let count_change = deployments.len() as i64 - self.deployments.len() as i64;

        // Same entries as now: flip only the subbootversion.
        let same = util::exists(self.dir(), "boot/loader") && {
            let mut cur = self.current_entry_files(old_bv)?;
            cur.sort();
            let mut want = entries_for(old_bv);
            want.sort();
            cur == want
        };
        let freeze = self
            .repo()
            .config()
            .get_bool("sysroot", "oxtree-freeze-boot", false)?;
        let ostree_dir = fsutil::open_dir_at(self.dir(), "ostree").ctx(|| "opening ostree/")?;
        if same {
            let new_sub = 1 - self.subbootversion.min(1);
            self.write_farm(ostree_dir.as_fd(), old_bv, new_sub, &deployments)?;
            self.write_refs(old_bv, new_sub, &deployments)?;
            self.sync_all(boot.as_fd(), freeze)?;
            util::symlink_replace(
                ostree_dir.as_fd(),
                &format!("boot.{old_bv}.{new_sub}"),
                &format!("boot.{old_bv}"),
            )?;
            fs::fsync(&ostree_dir).ctx(|| "syncing ostree/")?;
            util::remove_all(
                ostree_dir.as_fd(),
                &format!("boot.{old_bv}.{}", 1 - new_sub),
            )?;
            self.remove_stale_refs(old_bv, new_sub, deployments.len())?;
            self.bump_deploy_mtime()?;
            self.load()?;
            return Ok(WriteReport {
                bootconfig_swap: false,
                bootversion: old_bv,
                subbootversion: new_sub,
                count_change,
            });
        }

        let new_bv = 1 - old_bv.min(1);
        let cur_sub = util::read_link(ostree_dir.as_fd(), &format!("boot.{new_bv}"))
            .and_then(|l| {
                l.strip_prefix(&format!("boot.{new_bv}."))?
                    .parse::<u32>()
                    .ok()
            })
            .unwrap_or(0);
        let new_sub = if cur_sub == 0 { 1 } else { 0 };
        // Nothing references the other bootversion: rebuild it from scratch.
        util::remove_all(ostree_dir.as_fd(), &format!("boot.{new_bv}"))?;
        util::remove_all(ostree_dir.as_fd(), &format!("boot.{new_bv}.{new_sub}"))?;
        self.write_farm(ostree_dir.as_fd(), new_bv, new_sub, &deployments)?;
        util::symlink_replace(
            ostree_dir.as_fd(),
            &format!("boot.{new_bv}.{new_sub}"),
            &format!("boot.{new_bv}"),
        )?;
        let loader = format!("loader.{new_bv}");
        util::remove_all(boot.as_fd(), &loader)?;
        let entries = fsutil::mkdir_p_at(&boot, &format!("{loader}/entries"))
            .ctx(|| format!("creating boot/{loader}/entries"))?;
        for (name, text) in entries_for(new_bv) {
            util::write_file(entries.as_fd(), &name, text.as_bytes())?;
        }
        fs::fsync(&entries).ctx(|| "syncing entries")?;
        // Boot counting applies to a default that has not booted yet: not
        // the booted deployment (a rollback to it, a cleanup), nor, on a
        // sysroot that is not booted, the default it already had.
        let untried_default = match (deployments.first(), self.booted_index()) {
            (None, _) => false,
            (Some(d), Some(b)) => !self.deployments.get(b).is_some_and(|b| b.same(d)),
            (Some(d), None) => !self.deployments.first().is_some_and(|o| o.same(d)),
        };
        bootloader.write_config(
            boot.as_fd(),
            crate::bootloader::NewConfig {
                bootversion: new_bv,
                untried_default,
                sysroot: self.dir(),
            },
        )?;
        self.write_refs(new_bv, new_sub, &deployments)?;
        if !util::exists(boot.as_fd(), "boot") {
            // Lets `/boot/ostree/...` resolve when /boot is its own filesystem.
            fs::symlinkat(".", &boot, "boot").ctx(|| "creating boot/boot")?;
        }
        self.sync_all(boot.as_fd(), freeze)?;

        // The switch: one atomic rename.
        util::symlink_replace(boot.as_fd(), &loader, "loader")?;
        fs::fsync(&boot).ctx(|| "syncing boot")?;

        // Only the old bootversion referenced these.
        util::remove_all(boot.as_fd(), &format!("loader.{old_bv}"))?;
        util::remove_all(ostree_dir.as_fd(), &format!("boot.{old_bv}"))?;
        for (n, _) in fsutil::list_dir(&ostree_dir).ctx(|| "listing ostree/")? {
            let stale_other = n.starts_with(&format!("boot.{old_bv}."));
            let stale_same = n.starts_with(&format!("boot.{new_bv}."))
                && n != format!("boot.{new_bv}.{new_sub}");
            if stale_other || stale_same {
                util::remove_all(ostree_dir.as_fd(), &n)?;
            }
        }
        self.remove_stale_refs(new_bv, new_sub, deployments.len())?;
        self.bump_deploy_mtime()?;
        self.load()?;
        Ok(WriteReport {
            bootconfig_swap: true,
            bootversion: new_bv,
            subbootversion: new_sub,
            count_change,
        })
    }

    /// Touch `ostree/deploy` after the deployment list changed, as ostree
    /// does: tools watching that mtime (status caches, GNOME Software,
    /// rpm-ostree's daemon) learn of the change without polling the list.
    pub(crate) fn bump_deploy_mtime(&self) -> Result<()> {
        let d = fsutil::open_dir_at(self.dir(), "ostree/deploy").ctx(|| "opening ostree/deploy")?;
        let now = fs::Timestamps {
            last_access: fs::Timespec {
                tv_sec: 0,
                tv_nsec: fs::UTIME_OMIT,
            },
            last_modification: fs::Timespec {
                tv_sec: 0,
                tv_nsec: fs::UTIME_NOW,
            },
        };
        fs::futimens(&d, &now).ctx(|| "setting the mtime of ostree/deploy")?;
        if self.repo().fsync_enabled()? {
            fs::fsync(&d).ctx(|| "syncing ostree/deploy")?;
        }
        Ok(())
    }

    fn current_entry_files(&self, bv: u32) -> Result<Vec<(String, String)>> {
        let Some(entries) = util::open_path(self.dir(), &format!("boot/loader.{bv}/entries"))
        else {
            return Ok(Vec::new());
        };
        let mut v = Vec::new();
        for (n, _) in fsutil::list_dir(&entries).ctx(|| "listing entries")? {
            let b = fsutil::read_at(&entries, &n).ctx(|| format!("reading {n}"))?;
            v.push((n, String::from_utf8_lossy(&b).into_owned()));
        }
        Ok(v)
    }

    fn write_farm(
        &self,
        ostree_dir: BorrowedFd<'_>,
        bv: u32,
        sub: u32,
        list: &[Deployment],
    ) -> Result<()> {
        let top = format!("boot.{bv}.{sub}");
        util::remove_all(ostree_dir, &top)?;
        for d in list {
            let rel = format!("{top}/{}/{}", d.osname, d.bootcsum);
            let dir = fsutil::mkdir_p_at(ostree_dir, &rel).ctx(|| format!("creating {rel}"))?;
            fs::symlinkat(
                format!("../../../deploy/{}/deploy/{}", d.osname, d.name()),
                &dir,
                d.bootserial.to_string(),
            )
            .ctx(|| format!("creating {rel}/{}", d.bootserial))?;
            fs::fsync(&dir).ctx(|| "syncing boot farm")?;
        }
        Ok(())
    }

    fn write_refs(&self, bv: u32, sub: u32, list: &[Deployment]) -> Result<()> {
        // An empty repository transaction first, as ostree sets these refs
        // in one: it reclaims what dead writers left in the repository's
        // tmp/ at each deployment change, and it is where ostree's fault
        // injection (`OSTREE_REPO_TEST_ERROR=pre-commit`) fails a deploy
        // before anything is switched.
        self.repo().begin()?.commit()?;
        for (i, d) in list.iter().enumerate() {
            let c = Checksum::from_hex(&d.csum).map_err(|e| {
                SysrootError::Invalid(format!("deployment {}: bad checksum: {e}", d.name()))
            })?;
            self.repo()
                .write_ref(&format!("ostree/{bv}/{sub}/{i}"), Some(&c), true)?;
        }
        Ok(())
    }

    /// Drop `ostree/B/S/I` refs of other boot versions (and extra indexes).
    pub(crate) fn remove_stale_refs(&self, bv: u32, sub: u32, n: usize) -> Result<()> {
        let keep = format!("ostree/{bv}/{sub}/");
        for (name, _) in self.repo().list_refs()? {
            let Some(rest) = name.strip_prefix("ostree/") else {
                continue;
            };
            let ours =
                rest.split('/').count() == 3 && rest.split('/').all(|p| p.parse::<u32>().is_ok());
            if !ours {
                continue;
            }
            let stale = match name.strip_prefix(&keep) {
                Some(i) => i.parse::<usize>().map(|i| i >= n).unwrap_or(true),
                None => true,
            };
            if stale {
                self.repo().write_ref(&name, None, false)?;
            }
        }
        // Empty ref directories of other versions.
        if let Some(heads) = util::open_path(self.repo().dir(), "refs/heads/ostree") {
            for (b, _) in fsutil::list_dir(&heads).ctx(|| "listing refs")? {
                if b != bv.to_string() && b.parse::<u32>().is_ok() {
                    util::remove_all(heads.as_fd(), &b)?;
                } else if let Some(bd) = util::open_path(heads.as_fd(), &b) {
                    for (s, _) in fsutil::list_dir(&bd).ctx(|| "listing refs")? {
                        if s != sub.to_string() && s.parse::<u32>().is_ok() {
                            util::remove_all(bd.as_fd(), &s)?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn sync_all(&self, boot: BorrowedFd<'_>, freeze: bool) -> Result<()> {
        fs::syncfs(self.dir()).ctx(|| "syncfs of the sysroot")?;
        fs::syncfs(boot).ctx(|| "syncfs of /boot")?;
        let test_watchdog = util::sysroot_debug("test-fifreeze");
        if freeze || test_watchdog {
            freeze_thaw(boot, test_watchdog)?;
        }
        Ok(())
    }
}

const FIFREEZE: rustix::ioctl::Opcode = rustix::ioctl::opcode::read_write::<i32>(b'X', 119);
const FITHAW: rustix::ioctl::Opcode = rustix::ioctl::opcode::read_write::<i32>(b'X', 120);

/// One FIFREEZE or FITHAW ioctl on `fd`.
fn freeze_ioctl<const OP: rustix::ioctl::Opcode>(fd: BorrowedFd<'_>) -> rustix::io::Result<()> {
    let mut v = 0i32;
    // SAFETY: both ioctls take an int, which is what is passed.
    #[allow(unsafe_code)]
    unsafe {
        rustix::ioctl::ioctl(fd, rustix::ioctl::Updater::<OP, i32>::new(&mut v))
    }
}

/// FIFREEZE then FITHAW (opt-in, see the module docs), guarded by a
/// watchdog process: a frozen /boot whose freezer died (kill -9 between
/// the two ioctls) would hang every writer of that filesystem, so a forked
/// child waits on a pipe and thaws /boot itself when the pipe closes
/// before it was told that all went well.
///
/// `test_watchdog` (`OSTREE_SYSROOT_DEBUG=test-fifreeze`, ostree's fault
/// injection) skips the freeze and closes the pipe at once, as if the
/// parent had died: the watchdog says so on stderr and thaws, and the
/// write fails before anything is switched.
fn freeze_thaw(boot: BorrowedFd<'_>, test_watchdog: bool) -> Result<()> {
    let (rd, wr) = rustix::pipe::pipe().ctx(|| "creating the freeze watchdog's pipe")?;
    // SAFETY: the child calls only async-signal-safe functions (read,
    // write, ioctl, _exit) on fds it inherited, so forking a process that
    // has other threads is sound.
    #[allow(unsafe_code)]
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error()).ctx(|| "forking the freeze watchdog");
    }
    if pid == 0 {
        drop(wr);
        let mut c = [0u8; 1];
        let told_ok = matches!(rustix::io::read(&rd, &mut c), Ok(1)) && c[0] == b'k';
        if !told_ok {
            if test_watchdog {
                let _ = rustix::io::write(rustix::stdio::stderr(), b"fifreeze watchdog was run\n");
            }
            let _ = freeze_ioctl::<FITHAW>(boot);
        }
        // SAFETY: _exit skips the parent's atexit handlers and destructors,
        // as a forked child must.
        #[allow(unsafe_code)]
        unsafe {
            libc::_exit(0)
        }
    }
    drop(rd);
    let wait = |pid: libc::pid_t| {
        let mut status = 0;
        // SAFETY: waits for the child forked above; status is an int.
        #[allow(unsafe_code)]
        unsafe {
            libc::waitpid(pid, &mut status, 0)
        };
    };
    if test_watchdog {
        drop(wr);
        wait(pid);
        return Err(SysrootError::Freeze("aborting due to test-fifreeze".into()));
    }
    let r = freeze_ioctl::<FIFREEZE>(boot)
        .ctx(|| "FIFREEZE of /boot")
        .and_then(|()| freeze_ioctl::<FITHAW>(boot).ctx(|| "FITHAW of /boot"));
    if r.is_ok() {
        let _ = rustix::io::write(&wr, b"k");
    }
    drop(wr);
    wait(pid);
    r
}

/// Put `src` (a deployment's kernel or initramfs) into /boot as `name`:
/// a hardlink when /boot is on the deployment's filesystem, as ostree
/// does (the file is a repository object, never changed in place), else
/// a copy; either appears by one rename.
fn copy_file(
    src_dir: BorrowedFd<'_>,
    src: &str,
    dst_dir: BorrowedFd<'_>,
    name: &str,
) -> Result<()> {
    let tmp = fsutil::temp_name(".oxtree-k-");
    if fs::linkat(src_dir, src, dst_dir, tmp.as_str(), fs::AtFlags::empty()).is_ok() {
        let r = fs::renameat(dst_dir, tmp.as_str(), dst_dir, name);
        if r.is_err() {
            let _ = fs::unlinkat(dst_dir, tmp.as_str(), fs::AtFlags::empty());
        }
        return r.ctx(|| format!("linking {src} into /boot ({name})"));
    }
    let sfd = fs::openat(
        src_dir,
        src,
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("opening {src}"))?;
    let dfd = fs::openat(
        dst_dir,
        tmp.as_str(),
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )
    .ctx(|| format!("creating {name}"))?;
    let mut s = std::fs::File::from(sfd);
    let mut d = std::fs::File::from(dfd);
    let r = std::io::copy(&mut s, &mut d).and_then(|_| d.sync_all());
    let r = r.and_then(|_| Ok(fs::renameat(dst_dir, tmp.as_str(), dst_dir, name)?));
    if let Err(e) = r {
        let _ = fs::unlinkat(dst_dir, tmp.as_str(), fs::AtFlags::empty());
        return Err(e).ctx(|| format!("copying {src} to /boot ({name})"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::test_fixture::{commit, os_opts, sysroot};
    use crate::DeployOptions;
    use std::path::Path;

    /// (linux, initrd, ostree=) of every BLS entry under `boot`.
    fn entries(boot: &Path) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(boot.join("loader/entries")).unwrap() {
            let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
            let field = |k: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(&format!("{k} ")))
                    .unwrap_or_default()
                    .to_string()
            };
            let ostree = field("options")
                .split_whitespace()
                .find_map(|a| a.strip_prefix("ostree="))
                .unwrap_or_default()
                .to_string();
            out.push((field("linux"), field("initrd"), ostree));
        }
        out.sort();
        out
    }

    #[test]
    fn each_deploy_writes_entries_whose_files_exist_and_swaps_the_boot_version() {
        let (d, mut s) = sysroot();
        let opts = DeployOptions {
            osname: Some("os".into()),
            karg_replace: vec!["console=ttyS0".into()],
            ..Default::default()
        };
        commit(&s, "1", &[]);
        let r1 = s.deploy("os/main", &opts).unwrap();
        let v1 = r1.write.bootversion;
        commit(&s, "2", &[("usr/share/two", "2\n")]);
        let r2 = s.deploy("os/main", &opts).unwrap();
        assert_ne!(r2.write.bootversion, v1, "the boot version swaps");
        let boot = d.path().join("boot");
        let es = entries(&boot);
        assert_eq!(es.len(), 2, "{es:?}");
        for (linux, initrd, ostree) in &es {
            assert!(
                boot.join(linux.trim_start_matches('/')).is_file(),
                "{linux}"
            );
            assert!(
                boot.join(initrd.trim_start_matches('/')).is_file(),
                "{initrd}"
            );
            let dep = d.path().join(ostree.trim_start_matches('/'));
            assert!(dep.join("usr/bin/tool").is_file(), "{ostree}");
        }
        // `boot/loader` is the symlink to the live `loader.N`.
        let link = std::fs::read_link(boot.join("loader")).unwrap();
        assert_eq!(
            link.to_str().unwrap(),
            format!("loader.{}", r2.write.bootversion)
        );
        let text = std::fs::read_dir(boot.join("loader/entries"))
            .unwrap()
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
            .collect::<String>();
        assert_eq!(text.matches("console=ttyS0").count(), 2, "{text}");
    }

    /// The `ostree/B/S/I` refs, sorted: (name, commit).
    fn deploy_refs(s: &crate::Sysroot) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = s
            .repo()
            .list_refs()
            .unwrap()
            .into_iter()
            .filter(|(n, _)| n.starts_with("ostree/"))
            .map(|(n, c)| (n, c.to_hex()))
            .collect();
        v.sort();
        v
    }

    /// Entry files are named and titled as ostree's: the default is
    /// `ostree-N-OS.conf` with the highest version, titles carry the OS
    /// name and the commit's version and, with two stateroots, the
    /// stateroot.
    #[test]
    fn entries_are_named_titled_and_ordered_as_ostree_does() {
        let (d, mut s) = sysroot();
        commit(
            &s,
            "1",
            &[("usr/lib/os-release", "PRETTY_NAME=\"Fixture OS\"\n")],
        );
        s.deploy("os/main", &os_opts()).unwrap();
        commit(
            &s,
            "2",
            &[("usr/lib/os-release", "PRETTY_NAME=\"Fixture OS\"\n")],
        );
        s.deploy("os/main", &os_opts()).unwrap();
        let dir = d.path().join("boot/loader/entries");
        let read =
            |n: &str| crate::bls::BlsEntry::parse(&std::fs::read_to_string(dir.join(n)).unwrap());
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["ostree-1-os.conf", "ostree-2-os.conf"]);
        let (new, old) = (read("ostree-2-os.conf"), read("ostree-1-os.conf"));
        assert_eq!(new.get("title"), Some("Fixture OS 2 (ostree:0)"));
        assert_eq!(new.get("version"), Some("2"));
        assert_eq!(old.get("title"), Some("Fixture OS 1 (ostree:1)"));
        assert_eq!(old.get("version"), Some("1"));
        // A second stateroot: titles name it.
        s.init_stateroot("other").unwrap();
        s.deploy(
            "os/main",
            &DeployOptions {
                osname: Some("other".into()),
                ..Default::default()
            },
        )
        .unwrap();
        let e = read("ostree-3-other.conf");
        assert_eq!(e.get("title"), Some("Fixture OS 2 (ostree:other:0)"));
    }

    /// Rewriting the same list (same entries) swaps only the
    /// subbootversion: `ostree/boot.N` points at the new farm, the refs
    /// move to it, `boot/loader` stays; a changed list swaps the
    /// bootversion and drops the refs of removed deployments.
    #[test]
    fn the_same_entries_swap_only_the_subbootversion() {
        let (d, mut s) = sysroot();
        let c1 = commit(&s, "1", &[]);
        s.deploy("os/main", &os_opts()).unwrap();
        let c2 = commit(&s, "2", &[("usr/share/two", "2\n")]);
        s.deploy("os/main", &os_opts()).unwrap();
        let (bv, sub) = (s.bootversion(), s.subbootversion());
        let loader = std::fs::read_link(d.path().join("boot/loader")).unwrap();
        assert_eq!(
            deploy_refs(&s),
            [
                (format!("ostree/{bv}/{sub}/0"), c2.to_hex()),
                (format!("ostree/{bv}/{sub}/1"), c1.to_hex()),
            ]
        );
        let w = s.write_deployments(s.deployments().to_vec()).unwrap();
        assert!(!w.bootconfig_swap);
        assert_eq!((w.bootversion, w.subbootversion), (bv, 1 - sub));
        assert_eq!(
            std::fs::read_link(d.path().join("boot/loader")).unwrap(),
            loader
        );
        assert_eq!(
            std::fs::read_link(d.path().join(format!("ostree/boot.{bv}")))
                .unwrap()
                .to_str()
                .unwrap(),
            format!("boot.{bv}.{}", 1 - sub)
        );
        assert!(!d.path().join(format!("ostree/boot.{bv}.{sub}")).exists());
        assert_eq!(
            deploy_refs(&s),
            [
                (format!("ostree/{bv}/{}/0", 1 - sub), c2.to_hex()),
                (format!("ostree/{bv}/{}/1", 1 - sub), c1.to_hex()),
            ]
        );
        // The farm's links lead to the deployments.
        for dep in s.deployments() {
            let link = d.path().join(format!(
                "ostree/boot.{bv}/os/{}/{}",
                dep.bootcsum, dep.bootserial
            ));
            assert!(link.join("usr/bin/tool").is_file(), "{}", link.display());
        }
        // One deployment less: a new bootversion, one ref.
        let w = s.write_deployments(s.deployments()[..1].to_vec()).unwrap();
        assert!(w.bootconfig_swap);
        assert_eq!(w.count_change, -1);
        assert_ne!(w.bootversion, bv);
        assert_eq!(
            deploy_refs(&s),
            [(
                format!("ostree/{}/{}/0", w.bootversion, w.subbootversion),
                c2.to_hex()
            )]
        );
        assert!(!d.path().join(format!("boot/loader.{bv}")).exists());
    }
}

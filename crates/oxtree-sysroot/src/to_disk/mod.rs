//! `to-disk`: turn a commit into a bootable disk, as `bootc install
//! to-disk` does: a GPT table ([`gpt`]), an ext4 root holding the sysroot
//! (the commit pulled into `ostree/repo` and deployed with
//! `root=UUID=…`), and GRUB for BIOS and UEFI ([`grub_install`]) with the
//! `grub-static` backend, whose boot counting gives automatic rollback.
//!
//! No chroot, no grub-mkconfig, no bind-mounted /dev: the root filesystem
//! is made and mounted by byte offset through a loop device, inside a
//! private mount namespace of this process, so a killed run leaves no
//! mount behind. An image file is built under a temporary name and only
//! renamed to TARGET when complete (a `.qcow2` TARGET is converted from
//! the finished raw image by `qemu-img convert`, which copies only the
//! allocated data): a failed run leaves TARGET as it was.

pub mod gpt;
pub mod grub_install;

use crate::error::{IoContext, Result, SysrootError};
use crate::{DeployOptions, Deployment, KeyFile, Sysroot};
use gpt::{Firmware, Layout};
use oxtree_repo::Repo;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A remote to record in the new system's repository, for upgrades.
#[derive(Clone, Debug)]
pub struct RemoteSpec {
    pub name: String,
    pub url: String,
}

#[derive(Clone, Debug)]
pub struct ToDiskOptions {
    /// The repository holding the commit.
    pub source_repo: PathBuf,
    /// The ref (or checksum) to install.
    pub refname: String,
    /// The stateroot.
    pub osname: String,
    /// Extra kernel arguments (`--karg`), after `root=UUID=…` and the
    /// image's own.
    pub kargs: Vec<String>,
    /// Size of an image file, in bytes.
    pub size: u64,
    pub firmware: Firmware,
    /// Record this remote, and make the origin `REMOTE:REF`.
    pub remote: Option<RemoteSpec>,
    /// Root's `authorized_keys` (in the stateroot's `/var/roothome`).
    pub root_ssh_authorized_keys: Option<PathBuf>,
    /// `[sysroot] boot-counting-tries` (default 3).
    pub boot_tries: Option<u32>,
}

#[derive(Clone, Debug)]
pub struct ToDiskReport {
    pub root_uuid: String,
    pub layout: Layout,
    pub deployment: Deployment,
    pub qcow2: bool,
}

/// A file removed on drop unless kept.
struct TempFile(Option<PathBuf>);

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Run a tool; its stderr becomes the error.
fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let out = cmd.output().ctx(|| format!("running {what}"))?;
    if !out.status.success() {
        return Err(SysrootError::Invalid(format!(
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

fn new_uuid() -> Result<String> {
    Ok(std::fs::read_to_string("/proc/sys/kernel/random/uuid")
        .ctx(|| "reading a random UUID")?
        .trim()
        .to_string())
}

/// Move this process into a mount namespace of its own, so its mounts
/// vanish with it whatever happens.
fn private_mounts() -> Result<()> {
    use rustix::mount::{mount_change, MountPropagationFlags};
    // SAFETY: CLONE_NEWNS changes only this process's view of mounts; no
    // other thread relies on the old one (to-disk runs it before starting
    // any work).
    #[allow(unsafe_code)]
    unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNS) }
        .ctx(|| "unshare(CLONE_NEWNS)")?;
    mount_change(
        "/",
        MountPropagationFlags::REC | MountPropagationFlags::PRIVATE,
    )
    .ctx(|| "making / private in the new mount namespace")
}

/// Unmounts on drop.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.0, rustix::mount::UnmountFlags::empty());
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Make `target` a bootable disk of `o.refname` (see the module docs).
pub fn to_disk(
    target: &Path,
    o: &ToDiskOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<ToDiskReport> {
    crate::validate_osname(&o.osname)?;
    if !o.firmware.bios && !o.firmware.uefi {
        return Err(SysrootError::Refused(
            "no firmware to boot with: choose BIOS, UEFI or both".into(),
        ));
    }
    let src = Repo::open(&o.source_repo)?;
    let commit = src.resolve_rev(&o.refname)?;
    if let Some(k) = &o.root_ssh_authorized_keys {
        std::fs::metadata(k).ctx(|| format!("reading {}", k.display()))?;
    }

    let block = std::fs::metadata(target).is_ok_and(|m| m.file_type().is_block_device());
    let qcow2 = !block && target.extension().is_some_and(|e| e == "qcow2");
    let dir = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let leaf = target
        .file_name()
        .ok_or_else(|| SysrootError::Invalid(format!("{}: not a file name", target.display())))?
        .to_string_lossy()
        .into_owned();
    let mut raw_tmp = TempFile(None);
    let (disk_path, size) = if block {
        let f = std::fs::File::open(target).ctx(|| format!("opening {}", target.display()))?;
        let size = rustix::fs::seek(&f, rustix::fs::SeekFrom::End(0))
            .ctx(|| format!("sizing {}", target.display()))?;
        (target.to_path_buf(), size)
    } else {
        let p = dir.join(format!(".{leaf}.raw.tmp"));
        let _ = std::fs::remove_file(&p);
        let f = std::fs::File::create(&p).ctx(|| format!("creating {}", p.display()))?;
        raw_tmp.0 = Some(p.clone());
        f.set_len(o.size)
            .ctx(|| format!("sizing {}", p.display()))?;
        (p, o.size)
    };

    let layout = gpt::plan(size, o.firmware)?;
    progress("Writing the partition table");
    gpt::write_table(&disk_path, &layout)?;
    let uuid = new_uuid()?;
    progress("Making the root filesystem");
    run(
        Command::new("mkfs.ext4")
            .args(["-q", "-F", "-L", "root", "-U", &uuid])
            // GRUB 2.06 cannot read orphan_file (e2fsprogs 1.47's default).
            .args(["-O", "^orphan_file"])
            .arg("-E")
            .arg(format!("offset={}", layout.root.offset))
            .arg(&disk_path)
            .arg(format!("{}k", layout.root.size / 1024)),
        "mkfs.ext4",
    )?;

    private_mounts()?;
    let mnt = std::env::temp_dir().join(oxtree_repo::fsutil::temp_name("oxtree-to-disk-"));
    std::fs::create_dir(&mnt).ctx(|| format!("creating {}", mnt.display()))?;
    run(
        Command::new("mount")
            .arg("-o")
            .arg(format!(
                "loop,offset={},sizelimit={}",
                layout.root.offset, layout.root.size
            ))
            .arg(&disk_path)
            .arg(&mnt),
        "mount",
    )?;
    let mounted = Mounted(mnt.clone());

    let deployment = fill_root(&mnt, &src, &commit, &uuid, o, progress)?;
    let deploy_dir = mnt.join(deployment.relpath());

    progress("Installing GRUB");
    let boot_grub = mnt.join("boot/grub");
    std::fs::create_dir_all(&boot_grub).ctx(|| "creating boot/grub")?;
    oxtree_repo::fsutil::write_atomic_at(
        &oxtree_repo::fsutil::open_dir(&boot_grub).ctx(|| "opening boot/grub")?,
        "grub.cfg",
        crate::bootloader::grub::static_config().as_bytes(),
        true,
    )
    .ctx(|| "writing boot/grub/grub.cfg")?;
    let work = tempdir_in(&std::env::temp_dir())?;
    let early = work.0.join("early.cfg");
    std::fs::write(&early, grub_install::early_config(&uuid)).ctx(|| "writing early.cfg")?;
    let mut bios_core = None;
    let mut efi_core = None;
    for (on, platform) in [
        (o.firmware.bios, "i386-pc"),
        (o.firmware.uefi, "x86_64-efi"),
    ] {
        if !on {
            continue;
        }
        let mods = grub_install::module_dir(&deploy_dir, platform).ok_or_else(|| {
            SysrootError::Invalid(format!(
                "no GRUB modules for {platform}: the image has no usr/lib/grub/{platform} and neither has this host (Debian: grub-pc-bin / grub-efi-amd64-bin)"
            ))
        })?;
        let out = work.0.join(format!("core-{platform}.img"));
        grub_install::mkimage(&mods, platform, &early, &out)?;
        grub_install::copy_modules(&mods, &boot_grub, platform)?;
        if platform == "i386-pc" {
            bios_core = Some((mods, out));
        } else {
            efi_core = Some(out);
        }
    }
    rustix::fs::syncfs(oxtree_repo::fsutil::open_dir(&mnt).ctx(|| "opening the root")?)
        .ctx(|| "syncing the root filesystem")?;
    drop(mounted);

    let disk = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&disk_path)
        .ctx(|| format!("opening {}", disk_path.display()))?;
    if let (Some((mods, core)), Some(part)) = (&bios_core, layout.bios_boot) {
        grub_install::install_bios(&disk, mods, core, part)?;
    }
    if let (Some(core), Some(part)) = (&efi_core, layout.esp) {
        grub_install::install_efi(&disk_path, core, part)?;
    }
    disk.sync_all().ctx(|| "syncing the disk")?;
    drop(disk);

    if !block {
        let final_tmp = if qcow2 {
            progress("Converting to qcow2");
            let q = dir.join(format!(".{leaf}.qcow2.tmp"));
            let _ = std::fs::remove_file(&q);
            let guard = TempFile(Some(q.clone()));
            run(
                Command::new("qemu-img")
                    .args(["convert", "-f", "raw", "-O", "qcow2"])
                    .arg(&disk_path)
                    .arg(&q),
                "qemu-img convert",
            )?;
            std::fs::File::open(&q)
                .and_then(|f| f.sync_all())
                .ctx(|| "syncing the qcow2 image")?;
            std::mem::forget(guard);
            q
        } else {
            raw_tmp.0.take().expect("raw temp")
        };
        std::fs::rename(&final_tmp, target)
            .ctx(|| format!("renaming the image to {}", target.display()))?;
    }
    Ok(ToDiskReport {
        root_uuid: uuid,
        layout,
        deployment,
        qcow2,
    })
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempdir_in(parent: &Path) -> Result<TempDir> {
    let p = parent.join(oxtree_repo::fsutil::temp_name("oxtree-grub-"));
    std::fs::create_dir(&p).ctx(|| format!("creating {}", p.display()))?;
    Ok(TempDir(p))
}

/// The sysroot on the mounted root filesystem: repo, commit, stateroot,
/// deployment, root's ssh keys.
fn fill_root(
    mnt: &Path,
    src: &Repo,
    commit: &oxtree_object::Checksum,
    uuid: &str,
    o: &ToDiskOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Deployment> {
    crate::init_fs(mnt, false)?;
    let mut s = Sysroot::open_locked(mnt)?;
    let mut cfg = s.repo().config().clone();
    // ostree itself may manage this sysroot too: it reads `bootloader`
    // and writes BLS entries; ours also writes the GRUB menu.
    cfg.set("sysroot", "bootloader", "none");
    cfg.set("sysroot", "oxtree-bootloader", "grub-static");
    if let Some(t) = o.boot_tries {
        cfg.set("sysroot", "boot-counting-tries", &t.to_string());
    }
    if let Some(r) = &o.remote {
        let section = format!("remote \"{}\"", r.name);
        cfg.set(&section, "url", &r.url);
        // The commit came from a repository given on the command line;
        // signatures are the remote's business once one is configured.
        cfg.set(&section, "gpg-verify", "false");
    }
    s.repo_mut().write_config(cfg)?;

    progress(&format!("Copying commit {commit} into ostree/repo"));
    let report = |done: u64, total: u64| {
        if total > 0 && (done == total || done.is_multiple_of(2000)) {
            progress(&format!("Copying objects: {done}/{total}"));
        }
    };
    s.repo().pull_local(src, &[*commit], 0, None, &report)?;
    let branch = if oxtree_object::Checksum::from_hex(&o.refname).is_ok() {
        None
    } else {
        Some(
            o.refname
                .split_once(':')
                .map_or(o.refname.as_str(), |(_, r)| r),
        )
    };
    let refspec = match (&o.remote, branch) {
        (Some(r), Some(b)) => Some(format!("{}:{b}", r.name)),
        (None, Some(b)) => Some(b.to_string()),
        (_, None) => None,
    };
    if let Some(rs) = &refspec {
        s.repo().write_ref(rs, Some(commit), true)?;
    }

    s.init_stateroot(&o.osname)?;
    let mut origin = KeyFile::new();
    origin.set(
        "origin",
        "refspec",
        refspec.as_deref().unwrap_or(&commit.to_hex()),
    );
    let mut kargs = vec![format!("root=UUID={uuid}")];
    kargs.extend(o.kargs.iter().cloned());
    progress("Deploying");
    let r = s.deploy(
        &commit.to_hex(),
        &DeployOptions {
            osname: Some(o.osname.clone()),
            karg_replace: kargs,
            origin: Some(origin),
            ..DeployOptions::default()
        },
    )?;
    if let Some(k) = &o.root_ssh_authorized_keys {
        let ssh = mnt.join(format!("ostree/deploy/{}/var/roothome/.ssh", o.osname));
        std::fs::create_dir_all(&ssh).ctx(|| format!("creating {}", ssh.display()))?;
        use std::os::unix::fs::PermissionsExt;
        for d in [ssh.parent().expect("roothome"), ssh.as_path()] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700))
                .ctx(|| format!("chmod {}", d.display()))?;
        }
        let ak = ssh.join("authorized_keys");
        std::fs::copy(k, &ak).ctx(|| format!("copying {}", k.display()))?;
        std::fs::set_permissions(&ak, std::fs::Permissions::from_mode(0o600))
            .ctx(|| format!("chmod {}", ak.display()))?;
    }
    Ok(r.deployment)
}

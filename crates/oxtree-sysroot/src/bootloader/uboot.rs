//! The U-Boot backend: `boot/loader.N/uEnv.txt`, read by U-Boot through
//! the `boot/uEnv.txt -> loader/uEnv.txt` symlink the image provides, so
//! that it switches with `boot/loader`. For each BLS entry, default first:
//! `kernel_imageN=`, `ramdisk_imageN=`, `fdt_fileN=` or `fdtdirN=` and
//! `bootargsN=` (N empty for the default, then 2, 3, …), paths under
//! `/boot`, as ostree writes them; the default deployment's own
//! `usr/lib/ostree-boot/uEnv.txt`, if it has one, is appended.

use super::{Bootloader, NewConfig};
use crate::error::{IoContext, Result, SysrootError};
use crate::util;
use oxtree_repo::fsutil;
use rustix::fd::{AsFd, BorrowedFd};
use rustix::fs;
use std::io::Read;

/// Largest deployment uEnv.txt merged in.
const MAX_SYSTEM_UENV: u64 = 1 << 20;

#[derive(Debug)]
pub struct Uboot;

impl Bootloader for Uboot {
    fn name(&self) -> &'static str {
        "uboot"
    }

    fn write_config(&self, boot: BorrowedFd<'_>, c: NewConfig) -> Result<()> {
        let entries = super::grub::read_entries(boot, c.bootversion)?;
        let mut lines: Vec<String> = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let n = if i == 0 {
                String::new()
            } else {
                (i + 1).to_string()
            };
            let linux = e.get("linux").ok_or_else(|| SysrootError::BadEntry {
                file: format!("loader.{}/entries", c.bootversion),
                reason: "no \"linux\" key".into(),
            })?;
            lines.push(format!("kernel_image{n}=/boot{linux}"));
            for (key, var) in [
                ("initrd", "ramdisk_image"),
                ("devicetree", "fdt_file"),
                ("fdtdir", "fdtdir"),
            ] {
                if let Some(v) = e.get(key) {
                    lines.push(format!("{var}{n}=/boot{v}"));
                }
            }
            if let Some(opts) = e.get("options") {
                lines.push(format!("bootargs{n}={opts}"));
                if i == 0 {
                    if let Some(extra) = system_uenv(c.sysroot, e.ostree_arg())? {
                        lines.push(extra);
                    }
                }
            }
        }
        let mut text = lines.join("\n");
        text.push('\n');
        let dir = fsutil::open_dir_at(boot, &format!("loader.{}", c.bootversion))
            .ctx(|| format!("opening boot/loader.{}", c.bootversion))?;
        util::write_file(dir.as_fd(), "uEnv.txt", text.as_bytes())?;
        rustix::fs::fsync(&dir).ctx(|| "syncing the loader directory")
    }
}

/// The default deployment's `usr/lib/ostree-boot/uEnv.txt`, found through
/// its `ostree=` argument (the boot symlink farm, already written).
fn system_uenv(sysroot: BorrowedFd<'_>, ostree_arg: Option<&str>) -> Result<Option<String>> {
    let arg = ostree_arg.ok_or_else(|| {
        SysrootError::Invalid(
            "No ostree= kernel argument found in boot loader configuration file".into(),
        )
    })?;
    // The farm's links are relative and stay inside the sysroot: follow
    // them, but never out of it.
    let rel = format!(
        "{}/usr/lib/ostree-boot/uEnv.txt",
        arg.trim_start_matches('/')
    );
    let fd = match fs::openat2(
        sysroot,
        rel.as_str(),
        fs::OFlags::RDONLY | fs::OFlags::CLOEXEC,
        fs::Mode::empty(),
        fs::ResolveFlags::BENEATH,
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(e) => return Err(e).ctx(|| format!("opening {rel}")),
    };
    let mut b = Vec::new();
    std::fs::File::from(fd)
        .take(MAX_SYSTEM_UENV + 1)
        .read_to_end(&mut b)
        .ctx(|| format!("reading {rel}"))?;
    if b.len() as u64 > MAX_SYSTEM_UENV {
        return Err(SysrootError::Invalid(format!(
            "{rel} is larger than {MAX_SYSTEM_UENV} bytes"
        )));
    }
    Ok(Some(String::from_utf8_lossy(&b).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two entries in, the default's lines unnumbered, the second's with 2.
    #[test]
    fn writes_numbered_variables() {
        let t = tempfile::tempdir().unwrap();
        let boot = t.path().join("boot");
        let entries = boot.join("loader.1/entries");
        std::fs::create_dir_all(&entries).unwrap();
        std::fs::write(
            entries.join("ostree-2-os.conf"),
            "title a\nversion 2\nlinux /ostree/os-a/vmlinuz\ninitrd /ostree/os-a/initramfs.img\noptions root=x ostree=/ostree/boot.1/os/a/0\n",
        )
        .unwrap();
        std::fs::write(
            entries.join("ostree-1-os.conf"),
            "title b\nversion 1\nlinux /ostree/os-b/vmlinuz\nfdtdir /ostree/os-b/dtb\noptions root=y ostree=/ostree/boot.1/os/b/0\n",
        )
        .unwrap();
        let farm = t.path().join("ostree/boot.1/os/a/0/usr/lib/ostree-boot");
        std::fs::create_dir_all(&farm).unwrap();
        std::fs::write(farm.join("uEnv.txt"), "loadfdt=x\n").unwrap();
        let b = fsutil::open_dir(&boot).unwrap();
        let s = fsutil::open_dir(t.path()).unwrap();
        Uboot
            .write_config(
                b.as_fd(),
                NewConfig {
                    bootversion: 1,
                    untried_default: false,
                    sysroot: s.as_fd(),
                },
            )
            .unwrap();
        let text = std::fs::read_to_string(boot.join("loader.1/uEnv.txt")).unwrap();
        assert_eq!(
            text,
            "kernel_image=/boot/ostree/os-a/vmlinuz\nramdisk_image=/boot/ostree/os-a/initramfs.img\n\
             bootargs=root=x ostree=/ostree/boot.1/os/a/0\nloadfdt=x\n\n\
             kernel_image2=/boot/ostree/os-b/vmlinuz\nfdtdir2=/boot/ostree/os-b/dtb\nbootargs2=root=y ostree=/ostree/boot.1/os/b/0\n"
        );
    }
}

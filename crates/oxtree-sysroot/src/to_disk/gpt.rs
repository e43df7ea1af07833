//! The partition table of a disk made by `to-disk`.
//!
//! Layout, and why:
//! - **BIOS boot** (1 MiB): GRUB's core image for SeaBIOS/legacy boot. GPT
//!   has no gap after the MBR for it, so it gets a partition of its own.
//! - **ESP** (127 MiB, FAT, as Fedora CoreOS): GRUB's EFI image at the
//!   removable-media path `EFI/BOOT/BOOTX64.EFI`, so OVMF (and any UEFI
//!   firmware) boots it with no NVRAM entry.
//! - **root** (the rest, ext4): the physical sysroot, `/boot` included. A
//!   separate /boot buys nothing here: GRUB reads ext4, the kernels live in
//!   `boot/ostree/`, and the boot configuration's atomic swap (the
//!   `boot/loader` symlink) needs /boot on a filesystem with symlinks and
//!   rename, which the root is. Both firmware paths share the same GRUB
//!   configuration in `/boot/grub`.
//!
//! The table is written by `sfdisk` (util-linux), which every Linux host
//! has; the partitions are then addressed by byte offset, so no partition
//! device nodes (udev, a bind-mounted /dev) are needed.

use crate::error::{IoContext, Result, SysrootError};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

pub const BIOS_BOOT: &str = "21686148-6449-6E6F-744E-656564454649";
pub const ESP: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
pub const LINUX: &str = "0FC63DAF-8483-4772-8E79-3D69D8477DE4";
pub const SECTOR: u64 = 512;
pub const MIB: u64 = 1024 * 1024;

/// One partition, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    pub offset: u64,
    pub size: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub bios_boot: Option<Extent>,
    pub esp: Option<Extent>,
    pub root: Extent,
}

/// What firmware the disk should boot with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Firmware {
    pub bios: bool,
    pub uefi: bool,
}

/// Plan the partitions of a disk of `size` bytes (1 MiB aligned; the last
/// MiB is left for the backup GPT).
pub fn plan(size: u64, fw: Firmware) -> Result<Layout> {
    let mut at = MIB;
    let bios_boot = fw.bios.then(|| {
        let e = Extent {
            offset: at,
            size: MIB,
        };
        at += MIB;
        e
    });
    let esp = fw.uefi.then(|| {
        let e = Extent {
            offset: at,
            size: 127 * MIB,
        };
        at += 127 * MIB;
        e
    });
    let end = (size / MIB).saturating_sub(1) * MIB;
    if end < at + 512 * MIB {
        return Err(SysrootError::Refused(format!(
            "a disk of {} MiB is too small: at least {} MiB are needed",
            size / MIB,
            (at + 513 * MIB) / MIB
        )));
    }
    Ok(Layout {
        bios_boot,
        esp,
        root: Extent {
            offset: at,
            size: end - at,
        },
    })
}

/// The sfdisk script for `l`.
pub fn sfdisk_script(l: &Layout) -> String {
    let mut s = String::from("label: gpt\n");
    let mut line = |e: &Extent, ty: &str, name: &str| {
        s.push_str(&format!(
            "start={}, size={}, type={ty}, name=\"{name}\"\n",
            e.offset / SECTOR,
            e.size / SECTOR
        ));
    };
    if let Some(e) = &l.bios_boot {
        line(e, BIOS_BOOT, "BIOS-BOOT");
    }
    if let Some(e) = &l.esp {
        line(e, ESP, "EFI-SYSTEM");
    }
    line(&l.root, LINUX, "root");
    s
}

/// Write the table onto `target` (an image file or a block device).
pub fn write_table(target: &Path, l: &Layout) -> Result<()> {
    let mut child = Command::new("sfdisk")
        .args([
            "--quiet",
            "--wipe=always",
            "--no-reread",
            "--no-tell-kernel",
        ])
        .arg(target)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .ctx(|| "running sfdisk (util-linux)")?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(sfdisk_script(l).as_bytes())
        .ctx(|| "writing to sfdisk")?;
    let out = child.wait_with_output().ctx(|| "waiting for sfdisk")?;
    if !out.status.success() {
        return Err(SysrootError::Invalid(format!(
            "sfdisk failed on {}: {}",
            target.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_both_firmwares() {
        let l = plan(
            4096 * MIB,
            Firmware {
                bios: true,
                uefi: true,
            },
        )
        .unwrap();
        assert_eq!(
            l.bios_boot,
            Some(Extent {
                offset: MIB,
                size: MIB
            })
        );
        assert_eq!(
            l.esp,
            Some(Extent {
                offset: 2 * MIB,
                size: 127 * MIB
            })
        );
        assert_eq!(
            l.root,
            Extent {
                offset: 129 * MIB,
                size: (4095 - 129) * MIB
            }
        );
        assert!(sfdisk_script(&l).contains("start=264192, size="));
        assert!(plan(
            300 * MIB,
            Firmware {
                bios: true,
                uefi: true
            }
        )
        .is_err());
        let l = plan(
            2048 * MIB,
            Firmware {
                bios: true,
                uefi: false,
            },
        )
        .unwrap();
        assert_eq!(l.esp, None);
        assert_eq!(l.root.offset, 2 * MIB);
    }
}

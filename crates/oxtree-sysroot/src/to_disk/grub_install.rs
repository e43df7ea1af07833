//! Installing GRUB without grub-install: `grub-mkimage` builds the core
//! images, and this module puts them where the firmware looks.
//!
//! grub-install probes the running system's devices to find the disk
//! behind /boot, which needs partition device nodes and a /dev that knows
//! the target; an image file has neither. The core images here carry a
//! small embedded config that finds the root filesystem by UUID instead,
//! so nothing needs probing:
//! - BIOS: `boot.img` goes into the MBR's code area (the protective MBR's
//!   partition table and disk signature are kept) and the i386-pc core
//!   image into the BIOS boot partition. Two numbers are patched, as
//!   grub-bios-setup does: the LBA of the core image in boot.img
//!   (offset 0x5c), and, in the blocklist at the end of the core image's
//!   first sector (diskboot), where the rest of it starts and how long it
//!   is.
//! - UEFI: the x86_64-efi image is copied to `EFI/BOOT/BOOTX64.EFI` on
//!   the ESP with mtools, addressing the partition by offset.
//!
//! Both read `/boot/grub/grub.cfg` from the root filesystem (see
//! `bootloader::grub`). The GRUB modules are taken from the deployment
//! (`usr/lib/grub/PLATFORM`) when the image ships them, else from the
//! host running to-disk; they are also copied to `/boot/grub/PLATFORM` so
//! the configuration can `insmod` more.

use super::gpt::{Extent, SECTOR};
use super::run;
use crate::error::{IoContext, Result, SysrootError};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const MODULES: &[&str] = &[
    "part_gpt",
    "ext2",
    "fat",
    "search",
    "search_fs_uuid",
    "normal",
    "linux",
    "echo",
    "test",
    "loadenv",
    "serial",
    "terminal",
    "configfile",
    "gzio",
    "boot",
    "ls",
    "cat",
    "halt",
    "reboot",
    "sleep",
];

/// The module directory for `platform`: the deployment's, else the host's.
pub fn module_dir(deployment: &Path, platform: &str) -> Option<PathBuf> {
    [
        deployment.join("usr/lib/grub").join(platform),
        Path::new("/usr/lib/grub").join(platform),
    ]
    .into_iter()
    .find(|d| d.join("kernel.img").exists() || d.join("kernel.efi").exists())
}

/// The embedded config of a core image: find the root by UUID.
pub fn early_config(root_uuid: &str) -> String {
    format!("search --no-floppy --fs-uuid --set=root {root_uuid}\nset prefix=($root)/boot/grub\n")
}

/// Build a core image for `platform` into `out`.
pub fn mkimage(dir: &Path, platform: &str, early_cfg: &Path, out: &Path) -> Result<()> {
    let mut mods: Vec<&str> = MODULES.to_vec();
    if platform == "i386-pc" {
        mods.push("biosdisk");
    }
    run(
        Command::new("grub-mkimage")
            .arg("-O")
            .arg(platform)
            .arg("-d")
            .arg(dir)
            .arg("-c")
            .arg(early_cfg)
            .arg("-p")
            .arg("/boot/grub")
            .arg("-o")
            .arg(out)
            .args(&mods),
        "grub-mkimage",
    )
}

/// Copy the modules of `platform` to `boot_grub/platform`.
pub fn copy_modules(dir: &Path, boot_grub: &Path, platform: &str) -> Result<()> {
    let dest = boot_grub.join(platform);
    std::fs::create_dir_all(&dest).ctx(|| format!("creating {}", dest.display()))?;
    for e in std::fs::read_dir(dir).ctx(|| format!("listing {}", dir.display()))? {
        let e = e.ctx(|| format!("listing {}", dir.display()))?;
        let name = e.file_name();
        let n = name.to_string_lossy();
        if n.ends_with(".mod") || n.ends_with(".lst") {
            std::fs::copy(e.path(), dest.join(&name))
                .ctx(|| format!("copying {}", e.path().display()))?;
        }
    }
    Ok(())
}

/// Put boot.img into the MBR and the core image into the BIOS boot
/// partition `part` of `disk`.
pub fn install_bios(
    disk: &std::fs::File,
    dir: &Path,
    core_path: &Path,
    part: Extent,
) -> Result<()> {
    let boot_img = std::fs::read(dir.join("boot.img")).ctx(|| "reading GRUB's boot.img")?;
    let mut core = std::fs::read(core_path).ctx(|| "reading the core image")?;
    if boot_img.len() != 512 || core.len() < 512 {
        return Err(SysrootError::Invalid(
            "GRUB's boot.img or core.img is malformed".into(),
        ));
    }
    if core.len() as u64 > part.size {
        return Err(SysrootError::Invalid(format!(
            "GRUB's core image ({} bytes) does not fit the BIOS boot partition ({} bytes)",
            core.len(),
            part.size
        )));
    }
    core.resize(core.len().div_ceil(512) * 512, 0);
    let lba = part.offset / SECTOR;
    let sectors = (core.len() / 512) as u64;
    // diskboot's blocklist: the rest of the core image, right after it.
    let bl = 0x200 - 12;
    core[bl..bl + 8].copy_from_slice(&(lba + 1).to_le_bytes());
    core[bl + 8..bl + 10]
        .copy_from_slice(&u16::try_from(sectors - 1).unwrap_or(u16::MAX).to_le_bytes());
    disk.write_all_at(&core, part.offset)
        .ctx(|| "writing GRUB's core image")?;

    let mut mbr = [0u8; 512];
    disk.read_exact_at(&mut mbr, 0).ctx(|| "reading the MBR")?;
    let mut sector = boot_img.clone();
    // Keep the BPB area, the disk signature and the partition table.
    sector[0x3..0x5a].copy_from_slice(&mbr[0x3..0x5a]);
    sector[0x1b8..0x200].copy_from_slice(&mbr[0x1b8..0x200]);
    sector[0x5c..0x64].copy_from_slice(&lba.to_le_bytes());
    disk.write_all_at(&sector, 0).ctx(|| "writing the MBR")?;
    Ok(())
}

/// Format the ESP `part` of `target` and put the EFI image at the
/// removable-media path.
pub fn install_efi(target: &Path, efi_image: &Path, part: Extent) -> Result<()> {
    let sectors = part.offset / SECTOR;
    run(
        Command::new("mkfs.fat")
            .arg("--offset")
            .arg(sectors.to_string())
            // FAT32 with 512-byte clusters: enough clusters for FAT32 on 127 MiB.
            .args(["-F", "32", "-s", "1", "-n", "EFI-SYSTEM"])
            .arg(target)
            .arg((part.size / 1024).to_string()),
        "mkfs.fat (dosfstools)",
    )?;
    let img = format!("{}@@{}", target.display(), part.offset);
    run(
        Command::new("mmd").args(["-i", &img, "::/EFI", "::/EFI/BOOT"]),
        "mmd (mtools)",
    )?;
    run(
        Command::new("mcopy")
            .args(["-i", &img])
            .arg(efi_image)
            .arg("::/EFI/BOOT/BOOTX64.EFI"),
        "mcopy (mtools)",
    )
}

//! The bootloader backend. BLS entries in `boot/loader.N/entries` are always
//! written and are the source of truth (GRUB with BLS support, systemd-boot
//! and others read them directly); a backend may add its own configuration
//! for the new bootversion before the atomic swap of `boot/loader`.
//!
//! Chosen by the repo config: `[sysroot] oxtree-bootloader` if set (ours
//! alone, so that the real ostree, which reads `bootloader` and knows no
//! `grub-static`, can still manage the same sysroot with BLS only), else
//! `[sysroot] bootloader`: `none` and `bls` write BLS only; `grub-static`
//! is [`grub::GrubStatic`]; `uboot` is [`uboot::Uboot`]; `auto` (the
//! default) picks U-Boot when the image has `boot/uEnv.txt`, as ostree
//! does, else BLS only.

pub mod grub;
pub mod uboot;

use crate::error::{Result, SysrootError};
use rustix::fd::BorrowedFd;

/// What the backend is told about the bootversion being written.
#[derive(Clone, Copy, Debug)]
pub struct NewConfig<'a> {
    /// The bootversion whose `loader.N/entries` were just written.
    pub bootversion: u32,
    /// Entry 0 is a deployment that has not proven itself yet (a new
    /// default that is not the booted one): boot counting applies to it.
    pub untried_default: bool,
    /// The sysroot, whose `ostree/boot.N` farm is written by then.
    pub sysroot: BorrowedFd<'a>,
}

pub trait Bootloader {
    fn name(&self) -> &'static str;
    /// Write backend-specific configuration for `c.bootversion` after the
    /// BLS entries are in `loader.N/entries` and before the swap.
    fn write_config(&self, boot: BorrowedFd<'_>, c: NewConfig<'_>) -> Result<()>;
}

/// Boot Loader Specification entries only.
#[derive(Debug)]
pub struct Bls;

impl Bootloader for Bls {
    fn name(&self) -> &'static str {
        "bls"
    }
    fn write_config(&self, _boot: BorrowedFd<'_>, _c: NewConfig<'_>) -> Result<()> {
        Ok(())
    }
}

/// Default number of tries of a new deployment before the fallback.
pub const DEFAULT_BOOT_TRIES: u32 = 3;

/// The backend configured by `oxtree-bootloader` / `bootloader`, with the
/// number of tries from `boot-counting-tries` (ostree's key).
pub fn from_config(
    oxtree_value: Option<&str>,
    value: Option<&str>,
    tries: Option<&str>,
    boot: BorrowedFd<'_>,
) -> Result<Box<dyn Bootloader>> {
    match oxtree_value.or(value).unwrap_or("auto") {
        "auto" if crate::util::exists(boot, "uEnv.txt") => Ok(Box::new(uboot::Uboot)),
        "uboot" => Ok(Box::new(uboot::Uboot)),
        "auto" | "none" | "bls" => Ok(Box::new(Bls)),
        "grub-static" => {
            let tries = match tries {
                None => DEFAULT_BOOT_TRIES,
                Some(t) => t.parse::<u32>().map_err(|_| {
                    SysrootError::Invalid(format!(
                        "[sysroot] boot-counting-tries={t}: not a number"
                    ))
                })?,
            };
            Ok(Box::new(grub::GrubStatic { tries }))
        }
        other => Err(SysrootError::UnsupportedBootloader(other.to_string())),
    }
}

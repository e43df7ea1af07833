//! The bootloader backend. BLS entries in `boot/loader.N/entries` are always
//! written and are the source of truth (GRUB with BLS support, systemd-boot
//! and others read them directly); a backend may add its own configuration
//! for the new bootversion before the atomic swap. Chosen by the repo config
//! key `[sysroot] bootloader`: `auto` (default) and `none` write BLS only.

use crate::error::{Result, SysrootError};
use rustix::fd::BorrowedFd;

pub trait Bootloader {
    fn name(&self) -> &'static str;
    /// Write backend-specific configuration for `bootversion` after the BLS
    /// entries are in `loader.N/entries` and before the swap.
    fn write_config(&self, boot: BorrowedFd<'_>, bootversion: u32) -> Result<()>;
}

/// Boot Loader Specification entries only.
pub struct Bls;

impl Bootloader for Bls {
    fn name(&self) -> &'static str {
        "bls"
    }
    fn write_config(&self, _boot: BorrowedFd<'_>, _bootversion: u32) -> Result<()> {
        Ok(())
    }
}

/// The backend configured by `[sysroot] bootloader`.
pub fn from_config(value: Option<&str>) -> Result<Box<dyn Bootloader>> {
    match value.unwrap_or("auto") {
        "auto" | "none" | "bls" => Ok(Box::new(Bls)),
        other => Err(SysrootError::UnsupportedBootloader(other.to_string())),
    }
}

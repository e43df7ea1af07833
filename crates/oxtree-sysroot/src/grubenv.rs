//! GRUB's environment block (`boot/grub/grubenv`): the one file GRUB itself
//! writes (with `save_env`), which is how the boot counter survives a
//! reboot. The format is GRUB's: a `# GRUB Environment Block` line, then
//! `name=value` lines, padded with `#` to exactly 1024 bytes.
//!
//! Written by hand (no crate reads or writes this block), and always in
//! place: GRUB writes the file's sectors directly, so the file must keep
//! its blocks; userspace rewrites the same 1024 bytes with one `pwrite`
//! and an fdatasync instead of a rename.

use crate::error::{IoContext, Result, SysrootError};
use rustix::fd::BorrowedFd;
use rustix::fs::{self, Mode, OFlags};
use std::collections::BTreeMap;

pub const PATH: &str = "grub/grubenv";
const HEADER: &str = "# GRUB Environment Block\n";
const SIZE: usize = 1024;

/// The variables of an environment block, in name order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GrubEnv {
    pub vars: BTreeMap<String, String>,
}

impl GrubEnv {
    pub fn parse(b: &[u8]) -> Result<GrubEnv> {
        let text = String::from_utf8_lossy(b);
        if !text.starts_with(HEADER) {
            return Err(SysrootError::Invalid(
                "grubenv: not a GRUB environment block".into(),
            ));
        }
        let mut vars = BTreeMap::new();
        for line in text[HEADER.len()..].lines() {
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            if let Some((k, v)) = line.split_once('=') {
                vars.insert(k.to_string(), v.to_string());
            }
        }
        Ok(GrubEnv { vars })
    }

    /// The 1024-byte block.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut s = String::from(HEADER);
        for (k, v) in &self.vars {
            let bad = |c: char| c == '\n' || c == '\\' || c == '=';
            if k.is_empty() || k.contains(bad) || v.contains(['\n', '\\']) {
                return Err(SysrootError::Invalid(format!(
                    "grubenv: cannot store {k}={v}"
                )));
            }
            s.push_str(&format!("{k}={v}\n"));
        }
        if s.len() > SIZE {
            return Err(SysrootError::Invalid(
                "grubenv: variables do not fit in 1024 bytes".into(),
            ));
        }
        let mut b = s.into_bytes();
        b.resize(SIZE, b'#');
        Ok(b)
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.vars.get(k).map(String::as_str)
    }
}

/// Read `grub/grubenv` under the boot directory; None when there is none
/// (a sysroot without GRUB).
pub fn read(boot: BorrowedFd<'_>) -> Result<Option<GrubEnv>> {
    match oxtree_repo::fsutil::read_at(boot, PATH) {
        Ok(b) => GrubEnv::parse(&b).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).ctx(|| format!("reading boot/{PATH}")),
    }
}

/// Rewrite the block in place (creating it when missing), durably.
pub fn write(boot: BorrowedFd<'_>, env: &GrubEnv) -> Result<()> {
    let b = env.to_bytes()?;
    oxtree_repo::fsutil::mkdir_p_at(boot, "grub").ctx(|| "creating boot/grub")?;
    let fd = fs::openat(
        boot,
        PATH,
        OFlags::WRONLY | OFlags::CREATE | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::from_raw_mode(0o644),
    )
    .ctx(|| format!("opening boot/{PATH}"))?;
    let n = rustix::io::pwrite(&fd, &b, 0).ctx(|| format!("writing boot/{PATH}"))?;
    if n != b.len() {
        return Err(SysrootError::Invalid(format!("boot/{PATH}: short write")));
    }
    fs::fdatasync(&fd).ctx(|| format!("syncing boot/{PATH}"))
}

/// Change variables (None removes one) with one in-place write.
pub fn update(boot: BorrowedFd<'_>, changes: &[(&str, Option<&str>)]) -> Result<()> {
    let mut env = read(boot)?.unwrap_or_default();
    let before = env.clone();
    for (k, v) in changes {
        match v {
            Some(v) => env.vars.insert(k.to_string(), v.to_string()),
            None => env.vars.remove(*k),
        };
    }
    if env == before && read(boot)?.is_some() {
        return Ok(());
    }
    write(boot, &env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_is_1024_bytes() {
        let mut e = GrubEnv::default();
        e.vars.insert("oxtree_tries_1".into(), "3".into());
        let b = e.to_bytes().unwrap();
        assert_eq!(b.len(), 1024);
        assert!(b.starts_with(b"# GRUB Environment Block\noxtree_tries_1=3\n#"));
        assert_eq!(GrubEnv::parse(&b).unwrap(), e);
        assert!(GrubEnv::parse(b"junk").is_err());
        e.vars.insert("x".into(), "a\nb".into());
        assert!(e.to_bytes().is_err());
    }
}

//! Finding a deployment's kernel and computing its bootcsum.
//!
//! Layouts, in ostree's order: `usr/lib/modules/KVER/{vmlinuz,
//! initramfs.img,devicetree}`; then the legacy `usr/lib/ostree-boot/` and
//! `boot/` with `vmlinuz-KVER[-CSUM]`, `initramfs-KVER.img[-CSUM]`. The
//! bootcsum is SHA-256 over the kernel, then the initramfs, then the
//! devicetree bytes, so deployments with the same kernel share one
//! `/boot/ostree/OS-BOOTCSUM/` directory.

use crate::error::{IoContext, Result, SysrootError};
use oxtree_repo::fsutil;
use rustix::fd::{AsFd, BorrowedFd};
use rustix::fs::{self, AtFlags, FileType};
use sha2::{Digest, Sha256};

/// One file to install into the boot directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootFile {
    /// Path relative to the deployment root.
    pub src: String,
    /// Name in `/boot/ostree/OS-BOOTCSUM/`.
    pub dest: String,
    pub size: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelLayout {
    pub kernel: BootFile,
    pub initramfs: Option<BootFile>,
    pub devicetree: Option<BootFile>,
    /// The kernel's HMAC for FIPS mode (`.vmlinuz.hmac`), installed as
    /// dracut looks for it (`.vmlinuz-KVER.hmac`); not in the bootcsum.
    pub hmac: Option<BootFile>,
    /// A `dtb/` directory of device trees (when there is no single
    /// `devicetree`), file by file in name order, dest `dtb/…`; the boot
    /// entry then names the directory (`fdtdir`).
    pub dtb: Option<Vec<BootFile>>,
    pub bootcsum: String,
}

impl KernelLayout {
    /// Every file to install into the boot directory.
    pub fn files(&self) -> impl Iterator<Item = &BootFile> {
        self.checksummed().chain(self.hmac.iter())
    }

    /// The files the bootcsum covers, in order.
    fn checksummed(&self) -> impl Iterator<Item = &BootFile> {
        std::iter::once(&self.kernel)
            .chain(self.initramfs.iter())
            .chain(self.devicetree.iter())
            .chain(self.dtb.iter().flatten())
    }
}

fn regular_size(dir: BorrowedFd<'_>, rel: &str) -> Option<u64> {
    let st = fs::statat(dir, rel, AtFlags::empty()).ok()?;
    (FileType::from_raw_mode(st.st_mode) == FileType::RegularFile).then_some(st.st_size as u64)
}

/// Find the kernel of the deployment rooted at `root`.
/// The `usr/lib/modules` layout wins, except when only the legacy one has
/// an initramfs (rpm-ostree's Fedora trees), as in ostree.
pub fn find_kernel(root: BorrowedFd<'_>, what: &str) -> Result<KernelLayout> {
    let modules = find_modules_layout(root)?;
    let mut legacy = None;
    for dir in ["usr/lib/ostree-boot", "boot"] {
        legacy = find_legacy_layout(root, dir)?;
        if legacy.is_some() {
            break;
        }
    }
    match (modules, legacy) {
        (Some(m), Some(l)) if m.initramfs.is_none() && l.initramfs.is_some() => Ok(l),
        (Some(m), _) => Ok(m),
        (None, Some(l)) => Ok(l),
        (None, None) => Err(SysrootError::NoKernel(what.to_string())),
    }
}

fn find_modules_layout(root: BorrowedFd<'_>) -> Result<Option<KernelLayout>> {
    let modules = match fsutil::open_dir_at(root, "usr").and_then(|u| {
        fsutil::open_dir_at(&u, "lib").and_then(|l| fsutil::open_dir_at(&l, "modules"))
    }) {
        Ok(d) => d,
        Err(_) => return Ok(None),
    };
    let mut names: Vec<String> = fsutil::list_dir(&modules)
        .ctx(|| "listing usr/lib/modules")?
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    names.sort();
    for kver in names {
        let base = format!("usr/lib/modules/{kver}");
        let Some(size) = regular_size(root, &format!("{base}/vmlinuz")) else {
            continue;
        };
        let kernel = BootFile {
            src: format!("{base}/vmlinuz"),
            dest: format!("vmlinuz-{kver}"),
            size,
        };
        let initramfs = ["initramfs.img", "initramfs"].iter().find_map(|n| {
            regular_size(root, &format!("{base}/{n}")).map(|size| BootFile {
                src: format!("{base}/{n}"),
                dest: format!("initramfs-{kver}.img"),
                size,
            })
        });
        let hmac = regular_size(root, &format!("{base}/.vmlinuz.hmac")).map(|size| BootFile {
            src: format!("{base}/.vmlinuz.hmac"),
            dest: format!(".vmlinuz-{kver}.hmac"),
            size,
        });
        // `OSTREE_SYSROOT_DEBUG=no-dtb`: ostree's switch to ignore device
        // trees (its test of trees that gain one in an update).
        let no_dtb = crate::util::sysroot_debug("no-dtb");
        let devicetree = regular_size(root, &format!("{base}/devicetree"))
            .filter(|_| !no_dtb)
            .map(|size| BootFile {
                src: format!("{base}/devicetree"),
                dest: format!("devicetree-{kver}"),
                size,
            });
        let dtb = match (&devicetree, no_dtb) {
            (None, false) => match crate::util::open_path(root, &format!("{base}/dtb")) {
                Some(d) => {
                    let mut files = Vec::new();
                    dtb_files(d.as_fd(), &format!("{base}/dtb"), "dtb", &mut files, 0)?;
                    Some(files)
                }
                None => None,
            },
            _ => None,
        };
        let mut k = KernelLayout {
            kernel,
            initramfs,
            devicetree,
            hmac,
            dtb,
            bootcsum: String::new(),
        };
        k.bootcsum = bootcsum(root, &k)?;
        return Ok(Some(k));
    }
    Ok(None)
}

/// The regular files under the directory `src` (open as `dir`), sorted by
/// name at each level with subdirectories walked in place, as ostree
/// checksums a `dtb/` directory. Symlinks and special files are skipped.
fn dtb_files(
    dir: BorrowedFd<'_>,
    src: &str,
    dest: &str,
    out: &mut Vec<BootFile>,
    depth: usize,
) -> Result<()> {
    if depth > 16 {
        return Err(SysrootError::Invalid(format!("{src}: too deep")));
    }
    let mut entries = fsutil::list_dir(dir).ctx(|| format!("listing {src}"))?;
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, _) in entries {
        let st = fs::statat(dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW)
            .ctx(|| format!("stat of {src}/{name}"))?;
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => {
                let sub =
                    fsutil::open_dir_at(dir, &name).ctx(|| format!("opening {src}/{name}"))?;
                dtb_files(
                    sub.as_fd(),
                    &format!("{src}/{name}"),
                    &format!("{dest}/{name}"),
                    out,
                    depth + 1,
                )?;
            }
            FileType::RegularFile => out.push(BootFile {
                src: format!("{src}/{name}"),
                dest: format!("{dest}/{name}"),
                size: st.st_size as u64,
            }),
            _ => {}
        }
    }
    Ok(())
}

/// A trailing `-<64 hex>` on a legacy file name is its bootcsum.
fn split_csum(name: &str) -> (&str, Option<&str>) {
    if let Some((base, c)) = name.rsplit_once('-') {
        if c.len() == 64 && c.bytes().all(|b| b.is_ascii_hexdigit()) {
            return (base, Some(c));
        }
    }
    (name, None)
}

fn find_legacy_layout(root: BorrowedFd<'_>, dir: &str) -> Result<Option<KernelLayout>> {
    let d = match crate::util::open_path(root, dir) {
        Some(d) => d,
        None => return Ok(None),
    };
    let mut kernel = None;
    let mut initramfs = None;
    let mut devicetree = None;
    let mut names: Vec<String> = fsutil::list_dir(&d)
        .ctx(|| format!("listing {dir}"))?
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    names.sort();
    let mut embedded = None;
    for n in names {
        let Some(size) = regular_size(d.as_fd(), &n) else {
            continue;
        };
        let (base, c) = split_csum(&n);
        let f = BootFile {
            src: format!("{dir}/{n}"),
            dest: base.to_string(),
            size,
        };
        // The prefixes are matched on the whole name: `vmlinuz-CSUM` is a
        // kernel named `vmlinuz`.
        if n.starts_with("vmlinuz-") && kernel.is_none() {
            embedded = c.map(str::to_string);
            kernel = Some(f);
        } else if (n.starts_with("initramfs-") || n.starts_with("initrd.img-"))
            && initramfs.is_none()
        {
            initramfs = Some(f);
        } else if n.starts_with("devicetree-") && devicetree.is_none() {
            devicetree = Some(f);
        }
    }
    let Some(kernel) = kernel else {
        return Ok(None);
    };
    let mut k = KernelLayout {
        kernel,
        initramfs,
        devicetree,
        hmac: None,
        dtb: None,
        bootcsum: String::new(),
    };
    k.bootcsum = match embedded {
        Some(c) => c,
        None => bootcsum(root, &k)?,
    };
    Ok(Some(k))
}

fn bootcsum(root: BorrowedFd<'_>, k: &KernelLayout) -> Result<String> {
    let mut h = Sha256::new();
    for f in k.checksummed() {
        let fd = fs::openat(
            root,
            f.src.as_str(),
            fs::OFlags::RDONLY | fs::OFlags::CLOEXEC,
            fs::Mode::empty(),
        )
        .ctx(|| format!("opening {}", f.src))?;
        let mut file = std::fs::File::from(fd);
        std::io::copy(&mut file, &mut HashWriter(&mut h)).ctx(|| format!("reading {}", f.src))?;
    }
    Ok(hex::encode(h.finalize()))
}

struct HashWriter<'a>(&'a mut Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.update(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

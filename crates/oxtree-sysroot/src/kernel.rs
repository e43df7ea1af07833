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
    pub bootcsum: String,
}

impl KernelLayout {
    pub fn files(&self) -> impl Iterator<Item = &BootFile> {
        std::iter::once(&self.kernel)
            .chain(self.initramfs.iter())
            .chain(self.devicetree.iter())
    }
}

fn regular_size(dir: BorrowedFd<'_>, rel: &str) -> Option<u64> {
    let st = fs::statat(dir, rel, AtFlags::empty()).ok()?;
    (FileType::from_raw_mode(st.st_mode) == FileType::RegularFile).then_some(st.st_size as u64)
}

/// Find the kernel of the deployment rooted at `root`.
pub fn find_kernel(root: BorrowedFd<'_>, what: &str) -> Result<KernelLayout> {
    if let Some(k) = find_modules_layout(root)? {
        return Ok(k);
    }
    for dir in ["usr/lib/ostree-boot", "boot"] {
        if let Some(k) = find_legacy_layout(root, dir)? {
            return Ok(k);
        }
    }
    Err(SysrootError::NoKernel(what.to_string()))
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
        let initramfs = regular_size(root, &format!("{base}/initramfs.img")).map(|size| BootFile {
            src: format!("{base}/initramfs.img"),
            dest: format!("initramfs-{kver}.img"),
            size,
        });
        let devicetree = regular_size(root, &format!("{base}/devicetree")).map(|size| BootFile {
            src: format!("{base}/devicetree"),
            dest: format!("devicetree-{kver}"),
            size,
        });
        let mut k = KernelLayout {
            kernel,
            initramfs,
            devicetree,
            bootcsum: String::new(),
        };
        k.bootcsum = bootcsum(root, &k)?;
        return Ok(Some(k));
    }
    Ok(None)
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
        if base.starts_with("vmlinuz-") && kernel.is_none() {
            embedded = c.map(str::to_string);
            kernel = Some(f);
        } else if (base.starts_with("initramfs-") || base.starts_with("initrd.img-"))
            && initramfs.is_none()
        {
            initramfs = Some(f);
        } else if base.starts_with("devicetree-") && devicetree.is_none() {
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
    for f in k.files() {
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

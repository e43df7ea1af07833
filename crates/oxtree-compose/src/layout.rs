//! The deployable layout of a Debian root, and back.
//!
//! A deployable root is what an ostree deployment boots: `/usr` carries
//! everything the OS ships, `/etc` defaults live in `/usr/etc` (merged into
//! the deployment's `/etc` on deploy), and `/var`, which updates never
//! touch, is empty in the commit. What packages put in `/var` becomes
//! `usr/lib/tmpfiles.d/oxtree-var.conf` entries (systemd-tmpfiles creates
//! it at boot); file contents are kept under `usr/share/oxtree/var` and
//! copied in with `C` lines. The dpkg database moves to
//! `usr/share/dpkg/database` so it versions with the OS, and
//! `/var/lib/dpkg` becomes a symlink to it. `/home /opt /srv /root /mnt
//! /usr/local` become symlinks into `/var`. The kernel moves from `boot/`
//! to `usr/lib/modules/KVER/{vmlinuz,initramfs.img}`, where ostree looks.
//! State that differs between two builds of the same packages (logs,
//! caches, apt lists, machine-id, backups, random seeds, host keys) is
//! dropped so the same inputs give the same commit.
//!
//! `to_installable` undoes enough of this for apt and dpkg to run over a
//! checkout, and `to_deployable` after it gives the deployable layout back.
//!
//! All paths are handled relative to an open handle on the root, one
//! component at a time, never following symlinks (see `fsat`).

use crate::error::{ComposeError, IoContext, Result};
use crate::fsat;
use rustix::fd::{AsFd, BorrowedFd};
use rustix::fs::{self, AtFlags, FileType, Mode};

/// The tmpfiles.d file that recreates `/var`.
pub const VAR_TMPFILES: &str = "usr/lib/tmpfiles.d/oxtree-var.conf";
/// Where the contents of files that packages put in `/var` are kept.
pub const VAR_FACTORY: &str = "usr/share/oxtree/var";
/// The dpkg database in the deployable layout.
pub const DPKG_DATABASE: &str = "usr/share/dpkg/database";
/// The dpkg database where dpkg expects it.
pub const DPKG_VAR: &str = "var/lib/dpkg";

/// Top-level directories that become symlinks into `/var`:
/// (path in the root, directory under var, symlink target).
const VAR_LINKS: &[(&str, &str, &str)] = &[
    ("home", "home", "var/home"),
    ("mnt", "mnt", "var/mnt"),
    ("opt", "opt", "var/opt"),
    ("root", "roothome", "var/roothome"),
    ("srv", "srv", "var/srv"),
    ("usr/local", "usrlocal", "../var/usrlocal"),
];

/// API filesystems and scratch space: mounted at boot, empty in a commit.
const EMPTY_DIRS: &[(&str, u32)] = &[
    ("dev", 0o755),
    ("proc", 0o555),
    ("run", 0o755),
    ("sys", 0o555),
    ("tmp", 0o1777),
];

/// Files dropped because they differ from build to build or must be
/// unique per machine.
const DROP_FILES: &[&str] = &[
    "etc/passwd-",
    "etc/group-",
    "etc/shadow-",
    "etc/gshadow-",
    "etc/subuid-",
    "etc/subgid-",
    "etc/resolv.conf",
    "var/cache/ldconfig/aux-cache",
    "var/lib/dbus/machine-id",
    "var/lib/systemd/random-seed",
    "var/lib/systemd/credential.secret",
    "var/lib/systemd/catalog/database",
    "var/lib/dpkg/lock",
    "var/lib/dpkg/lock-frontend",
    "var/lib/dpkg/triggers/Lock",
    "var/cache/debconf/config.dat-old",
    "var/cache/debconf/templates.dat-old",
    "var/cache/debconf/passwords.dat-old",
    "var/lib/dpkg/status-old",
    "var/lib/dpkg/diversions-old",
    "var/lib/dpkg/statoverride-old",
    "var/lib/apt/extended_states.old",
    "vmlinuz",
    "vmlinuz.old",
    "initrd.img",
    "initrd.img.old",
    "boot/vmlinuz",
    "boot/vmlinuz.old",
    "boot/initrd.img",
    "boot/initrd.img.old",
];

/// Directories whose files (not subdirectories) are dropped.
const DROP_FILES_UNDER: &[&str] = &[
    "var/log",
    "var/cache/apt",
    "var/lib/apt/lists",
    "var/cache/debconf/tmp.ci",
];

/// What `to_deployable` did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LayoutReport {
    /// The kernel version found in `usr/lib/modules` (the newest, if
    /// several), whose `vmlinuz` is there.
    pub kernel: Option<String>,
    /// Whether that kernel has an `initramfs.img`.
    pub initramfs: bool,
    /// Lines written to the `/var` tmpfiles.d file.
    pub var_entries: usize,
    /// Root-relative paths of nondeterministic files dropped.
    pub dropped: Vec<String>,
}

/// Convert a root populated by dpkg into the deployable layout, in place.
pub fn to_deployable(root: &std::path::Path) -> Result<LayoutReport> {
    let rfd = fsat::open_root(root)?;
    let r = rfd.as_fd();
    let mut report = LayoutReport::default();

    for (d, mode) in EMPTY_DIRS {
        fsat::clear_dir(r, d)?;
        fsat::mkdir(r, d, *mode)?;
    }
    drop_state(r, &mut report)?;
    move_kernels(r)?;
    (report.kernel, report.initramfs) = find_kernel(r)?;

    for (path, var_name, target) in VAR_LINKS {
        link_into_var(r, path, var_name, target)?;
    }

    // The dpkg database versions with /usr; /var/lib/dpkg points at it.
    if fsat::is_dir(r, DPKG_VAR)? {
        fsat::remove(r, DPKG_DATABASE)?;
        fsat::rename(r, DPKG_VAR, DPKG_DATABASE)?;
    }
    if fsat::is_dir(r, DPKG_DATABASE)? {
        fsat::symlink(r, "../../usr/share/dpkg/database", DPKG_VAR)?;
    }

    report.var_entries = var_to_tmpfiles(r)?;

    if fsat::is_dir(r, "etc")? {
        if fsat::lstat(r, "usr/etc")?.is_some() {
            return Err(ComposeError::Layout(
                "both etc and usr/etc exist; cannot move etc to usr/etc".into(),
            ));
        }
        fsat::rename(r, "etc", "usr/etc")?;
    }

    // ostree's mount points: the physical root, and /ostree into it.
    fsat::mkdir(r, "sysroot", 0o755)?;
    fsat::symlink(r, "sysroot/ostree", "ostree")?;
    Ok(report)
}

/// Undo enough of the deployable layout for apt and dpkg to run over a
/// checkout of a deployable commit: `usr/etc` back to `etc`, `/var`
/// recreated from the tmpfiles.d entries, the dpkg database back in
/// `var/lib/dpkg`, and apt's state and cache directories present.
///
/// The checkout must be a private copy: files are moved and rewritten in
/// place (do not use a hardlinked checkout of a bare repository).
pub fn to_installable(root: &std::path::Path) -> Result<()> {
    let rfd = fsat::open_root(root)?;
    let r = rfd.as_fd();

    if fsat::is_dir(r, "usr/etc")? {
        if fsat::lstat(r, "etc")?.is_some() {
            let empty = match fsat::open_dir_rel(r, "etc")? {
                Some(d) => fsat::list(d.as_fd(), "etc")?.is_empty(),
                None => false,
            };
            if !empty {
                return Err(ComposeError::Layout(
                    "both etc and usr/etc exist; cannot move usr/etc to etc".into(),
                ));
            }
            fsat::remove(r, "etc")?;
        }
        fsat::rename(r, "usr/etc", "etc")?;
    }

    restore_var(r)?;

    if fsat::is_dir(r, DPKG_DATABASE)? {
        if fsat::is_dir(r, DPKG_VAR)? {
            return Err(ComposeError::Layout(format!(
                "both {DPKG_DATABASE} and {DPKG_VAR} exist"
            )));
        }
        fsat::remove(r, DPKG_VAR)?;
        fsat::rename(r, DPKG_DATABASE, DPKG_VAR)?;
    }

    for (d, mode) in EMPTY_DIRS {
        fsat::mkdir(r, d, *mode)?;
    }
    for d in [
        "var/tmp",
        "var/lib/apt/lists/partial",
        "var/cache/apt/archives/partial",
        "var/log/apt",
        "var/lib/dpkg/updates",
        "var/lib/dpkg/info",
    ] {
        let mode = if d == "var/tmp" { 0o1777 } else { 0o755 };
        fsat::mkdir(r, d, mode)?;
    }
    Ok(())
}

fn drop_state(r: BorrowedFd<'_>, report: &mut LayoutReport) -> Result<()> {
    for f in DROP_FILES {
        if let Some(st) = fsat::lstat(r, f)? {
            if fsat::file_type(&st) != FileType::Directory {
                fsat::remove(r, f)?;
                report.dropped.push(f.to_string());
            }
        }
    }
    for d in DROP_FILES_UNDER {
        drop_files_under(r, d, report)?;
    }
    // ssh host keys are generated per machine (on first boot).
    if let Some(d) = fsat::open_dir_rel(r, "etc/ssh")? {
        for (name, _) in fsat::list(d.as_fd(), "etc/ssh")? {
            if name.starts_with("ssh_host_") {
                fsat::remove(r, &format!("etc/ssh/{name}"))?;
                report.dropped.push(format!("etc/ssh/{name}"));
            }
        }
    }
    // machine-id: present but empty, so systemd generates one at first
    // boot (an absent file would make /etc read-only setups fail).
    if fsat::lstat(r, "etc/machine-id")?.is_some() {
        fsat::write(r, "etc/machine-id", b"")?;
        let (p, n) = fsat::split("etc/machine-id");
        let pfd = fsat::open_dir_rel(r, p)?.expect("etc exists");
        fs::chmodat(&pfd, n, Mode::from_raw_mode(0o444), AtFlags::empty())
            .ctx(|| "chmod etc/machine-id")?;
    }
    Ok(())
}

fn drop_files_under(r: BorrowedFd<'_>, dir: &str, report: &mut LayoutReport) -> Result<()> {
    let Some(d) = fsat::open_dir_rel(r, dir)? else {
        return Ok(());
    };
    for (name, ft) in fsat::list(d.as_fd(), dir)? {
        let rel = format!("{dir}/{name}");
        if ft == FileType::Directory {
            drop_files_under(r, &rel, report)?;
        } else {
            fsat::remove(r, &rel)?;
            report.dropped.push(rel);
        }
    }
    Ok(())
}

/// `boot/vmlinuz-KVER` and friends to `usr/lib/modules/KVER/`.
fn move_kernels(r: BorrowedFd<'_>) -> Result<()> {
    let Some(boot) = fsat::open_dir_rel(r, "boot")? else {
        return Ok(());
    };
    let names = fsat::list(boot.as_fd(), "boot")?;
    for (name, ft) in &names {
        let Some(kver) = name.strip_prefix("vmlinuz-") else {
            continue;
        };
        if *ft != FileType::RegularFile || kver.is_empty() || kver.contains('/') {
            continue;
        }
        let dest = format!("usr/lib/modules/{kver}");
        fsat::mkdir(r, &dest, 0o755)?;
        fsat::rename(r, &format!("boot/{name}"), &format!("{dest}/vmlinuz"))?;
        for (from, to) in [
            (format!("initrd.img-{kver}"), "initramfs.img"),
            (format!("config-{kver}"), "config"),
            (format!("System.map-{kver}"), "System.map"),
        ] {
            if names
                .iter()
                .any(|(n, t)| *n == from && *t == FileType::RegularFile)
            {
                fsat::rename(r, &format!("boot/{from}"), &format!("{dest}/{to}"))?;
            }
        }
    }
    Ok(())
}

/// The newest kernel in `usr/lib/modules` that has a `vmlinuz`.
fn find_kernel(r: BorrowedFd<'_>) -> Result<(Option<String>, bool)> {
    let Some(m) = fsat::open_dir_rel(r, "usr/lib/modules")? else {
        return Ok((None, false));
    };
    let mut best: Option<String> = None;
    for (kver, ft) in fsat::list(m.as_fd(), "usr/lib/modules")? {
        if ft != FileType::Directory {
            continue;
        }
        let has = fsat::lstat(r, &format!("usr/lib/modules/{kver}/vmlinuz"))?
            .is_some_and(|s| fsat::file_type(&s) == FileType::RegularFile);
        if has
            && best.as_ref().is_none_or(|b| {
                crate::packages::compare_versions(&kver, b) == std::cmp::Ordering::Greater
            })
        {
            best = Some(kver);
        }
    }
    let initramfs = match &best {
        Some(k) => fsat::lstat(r, &format!("usr/lib/modules/{k}/initramfs.img"))?.is_some(),
        None => false,
    };
    Ok((best, initramfs))
}

/// Make `path` a symlink to `target`, moving what it held into
/// `var/VAR_NAME` first.
fn link_into_var(r: BorrowedFd<'_>, path: &str, var_name: &str, target: &str) -> Result<()> {
    let var_dir = format!("var/{var_name}");
    match fsat::lstat(r, path)? {
        Some(st) if fsat::file_type(&st) == FileType::Directory => {
            let mode = st.st_mode & 0o7777;
            let vfd = fsat::mkdir(r, &var_dir, mode)?;
            fs::chownat(
                &vfd,
                "",
                Some(rustix::process::Uid::from_raw(st.st_uid)),
                Some(rustix::process::Gid::from_raw(st.st_gid)),
                AtFlags::EMPTY_PATH,
            )
            .ctx(|| format!("chown {var_dir}"))?;
            let src = fsat::open_dir_rel(r, path)?.expect("checked above");
            for (name, _) in fsat::list(src.as_fd(), path)? {
                let dest = format!("{var_dir}/{name}");
                fsat::remove(r, &dest)?;
                fsat::rename(r, &format!("{path}/{name}"), &dest)?;
            }
            drop(src);
            fsat::remove(r, path)?;
            fsat::symlink(r, target, path)?;
        }
        Some(st) if fsat::file_type(&st) == FileType::Symlink => {
            if fsat::lstat(r, &var_dir)?.is_none() {
                fsat::mkdir(r, &var_dir, default_mode(var_name))?;
            }
        }
        Some(_) => {
            return Err(ComposeError::Layout(format!(
                "{path} is neither a directory nor a symlink"
            )))
        }
        None => {
            fsat::mkdir(r, &var_dir, default_mode(var_name))?;
            fsat::symlink(r, target, path)?;
        }
    }
    Ok(())
}

fn default_mode(var_name: &str) -> u32 {
    if var_name == "roothome" {
        0o700
    } else {
        0o755
    }
}

/// Describe `/var` as tmpfiles.d lines (file contents moved under
/// `VAR_FACTORY`), then empty it. Returns the number of lines.
fn var_to_tmpfiles(r: BorrowedFd<'_>) -> Result<usize> {
    fsat::remove(r, VAR_FACTORY)?;
    fsat::remove(r, VAR_TMPFILES)?;
    let mut lines = Vec::new();
    if fsat::open_dir_rel(r, "var")?.is_some() {
        walk_var(r, "var", &mut lines)?;
        fsat::clear_dir(r, "var")?;
    }
    let mut text = String::from(
        "# Generated by oxtree from the /var of the composed tree: updates never\n\
         # touch /var, so its content is recreated here when missing.\n",
    );
    for l in &lines {
        text.push_str(l);
        text.push('\n');
    }
    fsat::write(r, VAR_TMPFILES, text.as_bytes())?;
    Ok(lines.len())
}

fn walk_var(r: BorrowedFd<'_>, dir: &str, lines: &mut Vec<String>) -> Result<()> {
    let d = fsat::open_dir_rel(r, dir)?.expect("directory being walked");
    for (name, _) in fsat::list(d.as_fd(), dir)? {
        let rel = format!("{dir}/{name}");
        let abs = format!("/{rel}");
        let st = fs::statat(&d, name.as_str(), AtFlags::SYMLINK_NOFOLLOW)
            .ctx(|| format!("stat {rel}"))?;
        let mode = st.st_mode & 0o7777;
        let (uid, gid) = (st.st_uid, st.st_gid);
        match fsat::file_type(&st) {
            FileType::Directory => {
                lines.push(format!("d {} {mode:04o} {uid} {gid} - -", quote(&abs)));
                walk_var(r, &rel, lines)?;
            }
            FileType::Symlink => {
                let t = fsat::read_link(r, &rel)?;
                lines.push(format!("L {} - - - - {}", quote(&abs), quote(&t)));
            }
            FileType::RegularFile if st.st_size == 0 => {
                lines.push(format!("f {} {mode:04o} {uid} {gid} - -", quote(&abs)));
            }
            FileType::RegularFile => {
                let keep = format!("{VAR_FACTORY}/{}", &rel["var/".len()..]);
                fsat::rename(r, &rel, &keep)?;
                lines.push(format!(
                    "C {} - - - - {}",
                    quote(&abs),
                    quote(&format!("/{keep}"))
                ));
            }
            // Sockets, fifos and device nodes cannot be committed.
            _ => {}
        }
    }
    Ok(())
}

/// tmpfiles.d quoting: plain when safe, else double quotes with C escapes.
fn quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\'' && b != b'\\');
    if safe {
        return s.to_string();
    }
    let mut out = String::from("\"");
    for b in s.bytes() {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('"');
    out
}

/// Split a tmpfiles.d line into fields, undoing `quote` (also what the
/// container image's `/var` skeleton is read with).
pub fn split_fields(line: &str) -> Vec<String> {
    let b = line.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let mut field = Vec::new();
        if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    if b[i + 1] == b'x' && i + 3 < b.len() {
                        let h = std::str::from_utf8(&b[i + 2..i + 4]).unwrap_or("");
                        if let Ok(v) = u8::from_str_radix(h, 16) {
                            field.push(v);
                            i += 4;
                            continue;
                        }
                    }
                    field.push(b[i + 1]);
                    i += 2;
                } else {
                    field.push(b[i]);
                    i += 1;
                }
            }
            i += 1;
        } else {
            while i < b.len() && !b[i].is_ascii_whitespace() {
                field.push(b[i]);
                i += 1;
            }
        }
        out.push(String::from_utf8_lossy(&field).into_owned());
    }
    out
}

/// Recreate `/var` from the lines `var_to_tmpfiles` wrote (only those: it
/// is not a general tmpfiles.d implementation).
fn restore_var(r: BorrowedFd<'_>) -> Result<()> {
    let Some(text) = fsat::read(r, VAR_TMPFILES)? else {
        return Ok(());
    };
    let text = String::from_utf8_lossy(&text);
    for line in text.lines() {
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let f = split_fields(line);
        let bad = || ComposeError::Layout(format!("{VAR_TMPFILES}: unexpected line {line:?}"));
        if f.len() < 7 {
            return Err(bad());
        }
        let rel = f[1]
            .strip_prefix("/var/")
            .filter(|p| !p.split('/').any(|c| c.is_empty() || c == "." || c == ".."))
            .ok_or_else(bad)?;
        let rel = format!("var/{rel}");
        if fsat::lstat(r, &rel)?.is_some() {
            continue;
        }
        let owner = |fd: BorrowedFd<'_>, name: &str| -> Result<()> {
            let mode = u32::from_str_radix(&f[2], 8).map_err(|_| bad())?;
            let uid: u32 = f[3].parse().map_err(|_| bad())?;
            let gid: u32 = f[4].parse().map_err(|_| bad())?;
            fs::chownat(
                fd,
                name,
                Some(rustix::process::Uid::from_raw(uid)),
                Some(rustix::process::Gid::from_raw(gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .ctx(|| format!("chown {rel}"))?;
            fs::chmodat(fd, name, Mode::from_raw_mode(mode), AtFlags::empty())
                .ctx(|| format!("chmod {rel}"))
        };
        match f[0].as_str() {
            "d" => {
                let (pfd, name) = fsat::parent_mkdir(r, &rel)?;
                fsat::mkdir(r, &rel, 0o755)?;
                owner(pfd.as_fd(), &name)?;
            }
            "f" => {
                let (pfd, name) = fsat::parent_mkdir(r, &rel)?;
                fs::openat(
                    &pfd,
                    name.as_str(),
                    fs::OFlags::WRONLY | fs::OFlags::CREATE | fs::OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o644),
                )
                .ctx(|| format!("creating {rel}"))?;
                owner(pfd.as_fd(), &name)?;
            }
            "L" => fsat::symlink(r, &f[6], &rel)?,
            "C" => {
                let src = f[6]
                    .strip_prefix('/')
                    .filter(|s| s.starts_with(VAR_FACTORY))
                    .ok_or_else(bad)?;
                fsat::rename(r, src, &rel)?;
            }
            _ => return Err(bad()),
        }
    }
    fsat::remove(r, VAR_FACTORY)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs as sfs;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn tree() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let p = t.path();
        for d in [
            "etc/ssh",
            "var/lib/dpkg/info",
            "var/lib/apt/lists/partial",
            "var/log/apt",
            "var/cache/apt/archives/partial",
            "var/cache/debconf",
            "var/mail",
            "usr/lib/modules/6.1.0-1-amd64",
            "usr/local/bin",
            "usr/share/dpkg",
            "boot",
            "root",
            "home",
            "dev",
            "tmp",
            "var/tmp",
        ] {
            sfs::create_dir_all(p.join(d)).unwrap();
        }
        sfs::write(p.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        sfs::write(p.join("etc/passwd-"), "old\n").unwrap();
        sfs::write(p.join("etc/machine-id"), "0123\n").unwrap();
        sfs::write(p.join("etc/ssh/ssh_host_ed25519_key"), "k").unwrap();
        sfs::write(p.join("var/lib/dpkg/status"), "Package: a\n").unwrap();
        sfs::write(p.join("var/lib/dpkg/status-old"), "x").unwrap();
        sfs::write(p.join("var/lib/apt/lists/foo_Packages"), "x").unwrap();
        sfs::write(p.join("var/lib/apt/extended_states"), "Package: a\n").unwrap();
        sfs::write(p.join("var/log/apt/history.log"), "x").unwrap();
        sfs::write(p.join("var/log/lastlog"), "").unwrap();
        sfs::write(p.join("var/cache/debconf/config.dat"), "c\n").unwrap();
        sfs::set_permissions(p.join("var/mail"), sfs::Permissions::from_mode(0o2775)).unwrap();
        sfs::set_permissions(p.join("var/tmp"), sfs::Permissions::from_mode(0o1777)).unwrap();
        symlink("/run", p.join("var/run")).unwrap();
        sfs::write(p.join("var/lib/dpkg/weird name"), "w").unwrap();
        sfs::write(p.join("boot/vmlinuz-6.1.0-1-amd64"), "kernel").unwrap();
        sfs::write(p.join("boot/initrd.img-6.1.0-1-amd64"), "initrd").unwrap();
        sfs::write(p.join("boot/config-6.1.0-1-amd64"), "cfg").unwrap();
        symlink("boot/vmlinuz-6.1.0-1-amd64", p.join("vmlinuz")).unwrap();
        sfs::write(p.join("root/.bashrc"), "bashrc\n").unwrap();
        sfs::write(p.join("dev/null"), "").unwrap();
        t
    }

    fn read(p: &std::path::Path, rel: &str) -> String {
        sfs::read_to_string(p.join(rel)).unwrap()
    }

    #[test]
    fn deployable_layout() {
        let t = tree();
        let p = t.path();
        let rep = to_deployable(p).unwrap();
        assert_eq!(rep.kernel.as_deref(), Some("6.1.0-1-amd64"));
        assert!(rep.initramfs);
        assert_eq!(read(p, "usr/lib/modules/6.1.0-1-amd64/vmlinuz"), "kernel");
        assert_eq!(
            read(p, "usr/lib/modules/6.1.0-1-amd64/initramfs.img"),
            "initrd"
        );
        assert!(sfs::symlink_metadata(p.join("vmlinuz")).is_err());
        assert!(!p.join("etc").exists());
        assert_eq!(read(p, "usr/etc/passwd"), "root:x:0:0::/root:/bin/sh\n");
        assert!(!p.join("usr/etc/passwd-").exists());
        assert!(!p.join("usr/etc/ssh/ssh_host_ed25519_key").exists());
        assert_eq!(read(p, "usr/etc/machine-id"), "");
        assert_eq!(read(p, "usr/share/dpkg/database/status"), "Package: a\n");
        assert!(!p.join("usr/share/dpkg/database/status-old").exists());
        assert_eq!(
            sfs::read_link(p.join("root")).unwrap().to_str(),
            Some("var/roothome")
        );
        assert_eq!(
            sfs::read_link(p.join("usr/local")).unwrap().to_str(),
            Some("../var/usrlocal")
        );
        assert_eq!(
            sfs::read_link(p.join("ostree")).unwrap().to_str(),
            Some("sysroot/ostree")
        );
        assert_eq!(sfs::read_dir(p.join("var")).unwrap().count(), 0);
        assert_eq!(sfs::read_dir(p.join("dev")).unwrap().count(), 0);
        let conf = read(p, VAR_TMPFILES);
        for l in [
            "d /var/mail 2775 0 0 - -",
            "d /var/tmp 1777 0 0 - -",
            "L /var/run - - - - /run",
            "L /var/lib/dpkg - - - - ../../usr/share/dpkg/database",
            "C /var/roothome/.bashrc - - - - /usr/share/oxtree/var/roothome/.bashrc",
            "C /var/lib/apt/extended_states - - - - /usr/share/oxtree/var/lib/apt/extended_states",
            "d /var/usrlocal/bin 0755 0 0 - -",
            "d /var/log/apt 0755 0 0 - -",
        ] {
            assert!(conf.lines().any(|x| x == l), "missing {l:?} in\n{conf}");
        }
        assert!(
            !conf.contains("history.log") && !conf.contains("lastlog"),
            "{conf}"
        );
        assert!(!conf.contains("foo_Packages"), "{conf}");
        assert_eq!(read(p, "usr/share/oxtree/var/roothome/.bashrc"), "bashrc\n");
    }

    #[test]
    fn roundtrip_installable_deployable() {
        let t = tree();
        let p = t.path();
        to_deployable(p).unwrap();
        let conf1 = read(p, VAR_TMPFILES);
        to_installable(p).unwrap();
        assert_eq!(read(p, "etc/passwd"), "root:x:0:0::/root:/bin/sh\n");
        assert!(p.join("var/lib/dpkg").is_dir());
        assert!(!sfs::symlink_metadata(p.join("var/lib/dpkg"))
            .unwrap()
            .is_symlink());
        assert_eq!(read(p, "var/lib/dpkg/status"), "Package: a\n");
        assert_eq!(read(p, "var/lib/dpkg/weird name"), "w");
        assert_eq!(read(p, "root/.bashrc"), "bashrc\n");
        assert!(p.join("var/lib/apt/lists/partial").is_dir());
        assert!(p.join("var/cache/apt/archives/partial").is_dir());
        let mail = sfs::metadata(p.join("var/mail"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mail & 0o7777, 0o2775);
        // "apt" changes something.
        sfs::write(p.join("var/lib/dpkg/status"), "Package: a\n\nPackage: b\n").unwrap();
        to_deployable(p).unwrap();
        let conf2 = read(p, VAR_TMPFILES);
        assert_eq!(conf1, conf2);
        assert_eq!(
            read(p, "usr/share/dpkg/database/status"),
            "Package: a\n\nPackage: b\n"
        );
        assert!(!p.join("etc").exists());
        assert_eq!(sfs::read_dir(p.join("var")).unwrap().count(), 0);
    }

    #[test]
    fn quoting_roundtrips() {
        for s in ["/var/a", "/var/a b", "/var/q\"\\x", "/var/\u{e9}"] {
            let line = format!("L {} - - - - {}", quote(s), quote("t"));
            let f = split_fields(&line);
            assert_eq!(f[1], s);
            assert_eq!(f[6], "t");
        }
    }
}

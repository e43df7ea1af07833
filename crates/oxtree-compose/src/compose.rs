//! `compose tree`: a treefile to a bootable ostree commit, from Debian's
//! packages.
//!
//! 1. mmdebstrap builds the root (`--variant=minbase` plus the treefile's
//!    packages, so apt and dpkg stay for layering), with downloads kept in
//!    the cache directory (bind-mounted over the root's apt archive, in a
//!    private mount namespace) and `INITRD=No` so kernel packages do not
//!    build an initramfs that would be thrown away;
//! 2. the running oxtree binary (without debug information) goes to
//!    `usr/bin/oxtree`, and the small `oxtree-prepare-root` built beside it
//!    to `usr/lib/oxtree/`, with an initramfs-tools hook (copies only the
//!    small one in: the boot loader reads and the kernel unpacks every byte
//!    of the initramfs on every boot) and an `init-bottom` script (runs
//!    `oxtree-prepare-root --sysroot $rootmnt --switch-root` when the kernel
//!    command line names an ostree deployment);
//! 3. `add-files`, `kernel-args` (`usr/lib/oxtree/kargs`), then the
//!    `postprocess` script in the sandbox;
//! 4. `mkinitramfs` for the image's kernel, in the sandbox;
//! 5. `layout::to_deployable`, then the commit, with `version`,
//!    `oxtree.packages`, `ostree.bootable`, `ostree.linux`,
//!    `oxtree.kernel-args`.
//!
//! Reproducibility: the same treefile and the same package versions give
//! the same commit. Everything time-dependent is pinned by one epoch:
//! `SOURCE_DATE_EPOCH` if given, else [`DEFAULT_EPOCH`] for the build (it
//! must be known before the packages are) and, for the commit timestamp,
//! the newest package: the latest modification time of the packages'
//! `usr/share/doc/*/changelog.Debian.gz`, which dpkg takes from the .deb.
//! That timestamp only moves when a package does, so `ostree log` stays
//! meaningful and upgrades never look like downgrades. Composing again
//! without changes leaves the ref on the existing commit (its checksum is
//! returned): a new commit would differ from it only by its parent.

use crate::commit::commit_root_with_progress;
use crate::error::{ComposeError, IoContext, Result};
use crate::fsat;
use crate::packages::{self, Package};
use crate::sandbox::{self, SandboxOptions};
use crate::treefile::Treefile;
use oxtree_object::{Checksum, Metadata};
use oxtree_repo::Repo;
use rustix::fd::AsFd;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The build epoch when `SOURCE_DATE_EPOCH` is not set (2023-11-14): a
/// constant, so file contents that record "now" (shadow's last password
/// change, initramfs timestamps) do not depend on the build time.
pub const DEFAULT_EPOCH: u64 = 1_700_000_000;

/// Where the kernel arguments of the image are written.
pub const KARGS_FILE: &str = "usr/lib/oxtree/kargs";

/// Progress of a compose.
#[derive(Debug)]
pub enum Event<'a> {
    /// A new step starts.
    Step(&'a str),
    /// A line of output of a tool (mmdebstrap, mkinitramfs, postprocess).
    Output(&'a str),
    /// Files committed so far.
    Commit { done: u64, total: u64 },
}

#[derive(Clone, Debug)]
pub struct ComposeOptions {
    /// Keep downloaded .debs here (outside any repository); none: download
    /// every time.
    pub cachedir: Option<PathBuf>,
    /// Where the root is built (needs space for the whole OS).
    pub workdir: PathBuf,
    /// The oxtree binary to put in the image.
    pub oxtree_binary: PathBuf,
    /// The `oxtree-prepare-root` binary for the initramfs (by default the
    /// one beside `oxtree_binary`).
    pub prepare_root_binary: PathBuf,
    /// `SOURCE_DATE_EPOCH`: build epoch and commit timestamp.
    pub source_date_epoch: Option<u64>,
}

impl ComposeOptions {
    pub fn new(oxtree_binary: PathBuf) -> Self {
        ComposeOptions {
            cachedir: None,
            workdir: PathBuf::from("/var/tmp"),
            prepare_root_binary: oxtree_binary.with_file_name(PREPARE_ROOT),
            oxtree_binary,
            source_date_epoch: None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Composed {
    pub checksum: Checksum,
    pub ref_: String,
    /// False when the ref already pointed at an identical commit.
    pub changed: bool,
    pub timestamp: u64,
    pub kernel: Option<String>,
    pub packages: Vec<Package>,
}

/// Compose `tf` into `repo` and move its ref.
pub fn compose_tree(
    repo: &mut Repo,
    tf: &Treefile,
    opts: &ComposeOptions,
    progress: &(dyn Fn(Event<'_>) + Sync),
) -> Result<Composed> {
    // Fail before an expensive build when the ref is unreadable.
    let parent = repo.read_ref(&tf.ref_)?;
    let work = WorkDir::create(&opts.workdir)?;
    let root = work.path.join("root");
    let epoch = opts.source_date_epoch.unwrap_or(DEFAULT_EPOCH);

    progress(Event::Step("Building the root with mmdebstrap"));
    mmdebstrap(tf, opts, &root, epoch, progress)?;

    let rfd = fsat::open_root(&root)?;
    let r = rfd.as_fd();
    progress(Event::Step("Installing oxtree"));
    let exe = image_binary(&opts.oxtree_binary, &work.path)?;
    write_mode(r, "usr/bin/oxtree", &exe, 0o755)?;
    let kernel = boot_kernel(r)?;
    if kernel.is_some() {
        if !opts.prepare_root_binary.is_file() {
            return Err(ComposeError::MissingPrepareRoot {
                path: opts.prepare_root_binary.display().to_string(),
            });
        }
        let pr = image_binary(&opts.prepare_root_binary, &work.path)?;
        write_mode(r, &format!("usr/lib/oxtree/{PREPARE_ROOT}"), &pr, 0o755)?;
        write_mode(
            r,
            "usr/share/initramfs-tools/hooks/oxtree",
            INITRAMFS_HOOK.as_bytes(),
            0o755,
        )?;
        write_mode(
            r,
            "usr/share/initramfs-tools/scripts/init-bottom/oxtree",
            INITRAMFS_SCRIPT.as_bytes(),
            0o755,
        )?;
    }
    if crate::units::install(r)? {
        progress(Event::Step("Installed oxtree's systemd units"));
    }
    for (src, dest) in &tf.add_files {
        progress(Event::Step(&format!("Adding {src} as {dest}")));
        add_file(r, &tf.base_dir.join(src), dest.trim_start_matches('/'))?;
    }
    if !tf.kernel_args.is_empty() {
        write_mode(
            r,
            KARGS_FILE,
            format!("{}\n", tf.kernel_args.join(" ")).as_bytes(),
            0o644,
        )?;
    }
    let sb = SandboxOptions::default().source_date_epoch(epoch);
    if let Some(script) = &tf.postprocess {
        progress(Event::Step("Running the postprocess script"));
        let out = sandbox::run_in_root(&root, &["/bin/sh", "-e", "-c", script], &sb)?;
        for l in String::from_utf8_lossy(&out.stdout).lines() {
            progress(Event::Output(l));
        }
    }
    if let Some(kver) = &kernel {
        progress(Event::Step(&format!("Building the initramfs for {kver}")));
        let out_path = format!("/boot/initrd.img-{kver}");
        sandbox::run_in_root(&root, &["mkinitramfs", "-o", &out_path, kver], &sb)?;
    }

    progress(Event::Step("Converting to the deployable layout"));
    let installed = packages::installed(&root)?;
    let timestamp = match opts.source_date_epoch {
        Some(t) => t,
        None => newest_package_date(r)?.unwrap_or(DEFAULT_EPOCH),
    };
    drop(rfd);
    let report = crate::layout::to_deployable(&root)?;

    let mut md = Metadata::new();
    if let Some(v) = &tf.version {
        md.set_str("version", v);
    }
    packages::set_metadata(&mut md, &installed);
    if !tf.kernel_args.is_empty() {
        md.set_strv("oxtree.kernel-args", &tf.kernel_args);
    }
    if let Some(k) = &report.kernel {
        md.set(
            "ostree.bootable",
            oxtree_object::gvariant::Value::Bool(true),
        );
        md.set_str("ostree.linux", k);
    }

    progress(Event::Step("Committing"));
    let report_commit = |done: u64, total: u64| progress(Event::Commit { done, total });
    let (checksum, changed) = commit_root_with_progress(
        repo,
        &root,
        &tf.ref_,
        md,
        timestamp,
        parent,
        true,
        &report_commit,
    )?;
    let result = Composed {
        checksum,
        ref_: tf.ref_.clone(),
        changed,
        timestamp,
        kernel: report.kernel,
        packages: installed,
    };
    Ok(result)
}

/// The initramfs's binary, built beside `oxtree` (src/bin/).
const PREPARE_ROOT: &str = "oxtree-prepare-root";

const INITRAMFS_HOOK: &str = r#"#!/bin/sh
# Installed by oxtree compose: put oxtree-prepare-root in the initramfs.
PREREQ=""
prereqs() { echo "$PREREQ"; }
case "$1" in prereqs) prereqs; exit 0 ;; esac
. /usr/share/initramfs-tools/hook-functions
copy_exec /usr/lib/oxtree/oxtree-prepare-root /usr/bin
"#;

const INITRAMFS_SCRIPT: &str = r#"#!/bin/sh
# Installed by oxtree compose: when the kernel command line names an ostree
# deployment, make it the root (the physical root is mounted at $rootmnt).
PREREQ=""
prereqs() { echo "$PREREQ"; }
case "$1" in prereqs) prereqs; exit 0 ;; esac
# No grep here: the initramfs has only what hooks copied in.
read -r cmdline < /proc/cmdline
case " $cmdline " in *" ostree="*) ;; *) exit 0 ;; esac
. /scripts/functions
log_begin_msg "oxtree: preparing the deployment root"
/usr/bin/oxtree-prepare-root --sysroot "${rootmnt}" --switch-root || panic "oxtree-prepare-root failed"
# What ostree-prepare-root leaves for the booted system: /run is moved
# into the new root by init, so this marks it as an ostree boot.
: > /run/ostree-booted
log_end_msg
"#;

/// A build directory removed on drop (also after a failure).
struct WorkDir {
    path: PathBuf,
}

impl WorkDir {
    fn create(parent: &Path) -> Result<WorkDir> {
        std::fs::create_dir_all(parent).ctx(|| format!("creating {}", parent.display()))?;
        let name = oxtree_repo::fsutil::temp_name("oxtree-compose-");
        let path = parent.join(name);
        std::fs::create_dir(&path).ctx(|| format!("creating {}", path.display()))?;
        Ok(WorkDir { path })
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn mmdebstrap(
    tf: &Treefile,
    opts: &ComposeOptions,
    root: &Path,
    epoch: u64,
    progress: &(dyn Fn(Event<'_>) + Sync),
) -> Result<()> {
    let mut args: Vec<String> = vec![
        "mmdebstrap".into(),
        "--mode=root".into(),
        "--variant=minbase".into(),
        "--format=directory".into(),
        "--verbose".into(),
    ];
    let mut include = tf.packages.clone();
    if tf.wants_kernel() && !include.iter().any(|p| p == "initramfs-tools") {
        include.push("initramfs-tools".into());
    }
    if !include.is_empty() {
        args.push(format!("--include={}", include.join(",")));
    }
    if !tf.exclude.is_empty() {
        // apt never installs a package pinned below 0; the pin stays in the
        // image so layering cannot pull it in either.
        let mut pref = String::new();
        for p in &tf.exclude {
            pref.push_str(&format!(
                "Package: {p}\nPin: release *\nPin-Priority: -1\n\n"
            ));
        }
        args.push(format!(
            "--setup-hook=mkdir -p \"$1\"/etc/apt/preferences.d && printf %s {} > \"$1\"/etc/apt/preferences.d/oxtree-exclude.pref",
            shell_quote(&pref)
        ));
    }
    let mut _cache_lock = None;
    if let Some(c) = &opts.cachedir {
        std::fs::create_dir_all(c).ctx(|| format!("creating {}", c.display()))?;
        let c = std::fs::canonicalize(c).ctx(|| format!("resolving {}", c.display()))?;
        _cache_lock = Some(lock_cache(&c, progress)?);
        let c = shell_quote(&c.to_string_lossy());
        args.push("--skip=essential/unlink".into());
        args.push(format!(
            "--setup-hook=mkdir -p \"$1\"/var/cache/apt/archives && mount --bind {c} \"$1\"/var/cache/apt/archives"
        ));
        args.push("--customize-hook=umount \"$1\"/var/cache/apt/archives".into());
    }
    // mmdebstrap copies the host's hostname; make it the same everywhere.
    args.push("--customize-hook=echo localhost > \"$1\"/etc/hostname".into());
    args.push(tf.suite.clone());
    args.push(root.to_string_lossy().into_owned());
    match &tf.mirror {
        Some(m) => args.extend(m.to_vec()),
        None => {
            let work = root.parent().unwrap_or(Path::new("/tmp"));
            args.extend(crate::sources::default_mirrors(&tf.suite, work)?)
        }
    }
    // A private mount namespace: the cache bind mount (and mmdebstrap's
    // own mounts) vanish with the process, even if it is killed.
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "--"]);
    cmd.args(&args);
    cmd.env("SOURCE_DATE_EPOCH", epoch.to_string())
        .env("INITRD", "No")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .env("LC_ALL", "C.UTF-8")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    run_streamed(cmd, &args.join(" "), progress)
}

/// Hold an exclusive lock on the cache directory while mmdebstrap uses it:
/// apt in two roots sharing one archive directory would fight over its
/// lock and partial downloads.
fn lock_cache(cache: &Path, progress: &(dyn Fn(Event<'_>) + Sync)) -> Result<std::fs::File> {
    use rustix::fs::{flock, FlockOperation};
    let p = cache.join(".oxtree-compose.lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&p)
        .ctx(|| format!("opening {}", p.display()))?;
    if flock(&f, FlockOperation::NonBlockingLockExclusive).is_err() {
        progress(Event::Output(&format!(
            "I: waiting for another compose to release {}",
            cache.display()
        )));
        flock(&f, FlockOperation::LockExclusive).ctx(|| format!("locking {}", p.display()))?;
    }
    Ok(f)
}

/// Run a command, passing each output line to `progress`; on failure the
/// error carries the last lines.
fn run_streamed(mut cmd: Command, what: &str, progress: &(dyn Fn(Event<'_>) + Sync)) -> Result<()> {
    let mut child = cmd.spawn().ctx(|| format!("starting {what}"))?;
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let tx2 = tx.clone();
    let t1 = std::thread::spawn(move || {
        for l in std::io::BufReader::new(stdout)
            .lines()
            .map_while(|l| l.ok())
        {
            let _ = tx.send(l);
        }
    });
    let t2 = std::thread::spawn(move || {
        for l in std::io::BufReader::new(stderr)
            .lines()
            .map_while(|l| l.ok())
        {
            let _ = tx2.send(l);
        }
    });
    let mut tail: std::collections::VecDeque<String> = Default::default();
    for l in rx {
        progress(Event::Output(&l));
        if tail.len() == 40 {
            tail.pop_front();
        }
        tail.push_back(l);
    }
    let _ = t1.join();
    let _ = t2.join();
    let status = child.wait().ctx(|| format!("waiting for {what}"))?;
    if !status.success() {
        return Err(ComposeError::Command {
            command: what.split(' ').next().unwrap_or(what).to_string(),
            status: status.to_string(),
            stderr_tail: tail.into_iter().collect::<Vec<_>>().join("\n"),
        });
    }
    Ok(())
}

/// The oxtree binary for the image: without debug information when the
/// host has `strip` (a debug build is hundreds of MB, and it is copied
/// into the initramfs too), else as is.
fn image_binary(exe: &Path, work: &Path) -> Result<Vec<u8>> {
    let stripped = work.join("oxtree.stripped");
    let ok = Command::new("strip")
        .arg("--strip-debug")
        .arg("-o")
        .arg(&stripped)
        .arg(exe)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let src = if ok { stripped.as_path() } else { exe };
    std::fs::read(src).ctx(|| format!("reading {}", src.display()))
}

/// The kernel version of `boot/vmlinuz-KVER` (the newest if several).
fn boot_kernel(r: rustix::fd::BorrowedFd<'_>) -> Result<Option<String>> {
    let Some(b) = fsat::open_dir_rel(r, "boot")? else {
        return Ok(None);
    };
    let mut best: Option<String> = None;
    for (name, _) in fsat::list(b.as_fd(), "boot")? {
        if let Some(k) = name.strip_prefix("vmlinuz-") {
            if best
                .as_deref()
                .is_none_or(|b| packages::compare_versions(k, b) == std::cmp::Ordering::Greater)
            {
                best = Some(k.to_string());
            }
        }
    }
    Ok(best)
}

fn write_mode(r: rustix::fd::BorrowedFd<'_>, rel: &str, data: &[u8], mode: u32) -> Result<()> {
    fsat::write(r, rel, data)?;
    let (p, n) = fsat::split(rel);
    let pfd = fsat::open_dir_rel(r, p)?.expect("just written");
    rustix::fs::chmodat(
        &pfd,
        n,
        rustix::fs::Mode::from_raw_mode(mode),
        rustix::fs::AtFlags::empty(),
    )
    .ctx(|| format!("chmod {rel}"))
}

/// Copy a host file or directory tree to `dest` in the root (owner root,
/// the source's permission bits).
fn add_file(r: rustix::fd::BorrowedFd<'_>, src: &Path, dest: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let md = std::fs::symlink_metadata(src).ctx(|| format!("reading {}", src.display()))?;
    let mode = md.permissions().mode() & 0o7777;
    if md.is_dir() {
        fsat::mkdir(r, dest, mode)?;
        let mut names: Vec<_> = std::fs::read_dir(src)
            .ctx(|| format!("listing {}", src.display()))?
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        names.sort();
        for n in names {
            let name = n.to_string_lossy().into_owned();
            add_file(r, &src.join(&n), &format!("{dest}/{name}"))?;
        }
    } else if md.file_type().is_symlink() {
        let t = std::fs::read_link(src).ctx(|| format!("reading {}", src.display()))?;
        fsat::symlink(r, &t.to_string_lossy(), dest)?;
    } else if md.is_file() {
        let data = std::fs::read(src).ctx(|| format!("reading {}", src.display()))?;
        write_mode(r, dest, &data, mode)?;
    } else {
        return Err(ComposeError::Layout(format!(
            "add-files: {} is not a file, directory or symlink",
            src.display()
        )));
    }
    Ok(())
}

/// The latest modification time of `usr/share/doc/*/changelog.Debian.gz`
/// (dpkg keeps the .deb's times, so this follows the package versions).
fn newest_package_date(r: rustix::fd::BorrowedFd<'_>) -> Result<Option<u64>> {
    let Some(doc) = fsat::open_dir_rel(r, "usr/share/doc")? else {
        return Ok(None);
    };
    let mut best: Option<u64> = None;
    for (name, ft) in fsat::list(doc.as_fd(), "usr/share/doc")? {
        if ft != rustix::fs::FileType::Directory {
            continue;
        }
        if let Some(st) = fsat::lstat(r, &format!("usr/share/doc/{name}/changelog.Debian.gz"))? {
            if fsat::file_type(&st) == rustix::fs::FileType::RegularFile {
                let t = st.st_mtime.max(0) as u64;
                best = Some(best.map_or(t, |b: u64| b.max(t)));
            }
        }
    }
    Ok(best)
}

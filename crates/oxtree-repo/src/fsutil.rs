//! Directory-handle filesystem helpers (openat-style, via rustix).
//!
//! Names passed here are single path components already validated by the
//! object layer, or fixed names of the repository layout.

use oxtree_object::Xattrs;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{self, AtFlags, Mode, OFlags, XattrFlags};
use rustix::io::Errno;
use std::ffi::CStr;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

pub const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::CLOEXEC);

pub fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    Ok(fs::open(path, DIR_FLAGS, Mode::empty())?)
}

/// Open a subdirectory without following a symlink in its place.
pub fn open_dir_at<Fd: AsFd>(dirfd: Fd, name: &str) -> io::Result<OwnedFd> {
    Ok(fs::openat(
        dirfd,
        name,
        DIR_FLAGS | OFlags::NOFOLLOW,
        Mode::empty(),
    )?)
}

/// Open the directory `rel` (`a/b/c`) below `dirfd` one component at a
/// time, never following a symlink: the one walk the sysroot and compose
/// crates use for paths inside trees they do not trust. `Ok(None)` if a
/// component is missing, not a directory or a symlink.
pub fn open_dir_path_at<Fd: AsFd>(dirfd: Fd, rel: &str) -> io::Result<Option<OwnedFd>> {
    let mut cur = dirfd.as_fd().try_clone_to_owned()?;
    for c in rel.split('/').filter(|c| !c.is_empty() && *c != ".") {
        match open_dir_at(&cur, c) {
            Ok(fd) => cur = fd,
            Err(e)
                if matches!(
                    Errno::from_io_error(&e),
                    Some(Errno::NOENT | Errno::NOTDIR | Errno::LOOP)
                ) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Some(cur))
}

pub fn read_at<Fd: AsFd>(dirfd: Fd, name: &str) -> io::Result<Vec<u8>> {
    let fd = fs::openat(
        dirfd,
        name,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )?;
    read_all(fd.as_fd())
}

pub fn read_all(fd: BorrowedFd<'_>) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut f = std::fs::File::from(fd.try_clone_to_owned()?);
    let mut v = Vec::new();
    f.read_to_end(&mut v)?;
    Ok(v)
}

/// A name unique to this process for temporary files.
pub fn temp_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    // The pid is read once: one getpid per object showed in pull profiles.
    static PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let pid = *PID.get_or_init(std::process::id);
    format!("{prefix}{pid}-{n}-{nanos:x}")
}

/// Write a small file atomically: temp file, optional fsync, rename.
pub fn write_atomic_at<Fd: AsFd>(dirfd: Fd, name: &str, data: &[u8], sync: bool) -> io::Result<()> {
    use std::io::Write;
    let dirfd = dirfd.as_fd();
    let tmp = temp_name(".tmp-");
    let fd = fs::openat(
        dirfd,
        &tmp,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )?;
    let mut f = std::fs::File::from(fd);
    let res = f
        .write_all(data)
        .and_then(|_| if sync { f.sync_all() } else { Ok(()) });
    if let Err(e) = res.and_then(|_| Ok(fs::renameat(dirfd, &tmp, dirfd, name)?)) {
        let _ = fs::unlinkat(dirfd, &tmp, AtFlags::empty());
        return Err(e);
    }
    if sync {
        fs::fsync(dirfd)?;
    }
    Ok(())
}

/// Point symlink `name` at `target`, replacing a file or symlink already
/// there in one step (a temporary link renamed over it): a reader sees the
/// old link or the new one, never none. The one way the sysroot (boot and
/// loader links) and compose (links in a tree) replace a symlink.
pub fn symlink_replace_at<Fd: AsFd>(dirfd: Fd, target: &str, name: &str) -> io::Result<()> {
    let dirfd = dirfd.as_fd();
    let tmp = temp_name(".oxtree-link-");
    fs::symlinkat(target, dirfd, tmp.as_str())?;
    if let Err(e) = fs::renameat(dirfd, tmp.as_str(), dirfd, name) {
        let _ = fs::unlinkat(dirfd, tmp.as_str(), AtFlags::empty());
        return Err(e.into());
    }
    Ok(())
}

/// mkdir that treats "already exists" as success.
pub fn ensure_dir_at<Fd: AsFd>(dirfd: Fd, name: &str, mode: u32) -> io::Result<()> {
    match fs::mkdirat(dirfd, name, Mode::from_raw_mode(mode)) {
        Ok(()) | Err(Errno::EXIST) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Create every directory of a relative `a/b/c` path and open the last one.
pub fn mkdir_p_at<Fd: AsFd>(dirfd: Fd, rel: &str) -> io::Result<OwnedFd> {
    let mut cur = dirfd.as_fd().try_clone_to_owned()?;
    for comp in rel.split('/').filter(|c| !c.is_empty()) {
        ensure_dir_at(&cur, comp, 0o755)?;
        cur = open_dir_at(&cur, comp)?;
    }
    Ok(cur)
}

/// Entry names of a directory, without `.` and `..`.
pub fn list_dir<Fd: AsFd>(dirfd: Fd) -> io::Result<Vec<(String, fs::FileType)>> {
    let fd = fs::openat(dirfd, ".", DIR_FLAGS, Mode::empty())?;
    let mut out = Vec::new();
    for ent in fs::Dir::read_from(&fd)? {
        let ent = ent?;
        let name = ent.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        // ostree's words, which scripts match.
        let name = String::from_utf8(name.to_vec()).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "Invalid UTF-8 in filename {}",
                    String::from_utf8_lossy(e.as_bytes()).escape_debug()
                ),
            )
        })?;
        out.push((name, ent.file_type()));
    }
    Ok(out)
}

/// Path through /proc that names `name` inside `dirfd` without resolving
/// its last component: used for the l*xattr calls, which have no *at form.
pub fn proc_path<Fd: AsFd>(dirfd: Fd, name: &str) -> PathBuf {
    use rustix::fd::AsRawFd;
    PathBuf::from(format!(
        "/proc/self/fd/{}/{}",
        dirfd.as_fd().as_raw_fd(),
        name
    ))
}

fn parse_list(buf: &[u8]) -> Vec<Vec<u8>> {
    buf.split(|b| *b == 0)
        .filter(|n| !n.is_empty())
        .map(|n| n.to_vec())
        .collect()
}

/// All xattrs of an open file or directory.
pub fn fd_xattrs<Fd: AsFd>(fd: Fd) -> io::Result<Xattrs> {
    let fd = fd.as_fd();
    all_xattrs(
        |buf| fs::flistxattr(fd, buf),
        |name, buf| fs::fgetxattr(fd, name, buf),
    )
}

/// All xattrs of a path, not following a final symlink.
pub fn link_xattrs(path: &Path) -> io::Result<Xattrs> {
    all_xattrs(
        |buf| fs::llistxattr(path, buf),
        |name, buf| fs::lgetxattr(path, name, buf),
    )
}

/// The names `list` gives, each with the value `get` reads; a name
/// removed in between is left out.
fn all_xattrs(
    mut list: impl FnMut(&mut [u8]) -> rustix::io::Result<usize>,
    mut get: impl FnMut(&CStr, &mut [u8]) -> rustix::io::Result<usize>,
) -> io::Result<Xattrs> {
    let names = grow(&mut list)?;
    let mut pairs = Vec::new();
    for n in parse_list(&names) {
        let cname = std::ffi::CString::new(n.clone()).expect("no NUL in xattr name");
        match grow(|buf| get(cname.as_c_str(), buf)) {
            Ok(v) => pairs.push((n, v)),
            Err(e) if e.raw_os_error() == Some(Errno::NODATA.raw_os_error()) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Xattrs::from_pairs(pairs))
}

pub fn set_fd_xattrs<Fd: AsFd>(fd: Fd, xattrs: &Xattrs) -> io::Result<()> {
    for (n, v) in xattrs.iter() {
        let cname = std::ffi::CString::new(n).map_err(|_| io::ErrorKind::InvalidData)?;
        fs::fsetxattr(fd.as_fd(), cname.as_c_str(), v, XattrFlags::empty())?;
    }
    Ok(())
}

pub fn set_link_xattrs(path: &Path, xattrs: &Xattrs) -> io::Result<()> {
    for (n, v) in xattrs.iter() {
        let cname = std::ffi::CString::new(n).map_err(|_| io::ErrorKind::InvalidData)?;
        fs::lsetxattr(path, cname.as_c_str(), v, XattrFlags::empty())?;
    }
    Ok(())
}

pub fn get_fd_xattr<Fd: AsFd>(fd: Fd, name: &CStr) -> io::Result<Option<Vec<u8>>> {
    match grow(|buf| fs::fgetxattr(fd.as_fd(), name, buf)) {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.raw_os_error() == Some(Errno::NODATA.raw_os_error()) => Ok(None),
        Err(e) => Err(e),
    }
}

/// One xattr of a path, not following a final symlink.
pub fn get_link_xattr(path: &Path, name: &CStr) -> io::Result<Option<Vec<u8>>> {
    match grow(|buf| fs::lgetxattr(path, name, buf)) {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.raw_os_error() == Some(Errno::NODATA.raw_os_error()) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Call a size-probing syscall (listxattr/getxattr) with a growing buffer.
fn grow(mut f: impl FnMut(&mut [u8]) -> rustix::io::Result<usize>) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    loop {
        match f(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Err(Errno::RANGE) => buf.resize(buf.len() * 4, 0),
            Err(Errno::NOTSUP) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        }
        if buf.len() > 64 << 20 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "xattr too large",
            ));
        }
    }
}

/// Set `fd`'s mtime to 0 (the epoch), leaving its atime: what ostree gives
/// bare objects and the directories a checkout creates.
pub fn zero_mtime<Fd: AsFd>(fd: Fd) -> io::Result<()> {
    use fs::{Timespec, Timestamps, UTIME_OMIT};
    let ts = Timestamps {
        last_access: Timespec {
            tv_sec: 0,
            tv_nsec: UTIME_OMIT,
        },
        last_modification: Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
    };
    fs::futimens(fd, &ts).map_err(io::Error::from)
}

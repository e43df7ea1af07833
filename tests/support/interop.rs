//! Shared helpers for the interop suite (included with `#[path]` as
//! `common`): run the built `oxtree` and the real
//! `ostree` against each other, build odd trees, compare trees on disk.
//! Its runner (`run`, `ok`, `Out`) is its own, not support/cli.rs's: it
//! names a `Tool` rather than a binary so that self-check mode can put
//! ostree in oxtree's place, and it times every command out.
//!
//! Self-check mode: `OXTREE_TEST_BIN=/usr/bin/ostree cargo test` runs every
//! test with ostree standing in for oxtree. Everything that asserts "oxtree
//! behaves like ostree" must pass then; tests that hold oxtree to a stricter
//! rule than ostree 2022.7 follows (see `stricter_than_ostree`) return early.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fmt;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const MODES: [&str; 4] = ["bare", "bare-user", "bare-user-only", "archive"];

/// Fixed commit options used everywhere so both tools produce the same bytes.
pub const TS: &str = "--timestamp=2020-01-01";

// ---------------------------------------------------------------- binaries

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    Ox,
    Ost,
}

pub use Tool::{Ost, Ox};

impl Tool {
    pub fn bin(self) -> PathBuf {
        match self {
            Ox => match std::env::var_os("OXTREE_TEST_BIN") {
                Some(p) => PathBuf::from(p),
                None => PathBuf::from(env!("CARGO_BIN_EXE_oxtree")),
            },
            Ost => ostree_bin(),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Ox => "oxtree",
            Ost => "ostree",
        }
    }

    pub fn other(self) -> Tool {
        match self {
            Ox => Ost,
            Ost => Ox,
        }
    }
}

/// The real ostree CLI. Missing ostree is a hard failure: this suite exists
/// to compare against it.
pub fn ostree_bin() -> PathBuf {
    let candidates = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    for dir in [PathBuf::from("/usr/bin")].into_iter().chain(candidates) {
        let p = dir.join("ostree");
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "the real `ostree` CLI was not found (looked in /usr/bin and $PATH). \
         The interop tests compare oxtree against it and cannot run without it: \
         install it with `apt-get install -y ostree` (see README)"
    );
}

/// True when ostree itself stands in for oxtree (self-check mode).
pub fn self_check() -> bool {
    std::env::var_os("OXTREE_TEST_BIN").is_some()
}

/// Call at the top of a test that requires oxtree to be stricter than
/// ostree 2022.7 is (which the test documents). Returns true when the test
/// should stop because ostree stands in for oxtree.
pub fn stricter_than_ostree(why: &str) -> bool {
    // OXTREE_TEST_STRICT=1 runs them anyway (to watch ostree fail them).
    if self_check() && std::env::var_os("OXTREE_TEST_STRICT").is_none() {
        eprintln!("self-check mode: ostree is not held to oxtree's stricter rule: {why}");
        return true;
    }
    false
}

// ---------------------------------------------------------------- running

pub struct Out {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub desc: String,
}

impl Out {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// Assert exit 0, return self.
    #[track_caller]
    pub fn ok(self) -> Out {
        assert!(
            self.status.success(),
            "command failed ({}): {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status,
            self.desc,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Assert non-zero exit (and no crash by signal), return self.
    #[track_caller]
    pub fn fails(self) -> Out {
        assert!(
            !self.status.success(),
            "command unexpectedly succeeded: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.desc,
            self.stdout,
            self.stderr
        );
        assert!(
            self.status.code().is_some(),
            "command killed by a signal ({}) instead of failing cleanly: {}\n--- stderr ---\n{}",
            self.status,
            self.desc,
            self.stderr
        );
        self
    }

    /// stdout and stderr together (for "the message names X" checks).
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

impl fmt::Debug for Out {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} => {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.desc, self.status, self.stdout, self.stderr
        )
    }
}

const TIMEOUT: Duration = Duration::from_secs(180);

/// Run `tool args…` (no implicit --repo) with a timeout.
pub fn run<S: AsRef<OsStr>>(tool: Tool, args: &[S]) -> Out {
    let mut cmd = Command::new(tool.bin());
    cmd.args(args);
    run_cmd(cmd, tool.name())
}

/// Run `tool --repo=REPO args…`.
pub fn run_repo<S: AsRef<OsStr>>(tool: Tool, repo: &Path, args: &[S]) -> Out {
    let mut cmd = Command::new(tool.bin());
    let mut r = std::ffi::OsString::from("--repo=");
    r.push(repo.as_os_str());
    cmd.arg(r).args(args);
    run_cmd(cmd, tool.name())
}

/// `tool --repo=REPO args…`, asserting success; returns stdout.
#[track_caller]
pub fn ok<S: AsRef<OsStr>>(tool: Tool, repo: &Path, args: &[S]) -> String {
    run_repo(tool, repo, args).ok().stdout
}

pub fn run_cmd(mut cmd: Command, name: &str) -> Out {
    let desc = format!(
        "{} {}",
        name,
        cmd.get_args()
            .map(|a| shell_quote(&a.to_string_lossy()))
            .collect::<Vec<_>>()
            .join(" ")
    );
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // No locale surprises in messages or sort orders.
    cmd.env("LC_ALL", "C.UTF-8");
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {desc}: {e}"));
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t1 = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = so.read_to_end(&mut v);
        v
    });
    let t2 = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = se.read_to_end(&mut v);
        v
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("timed out after {TIMEOUT:?}: {desc}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stdout = String::from_utf8_lossy(&t1.join().unwrap()).into_owned();
    let stderr = String::from_utf8_lossy(&t2.join().unwrap()).into_owned();
    Out {
        status,
        stdout,
        stderr,
        desc,
    }
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_=./:,@^+".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Run a plain system command (tar, cp …; not a shell script: that is
/// support/cli.rs's `sh`), asserting success.
#[track_caller]
pub fn system<S: AsRef<OsStr>>(prog: &str, args: &[S]) -> Out {
    let mut cmd = Command::new(prog);
    cmd.args(args);
    run_cmd(cmd, prog).ok()
}

/// A scratch directory on disk (/var/tmp), removed on drop.
pub fn scratch() -> tempfile::TempDir {
    fs::create_dir_all("/var/tmp").unwrap();
    tempfile::Builder::new()
        .prefix("oxtree-test-")
        .tempdir_in("/var/tmp")
        .expect("tempdir in /var/tmp")
}

/// `init --mode=MODE` a new repository at `path` with `tool`.
#[track_caller]
pub fn init_repo(tool: Tool, path: &Path, mode: &str) -> PathBuf {
    ok(tool, path, &["init", &format!("--mode={mode}")]);
    assert!(
        path.join("objects").is_dir() && path.join("config").is_file(),
        "{} init --mode={mode} did not create objects/ and config in {}",
        tool.name(),
        path.display()
    );
    path.to_path_buf()
}

/// The single 64-hex checksum a `commit` prints.
#[track_caller]
pub fn checksum_line(out: &str) -> String {
    let t = out.trim();
    assert!(
        t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()),
        "expected a single checksum line, got {out:?}"
    );
    t.to_string()
}

/// Commit `tree` with the fixed options, return the checksum.
#[track_caller]
pub fn commit(tool: Tool, repo: &Path, branch: &str, tree: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "commit".to_string(),
        "-b".into(),
        branch.into(),
        TS.into(),
        "-s".into(),
        "subj".into(),
        "-m".into(),
        "body".into(),
        "--add-metadata-string=version=1.0".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push(tree.to_str().unwrap().to_string());
    checksum_line(&ok(tool, repo, &args))
}

/// Copy a directory tree preserving everything (`cp -a`).
pub fn cp_a(from: &Path, to: &Path) {
    system("cp", &[OsStr::new("-a"), from.as_os_str(), to.as_os_str()]);
}

/// All paths under `repo/objects`, relative, sorted.
pub fn object_paths(repo: &Path) -> Vec<String> {
    let mut v = Vec::new();
    let objs = repo.join("objects");
    for d in fs::read_dir(&objs).unwrap() {
        let d = d.unwrap();
        if !d.file_type().unwrap().is_dir() {
            continue;
        }
        for f in fs::read_dir(d.path()).unwrap() {
            let f = f.unwrap();
            v.push(format!(
                "{}/{}",
                d.file_name().to_string_lossy(),
                f.file_name().to_string_lossy()
            ));
        }
    }
    v.sort();
    v
}

/// Two sorted path lists must be equal; on failure show only the differences.
#[track_caller]
pub fn assert_same_paths(expected_ostree: &[String], actual_oxtree: &[String], what: &str) {
    if expected_ostree != actual_oxtree {
        let only_o: Vec<_> = expected_ostree
            .iter()
            .filter(|p| !actual_oxtree.contains(p))
            .collect();
        let only_x: Vec<_> = actual_oxtree
            .iter()
            .filter(|p| !expected_ostree.contains(p))
            .collect();
        panic!(
            "{what}: paths differ\n  only with ostree: {only_o:?}\n  only with oxtree: {only_x:?}"
        );
    }
}

/// Path of a loose object.
pub fn object_path(repo: &Path, checksum: &str, ext: &str) -> PathBuf {
    repo.join("objects")
        .join(&checksum[..2])
        .join(format!("{}.{ext}", &checksum[2..]))
}

/// Parse `ls -C -d` of one path: (kind char, checksum fields).
/// Files: `-00644 0 0 SIZE CONTENT /path`; dirs: `d00755 0 0 0 TREE META /path`.
#[track_caller]
pub fn ls_checksums(repo: &Path, rev: &str, path: &str) -> Vec<String> {
    let out = ok(Ost, repo, &["ls", "-C", "-d", rev, path]);
    out.split_whitespace()
        .filter(|w| w.len() == 64 && w.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(|s| s.to_string())
        .collect()
}

/// Unified message for two outputs that should be identical.
#[track_caller]
pub fn assert_same_output(what: &str, expected_ostree: &str, actual_oxtree: &str) {
    if expected_ostree != actual_oxtree {
        let e: Vec<&str> = expected_ostree.lines().collect();
        let a: Vec<&str> = actual_oxtree.lines().collect();
        let mut msg = String::new();
        let n = e.len().max(a.len());
        let mut shown = 0;
        for i in 0..n {
            let (x, y) = (e.get(i), a.get(i));
            if x != y {
                msg += &format!("line {}:\n  ostree: {:?}\n  oxtree: {:?}\n", i + 1, x, y);
                shown += 1;
                if shown > 15 {
                    msg += "  …\n";
                    break;
                }
            }
        }
        panic!(
            "{what}: oxtree output differs from ostree\n{msg}--- ostree (full) ---\n{expected_ostree}\n--- oxtree (full) ---\n{actual_oxtree}"
        );
    }
}

// ---------------------------------------------------------------- xattrs

pub fn set_xattr(path: &Path, name: &str, value: &[u8]) {
    rustix::fs::lsetxattr(path, name, value, rustix::fs::XattrFlags::empty())
        .unwrap_or_else(|e| panic!("setxattr {name} on {}: {e}", path.display()));
}

pub fn get_xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 65536];
    match rustix::fs::lgetxattr(path, name, &mut buf[..]) {
        Ok(n) => {
            buf.truncate(n);
            Some(buf)
        }
        Err(_) => None,
    }
}

/// All xattrs of `path` (not following symlinks) whose name starts with `prefix`.
pub fn list_xattrs(path: &Path, prefix: &str) -> Vec<(String, Vec<u8>)> {
    let mut buf = vec![0u8; 65536];
    let n = match rustix::fs::llistxattr(path, &mut buf[..]) {
        Ok(n) => n,
        Err(_) => return vec![],
    };
    let mut v: Vec<(String, Vec<u8>)> = buf[..n]
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .filter(|s| s.starts_with(prefix))
        .map(|name| {
            let val = get_xattr(path, &name).unwrap_or_default();
            (name, val)
        })
        .collect();
    v.sort();
    v
}

// ---------------------------------------------------------------- trees

/// Deterministic pseudo-random bytes (xorshift64*).
pub fn prng_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut s = seed | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        v.extend_from_slice(&s.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    v.truncate(len);
    v
}

fn write(p: &Path, data: &[u8]) {
    let mut f = fs::File::create(p).unwrap_or_else(|e| panic!("create {}: {e}", p.display()));
    f.write_all(data).unwrap();
}

fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

/// Name with non-ASCII characters and spaces.
pub const UNICODE_NAME: &str = "ünïcødé ✓";

/// The size of the big pseudo-random file in the odd tree.
pub const BIG_SIZE: usize = 24 * 1024 * 1024;

/// The odd tree: every kind of entry ostree must round-trip. `big` adds the
/// 24 MiB pseudo-random file `big.bin`. `trusted` adds a trusted.* xattr.
///
/// Layout (root mode 0755, owned by root):
///   suid 4755, sgid 2755, priv 0600, zero 0000, world 0777, exec 0755,
///   owned (1234:5678), empty, hl1 == hl2 == sub/hl3 (hardlinks),
///   rel -> ../x, tosuid -> suid, abs -> /etc/passwd, dang -> nowhere,
///   ownedlink -> suid (lchown 1234:5678),
///   "ünïcødé ✓", "with space", xf (user.foo, user.bin, opt. trusted.t),
///   ro/ 0555 (file inside), pd/ 0700, sticky/ 1777, emptydir/,
///   xd/ (user.d), odir/ 4321:8765 0750, "dir with space ü"/file,
///   sub/deeper/deepest/leaf, sub/payload (8 KiB), big.bin (opt.)
pub fn odd_tree(root: &Path, big: bool) {
    odd_tree_opts(root, big, true)
}

pub fn odd_tree_opts(root: &Path, big: bool, trusted: bool) {
    fs::create_dir_all(root).unwrap();
    let p = |s: &str| root.join(s);
    write(&p("suid"), b"setuid program\n");
    write(&p("sgid"), b"setgid program\n");
    write(&p("priv"), b"private\n");
    write(&p("zero"), b"no permissions at all\n");
    write(&p("world"), b"world writable\n");
    write(&p("exec"), b"#!/bin/sh\necho hi\n");
    write(&p("owned"), b"owned by someone else\n");
    write(&p("empty"), b"");
    write(&p("hl1"), b"hardlinked content\n");
    fs::hard_link(p("hl1"), p("hl2")).unwrap();
    write(&p(UNICODE_NAME), "ünïcødé content ✓\n".as_bytes());
    write(&p("with space"), b"spaces\n");
    write(&p("xf"), b"file with xattrs\n");
    std::os::unix::fs::symlink("../x", p("rel")).unwrap();
    std::os::unix::fs::symlink("suid", p("tosuid")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", p("abs")).unwrap();
    std::os::unix::fs::symlink("nowhere", p("dang")).unwrap();
    std::os::unix::fs::symlink("suid", p("ownedlink")).unwrap();
    std::os::unix::fs::lchown(p("ownedlink"), Some(1234), Some(5678)).unwrap();

    for d in [
        "ro",
        "pd",
        "sticky",
        "emptydir",
        "xd",
        "odir",
        "dir with space ü",
        "sub/deeper/deepest",
    ] {
        fs::create_dir_all(p(d)).unwrap();
    }
    write(&p("ro/inside"), b"inside a read-only dir\n");
    write(&p("pd/secret"), b"inside a private dir\n");
    write(&p("xd/plain"), b"plain\n");
    write(&p("odir/f"), b"in a dir owned by others\n");
    write(&p("dir with space ü/file"), b"nested unicode\n");
    write(&p("sub/deeper/deepest/leaf"), b"leaf\n");
    write(&p("sub/payload"), &prng_bytes(7, 8192));
    write(&p("sub/deeper/exe"), b"#!/bin/sh\n");
    fs::hard_link(p("hl1"), p("sub/hl3")).unwrap();
    if big {
        write(&p("big.bin"), &prng_bytes(0x0b16_f11e, BIG_SIZE));
    }

    set_xattr(&p("xf"), "user.foo", b"bar");
    set_xattr(&p("xf"), "user.bin", &[0, 1, 2, 0xff, b'\n']);
    if trusted {
        set_xattr(&p("xf"), "trusted.t", b"tv");
    }
    set_xattr(&p("xd"), "user.d", b"dv");

    // chown before chmod: chown clears setuid/setgid.
    std::os::unix::fs::chown(p("owned"), Some(1234), Some(5678)).unwrap();
    std::os::unix::fs::chown(p("odir"), Some(4321), Some(8765)).unwrap();
    std::os::unix::fs::chown(p("odir/f"), Some(4321), Some(8765)).unwrap();

    for (f, m) in [
        ("suid", 0o4755),
        ("sgid", 0o2755),
        ("priv", 0o600),
        ("zero", 0o000),
        ("world", 0o777),
        ("exec", 0o755),
        ("owned", 0o644),
        ("sub/deeper/exe", 0o755),
        ("ro", 0o555),
        ("pd", 0o700),
        ("sticky", 0o1777),
        ("odir", 0o750),
        ("emptydir", 0o755),
        ("xd", 0o755),
        ("dir with space ü", 0o755),
        ("sub", 0o755),
        ("sub/deeper", 0o755),
        ("sub/deeper/deepest", 0o755),
    ] {
        chmod(&p(f), m);
    }
    chmod(root, 0o755);
}

/// A small ordinary tree: a few files and dirs.
pub fn simple_tree(root: &Path, flavour: &str) {
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::create_dir_all(root.join("usr/bin")).unwrap();
    fs::create_dir_all(root.join("usr/share/doc")).unwrap();
    write(&root.join("etc/passwd"), b"root:x:0:0::/root:/bin/sh\n");
    write(&root.join("etc/hostname"), flavour.as_bytes());
    write(&root.join("usr/bin/tool"), b"#!/bin/sh\necho tool\n");
    chmod(&root.join("usr/bin/tool"), 0o755);
    write(&root.join("usr/share/doc/README"), &prng_bytes(3, 5000));
    std::os::unix::fs::symlink("usr/bin", root.join("bin")).unwrap();
    chmod(root, 0o755);
}

/// `n` small files spread over directories, plus `bigs` files of `big_len`.
pub fn large_tree(root: &Path, n: usize, bigs: usize, big_len: usize) {
    fs::create_dir_all(root).unwrap();
    for i in 0..n {
        let d = root.join(format!("d{:02}/e{}", i % 50, i % 7));
        fs::create_dir_all(&d).unwrap();
        let len = 64 + (i * 37) % 3000;
        write(&d.join(format!("f{i:05}")), &prng_bytes(i as u64 + 11, len));
    }
    for b in 0..bigs {
        write(
            &root.join(format!("big{b}.bin")),
            &prng_bytes(1000 + b as u64, big_len),
        );
    }
    chmod(root, 0o755);
}

// ---------------------------------------------------------------- comparer

#[derive(Clone, Copy, Debug)]
pub struct Cmp {
    /// Compare uid/gid.
    pub owners: bool,
    /// Compare user.* xattrs.
    pub xattrs: bool,
    /// Compare which entries share an inode (within the tree).
    pub hardlinks: bool,
    /// Compare whether mtime == 0 (ostree checkouts set it on dirs and on
    /// files hardlinked from bare objects).
    pub mtime_zero: bool,
}

impl Cmp {
    /// Everything: for two checkouts that should be indistinguishable.
    pub const EXACT: Cmp = Cmp {
        owners: true,
        xattrs: true,
        hardlinks: true,
        mtime_zero: true,
    };
    /// Content, types, modes, owners, xattrs; not link structure or times:
    /// for "checkout equals the source tree".
    pub const CONTENT: Cmp = Cmp {
        owners: true,
        xattrs: true,
        hardlinks: false,
        mtime_zero: false,
    };
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub kind: char,
    /// Permission bits including setuid/setgid/sticky.
    pub perm: u32,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: u64,
    pub content: Option<String>,
    pub target: Option<String>,
    pub xattrs: Vec<(String, Vec<u8>)>,
    pub mtime_zero: Option<bool>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub entries: BTreeMap<String, Entry>,
    /// Groups (size > 1) of paths sharing one inode, each sorted.
    pub links: Vec<Vec<String>>,
}

fn hash_file(p: &Path) -> String {
    let mut f = fs::File::open(p).unwrap_or_else(|e| panic!("open {}: {e}", p.display()));
    let mut h = oxtree_object::Hasher::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    h.finish().to_hex()
}

/// Walk `root` (included, as "/") and record every entry.
pub fn snapshot(root: &Path, cmp: Cmp) -> Snapshot {
    let mut entries = BTreeMap::new();
    let mut inodes: BTreeMap<(u64, u64), Vec<String>> = BTreeMap::new();
    fn walk(
        root: &Path,
        rel: &str,
        cmp: Cmp,
        entries: &mut BTreeMap<String, Entry>,
        inodes: &mut BTreeMap<(u64, u64), Vec<String>>,
    ) {
        let p = if rel == "/" {
            root.to_path_buf()
        } else {
            root.join(&rel[1..])
        };
        let md = fs::symlink_metadata(&p).unwrap_or_else(|e| panic!("lstat {}: {e}", p.display()));
        let ft = md.file_type();
        let kind = if ft.is_dir() {
            'd'
        } else if ft.is_symlink() {
            'l'
        } else if ft.is_file() {
            '-'
        } else {
            '?'
        };
        let e = Entry {
            kind,
            perm: if kind == 'l' { 0 } else { md.mode() & 0o7777 },
            uid: cmp.owners.then_some(md.uid()),
            gid: cmp.owners.then_some(md.gid()),
            size: if kind == '-' || kind == 'l' {
                md.len()
            } else {
                0
            },
            content: (kind == '-').then(|| hash_file(&p)),
            target: (kind == 'l')
                .then(|| fs::read_link(&p).unwrap().to_string_lossy().into_owned()),
            xattrs: if cmp.xattrs {
                list_xattrs(&p, "user.")
            } else {
                vec![]
            },
            mtime_zero: (cmp.mtime_zero && kind != 'l').then_some(md.mtime() == 0),
        };
        if kind == '-' && cmp.hardlinks {
            inodes
                .entry((md.dev(), md.ino()))
                .or_default()
                .push(rel.to_string());
        }
        entries.insert(rel.to_string(), e);
        if kind == 'd' {
            let mut names: Vec<_> = fs::read_dir(&p)
                .unwrap()
                .map(|d| d.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            for n in names {
                let child = if rel == "/" {
                    format!("/{n}")
                } else {
                    format!("{rel}/{n}")
                };
                walk(root, &child, cmp, entries, inodes);
            }
        }
    }
    walk(root, "/", cmp, &mut entries, &mut inodes);
    let mut links: Vec<Vec<String>> = inodes
        .into_values()
        .filter(|v| v.len() > 1)
        .map(|mut v| {
            v.sort();
            v
        })
        .collect();
    links.sort();
    Snapshot { entries, links }
}

/// Assert two trees are equal under `cmp`; `expected` is the reference
/// (ostree's result or the source tree), `actual` is what is under test.
#[track_caller]
pub fn assert_trees_eq(expected: &Path, actual: &Path, cmp: Cmp, what: &str) {
    let e = snapshot(expected, cmp);
    let a = snapshot(actual, cmp);
    if e == a {
        return;
    }
    let mut msg = String::new();
    let mut n = 0;
    for (k, ev) in &e.entries {
        match a.entries.get(k) {
            None => msg += &format!("  missing in actual: {k:?} ({ev:?})\n"),
            Some(av) if av != ev => {
                msg += &format!("  {k:?}:\n    expected {ev:?}\n    actual   {av:?}\n")
            }
            _ => continue,
        }
        n += 1;
        if n > 25 {
            msg += "  …\n";
            break;
        }
    }
    for (k, av) in &a.entries {
        if !e.entries.contains_key(k) {
            msg += &format!("  extra in actual: {k:?} ({av:?})\n");
        }
    }
    if e.links != a.links {
        msg += &format!(
            "  hardlink groups differ:\n    expected {:?}\n    actual   {:?}\n",
            e.links, a.links
        );
    }
    panic!(
        "{what}: trees differ\n  expected: {}\n  actual:   {}\n{msg}",
        expected.display(),
        actual.display()
    );
}

/// Sorted lines (for outputs whose order ostree leaves to a hash table).
pub fn sorted_lines(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.lines().map(|l| l.to_string()).collect();
    v.sort();
    v
}

/// List of all paths under `dir` (relative), for "nothing was written here".
pub fn listing(dir: &Path) -> Vec<String> {
    let mut v = Vec::new();
    fn walk(base: &Path, d: &Path, v: &mut Vec<String>) {
        let Ok(rd) = fs::read_dir(d) else { return };
        for e in rd {
            let e = e.unwrap();
            let p = e.path();
            v.push(p.strip_prefix(base).unwrap().to_string_lossy().into_owned());
            if e.file_type().unwrap().is_dir() {
                walk(base, &p, v);
            }
        }
    }
    walk(dir, dir, &mut v);
    v.sort();
    v
}

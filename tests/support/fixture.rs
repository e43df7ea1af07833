//! Expensive test fixtures (composed bases, disk images) built once and
//! shared by every test binary and every later run, keyed by a hash of their
//! inputs. Included with `#[path]`:
//!
//! ```ignore
//! #[path = "support/fixture.rs"]
//! mod fixture;
//! let dir = fixture::cached("stock-minbase", &[SCRIPT.as_bytes()], |tmp| build_into(tmp));
//! ```
//!
//! A fixture lives in `ROOT/<name>-<sha256 of the inputs>/` (ROOT is
//! `/var/cache/oxtree-tests/fixtures`, or `$OXTREE_TEST_FIXTURES`). It is
//! built under an exclusive `flock` on `ROOT/<name>-<hash>.lock`, so a
//! second test binary (or thread) asking for it waits instead of building it
//! twice; it is built into `ROOT/.<name>-<hash>.tmp` and renamed into place
//! only when the build returned, so a build that panicked or was killed
//! leaves nothing that looks complete (the next caller removes the
//! leftover and builds again). Put everything the result depends on into
//! the inputs (treefile text, scripts, a version string): changing any of
//! them builds a new fixture next to the old one.

#![allow(dead_code)]

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

pub const DEFAULT_ROOT: &str = "/var/cache/oxtree-tests/fixtures";

/// Where fixtures are kept.
pub fn root() -> PathBuf {
    std::env::var_os("OXTREE_TEST_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT))
}

/// sha256 (hex) of the inputs, each length-prefixed so that `["ab", "c"]`
/// and `["a", "bc"]` differ. sha256sum(1) keeps the test crates free of a
/// hashing dependency.
pub fn key(inputs: &[&[u8]]) -> String {
    let mut framed = Vec::new();
    for i in inputs {
        framed.extend_from_slice(&(i.len() as u64).to_le_bytes());
        framed.extend_from_slice(i);
    }
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum (coreutils) is required");
    // sha256sum reads all of stdin before writing: no deadlock.
    child.stdin.take().unwrap().write_all(&framed).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "sha256sum failed");
    String::from_utf8_lossy(&out.stdout)[..64].to_string()
}

/// The directory of fixture `name` for `inputs`, built by `build` (into an
/// empty directory it is given) the first time anyone asks. `build` panics
/// on failure; nothing is kept then.
pub fn cached(name: &str, inputs: &[&[u8]], build: impl FnOnce(&Path)) -> PathBuf {
    cached_in(&root(), name, inputs, build)
}

/// `cached` with the fixtures kept under `root`.
pub fn cached_in(root: &Path, name: &str, inputs: &[&[u8]], build: impl FnOnce(&Path)) -> PathBuf {
    assert!(
        !name.is_empty() && !name.contains('/') && !name.starts_with('.'),
        "bad fixture name {name:?}"
    );
    std::fs::create_dir_all(root)
        .unwrap_or_else(|e| panic!("creating fixture cache {}: {e}", root.display()));
    let id = format!("{name}-{}", key(inputs));
    let dir = root.join(&id);
    // Fast path: a complete fixture is only ever made visible by rename.
    if dir.is_dir() {
        mark_used(&dir);
        return dir;
    }
    let _lock = Lock::exclusive(&root.join(format!("{id}.lock")));
    if dir.is_dir() {
        // Someone else built it while we waited.
        return dir;
    }
    let tmp = root.join(format!(".{id}.tmp"));
    if tmp.exists() {
        eprintln!(
            "fixture {id}: removing an incomplete earlier build at {}",
            tmp.display()
        );
        remove_all(&tmp);
    }
    std::fs::create_dir(&tmp).unwrap();
    eprintln!("fixture {id}: building in {}", tmp.display());
    let t = Instant::now();
    let cleanup = RemoveOnDrop(tmp.clone());
    build(&tmp);
    // The build's files reach the disk before the name says "complete".
    let _ = Command::new("sync").arg("-f").arg(&tmp).status();
    std::fs::rename(&tmp, &dir).unwrap();
    std::mem::forget(cleanup);
    eprintln!("fixture {id}: built in {:.0?}", t.elapsed());
    evict_unused(root, name, &id);
    dir
}

/// Fixtures whose inputs changed are never asked for again: those of the
/// same name unused for this long are removed when a new one is built,
/// so the cache holds about one per name (a host base is 350 MB).
const UNUSED_FOR: std::time::Duration = std::time::Duration::from_secs(2 * 24 * 3600);

/// A fixture's mtime says when it was last asked for.
fn mark_used(dir: &Path) {
    if let Ok(f) = File::open(dir) {
        let _ = f.set_modified(std::time::SystemTime::now());
    }
}

fn evict_unused(root: &Path, name: &str, keep: &str) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    let prefix = format!("{name}-");
    for e in entries.flatten() {
        let id = e.file_name().to_string_lossy().into_owned();
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > UNUSED_FOR);
        if id.starts_with(&prefix) && id != keep && !id.ends_with(".lock") && old {
            eprintln!("fixture {id}: unused for two days, removing it");
            remove_all(&e.path());
            let _ = std::fs::remove_file(root.join(format!("{id}.lock")));
        }
    }
}

/// `rm -rf`, which also copes with read-only directories a build made.
fn remove_all(p: &Path) {
    let _ = Command::new("rm").arg("-rf").arg(p).status();
}

struct RemoveOnDrop(PathBuf);
impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        remove_all(&self.0);
    }
}

/// An exclusive flock(2), released when dropped (the file closes). Each
/// call opens its own file description, so threads of one process exclude
/// each other too.
pub struct Lock(File);
impl Lock {
    pub fn exclusive(path: &Path) -> Lock {
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .unwrap_or_else(|e| panic!("opening lock {}: {e}", path.display()));
        if rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
            eprintln!(
                "waiting for {} (another test is building this fixture)",
                path.display()
            );
            rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)
                .unwrap_or_else(|e| panic!("flock {}: {e}", path.display()));
        }
        Lock(f)
    }
}

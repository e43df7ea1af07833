//! Running out of disk: a commit that does not fit fails with a clear error
//! before the filesystem is full, moves no ref, leaves no staging debris, and
//! the repository still passes the real `ostree fsck`.
//!
//! The small filesystem is a tmpfs mounted inside a private mount namespace
//! (`unshare -m`), so it vanishes with the test and never touches the host.

use std::process::Command;

#[path = "support/ns.rs"]
mod ns;
use ns::require;

#[test]
fn full_disk_commit_fails_cleanly() {
    require("ostree");
    require("unshare");
    let ox = env!("CARGO_BIN_EXE_oxtree");
    let scratch = tempfile::Builder::new()
        .prefix("oxtree-full-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let d = scratch.path().display();
    // Everything that needs the small filesystem runs in one namespaced shell;
    // its output is the evidence checked below.
    let script = format!(
        r#"
set -u
mkdir -p {d}/mnt {d}/tree
mount -t tmpfs -o size=8m tmpfs {d}/mnt || exit 90
R={d}/mnt/repo
{ox} --repo=$R init --mode=archive || exit 91
head -c 3000000 /dev/urandom > {d}/tree/a; echo small > {d}/tree/s
FIRST=$({ox} --repo=$R commit -b main {d}/tree) || exit 92
echo "first=$FIRST"
head -c 7000000 /dev/urandom > {d}/tree/b
{ox} --repo=$R commit -b main {d}/tree 2>{d}/err1; echo "rc1=$?"
# Without the reserve the write still stops before ENOSPC corrupts anything.
{ox} --repo=$R config set core.min-free-space-percent 0
{ox} --repo=$R commit -b main {d}/tree 2>{d}/err2; echo "rc2=$?"
echo "ref=$({ox} --repo=$R rev-parse main)"
echo "tmp=$(ls $R/tmp | tr '\n' ' ')"
ostree --repo=$R fsck >/dev/null 2>{d}/fsckerr; echo "ostree_fsck=$?"
{ox} --repo=$R fsck >/dev/null 2>&1; echo "oxtree_fsck=$?"
{ox} --repo=$R checkout main {d}/mnt/co 2>/dev/null; cmp {d}/tree/a {d}/mnt/co/a && echo checkout=ok
"#
    );
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "script failed: {stdout}\n{stderr}");
    let get = |k: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("no {k} in output:\n{stdout}\n{stderr}"))
            .to_string()
    };
    let first = get("first");
    assert_eq!(first.len(), 64, "{stdout}");
    assert_eq!(get("rc1"), "1");
    assert_eq!(get("rc2"), "1");
    let err1 = std::fs::read_to_string(scratch.path().join("err1")).unwrap();
    assert!(err1.contains("not enough free space"), "{err1}");
    assert_eq!(get("ref"), first, "the ref must not move");
    assert_eq!(get("tmp").trim(), "cache", "staging left behind");
    assert_eq!(get("ostree_fsck"), "0", "{stdout}");
    assert_eq!(get("oxtree_fsck"), "0");
    assert_eq!(get("checkout"), "ok");
}

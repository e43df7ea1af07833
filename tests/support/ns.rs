//! Shared by the sysroot tests: tool checks, running a shell script in a
//! private mount namespace (so loop mounts vanish with it), and the shell
//! helper that checks every boot entry points at files that exist, and
//! the shell pieces support/sysroot.rs (the one loop-mounted sysroot
//! builder) puts together.

#![allow(dead_code)]

use std::process::Command;

/// Fail (never skip) when a tool the test drives is missing.
pub fn require(bin: &str) {
    let ok = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {bin} >/dev/null"))
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "{bin} is required (scripts/test.sh installs it)");
}

/// Run `script` under `unshare -m --propagation private`; asserts success
/// and returns stdout.
pub fn run_unshared(script: &str) -> String {
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "script failed: {stdout}\n{stderr}");
    assert!(!stdout.contains("entries_bad"), "{stdout}\n{stderr}");
    stdout
}

/// Shell function `check_entries LABEL`: prints `entries_ok LABEL`, or
/// `entries_bad …` (which `run_unshared` rejects) when an entry of the live
/// `$S/boot/loader` names a missing kernel, initramfs or deployment.
pub const CHECK_ENTRIES_SH: &str = r#"
check_entries() {
  for e in $S/boot/loader/entries/*.conf; do
    for k in linux initrd; do
      f=$(sed -n "s/^$k //p" $e); [ -f "$S/boot$f" ] || { echo "entries_bad $1 $e $k"; return; }
    done
    o=$(sed -n 's/^options .*ostree=\([^ ]*\).*/\1/p' $e)
    [ -d "$S$o/usr" ] || { echo "entries_bad $1 $e $o"; return; }
  done
  echo "entries_ok $1"
}
"#;

/// Shell function `loop_mount DIR SIZE`: a fresh ext4 image `DIR.img` of
/// SIZE, loop-mounted on DIR (checked to be a mount of its own), and
/// unmounted when the script exits. Every sysroot lives on one: ostree
/// freezes the filesystem that holds a sysroot's /boot, and the machine's
/// own must never be it.
pub const LOOP_MOUNT_SH: &str = r#"
_loop_mounts=""
loop_mount() {
  mkdir -p "$1" && truncate -s "$2" "$1.img" && mkfs.ext4 -q "$1.img" || exit 90
  mount -o loop "$1.img" "$1" || exit 91
  [ "$(stat -c %d "$1")" != "$(stat -c %d /)" ] || exit 91
  _loop_mounts="$1 $_loop_mounts"
  trap 'cd /; for m in $_loop_mounts; do umount -R $m 2>/dev/null || umount -l $m 2>/dev/null; done' EXIT
}
"#;

/// Shell function `fake_tree DIR`: a tiny deployable OS tree (a kernel and
/// initramfs in usr/lib/modules, os-release, passwd and hostname in
/// usr/etc, one executable).
pub const FAKE_TREE_SH: &str = r#"
fake_tree() {
  mkdir -p $1/usr/lib/modules/5.10.0-test $1/usr/etc $1/usr/bin $1/var $1/sysroot
  echo kernel-bytes > $1/usr/lib/modules/5.10.0-test/vmlinuz
  echo initramfs-bytes > $1/usr/lib/modules/5.10.0-test/initramfs.img
  printf 'NAME=Fake\nPRETTY_NAME="Fake OS 1"\n' > $1/usr/etc/os-release
  echo root:x:0:0 > $1/usr/etc/passwd; echo host > $1/usr/etc/hostname
  echo '#!/bin/sh' > $1/usr/bin/x; chmod 755 $1/usr/bin/x
}
"#;

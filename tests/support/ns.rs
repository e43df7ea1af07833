//! Shared by the sysroot tests: tool checks, running a shell script in a
//! private mount namespace (so loop mounts vanish with it), and the shell
//! helper that checks every boot entry points at files that exist.

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

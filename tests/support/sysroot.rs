//! The one loop-mounted sysroot builder of the tests, for shell scripts
//! run in a private mount namespace (ns.rs's `run_unshared`):
//!
//! - [`scratch`]: the tools checked and a scratch directory under /var/tmp;
//! - [`base`]: the sysroot alone, for tests that set it up themselves
//!   (tests/sysroot.rs, tests/sysroot_lifecycle.rs): ns.rs's pieces, an
//!   ext4 image of a given size loop-mounted at `$S` and the fake OS tree
//!   at `$T`;
//! - [`prelude`]: [`base`] (1 GiB) initialized, with the `fakeos`
//!   stateroot and a `commit VERSION DATE [BRANCH]` function committing
//!   `$T` to `$REPO` (default: the sysroot's repository), for the host and
//!   image tests. Set `IMG_SIZE` (default 1G), `OSNAME` (default fakeos)
//!   or `REPO` before it to change those; [`run_prelude`] runs a body
//!   after it.
//!
//! Variables: `OX` (oxtree), `D` (scratch dir), `S` (sysroot mount), `T`
//! (tree), `R` (run dir). Helpers: `check_entries LABEL` (ns.rs), and with
//! the prelude `ver` (versions, as ostree lists them), `same LABEL`
//! (oxtree's and ostree's `admin status` agree), `rebooted LABEL` (the
//! reboot hook `touch $D/rebooted` ran). Included with `#[path]` after
//! ns.rs.

#![allow(dead_code)]

use std::path::Path;

/// The tools the prelude runs.
pub const TOOLS: &[&str] = &["ostree", "unshare", "mkfs.ext4", "mount", "umount"];

/// A scratch directory under /var/tmp named `prefix…` (removed on drop),
/// once [`TOOLS`] and `more` are found (never skipped: missing tools fail
/// the test).
pub fn scratch(prefix: &str, more: &[&str]) -> tempfile::TempDir {
    for b in TOOLS.iter().chain(more) {
        crate::ns::require(b);
    }
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/var/tmp")
        .unwrap()
}

/// The loop-mounted sysroot alone, for scratch directory `d`: `$OX`,
/// `$D`, `$S` (a fresh ext4 image of `size` mounted there, nothing on it
/// yet), `$T` (the fake OS tree, built), `$R` (a run dir for
/// `--run-dir`), and ns.rs's shell functions.
pub fn base(d: &Path, size: &str) -> String {
    format!(
        "set -u\nOX={ox}; D={d}; S={d}/mnt; T={d}/tree; R={d}/run\nmkdir -p $R\n{loop_mount}{fake_tree}{entries}loop_mount $S {size}\nfake_tree $T\n",
        ox = env!("CARGO_BIN_EXE_oxtree"),
        d = d.display(),
        loop_mount = crate::ns::LOOP_MOUNT_SH,
        fake_tree = crate::ns::FAKE_TREE_SH,
        entries = crate::ns::CHECK_ENTRIES_SH
    )
}

/// The prelude for scratch directory `d` (on a real filesystem, e.g.
/// under /var/tmp): [`base`] with the sysroot initialized, the `fakeos`
/// stateroot, and the helpers above.
pub fn prelude(d: &Path) -> String {
    format!(
        r#"{base}REPO=${{REPO:-$S/ostree/repo}}
commit() {{ $OX --repo=$REPO commit -b ${{3:-fakeos/main}} --timestamp=$2 --add-metadata-string=version=$1 $T >/dev/null || exit 92; }}
$OX admin init-fs $S >/dev/null && $OX admin os-init --sysroot=$S ${{OSNAME:-fakeos}} >/dev/null || exit 93
ver() {{ ostree admin status --sysroot=$S | sed -n 's/    Version: //p' | tr '\n' ' '; echo; }}
same() {{ [ "$($OX admin status --sysroot=$S --run-dir=$R)" = "$(ostree admin status --sysroot=$S)" ] && echo "same $1" || {{ echo "differs $1"; $OX admin status --sysroot=$S --run-dir=$R; ostree admin status --sysroot=$S; }}; }}
rebooted() {{ if [ -e $D/rebooted ]; then echo "rebooted $1"; rm $D/rebooted; else echo "no-reboot $1"; fi; }}
"#,
        base = base(d, "${IMG_SIZE:-1G}")
    )
}

/// Run `body` after the [`prelude`] for `d` in a private mount namespace
/// (ns.rs's `run_unshared`: asserts success and good boot entries);
/// its stdout.
#[track_caller]
pub fn run_prelude(d: &Path, body: &str) -> String {
    crate::ns::run_unshared(&format!("{}\n{body}", prelude(d)))
}

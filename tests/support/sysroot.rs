//! A loop-mounted sysroot for the host tests (tests/host.rs,
//! tests/agent.rs): ns.rs's preamble pieces (a 1 GiB ext4 image mounted
//! at `$S` inside the caller's private mount namespace, the fake OS tree
//! at `$T`), plus a `commit VERSION DATE [BRANCH]`
//! function committing it to `$REPO` (default: the sysroot's repository)
//! and the `fakeos` stateroot. Set `IMG_SIZE` (default 1G) and `OSNAME`
//! (default fakeos) before it to change those. Included with `#[path]`
//! after ns.rs.
//!
//! Variables: `OX` (oxtree), `D` (scratch dir), `S` (sysroot mount), `T`
//! (tree), `R` (run dir). Helpers: `ver` (versions, as ostree lists
//! them), `same LABEL` (oxtree's and ostree's `admin status` agree),
//! `rebooted LABEL` (the reboot hook `touch $D/rebooted` ran), and
//! `check_entries LABEL` (ns.rs).

#![allow(dead_code)]

use std::path::Path;

/// The tools the prelude runs.
pub const TOOLS: &[&str] = &["ostree", "unshare", "mkfs.ext4", "mount", "umount"];

/// The prelude for scratch directory `d` (on a real filesystem, e.g.
/// under /var/tmp).
pub fn prelude(d: &Path) -> String {
    let ox = env!("CARGO_BIN_EXE_oxtree");
    let d = d.display();
    format!(
        r#"
set -u
OX={ox}; D={d}; S={d}/mnt; T={d}/tree; R={d}/run
REPO=${{REPO:-$S/ostree/repo}}
mkdir -p $R
{loop_mount}{fake_tree}{entries}
loop_mount $S ${{IMG_SIZE:-1G}}
fake_tree $T
commit() {{ $OX --repo=$REPO commit -b ${{3:-fakeos/main}} --timestamp=$2 --add-metadata-string=version=$1 $T >/dev/null || exit 92; }}
$OX admin init-fs $S >/dev/null && $OX admin os-init --sysroot=$S ${{OSNAME:-fakeos}} >/dev/null || exit 93
ver() {{ ostree admin status --sysroot=$S | sed -n 's/    Version: //p' | tr '\n' ' '; echo; }}
same() {{ [ "$($OX admin status --sysroot=$S --run-dir=$R)" = "$(ostree admin status --sysroot=$S)" ] && echo "same $1" || {{ echo "differs $1"; $OX admin status --sysroot=$S --run-dir=$R; ostree admin status --sysroot=$S; }}; }}
rebooted() {{ if [ -e $D/rebooted ]; then echo "rebooted $1"; rm $D/rebooted; else echo "no-reboot $1"; fi; }}
"#,
        loop_mount = crate::ns::LOOP_MOUNT_SH,
        fake_tree = crate::ns::FAKE_TREE_SH,
        entries = crate::ns::CHECK_ENTRIES_SH
    )
}

//! A loop-mounted sysroot for the host tests (tests/host.rs,
//! tests/agent.rs): the shell prelude that makes a 1 GiB ext4 image,
//! mounts it at `$S` (inside the caller's private mount namespace, see
//! ns.rs), makes a fake OS tree at `$T`, a `commit VERSION DATE [BRANCH]`
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
mkdir -p $S $R
truncate -s ${{IMG_SIZE:-1G}} $D/img && mkfs.ext4 -q $D/img || exit 90
mount -o loop $D/img $S || exit 91
trap 'cd /; umount -R $S 2>/dev/null; umount -l $S 2>/dev/null' EXIT
mkdir -p $T/usr/lib/modules/5.10.0-test $T/usr/etc $T/usr/bin $T/var $T/sysroot
echo kernel-bytes > $T/usr/lib/modules/5.10.0-test/vmlinuz
echo initramfs-bytes > $T/usr/lib/modules/5.10.0-test/initramfs.img
printf 'NAME=Fake\n' > $T/usr/etc/os-release
echo root:x:0:0 > $T/usr/etc/passwd
commit() {{ $OX --repo=$REPO commit -b ${{3:-fakeos/main}} --timestamp=$2 --add-metadata-string=version=$1 $T >/dev/null || exit 92; }}
$OX admin init-fs $S >/dev/null && $OX admin os-init --sysroot=$S ${{OSNAME:-fakeos}} >/dev/null || exit 93
ver() {{ ostree admin status --sysroot=$S | sed -n 's/    Version: //p' | tr '\n' ' '; echo; }}
same() {{ [ "$($OX admin status --sysroot=$S --run-dir=$R)" = "$(ostree admin status --sysroot=$S)" ] && echo "same $1" || {{ echo "differs $1"; $OX admin status --sysroot=$S --run-dir=$R; ostree admin status --sysroot=$S; }}; }}
rebooted() {{ if [ -e $D/rebooted ]; then echo "rebooted $1"; rm $D/rebooted; else echo "no-reboot $1"; fi; }}
{entries}
"#,
        entries = crate::ns::CHECK_ENTRIES_SH
    )
}

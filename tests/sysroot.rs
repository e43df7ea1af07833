//! Sysroots written by `oxtree admin` and by the real `ostree admin`
//! (2022.7) must be read and extended by each other.
//!
//! `ostree admin deploy` freezes the filesystem holding /boot, so every
//! sysroot here lives on its own loop-mounted ext4 image inside a private
//! mount namespace (`unshare -m`): the mount vanishes with the test, and
//! the machine's own / and /boot are never touched.

#[path = "support/ns.rs"]
mod ns;
#[path = "support/sysroot.rs"]
mod sysroot;
use ns::run_unshared;

/// Run `body` with `$OX`, `$S` (a fresh sysroot mount point), `$D`
/// (scratch), `$T` (the fake OS tree) and helpers defined; returns stdout.
fn in_sysroot(body: &str) -> String {
    let scratch = sysroot::scratch("oxtree-sysroot-", &[]);
    let pre = sysroot::base(scratch.path(), "1G");
    run_unshared(&format!(
        r#"{pre}
commit() {{ $OX --repo=$S/ostree/repo commit -b fakeos/main --add-metadata-string=version=$1 ${{2:-$T}} >/dev/null || exit 92; }}
{body}
"#
    ))
}

/// Text between `== name` and the next `==` marker.
fn section<'a>(out: &'a str, name: &str) -> &'a str {
    let start = out
        .find(&format!("== {name}\n"))
        .unwrap_or_else(|| panic!("no section {name} in:\n{out}"))
        + name.len()
        + 4;
    let rest = &out[start..];
    &rest[..rest.find("\n== ").map(|i| i + 1).unwrap_or(rest.len())]
}

#[test]
fn oxtree_sysroot_read_and_extended_by_ostree() {
    let out = in_sysroot(
        r#"
$OX admin init-fs $S || exit 1
$OX admin os-init --sysroot=$S fakeos || exit 2
commit 1.0
$OX admin deploy --sysroot=$S --os=fakeos --karg=root=/dev/sda fakeos/main || exit 3
echo "== ox1"; $OX admin status --sysroot=$S
echo "== os1"; ostree admin status --sysroot=$S
echo "== entry1"; cat $S/boot/loader/entries/ostree-1-fakeos.conf
echo "== bootcsum"; cat $T/usr/lib/modules/5.10.0-test/vmlinuz $T/usr/lib/modules/5.10.0-test/initramfs.img | sha256sum | cut -d' ' -f1
echo "== rest"
check_entries ox-deploy
ostree admin deploy --sysroot=$S --os=fakeos fakeos/main >/dev/null || exit 4
check_entries ostree-deploy
echo "== ox2"; $OX admin status --sysroot=$S
echo "== os2"; ostree admin status --sysroot=$S
echo "== end"
"#,
    );
    let ox1 = section(&out, "ox1");
    assert_eq!(ox1, section(&out, "os1"));
    assert!(ox1.starts_with("  fakeos "), "{ox1}");
    assert!(
        ox1.contains("    Version: 1.0\n    origin refspec: fakeos/main\n"),
        "{ox1}"
    );
    let bootcsum = section(&out, "bootcsum").trim().to_string();
    let entry = section(&out, "entry1");
    assert!(
        entry.starts_with("title Fake OS 1 1.0 (ostree:0)\nversion 1\n"),
        "{entry}"
    );
    assert!(
        entry.contains(&format!(
            "options root=/dev/sda ostree=/ostree/boot.1/fakeos/{bootcsum}/0\n"
        )),
        "{entry}"
    );
    assert!(entry.contains(&format!(
        "linux /ostree/fakeos-{bootcsum}/vmlinuz-5.10.0-test\ninitrd /ostree/fakeos-{bootcsum}/initramfs-5.10.0-test.img\n"
    )));
    let ox2 = section(&out, "ox2");
    assert_eq!(ox2, section(&out, "os2"));
    assert_eq!(ox2.matches("  fakeos ").count(), 2, "{ox2}");
    assert!(ox2.starts_with("  fakeos ") && ox2.lines().next().unwrap().ends_with(".1"));
}

#[test]
fn ostree_sysroot_extended_by_oxtree() {
    let out = in_sysroot(
        r#"
ostree admin init-fs $S || exit 1
ostree admin os-init --sysroot=$S fakeos >/dev/null || exit 2
commit 1.0
ostree admin deploy --sysroot=$S --os=fakeos --karg=quiet fakeos/main >/dev/null || exit 3
echo "== ox1"; $OX admin status --sysroot=$S
echo "== os1"; ostree admin status --sysroot=$S
echo "== rest"
commit 2.0
$OX admin deploy --sysroot=$S --os=fakeos fakeos/main || exit 4
check_entries ox-deploy
echo "== ox2"; $OX admin status --sysroot=$S
echo "== os2"; ostree admin status --sysroot=$S
echo "== opts"; grep -h ^options $S/boot/loader/entries/*
echo "== fsck"; ostree fsck --repo=$S/ostree/repo >/dev/null 2>&1; echo rc=$?
echo "== end"
"#,
    );
    assert_eq!(section(&out, "ox1"), section(&out, "os1"));
    let ox2 = section(&out, "ox2");
    assert_eq!(ox2, section(&out, "os2"));
    let v: Vec<&str> = ox2.lines().filter(|l| l.contains("Version")).collect();
    assert_eq!(v, ["    Version: 2.0", "    Version: 1.0"], "{ox2}");
    // Kernel arguments are inherited from the merge deployment.
    for l in section(&out, "opts").lines() {
        assert!(l.starts_with("options quiet ostree=/ostree/boot."), "{l}");
    }
    assert_eq!(section(&out, "fsck").trim(), "rc=0");
}

#[test]
fn etc_merge_and_conflict() {
    let out = in_sysroot(
        r#"
$OX admin init-fs $S >/dev/null && $OX admin os-init --sysroot=$S fakeos >/dev/null || exit 1
echo issue-v1 > $T/usr/etc/issue
commit 1.0
$OX admin deploy --sysroot=$S --os=fakeos fakeos/main >/dev/null || exit 3
E=$(echo $S/ostree/deploy/fakeos/deploy/*.0)/etc
echo local > $E/local.conf; echo myhost > $E/hostname; rm $E/passwd
chmod 600 $E/os-release; ln -s /some/where $E/mylink; mkdir $E/newdir; echo x > $E/newdir/f
echo "== oxdiff"; $OX admin config-diff --sysroot=$S --os=fakeos | sort
echo "== osdiff"; ostree admin config-diff --sysroot=$S --os=fakeos | sort
echo "== rest"
echo host-v2 > $T/usr/etc/hostname; echo issue-v2 > $T/usr/etc/issue; echo new > $T/usr/etc/newdefault
commit 2.0
$OX admin deploy --sysroot=$S --os=fakeos fakeos/main || exit 4
check_entries merged
N=$(ls -d $S/ostree/deploy/fakeos/deploy/*.0 | grep -v "$(dirname $E)")/etc
echo "== merged"
cat $N/local.conf $N/hostname $N/issue $N/newdefault $N/newdir/f; stat -c %a $N/os-release; readlink $N/mylink
[ -e $N/passwd ] && echo passwd-present || echo passwd-absent
echo "== conflict"
mkdir -p $T/usr/etc/confdir; echo d > $T/usr/etc/confdir/a
echo file > $N/confdir
commit 3.0
BEFORE=$(ostree admin status --sysroot=$S; ls $S/ostree/deploy/fakeos/deploy; readlink $S/boot/loader)
$OX admin deploy --sysroot=$S --os=fakeos fakeos/main 2>$D/err; echo rc=$?
AFTER=$(ostree admin status --sysroot=$S; ls $S/ostree/deploy/fakeos/deploy; readlink $S/boot/loader)
[ "$BEFORE" = "$AFTER" ] && echo unchanged || echo changed
cat $D/err
echo "== end"
"#,
    );
    assert_eq!(section(&out, "oxdiff"), section(&out, "osdiff"));
    assert_eq!(
        section(&out, "merged"),
        "local\nmyhost\nissue-v2\nnew\nx\n600\n/some/where\npasswd-absent\n"
    );
    let c = section(&out, "conflict");
    assert!(c.contains("rc=1\nunchanged\n"), "{c}");
    assert!(c.contains("confdir") && c.contains("cannot merge"), "{c}");
}

#[test]
fn rollback_set_default_undeploy_pin_cleanup() {
    let out = in_sysroot(
        r#"
$OX admin init-fs $S >/dev/null && $OX admin os-init --sysroot=$S fakeos >/dev/null || exit 1
commit 1.0; $OX admin deploy --sysroot=$S --os=fakeos fakeos/main >/dev/null || exit 2
commit 2.0; $OX admin deploy --sysroot=$S --os=fakeos fakeos/main >/dev/null || exit 3
check_entries two
same() { [ "$($OX admin status --sysroot=$S)" = "$(ostree admin status --sysroot=$S)" ] && echo "same $1" || echo "differs $1"; }
ver() { ostree admin status --sysroot=$S | sed -n 's/    Version: //p' | tr '\n' ' '; echo; }
echo "== ops"
ver; same two
$OX admin rollback --sysroot=$S >/dev/null || exit 4
check_entries rollback; ver; same rollback
$OX admin set-default --sysroot=$S 1 >/dev/null || exit 5
check_entries set-default; ver; same set-default
$OX admin pin --sysroot=$S 1 || exit 6
ostree admin status --sysroot=$S | grep -c 'Pinned: yes'
commit 3.0; $OX admin deploy --sysroot=$S --os=fakeos fakeos/main >/dev/null || exit 7
check_entries pinned-kept; ver; same pinned-kept
$OX admin pin --sysroot=$S --unpin 2 || exit 8
$OX admin undeploy --sysroot=$S 2 || exit 9
check_entries undeploy; ver; same undeploy
ls $S/ostree/deploy/fakeos/deploy | grep -vc origin
$OX admin cleanup --sysroot=$S || exit 10
ostree admin cleanup --sysroot=$S || exit 11
check_entries cleanup; ver; same cleanup
ostree fsck --repo=$S/ostree/repo >/dev/null 2>&1 && echo fsck-ok
$OX admin frobnicate --sysroot=$S 2>&1; echo rc=$?
echo "== end"
"#,
    );
    let ops = section(&out, "ops");
    assert!(!ops.contains("differs"), "{ops}");
    let lines: Vec<&str> = ops
        .lines()
        .filter(|l| {
            !l.starts_with("Freed objects")
                && !l.starts_with("Bootloader updated")
                && !l.starts_with("Transaction complete")
        })
        .collect();
    assert_eq!(lines[0].trim(), "2.0 1.0", "{ops}");
    assert_eq!(lines[3].trim(), "1.0 2.0", "rollback: {ops}");
    assert_eq!(lines[6].trim(), "2.0 1.0", "set-default: {ops}");
    assert_eq!(lines[8].trim(), "Deployment 1 is now pinned");
    assert_eq!(lines[9].trim(), "1");
    assert_eq!(lines[11].trim(), "3.0 2.0 1.0", "pinned kept: {ops}");
    assert_eq!(lines[13].trim(), "Deployment 2 is now unpinned");
    assert!(lines[14].starts_with("Deleted deployment "), "{ops}");
    assert_eq!(lines[16].trim(), "3.0 2.0", "{ops}");
    assert_eq!(lines[18].trim(), "2", "{ops}");
    assert!(ops.contains("fsck-ok"), "{ops}");
    // An unknown admin command fails, named, with the usage (as ostree).
    assert!(
        ops.contains("Unknown \"admin\" subcommand 'frobnicate'"),
        "{ops}"
    );
    assert!(ops.contains("Usage: ") && ops.contains("\nrc=1"), "{ops}");
}

#[test]
fn boot_too_small_fails_before_any_change() {
    let out = in_sysroot(
        r#"
$OX admin init-fs $S >/dev/null && $OX admin os-init --sysroot=$S fakeos >/dev/null || exit 1
head -c 3000000 /dev/urandom > $T/usr/lib/modules/5.10.0-test/vmlinuz
commit 1.0
mount -t tmpfs -o size=1m tmpfs $S/boot || exit 2
$OX admin deploy --sysroot=$S --os=fakeos fakeos/main 2>$D/err; echo rc=$?
echo "== state"
cat $D/err
ls -A $S/boot | tr '\n' ' '; echo
ls -A $S/ostree/deploy/fakeos/deploy 2>/dev/null | wc -l
ostree admin status --sysroot=$S
echo "== end"
"#,
    );
    assert!(out.contains("rc=1\n"), "{out}");
    let st = section(&out, "state");
    assert!(st.contains("not enough free space in /boot"), "{st}");
    let lines: Vec<&str> = st.lines().collect();
    assert_eq!(
        lines[1].trim(),
        "ostree",
        "only the empty boot/ostree dir: {st}"
    );
    assert_eq!(lines[2].trim(), "0", "{st}");
    assert_eq!(lines[3].trim(), "No deployments.", "{st}");
}

/// Kernel arguments an image ships in `usr/lib/oxtree/kargs` (compose's
/// kernel-args): added on deploy, dropped when a newer image drops them,
/// and the admin's own arguments are kept throughout.
#[test]
fn image_kernel_args_follow_the_image() {
    let out = in_sysroot(
        r#"
$OX admin init-fs $S || exit 1
$OX admin os-init --sysroot=$S fakeos || exit 2
mkdir -p $T/usr/lib/oxtree
echo 'quiet console=ttyS0' > $T/usr/lib/oxtree/kargs
commit 1.0
$OX admin deploy --sysroot=$S --os=fakeos --karg=root=/dev/sda fakeos/main || exit 3
echo "== one"; grep '^options' $S/boot/loader/entries/ostree-1-fakeos.conf
$OX admin kargs edit-in-place --sysroot=$S --append=mine=1 || exit 4
echo 'quiet splash' > $T/usr/lib/oxtree/kargs
commit 2.0
$OX admin deploy --sysroot=$S --os=fakeos fakeos/main || exit 5
echo "== two"; grep '^options' $S/boot/loader/entries/ostree-2-fakeos.conf
echo "== end"
"#,
    );
    let args = |name: &str| -> Vec<String> {
        section(&out, name)
            .lines()
            .next()
            .unwrap_or("")
            .split_whitespace()
            .skip(1)
            .filter(|a| !a.starts_with("ostree="))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(
        args("one"),
        ["quiet", "console=ttyS0", "root=/dev/sda"],
        "{out}"
    );
    assert_eq!(
        args("two"),
        ["quiet", "root=/dev/sda", "mine=1", "splash"],
        "{out}"
    );
}

//! The `admin deploy` / `admin upgrade` flags ostree 2022.7 has and oxtree
//! must honour, checked by running the same flag sequence with ostree on one
//! sysroot and with oxtree on another and comparing the resulting state
//! (`ostree admin status`, boot entries, origin files).
//!
//! As in tests/sysroot_lifecycle.rs every sysroot lives on its own
//! loop-mounted ext4 image inside a private mount namespace (`unshare -m`);
//! the machine's / and /boot are never touched (ostree freezes the
//! filesystem holding SYSROOT/boot, here the loop one).

#[path = "support/ns.rs"]
mod ns;
use ns::{require, run_unshared, FAKE_TREE_SH, LOOP_MOUNT_SH};

/// Run `scenario` (a shell function body using `$X` = the tool and `$S` =
/// its sysroot) once with ostree and once with oxtree, each on a fresh
/// sysroot; `$T` is a fake OS tree, `$D` a scratch dir, `$OX` oxtree.
/// Returns (ostree's stdout, oxtree's stdout, extra) where `extra` is the
/// stdout of `after` (run with `$S1` = ostree's, `$S2` = oxtree's sysroot).
fn both(scenario: &str, after: &str) -> (String, String, String) {
    for b in ["ostree", "unshare", "mkfs.ext4", "mount", "umount"] {
        require(b);
    }
    let ox = env!("CARGO_BIN_EXE_oxtree");
    let scratch = tempfile::Builder::new()
        .prefix("oxtree-flags-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let d = scratch.path().display();
    let script = format!(
        r#"
set -u
OX={ox}; D={d}; T={d}/tree; S1={d}/s1; S2={d}/s2
{LOOP_MOUNT_SH}{FAKE_TREE_SH}
loop_mount $S1 1G; loop_mount $S2 1G
fake_tree $T
# Same commit bytes for both tools: fixed timestamp, same tree.
commit() {{ $OX --repo=$S/ostree/repo commit -b ${{3:-fakeos/main}} --timestamp=$2 --add-metadata-string=version=$1 $T >/dev/null || exit 92; }}
setup() {{ $X admin init-fs $S >/dev/null && $X admin os-init --sysroot=$S fakeos >/dev/null || exit 93; }}
# The state both tools must agree on.
state() {{
  echo "-- state $1"
  ostree admin status --sysroot=$S | sed 's/^\*/ /'
  readlink $S/boot/loader
  for e in $S/boot/loader/entries/*.conf; do echo "${{e##*/}}"; cat $e; done
  for o in $S/ostree/deploy/*/deploy/*.origin; do echo "${{o##*/}}"; cat $o; done
}}
scenario() {{
{scenario}
}}
(X=ostree S=$S1 scenario) > $D/ostree.out 2>&1
(X=$OX S=$S2 scenario) > $D/oxtree.out 2>&1
{after}
echo "==ostree"; cat $D/ostree.out
echo "==oxtree"; cat $D/oxtree.out
"#
    );
    let stdout = run_unshared(&script);
    let a = stdout.find("==ostree\n").unwrap();
    let b = stdout.find("==oxtree\n").unwrap();
    (
        stdout[a + 9..b].to_string(),
        stdout[b + 9..].to_string(),
        stdout[..a].to_string(),
    )
}

/// Lines starting with `-- state` and everything up to the next marker.
fn states(out: &str) -> String {
    let mut keep = false;
    let mut s = String::new();
    for l in out.lines() {
        if l.starts_with("-- ") {
            keep = l.starts_with("-- state");
        }
        if keep {
            s.push_str(l);
            s.push('\n');
        }
    }
    s
}

#[test]
fn deploy_flags_match_ostree() {
    let (o, x, _) = both(
        r#"
setup
$X admin os-init --sysroot=$S otheros >/dev/null || exit 1
commit 1.0 2024-01-01
echo "-- no-os"; $X admin deploy --sysroot=$S fakeos/main >/dev/null 2>&1; echo rc=$?
echo "-- os"
$X admin deploy --sysroot=$S --os=fakeos --karg=root=/dev/sda --karg=quiet --karg-append=console=tty0 --karg-append=console=ttyS0 fakeos/main >/dev/null; echo rc=$?
state karg
# Inherited from the merge deployment, --karg replaces, --karg-append adds.
$X admin deploy --sysroot=$S --os=fakeos --karg=root=/dev/vda --karg-append=console=ttyS1 fakeos/main >/dev/null; echo rc=$?
state karg-inherit
$X admin deploy --sysroot=$S --os=fakeos --retain fakeos/main >/dev/null; echo rc=$?
state retain
$X admin deploy --sysroot=$S --os=fakeos --not-as-default fakeos/main >/dev/null; echo rc=$?
state not-as-default
printf '[origin]\nrefspec=myremote:fakeos/main\n\n[extra]\nkey=value\n' > $S/../origin-$(basename $S)
$X admin deploy --sysroot=$S --os=fakeos --origin-file=$S/../origin-$(basename $S) fakeos/main >/dev/null; echo rc=$?
state origin-file
# ostree reads the real /proc/cmdline; so does oxtree without the override.
$X admin deploy --sysroot=$S --os=fakeos --karg-proc-cmdline --karg-append=extra=1 fakeos/main >/dev/null; echo rc=$?
state proc-cmdline
"#,
        "",
    );
    assert!(o.contains("-- no-os\nrc=1\n-- os\nrc=0\n"), "{o}");
    assert!(x.contains("-- no-os\nrc=1\n-- os\nrc=0\n"), "{x}");
    assert_eq!(o.matches("rc=0").count(), 6, "{o}");
    assert_eq!(
        states(&o),
        states(&x),
        "ostree:\n{o}\n\noxtree:\n{x}\n{}",
        similar_diff(&states(&o), &states(&x))
    );
    let s = states(&x);
    // The flags did what they say (not only "the same as ostree").
    assert!(
        s.contains("options root=/dev/sda quiet console=tty0 console=ttyS0 ostree="),
        "{s}"
    );
    // The inherited ostree= keeps its place; the new argument goes last.
    let inherit = section(&s, "-- state karg-inherit");
    assert!(
        inherit.contains("options root=/dev/vda quiet console=tty0 console=ttyS0 ostree=")
            && inherit.contains(" console=ttyS1\n"),
        "{inherit}"
    );
    let retain = section(&s, "-- state retain");
    assert_eq!(retain.matches("\n  fakeos ").count(), 3, "{retain}");
    assert!(s.contains("[extra]\nkey=value"), "{s}");
    assert!(s.contains("origin refspec: myremote:fakeos/main"), "{s}");
    let proc = section(&s, "-- state proc-cmdline");
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap();
    let want: Vec<&str> = cmdline
        .split_whitespace()
        .filter(|a| !a.starts_with("BOOT_IMAGE=") && !a.starts_with("initrd="))
        .collect();
    assert!(
        proc.contains(&format!("options {} extra=1", want.join(" "))),
        "{proc}"
    );
}

/// `--not-as-default` puts the new deployment second: check that directly.
#[test]
fn not_as_default_keeps_the_default() {
    let (o, x, _) = both(
        r#"
setup
commit 1.0 2024-01-01
$X admin deploy --sysroot=$S --os=fakeos fakeos/main >/dev/null || exit 1
commit 2.0 2024-02-01
$X admin deploy --sysroot=$S --os=fakeos --not-as-default fakeos/main >/dev/null; echo rc=$?
ostree admin status --sysroot=$S | sed -n 's/    Version: //p' | tr '\n' ' '; echo
"#,
        "",
    );
    assert!(o.ends_with("rc=0\n1.0 2.0 \n"), "{o}");
    assert!(x.ends_with("rc=0\n1.0 2.0 \n"), "{x}");
}

/// `--karg-proc-cmdline` reads `$OXTREE_PROC_CMDLINE` instead of
/// /proc/cmdline when set, drops `BOOT_IMAGE=`/`initrd=`, replaces the
/// merge deployment's arguments, and takes `--karg` on top.
#[test]
fn karg_proc_cmdline_from_file() {
    let (_, x, _) = both(
        r#"
[ "$X" = ostree ] && exit 0
setup
commit 1.0 2024-01-01
$X admin deploy --sysroot=$S --os=fakeos --karg=old=1 fakeos/main >/dev/null || exit 1
echo 'BOOT_IMAGE=(hd0,gpt2)/vmlinuz-6.1 root=UUID=abcd ro ostree=/ostree/boot.1/x/y/0 quiet initrd=/initrd.img' > $D/cmdline
OXTREE_PROC_CMDLINE=$D/cmdline $X admin deploy --sysroot=$S --os=fakeos --karg-proc-cmdline --karg=quiet=no fakeos/main >/dev/null; echo rc=$?
grep -h ^options $S/boot/loader/entries/*.conf | sed 's/ostree=[^ ]*/OSTREE/' | sort
OXTREE_PROC_CMDLINE=$D/missing $X admin deploy --sysroot=$S --os=fakeos --karg-proc-cmdline fakeos/main 2>&1; echo rc=$?
"#,
        "",
    );
    assert!(
        x.contains("rc=0\noptions old=1 OSTREE\noptions root=UUID=abcd ro OSTREE quiet=no\n"),
        "{x}"
    );
    assert!(x.contains("missing") && x.ends_with("rc=1\n"), "{x}");
}

#[test]
fn upgrade_flags_match_ostree() {
    let (o, x, _) = both(
        r#"
setup
commit 1.0 2024-01-01
$X admin deploy --sysroot=$S --os=fakeos fakeos/main >/dev/null || exit 1
commit 0.9 2023-06-01
echo "-- downgrade"; $X admin upgrade --sysroot=$S --os=fakeos >/dev/null 2>&1; echo rc=$?
state refused
echo "-- allow"; $X admin upgrade --sysroot=$S --os=fakeos --allow-downgrade >/dev/null; echo rc=$?
state allowed
echo "-- both"; $X admin upgrade --sysroot=$S --os=fakeos --pull-only --deploy-only >/dev/null 2>&1; echo rc=$?
commit 2.0 2024-03-01
echo "-- pull-only"; $X admin upgrade --sysroot=$S --os=fakeos --pull-only >/dev/null; echo rc=$?
state pull-only
echo "-- deploy-only"; $X admin upgrade --sysroot=$S --os=fakeos --deploy-only >/dev/null; echo rc=$?
state deploy-only
"#,
        "",
    );
    for out in [&o, &x] {
        assert!(out.contains("-- downgrade\nrc=1\n"), "{out}");
        assert!(out.contains("-- allow\nrc=0\n"), "{out}");
        assert!(out.contains("-- both\nrc=1\n"), "{out}");
        assert!(out.contains("-- pull-only\nrc=0\n"), "{out}");
        assert!(out.contains("-- deploy-only\nrc=0\n"), "{out}");
    }
    assert_eq!(
        states(&o),
        states(&x),
        "ostree:\n{o}\n\noxtree:\n{x}\n{}",
        similar_diff(&states(&o), &states(&x))
    );
    let s = states(&x);
    assert!(
        section(&s, "-- state refused").contains("Version: 1.0\n"),
        "{s}"
    );
    assert!(!section(&s, "-- state refused").contains("0.9"), "{s}");
    assert!(
        section(&s, "-- state allowed").contains("Version: 0.9\n"),
        "{s}"
    );
    assert!(
        !section(&s, "-- state pull-only").contains("2.0"),
        "pull-only deployed: {s}"
    );
    assert!(
        section(&s, "-- state deploy-only").contains("Version: 2.0\n"),
        "{s}"
    );
}

/// `--stage` (ostree 2022.7 only stages on a booted system, so oxtree alone):
/// nothing in /boot changes until `finalize-staged`, which then leaves the
/// same result as a plain deploy.
#[test]
fn stage_then_finalize_equals_deploy() {
    let (_, x, _) = both(
        r#"
[ "$X" = ostree ] && exit 0
setup
commit 1.0 2024-01-01
$X admin deploy --sysroot=$S --os=fakeos fakeos/main >/dev/null || exit 1
commit 2.0 2024-02-01
B=$(readlink $S/boot/loader; cat $S/boot/loader/entries/*)
$X admin deploy --sysroot=$S --run-dir=$D/run --os=fakeos --stage fakeos/main >/dev/null; echo rc=$?
[ "$B" = "$(readlink $S/boot/loader; cat $S/boot/loader/entries/*)" ] && echo boot-untouched
$X admin deploy --sysroot=$S --run-dir=$D/run --os=fakeos --stage --not-as-default fakeos/main >/dev/null 2>&1; echo rc=$?
$X admin finalize-staged --sysroot=$S --run-dir=$D/run >/dev/null; echo rc=$?
ostree admin status --sysroot=$S | sed -n 's/    Version: //p' | tr '\n' ' '; echo
"#,
        "",
    );
    assert!(
        x.ends_with("rc=0\nboot-untouched\nrc=1\nrc=0\n2.0 1.0 \n"),
        "{x}"
    );
}

fn section<'a>(s: &'a str, start: &str) -> &'a str {
    let a = s.find(start).unwrap_or_else(|| panic!("{start} in {s}"));
    let rest = &s[a + start.len()..];
    match rest.find("\n-- ") {
        Some(e) => &s[a..a + start.len() + e + 1],
        None => &s[a..],
    }
}

/// A line diff for the failure message.
fn similar_diff(a: &str, b: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let mut out = String::from("first differing lines (ostree / oxtree):\n");
    for i in 0..a.len().max(b.len()) {
        let (x, y) = (a.get(i).copied(), b.get(i).copied());
        if x != y {
            out.push_str(&format!("{i}: {x:?}\n{i}: {y:?}\n"));
            break;
        }
    }
    out
}

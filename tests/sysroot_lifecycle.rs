//! Upgrade, switch, kargs, staged deployments, unlock, prepare-root and
//! crash safety of `oxtree admin`, checked against ostree 2022.7.
//!
//! As in tests/sysroot.rs every sysroot lives on its own loop-mounted ext4
//! image inside a private mount namespace (`unshare -m`); the machine's /
//! and /boot are never touched, and every mount made here (overlays,
//! prepare-root binds) dies with the namespace. Runtime state goes to
//! `$R` (`--run-dir`), never /run.

#[path = "support/ns.rs"]
mod ns;
#[path = "support/sysroot.rs"]
mod sysroot;
use ns::run_unshared;

/// Run `body` with `$OX`, `$S` (sysroot mount point), `$D` (scratch), `$R`
/// (run dir), `$T` (the fake OS tree) and helpers defined; returns stdout.
fn in_sysroot(body: &str) -> String {
    let scratch = sysroot::scratch("oxtree-lifecycle-", &[]);
    let pre = sysroot::base(scratch.path(), "1G");
    let stdout = run_unshared(&format!(
        r#"{pre}
commit() {{ $OX --repo=$S/ostree/repo commit -b ${{3:-fakeos/main}} --add-metadata-string=version=$1 ${{2:-$T}} >/dev/null || exit 92; }}
setup() {{ $OX admin init-fs $S >/dev/null && $OX admin os-init --sysroot=$S fakeos >/dev/null || exit 93; }}
ver() {{ ostree admin status --sysroot=$S | sed -n 's/    Version: //p' | tr '\n' ' '; echo; }}
same() {{ [ "$($OX admin status --sysroot=$S --run-dir=$R)" = "$(ostree admin status --sysroot=$S)" ] && echo "same $1" || {{ echo "differs $1"; $OX admin status --sysroot=$S --run-dir=$R; ostree admin status --sysroot=$S; }}; }}
dep() {{ ls -d $S/ostree/deploy/fakeos/deploy/*.$1 | head -1; }}
{body}
"#
    ));
    assert!(!stdout.contains("differs "), "{stdout}");
    stdout
}

#[test]
fn upgrade_downgrade_and_switch_local() {
    let out = in_sysroot(
        r#"
setup
$OX --repo=$S/ostree/repo commit -b fakeos/main --timestamp=2024-01-01 --add-metadata-string=version=1.0 $T >/dev/null || exit 1
$OX admin deploy --sysroot=$S --os=fakeos fakeos/main >/dev/null || exit 2
echo "== nochange"; $OX admin upgrade --sysroot=$S --run-dir=$R; echo rc=$?
echo "== upgrade"
$OX --repo=$S/ostree/repo commit -b fakeos/main --timestamp=2024-02-01 --add-metadata-string=version=2.0 $T >/dev/null || exit 3
$OX admin upgrade --sysroot=$S --run-dir=$R >/dev/null; echo rc=$?
check_entries upgrade; ver; same upgrade
echo "== downgrade"
$OX --repo=$S/ostree/repo commit -b fakeos/main --timestamp=2023-06-01 --add-metadata-string=version=0.9 $T >/dev/null || exit 4
$OX admin upgrade --sysroot=$S --run-dir=$R 2>&1; echo rc=$?
ver
$OX admin upgrade --sysroot=$S --run-dir=$R --allow-downgrade >/dev/null; echo rc=$?
ver; same downgrade
echo "== switch"
$OX --repo=$S/ostree/repo commit -b fakeos/other --timestamp=2024-03-01 --add-metadata-string=version=3.0 $T >/dev/null || exit 5
$OX admin switch --sysroot=$S --run-dir=$R fakeos/other >/dev/null; echo rc=$?
check_entries switch; ver; same switch
$OX admin switch --sysroot=$S --run-dir=$R fakeos/other 2>&1; echo rc=$?
echo "== end"
"#,
    );
    let sec = |n: &str| {
        let s = out.find(&format!("== {n}\n")).unwrap();
        let e = out[s + 3..].find("\n== ").unwrap() + s + 3;
        out[s..e].to_string()
    };
    assert!(
        sec("nochange").contains("No update available.\nrc=0"),
        "{out}"
    );
    assert!(
        sec("upgrade").contains("rc=0\nentries_ok upgrade\n2.0 1.0 \n"),
        "{out}"
    );
    let d = sec("downgrade");
    assert!(
        d.contains("chronologically older") && d.contains("rc=1\n2.0 1.0 \n"),
        "{d}"
    );
    assert!(d.contains("rc=0\n0.9 2.0 \n"), "{d}");
    let s = sec("switch");
    assert!(s.contains("rc=0\nentries_ok switch\n3.0 0.9 \n"), "{s}");
    assert!(
        s.contains("Old and new refs are equal: fakeos/other\nrc=1"),
        "{s}"
    );
    assert!(out.contains("same switch"), "{out}");
}

#[test]
fn upgrade_from_remote_pull_only_deploy_only() {
    let out = in_sysroot(
        r#"
setup
A=$D/archive; $OX init --repo=$A --mode=archive >/dev/null || exit 1
$OX --repo=$A commit -b fakeos/main --add-metadata-string=version=1.0 $T >/dev/null || exit 2
$OX --repo=$A serve > $D/serve.out & SRV=$!
for i in 1 2 3 4 5 6 7 8 9 10; do grep -q http $D/serve.out && break; sleep 0.2; done
URL=$(sed -n 's/.* at \(http[^ ]*\)/\1/p' $D/serve.out)
ostree remote add --repo=$S/ostree/repo --no-gpg-verify origin $URL || exit 3
$OX --repo=$S/ostree/repo pull origin fakeos/main >/dev/null || exit 4
$OX admin deploy --sysroot=$S --os=fakeos origin:fakeos/main >/dev/null || exit 5
echo "== remote"
$OX admin upgrade --sysroot=$S --run-dir=$R; echo rc=$?
$OX --repo=$A commit -b fakeos/main --add-metadata-string=version=2.0 $T >/dev/null || exit 6
$OX admin upgrade --sysroot=$S --run-dir=$R --pull-only; echo rc=$?
ver
[ "$(ostree rev-parse --repo=$S/ostree/repo origin:fakeos/main)" = "$(ostree rev-parse --repo=$A fakeos/main)" ] && echo pulled
$OX admin upgrade --sysroot=$S --run-dir=$R --deploy-only >/dev/null; echo rc=$?
ver; same remote; check_entries remote
kill $SRV
ostree admin status --sysroot=$S | grep -c 'origin refspec: origin:fakeos/main'
ostree fsck --repo=$S/ostree/repo >/dev/null 2>&1 && echo fsck-ok
echo "== end"
"#,
    );
    assert!(
        out.contains("No update available.\nrc=0\nrc=0\n1.0 \npulled\nrc=0\n2.0 1.0 \n"),
        "{out}"
    );
    assert!(out.contains("entries_ok remote\n2\nfsck-ok"), "{out}");
}

#[test]
fn kargs_edit_in_place() {
    let out = in_sysroot(
        r#"
setup; commit 1.0
$OX admin deploy --sysroot=$S --os=fakeos --karg=root=/dev/sda --karg-append=quiet fakeos/main >/dev/null || exit 1
echo "== kargs"
readlink $S/boot/loader
$OX admin kargs edit-in-place --sysroot=$S --append=foo=bar --delete=quiet --replace=root=/dev/vda; echo rc=$?
readlink $S/boot/loader
grep -h ^options $S/boot/loader/entries/*.conf | sed 's/ostree=[^ ]*/OSTREE/'
check_entries kargs; same kargs
B=$(readlink $S/boot/loader)
$OX admin kargs edit-in-place --sysroot=$S --delete=nothere 2>&1; echo rc=$?
$OX admin kargs edit-in-place --sysroot=$S --append=ostree=/evil 2>&1; echo rc=$?
[ "$(readlink $S/boot/loader)" = "$B" ] && echo unchanged
ostree admin deploy --sysroot=$S --os=fakeos fakeos/main >/dev/null || exit 2
grep -h ^options $S/boot/loader/entries/*.conf | sed 's/ostree=[^ ]*/OSTREE/' | sort -u
$OX admin status --sysroot=$S --json | python3 -c 'import json,re,sys; print(sum(1 for d in json.load(sys.stdin)["deployments"] if re.fullmatch("root=/dev/vda ostree=[^ ]* foo=bar", d["kargs"])))'
echo "== end"
"#,
    );
    let k = &out[out.find("== kargs").unwrap()..];
    assert!(
        k.contains("loader.1\nBootloader updated; bootconfig swap: yes; bootversion: boot.0.1, deployment count change: 0\nrc=0\nloader.0\noptions root=/dev/vda OSTREE foo=bar\nentries_ok kargs\nsame kargs\n"),
        "{k}"
    );
    assert!(
        k.contains("Failed to find kernel argument 'nothere'\nrc=1\n"),
        "{k}"
    );
    assert!(k.contains("cannot be edited\nrc=1\nunchanged\n"), "{k}");
    // ostree inherits the edited arguments.
    assert!(
        k.contains("unchanged\noptions root=/dev/vda OSTREE foo=bar\n2\n"),
        "{k}"
    );
}

#[test]
fn staged_deploy_and_finalize() {
    let out = in_sysroot(
        r#"
setup; commit 1.0
$OX admin deploy --sysroot=$S --os=fakeos fakeos/main >/dev/null || exit 1
E1=$(dep 0)/etc
echo early > $E1/early.conf
commit 2.0
echo "== stage"
B=$(readlink $S/boot/loader; cat $S/boot/loader/entries/*)
$OX admin deploy --sysroot=$S --run-dir=$R --os=fakeos --stage fakeos/main; echo rc=$?
[ "$B" = "$(readlink $S/boot/loader; cat $S/boot/loader/entries/*)" ] && echo boot-untouched
$OX admin status --sysroot=$S --run-dir=$R | grep -c '(staged)'
$OX admin status --sysroot=$S --run-dir=$R | head -1 | grep -o '(staged)'
ostree admin status --sysroot=$S | grep -c '^  fakeos'
$OX admin status --sysroot=$S --run-dir=$R --json | grep -c '"staged": true'
$OX admin cleanup --sysroot=$S --run-dir=$R >/dev/null
ls $S/ostree/deploy/fakeos/deploy | grep -vc origin
ls -d $S/boot/ostree/fakeos-* | wc -l
echo late > $E1/late.conf
$OX admin finalize-staged --sysroot=$S --run-dir=$R; echo rc=$?
[ -e $R/ostree/staged-deployment ] || echo staged-file-gone
check_entries finalize; ver; same finalize
N=$(ostree admin status --sysroot=$S | sed -n '1s/^  fakeos \([0-9a-f]*\.[0-9]*\)$/\1/p')
cat $S/ostree/deploy/fakeos/deploy/$N/etc/early.conf $S/ostree/deploy/fakeos/deploy/$N/etc/late.conf
$OX admin finalize-staged --sysroot=$S --run-dir=$R; echo rc=$?
echo "== fail"
mkdir -p $T/usr/etc/confdir; echo d > $T/usr/etc/confdir/a
commit 3.0
$OX admin upgrade --sysroot=$S --run-dir=$R --stage >/dev/null; echo rc=$?
echo file > $S/ostree/deploy/fakeos/deploy/$N/etc/confdir
B=$(readlink $S/boot/loader; cat $S/boot/loader/entries/*)
$OX admin finalize-staged --sysroot=$S --run-dir=$R 2>&1; echo rc=$?
[ "$B" = "$(readlink $S/boot/loader; cat $S/boot/loader/entries/*)" ] && echo boot-untouched
cat $S/boot/ostree/finalize-failure.stamp
$OX admin status --sysroot=$S --run-dir=$R | grep -c staged
ver; same fail
$OX admin cleanup --sysroot=$S --run-dir=$R >/dev/null; ls $S/ostree/deploy/fakeos/deploy | grep -vc origin
ostree fsck --repo=$S/ostree/repo >/dev/null 2>&1 && echo fsck-ok
echo "== end"
"#,
    );
    let st = &out[out.find("== stage").unwrap()..out.find("== fail").unwrap()];
    assert!(
        st.contains("rc=0\nboot-untouched\n1\n(staged)\n1\n1\n2\n1\n"),
        "{st}"
    );
    assert!(
        st.contains("staged-file-gone\nentries_ok finalize\n2.0 1.0 \nsame finalize\nearly\nlate\nNo staged deployment.\nrc=0\n"),
        "{st}"
    );
    let f = &out[out.find("== fail").unwrap()..];
    assert!(f.contains("rc=0\n"), "{f}");
    assert!(
        f.contains("cannot merge; nothing was changed\nrc=1\nboot-untouched\n"),
        "{f}"
    );
    assert!(
        f.contains("confdir") && f.contains("0\n2.0 1.0 \nsame fail\n2\nfsck-ok"),
        "{f}"
    );
}

#[test]
fn unlock_transient_and_hotfix() {
    let out = in_sysroot(
        r#"
setup; commit 1.0
$OX admin deploy --sysroot=$S --os=fakeos fakeos/main >/dev/null || exit 1
P=$(dep 0)
echo "== transient"
$OX admin unlock --sysroot=$S --run-dir=$R >/dev/null; echo rc=$?
touch $P/usr/new && echo writable
grep -c " $P/usr .* - overlay " /proc/self/mountinfo
$OX admin status --sysroot=$S --run-dir=$R | grep Unlocked
$OX admin unlock --sysroot=$S --run-dir=$R 2>&1; echo rc=$?
grep -c unlocked $P.origin
umount $P/usr; [ -e $P/usr/new ] && echo leaked || echo gone
echo "== hotfix"
rm -rf $R/ostree/deployment-state
$OX admin unlock --sysroot=$S --run-dir=$R --hotfix >/dev/null; echo rc=$?
echo hot > $P/usr/hot && cat $P/usr/hot
ostree admin status --sysroot=$S | grep Unlocked
ver; same hotfix; check_entries hotfix
umount $P/usr; cat $P/.usr-ovl-upper/hot
echo "== end"
"#,
    );
    let t = &out[out.find("== transient").unwrap()..out.find("== hotfix").unwrap()];
    assert!(
        t.contains("rc=0\nwritable\n1\n    Unlocked: transient\nerror: Deployment is already in unlocked state: transient\nrc=1\n0\ngone\n"),
        "{t}"
    );
    let h = &out[out.find("== hotfix").unwrap()..];
    assert!(
        h.contains(
            "rc=0\nhot\n    Unlocked: hotfix\n1.0 1.0 \nsame hotfix\nentries_ok hotfix\nhot\n"
        ),
        "{h}"
    );
}

#[test]
fn prepare_root_mounts_the_deployment() {
    let out = in_sysroot(
        r#"
setup; commit 1.0
$OX admin deploy --sysroot=$S --os=fakeos fakeos/main >/dev/null || exit 1
P=$(dep 0)
ARG=$(sed -n 's/^options .*\(ostree=[^ ]*\).*/\1/p' $S/boot/loader/entries/*.conf)
BC=$(echo $ARG | cut -d/ -f5)
M0=$(cat /proc/self/mountinfo)
echo "== bad"
$OX admin prepare-root --sysroot=$S --cmdline="quiet root=/dev/sda" 2>&1; echo rc=$?
$OX admin prepare-root --sysroot=$S --cmdline="ostree=/ostree/boot.1/../../../etc" 2>&1; echo rc=$?
$OX admin prepare-root --sysroot=$S --cmdline="ostree=/ostree/boot.1/fakeos/$BC/7" 2>&1; echo rc=$?
ln -s /ostree/repo $S/ostree/boot.1/fakeos/$BC/5
$OX admin prepare-root --sysroot=$S --cmdline="ostree=/ostree/boot.1/fakeos/$BC/5" 2>&1; echo rc=$?
[ "$M0" = "$(cat /proc/self/mountinfo)" ] && echo nothing-mounted
echo "== good"
echo "quiet $ARG rw" > $D/cmdline
$OX admin prepare-root --sysroot=$S --cmdline-file=$D/cmdline; echo rc=$?
touch $P/usr/x 2>$D/err; echo rc=$?; grep -o 'Read-only file system' $D/err
touch $P/etc/x && echo etc-writable
echo marker > $S/ostree/deploy/fakeos/var/marker; cat $P/var/marker
[ -d $P/sysroot/ostree/repo ] && echo sysroot-bound
[ "$(stat -c %d:%i $P/sysroot/ostree/deploy)" = "$(stat -c %d:%i $S/ostree/deploy)" ] && echo same-physical-root
echo "== end"
"#,
    );
    let b = &out[out.find("== bad").unwrap()..out.find("== good").unwrap()];
    assert!(
        b.contains("no ostree= argument on the kernel command line\nrc=1\n"),
        "{b}"
    );
    assert!(b.contains("escapes the sysroot"), "{b}");
    assert_eq!(b.matches("rc=1\n").count(), 4, "{b}");
    assert!(b.contains("not a deployment"), "{b}");
    assert!(b.ends_with("nothing-mounted\n"), "{b}");
    let g = &out[out.find("== good").unwrap()..];
    assert!(
        g.contains("rc=0\nrc=1\nRead-only file system\netc-writable\nmarker\nsysroot-bound\nsame-physical-root\n"),
        "{g}"
    );
}

/// kill -9 of `oxtree admin deploy` and `oxtree admin cleanup` at 15
/// points spread over their measured run time: after each, every boot
/// entry names existing files, ostree reads the sysroot, the repository
/// passes `ostree fsck`, and the next oxtree deploy succeeds. Only the
/// oxtree pid spawned here is killed (never ostree, which freezes /boot).
#[test]
fn crash_safety_kill_deploy_and_cleanup() {
    let out = in_sysroot(
        r#"
setup
mkdir -p $T/usr/share/data
i=0; while [ $i -lt 1500 ]; do echo "file $i" > $T/usr/share/data/f$i; i=$((i+1)); done
K=$T/usr/lib/modules/5.10.0-test/vmlinuz
head -c 6000000 /dev/urandom > $K
commit 0
$OX admin deploy --sysroot=$S --os=fakeos fakeos/main >/dev/null || exit 1
ms() { echo $(($(date +%s%N) / 1000000)); }
vary() { echo "$1" >> $K; echo "v$1" > $T/usr/bin/x; echo "v$1" > $T/usr/share/data/f$1; commit $1; }
# Measure one deploy and one cleanup (with something to clean).
vary 100; t0=$(ms); $OX admin deploy --sysroot=$S --os=fakeos fakeos/main >/dev/null || exit 2; t1=$(ms)
DDUR=$((t1 - t0 + 1))
vary 101; $OX admin deploy --sysroot=$S --os=fakeos --retain fakeos/main >/dev/null || exit 3
$OX admin undeploy --sysroot=$S 2 >/dev/null 2>&1
t0=$(ms); $OX admin cleanup --sysroot=$S >/dev/null || exit 4; t1=$(ms)
CDUR=$((t1 - t0 + 1))
echo "durations deploy=${DDUR}ms cleanup=${CDUR}ms"
checks() {
  check_entries "$1"
  ostree admin status --sysroot=$S >/dev/null 2>&1 || echo "status_bad $1"
  ostree fsck --repo=$S/ostree/repo >/dev/null 2>&1 || echo "fsck_bad $1"
}
n=1; while [ $n -le 15 ]; do
  vary $n
  d=$(awk "BEGIN{printf \"%.3f\", $DDUR * $n / 16 / 1000}")
  $OX admin deploy --sysroot=$S --os=fakeos --retain fakeos/main >/dev/null 2>&1 & P=$!
  sleep $d; kill -9 $P 2>/dev/null; wait $P 2>/dev/null
  checks "deploy-kill-$n@$d"
  d=$(awk "BEGIN{printf \"%.3f\", $CDUR * $n / 16 / 1000}")
  $OX admin cleanup --sysroot=$S >/dev/null 2>&1 & P=$!
  sleep $d; kill -9 $P 2>/dev/null; wait $P 2>/dev/null
  checks "cleanup-kill-$n@$d"
  vary $((n + 200))
  $OX admin deploy --sysroot=$S --os=fakeos fakeos/main >/dev/null 2>$D/err || { echo "redeploy_bad $n"; cat $D/err; }
  checks "redeploy-$n"
  n=$((n + 1))
done
$OX admin cleanup --sysroot=$S >/dev/null || echo cleanup_bad
checks final
ls $S/ostree/deploy/fakeos/deploy | grep -vc origin
ostree admin status --sysroot=$S | grep -c '^  fakeos'
echo "== end"
"#,
    );
    for bad in ["status_bad", "fsck_bad", "redeploy_bad", "cleanup_bad"] {
        assert!(!out.contains(bad), "{out}");
    }
    assert_eq!(out.matches("entries_ok ").count(), 46, "{out}");
    assert!(out.contains("entries_ok final\n2\n2\n== end"), "{out}");
}

/// `oxtree prepare-root` (the name the initramfs unit runs) is wired to the
/// same code as `admin prepare-root`: a command line without `ostree=` is a
/// clear error before anything is looked at or mounted.
#[test]
fn top_level_prepare_root_needs_ostree_karg() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_oxtree"))
        .args([
            "prepare-root",
            "--sysroot=/nonexistent-sysroot",
            "--cmdline=quiet root=/dev/sda",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ostree="), "{err}");
}

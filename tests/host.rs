//! The host transactions (`oxtree_host`) through the CLI: `--reboot`
//! calls the reboot hook only when something was deployed, `admin status
//! --json` has the bootc-shaped `Host` form, and a cancelled pull moves
//! no ref.
//!
//! The sysroot tests run as in tests/sysroot_lifecycle.rs: a loop-mounted
//! ext4 image in a private mount namespace; the reboot hook is
//! `$OXTREE_REBOOT_COMMAND` (`touch FILE`), never a real reboot.

#[path = "support/cli.rs"]
mod cli;
#[path = "support/net.rs"]
mod net;
#[path = "support/ns.rs"]
mod ns;
#[path = "support/snapshot.rs"]
mod snapshot;
#[path = "support/sysroot.rs"]
mod sysroot;
use cli::{ox, OX};
use std::process::{Command, Stdio};

fn in_sysroot(body: &str) -> String {
    let scratch = sysroot::scratch("oxtree-host-", &["python3"]);
    let stdout = sysroot::run_prelude(
        scratch.path(),
        &format!("export OXTREE_REBOOT_COMMAND=\"touch $D/rebooted\"\n{body}\n"),
    );
    assert!(!stdout.contains("differs "), "{stdout}");
    stdout
}

#[test]
fn reboot_only_after_a_deploy() {
    let out = in_sysroot(
        r#"
commit 1.0 2024-01-01
$OX admin deploy --sysroot=$S --run-dir=$R --os=fakeos --reboot fakeos/main >/dev/null; echo rc=$?
rebooted deploy
$OX admin upgrade --sysroot=$S --run-dir=$R --reboot; echo rc=$?
rebooted nochange
commit 2.0 2024-02-01
$OX admin upgrade --sysroot=$S --run-dir=$R --reboot --pull-only; echo rc=$?
rebooted pull-only
$OX admin upgrade --sysroot=$S --run-dir=$R --reboot >/dev/null; echo rc=$?
rebooted upgrade
check_entries upgrade; ver; same upgrade
commit 0.5 2023-01-01
$OX admin upgrade --sysroot=$S --run-dir=$R --reboot 2>/dev/null; echo rc=$?
rebooted downgrade
$OX admin rollback --sysroot=$S --run-dir=$R --reboot >/dev/null; echo rc=$?
rebooted rollback
ver
commit 3.0 2024-03-01 fakeos/other
$OX admin switch --sysroot=$S --run-dir=$R --reboot --stage fakeos/other >/dev/null; echo rc=$?
rebooted switch
$OX admin switch --sysroot=$S --run-dir=$R --reboot fakeos/other 2>/dev/null; echo rc=$?
rebooted switch-same
OXTREE_REBOOT_COMMAND=false $OX admin deploy --sysroot=$S --run-dir=$R --os=fakeos --reboot fakeos/main 2>&1 >/dev/null; echo rc=$?
echo "== end"
"#,
    );
    let expect = "rc=0\nrebooted deploy\n\
        No update available.\nrc=0\nno-reboot nochange\n\
        rc=0\nno-reboot pull-only\n\
        rc=0\nrebooted upgrade\nentries_ok upgrade\n2.0 1.0 \nsame upgrade\n\
        rc=1\nno-reboot downgrade\n\
        rc=0\nrebooted rollback\n1.0 2.0 \n\
        rc=0\nrebooted switch\n\
        rc=1\nno-reboot switch-same\n";
    assert!(out.contains(expect), "{out}");
    assert!(
        out.contains("rebooting: false failed (exit status: 1)\nrc=1\n== end"),
        "{out}"
    );
}

#[test]
fn status_json_is_host_shaped() {
    let out = in_sysroot(
        r#"
commit 1.0 2024-01-01
$OX admin deploy --sysroot=$S --run-dir=$R --os=fakeos --karg=root=/dev/vda fakeos/main >/dev/null || exit 1
commit 2.0 2024-02-01
$OX admin upgrade --sysroot=$S --run-dir=$R --stage >/dev/null || exit 2
$OX admin pin --sysroot=$S 0 >/dev/null || exit 3
$OX admin status --sysroot=$S --run-dir=$R --json > $D/st.json || exit 4
python3 - $D/st.json <<'PY'
import json, sys
h = json.load(open(sys.argv[1]))
assert h["apiVersion"] == "org.oxtree/v1" and h["kind"] == "Host", h
assert h["spec"]["stateroot"] == "fakeos" and h["spec"]["refspec"] == "fakeos/main", h["spec"]
st = h["status"]
assert st["booted"] is None and st["rollback"] is None, st
s = st["staged"]
assert s["version"] == "2.0" and s["index"] is None and s["stateroot"] == "fakeos", s
assert s["timestamp"] == "2024-02-01T00:00:00Z" and s["refspec"] == "fakeos/main", s
assert s["checksum"] == s["baseChecksum"] and s["layeredPackages"] == [], s
[o] = st["otherDeployments"]
assert o["version"] == "1.0" and o["index"] == 0 and o["pinned"] and o["deploySerial"] == 0, o
assert o["kargs"].startswith("root=/dev/vda ostree="), o
d = h["deployments"]
assert [x["index"] for x in d] == [None, 0] and d[0]["staged"] and d[0]["pending"], d
assert d[1]["checksum"] == o["checksum"] and d[1]["origin-refspec"] == "fakeos/main", d
assert d[1]["serial"] == 0 and d[1]["pinned"] and not d[1]["layered"], d
print("json-ok")
PY
$OX admin status --sysroot=$S --run-dir=$R | head -1 | grep -o '(staged)'
echo "== json"; cat $D/st.json
echo "== end"
"#,
    );
    assert!(out.contains("json-ok\n(staged)\n"), "{out}");
    // The whole document as printed, as a snapshot (tests/support/
    // snapshot.rs says how to update it): checksums redacted, the rest
    // fixed by the commits' timestamps.
    let json = &out[out.find("== json\n").unwrap() + 8..out.find("== end").unwrap()];
    serde_json::from_str::<serde_json::Value>(json).expect("status --json is JSON");
    insta::assert_snapshot!("admin_status_json", snapshot::redact(json, &[]));
}

/// A pull cancelled between objects fails with `Cancelled`, moves no ref,
/// and a later pull completes.
#[test]
fn cancelled_pull_moves_no_ref() {
    use oxtree_transport::{PullOptions, Remote, TransportError};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let d = tempfile::tempdir().unwrap();
    let (a, b, t) = (d.path().join("a"), d.path().join("b"), d.path().join("t"));
    std::fs::create_dir_all(&t).unwrap();
    for i in 0..64 {
        std::fs::write(t.join(format!("f{i}")), format!("file {i}\n")).unwrap();
    }
    let (ar, br, tr) = (
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        t.to_str().unwrap(),
    );
    ox(&["init", &format!("--repo={ar}"), "--mode=archive"]);
    ox(&[&format!("--repo={ar}"), "commit", "-b", "main", tr]);
    ox(&["init", &format!("--repo={br}"), "--mode=bare-user"]);
    // Killed when the test ends, failing or not: a server left running
    // would hold the test harness's output open.
    let mut srv = net::Guard(
        Command::new(OX)
            .args([&format!("--repo={ar}"), "serve"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(srv.0.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    let url = line.trim().rsplit(' ').next().unwrap().to_string();
    ox(&[
        &format!("--repo={br}"),
        "remote",
        "add",
        "--no-gpg-verify",
        "o",
        &url,
    ]);
    let repo = oxtree_repo::Repo::open(&b).unwrap();
    let remote = Remote::open(&repo, "o").unwrap();
    let flag = Arc::new(AtomicBool::new(false));
    let opts = PullOptions {
        cancel: Some(flag.clone()),
        max_in_flight: 1,
        ..PullOptions::default()
    };
    let calls = std::sync::atomic::AtomicU64::new(0);
    // Cancel once the first object arrived.
    let progress = |_: &oxtree_transport::PullProgress| {
        calls.fetch_add(1, Ordering::Relaxed);
        flag.store(true, Ordering::Relaxed);
    };
    let r = oxtree_transport::pull(&repo, &remote, &["main".into()], &opts, &progress);
    assert!(matches!(r, Err(TransportError::Cancelled)), "{r:?}");
    assert!(calls.load(Ordering::Relaxed) >= 1);
    assert_eq!(repo.read_ref("o:main").unwrap(), None);
    flag.store(false, Ordering::Relaxed);
    let r = oxtree_transport::pull(&repo, &remote, &["main".into()], &opts, &|_| {});
    drop(srv);
    let r = r.unwrap();
    assert_eq!(repo.read_ref("o:main").unwrap(), Some(r.commits[0]));
}

//! Client-side package layering end to end, with real Debian packages:
//! the example host base (examples/host.toml, trixie) deployed on a
//! loop-mounted sysroot, `oxtree install nano`, a new base adding `tree`
//! and `admin upgrade` (both present after), `override remove/reset`,
//! `uninstall` back to the plain base, and a failing install that leaves
//! every deployment as it was.
//!
//! The bases (tests/support/layer_bases.rs) are the host base the compose
//! and boot tests share and one compose more, kept as fixtures under
//! /var/cache/oxtree-tests/fixtures; apt inside the layering sandbox
//! downloads from the Debian archive.

#[path = "support/cli.rs"]
mod cli;
#[path = "support/fixture.rs"]
mod fixture;
#[path = "support/host_base.rs"]
mod host_base;
#[path = "support/layer_bases.rs"]
mod layer_bases;
use cli::sh;
use layer_bases::{bases, MAIN};
#[path = "support/ns.rs"]
mod ns;
#[path = "support/snapshot.rs"]
mod snapshot;
use ns::{require, run_unshared, CHECK_ENTRIES_SH, LOOP_MOUNT_SH};
use oxtree_object::Metadata;

fn section(out: &str, name: &str) -> String {
    let start = out
        .find(&format!("== {name}\n"))
        .unwrap_or_else(|| panic!("no section {name} in:\n{out}"));
    let rest = &out[start + name.len() + 4..];
    rest[..rest.find("\n== ").map(|i| i + 1).unwrap_or(rest.len())].to_string()
}

#[test]
fn install_upgrade_override_uninstall() {
    for b in [
        "ostree",
        "unshare",
        "mkfs.ext4",
        "mount",
        "umount",
        "mmdebstrap",
        "bwrap",
    ] {
        require(b);
    }
    let ox = env!("CARGO_BIN_EXE_oxtree");
    let bases = bases(ox);
    let scratch = tempfile::Builder::new()
        .prefix("oxtree-layering-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let d = scratch.path().display();
    let script = format!(
        r#"
set -u
OX={ox}; D={d}; S={d}/mnt; R={d}/run; B={bases}; MAIN={MAIN}
mkdir -p $R
{LOOP_MOUNT_SH}{CHECK_ENTRIES_SH}
loop_mount $S 6G
dep0() {{ $OX admin status --sysroot=$S --run-dir=$R --json | python3 -c 'import json,sys; d=[x for x in json.load(sys.stdin)["deployments"] if x["index"] == 0][0]; print(d["checksum"]+"."+str(d["serial"]))'; }}
root0() {{ echo $S/ostree/deploy/debian/deploy/$(dep0); }}
snapshot() {{ $OX admin status --sysroot=$S --run-dir=$R; ls $S/ostree/deploy/debian/deploy; readlink $S/boot/loader; }}
$OX admin init-fs $S >/dev/null && $OX admin os-init --sysroot=$S debian >/dev/null || exit 92
$OX --repo=$S/ostree/repo pull-local $B $MAIN >/dev/null || exit 93
BASE1=$($OX --repo=$S/ostree/repo rev-parse $MAIN)
$OX admin deploy --sysroot=$S --os=debian $MAIN >/dev/null || exit 94
echo "== plain"
[ "$($OX admin status --sysroot=$S --run-dir=$R)" = "$(ostree admin status --sysroot=$S)" ] && echo same-as-ostree

echo "== install"
T0=$(date +%s%N)
$OX install --sysroot=$S --run-dir=$R nano; echo rc=$?
echo "install-ms $(( ($(date +%s%N) - T0) / 1000000 ))"
check_entries install
[ -x $(root0)/usr/bin/nano ] && echo has-nano
cat $(root0).origin
$OX admin status --sysroot=$S --run-dir=$R
$OX admin status --sysroot=$S --run-dir=$R --json > $D/status.json
python3 - $D/status.json $BASE1 <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))["deployments"]
a, b = d[0], d[1]
assert a["layered"] and a["requested-packages"] == ["nano"], a
assert a["base-checksum"] == sys.argv[2] and a["checksum"] != sys.argv[2], a
assert a["origin-refspec"] == "{MAIN}" and a["version"] == "1", a
assert not b["layered"] and b["checksum"] == sys.argv[2] and b["requested-packages"] == [], b
print("json-ok")
EOF
ostree fsck --repo=$S/ostree/repo >/dev/null 2>&1 && echo fsck-ok

echo "== override"
T0=$(date +%s%N)
$OX override remove --sysroot=$S --run-dir=$R less; echo rc=$?
echo "override-ms $(( ($(date +%s%N) - T0) / 1000000 ))"
[ -e $(root0)/usr/bin/less ] && echo has-less || echo no-less
[ -x $(root0)/usr/bin/nano ] && echo has-nano
grep -A1 overrides $(root0).origin
$OX override reset --sysroot=$S --run-dir=$R --all >/dev/null; echo rc=$?
[ -e $(root0)/usr/bin/less ] && echo has-less
$OX admin status --sysroot=$S --run-dir=$R --json | python3 -c 'import json,sys; d=json.load(sys.stdin)["deployments"]; print("removals", d[0]["requested-base-removals"], d[1]["requested-base-removals"])'


echo "== upgrade"
$OX --repo=$S/ostree/repo pull-local $B debian/next >/dev/null || exit 95
BASE2=$($OX --repo=$S/ostree/repo rev-parse debian/next)
# The base branch moves to the new compose.
echo $BASE2 > $S/ostree/repo/refs/heads/$MAIN
$OX admin upgrade --sysroot=$S --run-dir=$R; echo rc=$?
check_entries upgrade
[ -x $(root0)/usr/bin/nano ] && echo has-nano
[ -x $(root0)/usr/bin/ip ] && echo has-ip
$OX admin status --sysroot=$S --run-dir=$R --json | python3 -c 'import json,sys; a=json.load(sys.stdin)["deployments"][0]; print("base", a["base-checksum"], a["version"])'
echo base2 $BASE2
echo "db-diff"; $OX --repo=$S/ostree/repo db diff $BASE1 $BASE2
# switch moves the base refspec and keeps the layered packages.
$OX admin switch --sysroot=$S --run-dir=$R debian/next >/dev/null; echo switch-rc=$?
grep baserefspec $(root0).origin
[ -x $(root0)/usr/bin/nano ] && echo switched-has-nano
$OX admin upgrade --sysroot=$S --run-dir=$R; echo rc=$?

echo "== failing"
BEFORE=$(snapshot)
$OX install --sysroot=$S --run-dir=$R nosuchpackage-oxtree 2>$D/err; echo rc=$?
AFTER=$(snapshot)
[ "$BEFORE" = "$AFTER" ] && echo unchanged || {{ echo changed; echo "$BEFORE"; echo "$AFTER"; }}
cat $D/err
ls $S/ostree/repo/tmp | grep -c oxtree-layer

echo "== uninstall"
$OX uninstall --sysroot=$S --run-dir=$R nano; echo rc=$?
[ -e $(root0)/usr/bin/nano ] && echo has-nano || echo no-nano
[ -x $(root0)/usr/bin/ip ] && echo has-ip
[ "$(dep0)" = "$BASE2.0" ] || [ "$(dep0)" = "$BASE2.1" ] && echo is-base2
cat $(root0).origin
# The plain default renders as ostree does (the rollback is layered).
[ "$($OX admin status --sysroot=$S --run-dir=$R | head -3)" = "$(ostree admin status --sysroot=$S | head -3)" ] && echo same-as-ostree
$OX --repo=$S/ostree/repo refs | grep -c oxtree/base
ostree fsck --repo=$S/ostree/repo >/dev/null 2>&1 && echo fsck-ok

echo "== dryrun"
BEFORE=$(snapshot)
$OX install --sysroot=$S --run-dir=$R --dry-run --json vim-tiny 2>/dev/null | tee $D/dryrun.json | python3 -c 'import json,sys; r=json.load(sys.stdin); print("dry", r["dry-run"], sorted(p["name"] for p in r["install"]), r["remove"])'
[ "$BEFORE" = "$(snapshot)" ] && echo unchanged

echo "== stage"
$OX override remove --sysroot=$S --run-dir=$R --stage --json less > $D/stage.json 2>$D/stage.err; echo rc=$?
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("staged", r["staged"], r["requested-base-removals"])' $D/stage.json
$OX admin status --sysroot=$S --run-dir=$R | grep -E "staged|RemovedBasePackages"
$OX --repo=$S/ostree/repo refs | grep -c oxtree/staged-deployment
[ -e $(root0)/usr/bin/less ] && echo default-has-less
# Changes stack on the staged deployment, as with rpm-ostree.
$OX install --sysroot=$S --run-dir=$R --dry-run --json vim-tiny 2>/dev/null | python3 -c 'import json,sys; r=json.load(sys.stdin); print("stacked", r["requested-packages"], r["requested-base-removals"])'
$OX admin finalize-staged --sysroot=$S --run-dir=$R >/dev/null; echo rc=$?
[ -e $(root0)/usr/bin/less ] || echo finalized-no-less
grep -A1 overrides $(root0).origin
ostree fsck --repo=$S/ostree/repo >/dev/null 2>&1 && echo fsck-ok
echo "== end"
"#
    );
    let out = run_unshared(&script);
    println!("{out}");
    assert!(section(&out, "plain").contains("same-as-ostree"), "{out}");

    let s = section(&out, "install");
    assert!(s.contains("rc=0\n"), "{s}");
    assert!(s.contains("entries_ok install"), "{s}");
    assert!(s.contains("has-nano"), "{s}");
    assert!(
        s.contains(&format!(
            "[origin]\nbaserefspec={MAIN}\n\n[packages]\nrequested=nano;\n"
        )),
        "{s}"
    );
    assert!(s.contains("    LayeredPackages: nano\n"), "{s}");
    assert!(s.contains("json-ok") && s.contains("fsck-ok"), "{s}");

    let s = section(&out, "override");
    assert!(
        s.contains("rc=0\noverride-ms ") && s.contains("no-less\nhas-nano\n"),
        "{s}"
    );
    assert!(s.contains("[overrides]\nremove=less;"), "{s}");
    assert!(s.contains("rc=0\nhas-less\nremovals [] ['less']\n"), "{s}");

    let s = section(&out, "upgrade");
    assert!(s.contains("entries_ok upgrade\nhas-nano\nhas-ip\n"), "{s}");
    let base2 = s.lines().find_map(|l| l.strip_prefix("base2 ")).unwrap();
    assert!(s.contains(&format!("base {base2} 2\n")), "{s}");
    assert!(s.contains("No update available.\nrc=0"), "{s}");
    assert!(
        s.contains("switch-rc=0\nbaserefspec=debian/next\nswitched-has-nano\n"),
        "{s}"
    );
    let dd = &s[s.find("db-diff\n").unwrap()..s.find("switch-rc=").unwrap()];
    assert!(
        dd.lines().any(|l| l.contains(layer_bases::NEXT_PACKAGE)),
        "{s}"
    );
    assert!(!dd.lines().any(|l| l.contains("nano")), "{s}");

    let s = section(&out, "failing");
    assert!(s.contains("rc=1\nunchanged\n"), "{s}");
    assert!(
        s.contains("nosuchpackage-oxtree") && s.contains("Unable to locate package"),
        "{s}"
    );
    assert!(
        s.trim_end().ends_with("\n0"),
        "work directory left behind: {s}"
    );

    let s = section(&out, "uninstall");
    assert!(s.contains("rc=0\nno-nano\nhas-ip\nis-base2\n"), "{s}");
    assert!(s.contains("[origin]\nrefspec=debian/next\n"), "{s}");
    assert!(s.contains("same-as-ostree") && s.contains("fsck-ok"), "{s}");

    let s = section(&out, "dryrun");
    assert!(
        s.lines()
            .any(|l| l.starts_with("dry True [") && l.contains("'vim-tiny'")),
        "{s}"
    );
    assert!(s.contains("unchanged"), "{s}");

    let s = section(&out, "stage");
    assert!(s.contains("rc=0\nstaged True ['less']\n"), "{s}");
    assert!(
        s.contains("(staged)") && s.contains("RemovedBasePackages: less"),
        "{s}"
    );
    assert!(
        s.contains(
            "\n1\ndefault-has-less\nstacked ['vim-tiny'] ['less']\nrc=0\nfinalized-no-less\n"
        ),
        "{s}"
    );
    assert!(
        s.contains("[overrides]\nremove=less;") && s.contains("fsck-ok"),
        "{s}"
    );

    // The results only oxtree prints, as snapshots (tests/support/
    // snapshot.rs says how to update them): checksums, package versions,
    // sizes and durations redacted.
    let s = section(&out, "install");
    let install = &s[..s.find("rc=").unwrap()];
    insta::assert_snapshot!(
        "install_text",
        snapshot::redact_layering(&snapshot::redact(install, &[]))
    );
    let json = |name: &str| {
        let text = std::fs::read_to_string(scratch.path().join(name)).unwrap();
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
        snapshot::redact_keys(&mut v, &["version"]);
        snapshot::redact(&serde_json::to_string_pretty(&v).unwrap(), &[])
    };
    insta::assert_snapshot!("override_remove_stage_json", json("stage.json"));
    insta::assert_snapshot!("install_dry_run_json", json("dryrun.json"));
}

/// The overlay's delta commit gives exactly the tree a full commit of the
/// merged view gives, through renames (same parent and across), opaque
/// directories, deletions, in-place edits, mode and owner changes; and
/// the hardlinked objects under the overlay are never modified.
#[test]
fn overlay_delta_commit_equals_full_commit() {
    for b in ["mount", "ostree", "setfattr"] {
        require(b);
    }
    let t = tempfile::Builder::new()
        .prefix("oxtree-overlay-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let p = t.path().display().to_string();
    sh(&format!(
        "set -e; cd {p}; mkdir -p tree/usr/etc/apt tree/usr/bin tree/usr/lib/d/sub tree/usr/lib/d2/in tree/var/lib/x
         chmod 755 tree; echo a > tree/usr/etc/apt/x; echo b > tree/usr/bin/b; echo c > tree/usr/bin/c
         echo e > tree/usr/lib/d/e; echo s > tree/usr/lib/d/sub/s; echo i > tree/usr/lib/d2/in/i
         ln -s ../lib/d/e tree/usr/bin/link; echo v > tree/var/lib/x/v; chmod 4755 tree/usr/bin/c
         setfattr -n user.oxtree -v kept tree/usr/bin/b"
    ));
    let mut repo =
        oxtree_repo::Repo::init(&t.path().join("repo"), oxtree_repo::RepoMode::Bare).unwrap();
    let base = oxtree_compose::commit_root(
        &mut repo,
        &t.path().join("tree"),
        "base",
        Metadata::new(),
        1_700_000_000,
        None,
    )
    .unwrap();
    let mut ov =
        oxtree_compose::overlay::OverlayRoot::create(&repo, &base, &t.path().join("work")).unwrap();
    let m = ov.merged().display().to_string();
    sh(&format!(
        "set -e; cd {m}
         mv usr/etc etc; echo more >> etc/apt/x; mv etc usr/etc2
         rm usr/bin/b; chmod 700 usr/bin; chown 1000:1000 usr/bin/c
         rm -r usr/lib/d; mkdir usr/lib/d; echo new > usr/lib/d/new
         mv usr/lib/d2 usr/lib/d3; echo j > usr/lib/d3/in/j; rm usr/lib/d3/in/i
         mkdir -p usr/share/n; echo n > usr/share/n/x; ln -sf /elsewhere usr/bin/link
         rm -r var/lib/x; setfattr -n user.oxtree -v also usr/share/n/x"
    ));
    let tx = repo.begin().unwrap();
    let mut full = oxtree_repo::MutableTree::new();
    tx.write_dir_into(
        &ov.merged(),
        &mut full,
        &oxtree_repo::CommitModifier::default(),
        &|_, _| {},
    )
    .unwrap();
    let base_meta = repo.load_commit(&base).unwrap().root_meta;
    full.meta = Some(base_meta);
    let full = full.write(&tx).unwrap();
    let delta = ov.commit_changes(&tx, &base).unwrap();
    tx.commit().unwrap();
    assert_eq!(full, delta, "delta commit differs from a full commit");
    drop(ov);
    assert!(
        !t.path().join("work").exists(),
        "work directory left behind"
    );
    // Every object (the hardlinked ones included) still has its checksum.
    sh(&format!("ostree fsck --repo={p}/repo"));
}

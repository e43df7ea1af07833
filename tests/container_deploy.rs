//! A host deployed and upgraded from a container image in a real registry
//! (Debian's docker-registry on 127.0.0.1): `admin switch
//! ostree-unverified-registry:…` on a loop-mounted sysroot, `admin
//! upgrade` after a new image is pushed to the same tag, and the
//! refusals (an image without `ostree.bootable`, an `ostree-remote-image:`
//! reference; signed images are tests/container_sign.rs's).
//!
//! What was fetched is counted from the registry's own access log (each
//! `GET /v2/NAME/blobs/DIGEST` line with its size), not from oxtree's
//! report. The image is a small generated tree (tests/support/ns.rs's
//! fake OS with a 2 MiB kernel), so it has three layers: the commit, the
//! kernel and the rest; a version adding one file changes the commit
//! layer and the rest, never the kernel layer.

#[path = "support/net.rs"]
mod net;
#[path = "support/ns.rs"]
mod ns;
#[path = "support/registry.rs"]
mod registry;
#[path = "support/sysroot.rs"]
mod sysroot;

use serde_json::Value;
use std::collections::BTreeSet;

fn offsets(out: &str, label: &str) -> (usize, usize) {
    let line = out
        .lines()
        .find(|l| l.starts_with(&format!("== log {label} ")))
        .unwrap_or_else(|| panic!("no log marker {label}: {out}"));
    let w: Vec<usize> = line
        .split_whitespace()
        .skip(3)
        .map(|n| n.parse().unwrap())
        .collect();
    (w[0], w[1])
}

fn layers(v: &Value) -> Vec<(String, String)> {
    v["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["digest"].as_str().unwrap().to_string(),
                l["description"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The tools a script here needs (checked), a plain-HTTP registry, a
/// scratch directory, and the script lines every test here starts with:
/// `$REG` (the registry, trusted over plain HTTP by the sysroot's
/// repository), `$LOG` and `at` (its access log and its size), `$B` (an
/// empty build repository) and a 2 MiB kernel in the tree `$T`.
fn registry_and_scratch(prefix: &str) -> (registry::Registry, tempfile::TempDir, String) {
    let reg = registry::Registry::start(false);
    let scratch = sysroot::scratch(prefix, &["python3"]);
    let start = format!(
        r#"
REG={addr}; LOG={log}; B=$D/build
at() {{ wc -c < $LOG; }}
dd if=/dev/urandom of=$T/usr/lib/modules/5.10.0-test/vmlinuz bs=1M count=2 2>/dev/null
$OX --repo=$S/ostree/repo config set "registry \"$REG\".insecure" true || exit 2
$OX init --repo=$B --mode=bare-user >/dev/null || exit 3
"#,
        addr = reg.addr,
        log = reg.dir.path().join("registry.log").display(),
    );
    (reg, scratch, start)
}

#[test]
fn switch_to_an_image_then_upgrade_from_the_registry() {
    let (reg, scratch, start) = registry_and_scratch("oxtree-image-deploy-");
    let body = start
        + r#"
commit 1.0 2024-01-01
$OX admin deploy --sysroot=$S --run-dir=$R --os=fakeos --karg=root=/dev/vda fakeos/main >/dev/null || exit 1
echo mine > $(echo $S/ostree/deploy/fakeos/deploy/*.0)/etc/local.conf || exit 6
img() { $OX --repo=$B commit -b $1 $2 --timestamp=$3 --add-metadata-string=version=$4 $T >/dev/null || exit 4
  $OX --repo=$B container encapsulate --json -q --insecure $1 docker://$REG/$1:latest > $D/$1-$4.json || exit 5; }
ndeploy() { ls $S/ostree/deploy/fakeos/deploy | grep -c '\.origin$'; }
newest() { $OX admin status --sysroot=$S --run-dir=$R --json | python3 -c "import json,sys;d=json.load(sys.stdin)['deployments'][0];print(d['checksum']+'.'+str(d['serial']))"; }
nrefs() { $OX --repo=$S/ostree/repo refs | grep -c '^ostree/container/'; }

echo "== not bootable"
img plain "" 2024-01-15 p1
$OX admin switch --sysroot=$S --run-dir=$R ostree-unverified-registry:$REG/plain:latest 2>&1; echo rc=$?
echo "deployments=$(ndeploy) refs=$(nrefs)"
echo "== signed"
$OX admin switch --sysroot=$S --run-dir=$R ostree-remote-image:origin:docker://$REG/os:latest 2>&1; echo rc=$?
echo "deployments=$(ndeploy) refs=$(nrefs)"

echo "== switch"
img os --bootable 2024-02-01 img1
a=$(at)
$OX admin switch --sysroot=$S --run-dir=$R ostree-unverified-registry:$REG/os:latest >/dev/null || exit 10
echo "== log switch $a $(at)"
echo "deployments=$(ndeploy)"
$OX admin status --sysroot=$S --run-dir=$R
$OX admin status --sysroot=$S --run-dir=$R --json > $D/st1.json || exit 11
cat $S/ostree/deploy/fakeos/deploy/$(newest)/etc/local.conf 2>&1
check_entries switch
grep -h '^options' $S/boot/loader/entries/*.conf

echo "== upgrade"
echo new > $T/usr/bin/newtool
img os --bootable 2024-03-01 img2
a=$(at)
$OX admin upgrade --sysroot=$S --run-dir=$R >/dev/null || exit 12
echo "== log upgrade $a $(at)"
echo "deployments=$(ndeploy) blobrefs=$($OX --repo=$S/ostree/repo refs | grep -c '^ostree/container/blob/')"
$OX --repo=$S/ostree/repo fsck -q >/dev/null && echo fsck-ok
$OX admin status --sysroot=$S --run-dir=$R --json > $D/st2.json || exit 13
cat $S/ostree/deploy/fakeos/deploy/$(newest)/usr/bin/newtool
check_entries upgrade

echo "== again"
a=$(at)
$OX admin upgrade --sysroot=$S --run-dir=$R; echo rc=$?
echo "== log again $a $(at)"
$OX admin upgrade --sysroot=$S --run-dir=$R --check; echo rc=$?
echo "deployments=$(ndeploy)"
echo "== origin without a digest"
o=$S/ostree/deploy/fakeos/deploy/$(newest).origin
printf '[origin]\ncontainer-image-reference=%s\n' "$(sed -n 's/^container-image-reference=//p' $o)" > $o
$OX admin status --sysroot=$S --run-dir=$R | grep -m1 Digest
$OX admin upgrade --sysroot=$S --run-dir=$R; echo rc=$?

echo "== pull then deploy"
echo v3 > $T/usr/bin/newtool3
img os --bootable 2024-04-01 img3
$OX admin upgrade --sysroot=$S --run-dir=$R --pull-only; echo rc=$?
$OX admin status --sysroot=$S --run-dir=$R | grep -m1 Version
$OX admin upgrade --sysroot=$S --run-dir=$R --deploy-only >/dev/null; echo rc=$?
$OX admin status --sysroot=$S --run-dir=$R | grep -m1 Version

echo "== oci layout"
$OX --repo=$B container encapsulate -q os oci:$D/layout:v2 >/dev/null || exit 20
$OX admin switch --sysroot=$S --run-dir=$R ostree-unverified-image:oci:$D/layout:v2 >/dev/null || exit 21
$OX admin status --sysroot=$S --run-dir=$R --json > $D/st3.json || exit 22
$OX admin switch --sysroot=$S --run-dir=$R ostree-unverified-image:oci:$D/layout:v2 2>&1; echo rc=$?
echo "== back"
$OX admin switch --sysroot=$S --run-dir=$R fakeos/main >/dev/null || exit 23
cat $S/ostree/deploy/fakeos/deploy/$(newest).origin
$OX admin upgrade --sysroot=$S --run-dir=$R; echo rc=$?
echo "== end"
"#;
    let out = sysroot::run_prelude(scratch.path(), &body);
    let reg_log = reg.log();
    let d = scratch.path();
    let read = |n: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(d.join(n)).unwrap()).unwrap()
    };

    // Refusals: a clear error, no deployment, no ref.
    let section = |from: &str, to: &str| -> String {
        let a = out.find(from).unwrap_or_else(|| panic!("{from}: {out}"));
        let b = out[a..].find(to).unwrap_or_else(|| panic!("{to}: {out}")) + a;
        out[a..b].to_string()
    };
    let nb = section("== not bootable", "== signed");
    assert!(
        nb.contains("is not bootable") && nb.contains("ostree.bootable"),
        "{nb}"
    );
    assert!(nb.contains("rc=1\ndeployments=1 refs=0\n"), "{nb}");
    let sg = section("== signed", "== switch");
    assert!(sg.contains("not supported yet"), "{sg}");
    assert!(sg.contains("rc=1\ndeployments=1 refs=0\n"), "{sg}");

    // The switch fetched the whole image: config and every layer.
    let v1 = read("os-img1.json");
    let v2 = read("os-img2.json");
    let (a, b) = offsets(&out, "switch");
    let got: BTreeSet<String> = registry::blob_gets(reg_log.get(a..b).unwrap_or_default(), "os")
        .into_iter()
        .map(|(d, _)| d)
        .collect();
    let mut want: BTreeSet<String> = layers(&v1).into_iter().map(|(d, _)| d).collect();
    want.insert(v1["config-digest"].as_str().unwrap().to_string());
    assert_eq!(got, want, "{out}\n{reg_log}");

    let img = format!("ostree-unverified-registry:{}/os:latest", reg.addr);
    let sw = section("== switch", "== upgrade");
    assert!(sw.contains("deployments=2\n"), "{sw}");
    assert!(sw.contains(&format!("    origin image: {img}\n")), "{sw}");
    let digest1 = v1["manifest-digest"].as_str().unwrap();
    assert!(sw.contains(&format!("    Digest: {digest1}\n")), "{sw}");
    assert!(sw.contains("    Version: img1\n"), "{sw}");
    // /etc merged from the deployment before, kernel arguments kept.
    assert!(sw.contains("\nmine\nentries_ok switch\n"), "{sw}");
    assert!(sw.contains("options root=/dev/vda ostree="), "{sw}");
    let st = read("st1.json");
    assert_eq!(
        st["spec"]["image"]["image"],
        format!("{}/os:latest", reg.addr)
    );
    assert_eq!(st["spec"]["image"]["transport"], "registry");
    assert!(st["spec"]["refspec"].is_null(), "{st}");
    let dep = &st["status"]["otherDeployments"][0];
    assert_eq!(dep["checksum"], v1["commit"], "the image's commit: {st}");
    assert_eq!(
        dep["image"]["image"]["image"],
        format!("{}/os:latest", reg.addr)
    );
    assert_eq!(dep["image"]["image"]["transport"], "registry");
    assert_eq!(dep["image"]["imageDigest"], digest1);
    assert_eq!(st["deployments"][0]["container-image-reference"], img);
    assert_eq!(st["deployments"][0]["image-digest"], digest1);
    assert!(st["status"]["otherDeployments"][1]["image"].is_null());

    // The upgrade fetched the new config and the changed layers only
    // (the commit layer and the rest), never the 2 MiB kernel layer.
    let l1: BTreeSet<String> = layers(&v1).into_iter().map(|(d, _)| d).collect();
    let l2 = layers(&v2);
    assert_eq!(l2.len(), 3, "{v2}");
    let changed: BTreeSet<String> = l2
        .iter()
        .filter(|(d, _)| !l1.contains(d))
        .map(|(d, _)| d.clone())
        .collect();
    assert_eq!(changed.len(), 2, "{v1}\n{v2}");
    let (a, b) = offsets(&out, "upgrade");
    let gets = registry::blob_gets(reg_log.get(a..b).unwrap_or_default(), "os");
    let got: BTreeSet<String> = gets.iter().map(|(d, _)| d.clone()).collect();
    let mut want = changed;
    want.insert(v2["config-digest"].as_str().unwrap().to_string());
    assert_eq!(got, want, "{out}\n{reg_log}");
    let bytes: u64 = gets.iter().map(|(_, n)| n).sum();
    assert!(bytes < 1 << 20, "{bytes} bytes fetched: {gets:?}");
    let up = section("== upgrade", "== again");
    // The old version's own layer refs are gone; the repository is whole.
    assert!(up.contains("deployments=2 blobrefs=3\nfsck-ok\n"), "{up}");
    assert!(up.contains("new\nentries_ok upgrade\n"), "{up}");
    let st = read("st2.json");
    let dep = &st["status"]["otherDeployments"][0];
    assert_eq!(dep["checksum"], v2["commit"], "{st}");
    assert_eq!(dep["version"], "img2");
    assert_eq!(dep["image"]["imageDigest"], v2["manifest-digest"]);
    assert!(dep["kargs"].as_str().unwrap().starts_with("root=/dev/vda "));

    // Unchanged manifest: no update, no blob fetched, nothing deployed.
    let again = section("== again", "== end");
    assert!(again.contains("No update available.\nrc=0\n"), "{again}");
    assert!(
        again.contains("No update available.\nrc=0\ndeployments=2\n"),
        "--check: {again}"
    );
    // An origin as bootc writes it (no digest recorded): the digest comes
    // from the stored image whose commit is deployed.
    let nd = section("== origin without a digest", "== pull then deploy");
    let digest2 = v2["manifest-digest"].as_str().unwrap();
    assert!(
        nd.contains(&format!(
            "    Digest: {digest2}\nNo update available.\nrc=0\n"
        )),
        "{nd}"
    );
    let (a, b) = offsets(&out, "again");
    assert_eq!(
        registry::blob_gets(reg_log.get(a..b).unwrap_or_default(), "os"),
        vec![],
        "{reg_log}"
    );
    assert!(
        reg_log[a..b].contains("GET /v2/os/manifests/latest"),
        "the manifest was asked for: {reg_log}"
    );

    // --pull-only fetches and deploys nothing; --deploy-only deploys
    // what it fetched.
    let pd = section("== pull then deploy", "== oci layout");
    assert!(
        pd.contains("rc=0\n    Version: img2\nrc=0\n    Version: img3\n"),
        "{pd}"
    );

    // From an OCI layout: the same commit, transport `oci`; the same
    // reference again is refused.
    let v3 = read("os-img3.json");
    let st = read("st3.json");
    let dep = &st["status"]["otherDeployments"][0];
    assert_eq!(dep["checksum"], v3["commit"], "{st}");
    assert_eq!(dep["image"]["image"]["transport"], "oci", "{st}");
    assert_eq!(
        dep["image"]["image"]["image"],
        format!("{}/layout:v2", d.display())
    );
    let oci = section("== oci layout", "== back");
    assert!(
        oci.contains("Old and new image references are equal") && oci.contains("rc=1\n"),
        "{oci}"
    );
    // Back to a refspec: a plain origin again, upgraded as before.
    let back = section("== back", "== end");
    assert!(
        back.starts_with("== back\n[origin]\nrefspec=fakeos/main\n"),
        "{back}"
    );
    assert!(!back.contains("image"), "{back}");
    assert!(back.contains("No update available.\nrc=0\n"), "{back}");
}

/// A registry that wants basic auth: `switch` without credentials fails
/// clearly and deploys nothing; with bootc's `/etc/ostree/auth.json` in
/// the sysroot it deploys.
#[test]
fn private_registry_with_auth_json() {
    let reg = registry::Registry::start_with_auth(false, "oxuser", "s3cret:x");
    let scratch = sysroot::scratch("oxtree-image-auth-", &["python3"]);
    let body = format!(
        r#"
REG={addr}; B=$D/build
commit 1.0 2024-01-01
$OX admin deploy --sysroot=$S --run-dir=$R --os=fakeos fakeos/main >/dev/null || exit 1
$OX --repo=$S/ostree/repo config set "registry \"$REG\".insecure" true || exit 2
$OX init --repo=$B --mode=bare-user >/dev/null || exit 3
$OX --repo=$B commit -b os --bootable --timestamp=2024-02-01 --add-metadata-string=version=img1 $T >/dev/null || exit 4
$OX --repo=$B container encapsulate -q --insecure os docker://$REG/os:v1 >/dev/null 2>&1 && echo "push without creds worked"
$OX --repo=$B container encapsulate -q --insecure --creds=oxuser:s3cret:x os docker://$REG/os:v1 >/dev/null || exit 5
echo "== no creds"
$OX admin switch --sysroot=$S --run-dir=$R ostree-unverified-registry:$REG/os:v1 2>&1; echo rc=$?
ls $S/ostree/deploy/fakeos/deploy | grep -c '\.origin$'
echo "== auth.json"
mkdir -p $S/etc/ostree
printf '{{"auths":{{"%s":{{"auth":"%s"}}}}}}' $REG $(printf 'oxuser:s3cret:x' | base64) > $S/etc/ostree/auth.json
$OX admin switch --sysroot=$S --run-dir=$R ostree-unverified-registry:$REG/os:v1 >/dev/null; echo rc=$?
$OX admin status --sysroot=$S --run-dir=$R | grep -m2 'Version\|origin image'
$OX admin upgrade --sysroot=$S --run-dir=$R; echo rc=$?
echo "== end"
"#,
        addr = reg.addr
    );
    let out = sysroot::run_prelude(scratch.path(), &body);
    assert!(!out.contains("push without creds worked"), "{out}");
    let a = out.find("== no creds").unwrap();
    let b = out.find("== auth.json").unwrap();
    let nc = &out[a..b];
    assert!(
        nc.to_lowercase().contains("not authorized"),
        "{nc}\n{}",
        reg.log()
    );
    assert!(nc.ends_with("rc=1\n1\n"), "{nc}");
    let aj = &out[b..];
    assert!(
        aj.contains(&format!(
            "rc=0\n    Version: img1\n    origin image: ostree-unverified-registry:{}/os:v1\nNo update available.\nrc=0\n",
            reg.addr
        )),
        "{aj}\n{}",
        reg.log()
    );
}

/// Containers bound to the OS: a commit whose `/usr/lib/bootc/bound-images.d`
/// links a Quadlet `.container` file gets its image pulled (from the real
/// registry, by the real podman) into `/sysroot/ostree/bootc/storage`
/// before it is deployed; an image that cannot be pulled, or a Quadlet
/// file with no valid `Image=`, fails the deploy with nothing deployed;
/// and once no deployment names an image, the cleanup removes it from the
/// store.
#[test]
fn bound_images_are_pulled_before_deploy_and_removed_after() {
    let reg = registry::Registry::start(false);
    let scratch = sysroot::scratch("oxtree-bound-", &["podman", "busybox"]);
    let d = scratch.path();
    // Two versions of a one-binary image, pushed from a private podman
    // storage.
    let rootfs = d.join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::copy(net::require("busybox"), rootfs.join("bin/busybox")).unwrap();
    let pm = d.join("podman");
    let podman = |args: &[&str]| {
        let o = std::process::Command::new(net::require("podman"))
            .arg(format!("--root={}", pm.join("root").display()))
            .arg(format!("--runroot={}", pm.join("run").display()))
            .args(["--storage-driver=overlay", "--events-backend=file"])
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "podman {args:?}: {o:?}");
    };
    for v in ["1", "2"] {
        std::fs::write(rootfs.join("version"), v).unwrap();
        let tar = d.join(format!("tiny{v}.tar"));
        let st = std::process::Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap();
        assert!(st.success());
        let name = format!("{}/tiny:{v}", reg.addr);
        podman(&["import", "-q", tar.to_str().unwrap(), &name]);
        podman(&["push", "-q", "--tls-verify=false", &name]);
    }
    let body = format!(
        r#"
REG={addr}
# oxtree's runroot for a store whose run directory's path is too long.
P="podman --root=$S/ostree/bootc/storage --runroot=/tmp/oxtree-bound-$(printf %s $S/ostree/bootc/storage | sha256sum | cut -c1-16)"
stored() {{ $P images --format '{{{{.Repository}}}}:{{{{.Tag}}}}' | sort | tr '\n' ' '; echo; }}
ndeploy() {{ ls $S/ostree/deploy/fakeos/deploy | grep -c '\.origin$'; }}
quadlet() {{ mkdir -p $T/usr/share/containers/systemd $T/usr/lib/bootc/bound-images.d
  printf '[Unit]\nDescription=bound\n\n[Container]\nImage=%s\nExec=/bin/busybox sleep 1000\n' "$1" > $T/usr/share/containers/systemd/tiny.container
  ln -sfn /usr/share/containers/systemd/tiny.container $T/usr/lib/bootc/bound-images.d/tiny.container; }}
$OX --repo=$S/ostree/repo config set "registry \"$REG\".insecure" true || exit 2
echo "== plain"
commit 0.9 2024-01-01
$OX admin deploy --sysroot=$S --run-dir=$R --os=fakeos fakeos/main >/dev/null || exit 3
echo "store-exists=$(test -d $S/ostree/bootc/storage && echo yes || echo no)"
echo "== v1"
quadlet $REG/tiny:1
commit 1.0 2024-02-01
$OX admin deploy --sysroot=$S --run-dir=$R --os=fakeos fakeos/main || exit 4
echo "deployments=$(ndeploy) stored: $(stored)"
echo "== missing"
quadlet $REG/missing:1
commit 1.1 2024-02-15
$OX admin deploy --sysroot=$S --run-dir=$R --os=fakeos fakeos/main 2>&1; echo rc=$?
echo "deployments=$(ndeploy) stored: $(stored)"
echo "== bad"
printf '[Container]\nImage=--privileged\n' > $T/usr/share/containers/systemd/tiny.container
commit 1.2 2024-02-20
$OX admin deploy --sysroot=$S --run-dir=$R --os=fakeos fakeos/main 2>&1; echo rc=$?
echo "deployments=$(ndeploy)"
echo "== v2"
quadlet $REG/tiny:2
commit 2.0 2024-03-01
$OX admin deploy --sysroot=$S --run-dir=$R --os=fakeos --retain fakeos/main || exit 5
echo "deployments=$(ndeploy) stored: $(stored)"
echo "== undeploy"
ver
$OX admin undeploy --sysroot=$S --run-dir=$R 1 || exit 6
$OX admin undeploy --sysroot=$S --run-dir=$R 1 || exit 7
ver
echo "stored: $(stored)"
echo "== end"
rm -rf /tmp/oxtree-bound-$(printf %s $S/ostree/bootc/storage | sha256sum | cut -c1-16)
"#,
        addr = reg.addr,
    );
    let out = sysroot::run_prelude(d, &body);
    let section = |from: &str, to: &str| -> String {
        let a = out.find(from).unwrap_or_else(|| panic!("{from}: {out}"));
        let b = out[a..].find(to).unwrap_or_else(|| panic!("{to}: {out}")) + a;
        out[a..b].to_string()
    };
    let tiny = |v: &str| format!("{}/tiny:{v}", reg.addr);
    // No bound images: podman never ran, no store.
    assert!(
        section("== plain", "== v1").contains("store-exists=no"),
        "{out}"
    );
    let v1 = section("== v1", "== missing");
    assert!(
        v1.contains(&format!("Pulling bound image {}", tiny("1"))),
        "{v1}"
    );
    assert!(
        v1.contains(&format!("deployments=2 stored: {} \n", tiny("1"))),
        "{v1}"
    );
    let m = section("== missing", "== bad");
    assert!(
        m.contains("pulling bound image") && m.contains("rc=1"),
        "{m}"
    );
    assert!(
        m.contains(&format!("deployments=2 stored: {} \n", tiny("1"))),
        "{m}"
    );
    let b = section("== bad", "== v2");
    assert!(b.contains("no valid Image=") && b.contains("rc=1"), "{b}");
    assert!(b.contains("deployments=2\n"), "{b}");
    let v2 = section("== v2", "== undeploy");
    assert!(
        v2.contains(&format!(
            "deployments=3 stored: {} {} \n",
            tiny("1"),
            tiny("2")
        )),
        "{v2}"
    );
    // The 1.0 and 0.9 deployments go: tiny:1 is nobody's any more.
    let u = section("== undeploy", "== end");
    assert!(u.contains("Removed bound image"), "{u}");
    assert!(u.contains(&format!("stored: {} \n", tiny("2"))), "{u}");
}

/// A static delta published beside the image (`encapsulate --delta-from`):
/// the upgrade fetches it instead of the changed layers (counted from the
/// registry's log); without a delta from the deployed commit it fetches
/// the layers; a delta artifact that lies about its base is not used and
/// the layers are fetched instead, with the same commit deployed.
#[test]
fn upgrade_fetches_the_static_delta_published_beside_the_image() {
    let (reg, scratch, start) = registry_and_scratch("oxtree-image-delta-");
    let body = start
        + r#"
commit 1.0 2024-01-01
$OX admin deploy --sysroot=$S --run-dir=$R --os=fakeos fakeos/main >/dev/null || exit 1
img() { $OX --repo=$B commit -b os --bootable --timestamp=$1 --add-metadata-string=version=$2 $T >/dev/null || exit 4
  $OX --repo=$B container encapsulate --json -q --insecure ${3:-} os docker://$REG/os:latest > $D/$2.json || exit 5; }
img 2024-02-01 img1
c1=$($OX --repo=$B rev-parse os)
$OX admin switch --sysroot=$S --run-dir=$R ostree-unverified-registry:$REG/os:latest >/dev/null || exit 6

echo "== delta"
head -c 300000 /dev/urandom > $T/usr/bin/newtool
img 2024-03-01 img2 --delta-from=$c1
c2=$($OX --repo=$B rev-parse os)
a=$(at)
$OX admin upgrade --sysroot=$S --run-dir=$R 2>&1 || exit 7
echo "== log delta $a $(at)"
$OX --repo=$S/ostree/repo fsck -q >/dev/null && echo fsck-ok
cmp $T/usr/bin/newtool $S/ostree/deploy/fakeos/deploy/$c2.*/usr/bin/newtool && echo newtool-ok

echo "== no delta from here"
echo three > $T/usr/bin/three
img 2024-04-01 img3 --delta-from=$c1
c3=$($OX --repo=$B rev-parse os)
a=$(at)
$OX admin upgrade --sysroot=$S --run-dir=$R 2>&1 || exit 8
echo "== log nodelta $a $(at)"

echo "== lying delta"
echo four > $T/usr/bin/four
img 2024-05-01 img4 --delta-from=$c1
c4=$($OX --repo=$B rev-parse os)
dig=$(python3 -c "import json;print(json.load(open('$D/img4.json'))['manifest-digest'])")
python3 - $REG $dig $c1 $c3 <<'PY' || exit 9
import json, sys, urllib.request as u
reg, dig, c1, c3 = sys.argv[1:]
h = dig.split(":")[1]
t = lambda c: "sha256-" + h + ".delta-" + c[:40]
mt = "application/vnd.oci.image.manifest.v1+json"
m = json.load(u.urlopen(u.Request("http://%s/v2/os/manifests/%s" % (reg, t(c1)), headers={"Accept": mt})))
m["annotations"]["org.oxtree.delta.from"] = c3
u.urlopen(u.Request("http://%s/v2/os/manifests/%s" % (reg, t(c3)), data=json.dumps(m).encode(), method="PUT", headers={"Content-Type": mt}))
PY
$OX admin upgrade --sysroot=$S --run-dir=$R 2>&1; echo rc=$?
$OX --repo=$S/ostree/repo fsck -q >/dev/null && echo fsck-ok
$OX admin status --sysroot=$S --run-dir=$R | grep -m1 Version
echo "c1=$c1 c2=$c2 c3=$c3 c4=$c4"
echo "== prune"
SR=$S/ostree/repo
img=$($OX --repo=$SR container image list | head -1)
echo "image=$img"
blobs() { $OX --repo=$SR refs | grep -c '^ostree/container/blob/'; }
echo "blobrefs=$(blobs)"
$OX --repo=$SR container image prune --json --image "$img" || exit 30
echo "images=$($OX --repo=$SR container image list | wc -l) blobrefs=$(blobs)"
$OX --repo=$SR container image prune --image "$img" 2>&1; echo rc=$?
$OX --repo=$SR fsck -q >/dev/null && echo fsck-ok
$OX admin status --sysroot=$S --run-dir=$R | grep -m1 Version
echo "== end"
"#;
    let out = sysroot::run_prelude(scratch.path(), &body);
    let reg_log = reg.log();
    let read = |n: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(scratch.path().join(n)).unwrap()).unwrap()
    };
    let commits: Vec<String> = out
        .lines()
        .find(|l| l.starts_with("c1="))
        .unwrap_or_else(|| panic!("{out}"))
        .split(' ')
        .map(|kv| kv.split_once('=').unwrap().1.to_string())
        .collect();
    let tag = |to: &Value, from: &str| {
        format!(
            "sha256-{}.delta-{}",
            to["manifest-digest"]
                .as_str()
                .unwrap()
                .strip_prefix("sha256:")
                .unwrap(),
            &from[..40]
        )
    };

    // The delta: its blobs and the config, none of the image's layers.
    let img2 = read("img2.json");
    let deltas = img2["deltas"].as_array().unwrap();
    assert_eq!(deltas.len(), 1, "{img2}");
    assert!(
        deltas[0]["reference"]
            .as_str()
            .unwrap()
            .ends_with(&tag(&img2, &commits[0])),
        "{img2}"
    );
    let (a, b) = offsets(&out, "delta");
    let gets = registry::blob_gets(&reg_log[a..b], "os");
    let got: BTreeSet<&str> = gets.iter().map(|(d, _)| d.as_str()).collect();
    let layer_digests: BTreeSet<String> = layers(&img2).into_iter().map(|(d, _)| d).collect();
    assert!(
        got.iter().all(|d| !layer_digests.contains(*d)),
        "a layer was fetched:\n{out}\n{reg_log}"
    );
    assert!(
        got.contains(img2["config-digest"].as_str().unwrap()),
        "{reg_log}"
    );
    let bytes: u64 = gets.iter().map(|(_, n)| n).sum();
    let delta_size = deltas[0]["size"].as_u64().unwrap();
    assert!(
        bytes < delta_size + 64 * 1024 && delta_size < 400_000,
        "fetched {bytes} bytes, delta {delta_size}:\n{reg_log}"
    );
    assert!(
        out.contains(&format!("Applied static delta {}", tag(&img2, &commits[0]))),
        "{out}"
    );
    assert!(out.contains("fsck-ok\nnewtool-ok\n"), "{out}");
    // The kernel layer did not change (its blob ref is here); the other
    // two were not needed.
    assert!(
        out.contains(": 0 layers fetched, 1 already present, 2 not needed;"),
        "{out}"
    );

    // No delta from the deployed commit: the changed layers, as before.
    let img3 = read("img3.json");
    let (a, b) = offsets(&out, "nodelta");
    let got: BTreeSet<String> = registry::blob_gets(&reg_log[a..b], "os")
        .into_iter()
        .map(|(d, _)| d)
        .collect();
    let l3: BTreeSet<String> = layers(&img3).into_iter().map(|(d, _)| d).collect();
    assert!(
        got.iter().any(|d| l3.contains(d)),
        "no layer fetched: {reg_log}"
    );
    let nd = &out[out.find("== no delta from here").unwrap()..out.find("== lying delta").unwrap()];
    assert!(!nd.contains("Applied static delta"), "{nd}");

    // A delta whose superblock starts elsewhere than its annotation says:
    // refused, the layers fetched, img4 deployed whole.
    let lie = &out[out.find("== lying delta").unwrap()..];
    assert!(
        lie.contains("static delta was not used") && lie.contains("its superblock is not"),
        "{lie}"
    );
    assert!(lie.contains("rc=0\nfsck-ok\n    Version: img4\n"), "{lie}");

    // prune: the image ref, its layer refs and the objects only they
    // needed go; the deployments (their own refs) stay whole.
    let pr = &out[out.find("== prune").unwrap()..];
    assert!(
        pr.contains(&format!("image=docker://{}/os:latest", reg.addr)),
        "{pr}"
    );
    let j: Value =
        serde_json::from_str(&pr[pr.find('{').unwrap()..=pr.find('}').unwrap()]).unwrap();
    assert_eq!(j["images-removed"], 1, "{pr}");
    assert!(j["layer-refs-removed"].as_u64().unwrap() >= 1, "{pr}");
    assert!(j["objects-deleted"].as_u64().unwrap() >= 1, "{pr}");
    assert!(pr.contains("images=0 blobrefs=0\n"), "{pr}");
    assert!(
        pr.contains("is not stored in this repository\nrc=1\nfsck-ok\n    Version: img4\n"),
        "{pr}"
    );
}

/// `container image deploy` (ostree-ext's): a first deployment from a
/// registry image onto a stateroot that has none, with a kernel argument;
/// the origin follows the image, so `admin upgrade` goes on from the
/// registry. A non-bootable image deploys nothing.
#[test]
fn image_deploy_onto_an_empty_stateroot() {
    let (reg, scratch, start) = registry_and_scratch("oxtree-image-first-");
    let body = start
        + r#"
img() { $OX --repo=$B commit -b os $3 --timestamp=$1 --add-metadata-string=version=$2 $T >/dev/null || exit 4
  $OX --repo=$B container encapsulate -q --insecure os docker://$REG/os:$4 >/dev/null || exit 5; }
img 2024-01-01 plain "" plain
$OX container image deploy --sysroot=$S --run-dir=$R --stateroot=fakeos --imgref=ostree-unverified-registry:$REG/os:plain 2>&1; echo rc=$?
echo "deployments=$(ls $S/ostree/deploy/fakeos/deploy | grep -c '\.origin$')"
echo "== first"
img 2024-02-01 v1 --bootable latest
# The image's commit is here already (as if pulled over HTTP): no layer
# of it is fetched.
$OX --repo=$S/ostree/repo pull-local $B os >/dev/null || exit 8
a=$(at)
$OX container image deploy --sysroot=$S --run-dir=$R --stateroot=fakeos --karg=root=/dev/vda --imgref=ostree-unverified-registry:$REG/os:latest 2>&1 | grep 'layers fetched' || exit 6
echo "== log first $a $(at)"
$OX admin status --sysroot=$S --run-dir=$R | grep -m2 'Version\|origin image'
grep -h '^options' $S/boot/loader/entries/*.conf
echo "== upgrade"
echo two > $T/usr/bin/two
img 2024-03-01 v2 --bootable latest
$OX admin upgrade --sysroot=$S --run-dir=$R >/dev/null || exit 7
$OX admin status --sysroot=$S --run-dir=$R | grep -m1 Version
echo "== end"
"#;
    let out = sysroot::run_prelude(scratch.path(), &body);
    let reg_log = reg.log();
    let (la, lb) = offsets(&out, "first");
    let gets = registry::blob_gets(&reg_log[la..lb], "os");
    assert_eq!(gets.len(), 1, "only the config: {gets:?}\n{out}");
    assert!(
        out.contains(": 0 layers fetched, 0 already present, 3 not needed;"),
        "{out}"
    );
    let a = out.find("== first").unwrap();
    assert!(
        out[..a].contains("is not bootable") && out[..a].contains("rc=1\ndeployments=0\n"),
        "{out}"
    );
    assert!(
        out[a..].contains(&format!(
            "    Version: v1\n    origin image: ostree-unverified-registry:{}/os:latest\n",
            reg.addr
        )),
        "{out}"
    );
    assert!(out[a..].contains("root=/dev/vda"), "{out}");
    assert!(out.contains("== upgrade\n    Version: v2\n== end"), "{out}");
}

//! `ostree-image-signed:` against a real registry (Debian's
//! docker-registry on 127.0.0.1), sigstore signatures attached as cosign
//! and containers/image attach them (tests/support/sigstore.rs: openssl
//! signs, real skopeo uploads), and policies in containers-policy.json
//! form: a signed image pulls; an unsigned one, one signed by another key,
//! one whose signature names another manifest, or one whose signature
//! names another tag is refused with no ref moved and no layer fetched.
//! Real skopeo reads the same policy file and the same registry as a
//! cross-check. A loop-mounted sysroot follows a signed image: `admin
//! switch` verifies it, an `admin upgrade` to unsigned content is refused
//! and deploys nothing, and verifies again once the content is signed.
//! Missing tools fail the tests.

#[path = "support/cli.rs"]
mod cli;
#[path = "support/net.rs"]
mod net;
#[path = "support/ns.rs"]
mod ns;
#[path = "support/registry.rs"]
mod registry;
#[path = "support/sigstore.rs"]
mod sigstore;
#[path = "support/sysroot.rs"]
mod sysroot;

use cli::{check, check_fails, output, repo_cmd, OX};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

/// oxtree on `repo` with `OXTREE_CONTAINERS_POLICY` set to `policy_env`,
/// or unset; its output.
fn ox_policy(repo: &Path, args: &[&str], policy_env: Option<&Path>) -> Output {
    let mut c = repo_cmd(OX, repo);
    c.args(args).env_remove("OXTREE_CONTAINERS_POLICY");
    if let Some(p) = policy_env {
        c.env("OXTREE_CONTAINERS_POLICY", p);
    }
    output(&mut c)
}

/// The container refs of `repo` (image and layer refs), sorted.
fn container_refs(repo: &Path) -> Vec<String> {
    let mut v: Vec<String> = check("oxtree", ox_policy(repo, &["refs"], None))
        .lines()
        .filter(|l| l.starts_with("ostree/container/"))
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

fn write_policy(dir: &Path, name: &str, json: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, json).unwrap();
    p
}

/// What real skopeo says of `image` under `policy` (with sigstore
/// attachments enabled for the registry): Ok, or its error.
fn skopeo_verdict(dir: &Path, reg: &str, policy: &Path, image: &str) -> Result<(), String> {
    let regd = dir.join("registries.d");
    std::fs::create_dir_all(&regd).unwrap();
    std::fs::write(
        regd.join("oxtree.yaml"),
        format!("docker:\n  {reg}:\n    use-sigstore-attachments: true\n"),
    )
    .unwrap();
    let dest = tempfile::tempdir_in(dir).unwrap();
    let o = Command::new(net::require("skopeo"))
        .arg("--policy")
        .arg(policy)
        .arg("--registries.d")
        .arg(&regd)
        .args(["copy", "-q", "--src-tls-verify=false"])
        .arg(format!("docker://{image}"))
        .arg(format!("oci:{}:x", dest.path().display()))
        .output()
        .unwrap();
    if o.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&o.stderr).into_owned())
    }
}

/// Debian's skopeo refuses every sigstore signature it finds with this
/// (its verification is compiled out); a skopeo that verifies accepts or
/// rejects for real.
const SKOPEO_DISABLED: &str = "sigstore disabled";

#[test]
fn signed_images_pull_and_refusals() {
    for b in ["python3", "openssl", "skopeo"] {
        net::require(b);
    }
    let reg = registry::Registry::start(false);
    let r = reg.addr.as_str();
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    let (k1, k1_pub) = sigstore::keypair(d, "k1");
    let (k2, k2_pub) = sigstore::keypair(d, "k2");

    // Three versions of a small tree, each pushed by oxtree itself.
    let b = d.join("build");
    check("oxtree", ox_policy(&b, &["init", "--mode=bare-user"], None));
    let tree = d.join("tree");
    std::fs::create_dir_all(tree.join("usr/bin")).unwrap();
    std::fs::create_dir_all(tree.join("usr/etc")).unwrap();
    std::fs::write(tree.join("usr/etc/os.conf"), "a=1\n").unwrap();
    let mut digests = Vec::new();
    // Every config and layer of the images.
    let mut image_blobs = Vec::new();
    for v in ["v1", "v2", "v3"] {
        std::fs::write(tree.join("usr/bin/tool"), format!("tool {v}\n").repeat(500)).unwrap();
        check(
            "oxtree",
            ox_policy(
                &b,
                &[
                    "commit",
                    "-b",
                    v,
                    "--timestamp=2024-01-01",
                    tree.to_str().unwrap(),
                ],
                None,
            ),
        );
        let out = check(
            "oxtree",
            ox_policy(
                &b,
                &[
                    "container",
                    "encapsulate",
                    "--json",
                    "-q",
                    "--insecure",
                    v,
                    &format!("docker://{r}/os:{v}"),
                ],
                None,
            ),
        );
        let j: Value = serde_json::from_str(&out).unwrap();
        digests.push(j["manifest-digest"].as_str().unwrap().to_string());
        image_blobs.push(j["config-digest"].as_str().unwrap().to_string());
        for l in j["layers"].as_array().unwrap() {
            image_blobs.push(l["digest"].as_str().unwrap().to_string());
        }
    }
    let (d1, d2, d3) = (&digests[0], &digests[1], &digests[2]);
    // v1 again under another tag of the same repository (its signature
    // names os:v1), and under another repository, with no signature.
    for target in ["os:copy", "unsigned:v1"] {
        check(
            "oxtree",
            ox_policy(
                &b,
                &[
                    "container",
                    "encapsulate",
                    "-q",
                    "--insecure",
                    "v1",
                    &format!("docker://{r}/{target}"),
                ],
                None,
            ),
        );
    }
    // os:v1 signed by k1; os:v2 by k2 (not trusted by the policy); os:v3
    // carries a valid k1 signature of v1's manifest (a replay).
    let id = |t: &str| format!("{r}/os:{t}");
    sigstore::attach(d, r, "os", d1, &[(&k1, &id("v1"), d1)]);
    sigstore::attach(d, r, "os", d2, &[(&k2, &id("v2"), d2)]);
    sigstore::attach(d, r, "os", d3, &[(&k1, &id("v3"), d1)]);

    let k1p = k1_pub.display();
    let p_k1 = write_policy(
        d,
        "k1.json",
        &format!(
            r#"{{"default":[{{"type":"reject"}}],"transports":{{
                "docker":{{"{r}":[{{"type":"sigstoreSigned","keyPath":"{k1p}","signedIdentity":{{"type":"matchRepoDigestOrExact"}}}}]}},
                "oci":{{"":[{{"type":"insecureAcceptAnything"}}]}}}}}}"#
        ),
    );
    let p_repo = write_policy(
        d,
        "repo.json",
        &format!(
            r#"{{"default":[{{"type":"reject"}}],"transports":{{"docker":{{
                "{r}/os":[{{"type":"sigstoreSigned","keyPath":"{k1p}","signedIdentity":{{"type":"matchRepository"}}}}]}}}}}}"#
        ),
    );
    let k2_data = {
        use std::io::Write;
        // base64 of the PEM, as keyData holds it.
        let mut c = Command::new("base64")
            .arg("-w0")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin
            .take()
            .unwrap()
            .write_all(&std::fs::read(&k2_pub).unwrap())
            .unwrap();
        String::from_utf8(c.wait_with_output().unwrap().stdout).unwrap()
    };
    let p_data = write_policy(
        d,
        "data.json",
        &format!(
            r#"{{"default":[{{"type":"reject"}}],"transports":{{"docker":{{
                "{r}/os:v2":[{{"type":"sigstoreSigned","keyData":"{k2_data}"}}]}}}}}}"#
        ),
    );
    let p_insecure = write_policy(
        d,
        "insecure.json",
        r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    );
    let p_reject = write_policy(d, "reject.json", r#"{"default":[{"type":"reject"}]}"#);
    let p_gpg = write_policy(
        d,
        "gpg.json",
        &format!(
            r#"{{"default":[{{"type":"reject"}}],"transports":{{"docker":{{
                "{r}":[{{"type":"signedBy","keyType":"GPGKeys","keyPath":"/etc/pki/x.gpg"}}]}}}}}}"#
        ),
    );

    let dest = d.join("dest");
    check(
        "oxtree",
        ox_policy(&dest, &["init", "--mode=bare-user"], None),
    );
    let signed = |t: &str| format!("ostree-image-signed:docker://{r}/{t}");
    let pull = |image: &str, policy: &Path| {
        ox_policy(
            &dest,
            &[
                "container",
                "image",
                "pull",
                "--json",
                "-q",
                "--insecure",
                "--policy",
                policy.to_str().unwrap(),
                image,
            ],
            None,
        )
    };

    // Refusals: the reason named, no ref moved, no blob fetched.
    let log_start = reg.log().len();
    let cases: &[(&str, &Path, &str)] = &[
        // (b) no signature at all
        ("unsigned:v1", &p_k1, "but the image has none"),
        // (c) signed by a key the policy does not trust
        (
            "os:v2",
            &p_k1,
            "cryptographic signature verification failed",
        ),
        // (d) a valid signature of another manifest
        (
            "os:v3",
            &p_k1,
            &format!("the signature is for manifest {d1}, not {d3}"),
        ),
        // the same manifest as os:v1 under another tag: its signature
        // names os:v1 (matchRepoDigestOrExact)
        ("os:copy", &p_k1, "is not accepted for"),
        ("os:v1", &p_reject, "default is \"reject\""),
        (
            "os:v1",
            &p_gpg,
            "signedBy (GPG simple signing) is not supported",
        ),
        (
            "os:v1",
            &p_insecure,
            "its default is insecureAcceptAnything",
        ),
        ("os:v1", &d.join("nonexistent.json"), "nonexistent.json"),
    ];
    for (image, policy, want) in cases {
        let e = check_fails("oxtree", pull(&signed(image), policy));
        assert!(e.contains(want), "{image} with {}: {e}", policy.display());
        if !want.contains("not supported") && !want.contains("json") && !want.contains("insecure") {
            assert!(
                e.contains(&format!(
                    "image docker://{r}/{image} refused by the signature policy"
                )),
                "{e}"
            );
        }
        assert_eq!(container_refs(&dest), Vec::<String>::new(), "{image}");
    }
    // The signature manifests were asked for; of the blobs, only
    // signature payloads were fetched: no config, no layer.
    let log = reg.log();
    let during = &log[log_start..];
    for x in [d1, d2, d3] {
        assert!(
            during.contains(&format!("GET /v2/os/manifests/sha256-{}.sig", &x[7..])),
            "{during}"
        );
    }
    let blob_gets: Vec<&str> = during
        .lines()
        .filter(|l| l.contains("\"GET /v2/") && l.contains("/blobs/"))
        .collect();
    assert!(!blob_gets.is_empty(), "{during}");
    for b in &image_blobs {
        assert!(
            !blob_gets.iter().any(|l| l.contains(b.as_str())),
            "{b} fetched for a refused image: {during}"
        );
    }

    // (a) The signed image pulls, the policy named by the environment.
    let out = check(
        "oxtree",
        ox_policy(
            &dest,
            &[
                "container",
                "image",
                "pull",
                "--json",
                "-q",
                "--insecure",
                &signed("os:v1"),
            ],
            Some(&p_k1),
        ),
    );
    let j: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["manifest-digest"], d1.as_str());
    let sig = j["signature"].as_str().unwrap();
    assert!(
        sig.contains(&format!("sigstore signature by key {k1p} for {r}/os:v1"))
            && sig.contains(&p_k1.display().to_string()),
        "{sig}"
    );
    let refs = container_refs(&dest);
    assert!(
        refs.iter()
            .any(|x| x.starts_with("ostree/container/image/")),
        "{refs:?}"
    );
    assert!(
        refs.iter()
            .filter(|x| x.starts_with("ostree/container/blob/"))
            .count()
            >= 2
    );
    // The merge commit records it.
    let image_ref = refs
        .iter()
        .find(|x| x.starts_with("ostree/container/image/"))
        .unwrap();
    let show = check(
        "oxtree",
        ox_policy(
            &dest,
            &[
                "show",
                "--print-metadata-key=oxtree.signature-policy",
                image_ref,
            ],
            None,
        ),
    );
    assert!(show.contains(&format!("key {k1p} for {r}/os:v1")), "{show}");

    // Other identity rules and key forms accept what they should.
    check("oxtree", pull(&signed("os:copy"), &p_repo));
    check("oxtree", pull(&signed("os:v2"), &p_data));
    let e = check_fails("oxtree", pull(&signed("os:v1"), &p_data));
    assert!(e.contains("default is \"reject\""), "{e}");

    // Unverified references stay unverified whatever the policy says;
    // --policy is for signed references only.
    check(
        "oxtree",
        ox_policy(
            &dest,
            &[
                "container",
                "image",
                "pull",
                "-q",
                "--insecure",
                &format!("ostree-unverified-registry:{r}/unsigned:v1"),
            ],
            Some(&p_reject),
        ),
    );
    let e = check_fails(
        "oxtree",
        pull(
            &format!("ostree-unverified-registry:{r}/unsigned:v1"),
            &p_k1,
        ),
    );
    assert!(
        e.contains("--policy applies to ostree-image-signed:"),
        "{e}"
    );

    // Real skopeo with the same policy file: it parses it, finds no
    // signature where oxtree found none, and finds the signature oxtree
    // accepted (Debian's build then stops: its sigstore verification is
    // compiled out).
    let v = skopeo_verdict(d, r, &p_k1, &format!("{r}/unsigned:v1"));
    assert!(
        v.as_ref()
            .is_err_and(|e| e.contains("A signature was required, but no signature exists")),
        "{v:?}"
    );
    for (image, accepted) in [("os:v1", true), ("os:v2", false), ("os:v3", false)] {
        match skopeo_verdict(d, r, &p_k1, &format!("{r}/{image}")) {
            Ok(()) => assert!(accepted, "skopeo accepted {image}"),
            Err(e) if e.contains(SKOPEO_DISABLED) => {}
            Err(e) => {
                assert!(!accepted, "skopeo refused {image}: {e}");
                assert!(!e.contains("no signature exists"), "{image}: {e}");
            }
        }
    }
}

/// (e) A host following `ostree-image-signed:docker://…` on a
/// loop-mounted sysroot: `admin switch` verifies and deploys; new content
/// pushed to the tag unsigned is refused by `admin upgrade` (no
/// deployment, no ref moved); pulled unverified into the same repository
/// it is still not deployed by `--deploy-only`; once signed, the upgrade
/// deploys it.
#[test]
fn a_host_follows_a_signed_image() {
    let reg = registry::Registry::start(false);
    let scratch = sysroot::scratch("oxtree-image-signed-", &["python3", "openssl", "skopeo"]);
    let d = scratch.path();
    sigstore::write_script(d);
    let (k1, k1_pub) = sigstore::keypair(d, "k1");
    let policy = write_policy(
        d,
        "policy.json",
        &format!(
            r#"{{"default":[{{"type":"reject"}}],"transports":{{"docker":{{
                "{}/os":[{{"type":"sigstoreSigned","keyPath":"{}"}}]}}}}}}"#,
            reg.addr,
            k1_pub.display()
        ),
    );
    let body = format!(
        r#"
REG={addr}; K1={k1}; B=$D/build
export OXTREE_CONTAINERS_POLICY={policy}
{sign_sh}
IMG=ostree-image-signed:docker://$REG/os:latest
commit 1.0 2024-01-01
$OX admin deploy --sysroot=$S --run-dir=$R --os=fakeos --karg=root=/dev/vda fakeos/main >/dev/null || exit 1
$OX --repo=$S/ostree/repo config set "registry \"$REG\".insecure" true || exit 2
$OX init --repo=$B --mode=bare-user >/dev/null || exit 3
img() {{ $OX --repo=$B commit -b os --bootable --timestamp=$1 --add-metadata-string=version=$2 $T >/dev/null || exit 4
  $OX --repo=$B container encapsulate --json -q --insecure os docker://$REG/os:latest > $D/os-$2.json || exit 5; }}
digest() {{ python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifest-digest"])' $D/os-$1.json; }}
ndeploy() {{ ls $S/ostree/deploy/fakeos/deploy | grep -c '\.origin$'; }}
crefs() {{ $OX --repo=$S/ostree/repo refs | grep '^ostree/container/' | sort | sha256sum | cut -c1-16; }}

echo "== switch"
img 2024-02-01 img1
sign os $K1 $REG/os:latest $(digest img1)
$OX admin switch --sysroot=$S --run-dir=$R $IMG 2>&1; echo rc=$?
echo "deployments=$(ndeploy)"
$OX admin status --sysroot=$S --run-dir=$R | grep -m2 'Version\|origin image'
$OX admin status --sysroot=$S --run-dir=$R --json > $D/st1.json || exit 7

echo "== unsigned upgrade"
echo new > $T/usr/bin/newtool
img 2024-03-01 img2
before=$(crefs)
$OX admin upgrade --sysroot=$S --run-dir=$R 2>&1; echo rc=$?
echo "deployments=$(ndeploy) refs-unchanged=$([ "$before" = "$(crefs)" ] && echo yes || echo no)"
$OX admin status --sysroot=$S --run-dir=$R | grep -m1 Version

echo "== unverified pull, deploy-only"
$OX --repo=$S/ostree/repo container image pull -q --insecure ostree-unverified-registry:$REG/os:latest >/dev/null || exit 6
$OX admin upgrade --sysroot=$S --run-dir=$R --deploy-only 2>&1; echo rc=$?
echo "deployments=$(ndeploy)"

echo "== signed upgrade"
sign os $K1 $REG/os:latest $(digest img2)
$OX admin upgrade --sysroot=$S --run-dir=$R 2>&1 | grep -E 'Signature policy|error'; echo rc=$?
$OX admin status --sysroot=$S --run-dir=$R | grep -m1 Version
cat $S/ostree/deploy/fakeos/deploy/*.origin | grep -c "^container-image-reference=$IMG$"
$OX admin upgrade --sysroot=$S --run-dir=$R; echo rc=$?
echo "== end"
"#,
        addr = reg.addr,
        k1 = k1.display(),
        policy = policy.display(),
        sign_sh = sigstore::SIGN_SH,
    );
    let out = sysroot::run_prelude(d, &body);
    let section = |from: &str, to: &str| -> String {
        let a = out.find(from).unwrap_or_else(|| panic!("{from}: {out}"));
        let b = out[a..].find(to).unwrap_or_else(|| panic!("{to}: {out}")) + a;
        out[a..b].to_string()
    };
    let img = format!("ostree-image-signed:docker://{}/os:latest", reg.addr);

    let sw = section("== switch", "== unsigned upgrade");
    assert!(
        sw.contains(&format!("Signature policy {}: ", policy.display()))
            && sw.contains(&format!(
                "sigstore signature by key {} for {}/os:latest",
                k1_pub.display(),
                reg.addr
            )),
        "{sw}"
    );
    assert!(sw.contains("rc=0\ndeployments=2\n"), "{sw}");
    assert!(
        sw.contains(&format!("    Version: img1\n    origin image: {img}\n")),
        "{sw}"
    );

    // bootc's status names how the image is verified.
    let st: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("st1.json")).unwrap()).unwrap();
    assert_eq!(
        st["status"]["otherDeployments"][0]["image"]["image"]["signature"], "containerPolicy",
        "{st}"
    );
    assert_eq!(st["spec"]["image"]["signature"], "containerPolicy", "{st}");

    let un = section("== unsigned upgrade", "== unverified pull");
    assert!(
        un.contains(&format!(
            "image docker://{}/os:latest refused by the signature policy {}",
            reg.addr,
            policy.display()
        )) && un.contains("but the image has none"),
        "{un}"
    );
    assert!(
        un.contains("rc=1\ndeployments=2 refs-unchanged=yes\n    Version: img1\n"),
        "{un}"
    );

    let dep = section("== unverified pull", "== signed upgrade");
    assert!(
        dep.contains("pulled without signature verification")
            && dep.ends_with("rc=1\ndeployments=2\n"),
        "{dep}"
    );

    let up = section("== signed upgrade", "== end");
    assert!(
        up.contains("Signature policy") && !up.contains("error"),
        "{up}"
    );
    assert!(up.contains("    Version: img2\n"), "{up}");
    assert!(up.contains("No update available.\nrc=0\n"), "{up}");
}

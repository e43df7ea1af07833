//! Signatures made by a signing peer, not by the tests: sigstore-rs (the
//! sigstore project's Rust client, tests/peers/sigstore-sign) makes a
//! cosign key pair in cosign's own encrypted key format and signs images
//! in a real registry (Debian's docker-registry on 127.0.0.1) the way
//! `cosign sign --key` does, pushing the `sha256-HEX.sig` attachment
//! itself. oxtree's `ostree-image-signed:` pull must accept what it
//! signed with the trusted key, refuse what it signed with another key,
//! and refuse an image it did not sign, moving no ref.
//! (tests/container_sign.rs has the policy cases; its signatures come
//! from openssl because Debian's skopeo and podman have sigstore
//! disabled.)

#[path = "support/cli.rs"]
mod cli;
#[path = "support/net.rs"]
mod net;
#[path = "support/registry.rs"]
mod registry;
#[path = "support/sigstore.rs"]
mod sigstore;

use serde_json::Value;
use std::path::Path;

fn container_refs(repo: &Path) -> Vec<String> {
    cli::ok(cli::OX, repo, &["refs"])
        .lines()
        .filter(|l| l.starts_with("ostree/container/"))
        .map(str::to_string)
        .collect()
}

#[test]
fn signatures_made_by_sigstore_rs_verify() {
    let ox = cli::OX;
    let reg = registry::Registry::start(false);
    let r = reg.addr.as_str();
    let d = tempfile::tempdir().unwrap();
    let d = d.path();

    // Three images of a small tree, pushed by oxtree.
    let b = d.join("build");
    cli::ok(ox, &b, &["init", "--mode=bare-user"]);
    let tree = d.join("tree");
    std::fs::create_dir_all(tree.join("usr/bin")).unwrap();
    let mut digests = Vec::new();
    for v in ["v1", "v2", "v3"] {
        std::fs::write(tree.join("usr/bin/tool"), format!("tool {v}\n").repeat(300)).unwrap();
        let t = tree.to_str().unwrap();
        cli::ok(ox, &b, &["commit", "-b", v, "--timestamp=2024-01-01", t]);
        let image = format!("docker://{r}/os:{v}");
        let args = [
            "container",
            "encapsulate",
            "--json",
            "-q",
            "--insecure",
            v,
            &image,
        ];
        let j: Value = serde_json::from_str(&cli::ok(ox, &b, &args)).unwrap();
        digests.push(j["manifest-digest"].as_str().unwrap().to_string());
    }

    // Keys made by the peer: the trusted one and another.
    let (trusted, other) = (d.join("trusted"), d.join("other"));
    for k in [&trusted, &other] {
        std::fs::create_dir_all(k).unwrap();
        sigstore::peer_run(&["keygen", k.to_str().unwrap(), "pw"]);
        let key = std::fs::read_to_string(k.join("cosign.key")).unwrap();
        assert!(key.contains("ENCRYPTED SIGSTORE PRIVATE KEY"), "{key}");
    }
    let key = |k: &Path| k.join("cosign.key").display().to_string();
    // v1 signed with the trusted key, v2 with the other one, v3 not at all.
    let signed = sigstore::peer_run(&["sign", &key(&trusted), "pw", &format!("{r}/os:v1")]);
    assert_eq!(
        signed.trim(),
        digests[0],
        "the peer signed another manifest"
    );
    sigstore::peer_run(&["sign", &key(&other), "pw", &format!("{r}/os:v2")]);
    let hex = digests[0].strip_prefix("sha256:").unwrap();
    assert!(
        reg.log()
            .contains(&format!("PUT /v2/os/manifests/sha256-{hex}.sig")),
        "the peer pushed no signature attachment for os:v1"
    );

    let policy = d.join("policy.json");
    std::fs::write(
        &policy,
        format!(
            r#"{{"default":[{{"type":"reject"}}],"transports":{{"docker":{{"{r}":[
            {{"type":"sigstoreSigned","keyPath":"{}","signedIdentity":{{"type":"matchRepoDigestOrExact"}}}}]}}}}}}"#,
            trusted.join("cosign.pub").display()
        ),
    )
    .unwrap();
    let dest = d.join("dest");
    cli::ok(ox, &dest, &["init", "--mode=bare-user"]);
    let pull = |tag: &str| {
        let image = format!("ostree-image-signed:docker://{r}/os:{tag}");
        let args = [
            "container",
            "image",
            "pull",
            "--json",
            "-q",
            "--insecure",
            &image,
        ];
        cli::run_env(ox, &dest, &args, &[("OXTREE_CONTAINERS_POLICY", &policy)])
    };

    // Signed by the peer with the trusted key: pulls.
    let o = pull("v1");
    let out = cli::check("pull of os:v1", o);
    let j: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["manifest-digest"], digests[0].as_str());
    let sig = j["signature"].as_str().unwrap();
    assert!(
        sig.contains(&format!(
            "sigstore signature by key {}",
            trusted.join("cosign.pub").display()
        )),
        "{sig}"
    );
    let after_v1 = container_refs(&dest);
    assert!(after_v1
        .iter()
        .any(|x| x.starts_with("ostree/container/image/")));

    // Signed with another key, and not signed: refused, no ref moves.
    for (tag, why) in [
        ("v2", "signature verification failed"),
        ("v3", "but the image has none"),
    ] {
        let e = cli::check_fails(format!("pull of os:{tag}"), pull(tag));
        assert!(e.contains(why), "os:{tag}: {e}");
        assert_eq!(container_refs(&dest), after_v1, "os:{tag} moved a ref");
    }
}

//! Sigstore signatures for the signature tests, made as cosign and
//! containers/image store them in a registry: an OCI manifest tagged
//! `sha256-HEX.sig` beside the image, one layer per signature, each layer
//! the "simple signing" payload (media type
//! `application/vnd.dev.cosign.simplesigning.v1+json`) with the base64
//! ECDSA P-256 signature in its `dev.cosignproject.cosign/signature`
//! annotation.
//!
//! Debian's skopeo 1.9.3 (and podman, on the same containers/image) has
//! sigstore signing and verification disabled ("Debian-local change:
//! sigstore disabled"), so the signer here is openssl (keys from `openssl
//! genpkey`, signatures from `openssl dgst -sha256 -sign`) and python3's
//! standard library composes the payload and an OCI layout holding the
//! attachment manifest; real skopeo uploads it (`copy --preserve-digests`,
//! so the bytes stay as written). Included with `#[path]`; missing tools
//! fail the test.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// `mksig.py LAYOUT KEY.pem IDENTITY DIGEST [KEY IDENTITY DIGEST]…`: an
/// OCI layout whose manifest tagged `sig` has one signature layer per
/// triple (a payload naming IDENTITY and DIGEST, signed by KEY); prints
/// the manifest's digest.
pub const MKSIG_PY: &str = r#"
import base64, hashlib, json, os, subprocess, sys
layout = sys.argv[1]
os.makedirs(layout + "/blobs/sha256", exist_ok=True)
def blob(data):
    d = hashlib.sha256(data).hexdigest()
    with open(f"{layout}/blobs/sha256/{d}", "wb") as f:
        f.write(data)
    return "sha256:" + d, len(data)
layers, diff_ids = [], []
args = sys.argv[2:]
for i in range(0, len(args), 3):
    key, ident, digest = args[i:i + 3]
    payload = json.dumps({
        "critical": {
            "identity": {"docker-reference": ident},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature",
        },
        "optional": {"creator": "oxtree tests"},
    }, separators=(",", ":")).encode()
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=payload,
                         check=True, capture_output=True).stdout
    d, n = blob(payload)
    diff_ids.append(d)
    layers.append({
        "mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
        "digest": d, "size": n,
        "annotations": {"dev.cosignproject.cosign/signature": base64.b64encode(sig).decode()},
    })
cd, cn = blob(json.dumps({"architecture": "", "os": "", "config": {},
                          "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode())
m = json.dumps({
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cn},
    "layers": layers,
}).encode()
md, mn = blob(m)
with open(layout + "/oci-layout", "w") as f:
    f.write('{"imageLayoutVersion":"1.0.0"}')
with open(layout + "/index.json", "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": mn,
        "annotations": {"org.opencontainers.image.ref.name": "sig"}}]}, f)
print(md)
"#;

/// Shell function `sign REPO KEY IDENTITY DIGEST` for scripts (needs
/// `$D` and `$REG`; `$D/mksig.py` is written by [`write_script`]):
/// attaches a signature of DIGEST to `$REG/REPO`.
pub const SIGN_SH: &str = r#"
sign() {
  l=$D/sig-$(date +%s%N)
  python3 $D/mksig.py $l $2 $3 $4 >/dev/null || exit 95
  skopeo copy -q --dest-tls-verify=false --preserve-digests oci:$l:sig docker://$REG/$1:sha256-${4#sha256:}.sig || exit 96
}
"#;

/// Write `mksig.py` into `dir`.
pub fn write_script(dir: &Path) -> PathBuf {
    let p = dir.join("mksig.py");
    std::fs::write(&p, MKSIG_PY).unwrap();
    p
}

/// An EC P-256 key pair from openssl: (private PEM, public PEM "PUBLIC
/// KEY").
pub fn keypair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let openssl = crate::net::require("openssl");
    let (private, public) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.pub")),
    );
    let st = Command::new(&openssl)
        .args([
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
        ])
        .arg(&private)
        .status()
        .unwrap();
    assert!(st.success(), "openssl genpkey");
    let st = Command::new(&openssl)
        .args(["pkey", "-pubout", "-in"])
        .arg(&private)
        .arg("-out")
        .arg(&public)
        .status()
        .unwrap();
    assert!(st.success(), "openssl pkey -pubout");
    (private, public)
}

/// Attach signatures to `REG/REPO`'s image whose manifest has `digest`:
/// one per `(key, identity, signed digest)` (the signed digest is
/// normally `digest`; another one makes a replayed signature).
pub fn attach(dir: &Path, reg: &str, repo: &str, digest: &str, sigs: &[(&Path, &str, &str)]) {
    let script = write_script(dir);
    let layout = tempfile::tempdir_in(dir).unwrap();
    let mut args: Vec<String> = vec![
        script.display().to_string(),
        layout.path().display().to_string(),
    ];
    for (key, ident, d) in sigs {
        args.extend([key.display().to_string(), ident.to_string(), d.to_string()]);
    }
    let o = Command::new(crate::net::require("python3"))
        .args(&args)
        .output()
        .unwrap();
    assert!(o.status.success(), "mksig.py: {o:?}");
    let hex = digest.strip_prefix("sha256:").unwrap();
    let o = Command::new(crate::net::require("skopeo"))
        .args([
            "copy",
            "-q",
            "--dest-tls-verify=false",
            "--preserve-digests",
        ])
        .arg(format!("oci:{}:sig", layout.path().display()))
        .arg(format!("docker://{reg}/{repo}:sha256-{hex}.sig"))
        .output()
        .unwrap();
    assert!(o.status.success(), "skopeo copy of the signature: {o:?}");
}

/// The signing peer, tests/peers/sigstore-sign: the sigstore project's
/// Rust client (sigstore-rs) making cosign keys and signatures. Built
/// here on first use with the cargo running the tests, into a target
/// directory outside the clone (minutes the first time; the lock file
/// pins it), so CI's clean clones reuse the build.
pub fn peer() -> PathBuf {
    static PEER: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PEER.get_or_init(|| {
        let manifest =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/sigstore-sign/Cargo.toml");
        let target = Path::new("/var/cache/oxtree-tests/peer-target");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let o = Command::new(cargo)
            .args(["build", "--release", "--locked", "-q", "--manifest-path"])
            .arg(&manifest)
            .env("CARGO_TARGET_DIR", target)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "building the sigstore-rs signing peer: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        target.join("release/sigstore-sign")
    })
    .clone()
}

/// `sigstore-sign ARGS…`; its stdout.
#[track_caller]
pub fn peer_run(args: &[&str]) -> String {
    let o = Command::new(peer()).args(args).output().unwrap();
    assert!(
        o.status.success(),
        "sigstore-sign {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

//! `oxtree container encapsulate` against the real consumers of OCI
//! images: skopeo (inspect, copy), umoci (unpack), the real `ostree`
//! (fsck of the repository an unpacked image carries), a real registry
//! (Debian's docker-registry, plain HTTP and TLS) and podman (pull, create,
//! cp: it cannot start containers here). Loopback network only; podman
//! runs with a private storage under a temporary directory. Missing tools
//! fail the tests (scripts/install-deps.sh installs them).

#[path = "support/apt_repo.rs"]
mod apt_repo;
#[path = "support/cli.rs"]
mod cli;
#[path = "support/fixture.rs"]
mod fixture;
#[path = "support/host_base.rs"]
mod host_base;
#[path = "support/net.rs"]
mod net;
#[path = "support/ns.rs"]
mod ns;
#[path = "support/registry.rs"]
mod registry;
#[path = "support/sysroot.rs"]
mod sysroot;

use cli::{check, fails, ok, ok_cmd, OX};
use net::require;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

#[track_caller]
fn tool(bin: &str, args: &[&str]) -> String {
    ok_cmd(Command::new(require(bin)).args(args))
}

/// podman with a private storage under `pm`: its stdout.
fn podman_in(pm: &Path, args: &[&str]) -> String {
    let mut all = vec![
        format!("--root={}", pm.join("root").display()),
        format!("--runroot={}", pm.join("run").display()),
        // Not vfs: it copies the whole tree for each of ~60 layers.
        "--storage-driver=overlay".to_string(),
        "--cgroup-manager=cgroupfs".to_string(),
        "--events-backend=file".to_string(),
    ];
    all.extend(args.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    tool("podman", &refs)
}

/// `encapsulate --json`: the result.
#[track_caller]
fn encapsulate(repo: &Path, rev: &str, image: &str, extra: &[&str]) -> Value {
    let mut args = vec!["container", "encapsulate", "--json", "-q", rev, image];
    args.extend_from_slice(extra);
    serde_json::from_str(&ok(OX, repo, &args)).unwrap()
}

fn write(root: &Path, rel: &str, data: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
}

/// A small OS tree with a dpkg database: packages `(name, source, files)`,
/// a kernel, content no package owns, `/etc` (as `usr/etc`) and one file
/// whose `user.component` xattr names its component.
fn make_tree(root: &Path, packages: &[(&str, &str, usize)]) {
    let mut status = String::new();
    for (name, source, files) in packages {
        let mut list = String::from("/.\n/usr\n/usr/share\n");
        list.push_str(&format!("/usr/share/{name}\n"));
        for i in 0..*files {
            let rel = format!("usr/share/{name}/file{i}");
            // Distinct, somewhat compressible content per package.
            write(root, &rel, &format!("{name} {i}\n").repeat(200 + i));
            list.push_str(&format!("/{rel}\n"));
        }
        write(
            root,
            &format!("usr/etc/{name}.conf"),
            &format!("{name}=1\n"),
        );
        list.push_str(&format!("/etc/{name}.conf\n"));
        write(
            root,
            &format!("usr/share/dpkg/database/info/{name}:amd64.list"),
            &list,
        );
        status.push_str(&format!(
            "Package: {name}\nStatus: install ok installed\nSource: {source}\nInstalled-Size: {}\n\n",
            files * 2
        ));
    }
    write(root, "usr/share/dpkg/database/status", &status);
    write(root, "usr/lib/modules/6.1.0-test/vmlinuz", "not a kernel");
    write(
        root,
        "usr/lib/modules/6.1.0-test/initramfs.img",
        "not an initramfs",
    );
    write(
        root,
        "usr/lib/os-release",
        "ID=oxtree-test\nPRETTY_NAME=\"test\"\n",
    );
    std::os::unix::fs::symlink("../usr/lib/os-release", root.join("usr/etc/os-release")).unwrap();
    write(root, "usr/local-build/stamp", "built here\n");
    let custom = root.join("usr/lib/custom.bin");
    std::fs::write(&custom, "custom component\n").unwrap();
    rustix::fs::setxattr(
        &custom,
        "user.component",
        b"custom",
        rustix::fs::XattrFlags::empty(),
    )
    .expect("setting user.component (the test directory needs user xattrs)");
}

fn commit(repo: &Path, tree: &Path, version: &str) -> String {
    let out = ok(
        OX,
        repo,
        &[
            "commit",
            "-b",
            "test/os",
            "--bootable",
            &format!("--add-metadata-string=version={version}"),
            "-s",
            "test os",
            tree.to_str().unwrap(),
        ],
    );
    out.trim().to_string()
}

fn packages(n: usize) -> Vec<(String, String, usize)> {
    (0..n)
        .map(|i| {
            // Pairs of binaries from one source package.
            (format!("pkg{i}"), format!("src{}", i / 2), 1 + i % 4)
        })
        .collect()
}

fn setup(dir: &Path, pkgs: &[(String, String, usize)], version: &str) -> (PathBuf, String) {
    let repo = dir.join("repo");
    if !repo.exists() {
        ok(OX, &repo, &["init", "--mode=archive"]);
    }
    let tree = dir.join(format!("tree-{version}"));
    let refs: Vec<(&str, &str, usize)> = pkgs
        .iter()
        .map(|(a, b, c)| (a.as_str(), b.as_str(), *c))
        .collect();
    make_tree(&tree, &refs);
    let c = commit(&repo, &tree, version);
    (repo, c)
}

fn layer_components(manifest: &Value) -> Vec<Vec<String>> {
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            l["annotations"]["ostree.components"]
                .as_str()
                .map(|s| s.split(',').map(str::to_string).collect())
                .unwrap_or_default()
        })
        .collect()
}

fn layer_digests(manifest: &Value) -> Vec<String> {
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

/// The manifest of `oci:DIR:TAG` as skopeo reads it.
fn raw_manifest(image: &str, extra: &[&str]) -> Value {
    let mut args = vec!["inspect", "--raw"];
    args.extend_from_slice(extra);
    args.push(image);
    serde_json::from_str(&tool("skopeo", &args)).unwrap()
}

#[test]
fn small_commit_to_oci_layout_archive_and_back() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (repo, commit) = setup(d, &packages(12), "1.0");
    let img = d.join("img");
    let image = format!("oci:{}:v1", img.display());
    let out = encapsulate(&repo, "test/os", &image, &["--label", "org.example.k=v"]);
    assert_eq!(out["commit"], commit.as_str());

    // skopeo reads the labels of the config.
    let inspect: Value = serde_json::from_str(&tool("skopeo", &["inspect", &image])).unwrap();
    let labels = &inspect["Labels"];
    assert_eq!(labels["containers.bootc"], "1", "{inspect}");
    assert_eq!(labels["ostree.bootable"], "true");
    assert_eq!(labels["ostree.commit"], commit.as_str());
    assert_eq!(labels["version"], "1.0");
    assert_eq!(labels["org.example.k"], "v");
    let config: Value =
        serde_json::from_str(&tool("skopeo", &["inspect", "--config", &image])).unwrap();
    let diff_ids = config["rootfs"]["diff_ids"].as_array().unwrap();
    assert_eq!(labels["ostree.final-diffid"], *diff_ids.last().unwrap());

    // The layers: the commit first, then kernel, unpackaged, packages; the
    // two binaries of a source package together; the xattr's component.
    let manifest = raw_manifest(&image, &[]);
    assert_eq!(manifest["digest"], Value::Null);
    let comps = layer_components(&manifest);
    assert!(comps.len() >= 5, "{comps:?}");
    assert!(comps[0].is_empty(), "the commit layer names no components");
    assert!(comps.iter().any(|c| c.contains(&"@kernel".to_string())));
    assert!(comps.iter().any(|c| c.contains(&"@unpackaged".to_string())));
    assert!(
        comps.iter().any(|c| c == &vec!["custom".to_string()]),
        "{comps:?}"
    );
    for i in (0..12).step_by(2) {
        let l = comps
            .iter()
            .find(|c| c.contains(&format!("pkg{i}")))
            .unwrap_or_else(|| panic!("pkg{i} in no layer: {comps:?}"));
        assert!(l.contains(&format!("pkg{}", i + 1)), "{comps:?}");
    }

    // umoci unpacks it (as root: owners kept); /etc is there, and the
    // repository in it is one the real ostree finds whole.
    let bundle = d.join("bundle");
    tool(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:v1", img.display()),
            bundle.to_str().unwrap(),
        ],
    );
    let rootfs = bundle.join("rootfs");
    assert_eq!(
        std::fs::read_to_string(rootfs.join("usr/share/pkg3/file0")).unwrap(),
        "pkg3 0\n".repeat(200)
    );
    assert_eq!(
        std::fs::read_to_string(rootfs.join("etc/pkg3.conf")).unwrap(),
        "pkg3=1\n"
    );
    assert!(!rootfs.join("usr/etc").exists());
    let ostree_repo = rootfs.join("sysroot/ostree/repo");
    assert!(std::fs::read_to_string(ostree_repo.join("config"))
        .unwrap()
        .contains("mode=bare-split-xattrs"));
    let fsck = tool(
        "ostree",
        &[&format!("--repo={}", ostree_repo.display()), "fsck"],
    );
    assert!(fsck.contains("no errors"), "{fsck}");
    let ls = tool(
        "ostree",
        &[
            &format!("--repo={}", ostree_repo.display()),
            "ls",
            "-R",
            &commit,
        ],
    );
    assert!(ls.contains("/usr/etc/pkg3.conf"), "{ls}");

    // skopeo copies it; the same commit again gives the same digests, in
    // a layout and in an archive.
    let copy = format!("oci:{}:v1", d.join("copy").display());
    tool("skopeo", &["copy", "-q", &image, &copy]);
    let again = encapsulate(
        &repo,
        &commit,
        &format!("oci:{}:v1", d.join("img2").display()),
        &["--label", "org.example.k=v"],
    );
    assert_eq!(again["manifest-digest"], out["manifest-digest"]);
    assert_eq!(again["config-digest"], out["config-digest"]);
    let archive = format!("oci-archive:{}:v1", d.join("img.tar").display());
    let arch = encapsulate(&repo, &commit, &archive, &["--label", "org.example.k=v"]);
    assert_eq!(arch["manifest-digest"], out["manifest-digest"]);
    let inspect: Value = serde_json::from_str(&tool("skopeo", &["inspect", &archive])).unwrap();
    assert_eq!(inspect["Digest"], out["manifest-digest"]);
    // The archive pulls back to the commit.
    let dest = d.join("from-archive");
    let pulled = pull(&dest, &format!("ostree-unverified-image:{archive}"), &[]);
    assert_eq!(pulled["commit"], commit.as_str());
    let e = fails(
        OX,
        &dest,
        &[
            "container",
            "image",
            "pull",
            &format!("oci-archive:{}:nope", d.join("img.tar").display()),
        ],
    );
    assert!(e.contains("no manifest tagged \"nope\""), "{e}");

    // Bad requests are refused.
    let e = fails(OX, &repo, &["container", "encapsulate", "test/os", "ftp:x"]);
    assert!(e.contains("unknown transport"), "{e}");
    let e = fails(
        OX,
        &repo,
        &[
            "container",
            "encapsulate",
            "--max-layers=2",
            "test/os",
            &image,
        ],
    );
    assert!(e.contains("--max-layers"), "{e}");
    let bad = d.join("bad.json");
    std::fs::write(&bad, "{").unwrap();
    let e = fails(
        OX,
        &repo,
        &[
            "container",
            "encapsulate",
            "--previous-build-manifest",
            bad.to_str().unwrap(),
            "test/os",
            &image,
        ],
    );
    assert!(e.contains("not an OCI image manifest"), "{e}");
}

#[test]
fn previous_manifest_keeps_the_layers_of_unchanged_packages() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let pkgs = packages(40);
    let (repo, _) = setup(d, &pkgs, "1");
    let first = format!("oci:{}:v1", d.join("img").display());
    // Few layers: the 40 packages share them (bin-packed).
    encapsulate(&repo, "test/os", &first, &["--max-layers=12"]);
    let m1 = raw_manifest(&first, &[]);
    let m1_path = d.join("manifest-v1.json");
    std::fs::write(&m1_path, serde_json::to_vec(&m1).unwrap()).unwrap();

    // The next build adds a package of a new source.
    let mut more = pkgs.clone();
    more.push(("newpkg".into(), "newsrc".into(), 3));
    let (_, _) = setup(d, &more, "2");
    let second = format!("oci:{}:v2", d.join("img").display());
    encapsulate(
        &repo,
        "test/os",
        &second,
        &[
            "--max-layers=12",
            "--previous-build-manifest",
            m1_path.to_str().unwrap(),
        ],
    );
    let m2 = raw_manifest(&second, &[]);
    let (d1, d2) = (layer_digests(&m1), layer_digests(&m2));
    let (c1, c2) = (layer_components(&m1), layer_components(&m2));
    assert!(d2.len() <= 12);
    // Package layers are unchanged; the dpkg database's layer changed,
    // and the commit layer; the new package went into one layer.
    let kept = d1.iter().filter(|d| d2.contains(d)).count();
    let package_layers = c1
        .iter()
        .filter(|c| c.iter().any(|n| n.starts_with("pkg")))
        .count();
    assert!(
        kept + 1 >= package_layers,
        "only {kept} of {} layers kept:\n{c1:?}\n{c2:?}",
        d1.len()
    );
    for (i, c) in c1.iter().enumerate().skip(1) {
        if !c.contains(&"@unpackaged".to_string()) && !c.is_empty() {
            let j = c2
                .iter()
                .position(|x| x.iter().any(|n| c.contains(n)))
                .unwrap();
            assert!(
                c.iter().all(|n| c2[j].contains(n)),
                "layer {i} {c:?} was split: {c2:?}"
            );
        }
    }
    assert!(c2.iter().any(|c| c.contains(&"newpkg".to_string())));

    // Without the previous manifest the plan may move everything; with it
    // most layers are shared.
    assert!(kept * 2 > d1.len(), "{kept} of {} kept", d1.len());
}

#[test]
fn tls_registry_needs_its_ca() {
    let reg = registry::Registry::start(true);
    let tmp = tempfile::tempdir().unwrap();
    let (repo, _) = setup(tmp.path(), &packages(4), "1");
    let image = format!("docker://{}/oxtree/small:v1", reg.addr);
    let e = fails(
        OX,
        &repo,
        &["container", "encapsulate", "-q", "test/os", &image],
    );
    assert!(e.contains("registry"), "{e}");
    let certs = reg.cert_dir.clone().unwrap();
    let out = encapsulate(
        &repo,
        "test/os",
        &image,
        &["--cert-dir", certs.to_str().unwrap()],
    );
    assert!(out["pushed-blobs"].as_u64().unwrap() >= 4, "{out}");
    let inspect: Value = serde_json::from_str(&tool(
        "skopeo",
        &["inspect", "--cert-dir", certs.to_str().unwrap(), &image],
    ))
    .unwrap();
    assert_eq!(inspect["Digest"], out["manifest-digest"], "{}", reg.log());
}

#[test]
fn host_base_to_a_registry_then_podman() {
    let reg = registry::Registry::start(false);
    let repo = host_base::repo();
    let image = format!("docker://{}/oxtree/host:v1", reg.addr);
    let out = encapsulate(&repo, host_base::REF, &image, &["--insecure"]);

    let inspect: Value =
        serde_json::from_str(&tool("skopeo", &["inspect", "--tls-verify=false", &image])).unwrap();
    assert_eq!(inspect["Labels"]["containers.bootc"], "1", "{inspect}");
    assert_eq!(inspect["Labels"]["ostree.bootable"], "true");
    assert_eq!(inspect["Digest"], out["manifest-digest"]);
    let layers = inspect["Layers"].as_array().unwrap();
    assert!(
        layers.len() > 10 && layers.len() <= 64,
        "{} layers",
        layers.len()
    );
    let manifest = raw_manifest(&image, &["--tls-verify=false"]);
    let comps = layer_components(&manifest);
    assert!(
        comps.iter().any(|c| c.contains(&"libc6".to_string())),
        "no layer names libc6: {comps:?}"
    );
    let kernel = comps
        .iter()
        .find(|c| c.contains(&"@kernel".to_string()))
        .expect("a kernel layer");
    assert!(
        kernel.iter().any(|c| c.starts_with("linux-image-")),
        "{kernel:?}"
    );

    // Pushing the same image again uploads nothing.
    let again = encapsulate(&repo, host_base::REF, &image, &["--insecure"]);
    assert_eq!(again["pushed-blobs"], 0);
    assert_eq!(again["manifest-digest"], out["manifest-digest"]);

    // podman (private storage) pulls it and reads a file of it.
    let pm = tempfile::tempdir().unwrap();
    let podman = |args: &[&str]| podman_in(pm.path(), args);
    podman(&["pull", "-q", "--tls-verify=false", &image]);
    let name = format!("oxtree-test-{}", std::process::id());
    podman(&[
        "create",
        "--name",
        &name,
        &image["docker://".len()..],
        "/bin/true",
    ]);
    let tar = Command::new(require("podman"))
        .args([
            "--root",
            pm.path().join("root").to_str().unwrap(),
            "--runroot",
            pm.path().join("run").to_str().unwrap(),
            "--storage-driver=overlay",
            "cp",
            &format!("{name}:/usr/lib/os-release"),
            "-",
        ])
        .output()
        .unwrap();
    let tar = check("podman cp", tar);
    assert!(tar.contains("ID=debian"), "{tar}");
    podman(&["rm", &name]);
    podman(&["rmi", "-a"]);

    // Pulled back: the very commit.
    let base = ok(OX, &repo, &["rev-parse", host_base::REF])
        .trim()
        .to_string();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("dest");
    let reg_ref = format!("ostree-unverified-registry:{}/oxtree/host:v1", reg.addr);
    let pulled = pull(&dest, &reg_ref, &["--insecure"]);
    assert_eq!(pulled["commit"], base.as_str(), "{pulled}");
    assert_eq!(inspect["Labels"]["ostree.commit"], base.as_str());

    // The next build adds one package: with the previous manifest, the
    // other packages' layers are the same blobs, and a pull of it fetches
    // only the changed layers.
    let work = tmp.path().join("work");
    let st = Command::new("cp")
        .arg("-al")
        .arg(&repo)
        .arg(&work)
        .status()
        .unwrap();
    assert!(st.success(), "cp -al of the host base");
    let overlay = tmp.path().join("overlay");
    let db = "usr/share/dpkg/database";
    let mut status = ok(
        OX,
        &work,
        &["cat", host_base::REF, &format!("/{db}/status")],
    );
    status.push_str(
        "\nPackage: oxtree-extra\nStatus: install ok installed\nArchitecture: all\n\
         Installed-Size: 8\nVersion: 1\nDescription: a package added by the test\n",
    );
    write(&overlay, &format!("{db}/status"), &status);
    write(
        &overlay,
        &format!("{db}/info/oxtree-extra.list"),
        "/.\n/usr\n/usr/share\n/usr/share/oxtree-extra\n/usr/share/oxtree-extra/data\n",
    );
    write(
        &overlay,
        "usr/share/oxtree-extra/data",
        &"extra\n".repeat(1000),
    );
    let v2 = ok(
        OX,
        &work,
        &[
            "commit",
            "-b",
            host_base::REF,
            "--bootable",
            &format!("--tree=ref={}", host_base::REF),
            &format!("--tree=dir={}", overlay.display()),
            "--add-metadata-string=version=2",
            "-s",
            "one more package",
        ],
    )
    .trim()
    .lines()
    .last()
    .unwrap()
    .to_string();
    let m1_path = tmp.path().join("m1.json");
    std::fs::write(&m1_path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    let image2 = format!("docker://{}/oxtree/host:v2", reg.addr);
    let out2 = encapsulate(
        &work,
        host_base::REF,
        &image2,
        &[
            "--insecure",
            "--previous-build-manifest",
            m1_path.to_str().unwrap(),
        ],
    );
    let m2 = raw_manifest(&image2, &["--tls-verify=false"]);
    let (d1, d2) = (layer_digests(&manifest), layer_digests(&m2));
    let changed: Vec<&String> = d2.iter().filter(|d| !d1.contains(d)).collect();
    // The commit layer, the dpkg database's layer and the
    // layer the new package went into.
    assert!(
        changed.len() <= 3,
        "{} of {} layers changed",
        changed.len(),
        d2.len()
    );
    assert!(out2["pushed-blobs"].as_u64().unwrap() <= 4, "{out2}");
    let pulled2 = pull(
        &dest,
        &format!("ostree-unverified-registry:{}/oxtree/host:v2", reg.addr),
        &["--insecure"],
    );
    assert_eq!(pulled2["commit"], v2.as_str());
    assert!(
        pulled2["layers-fetched"].as_u64().unwrap() <= 3,
        "{pulled2}"
    );
    let fsck = ok(OX, &dest, &["fsck"]);
    assert!(fsck.contains("no errors"), "{fsck}");
    eprintln!(
        "host image: {} layers; one more package changed {} of them; the pull of v2 fetched {}",
        d2.len(),
        changed.len(),
        pulled2["layers-fetched"]
    );
}

/// A derived image, as users build one: `FROM` the encapsulated host base,
/// `RUN apt-get install -y nano` (from an apt repository on 127.0.0.1)
/// and a file in /etc, built by podman (`--isolation=chroot`: crun cannot
/// start containers here) and pushed to the registry. Pulled, only the
/// derived layer is new; its tree goes over the base (`/etc` into
/// `/usr/etc`, apt's `/var` left out, dpkg's database in `/usr`), and a
/// sysroot that switches to the image deploys it with nano in it.
#[test]
fn derived_image_built_by_podman_deploys() {
    for b in sysroot::TOOLS
        .iter()
        .chain(&["podman", "dpkg-scanpackages"])
    {
        ns::require(b);
    }
    let reg = registry::Registry::start(false);
    let repo = host_base::repo();
    let base_image = format!("{}/oxtree/host:v1", reg.addr);
    encapsulate(
        &repo,
        host_base::REF,
        &format!("docker://{base_image}"),
        &["--insecure"],
    );
    let tmp = tempfile::Builder::new()
        .prefix("oxtree-derived-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let apt = tmp.path().join("www");
    apt_repo::with_nano(&apt.join("apt"));
    let (_www, url) = net::python_server(&apt);
    let ctx = tmp.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Containerfile"),
        format!(
            "FROM {base_image}\n\
             RUN rm -f /etc/apt/sources.list /etc/apt/sources.list.d/* && \\\n\
             echo 'deb [trusted=yes] {url}apt trixie main' > /etc/apt/sources.list.d/test.list && \\\n\
             apt-get update -qq && apt-get install -y -qq nano && \\\n\
             echo derived > /etc/oxtree-derived\n"
        ),
    )
    .unwrap();
    let derived = format!("{}/oxtree/derived:v1", reg.addr);
    let pm = tmp.path().join("podman");
    let podman = |args: &[&str]| podman_in(&pm, args);
    podman(&[
        "build",
        "-q",
        "--isolation=chroot",
        "--tls-verify=false",
        "-t",
        &derived,
        ctx.to_str().unwrap(),
    ]);
    podman(&["push", "-q", "--tls-verify=false", &derived]);
    let _ = podman(&["rmi", "-a", "-f"]);

    // Pulled into a repository that has the base image: only the derived
    // layer is fetched, and what is deployed is the merge commit.
    let dest = tmp.path().join("dest");
    pull(
        &dest,
        &format!("ostree-unverified-registry:{base_image}"),
        &["--insecure"],
    );
    let d = pull(
        &dest,
        &format!("ostree-unverified-registry:{derived}"),
        &["--insecure"],
    );
    assert_eq!(d["derived-layers"], 1, "{d}");
    assert_eq!(d["layers-fetched"], 1, "{d}");
    assert!(
        d["derived-dropped"].as_u64().unwrap() > 0,
        "apt left nothing in /var? {d}"
    );
    let base = ok(OX, &repo, &["rev-parse", host_base::REF]);
    assert_eq!(d["commit"], base.trim(), "{d}");
    let deploy = d["deploy-commit"].as_str().unwrap().to_string();
    assert_ne!(deploy, base.trim());
    let ls = ok(
        OX,
        &dest,
        &["ls", &deploy, "/usr/bin/nano", "/usr/etc/oxtree-derived"],
    );
    assert!(ls.contains("/usr/bin/nano"), "{ls}");
    let status = ok(
        OX,
        &dest,
        &["cat", &deploy, "/usr/share/dpkg/database/status"],
    );
    assert!(
        status.contains("\nPackage: nano\n"),
        "nano not in the dpkg database"
    );
    let var = ok(OX, &dest, &["ls", &deploy, "/var"]);
    assert_eq!(var.lines().count(), 1, "/var should be empty: {var}");
    assert!(ok(OX, &dest, &["fsck"]).contains("no errors"));

    // A sysroot switches to the derived image and deploys it.
    let script = format!(
        r#"IMG_SIZE=6G; OSNAME=debian
{prelude}
REG={reg}
$OX --repo=$S/ostree/repo pull-local {repo} {base_ref} >/dev/null || exit 20
$OX admin deploy --sysroot=$S --run-dir=$R --os=debian {base_ref} >/dev/null || exit 21
$OX --repo=$S/ostree/repo config set "registry \"$REG\".insecure" true || exit 22
$OX admin switch --sysroot=$S --run-dir=$R ostree-unverified-registry:{derived} > $D/switch.out 2>&1 || {{ cat $D/switch.out; exit 23; }}
grep 'derived layers applied' $D/switch.out
dep=$S/ostree/deploy/debian/deploy/$($OX admin status --sysroot=$S --run-dir=$R --json | python3 -c "import json,sys;d=json.load(sys.stdin)['deployments'][0];print(d['checksum']+'.'+str(d['serial']))")
test -x $dep/usr/bin/nano && echo has-nano
echo "etc: $(cat $dep/etc/oxtree-derived)"
$OX admin status --sysroot=$S --run-dir=$R | grep -E 'Version|ostree-unverified'
"#,
        prelude = sysroot::prelude(tmp.path()),
        reg = reg.addr,
        repo = repo.display(),
        base_ref = host_base::REF,
    );
    let out = ns::run_unshared(&script);
    assert!(out.contains("has-nano"), "{out}");
    assert!(out.contains("etc: derived"), "{out}");
    assert!(out.contains("1 derived layers applied"), "{out}");
    assert!(
        out.contains(&format!("ostree-unverified-registry:{derived}")),
        "{out}"
    );
}

/// Pull `image` into `repo` (created if need be); the JSON result.
fn pull(repo: &Path, image: &str, extra: &[&str]) -> Value {
    if !repo.exists() {
        ok(OX, repo, &["init", "--mode=bare-user"]);
    }
    let mut args = vec!["container", "image", "pull", "--json", "-q", image];
    args.extend_from_slice(extra);
    serde_json::from_str(&ok(OX, repo, &args)).unwrap()
}

#[test]
fn pull_recreates_the_commit_and_fetches_only_new_layers() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let pkgs = packages(12);
    let (repo, commit) = setup(d, &pkgs, "1");
    let img = d.join("img");
    encapsulate(&repo, "test/os", &format!("oci:{}:v1", img.display()), &[]);
    let m1 = raw_manifest(&format!("oci:{}:v1", img.display()), &[]);
    let n1 = m1["layers"].as_array().unwrap().len() as u64;

    let dest = d.join("dest");
    let imgref = format!("ostree-unverified-image:oci:{}:v1", img.display());
    let out = pull(&dest, &imgref, &[]);
    assert_eq!(out["commit"], commit.as_str(), "the same commit: {out}");
    assert_eq!(out["layers-fetched"], n1);
    let fsck = ok(OX, &dest, &["fsck"]);
    assert!(fsck.contains("no errors"), "{fsck}");
    let fsck = tool("ostree", &[&format!("--repo={}", dest.display()), "fsck"]);
    assert!(fsck.contains("no errors"), "{fsck}");
    let refs = ok(OX, &dest, &["refs"]);
    let blob_refs = refs
        .lines()
        .filter(|r| r.starts_with("ostree/container/blob/sha256_3A_"))
        .count();
    assert_eq!(blob_refs as u64, n1, "{refs}");
    assert!(refs.contains("ostree/container/image/oci_3A_"), "{refs}");
    let list = ok(OX, &dest, &["container", "image", "list"]);
    assert_eq!(list.trim(), format!("oci:{}:v1", img.display()));
    // The merge commit's parent is the image's commit; its files are there.
    let cat = ok(OX, &dest, &["cat", &commit, "/usr/share/pkg3/file0"]);
    assert_eq!(cat, "pkg3 0\n".repeat(200));

    // Again: nothing to fetch. A new version: only its new layers.
    let again = pull(&dest, &imgref, &[]);
    assert_eq!(again["layers-fetched"], 0);
    let m1_path = d.join("m1.json");
    std::fs::write(&m1_path, serde_json::to_vec(&m1).unwrap()).unwrap();
    let mut more = pkgs.clone();
    more.push(("newpkg".into(), "newsrc".into(), 2));
    let (_, commit2) = setup(d, &more, "2");
    encapsulate(
        &repo,
        "test/os",
        &format!("oci:{}:v2", img.display()),
        &["--previous-build-manifest", m1_path.to_str().unwrap()],
    );
    let out2 = pull(
        &dest,
        &format!("ostree-unverified-image:oci:{}:v2", img.display()),
        &[],
    );
    assert_eq!(out2["commit"], commit2.as_str());
    // The commit layer, the dpkg database's layer, the new one.
    assert!(out2["layers-fetched"].as_u64().unwrap() <= 3, "{out2}");
    assert!(out2["layers-present"].as_u64().unwrap() + 2 >= n1, "{out2}");

    // Through a registry too.
    let reg = registry::Registry::start(false);
    let image = format!("docker://{}/oxtree/small:v1", reg.addr);
    encapsulate(&repo, &commit, &image, &["--insecure"]);
    let dest2 = d.join("dest2");
    let out3 = pull(
        &dest2,
        &format!("ostree-unverified-registry:{}/oxtree/small:v1", reg.addr),
        &["--insecure"],
    );
    assert_eq!(out3["commit"], commit.as_str(), "{}", reg.log());
    assert_eq!(out3["manifest-digest"], out["manifest-digest"]);
}

/// Make a tampered copy of the OCI layout `src` (one manifest) at `dst`
/// with python: `mode` is lying-digest (a layer's bytes changed, not its
/// digest), dotdot (a layer with `../evil`), device (a layer with a
/// character device), symlink-escape (a symlink climbing out of the tree),
/// huge-manifest (over 4 MiB), or derived-dotdot / derived-device (a
/// derived layer appended after the ostree ones, with `../evil` or a
/// device node). Digests other than
/// the lying one are made consistent again.
fn tamper(src: &Path, dst: &Path, mode: &str) {
    const SCRIPT: &str = r#"
import sys, json, hashlib, gzip, io, tarfile, shutil, os
src, dst, mode = sys.argv[1:4]
shutil.copytree(src, dst)
B = os.path.join(dst, 'blobs', 'sha256')
def rd(d): return open(os.path.join(B, d.split(':')[1]), 'rb').read()
def put(b):
    h = hashlib.sha256(b).hexdigest()
    open(os.path.join(B, h), 'wb').write(b)
    return 'sha256:' + h
idx = json.load(open(os.path.join(dst, 'index.json')))
md = idx['manifests'][0]
man = json.loads(rd(md['digest']))
cfg = json.loads(rd(man['config']['digest']))
L = len(man['layers']) - 1
if mode == 'lying-digest':
    p = os.path.join(B, man['layers'][L]['digest'].split(':')[1])
    data = bytearray(open(p, 'rb').read())
    data[len(data) // 2] ^= 0xff
    os.chmod(p, 0o644)
    open(p, 'wb').write(bytes(data))
elif mode in ('dotdot', 'device', 'symlink-escape', 'derived-dotdot', 'derived-device'):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w', format=tarfile.GNU_FORMAT) as t:
        if mode in ('dotdot', 'derived-dotdot'):
            ti = tarfile.TarInfo('usr/../../evil')
            ti.size = 1
            t.addfile(ti, io.BytesIO(b'x'))
        elif mode == 'symlink-escape':
            ti = tarfile.TarInfo('usr/evil')
            ti.type = tarfile.SYMTYPE
            ti.linkname = '../../../etc/shadow'
            t.addfile(ti)
        else:
            ti = tarfile.TarInfo('usr/evil')
            ti.type = tarfile.CHRTYPE
            ti.devmajor, ti.devminor = 1, 3
            t.addfile(ti)
    raw = buf.getvalue()
    gz = gzip.compress(raw, mtime=0)
    diff_id = 'sha256:' + hashlib.sha256(raw).hexdigest()
    if mode.startswith('derived-'):
        # Appended after the ostree layers, as a container build would.
        man['layers'].append(dict(man['layers'][L], digest=put(gz), size=len(gz)))
        cfg['rootfs']['diff_ids'].append(diff_id)
    else:
        labels = (cfg.get('config') or {}).get('Labels') or {}
        if labels.get('ostree.final-diffid') == cfg['rootfs']['diff_ids'][L]:
            labels['ostree.final-diffid'] = diff_id
        man['layers'][L]['digest'] = put(gz)
        man['layers'][L]['size'] = len(gz)
        cfg['rootfs']['diff_ids'][L] = diff_id
elif mode == 'huge-manifest':
    man.setdefault('annotations', {})['pad'] = 'x' * (5 << 20)
cb = json.dumps(cfg).encode()
man['config']['digest'] = put(cb)
man['config']['size'] = len(cb)
mb = json.dumps(man).encode()
md['digest'] = put(mb)
md['size'] = len(mb)
json.dump(idx, open(os.path.join(dst, 'index.json'), 'w'))
"#;
    let o = Command::new(require("python3"))
        .args(["-c", SCRIPT])
        .arg(src)
        .arg(dst)
        .arg(mode)
        .output()
        .unwrap();
    check(format!("tamper {mode}"), o);
}

#[test]
fn pull_refuses_bad_images_and_moves_no_ref() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (repo, _) = setup(d, &packages(6), "1");
    let good = d.join("good");
    encapsulate(&repo, "test/os", &format!("oci:{}:v1", good.display()), &[]);
    for (mode, expect) in [
        ("lying-digest", "hashing to"),
        ("dotdot", "`..`"),
        ("device", "device node"),
        ("symlink-escape", "escapes the tree"),
        ("huge-manifest", "over"),
        ("derived-dotdot", "escapes the tree"),
        ("derived-device", "unsupported type"),
    ] {
        let bad = d.join(mode);
        tamper(&good, &bad, mode);
        let dest = d.join(format!("dest-{mode}"));
        ok(OX, &dest, &["init", "--mode=bare-user"]);
        let e = fails(
            OX,
            &dest,
            &[
                "container",
                "image",
                "pull",
                "-q",
                &format!("ostree-unverified-image:oci:{}:v1", bad.display()),
            ],
        );
        assert!(e.contains(expect), "{mode}: {e}");
        let refs = ok(OX, &dest, &["refs"]);
        assert!(refs.trim().is_empty(), "{mode}: refs moved: {refs}");
    }
    // And the good one pulls.
    let dest = d.join("dest-good");
    pull(
        &dest,
        &format!("ostree-unverified-image:oci:{}:v1", good.display()),
        &[],
    );
}

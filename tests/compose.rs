//! `oxtree compose tree` and `oxtree db` with real Debian packages:
//! mmdebstrap builds the roots, downloads are cached in
//! /var/cache/oxtree-tests/apt (outside the repository) so later runs only
//! fetch the package indexes. The bootable image checked here is the
//! example host that tests/boot.rs boots, composed once for both
//! (tests/support/host_base.rs). The composes run one at a time (the library
//! locks the cache directory; the mutex here keeps the CPU for one).

#[path = "support/cli.rs"]
mod cli;
#[path = "support/fixture.rs"]
mod fixture;
#[path = "support/host_base.rs"]
mod host_base;
#[path = "support/ns.rs"]
mod ns;

use cli::{ok_cmd, output, repo_cmd, OX};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

const CACHE: &str = "/var/cache/oxtree-tests/apt";

static SERIAL: Mutex<()> = Mutex::new(());

fn tools() {
    for t in ["mmdebstrap", "bwrap", "unshare", "ostree"] {
        ns::require(t);
    }
}

fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("oxtree-compose-test-")
        .tempdir_in("/var/tmp")
        .unwrap()
}

fn init(repo: &Path, mode: &str) {
    ok_cmd(repo_cmd(OX, repo).args(["init", &format!("--mode={mode}")]));
}

fn write_treefile(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Compose; returns (exit status ok, stdout checksum or "", stderr).
fn compose(repo: &Path, treefile: &Path) -> (bool, String, String) {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let out = output(
        repo_cmd(OX, repo)
            .args(["compose", "tree", &format!("--cachedir={CACHE}")])
            .arg(treefile),
    );
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn compose_ok(repo: &Path, treefile: &Path) -> String {
    let (ok, csum, err) = compose(repo, treefile);
    assert!(ok, "compose failed:\n{err}");
    assert_eq!(csum.len(), 64, "{csum}\n{err}");
    csum
}

const MIN: &str = r#"
ref = "debian/test/min"
suite = "bookworm"
packages = ["less"]
version = "1.0"
"#;

/// One minimal compose shared by the reproducibility, diff and layering
/// tests. A static is never dropped, so it lives in
/// /var/tmp/oxtree-compose-test-min-PID, and earlier runs' copies (whose
/// process is gone) are removed here.
fn min_repo() -> &'static (PathBuf, String) {
    static MIN_REPO: OnceLock<(PathBuf, String)> = OnceLock::new();
    MIN_REPO.get_or_init(|| {
        tools();
        const PREFIX: &str = "oxtree-compose-test-min-";
        for e in std::fs::read_dir("/var/tmp")
            .unwrap()
            .filter_map(|e| e.ok())
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix(PREFIX) {
                if !Path::new(&format!("/proc/{pid}")).exists() {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let d = PathBuf::from(format!("/var/tmp/{PREFIX}{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir(&d).unwrap();
        init(&d.join("repo"), "bare");
        let tf = write_treefile(&d, "min.toml", MIN);
        let c = compose_ok(&d.join("repo"), &tf);
        (d, c)
    })
}

/// The example container host (examples/host.toml), composed once and
/// shared with tests/boot.rs, which boots it: its layout, metadata,
/// initramfs and package database, read by the real ostree.
#[test]
fn host_image_layout() {
    tools();
    ns::require("lsinitramfs");
    let d = scratch();
    let repo = host_base::repo();
    let csum = ok_cmd(repo_cmd(OX, &repo).args(["rev-parse", host_base::REF]))
        .trim()
        .to_string();

    // The real ostree reads the repository.
    ok_cmd(repo_cmd("ostree", &repo).args(["fsck", "-q"]));
    let ls = ok_cmd(repo_cmd("ostree", &repo).args(["ls", "-R", &csum, "/usr/lib/modules"]));
    let kver = ls
        .lines()
        .find_map(|l| {
            l.split_whitespace()
                .last()
                .and_then(|p| p.strip_prefix("/usr/lib/modules/"))
                .and_then(|p| p.strip_suffix("/vmlinuz"))
        })
        .unwrap_or_else(|| panic!("no vmlinuz in usr/lib/modules:\n{ls}"))
        .to_string();
    assert!(
        ls.contains(&format!("/usr/lib/modules/{kver}/initramfs.img")),
        "{ls}"
    );
    for f in [
        "/usr/bin/less",
        "/usr/bin/podman",
        "/usr/bin/oxtree",
        "/usr/lib/oxtree/oxtree-prepare-root",
        "/usr/etc/passwd",
        "/usr/lib/oxtree/kargs",
        "/usr/share/dpkg/database/status",
        "/usr/lib/tmpfiles.d/oxtree-var.conf",
        // postprocess: `systemctl enable ssh.service`
        "/usr/etc/systemd/system/multi-user.target.wants/ssh.service",
    ] {
        ok_cmd(repo_cmd("ostree", &repo).args(["ls", &csum, f]));
    }
    let root_ls = ok_cmd(repo_cmd("ostree", &repo).args(["ls", &csum, "/"]));
    assert!(root_ls.contains("/root -> var/roothome"), "{root_ls}");
    assert!(
        !root_ls.contains(" /etc"),
        "/etc must be in /usr/etc:\n{root_ls}"
    );
    let boot_ls = ok_cmd(repo_cmd("ostree", &repo).args(["ls", &csum, "/boot"]));
    assert_eq!(boot_ls.lines().count(), 1, "boot must be empty:\n{boot_ls}");
    let cat = |p: &str| ok_cmd(repo_cmd("ostree", &repo).args(["cat", &csum, p]));
    // add-files, postprocess (`passwd -l root`), kernel-args.
    assert_eq!(
        cat("/usr/etc/systemd/network/20-wired.network"),
        std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/host/20-wired.network")
        )
        .unwrap()
    );
    let shadow = cat("/usr/etc/shadow");
    assert!(
        shadow.lines().any(|l| l.starts_with("root:!")),
        "root not locked:\n{shadow}"
    );
    assert_eq!(
        cat("/usr/lib/oxtree/kargs"),
        "console=ttyS0,115200 panic=10 rw\n"
    );
    assert!(cat("/usr/lib/tmpfiles.d/oxtree-var.conf")
        .contains("L /var/lib/dpkg - - - - ../../usr/share/dpkg/database"));
    // No policy-rc.d left behind by the sandbox.
    assert!(
        !output(repo_cmd("ostree", &repo).args(["ls", &csum, "/usr/sbin/policy-rc.d"]))
            .status
            .success()
    );

    // Commit metadata.
    let show = ok_cmd(repo_cmd("ostree", &repo).args([
        "show",
        "--print-metadata-key=ostree.linux",
        &csum,
    ]));
    assert_eq!(show.trim(), format!("'{kver}'"));
    let b = ok_cmd(repo_cmd("ostree", &repo).args([
        "show",
        "--print-metadata-key=ostree.bootable",
        &csum,
    ]));
    assert_eq!(b.trim(), "true");
    let v = ok_cmd(repo_cmd("ostree", &repo).args(["show", "--print-metadata-key=version", &csum]));
    assert_eq!(v.trim(), "'1'");

    // The initramfs runs the small oxtree-prepare-root, not all of oxtree.
    let initrd = d.path().join("initramfs.img");
    let data = output(repo_cmd("ostree", &repo).args([
        "cat",
        &csum,
        &format!("/usr/lib/modules/{kver}/initramfs.img"),
    ]))
    .stdout;
    std::fs::write(&initrd, data).unwrap();
    let list = ok_cmd(Command::new("lsinitramfs").arg(&initrd));
    assert!(
        list.lines().any(|l| l == "usr/bin/oxtree-prepare-root"),
        "no oxtree-prepare-root in initramfs"
    );
    assert!(
        !list.lines().any(|l| l == "usr/bin/oxtree"),
        "the whole oxtree binary is in the initramfs"
    );
    assert!(
        list.lines().any(|l| l == "scripts/init-bottom/oxtree"),
        "no init-bottom/oxtree in initramfs"
    );

    // db list shows the packages.
    let db = ok_cmd(repo_cmd(OX, &repo).args(["db", "list", &csum]));
    for p in [
        "podman",
        "openssh-server",
        "systemd",
        "linux-image-amd64",
        "dpkg",
        "apt",
    ] {
        assert!(
            db.lines().any(|l| l.split_whitespace().next() == Some(p)),
            "{p} missing from db list:\n{db}"
        );
    }
    let json: serde_json::Value = serde_json::from_str(&ok_cmd(
        repo_cmd(OX, &repo).args(["db", "list", "--json", &csum]),
    ))
    .unwrap();
    assert_eq!(json["commit"], csum.as_str());
    assert!(json["packages"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "less" && p["architecture"] == "amd64"));
}

#[test]
fn same_treefile_same_commit() {
    let (_d, first) = min_repo();
    let d = scratch();
    let repo = d.path().join("repo");
    init(&repo, "archive");
    let tf = write_treefile(d.path(), "min.toml", MIN);
    let second = compose_ok(&repo, &tf);
    assert_eq!(*first, second, "composing twice gave different commits");
    ok_cmd(repo_cmd("ostree", &repo).arg("fsck"));
    // No ostree.bootable without a kernel.
    let show = ok_cmd(repo_cmd("ostree", &repo).args(["show", &second]));
    assert!(show.contains("Version: 1.0"), "{show}");
    let md = output(repo_cmd("ostree", &repo).args([
        "show",
        "--print-metadata-key=ostree.bootable",
        &second,
    ]));
    assert!(!md.status.success());
}

#[test]
fn db_diff_shows_added_packages() {
    let (d, base) = min_repo();
    let repo = d.join("repo");
    let tf = write_treefile(
        d,
        "ip.toml",
        r#"
ref = "debian/test/ip"
suite = "bookworm"
packages = ["less", "iproute2"]
version = "1.1"
"#,
    );
    let ip = compose_ok(&repo, &tf);
    let out = ok_cmd(repo_cmd(OX, &repo).args(["db", "diff", base, &ip]));
    let added: Vec<&str> = out
        .split("Added:\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no Added section:\n{out}"))
        .lines()
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(added.contains(&"iproute2"), "{out}");
    assert!(added.contains(&"libmnl0"), "iproute2's dependencies: {out}");
    assert!(!out.contains("Removed:"), "{out}");
    let j: serde_json::Value = serde_json::from_str(&ok_cmd(repo_cmd(OX, &repo).args([
        "db",
        "diff",
        "--json",
        "debian/test/min",
        "debian/test/ip",
    ])))
    .unwrap();
    let names: Vec<&str> = j["added"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"iproute2"), "{j}");
    assert!(j["removed"].as_array().unwrap().is_empty(), "{j}");
    // The reverse direction removes them.
    let rev = ok_cmd(repo_cmd(OX, &repo).args(["db", "diff", "debian/test/ip", "debian/test/min"]));
    assert!(
        rev.contains("Removed:\n") && rev.contains("  iproute2 "),
        "{rev}"
    );
}

#[test]
fn bad_treefiles_fail_clearly_and_keep_the_ref() {
    tools();
    let d = scratch();
    let repo = d.path().join("repo");
    init(&repo, "bare");
    // A commit already on the ref: failures must leave it there.
    let tree = d.path().join("tree");
    std::fs::create_dir(&tree).unwrap();
    std::fs::write(tree.join("f"), "x").unwrap();
    let before = ok_cmd(
        repo_cmd(OX, &repo)
            .args(["commit", "-b", "debian/test/bad", "--timestamp=2020-01-01"])
            .arg(&tree),
    )
    .trim()
    .to_string();
    let cases = [
        (
            "unknown-key.toml",
            "ref = \"debian/test/bad\"\nsuite = \"bookworm\"\npackages = [\"less\"]\npostprocesss = \"true\"\n",
            "unknown field `postprocesss`",
        ),
        (
            "no-ref.toml",
            "suite = \"bookworm\"\npackages = [\"less\"]\n",
            "missing field `ref`",
        ),
        (
            "no-such-package.toml",
            "ref = \"debian/test/bad\"\nsuite = \"bookworm\"\npackages = [\"oxtree-no-such-package\"]\n",
            "oxtree-no-such-package",
        ),
        (
            "excluded-dependency.toml",
            "ref = \"debian/test/bad\"\nsuite = \"bookworm\"\npackages = [\"iproute2\"]\nexclude = [\"libmnl0\"]\n",
            "libmnl0",
        ),
    ];
    for (name, text, expect) in cases {
        let tf = write_treefile(d.path(), name, text);
        let (success, stdout, stderr) = compose(&repo, &tf);
        assert!(!success, "{name}: compose succeeded: {stdout}");
        let last = stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect::<Vec<_>>();
        let err_at = last
            .iter()
            .position(|l| l.starts_with("error: "))
            .unwrap_or_else(|| panic!("{name}: no error line:\n{stderr}"));
        let err = last[err_at..].join("\n");
        assert!(err.contains(expect), "{name}: unclear error:\n{err}");
        // Treefile errors name the file; apt's errors name the package.
        let parse_error = !name.starts_with("no-such") && !name.starts_with("excluded");
        assert!(err.contains(name) || !parse_error, "{name}: {err}");
        assert_eq!(
            ok_cmd(repo_cmd(OX, &repo).args(["rev-parse", "debian/test/bad"])).trim(),
            before,
            "{name}: ref moved"
        );
    }
}

/// The contract layering relies on: a checkout of a composed commit made
/// installable takes `apt-get install` in the sandbox, and converting it
/// back gives a deployable tree whose package list has the new package.
#[test]
fn installable_checkout_takes_apt_and_goes_back() {
    use oxtree_compose::{packages, run_in_root, to_deployable, to_installable, SandboxOptions};
    let (d, base) = min_repo();
    let repo = d.join("repo");
    let co = scratch();
    let dir = co.path().join("root");
    ok_cmd(
        repo_cmd("ostree", &repo)
            .args(["checkout", "--force-copy", base])
            .arg(&dir),
    );
    to_installable(&dir).unwrap();
    assert!(dir.join("etc/apt").is_dir());
    assert!(dir.join("var/lib/dpkg/status").is_file());
    let opts = SandboxOptions {
        binds: vec![(CACHE.into(), "/var/cache/apt/archives".into())],
        ..Default::default()
    };
    {
        let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        run_in_root(&dir, &["apt-get", "update", "-q"], &opts).unwrap();
        run_in_root(
            &dir,
            &[
                "apt-get",
                "install",
                "-y",
                "-q",
                "--no-install-recommends",
                "iproute2",
            ],
            &opts,
        )
        .unwrap();
    }
    let before = ok_cmd(repo_cmd("ostree", &repo).args([
        "cat",
        base,
        "/usr/lib/tmpfiles.d/oxtree-var.conf",
    ]));
    let rep = to_deployable(&dir).unwrap();
    assert_eq!(rep.kernel, None);
    assert!(!dir.join("etc").exists());
    assert!(dir.join("usr/etc/iproute2").is_dir());
    assert!(!dir.join("usr/etc/resolv.conf").exists());
    assert!(!dir.join("usr/sbin/policy-rc.d").exists());
    assert_eq!(std::fs::read_dir(dir.join("var")).unwrap().count(), 0);
    let after = std::fs::read_to_string(dir.join("usr/lib/tmpfiles.d/oxtree-var.conf")).unwrap();
    for l in before.lines() {
        assert!(after.lines().any(|a| a == l), "lost tmpfiles line {l:?}");
    }
    let pk = packages::installed(&dir).unwrap();
    assert!(pk.iter().any(|p| p.name == "iproute2"));
    assert!(pk.iter().any(|p| p.name == "less"));

    // Commit it like layering does; db diff sees the new package.
    let mut r = oxtree_repo::Repo::open(&repo).unwrap();
    let mut md = oxtree_object::Metadata::new();
    packages::set_metadata(&mut md, &pk);
    let base_sum: oxtree_object::Checksum = base.parse().unwrap();
    let c = oxtree_compose::commit_root(
        &mut r,
        &dir,
        "debian/test/layered",
        md,
        1_700_000_001,
        Some(base_sum),
    )
    .unwrap();
    ok_cmd(repo_cmd("ostree", &repo).arg("fsck"));
    let out = ok_cmd(repo_cmd(OX, &repo).args(["db", "diff", base, &c.to_string()]));
    assert!(
        out.contains("Added:\n") && out.contains("  iproute2 "),
        "{out}"
    );
}

//! Collection-ID peers: `find-remotes` finds and pulls refs of a collection
//! from repositories ostree wrote (configured remotes, a USB-style volume),
//! and the volume `create-usb` writes is read by the real ostree (refs,
//! summary, fsck). Needs ostree and gpg: a missing one fails the test.
//! Every remote is a `file://` URL, so no server runs.

use std::path::Path;

#[path = "support/net.rs"]
mod net;
use net::require;
#[path = "support/cli.rs"]
mod cli;
use cli::{fails, ok, oxtree};
#[path = "support/gpg.rs"]
mod gpg;
use gpg::GpgHome;

const OS: &str = "org.example.Os";
const APPS: &str = "org.example.Apps";

/// An archive repository of collection `id` made by ostree, with a commit
/// of `tree` on each of `branches` signed by `key`, and a summary. The
/// commits' checksums, in order.
fn upstream(dir: &Path, id: &str, branches: &[&str], key: &GpgHome) -> Vec<String> {
    let ost = require("ostree");
    let tree = dir.with_extension("tree");
    std::fs::create_dir_all(tree.join("usr")).unwrap();
    let mut out = Vec::new();
    ok(
        &ost,
        dir,
        &["init", "--mode=archive", &format!("--collection-id={id}")],
    );
    for b in branches {
        std::fs::write(tree.join("usr/branch"), b).unwrap();
        let c = ok(
            &ost,
            dir,
            &[
                "commit",
                "-b",
                b,
                "-s",
                b,
                &key.homedir_arg(),
                &format!("--gpg-sign={}", key.fpr),
                tree.to_str().unwrap(),
            ],
        );
        out.push(c.trim().to_string());
    }
    ok(&ost, dir, &["summary", "-u"]);
    out
}

fn file_url(p: &Path) -> String {
    format!("file://{}", p.display())
}

/// A new bare-user repository with remote `name` of collection `id`
/// at `url`, trusting `key`.
fn client(repo: &Path, name: &str, url: &str, id: &str, key: &GpgHome) {
    let ox = oxtree();
    if !repo.join("config").exists() {
        ok(&ox, repo, &["init", "--mode=bare-user"]);
    }
    ok(
        &ox,
        repo,
        &[
            "remote",
            "add",
            &format!("--collection-id={id}"),
            &format!("--gpg-import={}", key.public.display()),
            name,
            url,
        ],
    );
}

#[test]
fn find_remotes_config_lists_and_pulls_as_ostree() {
    let (ost, ox) = (require("ostree"), oxtree());
    let tmp = tempfile::tempdir().unwrap();
    let key = GpgHome::new(tmp.path(), "peer");
    let os = tmp.path().join("os");
    let apps = tmp.path().join("apps");
    let os_c = upstream(&os, OS, &["os/main"], &key);
    let apps_c = upstream(&apps, APPS, &["app1", "app2"], &key);
    let local = tmp.path().join("local");
    client(&local, "os-remote", &file_url(&os), OS, &key);
    client(&local, "apps-remote", &file_url(&apps), APPS, &key);

    // One ref: the same report as ostree's, line for line.
    let args = ["find-remotes", "--finders=config", OS, "os/main"];
    let mine = ok(&ox, &local, &args);
    let theirs = ok(&ost, &local, &args);
    assert_eq!(mine, theirs);
    assert!(mine.contains(&format!("    - ({OS}, os/main) = {}\n", os_c[0])));
    assert!(mine.contains(" - Keyring: os-remote.trustedkeys.gpg\n"));

    // Several refs over two remotes, one missing.
    let out = ok(
        &ox,
        &local,
        &[
            "find-remotes",
            "--finders=config",
            OS,
            "os/main",
            APPS,
            "app2",
            APPS,
            "nope",
        ],
    );
    assert!(
        out.contains(&format!("Result 0: {}\n", file_url(&apps))),
        "{out}"
    );
    assert!(
        out.contains(&format!("Result 1: {}\n", file_url(&os))),
        "{out}"
    );
    assert!(out.contains(&format!("    - ({APPS}, app2) = {}\n", apps_c[1])));
    assert!(out.contains(&format!("    - ({APPS}, nope) = (not found)\n")));
    assert!(out.ends_with(&format!(
        "2/3 refs were found.\nRefs not found in any remote:\n - ({APPS}, nope)\n"
    )));

    // Pull: GPG-verified, into refs/remotes as a pull from that remote;
    // ostree reads what arrived.
    let out = ok(
        &ox,
        &local,
        &[
            "find-remotes",
            "--finders=config",
            "--pull",
            OS,
            "os/main",
            APPS,
            "app1",
        ],
    );
    assert!(out.ends_with("Pulled 2/2 refs successfully.\n"), "{out}");
    assert_eq!(
        ok(&ost, &local, &["rev-parse", "os-remote:os/main"]).trim(),
        os_c[0]
    );
    assert_eq!(
        ok(&ost, &local, &["rev-parse", "apps-remote:app1"]).trim(),
        apps_c[0]
    );
    ok(&ost, &local, &["fsck"]);

    // A remote whose keys do not sign the commit supplies nothing.
    let other = GpgHome::new(tmp.path(), "other");
    let strict = tmp.path().join("strict");
    client(&strict, "os-remote", &file_url(&os), OS, &other);
    let e = fails(
        &ox,
        &strict,
        &["find-remotes", "--finders=config", "--pull", OS, "os/main"],
    );
    assert!(
        e.contains("Failed to pull some refs from the remotes"),
        "{e}"
    );
    assert!(!strict.join("refs/remotes/os-remote/os/main").exists());

    // No remote of the collection: no results.
    let out = ok(
        &ox,
        &local,
        &["find-remotes", "--finders=config", "org.example.None", "x"],
    );
    assert_eq!(out, "No results.\n");
}

#[test]
fn create_usb_is_read_by_ostree_and_by_the_mount_finder() {
    let (ost, ox) = (require("ostree"), oxtree());
    let tmp = tempfile::tempdir().unwrap();
    let key = GpgHome::new(tmp.path(), "usbkey");
    let os = tmp.path().join("os");
    let c = upstream(&os, OS, &["os/main", "os/extra"], &key);
    let local = tmp.path().join("local");
    client(&local, "os-remote", &file_url(&os), OS, &key);
    ok(&ox, &local, &["pull", "os-remote", "os/main", "os/extra"]);

    // The default location: .ostree/repo, no symlink.
    let usb = tmp.path().join("usb");
    std::fs::create_dir(&usb).unwrap();
    ok(
        &ox,
        &local,
        &["create-usb", usb.to_str().unwrap(), OS, "os/main"],
    );
    let dest = usb.join(".ostree/repo");
    assert_eq!(
        ok(&ost, &dest, &["refs", "--collections"]),
        format!("({OS}, os/main)\n")
    );
    assert!(ok(&ost, &dest, &["summary", "-v"]).contains(&format!("({OS}, os/main)")));
    assert!(ok(&ost, &dest, &["config", "get", "core.mode"]).contains("archive"));
    ok(&ost, &dest, &["fsck"]);
    assert!(!usb.join(".ostree/repos.d").exists());

    // Another location gets one symlink in .ostree/repos.d, kept when more
    // refs are added.
    let usb2 = tmp.path().join("usb2");
    std::fs::create_dir(&usb2).unwrap();
    for r in ["os/main", "os/extra"] {
        ok(
            &ox,
            &local,
            &[
                "create-usb",
                "--destination-repo=some/dest",
                usb2.to_str().unwrap(),
                OS,
                r,
            ],
        );
    }
    let links: Vec<_> = std::fs::read_dir(usb2.join(".ostree/repos.d"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(links, ["00-generated"]);
    assert_eq!(
        std::fs::read_link(usb2.join(".ostree/repos.d/00-generated")).unwrap(),
        Path::new("../../some/dest")
    );
    let via_link = usb2.join(".ostree/repos.d/00-generated");
    assert_eq!(
        ok(&ost, &via_link, &["refs", "--collections"]),
        format!("({OS}, os/extra)\n({OS}, os/main)\n")
    );
    // A ref the source does not have is refused before the volume is touched.
    let usb3 = tmp.path().join("usb3");
    std::fs::create_dir(&usb3).unwrap();
    fails(
        &ox,
        &local,
        &["create-usb", usb3.to_str().unwrap(), OS, "nope"],
    );
    assert!(!usb3.join(".ostree").exists());

    // An offline machine whose remote is unreachable finds both refs on
    // the volume, with the remote's keys, and pulls them verified.
    let offline = tmp.path().join("offline");
    client(&offline, "os-remote", "file:///nonexistent/os", OS, &key);
    let find = [
        "find-remotes",
        "--finders=mount,config",
        &format!("--mount-root={}", usb2.display()),
        OS,
        "os/main",
        OS,
        "os/extra",
    ];
    let out = ok(&ox, &offline, &find);
    let real = std::fs::canonicalize(usb2.join("some/dest")).unwrap();
    assert!(
        out.starts_with(&format!("Result 0: {}\n", file_url(&real))),
        "{out}"
    );
    assert!(
        out.contains(" - Finder: OstreeRepoFinderMount\n - Keyring: os-remote.trustedkeys.gpg\n")
    );
    assert!(out.contains("2/2 refs were found.\n"), "{out}");
    let mut pull = find.to_vec();
    pull.insert(1, "--pull");
    let out = ok(&ox, &offline, &pull);
    assert!(out.ends_with("Pulled 2/2 refs successfully.\n"), "{out}");
    assert_eq!(
        ok(&ost, &offline, &["rev-parse", "os-remote:os/main"]).trim(),
        c[0]
    );
    assert_eq!(
        ok(&ost, &offline, &["rev-parse", "os-remote:os/extra"]).trim(),
        c[1]
    );
    ok(&ost, &offline, &["fsck"]);
}

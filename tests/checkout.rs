//! `checkout` modes, compared with ostree's checkout of the same ostree-written
//! repository (so these tests do not depend on oxtree's commit), plus the
//! symlink-escape safety rule.

#[path = "support/interop.rs"]
mod common;
use common::*;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

struct Fixture {
    _d: tempfile::TempDir,
    root: PathBuf,
    repo: PathBuf,
}

/// An ostree-written repo of `mode` with the odd tree on `main` and the
/// simple tree on `simple`.
fn fixture(mode: &str) -> Fixture {
    let d = scratch();
    let root = d.path().to_path_buf();
    let tree = root.join("tree");
    odd_tree(&tree, false);
    let simple = root.join("simple");
    simple_tree(&simple, "new");
    let repo = init_repo(Ost, &root.join("repo"), mode);
    commit(Ost, &repo, "main", &tree, &[]);
    commit(Ost, &repo, "simple", &simple, &[]);
    Fixture { _d: d, root, repo }
}

fn co(tool: Tool, repo: &Path, flags: &[&str], rev: &str, dest: &Path) -> Out {
    let mut args = vec!["checkout"];
    args.extend_from_slice(flags);
    args.push(rev);
    args.push(dest.to_str().unwrap());
    run_repo(tool, repo, &args)
}

/// Check out with both tools into `<name>-ostree` / `<name>-oxtree` (after
/// `prepare` ran on each destination) and compare exactly.
fn both<F: Fn(&Path)>(
    f: &Fixture,
    name: &str,
    flags: &[&str],
    rev: &str,
    prepare: F,
) -> (PathBuf, PathBuf) {
    let o = f.root.join(format!("{name}-ostree"));
    let x = f.root.join(format!("{name}-oxtree"));
    prepare(&o);
    prepare(&x);
    co(Ost, &f.repo, flags, rev, &o).ok();
    co(Ox, &f.repo, flags, rev, &x).ok();
    assert_trees_eq(
        &o,
        &x,
        Cmp::EXACT,
        &format!("checkout {flags:?} {rev} ({name})"),
    );
    (o, x)
}

fn content_object(repo: &Path, path: &str) -> PathBuf {
    let c = ls_checksums(repo, "main", path);
    object_path(repo, &c[0], "file")
}

#[test]
fn bare_default_checkout_hardlinks_objects() {
    let f = fixture("bare");
    let (_, x) = both(&f, "hl", &[], "main", |_| {});
    for p in ["/sub/payload", "/hl1", "/suid", "/xf", "/owned"] {
        let obj = content_object(&f.repo, p);
        let a = fs::metadata(&obj).unwrap();
        let b = fs::symlink_metadata(x.join(&p[1..])).unwrap();
        assert_eq!(
            (a.dev(), a.ino()),
            (b.dev(), b.ino()),
            "oxtree bare checkout of {p} is not a hardlink of {}",
            obj.display()
        );
    }
    // Bare checkouts restore trusted.* too.
    assert_eq!(
        get_xattr(&x.join("xf"), "trusted.t").as_deref(),
        Some(&b"tv"[..])
    );
    assert_eq!(
        fs::symlink_metadata(x.join("suid")).unwrap().mode() & 0o7777,
        0o4755
    );
    assert_eq!(fs::symlink_metadata(x.join("owned")).unwrap().uid(), 1234);
}

#[test]
fn force_copy_does_not_share_inodes() {
    let f = fixture("bare");
    let (_, x) = both(&f, "copy", &["--force-copy"], "main", |_| {});
    for p in ["/sub/payload", "/hl1", "/suid"] {
        let obj = content_object(&f.repo, p);
        let a = fs::metadata(&obj).unwrap();
        let b = fs::symlink_metadata(x.join(&p[1..])).unwrap();
        assert_ne!(a.ino(), b.ino(), "--force-copy hardlinked {p}");
    }
    assert_eq!(fs::metadata(x.join("sub/payload")).unwrap().nlink(), 1);
    // -C is the short form.
    both(&f, "copy-short", &["-C"], "main", |_| {});
}

#[test]
fn user_mode_checkouts() {
    for mode in ["bare", "bare-user", "archive"] {
        let f = fixture(mode);
        let (_, x) = both(&f, "user", &["-U"], "main", |_| {});
        // -U never restores other owners or setuid bits.
        let m = fs::symlink_metadata(x.join("owned")).unwrap();
        assert_eq!(m.uid(), 0, "{mode}: -U kept the file owner");
        let m = fs::symlink_metadata(x.join("suid")).unwrap();
        assert_eq!(m.mode() & 0o7000, 0, "{mode}: -U kept setuid");
        both(&f, "user-long", &["--user-mode"], "main", |_| {});
    }
}

fn prepopulate(dest: &Path) {
    fs::create_dir_all(dest.join("etc")).unwrap();
    fs::create_dir_all(dest.join("var/keep")).unwrap();
    fs::write(dest.join("etc/passwd"), "old passwd\n").unwrap();
    fs::write(dest.join("etc/extra"), "extra\n").unwrap();
    fs::write(dest.join("var/keep/x"), "x\n").unwrap();
}

#[test]
fn union_overwrites_files_keeps_others() {
    let f = fixture("bare");
    let (_, x) = both(&f, "union", &["--union"], "simple", prepopulate);
    assert_eq!(
        fs::read_to_string(x.join("etc/passwd")).unwrap(),
        "root:x:0:0::/root:/bin/sh\n"
    );
    assert_eq!(fs::read_to_string(x.join("etc/extra")).unwrap(), "extra\n");
    assert!(x.join("var/keep/x").is_file());
    // The same for archive, user mode.
    let f = fixture("archive");
    both(&f, "union-u", &["-U", "--union"], "simple", prepopulate);
}

#[test]
fn union_add_keeps_existing_files() {
    let f = fixture("bare");
    let (_, x) = both(&f, "union-add", &["--union-add"], "simple", prepopulate);
    assert_eq!(
        fs::read_to_string(x.join("etc/passwd")).unwrap(),
        "old passwd\n"
    );
    assert!(x.join("etc/hostname").is_file());
    assert!(x.join("usr/bin/tool").is_file());
}

#[test]
fn union_replaces_symlinked_file_instead_of_writing_through() {
    let f = fixture("bare");
    for flags in [&["--union"][..], &["-U", "--union"][..]] {
        let base = f.root.join(format!("lnk{}", flags.len()));
        let victim = base.join("victim");
        let dest = base.join("dest");
        fs::create_dir_all(&victim).unwrap();
        fs::create_dir_all(dest.join("etc")).unwrap();
        fs::write(victim.join("passwd"), "victim\n").unwrap();
        std::os::unix::fs::symlink("../../victim/passwd", dest.join("etc/passwd")).unwrap();
        co(Ox, &f.repo, flags, "simple", &dest).ok();
        assert_eq!(
            fs::read_to_string(victim.join("passwd")).unwrap(),
            "victim\n"
        );
        let m = fs::symlink_metadata(dest.join("etc/passwd")).unwrap();
        assert!(
            m.file_type().is_file(),
            "{flags:?}: etc/passwd is still a symlink"
        );
    }
}

#[test]
fn subpath_checkouts() {
    let f = fixture("bare");
    both(&f, "sub-usr", &["--subpath=/usr"], "simple", |_| {});
    both(&f, "sub-share", &["--subpath=usr/share"], "simple", |_| {});
    both(&f, "sub-odd", &["--subpath=/sub"], "main", |_| {});
    // A file subpath lands inside the destination directory, made if
    // missing or already there.
    both(&f, "sub-file", &["--subpath=/sub/payload"], "main", |_| {});
    both(
        &f,
        "sub-file-in",
        &["--subpath=/sub/payload"],
        "main",
        |d| fs::create_dir(d).unwrap(),
    );
    let f = fixture("archive");
    both(
        &f,
        "sub-u",
        &["-U", "--subpath=/sub/deeper"],
        "main",
        |_| {},
    );
    // Missing subpath: both fail.
    let d = f.root.join("sub-missing");
    co(Ost, &f.repo, &["--subpath=/nope"], "main", &d).fails();
    co(
        Ox,
        &f.repo,
        &["--subpath=/nope"],
        "main",
        &f.root.join("sub-missing-x"),
    )
    .fails();
}

#[test]
fn checkout_into_existing_dir_fails_like_ostree() {
    // ostree 2022.7: "error: mkdirat: File exists", even for an empty dir.
    let f = fixture("bare");
    for tool in [Ost, Ox] {
        for nonempty in [false, true] {
            let d = f.root.join(format!("exists-{}-{nonempty}", tool.name()));
            fs::create_dir(&d).unwrap();
            if nonempty {
                fs::write(d.join("mine"), "keep me\n").unwrap();
            }
            co(tool, &f.repo, &[], "main", &d).fails();
            if nonempty {
                assert_eq!(fs::read_to_string(d.join("mine")).unwrap(), "keep me\n");
            }
        }
    }
    // Unknown rev: fails, creates nothing.
    let d = f.root.join("norev");
    co(Ox, &f.repo, &[], "nosuchref", &d).fails();
    assert!(
        !d.exists(),
        "checkout of a missing ref created the destination"
    );
}

/// DEST contains `etc -> <victim dir>`; checking out a tree with etc/passwd
/// with --union / --union-add must fail or replace the symlink, and must
/// never write into the victim.
///
/// ostree 2022.7 does NOT satisfy this: it follows the symlink and hardlinks
/// passwd into the victim directory (exit 0). oxtree must be stricter.
#[test]
fn union_never_writes_through_directory_symlink() {
    if stricter_than_ostree("ostree --union follows a DEST symlink to a directory") {
        return;
    }
    let f = fixture("bare");
    let af = fixture("archive");
    let mut case = 0;
    for (repo, flags) in [
        (&f.repo, &["--union"][..]),
        (&f.repo, &["--union-add"][..]),
        (&f.repo, &["--union", "--force-copy"][..]),
        (&af.repo, &["-U", "--union"][..]),
        (&af.repo, &["-U", "--union-add"][..]),
    ] {
        for absolute in [false, true] {
            case += 1;
            let base = f.root.join(format!("esc{case}"));
            let victim = base.join("victim");
            let dest = base.join("dest");
            fs::create_dir_all(&victim).unwrap();
            fs::create_dir_all(&dest).unwrap();
            fs::write(victim.join("sentinel"), "untouched\n").unwrap();
            if absolute {
                std::os::unix::fs::symlink(&victim, dest.join("etc")).unwrap();
            } else {
                std::os::unix::fs::symlink("../victim", dest.join("etc")).unwrap();
            }
            let before = listing(&victim);
            let out = co(Ox, repo, flags, "simple", &dest);
            assert_eq!(
                listing(&victim),
                before,
                "{flags:?} (absolute link: {absolute}): oxtree wrote into the victim dir through DEST/etc\n{out:?}"
            );
            assert_eq!(
                fs::read_to_string(victim.join("sentinel")).unwrap(),
                "untouched\n"
            );
            if out.success() {
                let m = fs::symlink_metadata(dest.join("etc")).unwrap();
                assert!(
                    m.file_type().is_dir(),
                    "{flags:?}: succeeded but DEST/etc is not a real directory"
                );
                assert!(dest.join("etc/passwd").is_file());
            } else {
                out.fails();
            }
        }
    }
}

/// `--process-passthrough-whiteouts` (what every deployment does): a
/// `.ostree-wh.NAME` file becomes the overlayfs whiteout NAME, a character
/// device 0:0 with the file's mode, exactly as ostree makes it.
#[test]
fn passthrough_whiteouts_become_char_devices() {
    let d = scratch();
    let root = d.path().to_path_buf();
    let tree = root.join("tree");
    fs::create_dir_all(tree.join("layer")).unwrap();
    fs::write(tree.join("layer/.ostree-wh.gone"), "").unwrap();
    fs::write(tree.join("layer/kept"), "x").unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(
        tree.join("layer/.ostree-wh.gone"),
        fs::Permissions::from_mode(0o400),
    )
    .unwrap();
    let repo = init_repo(Ost, &root.join("repo"), "bare");
    commit(Ost, &repo, "main", &tree, &[]);
    let f = Fixture { _d: d, root, repo };
    let (o, x) = both(
        &f,
        "wh",
        &["--process-passthrough-whiteouts"],
        "main",
        |_| {},
    );
    for dest in [&o, &x] {
        let m = fs::symlink_metadata(dest.join("layer/gone")).unwrap();
        use std::os::unix::fs::FileTypeExt;
        assert!(m.file_type().is_char_device(), "{}", dest.display());
        assert_eq!((m.rdev(), m.mode() & 0o7777), (0, 0o400));
        assert!(!dest.join("layer/.ostree-wh.gone").exists());
    }
    // Without the flag the carrier file is checked out as it is.
    let plain = f.root.join("plain");
    co(Ox, &f.repo, &[], "main", &plain).ok();
    assert!(plain.join("layer/.ostree-wh.gone").is_file());
}

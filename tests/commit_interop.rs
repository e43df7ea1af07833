//! `commit` produces exactly ostree's commit: same printed checksum, same
//! loose objects byte for byte (metadata objects everywhere, file objects in
//! the bare modes, including their modes, owners and xattrs), same config
//! and ref files, for every repository mode and the commit options.

#[path = "support/interop.rs"]
mod common;
use common::*;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// One fresh repo per tool, same mode.
fn repos(dir: &Path, mode: &str) -> (PathBuf, PathBuf) {
    let rx = init_repo(Ox, &dir.join("repo-oxtree"), mode);
    let ro = init_repo(Ost, &dir.join("repo-ostree"), mode);
    (rx, ro)
}

/// Everything under objects/ must be the same set of names; metadata objects
/// identical bytes; bare-mode file objects identical bytes, type, mode,
/// owner, mtime-is-zero and user.* xattrs (bare-user keeps the real
/// metadata in user.ostreemeta). Archive .filez bytes may legitimately differ
/// (zlib output), so only their names are compared here; crossread.rs checks
/// that each tool reads the other's.
fn assert_same_objects(ro: &Path, rx: &Path, mode: &str) {
    let po = object_paths(ro);
    let px = object_paths(rx);
    if po != px {
        let only_o: Vec<_> = po.iter().filter(|p| !px.contains(p)).collect();
        let only_x: Vec<_> = px.iter().filter(|p| !po.contains(p)).collect();
        panic!(
            "{mode}: object sets differ\n  only in ostree's repo: {only_o:?}\n  only in oxtree's repo: {only_x:?}"
        );
    }
    for rel in &po {
        let a = ro.join("objects").join(rel);
        let b = rx.join("objects").join(rel);
        if rel.ends_with(".filez") {
            continue;
        }
        let ma = fs::symlink_metadata(&a).unwrap();
        let mb = fs::symlink_metadata(&b).unwrap();
        assert_eq!(
            ma.file_type().is_symlink(),
            mb.file_type().is_symlink(),
            "{mode}: object {rel}: one is a symlink, the other not"
        );
        if ma.file_type().is_symlink() {
            assert_eq!(
                fs::read_link(&a).unwrap(),
                fs::read_link(&b).unwrap(),
                "{mode}: symlink object {rel} target"
            );
        } else {
            assert!(
                fs::read(&a).unwrap() == fs::read(&b).unwrap(),
                "{mode}: object {rel}: bytes differ from ostree's"
            );
        }
        if rel.ends_with(".file") {
            assert_eq!(
                format!("{:o} {}:{}", ma.mode(), ma.uid(), ma.gid()),
                format!("{:o} {}:{}", mb.mode(), mb.uid(), mb.gid()),
                "{mode}: file object {rel}: mode/owner differs from ostree's (expected ostree's, left)"
            );
            assert_eq!(
                list_xattrs(&a, "user."),
                list_xattrs(&b, "user."),
                "{mode}: file object {rel}: user.* xattrs differ"
            );
            if mode == "bare" {
                assert_eq!(
                    list_xattrs(&a, "trusted."),
                    list_xattrs(&b, "trusted."),
                    "{mode}: file object {rel}: trusted.* xattrs differ"
                );
            }
            if !ma.file_type().is_symlink() {
                assert_eq!(
                    ma.mtime() == 0,
                    mb.mtime() == 0,
                    "{mode}: file object {rel}: mtime (ostree: {}, oxtree: {})",
                    ma.mtime(),
                    mb.mtime()
                );
            }
        }
    }
}

fn assert_same_file(a: &Path, b: &Path, what: &str) {
    assert_eq!(
        fs::read_to_string(a).unwrap_or_else(|e| format!("<{e}>")),
        fs::read_to_string(b).unwrap_or_else(|e| format!("<{e}>")),
        "{what}: {} (ostree, left) vs {} (oxtree, right)",
        a.display(),
        b.display()
    );
}

/// Commit the odd tree with both tools in `mode` (plus `extra` options):
/// same checksum, same objects, same ref file, same config.
fn odd_tree_commit(mode: &str, big: bool, extra: &[&str]) {
    let d = scratch();
    let tree = d.path().join("tree");
    odd_tree(&tree, big);
    let (rx, ro) = repos(d.path(), mode);
    assert_same_file(&ro.join("config"), &rx.join("config"), "repo config");
    let co = commit(Ost, &ro, "main", &tree, extra);
    let cx = commit(Ox, &rx, "main", &tree, extra);
    assert_eq!(
        cx, co,
        "mode {mode} {extra:?}: oxtree commit checksum (left) differs from ostree's (right)"
    );
    assert_same_file(
        &ro.join("refs/heads/main"),
        &rx.join("refs/heads/main"),
        "refs/heads/main",
    );
    assert_eq!(
        fs::read_to_string(ro.join("refs/heads/main")).unwrap(),
        format!("{co}\n")
    );
    assert_same_objects(&ro, &rx, mode);
}

#[test]
fn commit_bare() {
    odd_tree_commit("bare", true, &[]);
}

#[test]
fn commit_bare_user() {
    odd_tree_commit("bare-user", true, &[]);
}

/// ostree 2022.7 does not reject anything in the odd tree for bare-user-only:
/// it commits owners as 0:0, drops all xattrs, and masks modes with 0755
/// (4755/2755/0777 files -> 0755, 1777 dir -> 0755; 0600/0000/0555/0700 kept).
#[test]
fn commit_bare_user_only() {
    odd_tree_commit("bare-user-only", true, &[]);
    // And the canonicalization is what we think it is (guards the fixture).
    let d = scratch();
    let tree = d.path().join("tree");
    odd_tree(&tree, false);
    let r = init_repo(Ost, &d.path().join("r"), "bare-user-only");
    commit(Ost, &r, "main", &tree, &[]);
    let ls = ok(Ost, &r, &["ls", "-R", "main"]);
    for want in [
        "-00755 0 0     15 /suid",
        "-00755 0 0     15 /world",
        "-00000 0 0     22 /zero",
        "-00644 0 0     22 /owned",
        "d00755 0 0      0 /sticky",
        "d00555 0 0      0 /ro",
        "d00750 0 0      0 /odir",
    ] {
        assert!(
            ls.contains(want),
            "ostree bare-user-only ls lacks {want:?}:\n{ls}"
        );
    }
}

#[test]
fn commit_archive() {
    odd_tree_commit("archive", true, &[]);
}

/// `--generate-sizes` records every object's archived and unpacked size:
/// the same commit, byte for byte, as ostree's, and `show --print-sizes`
/// reads the same figures from both. (Without the 24 MiB random file: zlib
/// frames incompressible data in stored blocks whose size follows the
/// caller's output buffer, and GLib's differs from ours, so its compressed
/// size differs by a few bytes.)
#[test]
fn commit_archive_generate_sizes() {
    odd_tree_commit("archive", false, &["--generate-sizes"]);
    let d = scratch();
    let tree = d.path().join("tree");
    odd_tree(&tree, false);
    let (rx, ro) = repos(d.path(), "archive");
    commit(Ost, &ro, "main", &tree, &["--generate-sizes"]);
    commit(Ox, &rx, "main", &tree, &["--generate-sizes"]);
    let so = ok(Ost, &ro, &["show", "--print-sizes", "main"]);
    let sx = ok(Ox, &rx, &["show", "--print-sizes", "main"]);
    assert_eq!(sx, so);
    assert!(sx.contains("Number of objects (needed/total): 0/"), "{sx}");
}

/// W^X: executables lose their write bits, the same as ostree's commit.
#[test]
fn commit_mode_ro_executables() {
    odd_tree_commit("bare", false, &["--mode-ro-executables"]);
}

/// A modifier applies to a tree taken from a ref too: ostree rewrites the
/// stored tree, and so does oxtree (same commit).
#[test]
fn commit_ref_tree_through_a_modifier() {
    let d = scratch();
    let tree = d.path().join("tree");
    odd_tree(&tree, false);
    let (rx, ro) = repos(d.path(), "bare");
    for (tool, r) in [(Ost, &ro), (Ox, &rx)] {
        commit(tool, r, "base", &tree, &[]);
    }
    let args = [
        "commit",
        "-b",
        "w-x",
        "--tree=ref=base",
        "--mode-ro-executables",
        "--owner-uid=42",
        "--timestamp=2020-01-01",
        "-s",
        "x",
    ];
    let co = checksum_line(&ok(Ost, &ro, &args));
    let cx = checksum_line(&ok(Ox, &rx, &args));
    assert_eq!(cx, co, "oxtree (left) and ostree (right) differ");
}

#[test]
fn commit_bare_canonical_permissions() {
    odd_tree_commit("bare", false, &["--canonical-permissions"]);
}

#[test]
fn commit_archive_canonical_permissions() {
    odd_tree_commit("archive", false, &["--canonical-permissions"]);
}

#[test]
fn commit_owner_uid_gid_all_modes() {
    for mode in MODES {
        odd_tree_commit(mode, false, &["--owner-uid=42", "--owner-gid=43"]);
    }
}

#[test]
fn commit_no_xattrs_and_more_metadata() {
    odd_tree_commit(
        "bare",
        false,
        &[
            "--no-xattrs",
            "--add-metadata-string=zkey=last",
            "--add-metadata-string=akey=first",
        ],
    );
}

/// Run `f` with each tool on its own repo; the outputs must be equal.
fn same<F: Fn(Tool, &Path) -> String>(rx: &Path, ro: &Path, what: &str, f: F) -> String {
    let o = f(Ost, ro);
    let x = f(Ox, rx);
    assert_same_output(what, &o, &x);
    o
}

fn commit_args(tool: Tool, repo: &Path, args: &[&str]) -> String {
    let mut v = vec!["commit", TS, "-s", "subj"];
    v.extend_from_slice(args);
    checksum_line(&ok(tool, repo, &v))
}

#[test]
fn commit_options_match_ostree() {
    let d = scratch();
    let t1 = d.path().join("t1");
    let t2 = d.path().join("t2");
    simple_tree(&t1, "one");
    simple_tree(&t2, "two");
    let (rx, ro) = repos(d.path(), "archive");
    let t1s = t1.to_str().unwrap();
    let t2s = t2.to_str().unwrap();

    let first = same(&rx, &ro, "first commit", |t, r| {
        commit_args(t, r, &["-b", "main", t1s])
    });
    // Second commit on the branch: parent is the first.
    let second = same(&rx, &ro, "second commit", |t, r| {
        commit_args(t, r, &["-b", "main", t2s])
    });
    assert_ne!(first, second);
    for (t, r) in [(Ost, &ro), (Ox, &rx)] {
        assert_eq!(
            ok(t, r, &["rev-parse", "main^"]).trim(),
            first,
            "{}: main^ is not the first commit",
            t.name()
        );
    }
    // --skip-if-unchanged: prints the current commit, writes nothing.
    let before_o = object_paths(&ro);
    let before_x = object_paths(&rx);
    let skipped = same(&rx, &ro, "--skip-if-unchanged", |t, r| {
        commit_args(t, r, &["-b", "main", "--skip-if-unchanged", t2s])
    });
    assert_eq!(
        skipped, second,
        "--skip-if-unchanged must print the old checksum"
    );
    assert_eq!(object_paths(&ro), before_o);
    assert_eq!(
        object_paths(&rx),
        before_x,
        "--skip-if-unchanged wrote objects"
    );
    same(&rx, &ro, "ref after skip", |t, r| {
        ok(t, r, &["rev-parse", "main"])
    });
    // --skip-if-unchanged with a change does commit.
    same(&rx, &ro, "--skip-if-unchanged with change", |t, r| {
        commit_args(t, r, &["-b", "skipped", "--skip-if-unchanged", t1s])
    });
    // Explicit --parent.
    let p = same(&rx, &ro, "--parent", |t, r| {
        commit_args(
            t,
            r,
            &["-b", "withparent", &format!("--parent={first}"), t2s],
        )
    });
    for (t, r) in [(Ost, &ro), (Ox, &rx)] {
        assert_eq!(ok(t, r, &["rev-parse", &format!("{p}^")]).trim(), first);
    }
    // --parent=none on an existing branch: no parent.
    same(&rx, &ro, "--parent=none", |t, r| {
        commit_args(t, r, &["-b", "main", "--parent=none", t1s])
    });
    // --orphan: no ref written.
    let orphan = same(&rx, &ro, "--orphan", |t, r| {
        commit_args(t, r, &["--orphan", t1s])
    });
    for (t, r) in [(Ost, &ro), (Ox, &rx)] {
        let refs = sorted_lines(&ok(Ost, r, &["refs"]));
        assert!(
            !refs.iter().any(|l| l.contains(&orphan)) && refs.len() == 3,
            "{}: --orphan changed refs: {refs:?}",
            t.name()
        );
        assert!(object_path(r, &orphan, "commit").is_file());
    }
    // Bindings.
    same(&rx, &ro, "--no-bindings", |t, r| {
        commit_args(t, r, &["-b", "nob", "--no-bindings", t1s])
    });
    same(&rx, &ro, "--bind-ref", |t, r| {
        commit_args(t, r, &["-b", "bound", "--bind-ref=other", t1s])
    });
    same(&rx, &ro, "--bind-ref x2", |t, r| {
        commit_args(
            t,
            r,
            &["-b", "bound2", "--bind-ref=other", "--bind-ref=zz", t1s],
        )
    });
    // --tree=dir= equals the positional PATH.
    let dir_c = same(&rx, &ro, "--tree=dir=", |t, r| {
        commit_args(t, r, &["-b", "viadir", &format!("--tree=dir={t1s}")])
    });
    let pos_c = same(&rx, &ro, "positional", |t, r| {
        commit_args(t, r, &["-b", "viadir", "--parent=none", t1s])
    });
    assert_eq!(
        dir_c, pos_c,
        "--tree=dir= and PATH must give the same commit"
    );
    // --tree=ref=.
    same(&rx, &ro, "--tree=ref=", |t, r| {
        commit_args(t, r, &["-b", "fromref", "--tree=ref=main"])
    });
    // Two --tree layers: later one overlays.
    same(&rx, &ro, "two --tree layers", |t, r| {
        commit_args(
            t,
            r,
            &[
                "-b",
                "layers",
                &format!("--tree=dir={t1s}"),
                &format!("--tree=dir={t2s}"),
            ],
        )
    });
    // Body from file, more metadata.
    let bodyf = d.path().join("body.txt");
    fs::write(&bodyf, "line one\n\nline three\n").unwrap();
    same(&rx, &ro, "-F body file", |t, r| {
        commit_args(
            t,
            r,
            &[
                "-b",
                "bodyfile",
                "-F",
                bodyf.to_str().unwrap(),
                "--add-metadata-string=a=b",
                t1s,
            ],
        )
    });
    // The ref files agree.
    same(&rx, &ro, "refs", |t, r| {
        sorted_lines(&ok(t, r, &["refs"])).join("\n")
    });
    for b in ["main", "withparent", "nob", "bound", "fromref", "layers"] {
        assert_same_file(
            &ro.join("refs/heads").join(b),
            &rx.join("refs/heads").join(b),
            b,
        );
    }
    assert_same_objects(&ro, &rx, "archive");
}

#[test]
fn commit_from_tarball() {
    let d = scratch();
    let tree = d.path().join("tree");
    odd_tree_opts(&tree, false, false);
    let tarf = d.path().join("tree.tar");
    system(
        "tar",
        &[
            "--xattrs",
            "--xattrs-include=user.*",
            "-C",
            tree.to_str().unwrap(),
            "-cf",
            tarf.to_str().unwrap(),
            ".",
        ],
    );
    for mode in ["archive", "bare"] {
        let sub = d.path().join(mode);
        fs::create_dir(&sub).unwrap();
        let (rx, ro) = repos(&sub, mode);
        let arg = format!("--tree=tar={}", tarf.display());
        let o = commit_args(Ost, &ro, &["-b", "tar", &arg]);
        let x = commit_args(Ox, &rx, &["-b", "tar", &arg]);
        // The listing first: it shows where the trees differ.
        assert_same_output(
            &format!("{mode}: ls -R -X of the tar commit (ostree reading both repos)"),
            &ok(Ost, &ro, &["ls", "-R", "-X", "tar"]),
            &ok(Ost, &rx, &["ls", "-R", "-X", "tar"]),
        );
        assert_eq!(
            x, o,
            "{mode}: --tree=tar= checksum (oxtree left, ostree right)"
        );
        assert_same_objects(&ro, &rx, mode);
    }
}

#[test]
fn commit_empty_tree() {
    let d = scratch();
    let empty = d.path().join("empty");
    fs::create_dir(&empty).unwrap();
    std::fs::set_permissions(&empty, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    for mode in MODES {
        let sub = d.path().join(mode);
        fs::create_dir(&sub).unwrap();
        let (rx, ro) = repos(&sub, mode);
        let o = commit(Ost, &ro, "main", &empty, &[]);
        let x = commit(Ox, &rx, "main", &empty, &[]);
        assert_eq!(x, o, "{mode}: empty tree commit (oxtree left)");
        assert_same_objects(&ro, &rx, mode);
        assert_same_output(
            "ls -R of empty commit",
            &ok(Ost, &ro, &["ls", "-R", "-C", "main"]),
            &ok(Ox, &rx, &["ls", "-R", "-C", "main"]),
        );
    }
}

/// ostree refuses to commit a FIFO ("Unsupported file type"); so must oxtree,
/// and neither may leave a ref behind.
#[test]
fn commit_rejects_what_ostree_rejects() {
    let d = scratch();
    let tree = d.path().join("tree");
    simple_tree(&tree, "fifo");
    system("mkfifo", &[tree.join("pipe").to_str().unwrap()]);
    let missing = d.path().join("does-not-exist");
    for mode in ["archive", "bare-user-only"] {
        let sub = d.path().join(mode);
        fs::create_dir(&sub).unwrap();
        let (rx, ro) = repos(&sub, mode);
        for (t, r) in [(Ost, &ro), (Ox, &rx)] {
            for path in [&tree, &missing] {
                let out = run_repo(
                    t,
                    r,
                    &[
                        "commit",
                        "-b",
                        "main",
                        TS,
                        "-s",
                        "x",
                        path.to_str().unwrap(),
                    ],
                );
                out.fails();
                assert!(
                    !r.join("refs/heads/main").exists(),
                    "{} {mode}: failed commit of {} left a ref",
                    t.name(),
                    path.display()
                );
            }
        }
    }
}

/// In a repository with a collection ID, a commit is bound to it
/// (`ostree.collection-binding` after `ostree.ref-binding`), unless
/// --add-metadata-string names another or --no-bindings; same checksums as
/// ostree, and the same `refs --collections` listing.
#[test]
fn commit_collection_binding_matches_ostree() {
    let d = scratch();
    let t1 = d.path().join("t1");
    simple_tree(&t1, "one");
    let t1s = t1.to_str().unwrap();
    let mut repos = Vec::new();
    for tool in [Ox, Ost] {
        let r = d.path().join(format!("repo-{}", tool.name()));
        ok(
            tool,
            &r,
            &["init", "--mode=archive", "--collection-id=org.example.C"],
        );
        repos.push(r);
    }
    let (rx, ro) = (&repos[0], &repos[1]);
    same(rx, ro, "bound commit", |t, r| {
        commit_args(t, r, &["-b", "main", "--bind-ref=other", t1s])
    });
    same(rx, ro, "overridden collection binding", |t, r| {
        commit_args(
            t,
            r,
            &[
                "-b",
                "x",
                "--add-metadata-string=ostree.collection-binding=org.example.D",
                t1s,
            ],
        )
    });
    same(rx, ro, "no bindings", |t, r| {
        commit_args(t, r, &["-b", "y", "--no-bindings", t1s])
    });
    same(rx, ro, "mirror ref", |t, r| {
        ok(
            t,
            r,
            &[
                "refs",
                "--collections",
                "--create=org.example.M:m/one",
                "main",
            ],
        )
    });
    // ostree lists in its hash table's order: compare the sets.
    let sorted = |s: String| {
        let mut l: Vec<&str> = s.lines().collect();
        l.sort_unstable();
        l.join("\n")
    };
    same(rx, ro, "refs --collections", |t, r| {
        sorted(ok(t, r, &["refs", "--collections"]))
    });
    same(rx, ro, "refs --collections ID", |t, r| {
        ok(t, r, &["refs", "--collections", "org.example.M"])
    });
}

/// cpio archives (newc, hard links carried once), `--tar-pathname-filter`
/// and `--tar-autocreate-parents`: the same commits as ostree's libarchive
/// import makes.
#[test]
fn commit_cpio_and_filtered_archives() {
    let d = scratch();
    let tree = d.path().join("tree");
    fs::create_dir_all(tree.join("usr/bin")).unwrap();
    fs::create_dir_all(tree.join("usr/lib")).unwrap();
    fs::write(tree.join("usr/bin/foo"), "contents\n").unwrap();
    fs::hard_link(tree.join("usr/bin/foo"), tree.join("usr/bin/bar")).unwrap();
    fs::hard_link(tree.join("usr/bin/foo"), tree.join("usr/lib/baz")).unwrap();
    std::os::unix::fs::symlink("foo", tree.join("usr/bin/sl")).unwrap();
    fs::write(tree.join("usr/lib/libfoo.so"), "a library\n").unwrap();
    fs::write(tree.join("usr/lib/empty"), "").unwrap();
    let cpio = d.path().join("tree.cpio");
    let tgz = d.path().join("tree.tar.gz");
    let o = system(
        "sh",
        &[
            "-c",
            &format!(
                "cd {} && find . | sort | cpio --quiet -o -H newc > {}",
                tree.display(),
                cpio.display()
            ),
        ],
    );
    assert!(o.success(), "{o:?}");
    let o = system(
        "tar",
        &[
            "-C",
            tree.to_str().unwrap(),
            "-czf",
            tgz.to_str().unwrap(),
            "usr/bin",
        ],
    );
    assert!(o.success(), "{o:?}");
    let (rx, ro) = repos(d.path(), "bare");
    let cases: [(&str, Vec<String>); 3] = [
        ("cpio", vec![format!("--tree=tar={}", cpio.display())]),
        (
            "cpio-filtered",
            vec![
                format!("--tree=tar={}", cpio.display()),
                "--tar-pathname-filter=^usr/lib/,opt/".into(),
                "--tar-autocreate-parents".into(),
            ],
        ),
        (
            "tgz-partial",
            vec![
                format!("--tree=tar={}", tgz.display()),
                "--tar-autocreate-parents".into(),
                "--owner-uid=7".into(),
            ],
        ),
    ];
    for (name, extra) in cases {
        let mut args = vec!["-b", name];
        args.extend(extra.iter().map(String::as_str));
        let o = commit_args(Ost, &ro, &args);
        let x = commit_args(Ox, &rx, &args);
        assert_same_output(
            &format!("{name}: ls -R of the commit (ostree reading both repos)"),
            &ok(Ost, &ro, &["ls", "-R", name]),
            &ok(Ost, &rx, &["ls", "-R", name]),
        );
        assert_eq!(x, o, "{name}: oxtree (left) and ostree (right) differ");
    }
}

/// `--link-checkout-speedup` in a bare-user repository: files hardlinked
/// from a `checkout -U -H` keep their objects' stored owner (gid 81 here,
/// where the checkout's files belong to the caller), unless a modifier
/// changes them, and `-I` keeps them whatever the modifier: the same
/// commits as ostree's.
#[test]
fn commit_link_checkout_speedup_keeps_stored_owners() {
    let d = scratch();
    let tree = d.path().join("tree");
    fs::create_dir_all(tree.join("usr/lib")).unwrap();
    fs::write(tree.join("usr/lib/helper"), "dbus helper\n").unwrap();
    let (rx, ro) = repos(d.path(), "bare-user");
    for (tool, r, name) in [(Ost, &ro, "o"), (Ox, &rx, "x")] {
        commit_args(
            tool,
            r,
            &["-b", "dbus", "--owner-gid=81", tree.to_str().unwrap()],
        );
        let co = d.path().join(format!("co-{name}"));
        ok(
            tool,
            r,
            &["checkout", "-U", "-H", "dbus", co.to_str().unwrap()],
        );
        fs::write(co.join("usr/lib/cache.txt"), "data\n").unwrap();
    }
    for extra in [
        vec!["--link-checkout-speedup"],
        vec!["--link-checkout-speedup", "--owner-uid=5"],
        vec!["-I", "--owner-uid=5", "--table-output"],
    ] {
        let mut out = Vec::new();
        for (tool, r, name) in [(Ost, &ro, "o"), (Ox, &rx, "x")] {
            let co = d.path().join(format!("co-{name}"));
            let mut args = vec!["-b", "rootfs"];
            args.extend(extra.iter().copied());
            args.push(co.to_str().unwrap());
            let mut v = vec!["commit", TS, "-s", "subj"];
            v.extend(args);
            let o = ok(tool, r, &v);
            let csum = match o.lines().find_map(|l| l.strip_prefix("Commit: ")) {
                Some(c) => c.to_string(),
                None => checksum_line(&o),
            };
            if extra.contains(&"--table-output") {
                assert!(o.contains("Content Cache Hits: 1"), "{tool:?}: {o}");
            }
            out.push(csum);
        }
        assert_eq!(
            out[1], out[0],
            "{extra:?}: oxtree (right) and ostree (left) differ"
        );
    }
}

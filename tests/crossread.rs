//! Each tool reads the other's repositories: fsck passes both ways, checkouts
//! are identical to ostree's own checkout of the same commit, and the
//! read-only commands print exactly what ostree prints.

#[path = "support/interop.rs"]
mod common;
use common::*;
use std::path::{Path, PathBuf};

struct Pair {
    _dir: tempfile::TempDir,
    root: PathBuf,
    tree: PathBuf,
    /// Written by oxtree.
    rx: PathBuf,
    /// Written by ostree.
    ro: PathBuf,
    commit: String,
}

fn pair(mode: &str, big: bool) -> Pair {
    let d = scratch();
    let root = d.path().to_path_buf();
    let tree = root.join("tree");
    odd_tree(&tree, big);
    let rx = init_repo(Ox, &root.join("repo-oxtree"), mode);
    let ro = init_repo(Ost, &root.join("repo-ostree"), mode);
    let co = commit(Ost, &ro, "main", &tree, &[]);
    // A second branch with a parent, so log has history.
    commit(
        Ost,
        &ro,
        "main",
        &tree,
        &["--add-metadata-string=second=yes"],
    );
    let cx = commit(Ox, &rx, "main", &tree, &[]);
    commit(
        Ox,
        &rx,
        "main",
        &tree,
        &["--add-metadata-string=second=yes"],
    );
    assert_eq!(
        cx, co,
        "{mode}: commit checksums differ (see commit_interop)"
    );
    Pair {
        _dir: d,
        root,
        tree,
        rx,
        ro,
        commit: co,
    }
}

fn checkout(tool: Tool, repo: &Path, flags: &[&str], dest: &Path) {
    let mut args = vec!["checkout"];
    args.extend_from_slice(flags);
    args.push("main");
    args.push(dest.to_str().unwrap());
    ok(tool, repo, &args);
}

fn fsck_both_ways(p: &Pair, mode: &str) {
    let out = run_repo(Ost, &p.rx, &["fsck"]);
    assert!(
        out.success(),
        "{mode}: `ostree fsck` rejects the oxtree-written repo:\n{out:?}"
    );
    let out = run_repo(Ox, &p.ro, &["fsck"]);
    assert!(
        out.success(),
        "{mode}: `oxtree fsck` rejects the ostree-written repo:\n{out:?}"
    );
    // And each on its own, for completeness.
    run_repo(Ox, &p.rx, &["fsck"]).ok();
}

fn checkouts(p: &Pair, mode: &str, variants: &[&[&str]]) {
    for (i, flags) in variants.iter().enumerate() {
        let reference = p.root.join(format!("co{i}-ostree-of-ostree"));
        checkout(Ost, &p.ro, flags, &reference);
        if mode == "bare" && flags.is_empty() {
            // Sanity of the fixture: a bare checkout restores the tree.
            assert_trees_eq(
                &p.tree,
                &reference,
                Cmp::CONTENT,
                "ostree bare checkout vs source",
            );
        }
        for (tool, repo, name) in [
            (Ost, &p.rx, "ostree-of-oxtree"),
            (Ox, &p.ro, "oxtree-of-ostree"),
            (Ox, &p.rx, "oxtree-of-oxtree"),
        ] {
            let dest = p.root.join(format!("co{i}-{name}"));
            checkout(tool, repo, flags, &dest);
            assert_trees_eq(
                &reference,
                &dest,
                Cmp::EXACT,
                &format!("{mode} checkout {flags:?} {name} vs ostree's checkout of its own repo"),
            );
        }
    }
}

/// Read-only commands: oxtree on ostree's repo and ostree on oxtree's repo
/// both print what ostree prints on its own repo.
fn read_commands(p: &Pair, mode: &str) {
    let cmds: Vec<Vec<&str>> = vec![
        vec!["ls", "-R", "-C", "main"],
        vec!["ls", "-R", "main"],
        vec!["ls", "-R", "-X", "main"],
        vec!["ls", "-R", "-X", "-C", "main"],
        vec!["ls", "main"],
        vec!["ls", "main", "/"],
        vec!["ls", "-d", "main", "/ro"],
        vec!["ls", "-d", "main", "/"],
        vec!["ls", "-d", "-C", "main", "/sub"],
        vec!["ls", "main", "/xd"],
        vec!["ls", "-R", "main", "/sub"],
        vec!["ls", "-C", "main", "/sub/deeper"],
        vec!["ls", "-X", "main", "/xf"],
        vec!["ls", "-C", "main", "/abs"],
        vec!["ls", "main", "/dir with space ü"],
        vec!["ls", "main", "/ro", "/pd"],
        vec!["log", "main"],
        vec!["show", "main"],
        vec!["show", "main^"],
        vec!["show", "--print-metadata-key=version", "main"],
        vec!["rev-parse", "main"],
        vec!["rev-parse", "main^"],
        vec!["cat", "main", "/xf"],
        vec!["cat", "main", "/ünïcødé ✓"],
        vec!["cat", "main", "/xf", "/sub/deeper/deepest/leaf"],
    ];
    for args in &cmds {
        let expected = ok(Ost, &p.ro, args);
        let what = format!("{mode}: {}", args.join(" "));
        assert_same_output(
            &format!("{what} (oxtree on ostree's repo)"),
            &expected,
            &ok(Ox, &p.ro, args),
        );
        assert_same_output(
            &format!("{what} (ostree on oxtree's repo)"),
            &expected,
            &ok(Ost, &p.rx, args),
        );
    }
    // `refs` order is a hash-table order in ostree: compare as sets.
    assert_eq!(
        sorted_lines(&ok(Ox, &p.ro, &["refs"])),
        sorted_lines(&ok(Ost, &p.ro, &["refs"])),
        "{mode}: refs"
    );
    // cat of the big binary file is byte exact (compare by hash of stdout).
    if p.tree.join("big.bin").exists() {
        let x = ok(Ox, &p.ro, &["cat", "main", "/sub/payload"]);
        let o = ok(Ost, &p.ro, &["cat", "main", "/sub/payload"]);
        assert!(x == o, "{mode}: cat /sub/payload differs");
    }
    // Errors where ostree errors.
    for args in [
        vec!["ls", "main", "/nonexistent"],
        vec!["cat", "main", "/nonexistent"],
        vec!["cat", "main", "/sub"],
        vec!["rev-parse", "nosuchref"],
        vec!["show", "nosuchref"],
        vec!["log", "nosuchref"],
    ] {
        let o = run_repo(Ost, &p.ro, &args);
        let x = run_repo(Ox, &p.ro, &args);
        assert_eq!(
            x.success(),
            o.success(),
            "{mode}: {}: exit status differs\nostree: {o:?}\noxtree: {x:?}",
            args.join(" ")
        );
        if !o.success() {
            x.fails();
        }
    }
    assert!(!p.commit.is_empty());
}

#[test]
fn crossread_bare() {
    let p = pair("bare", true);
    fsck_both_ways(&p, "bare");
    checkouts(&p, "bare", &[&[], &["-U"]]);
    read_commands(&p, "bare");
}

#[test]
fn crossread_bare_user() {
    let p = pair("bare-user", true);
    fsck_both_ways(&p, "bare-user");
    checkouts(&p, "bare-user", &[&["-U"], &[]]);
    read_commands(&p, "bare-user");
}

#[test]
fn crossread_bare_user_only() {
    let p = pair("bare-user-only", true);
    fsck_both_ways(&p, "bare-user-only");
    checkouts(&p, "bare-user-only", &[&["-U"], &[]]);
    read_commands(&p, "bare-user-only");
}

#[test]
fn crossread_archive() {
    let p = pair("archive", true);
    fsck_both_ways(&p, "archive");
    checkouts(&p, "archive", &[&["-U"], &[]]);
    read_commands(&p, "archive");
}

/// ostree's `fsck` output on a healthy repo, line for line, is not compared
/// (it has progress lines), but the verdict line is.
#[test]
fn fsck_verdict_line() {
    let p = pair("archive", false);
    let o = ok(Ost, &p.ro, &["fsck"]);
    let x = ok(Ox, &p.ro, &["fsck"]);
    let verdict = |s: &str| {
        s.lines()
            .find(|l| l.contains("completed successfully"))
            .map(|l| l.to_string())
    };
    assert_eq!(
        verdict(&x),
        verdict(&o),
        "fsck verdict\nostree: {o}\noxtree: {x}"
    );
    assert!(verdict(&o).is_some(), "ostree fsck printed no verdict: {o}");
}

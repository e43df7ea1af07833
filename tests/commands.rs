//! The remaining commands, each compared with ostree: state-changing ones run
//! on two copies of one ostree-written repository (one per tool) and the
//! outputs and resulting repositories are compared.

#[path = "support/interop.rs"]
mod common;
use common::*;
use std::fs;
use std::path::{Path, PathBuf};

struct Hist {
    _d: tempfile::TempDir,
    root: PathBuf,
    /// ostree-written repo with main = c1 <- c2 <- c3 and branch `other`.
    repo: PathBuf,
    commits: Vec<String>,
    trees: Vec<PathBuf>,
}

/// Three commits on main (2020, 2021, 2022), `other` on c1.
fn history(mode: &str) -> Hist {
    let d = scratch();
    let root = d.path().to_path_buf();
    let repo = init_repo(Ost, &root.join("repo"), mode);
    let mut commits = vec![];
    let mut trees = vec![];
    for (i, year) in ["2020", "2021", "2022"].iter().enumerate() {
        let t = root.join(format!("tree{i}"));
        odd_tree(&t, false);
        fs::write(t.join("version"), format!("v{i}\n")).unwrap();
        if i >= 1 {
            fs::remove_file(t.join("zero")).unwrap();
            fs::write(t.join("xf"), "changed\n").unwrap();
            fs::create_dir(t.join(format!("added{i}"))).unwrap();
            fs::write(t.join(format!("added{i}/f")), "new\n").unwrap();
        }
        if i == 2 {
            fs::remove_dir_all(t.join("emptydir")).unwrap();
            fs::set_permissions(
                t.join("priv"),
                std::os::unix::fs::PermissionsExt::from_mode(0o640),
            )
            .unwrap();
        }
        let out = ok(
            Ost,
            &repo,
            &[
                "commit",
                "-b",
                "main",
                &format!("--timestamp={year}-01-01"),
                "-s",
                &format!("commit {i}"),
                t.to_str().unwrap(),
            ],
        );
        commits.push(checksum_line(&out));
        trees.push(t);
    }
    ok(Ost, &repo, &["refs", "--create=other", &commits[0]]);
    Hist {
        _d: d,
        root,
        repo,
        commits,
        trees,
    }
}

impl Hist {
    /// Copies of the repo for ostree and oxtree.
    fn copies(&self, name: &str) -> (PathBuf, PathBuf) {
        let o = self.root.join(format!("{name}-ostree"));
        let x = self.root.join(format!("{name}-oxtree"));
        cp_a(&self.repo, &o);
        cp_a(&self.repo, &x);
        (o, x)
    }
}

/// Run the same args with each tool on its copy; compare exit status and
/// stdout (when it succeeded). Returns ostree's stdout.
#[track_caller]
fn same(o: &Path, x: &Path, args: &[&str]) -> String {
    let ro = run_repo(Ost, o, args);
    let rx = run_repo(Ox, x, args);
    let what = args.join(" ");
    assert_eq!(
        rx.success(),
        ro.success(),
        "{what}: exit status differs\nostree: {ro:?}\noxtree: {rx:?}"
    );
    if ro.success() {
        assert_same_output(&what, &ro.stdout, &rx.stdout);
    } else {
        rx.fails();
    }
    ro.stdout
}

fn refs_state(repo: &Path) -> Vec<(String, String)> {
    listing(&repo.join("refs"))
        .into_iter()
        .filter_map(|p| {
            let full = repo.join("refs").join(&p);
            full.is_file()
                .then(|| (p.clone(), fs::read_to_string(full).unwrap()))
        })
        .collect()
}

#[track_caller]
fn same_refs(o: &Path, x: &Path, what: &str) {
    assert_eq!(
        refs_state(x),
        refs_state(o),
        "{what}: refs/ differ (oxtree left)"
    );
}

#[test]
fn refs_create_delete_list() {
    let h = history("archive");
    let (o, x) = h.copies("refs");
    let sorted = |t: Tool, r: &Path, a: &[&str]| sorted_lines(&ok(t, r, a));
    for args in [&["refs"][..], &["refs", "--list"][..]] {
        assert_eq!(sorted(Ox, &x, args), sorted(Ost, &o, args), "{args:?}");
    }
    same(&o, &x, &["refs", "--create=new", "main"]);
    same(&o, &x, &["refs", "--create=deep/nested/ref", &h.commits[1]]);
    same_refs(&o, &x, "after --create");
    // Existing ref: both refuse without --force.
    same(&o, &x, &["refs", "--create=new", "other"]);
    same(&o, &x, &["refs", "--force", "--create=new", "other"]);
    same_refs(&o, &x, "after --force --create");
    // Unknown target.
    same(&o, &x, &["refs", "--create=bad", "nosuchref"]);
    for args in [
        &["refs"][..],
        &["refs", "--list"][..],
        &["refs", "deep"][..],
    ] {
        assert_eq!(sorted(Ox, &x, args), sorted(Ost, &o, args), "{args:?}");
    }
    same(&o, &x, &["refs", "--delete", "new"]);
    same_refs(&o, &x, "after --delete new");
    same(&o, &x, &["refs", "--delete", "deep"]);
    same_refs(&o, &x, "after --delete prefix");
    assert!(!x.join("refs/heads/new").exists());
    assert!(!x.join("refs/heads/deep/nested/ref").exists());
}

#[test]
fn rev_parse_and_reset() {
    let h = history("bare");
    let (o, x) = h.copies("reset");
    for rev in [
        "main",
        "main^",
        "main^^",
        "main^^^",
        "other",
        &h.commits[1],
        "nosuch",
    ] {
        same(&o, &x, &["rev-parse", rev]);
    }
    assert_eq!(ok(Ox, &x, &["rev-parse", "main^"]).trim(), h.commits[1]);
    same(&o, &x, &["reset", "main", &h.commits[0]]);
    same_refs(&o, &x, "after reset");
    assert_eq!(ok(Ox, &x, &["rev-parse", "main"]).trim(), h.commits[0]);
    same(&o, &x, &["reset", "main", "main^"]);
    same(&o, &x, &["reset", "nosuchref", &h.commits[0]]);
    same_refs(&o, &x, "after failing resets");
}

#[test]
fn diff_matches_ostree() {
    let h = history("archive");
    let r = &h.repo;
    let (a, b, c) = (&h.commits[0], &h.commits[1], &h.commits[2]);
    for args in [
        vec!["diff", a.as_str(), b.as_str()],
        vec!["diff", b.as_str(), a.as_str()],
        vec!["diff", a.as_str(), c.as_str()],
        vec!["diff", "main^", "main"],
        vec!["diff", "main", "main"],
        vec!["diff", "--stats", a.as_str(), c.as_str()],
    ] {
        let o = ok(Ost, r, &args);
        let x = ok(Ox, r, &args);
        assert_same_output(&args.join(" "), &o, &x);
    }
    // A commit against a directory.
    let t = h.trees[1].to_str().unwrap();
    same(r, r, &["diff", "main", t]);
}

#[test]
fn checksum_matches_ostree() {
    let d = scratch();
    let t = d.path().join("tree");
    odd_tree(&t, true);
    let names = [
        "suid",
        "sgid",
        "priv",
        "zero",
        "world",
        "owned",
        "empty",
        "hl1",
        "xf",
        "rel",
        "abs",
        "dang",
        "ownedlink",
        UNICODE_NAME,
        "with space",
        "big.bin",
        "sub/payload",
        "ro",
        "sticky",
        "xd",
        "odir",
        "emptydir",
        ".",
    ];
    for n in names {
        let p = t.join(n);
        let p = p.to_str().unwrap();
        for args in [vec!["checksum", p], vec!["checksum", "--ignore-xattrs", p]] {
            let o = run(Ost, &args).ok();
            let x = run(Ox, &args).ok();
            assert_same_output(&args.join(" "), &o.stdout, &x.stdout);
        }
    }
    // The checksum of a file is its content object name in a commit.
    let r = init_repo(Ost, &d.path().join("r"), "bare");
    commit(Ost, &r, "main", &t, &[]);
    let want = &ls_checksums(&r, "main", "/suid")[0];
    let got = run(Ox, &["checksum", t.join("suid").to_str().unwrap()])
        .ok()
        .stdout;
    assert_eq!(got.trim(), want);
    run(Ox, &["checksum", d.path().join("nope").to_str().unwrap()]).fails();
}

fn prune_case(mode: &str) {
    let h = history(mode);
    // An orphan commit and a loose unreachable object.
    let orphan_tree = h.root.join("orphan");
    simple_tree(&orphan_tree, "orphan");
    let orphan = checksum_line(&ok(
        Ost,
        &h.repo,
        &[
            "commit",
            "--orphan",
            TS,
            "-s",
            "orphan",
            orphan_tree.to_str().unwrap(),
        ],
    ));
    for (name, args) in [
        ("noprune", vec!["prune", "--no-prune", "--refs-only"]),
        ("refsonly", vec!["prune", "--refs-only"]),
        ("depth0", vec!["prune", "--refs-only", "--depth=0"]),
        ("younger", vec!["prune", "--keep-younger-than=2020-06-01"]),
        ("younger2", vec!["prune", "--keep-younger-than=2021-06-01"]),
        ("depth1", vec!["prune", "--depth=1"]),
        (
            "only-main",
            vec!["prune", "--only-branch=main", "--depth=0"],
        ),
        (
            "retain",
            vec!["prune", "--depth=0", "--retain-branch-depth=main=1"],
        ),
        (
            "retain-younger",
            vec![
                "prune",
                "--keep-younger-than=2021-06-01",
                "--retain-branch-depth=main=-1",
            ],
        ),
        (
            "commit-only",
            vec!["prune", "--commit-only", "--refs-only", "--depth=0"],
        ),
        (
            "delete-commit",
            vec!["prune", "--delete-commit", h.commits[0].as_str()],
        ),
    ] {
        let (o, x) = h.copies(name);
        if name == "delete-commit" {
            // ostree refuses to delete a commit a ref points to.
            ok(Ost, &o, &["refs", "--delete", "other"]);
            ok(Ost, &x, &["refs", "--delete", "other"]);
        }
        same(&o, &x, &args);
        assert_same_paths(
            &object_paths(&o),
            &object_paths(&x),
            &format!("{mode} {args:?}: objects left after prune"),
        );
        let f = run_repo(Ost, &x, &["fsck"]);
        assert!(
            f.success(),
            "{mode} {args:?}: ostree fsck after oxtree prune:\n{f:?}"
        );
        let orphan_left = object_path(&x, &orphan, "commit").exists();
        match name {
            "noprune" => assert!(orphan_left),
            // Without --refs-only every commit is a root (ostree keeps it).
            "refsonly" | "depth0" => {
                assert!(!orphan_left, "{mode} {args:?}: orphan commit survived")
            }
            _ => {}
        }
        if name == "depth0" {
            for c in &h.commits[1..2] {
                assert!(
                    !object_path(&x, c, "commit").exists(),
                    "{mode} --depth=0: old commit {c} survived"
                );
            }
            assert!(object_path(&x, &h.commits[2], "commit").exists());
        }
        if name == "younger" {
            assert!(
                !object_path(&x, &h.commits[0], "commit").exists() || {
                    // c1 is still the target of `other`; ostree keeps ref targets.
                    refs_state(&x).iter().any(|(_, v)| v.trim() == h.commits[0])
                }
            );
            assert!(object_path(&x, &h.commits[1], "commit").exists());
        }
        if name == "younger2" {
            assert!(!object_path(&x, &h.commits[1], "commit").exists());
            assert!(object_path(&x, &h.commits[2], "commit").exists());
        }
    }
}

#[test]
fn prune_bare() {
    prune_case("bare");
}

#[test]
fn prune_archive() {
    prune_case("archive");
}

#[test]
fn config_get_set() {
    for mode in MODES {
        let d = scratch();
        let r = init_repo(Ost, &d.path().join("r"), mode);
        let x = d.path().join("x");
        cp_a(&r, &x);
        // archive reads back as "archive-z2".
        same(&r, &x, &["config", "get", "core.mode"]);
        same(&r, &x, &["config", "get", "core.repo_version"]);
        same(&r, &x, &["config", "get", "core.nope"]);
        same(&r, &x, &["config", "get", "nogroup.key"]);
        same(&r, &x, &["config", "set", "core.foo", "bar baz"]);
        same(&r, &x, &["config", "set", "other.key", "v"]);
        same(&r, &x, &["config", "get", "core.foo"]);
        same(&r, &x, &["config", "--group=other", "get", "key"]);
        assert_eq!(
            fs::read_to_string(x.join("config")).unwrap(),
            fs::read_to_string(r.join("config")).unwrap(),
            "{mode}: config file after `config set` (oxtree left)"
        );
    }
}

#[test]
fn export_tar_matches_ostree() {
    let d = scratch();
    let t = d.path().join("tree");
    odd_tree_opts(&t, false, false);
    let r = init_repo(Ost, &d.path().join("r"), "bare");
    commit(Ost, &r, "main", &t, &[]);
    let mut listings = vec![];
    for (tool, opts) in [
        (Ost, vec![]),
        (Ox, vec![]),
        (Ost, vec!["--subpath=/sub"]),
        (Ox, vec!["--subpath=/sub"]),
    ] {
        let name = format!("{}{}", tool.name(), opts.len());
        let tarf = d.path().join(format!("{name}.tar"));
        let mut args = vec!["export".to_string(), format!("--output={}", tarf.display())];
        args.extend(opts.iter().map(|s| s.to_string()));
        args.push("main".into());
        ok(tool, &r, &args);
        let out = d.path().join(format!("{name}-x"));
        fs::create_dir(&out).unwrap();
        system(
            "tar",
            &[
                "--xattrs",
                "--xattrs-include=*",
                "--numeric-owner",
                "-xpf",
                tarf.to_str().unwrap(),
                "-C",
                out.to_str().unwrap(),
            ],
        );
        let list = system("tar", &["--numeric-owner", "-tvf", tarf.to_str().unwrap()]).stdout;
        listings.push((out, list));
    }
    // The exported tree is the committed tree, minus xattrs: ostree 2022.7's
    // export writes no xattr records at all (even without --no-xattrs).
    let no_x = Cmp {
        xattrs: false,
        ..Cmp::CONTENT
    };
    assert_trees_eq(&t, &listings[0].0, no_x, "ostree export vs source");
    // oxtree keeps xattrs (ostree's documented default, `--no-xattrs`
    // turns them off): apart from them, the trees are the same, and
    // oxtree's export carries the source's xattrs.
    assert_trees_eq(
        &listings[0].0,
        &listings[1].0,
        no_x,
        "export main: extracted trees",
    );
    assert_trees_eq(
        &t,
        &listings[1].0,
        Cmp::CONTENT,
        "oxtree export vs source, with xattrs",
    );
    assert_trees_eq(
        &listings[2].0,
        &listings[3].0,
        no_x,
        "export --subpath: extracted trees",
    );
    assert_same_output("tar -tv of export main", &listings[0].1, &listings[1].1);
    assert_same_output(
        "tar -tv of export --subpath",
        &listings[2].1,
        &listings[3].1,
    );
}

#[test]
fn pull_local_into_every_mode() {
    let d = scratch();
    let t = d.path().join("tree");
    odd_tree(&t, false);
    let src = init_repo(Ost, &d.path().join("src"), "archive");
    let c = commit(Ost, &src, "main", &t, &[]);
    commit(Ost, &src, "main", &t, &["--add-metadata-string=n=2"]);
    let srcs = src.to_str().unwrap();
    for mode in MODES {
        let o = init_repo(Ost, &d.path().join(format!("{mode}-ostree")), mode);
        let x = init_repo(Ost, &d.path().join(format!("{mode}-oxtree")), mode);
        let ro = run_repo(Ost, &o, &["pull-local", srcs, "main"]);
        let rx = run_repo(Ox, &x, &["pull-local", srcs, "main"]);
        assert_eq!(
            rx.success(),
            ro.success(),
            "{mode}: pull-local status differs\nostree: {ro:?}\noxtree: {rx:?}"
        );
        if !ro.success() {
            continue;
        }
        same_refs(&o, &x, &format!("{mode}: pull-local"));
        assert_same_paths(
            &object_paths(&o),
            &object_paths(&x),
            &format!("{mode}: objects after pull-local"),
        );
        let f = run_repo(Ost, &x, &["fsck"]);
        assert!(
            f.success(),
            "{mode}: ostree fsck after oxtree pull-local:\n{f:?}"
        );
        run_repo(Ox, &x, &["fsck"]).ok();
        for flags in [&["-U"][..], &[][..]] {
            let co_o = d.path().join(format!("{mode}{}-co-o", flags.len()));
            let co_x = d.path().join(format!("{mode}{}-co-x", flags.len()));
            let mut a = vec!["checkout"];
            a.extend_from_slice(flags);
            let (mut ao, mut ax) = (a.clone(), a);
            ao.extend(["main", co_o.to_str().unwrap()]);
            ax.extend(["main", co_x.to_str().unwrap()]);
            ok(Ost, &o, &ao);
            ok(Ost, &x, &ax);
            assert_trees_eq(
                &co_o,
                &co_x,
                Cmp::EXACT,
                &format!("{mode} {flags:?}: checkout after pull-local"),
            );
        }
        // Pulling again is a no-op that succeeds; --depth pulls history.
        ok(Ox, &x, &["pull-local", srcs, "main"]);
        let o2 = init_repo(Ost, &d.path().join(format!("{mode}-o-depth")), mode);
        let x2 = init_repo(Ost, &d.path().join(format!("{mode}-x-depth")), mode);
        ok(Ost, &o2, &["pull-local", "--depth=1", srcs, "main"]);
        ok(Ox, &x2, &["pull-local", "--depth=1", srcs, "main"]);
        assert_eq!(
            object_paths(&x2),
            object_paths(&o2),
            "{mode}: --depth=1 objects"
        );
        assert!(object_path(&x2, &c, "commit").exists());
    }
}

/// `--json` is an oxtree extension (ostree 2022.7: "error: Unknown option --json").
#[test]
fn json_output_parses() {
    if stricter_than_ostree("--json is an oxtree extension") {
        return;
    }
    let h = history("archive");
    let r = &h.repo;
    let head = &h.commits[2];
    for args in [
        vec!["log", "--json", "main"],
        vec!["refs", "--json"],
        vec!["show", "--json", "main"],
    ] {
        let out = ok(Ox, r, &args);
        let v: serde_json::Value = serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}):\n{out}"));
        let s = v.to_string();
        assert!(
            s.contains(head.as_str()),
            "{args:?}: JSON lacks {head}:\n{out}"
        );
        if args[0] == "log" {
            for c in &h.commits {
                assert!(s.contains(c.as_str()), "log --json lacks {c}");
            }
        }
    }
}

#[test]
fn help_for_every_command() {
    let cmds = [
        "init",
        "commit",
        "checkout",
        "ls",
        "cat",
        "show",
        "log",
        "refs",
        "rev-parse",
        "reset",
        "diff",
        "checksum",
        "fsck",
        "prune",
        "config",
        "export",
        "pull-local",
    ];
    let top = run(Ox, &["--help"]).ok();
    for c in cmds {
        assert!(
            top.stdout.contains(c),
            "--help does not list {c}:\n{}",
            top.stdout
        );
        let out = run(Ox, &[c, "--help"]).ok();
        assert!(
            out.stdout.contains("Usage") && out.stdout.contains(c),
            "{c} --help:\n{out:?}"
        );
    }
}

#[test]
fn unknown_command_fails_clearly() {
    let d = scratch();
    let r = init_repo(Ox, &d.path().join("r"), "archive");
    // (`ostree frobnicate --help` prints the usage and exits 0; not compared.)
    for args in [vec!["frobnicate"], vec!["frobnicate", "x"]] {
        let out = run(Ox, &args).fails();
        assert!(
            out.stderr.contains("frobnicate"),
            "{args:?}: error does not name the command:\n{out:?}"
        );
    }
    run_repo(Ox, &r, &["frobnicate"]).fails();
    // No repo: a clear failure, not a panic.
    let out = run_repo(Ox, &d.path().join("missing"), &["refs"]).fails();
    assert!(!out.stderr.trim().is_empty());
    assert!(!out.stderr.contains("panicked"), "{out:?}");
}

/// Each error in a chain is printed once: the library says "opening
/// repository P", the binary adds nothing of its own on top of it, and the
/// io error comes last.
#[test]
fn error_chain_printed_once() {
    let d = scratch();
    let missing = d.path().join("nonexistent");
    let out = run(Ox, &[&format!("--repo={}", missing.display()), "log", "x"]).fails();
    assert_eq!(
        out.stderr,
        format!(
            "error: opening repository {}: No such file or directory (os error 2)\n",
            missing.display()
        )
    );
    // A directory that is not a repository: the binary's context, then
    // the library's.
    let plain = d.path().join("plain");
    fs::create_dir(&plain).unwrap();
    let out = run(Ox, &[&format!("--repo={}", plain.display()), "log", "x"]).fails();
    assert_eq!(
        out.stderr,
        format!(
            "error: opening repository {p}: {p} is not an ostree repository: reading config: \
             No such file or directory (os error 2)\n",
            p = plain.display()
        )
    );
    // The same for a sysroot, locked (os-init) or not (status).
    for args in [&["admin", "os-init", "x"][..], &["admin", "status"]] {
        let mut a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        a.push(format!("--sysroot={}", missing.display()));
        let out = run(Ox, &a).fails();
        assert_eq!(
            out.stderr,
            format!(
                "error: opening sysroot {}: No such file or directory (os error 2)\n",
                missing.display()
            ),
            "{args:?}"
        );
    }
}

#[test]
fn init_matches_ostree() {
    for mode in MODES {
        let d = scratch();
        let o = init_repo(Ost, &d.path().join("o"), mode);
        let x = init_repo(Ox, &d.path().join("x"), mode);
        assert_eq!(
            listing(&x),
            listing(&o),
            "{mode}: init layout (oxtree left)"
        );
        assert_eq!(
            fs::read_to_string(x.join("config")).unwrap(),
            fs::read_to_string(o.join("config")).unwrap()
        );
        // Re-init of an existing repo succeeds in ostree 2022.7.
        same(&o, &x, &["init", &format!("--mode={mode}")]);
    }
    let d = scratch();
    let out = run_repo(Ox, &d.path().join("bad"), &["init", "--mode=nonsense"]).fails();
    assert!(out.stderr.contains("nonsense"), "{out:?}");
}

/// A repository with `core.parent` stores only what its parent lacks, and
/// reads the rest from it: pull-local copies 3 of 6 files as ostree does,
/// checkout and fsck find the parent's, and prune never drops what the
/// child's refs reach.
#[test]
fn parent_repository_objects_are_read_not_copied() {
    let d = scratch();
    let root = d.path();
    let files = root.join("files");
    fs::create_dir_all(&files).unwrap();
    for i in 1..=3 {
        fs::write(files.join(format!("afile{i}")), format!("afile{i}\n")).unwrap();
    }
    let parent = init_repo(Ost, &root.join("repo"), "archive");
    commit(Ost, &parent, "test", &files, &[]);
    for i in 4..=6 {
        fs::write(files.join(format!("afile{i}")), format!("afile{i}\n")).unwrap();
    }
    let tmp = init_repo(Ost, &root.join("tmp-repo"), "archive");
    commit(Ost, &tmp, "childtest", &files, &[]);
    let filez = |r: &Path| {
        object_paths(r)
            .iter()
            .filter(|p| p.ends_with(".filez"))
            .count()
    };
    let mut counts = Vec::new();
    for tool in [Ost, Ox] {
        let child = init_repo(Ost, &root.join(format!("child-{tool:?}")), "archive");
        let mut cfg = fs::read_to_string(child.join("config")).unwrap();
        cfg.push_str(&format!("parent={}\n", parent.display()));
        fs::write(child.join("config"), cfg).unwrap();
        ok(
            tool,
            &child,
            &["pull-local", tmp.to_str().unwrap(), "childtest"],
        );
        counts.push(filez(&child));
        ok(Ox, &child, &["prune", "--refs-only", "--depth=0"]);
        assert_eq!(filez(&child), 3, "prune kept the child's own objects");
        let co = root.join(format!("co-{tool:?}"));
        ok(Ox, &child, &["checkout", "childtest", co.to_str().unwrap()]);
        assert_eq!(fs::read_to_string(co.join("afile1")).unwrap(), "afile1\n");
        assert_eq!(fs::read_to_string(co.join("afile6")).unwrap(), "afile6\n");
        ok(Ost, &child, &["fsck"]);
        ok(Ox, &child, &["fsck"]);
    }
    assert_eq!(
        counts,
        vec![3, 3],
        "(ostree, oxtree) files stored in the child"
    );
}

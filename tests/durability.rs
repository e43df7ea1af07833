//! Crash consistency: `kill -9` of `oxtree commit` at many points leaves a
//! repository both fscks accept, with the branch either absent or complete;
//! concurrent commits to one repository both land.

#[path = "support/interop.rs"]
mod common;
use common::*;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn commit_cmd(repo: &Path, branch: &str, tree: &Path) -> Command {
    let mut c = Command::new(Ox.bin());
    c.arg(format!("--repo={}", repo.display()))
        // The same options as common::commit, so a completed run prints the
        // same checksum.
        .args([
            "commit",
            "-b",
            branch,
            TS,
            "-s",
            "subj",
            "-m",
            "body",
            "--add-metadata-string=version=1.0",
        ])
        .arg(tree)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

#[track_caller]
fn fsck_both(repo: &Path, what: &str) {
    let o = run_repo(Ost, repo, &["fsck"]);
    assert!(o.success(), "{what}: ostree fsck fails:\n{o:?}");
    let x = run_repo(Ox, repo, &["fsck"]);
    assert!(x.success(), "{what}: oxtree fsck fails:\n{x:?}");
}

#[test]
fn kill_9_during_commit() {
    let d = scratch();
    let tree = d.path().join("tree");
    large_tree(&tree, 1200, 2, 3 << 20);

    // One uninterrupted run: its duration spaces the kill points, its
    // checksum is what a completed commit must be.
    // The first run is cold; a second, warm one is what the killed runs
    // will look like, so the faster of the two spaces the kill points.
    let r0 = init_repo(Ox, &d.path().join("r0"), "archive");
    let t0 = Instant::now();
    let expected = commit(Ox, &r0, "main", &tree, &[]);
    let cold = t0.elapsed();
    let warm_repo = init_repo(Ox, &d.path().join("r0-warm"), "archive");
    let t1 = Instant::now();
    assert_eq!(commit(Ox, &warm_repo, "main", &tree, &[]), expected);
    let dur = cold.min(t1.elapsed()) * 4 / 5;
    // Guard against a commit so fast that the kills all land after it.
    eprintln!("uninterrupted oxtree commit took {dur:?}");
    let reference = d.path().join("reference");
    ok(
        Ost,
        &r0,
        &["checkout", "-U", "main", reference.to_str().unwrap()],
    );

    // Kill points are spread over `span`, the current estimate of how long
    // a commit runs. A run that finished before its kill shows the estimate
    // was too long (caches warm up, load changes), so it shrinks; attempts
    // go on until enough kills landed mid-commit, within a bound.
    let points: u32 = 10;
    let first = Duration::from_millis(5);
    let mut span = dur;
    let mut killed_before_end = 0;
    let mut attempt: u32 = 0;
    while killed_before_end < points && attempt < 3 * points {
        let i = attempt;
        attempt += 1;
        let delay = first + span.saturating_sub(first) * (i % points) / points;
        let what = format!("kill -9 after {delay:?} (#{i})");
        let repo = init_repo(Ox, &d.path().join(format!("r{}", i + 1)), "archive");
        let mut child = commit_cmd(&repo, "main", &tree)
            .spawn()
            .expect("spawn oxtree");
        std::thread::sleep(delay);
        let finished = child.try_wait().unwrap().is_some();
        let _ = child.kill(); // SIGKILL, our own child only
        let _ = child.wait();
        if finished {
            span = span * 7 / 10;
        } else {
            killed_before_end += 1;
        }
        fsck_both(&repo, &what);
        let head = repo.join("refs/heads/main");
        if head.exists() {
            let c = fs::read_to_string(&head).unwrap();
            assert_eq!(
                c.trim(),
                expected,
                "{what}: ref main points to something other than the complete commit"
            );
            let co = d.path().join(format!("co{i}"));
            ok(
                Ost,
                &repo,
                &["checkout", "-U", "main", co.to_str().unwrap()],
            );
            assert_trees_eq(&reference, &co, Cmp::CONTENT, &what);
        }
        // The repository still takes a normal commit, with the same result
        // (not after every kill: each costs a full commit's fsyncs).
        if !i.is_multiple_of(3) {
            fs::remove_dir_all(&repo).unwrap();
            continue;
        }
        let again = commit(Ox, &repo, "main", &tree, &["--parent=none"]);
        assert_eq!(again, expected, "{what}: commit after the crash differs");
        // The killed writer's staging directory (its lock died with it) is
        // reclaimed by the next transaction, not left to fill the disk.
        let left: Vec<String> = fs::read_dir(repo.join("tmp"))
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("staging-") && n.contains("-oxtree-"))
            .collect();
        assert!(
            left.is_empty(),
            "{what}: staging left after the next commit: {left:?}"
        );
        let o = run_repo(Ost, &repo, &["fsck"]);
        assert!(o.success(), "{what}: ostree fsck after recommit:\n{o:?}");
        fs::remove_dir_all(&repo).unwrap();
    }
    assert!(
        killed_before_end >= points / 2,
        "only {killed_before_end} of {attempt} kills landed before the commit ended"
    );
}

fn concurrent(repo: &Path, a: (&str, &Path), b: (&str, &Path)) -> (Out, Out) {
    let (ra, rb) = (repo.to_path_buf(), repo.to_path_buf());
    let (ba, ta) = (a.0.to_string(), a.1.to_path_buf());
    let (bb, tb) = (b.0.to_string(), b.1.to_path_buf());
    let h1 = std::thread::spawn(move || {
        run_repo(
            Ox,
            &ra,
            &["commit", "-b", &ba, TS, "-s", "one", ta.to_str().unwrap()],
        )
    });
    let h2 = std::thread::spawn(move || {
        run_repo(
            Ox,
            &rb,
            &["commit", "-b", &bb, TS, "-s", "two", tb.to_str().unwrap()],
        )
    });
    (h1.join().unwrap(), h2.join().unwrap())
}

#[test]
fn concurrent_commits() {
    let d = scratch();
    let t1 = d.path().join("t1");
    let t2 = d.path().join("t2");
    large_tree(&t1, 800, 1, 2 << 20);
    large_tree(&t2, 800, 1, 2 << 20);
    fs::write(t2.join("different"), "t2\n").unwrap();
    fs::write(t2.join("d00/e0/f00000"), "changed\n").unwrap();

    for mode in ["archive", "bare-user"] {
        // Different branches.
        let repo = init_repo(Ox, &d.path().join(format!("{mode}-branches")), mode);
        let (a, b) = concurrent(&repo, ("one", &t1), ("two", &t2));
        let (a, b) = (a.ok(), b.ok());
        let (ca, cb) = (checksum_line(&a.stdout), checksum_line(&b.stdout));
        // Branch names that are not hex: `rev-parse b` would resolve as a
        // partial checksum (ostree tries that before refs).
        for (r, c, out) in [("one", &ca, &a), ("two", &cb, &b)] {
            let head = ok(Ost, &repo, &["rev-parse", r]);
            assert_eq!(
                head.trim(),
                c.as_str(),
                "{mode}: ref {r} is not the commit that `commit -b {r}` printed\n{out:?}\nlog:\n{}",
                run_repo(Ost, &repo, &["log", r]).all()
            );
        }
        fsck_both(
            &repo,
            &format!("{mode}: concurrent commits to two branches"),
        );

        // The same branch: both land; the ref is one of them.
        let repo = init_repo(Ox, &d.path().join(format!("{mode}-same")), mode);
        let (a, b) = concurrent(&repo, ("main", &t1), ("main", &t2));
        let (a, b) = (a.ok(), b.ok());
        let (ca, cb) = (checksum_line(&a.stdout), checksum_line(&b.stdout));
        let head = ok(Ost, &repo, &["rev-parse", "main"]).trim().to_string();
        assert!(
            head == ca || head == cb,
            "{mode}: main is {head}, neither {ca} nor {cb}"
        );
        for c in [&ca, &cb] {
            assert!(object_path(&repo, c, "commit").is_file());
        }
        fsck_both(&repo, &format!("{mode}: concurrent commits to one branch"));
        ok(Ost, &repo, &["log", "main"]);
    }
}

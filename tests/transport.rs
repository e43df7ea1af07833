//! Transport interop: oxtree pulls over HTTP from repositories ostree wrote
//! (served by a real static server, python3 -m http.server), ostree pulls
//! from `oxtree serve`, lying servers are caught, and remotes that ask for
//! GPG verification without trusted keys are refused. ostree and python3 are required: a missing
//! one fails the test. Every child process started here is killed by its
//! own handle when the test ends.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

#[path = "support/net.rs"]
mod net;
use net::{python_server, require, Guard};
#[path = "support/cli.rs"]
mod cli;
use cli::{fails, ok, oxtree, run};

/// A tree with a subdirectory, a symlink, an empty file and a larger file.
fn make_tree(dir: &Path) {
    std::fs::create_dir_all(dir.join("d/e")).unwrap();
    std::fs::write(dir.join("a"), "one\n").unwrap();
    let big: Vec<u8> = (0..200_000u32).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(dir.join("d/big"), big).unwrap();
    std::fs::write(dir.join("d/e/empty"), "").unwrap();
    std::os::unix::fs::symlink("a", dir.join("l")).unwrap();
}

/// `DIR/src`, a new archive repo made by `bin`, and `DIR/tree`, a fresh
/// make_tree to commit into it.
fn archive_with_tree(bin: &Path, dir: &Path) -> (PathBuf, PathBuf) {
    let (src, tree) = (dir.join("src"), dir.join("tree"));
    make_tree(&tree);
    ok(bin, &src, &["init", "--mode=archive"]);
    (src, tree)
}

/// An oxtree repository of `mode` at `dir` with remote `name` at `url`
/// (no GPG verification).
fn client(ox: &Path, dir: &Path, mode: &str, name: &str, url: &str) {
    ok(ox, dir, &["init", &format!("--mode={mode}")]);
    ok(ox, dir, &["remote", "add", "--no-gpg-verify", name, url]);
}

fn count_objects(repo: &Path) -> usize {
    let mut n = 0;
    for d in std::fs::read_dir(repo.join("objects")).unwrap() {
        let d = d.unwrap();
        if d.file_type().unwrap().is_dir() {
            n += std::fs::read_dir(d.path()).unwrap().count();
        }
    }
    n
}

fn fsck_both(repo: &Path) {
    ok(oxtree(), repo, &["fsck"]);
    ok(require("ostree"), repo, &["fsck"]);
}

fn ref_file(repo: &Path, remote: &str, name: &str) -> PathBuf {
    repo.join("refs/remotes").join(remote).join(name)
}

#[test]
fn pull_from_ostree_archive_over_static_http() {
    let ost = require("ostree");
    let ox = oxtree();
    let tmp = tempfile::tempdir().unwrap();
    let (src, tree) = archive_with_tree(&ost, tmp.path());
    let tree_s = tree.to_str().unwrap();
    ok(
        &ost,
        &src,
        &[
            "commit",
            "-b",
            "main",
            "--timestamp=2020-01-01",
            "-s",
            "one",
            tree_s,
        ],
    );
    std::fs::write(tree.join("d/e/empty"), "now full\n").unwrap();
    ok(
        &ost,
        &src,
        &[
            "commit",
            "-b",
            "main",
            "--timestamp=2020-01-02",
            "-s",
            "two",
            tree_s,
        ],
    );
    ok(&ost, &src, &["summary", "-u"]);
    let (_server, url) = python_server(&src);

    for mode in ["bare-user", "archive"] {
        let dst = tmp.path().join(format!("dst-{mode}"));
        ok(&ox, &dst, &["init", &format!("--mode={mode}")]);
        ok(
            &ox,
            &dst,
            &["remote", "add", "--no-gpg-verify", "origin", &url],
        );
        ok(&ox, &dst, &["pull", "--depth=1", "origin", "main"]);
        fsck_both(&dst);
        assert_eq!(
            ok(&ox, &dst, &["ls", "-R", "-C", "origin:main"]),
            ok(&ost, &src, &["ls", "-R", "-C", "main"]),
            "{mode}"
        );
        assert_eq!(
            ok(&ox, &dst, &["rev-parse", "origin:main"]),
            ok(&ost, &src, &["rev-parse", "main"])
        );
        assert_eq!(
            ok(&ox, &dst, &["ls", "-R", "-C", "origin:main^"]),
            ok(&ost, &src, &["ls", "-R", "-C", "main^"])
        );
        assert!(!dst.join("state").read_dir().unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".commitpartial")));
    }

    // Incremental: a third commit changing one top-level file fetches only
    // the commit, the root dirtree and that file.
    let dst = tmp.path().join("dst-bare-user");
    let before = count_objects(&dst);
    std::fs::write(tree.join("a"), "three\n").unwrap();
    ok(
        &ost,
        &src,
        &[
            "commit",
            "-b",
            "main",
            "--timestamp=2020-01-03",
            "-s",
            "three",
            tree_s,
        ],
    );
    ok(&ost, &src, &["summary", "-u"]);
    let out = ok(&ox, &dst, &["pull", "origin", "main"]);
    assert!(
        out.starts_with("2 metadata, 1 content objects fetched"),
        "{out}"
    );
    assert_eq!(count_objects(&dst), before + 3);
    fsck_both(&dst);
    assert_eq!(
        ok(&ox, &dst, &["ls", "-R", "-C", "origin:main"]),
        ok(&ost, &src, &["ls", "-R", "-C", "main"])
    );
    // Nothing new: nothing fetched.
    assert_eq!(ok(&ox, &dst, &["pull", "origin", "main"]), "");

    // Without a summary, refs resolve through refs/heads/.
    std::fs::remove_file(src.join("summary")).unwrap();
    let d2 = tmp.path().join("dst-nosummary");
    ok(&ox, &d2, &["init", "--mode=bare-user"]);
    ok(
        &ox,
        &d2,
        &["remote", "add", "--no-gpg-verify", "origin", &url, "main"],
    );
    ok(&ox, &d2, &["pull", "origin"]);
    fsck_both(&d2);

    // remote refs / summary read the remote's summary.
    ok(&ost, &src, &["summary", "-u"]);
    assert_eq!(
        ok(&ox, &dst, &["remote", "refs", "origin"]),
        "origin:main\n"
    );
    assert!(ok(&ox, &dst, &["remote", "summary", "origin"]).contains("* main"));
}

#[test]
fn summary_matches_ostree_bytes() {
    let ost = require("ostree");
    let ox = oxtree();
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let tree = tmp.path().join("tree");
    make_tree(&tree);
    ok(&ost, &a, &["init", "--mode=archive"]);
    let t = tree.to_str().unwrap();
    ok(
        &ost,
        &a,
        &["commit", "-b", "main", "--timestamp=2020-01-01", t],
    );
    ok(
        &ost,
        &a,
        &[
            "commit",
            "-b",
            "x/y",
            "--timestamp=2020-01-02",
            "--add-metadata-string=version=4.2",
            t,
        ],
    );
    let b = tmp.path().join("b");
    let cp = Command::new("cp")
        .arg("-a")
        .arg(&a)
        .arg(&b)
        .status()
        .unwrap();
    assert!(cp.success());
    ok(&ost, &a, &["summary", "-u"]);
    ok(&ox, &b, &["summary", "-u"]);
    let sa = std::fs::read(a.join("summary")).unwrap();
    let sb = std::fs::read(b.join("summary")).unwrap();
    assert_eq!(sa.len(), sb.len());
    // Only ostree.summary.last-modified (one 8-byte value) may differ.
    let diff: Vec<usize> = (0..sa.len()).filter(|&i| sa[i] != sb[i]).collect();
    if let (Some(f), Some(l)) = (diff.first(), diff.last()) {
        assert!(l - f < 8, "summaries differ beyond the timestamp: {diff:?}");
    }
    // Each tool reads the other's.
    let view_a = ok(&ox, &a, &["summary", "--view"]);
    let view_b = ok(&ost, &b, &["summary", "--view"]);
    let strip = |s: &str| {
        s.lines()
            .filter(|l| !l.starts_with("Last-Modified"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(strip(&view_a), strip(&view_b));
}

/// Collection refs in summaries: the repository's own collection in the
/// main list, mirrors and remotes with a collection ID in
/// `ostree.summary.collection-map`, next to a static delta, byte for byte
/// as ostree writes them; `refs --collections` lists the same pairs.
#[test]
fn summary_collections_match_ostree_bytes() {
    let ost = require("ostree");
    let ox = oxtree();
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let tree = tmp.path().join("tree");
    make_tree(&tree);
    let t = tree.to_str().unwrap();
    ok(
        &ost,
        &a,
        &["init", "--mode=archive", "--collection-id=org.example.Main"],
    );
    ok(
        &ost,
        &a,
        &["commit", "-b", "main", "--timestamp=2020-01-01", t],
    );
    ok(
        &ost,
        &a,
        &["commit", "-b", "b/two", "--timestamp=2020-01-02", t],
    );
    ok(
        &ost,
        &a,
        &[
            "refs",
            "--collections",
            "--create=org.example.Other:mirrored",
            "main",
        ],
    );
    ok(
        &ost,
        &a,
        &[
            "remote",
            "add",
            "--no-gpg-verify",
            "--collection-id=org.example.Remote",
            "r",
            "http://127.0.0.1:9/",
        ],
    );
    ok(
        &ost,
        &a,
        &[
            "remote",
            "add",
            "--no-gpg-verify",
            "plain",
            "http://127.0.0.1:9/",
        ],
    );
    let main = ok(&ost, &a, &["rev-parse", "main"]);
    for remote in ["r", "plain"] {
        let d = a.join("refs/remotes").join(remote);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("rref"), &main).unwrap();
    }
    ok(&ost, &a, &["static-delta", "generate", "--empty", "main"]);
    let b = tmp.path().join("b");
    assert!(Command::new("cp")
        .arg("-a")
        .arg(&a)
        .arg(&b)
        .status()
        .unwrap()
        .success());
    // ostree lists in its hash table's order: compare the sets.
    let sorted = |s: String| {
        let mut l: Vec<String> = s.lines().map(str::to_string).collect();
        l.sort_unstable();
        l
    };
    assert_eq!(
        sorted(ok(&ox, &b, &["refs", "--collections"])),
        sorted(ok(&ost, &a, &["refs", "--collections"]))
    );
    ok(&ost, &a, &["summary", "-u"]);
    ok(&ox, &b, &["summary", "-u"]);
    // Both made an `ostree-metadata` commit dated now: the summaries
    // differ only in its checksum, its timestamp and the summary's own.
    let meta_a = ok(&ost, &a, &["rev-parse", "ostree-metadata"]);
    let meta_b = ok(&ost, &b, &["rev-parse", "ostree-metadata"]);
    let sa = std::fs::read(a.join("summary")).unwrap();
    let sb = std::fs::read(b.join("summary")).unwrap();
    assert_eq!(sa.len(), sb.len());
    let bytes = |hex: &str| -> Vec<u8> {
        (0..64)
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex.trim()[i..i + 2], 16).unwrap())
            .collect()
    };
    let at = sa
        .windows(32)
        .position(|w| w == bytes(&meta_a).as_slice())
        .expect("ostree-metadata in ostree's summary");
    assert_eq!(&sb[at..at + 32], bytes(&meta_b).as_slice());
    let diff: Vec<usize> = (0..sa.len())
        .filter(|&i| sa[i] != sb[i] && !(at..at + 32).contains(&i))
        .collect();
    // What is left: at most two 8-byte timestamps.
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for &i in &diff {
        match spans.last_mut() {
            Some((f, l)) if i - *f < 8 => *l = i,
            _ => spans.push((i, i)),
        }
    }
    assert!(
        spans.len() <= 2,
        "summaries differ beyond the timestamps: {diff:?}"
    );
    let view_a = ok(&ox, &a, &["summary", "--view"]);
    assert!(
        view_a.contains("* (org.example.Other, mirrored)"),
        "{view_a}"
    );
    assert!(view_a.contains("* (org.example.Remote, rref)"), "{view_a}");
    assert!(view_a.contains("* (org.example.Main, b/two)"), "{view_a}");
    let view_b = ok(&ost, &b, &["summary", "--view"]);
    assert!(
        view_b.contains("* (org.example.Main, ostree-metadata)"),
        "{view_b}"
    );
    let strip = |s: &str| {
        let mut in_meta = false;
        s.lines()
            .filter(|l| {
                // The ostree-metadata entry (checksum, date) differs.
                if l.contains(", ostree-metadata)") {
                    in_meta = true;
                } else if l.is_empty() {
                    in_meta = false;
                }
                // (oxtree prints the delta map in its own notation)
                !in_meta && !l.starts_with("Last-Modified") && !l.contains("ostree.static-deltas")
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(strip(&view_a), strip(&view_b));
}

#[test]
fn ostree_pulls_from_oxtree_serve() {
    let ost = require("ostree");
    let ox = oxtree();
    let tmp = tempfile::tempdir().unwrap();
    let (src, tree) = archive_with_tree(&ox, tmp.path());
    ok(
        &ox,
        &src,
        &[
            "commit",
            "-b",
            "main",
            "--timestamp=2020-01-01",
            tree.to_str().unwrap(),
        ],
    );
    ok(&ox, &src, &["summary", "-u"]);
    let mut child = Command::new(&ox)
        .arg(format!("--repo={}", src.display()))
        .args(["serve", "--port=0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _g = Guard(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_string();
    for mode in ["bare-user", "archive"] {
        let dst = tmp.path().join(format!("dst-{mode}"));
        ok(&ost, &dst, &["init", &format!("--mode={mode}")]);
        ok(&ost, &dst, &["remote", "add", "--no-gpg-verify", "o", &url]);
        ok(&ost, &dst, &["pull", "o", "main"]);
        fsck_both(&dst);
        assert_eq!(
            ok(&ost, &dst, &["ls", "-R", "-C", "o:main"]),
            ok(&ox, &src, &["ls", "-R", "-C", "main"])
        );
    }
    // The server stays inside the repository.
    let port = url.trim_end_matches('/').rsplit(':').next().unwrap();
    let mut s = TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
    s.write_all(b"GET /../../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 404"), "{resp}");
}

// ------------------------------------------------------------ lying server

#[derive(Clone)]
enum Lie {
    Honest,
    /// Flip one byte of this file.
    Flip(String),
    /// Announce the full length, send half, close.
    Truncate(String),
    /// Answer 500 this many times (usize::MAX: always).
    Error500(String, Arc<AtomicUsize>),
    /// Answer 404 for this file.
    NotFound(String),
    /// Send the headers, then one byte every two seconds.
    Slow(String),
    /// Redirect this file to itself, forever.
    RedirectLoop(String),
    /// Send this file's headers, count the request, then hang for a
    /// minute (a pull waits on it until it is killed).
    Hang(String, Arc<AtomicUsize>),
    /// As ostree-trivial-httpd --force-range-requests: without a Range
    /// header, announce the whole file, send half and close; honour
    /// `Range: bytes=N-` with a 206. Counts the file's body bytes sent.
    HalfUnlessRange(String, Arc<AtomicUsize>),
    /// Keep connections alive and honour `Range: bytes=A-B` (and `A-`)
    /// with a 206, recording every (path, range) asked.
    Ranges(Arc<std::sync::Mutex<Vec<(String, String)>>>),
    /// As Ranges, but flip the last byte of any range of this file that
    /// does not start at 0 (a lying mirror, say).
    FlipRanges(String),
    /// Keep connections alive but ignore Range: always 200 and the whole
    /// file. Counts the requests.
    NoRanges(Arc<AtomicUsize>),
}

/// A minimal HTTP/1.1 static server for `root` that lies as told.
fn lying_server(root: PathBuf, lie: Lie) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(conn) = conn else { continue };
            let (root, lie) = (root.clone(), lie.clone());
            std::thread::spawn(move || serve_conn(conn, &root, &lie));
        }
    });
    format!("http://127.0.0.1:{port}/")
}

fn serve_conn(mut conn: TcpStream, root: &Path, lie: &Lie) {
    let mut r = BufReader::new(conn.try_clone().unwrap());
    loop {
        let mut first = String::new();
        if r.read_line(&mut first).unwrap_or(0) == 0 {
            return;
        }
        let mut range_start: Option<usize> = None;
        let mut range = None;
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                break;
            }
            if let Some(v) = h.to_ascii_lowercase().strip_prefix("range: bytes=") {
                range_start = v.trim().trim_end_matches('-').parse().ok();
                range = Some(v.trim().to_string());
            }
        }
        if !matches!(lie, Lie::Ranges(_) | Lie::FlipRanges(_) | Lie::NoRanges(_)) {
            return answer(&mut conn, root, lie, &first, range_start);
        }
        // Keep-alive with ranges: bytes=A-B or A-.
        let path = first
            .split_whitespace()
            .nth(1)
            .unwrap_or("/")
            .trim_start_matches('/')
            .to_string();
        let Ok(mut body) = std::fs::read(root.join(&path))
            .map_err(|_| ())
            .and_then(|b| if path.contains("..") { Err(()) } else { Ok(b) })
        else {
            let _ = write!(conn, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
            continue;
        };
        let len = body.len();
        let honour = !matches!(lie, Lie::NoRanges(_));
        let span = range.as_deref().filter(|_| honour).and_then(|v| {
            let (a, b) = v.split_once('-')?;
            let a: usize = a.parse().ok()?;
            let b: usize = if b.is_empty() {
                len - 1
            } else {
                b.parse().ok()?
            };
            (a <= b && b < len).then_some((a, b))
        });
        match (lie, span) {
            (Lie::Ranges(log), _) => log
                .lock()
                .unwrap()
                .push((path.clone(), range.clone().unwrap_or_default())),
            (Lie::FlipRanges(p), Some((a, b))) if *p == path && a > 0 => body[b] ^= 0x55,
            (Lie::NoRanges(n), _) => {
                n.fetch_add(1, Ordering::SeqCst);
            }
            _ => {}
        }
        let ok = match span {
            Some((a, b)) => write!(
                conn,
                "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {a}-{b}/{len}\r\n\r\n",
                b - a + 1
            )
            .and_then(|()| conn.write_all(&body[a..=b])),
            None => write!(conn, "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n")
                .and_then(|()| conn.write_all(&body)),
        };
        if ok.is_err() {
            return;
        }
    }
}

fn answer(conn: &mut TcpStream, root: &Path, lie: &Lie, first: &str, range_start: Option<usize>) {
    let path = first
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .trim_start_matches('/');
    let send = |conn: &mut TcpStream, status: &str, len: usize, body: &[u8]| {
        let _ = write!(
            conn,
            "HTTP/1.1 {status}\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
        );
        let _ = conn.write_all(body);
    };
    if path.contains("..") {
        return send(conn, "404 Not Found", 0, b"");
    }
    let mut body = match std::fs::read(root.join(path)) {
        Ok(b) => b,
        Err(_) => return send(conn, "404 Not Found", 0, b""),
    };
    match lie {
        Lie::Flip(p) if p == path => {
            let i = body.len() - 3;
            body[i] ^= 0x55;
        }
        Lie::Truncate(p) if p == path => {
            let len = body.len();
            return send(conn, "200 OK", len, &body[..len / 2]);
        }
        Lie::NotFound(p) if p == path => return send(conn, "404 Not Found", 0, b""),
        Lie::Hang(p, asked) if p == path => {
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            asked.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_secs(60));
            return;
        }
        Lie::HalfUnlessRange(p, sent) if p == path => {
            let len = body.len();
            match range_start {
                Some(start) if start < len => {
                    let _ = write!(
                        conn,
                        "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {start}-{}/{len}\r\nConnection: close\r\n\r\n",
                        len - start,
                        len - 1
                    );
                    sent.fetch_add(len - start, Ordering::SeqCst);
                    let _ = conn.write_all(&body[start..]);
                }
                _ => {
                    sent.fetch_add(len / 2, Ordering::SeqCst);
                    send(conn, "200 OK", len, &body[..len / 2]);
                }
            }
            return;
        }
        Lie::Slow(p) if p == path => {
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            for b in body.iter().take(10) {
                if conn.write_all(&[*b]).is_err() {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_secs(2));
            }
            return;
        }
        Lie::RedirectLoop(p) if p == path => {
            let _ = write!(
                conn,
                "HTTP/1.1 302 Found\r\nLocation: /{path}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            return;
        }
        Lie::Error500(p, n) if p == path => {
            let left = n.load(Ordering::SeqCst);
            if left > 0 {
                n.store(left.saturating_sub(1), Ordering::SeqCst);
                return send(conn, "500 Internal Server Error", 0, b"");
            }
        }
        _ => {}
    }
    send(conn, "200 OK", body.len(), &body);
}

/// The `.filez` path and checksum of `d/big` in `src`'s main.
fn big_object(src: &Path) -> (String, String) {
    let ls = ok(require("ostree"), src, &["ls", "-C", "main", "/d/big"]);
    let csum = ls
        .split_whitespace()
        .find(|w| w.len() == 64)
        .expect("checksum in ls -C")
        .to_string();
    (format!("objects/{}/{}.filez", &csum[..2], &csum[2..]), csum)
}

#[test]
fn lying_servers_are_caught_and_pull_resumes() {
    let ost = require("ostree");
    let ox = oxtree();
    let tmp = tempfile::tempdir().unwrap();
    let (src, tree) = archive_with_tree(&ost, tmp.path());
    ok(
        &ost,
        &src,
        &[
            "commit",
            "-b",
            "main",
            "--timestamp=2020-01-01",
            tree.to_str().unwrap(),
        ],
    );
    let (big_path, big_csum) = big_object(&src);

    let dst = tmp.path().join("dst");
    ok(&ox, &dst, &["init", "--mode=bare-user"]);
    let lies = [
        ("flip", Lie::Flip(big_path.clone())),
        ("truncate", Lie::Truncate(big_path.clone())),
        (
            "500",
            Lie::Error500(big_path.clone(), Arc::new(AtomicUsize::new(usize::MAX))),
        ),
        ("404", Lie::NotFound(big_path.clone())),
        ("slow", Lie::Slow(big_path.clone())),
        ("redirect-loop", Lie::RedirectLoop(big_path.clone())),
    ];
    for (what, lie) in lies {
        let url = lying_server(src.clone(), lie);
        let name = format!("liar-{what}");
        ok(
            &ox,
            &dst,
            &["remote", "add", "--no-gpg-verify", &name, &url],
        );
        let o = run(
            &ox,
            &dst,
            &[
                "pull",
                "--network-retries=1",
                "--stall-timeout=1",
                &name,
                "main",
            ],
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success(),
            "{what}: pull from a lying server succeeded"
        );
        assert!(
            err.contains(&big_csum),
            "{what}: error does not name the object: {err}"
        );
        assert!(
            !ref_file(&dst, &name, "main").exists(),
            "{what}: ref written"
        );
        // The commit is recorded as partial; good objects stayed.
        assert!(count_objects(&dst) > 0, "{what}");
    }
    assert!(dst.join("state").read_dir().unwrap().count() > 0);

    // A body cut short is resumed with a Range request, not fetched again:
    // the server sends the big object's bytes once in all.
    let sent = Arc::new(AtomicUsize::new(0));
    let url = lying_server(
        src.clone(),
        Lie::HalfUnlessRange(big_path.clone(), Arc::clone(&sent)),
    );
    let d3 = tmp.path().join("dst3");
    client(&ox, &d3, "archive", "ranges", &url);
    ok(&ox, &d3, &["pull", "--network-retries=1", "ranges", "main"]);
    let size = std::fs::metadata(src.join(&big_path)).unwrap().len() as usize;
    assert_eq!(sent.load(Ordering::SeqCst), size, "resumed, not refetched");
    fsck_both(&d3);

    // A transient 500 is retried and the pull succeeds.
    let url = lying_server(
        src.clone(),
        Lie::Error500(big_path.clone(), Arc::new(AtomicUsize::new(2))),
    );
    let d2 = tmp.path().join("dst2");
    client(&ox, &d2, "archive", "flaky", &url);
    ok(&ox, &d2, &["pull", "flaky", "main"]);
    fsck_both(&d2);

    // An honest server completes the interrupted pull: only the missing
    // object is fetched.
    let url = lying_server(src.clone(), Lie::Honest);
    ok(
        &ox,
        &dst,
        &["remote", "add", "--no-gpg-verify", "honest", &url],
    );
    let out = ok(&ox, &dst, &["pull", "honest", "main"]);
    assert!(
        out.starts_with("0 metadata, 1 content objects fetched"),
        "{out}"
    );
    assert!(ref_file(&dst, "honest", "main").exists());
    fsck_both(&dst);
    assert!(!dst.join("state").read_dir().unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with(".commitpartial")));
    assert_eq!(
        ok(&ox, &dst, &["ls", "-R", "-C", "honest:main"]),
        ok(&ost, &src, &["ls", "-R", "-C", "main"])
    );
}

#[test]
fn gpg_verifying_remotes_are_refused() {
    let ost = require("ostree");
    let ox = oxtree();
    let tmp = tempfile::tempdir().unwrap();
    let (src, tree) = archive_with_tree(&ost, tmp.path());
    ok(
        &ost,
        &src,
        &["commit", "-b", "main", tree.to_str().unwrap()],
    );
    let url = lying_server(src.clone(), Lie::Honest);
    let dst = tmp.path().join("dst");
    ok(&ox, &dst, &["init", "--mode=bare-user"]);
    ok(&ox, &dst, &["remote", "add", "unset", &url]);
    ok(
        &ox,
        &dst,
        &["remote", "add", "--set=gpg-verify=true", "on", &url],
    );
    ok(
        &ox,
        &dst,
        &[
            "remote",
            "add",
            "--no-gpg-verify",
            "--set=sign-verify=true",
            "sign",
            &url,
        ],
    );
    for name in ["unset", "on", "sign"] {
        let o = run(&ox, &dst, &["pull", name, "main"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{name}");
        // Verification is implemented (tests/signatures.rs); without
        // trusted keys the pull is refused before anything is fetched.
        assert!(
            err.contains(&format!("remote '{name}' requires")) && err.contains("no trusted"),
            "{name}: {err}"
        );
        assert!(!ref_file(&dst, name, "main").exists());
    }
    assert_eq!(count_objects(&dst), 0);
    // remote list / show-url / delete behave like ostree's.
    assert_eq!(ok(&ox, &dst, &["remote", "list"]), "on\nsign\nunset\n");
    assert_eq!(
        ok(&ox, &dst, &["remote", "show-url", "on"]),
        format!("{url}\n")
    );
    assert!(!run(&ox, &dst, &["remote", "add", "on", &url])
        .status
        .success());
    ok(&ox, &dst, &["remote", "add", "--if-not-exists", "on", &url]);
    ok(&ox, &dst, &["remote", "delete", "on"]);
    assert!(!run(&ox, &dst, &["remote", "delete", "on"]).status.success());
    ok(&ox, &dst, &["remote", "delete", "--if-exists", "on"]);
    assert_eq!(ok(&ox, &dst, &["remote", "list"]), "sign\nunset\n");
    // ostree reads the config oxtree wrote.
    assert_eq!(ok(&ost, &dst, &["remote", "list"]), "sign\nunset\n");
}

/// `pull --json`: progress lines a script can follow, then one "done" line
/// naming the ref written and its commit.
#[test]
fn pull_json_progress_lines() {
    let ost = require("ostree");
    let ox = oxtree();
    let tmp = tempfile::tempdir().unwrap();
    let (src, tree) = archive_with_tree(&ost, tmp.path());
    let c = ok(
        &ost,
        &src,
        &["commit", "-b", "main", tree.to_str().unwrap()],
    );
    let (_server, url) = python_server(&src);
    let dst = tmp.path().join("dst");
    client(&ox, &dst, "archive", "o", &url);
    let out = ok(&ox, &dst, &["pull", "--json", "o", "main"]);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    let (done, progress) = lines.split_last().expect("at least the done line");
    assert_eq!(done["event"], "done", "{out}");
    assert_eq!(done["refs"]["o:main"], c.trim(), "{out}");
    assert_eq!(done["commits"][0], c.trim(), "{out}");
    // make_tree has 4 content objects; all of them came over the wire.
    assert_eq!(done["fetched-content"], 4, "{out}");
    assert_eq!(done["content-bytes"], 4 + 200_000, "{out}");
    assert!(done["bytes"].as_u64().unwrap() > 0, "{out}");
    assert!(!progress.is_empty(), "{out}");
    let mut last = 0;
    for p in progress {
        assert_eq!(p["event"], "progress", "{out}");
        let f = p["fetched"].as_u64().unwrap();
        assert!(f >= last && f <= p["requested"].as_u64().unwrap(), "{out}");
        last = f;
    }
}

/// `pull --subpath`: only the named directory (and the way to it) arrives,
/// the commit stays partial and no ref check pretends otherwise; a full
/// pull then completes it.
#[test]
fn pull_subpath_fetches_part_of_the_tree() {
    let ost = require("ostree");
    let ox = oxtree();
    let tmp = tempfile::tempdir().unwrap();
    let (src, tree) = archive_with_tree(&ost, tmp.path());
    ok(
        &ost,
        &src,
        &["commit", "-b", "main", tree.to_str().unwrap()],
    );
    let (_server, url) = python_server(&src);
    let dst = tmp.path().join("dst");
    client(&ox, &dst, "archive", "o", &url);
    let out = ok(
        &ox,
        &dst,
        &["pull", "--json", "--subpath=/d/e", "o", "main"],
    );
    let done: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    // d/e/empty only: not /a, /l or /d/big.
    assert_eq!(done["fetched-content"], 1, "{out}");
    let partial = std::fs::read_dir(dst.join("state"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".commitpartial")
        })
        .count();
    assert_eq!(partial, 1, "the commit must stay partial");
    assert!(run(
        &ost,
        &dst,
        &[
            "checkout",
            "--subpath=/d/e",
            "o:main",
            tmp.path().join("co").to_str().unwrap()
        ]
    )
    .status
    .success());
    let out = ok(&ox, &dst, &["pull", "--json", "o", "main"]);
    let done: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(done["fetched-content"], 3, "{out}");
    fsck_both(&dst);
    let e = run(&ox, &dst, &["pull", "--subpath=/../x", "o", "main"]);
    assert!(!e.status.success());
}

/// A pull killed with -9 keeps what it had verified: the next pull (from
/// an honest server) fetches the commit object again (commits are never
/// salvaged before their trees) and the one object the first pull was
/// waiting for, nothing else, and no staging directory stays behind.
#[test]
fn killed_pull_keeps_what_it_verified() {
    let ost = require("ostree");
    let ox = oxtree();
    let tmp = tempfile::tempdir().unwrap();
    let (src, tree) = archive_with_tree(&ost, tmp.path());
    ok(
        &ost,
        &src,
        &["commit", "-b", "main", tree.to_str().unwrap()],
    );
    let (big_path, _) = big_object(&src);
    let asked = Arc::new(AtomicUsize::new(0));
    let url = lying_server(src.clone(), Lie::Hang(big_path, Arc::clone(&asked)));
    let dst = tmp.path().join("dst");
    client(&ox, &dst, "bare-user", "hang", &url);
    let mut child = Command::new(&ox)
        .arg(format!("--repo={}", dst.display()))
        .args(["pull", "hang", "main"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Until the big object is asked for, then a moment for the others
    // (all small, on loopback) to be written.
    let t0 = std::time::Instant::now();
    while asked.load(Ordering::SeqCst) == 0 && t0.elapsed().as_secs() < 30 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        asked.load(Ordering::SeqCst) > 0,
        "the pull never asked for the big object"
    );
    std::thread::sleep(std::time::Duration::from_secs(2));
    child.kill().unwrap(); // SIGKILL, our own child
    child.wait().unwrap();
    assert_eq!(
        count_objects(&dst),
        0,
        "nothing was committed before the kill"
    );

    let url = lying_server(src.clone(), Lie::Honest);
    ok(
        &ox,
        &dst,
        &["remote", "add", "--no-gpg-verify", "honest", &url],
    );
    let out = ok(&ox, &dst, &["pull", "honest", "main"]);
    assert!(
        out.starts_with("1 metadata, 1 content objects fetched"),
        "{out}"
    );
    fsck_both(&dst);
    let leftovers: Vec<_> = std::fs::read_dir(dst.join("tmp"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("staging-"))
        .collect();
    assert!(leftovers.is_empty(), "staging left behind: {leftovers:?}");
}

/// `pull --localcache-repo`: objects a local repository already has are
/// copied from it (verified), only the rest is fetched.
#[test]
fn pull_takes_objects_from_a_local_cache() {
    let ost = require("ostree");
    let ox = oxtree();
    let tmp = tempfile::tempdir().unwrap();
    let (src, tree) = archive_with_tree(&ost, tmp.path());
    ok(
        &ost,
        &src,
        &["commit", "-b", "main", tree.to_str().unwrap()],
    );
    let url = lying_server(src.clone(), Lie::Honest);
    let cache = tmp.path().join("cache");
    client(&ox, &cache, "archive", "o", &url);
    ok(&ox, &cache, &["pull", "o", "main"]);
    std::fs::write(tree.join("added"), "one more file\n").unwrap();
    ok(
        &ost,
        &src,
        &["commit", "-b", "main", tree.to_str().unwrap()],
    );
    let dst = tmp.path().join("dst");
    client(&ox, &dst, "bare-user", "o", &url);
    let out = ok(
        &ox,
        &dst,
        &[
            "pull",
            "--localcache-repo",
            cache.to_str().unwrap(),
            "o",
            "main",
        ],
    );
    assert!(
        out.starts_with("2 metadata, 1 content objects fetched ("),
        "{out}"
    );
    assert!(!out.contains(" 0 content local"), "{out}");
    fsck_both(&dst);
}

/// `sha256sum`/`sha512sum` of a file, as hex.
fn digest(tool: &str, file: &Path) -> String {
    let o = Command::new(tool).arg(file).output().unwrap();
    assert!(o.status.success());
    String::from_utf8(o.stdout).unwrap()[..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// A metalink document for `summary` (`size`, `sha256`, `sha512`) with
/// these target URLs, in order.
fn metalink_doc(size: u64, sha256: &str, sha512: &str, urls: &[String]) -> String {
    let urls: String = urls
        .iter()
        .map(|u| format!("<url protocol=\"http\" type=\"http\" location=\"US\" preference=\"100\">{u}</url>\n"))
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <metalink version=\"3.0\" xmlns=\"http://www.metalinker.org/\">\n\
         <unknown><nested>skipped</nested></unknown>\n<files>\n\
         <file name=\"summary\"><size>{size}</size><verification>\
         <hash type=\"md5\">ignored</hash><hash type=\"sha256\">{sha256}</hash>\
         <hash type=\"sha512\">{sha512}</hash></verification>\n\
         <resources maxconnections=\"1\">\n{urls}</resources></file>\n</files>\n</metalink>\n"
    )
}

/// A remote added as `metalink=URL`: the summary comes from the first
/// target with the listed size and digest (a 404 and a wrong file are
/// skipped), everything else from that target's directory. A metalink
/// that lies about the size or the digest fails the pull with ostree's
/// words, and no ref moves.
#[test]
fn pull_through_a_metalink() {
    let ost = require("ostree");
    let ox = oxtree();
    let tmp = tempfile::tempdir().unwrap();
    let (src, tree) = archive_with_tree(&ost, tmp.path());
    let commit = ok(
        &ost,
        &src,
        &["commit", "-b", "main", tree.to_str().unwrap()],
    );
    ok(&ost, &src, &["summary", "-u"]);
    std::fs::write(src.join("summary.bad"), "broken").unwrap();
    std::fs::create_dir(tmp.path().join("ml")).unwrap();
    let base = lying_server(tmp.path().to_path_buf(), Lie::Honest);
    let summary = src.join("summary");
    let size = std::fs::metadata(&summary).unwrap().len();
    let (s256, s512) = (digest("sha256sum", &summary), digest("sha512sum", &summary));
    let targets = [
        format!("{base}src/summary.bad"),
        format!("{base}src/nosuchfile"),
        format!("{base}src/summary"),
    ];
    let ml = tmp.path().join("ml/metalink.xml");
    let ml_url = format!("metalink={base}ml/metalink.xml");
    std::fs::write(&ml, metalink_doc(size, &s256, &s512, &targets)).unwrap();

    let dst = tmp.path().join("dst");
    ok(&ox, &dst, &["init", "--mode=archive"]);
    ok(
        &ox,
        &dst,
        &["remote", "add", "--no-gpg-verify", "o", &ml_url],
    );
    let conf = std::fs::read_to_string(dst.join("config")).unwrap();
    assert!(
        conf.contains("metalink=") && !conf.contains("url="),
        "{conf}"
    );
    ok(&ox, &dst, &["pull", "o", "main"]);
    assert_eq!(
        std::fs::read_to_string(ref_file(&dst, "o", "main"))
            .unwrap()
            .trim(),
        commit.trim()
    );
    fsck_both(&dst);
    let refs = ok(&ox, &dst, &["remote", "refs", "o"]);
    assert!(refs.contains("o:main"), "{refs}");

    // Lying metalinks: only the real summary is listed, with a wrong size,
    // then with a wrong digest.
    let good = &targets[2..];
    let wrong = "0".repeat(128);
    for (doc, want) in [
        (
            metalink_doc(size + 1, &s256, &s512, good),
            format!(
                "Expected size is {} bytes but content is {size} bytes",
                size + 1
            ),
        ),
        (
            metalink_doc(size, &s256, &wrong, good),
            format!("Expected checksum is {wrong} but actual is {s512}"),
        ),
        (
            metalink_doc(size, &s256, "bacon", good),
            "Invalid hash digest for sha512".to_string(),
        ),
    ] {
        std::fs::write(&ml, doc).unwrap();
        let fresh = tmp.path().join("fresh");
        let _ = std::fs::remove_dir_all(&fresh);
        ok(&ox, &fresh, &["init", "--mode=archive"]);
        ok(
            &ox,
            &fresh,
            &["remote", "add", "--no-gpg-verify", "o", &ml_url],
        );
        let e = fails(&ox, &fresh, &["pull", "o", "main"]);
        assert!(e.contains(&want), "{want}: {e}");
        assert!(!ref_file(&fresh, "o", "main").exists());
        assert_eq!(count_objects(&fresh), 0, "{e}");
    }
    std::fs::write(&ml, "bacon\n").unwrap();
    let e = fails(&ox, &dst, &["pull", "o", "main"]);
    assert!(e.contains("Document must begin with an element"), "{e}");
}

/// `mirrorlist=URL` as url and as contenturl: mirrors without a config
/// are dropped, and an object missing from one mirror comes from the next.
#[test]
fn pull_through_mirrorlists() {
    let ost = require("ostree");
    let ox = oxtree();
    let tmp = tempfile::tempdir().unwrap();
    let (src, tree) = archive_with_tree(&ost, tmp.path());
    let commit = ok(
        &ost,
        &src,
        &["commit", "-b", "main", tree.to_str().unwrap()],
    );
    ok(&ost, &src, &["summary", "-u"]);
    let copy = |name: &str| {
        let to = tmp.path().join(name);
        let st = Command::new("cp").arg("-a").arg(&src).arg(&to).status();
        assert!(st.unwrap().success());
        to
    };
    let m1 = copy("m1");
    copy("m2");
    // m1 lacks one file object, m2 has everything.
    let filez = std::fs::read_dir(m1.join("objects"))
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "filez"))
        .unwrap();
    std::fs::remove_file(&filez).unwrap();
    let base = lying_server(tmp.path().to_path_buf(), Lie::Honest);
    std::fs::write(
        tmp.path().join("mirrorlist"),
        format!("\n# comment\n\n{base}nosuchrepo\nftp://ignored/\n{base}m1\n{base}m2\n"),
    )
    .unwrap();
    let list = format!("mirrorlist={base}mirrorlist");
    for (i, args) in [
        vec![list.clone()],
        vec![format!("--contenturl={list}"), format!("{base}src")],
        vec![format!("--contenturl={list}"), list.clone()],
    ]
    .iter()
    .enumerate()
    {
        let dst = tmp.path().join(format!("dst{i}"));
        ok(&ox, &dst, &["init", "--mode=archive"]);
        let mut add = vec!["remote", "add", "--no-gpg-verify", "o"];
        add.extend(args.iter().map(String::as_str));
        ok(&ox, &dst, &add);
        ok(&ox, &dst, &["pull", "o", "main"]);
        assert_eq!(
            std::fs::read_to_string(ref_file(&dst, "o", "main"))
                .unwrap()
                .trim(),
            commit.trim(),
            "{args:?}"
        );
        fsck_both(&dst);
    }
    // A mirrorlist of no working mirror.
    std::fs::write(tmp.path().join("mirrorlist"), format!("{base}nosuchrepo\n")).unwrap();
    let dst = tmp.path().join("dst-none");
    client(&ox, &dst, "archive", "o", &list);
    let e = fails(&ox, &dst, &["pull", "o", "main"]);
    assert!(
        e.contains("No valid mirrors were found in mirrorlist"),
        "{e}"
    );
}

/// A static delta's one big part is fetched as several byte ranges at
/// once (on a link with latency and loss, one connection crawls), and
/// assembled in order: the pull's result is whole. A server that ignores
/// Range still serves the pull (one plain GET), and a mirror that lies in
/// one range fails the pull on the part's checksum, moving no ref.
#[test]
fn big_delta_parts_are_fetched_in_ranges() {
    let ost = require("ostree");
    let ox = oxtree();
    let tmp = tempfile::tempdir().unwrap();
    let (src, rev, part_rel, part_len) = noise_repo(&ost, tmp.path(), 3_000_000);
    assert!(part_len > 2_000_000, "part is {part_len} bytes");

    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let url = lying_server(src.clone(), Lie::Ranges(Arc::clone(&log)));
    let d = tmp.path().join("ranged");
    client(&ox, &d, "bare-user", "origin", &url);
    ok(&ox, &d, &["pull", "origin", "main"]);
    assert_eq!(ok(&ox, &d, &["rev-parse", "origin:main"]).trim(), rev);
    fsck_both(&d);
    let asked: Vec<String> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|(p, _)| *p == part_rel)
        .map(|(_, r)| r.clone())
        .collect();
    assert!(
        asked.len() >= 4,
        "the part in {} requests: {asked:?}",
        asked.len()
    );
    // The ranges tile the part exactly.
    let mut spans: Vec<(u64, u64)> = asked
        .iter()
        .map(|r| {
            let (a, b) = r.split_once('-').unwrap();
            (a.parse().unwrap(), b.parse().unwrap())
        })
        .collect();
    spans.sort();
    assert_eq!(spans[0].0, 0);
    assert_eq!(spans.last().unwrap().1, part_len - 1);
    assert!(spans.windows(2).all(|w| w[0].1 + 1 == w[1].0), "{spans:?}");

    // A part under 1 MiB is assembled in memory: two ranges here.
    let small = tmp.path().join("small");
    std::fs::create_dir(&small).unwrap();
    let (src2, rev2, part2, len2) = noise_repo(&ost, &small, 700_000);
    let log2 = Arc::new(std::sync::Mutex::new(Vec::new()));
    let url = lying_server(src2, Lie::Ranges(Arc::clone(&log2)));
    let d = tmp.path().join("ranged-small");
    client(&ox, &d, "bare-user", "origin", &url);
    ok(&ox, &d, &["pull", "origin", "main"]);
    assert_eq!(ok(&ox, &d, &["rev-parse", "origin:main"]).trim(), rev2);
    fsck_both(&d);
    let n = log2
        .lock()
        .unwrap()
        .iter()
        .filter(|(p, _)| *p == part2)
        .count();
    assert_eq!(n, 2, "a {len2}-byte part in {n} ranges");

    // A server that ignores Range: the answers to the ranges are dropped
    // and the part is fetched whole, once more; the pull is whole.
    let asked = Arc::new(AtomicUsize::new(0));
    let url = lying_server(src.clone(), Lie::NoRanges(Arc::clone(&asked)));
    let d = tmp.path().join("noranges");
    client(&ox, &d, "bare-user", "origin", &url);
    ok(&ox, &d, &["pull", "origin", "main"]);
    assert_eq!(ok(&ox, &d, &["rev-parse", "origin:main"]).trim(), rev);
    fsck_both(&d);
    // And one that also closes every connection (python's http.server,
    // HTTP/1.0) is never asked for ranges.
    let (_g, url) = python_server(&src);
    let d = tmp.path().join("plain");
    client(&ox, &d, "bare-user", "origin", &url);
    ok(&ox, &d, &["pull", "origin", "main"]);
    fsck_both(&d);

    // A mirror that lies in one range: the part fails its checksum.
    let url = lying_server(src.clone(), Lie::FlipRanges(part_rel.clone()));
    let d = tmp.path().join("lied");
    client(&ox, &d, "bare-user", "origin", &url);
    let o = run(&ox, &d, &["pull", "origin", "main"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "a lying range was accepted");
    assert!(err.contains("part 0 is corrupt"), "{err}");
    assert!(!ref_file(&d, "origin", "main").exists());
    fsck_both(&d);
}

/// An archive repo under `dir` whose main holds `len` bytes that do not
/// compress, with a from-scratch static delta (one part of about `len`
/// bytes) in its summary: (repo, commit, the part's path in it, its size).
fn noise_repo(ost: &Path, dir: &Path, len: usize) -> (PathBuf, String, String, u64) {
    let (src, tree) = archive_with_tree(ost, dir);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let noise: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(tree.join("noise"), noise).unwrap();
    ok(
        ost,
        &src,
        &[
            "commit",
            "-b",
            "main",
            "--timestamp=2020-01-01",
            tree.to_str().unwrap(),
        ],
    );
    ok(ost, &src, &["static-delta", "generate", "--empty", "main"]);
    ok(ost, &src, &["summary", "-u"]);
    let rev = ok(ost, &src, &["rev-parse", "main"]).trim().to_string();
    let part_dir = {
        let b64 = ok(ost, &src, &["static-delta", "list"]);
        assert_eq!(b64.lines().count(), 1, "{b64}");
        let mut p = None;
        for e in walk_files(&src.join("deltas")) {
            if e.ends_with("0") {
                p = Some(e);
            }
        }
        p.expect("part 0 of the delta")
    };
    let part_rel = part_dir
        .strip_prefix(&src)
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let part_len = std::fs::metadata(&part_dir).unwrap().len();
    (src, rev, part_rel, part_len)
}

fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk_files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

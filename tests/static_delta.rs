//! Static deltas against the real ostree: each tool applies the other's
//! deltas (from-scratch, from→to with bsdiff, rollsum, inline), `list`,
//! `show` and `delete` print what ostree prints, `summary -u` lists deltas
//! and writes delta-indexes byte for byte like ostree, ostree pulls an
//! oxtree-published delta over HTTP, and hostile deltas are refused without
//! storing anything or moving a ref. ostree and python3 are required: a
//! missing one fails the test.

use oxtree_object::static_delta::{self as sd, PartPayload, Superblock};
use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "support/net.rs"]
mod net;
use net::{logging_server, require};
#[path = "support/cli.rs"]
mod cli;
use cli::{fails, ok, oxtree, run};

fn prng(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// ~60 small files, 6 files of 100–350 kB, symlinks, nested dirs.
fn tree_v1(dir: &Path) {
    for d in 0..6 {
        let sub = dir.join(format!("d{d}/e"));
        std::fs::create_dir_all(&sub).unwrap();
        for f in 0..10 {
            let n = d * 10 + f;
            std::fs::write(sub.join(format!("f{f}")), prng(n, 200 + 37 * n as usize)).unwrap();
        }
        std::fs::write(
            dir.join(format!("d{d}/big")),
            prng(100 + d, 100_000 + 50_000 * d as usize),
        )
        .unwrap();
    }
    std::os::unix::fs::symlink("d0/big", dir.join("link")).unwrap();
    std::fs::write(dir.join("empty"), "").unwrap();
}

/// About 2% changed: bytes in the middle of two big files (one sparse
/// change all along it, which defeats ostree's rollsum so it uses bsdiff),
/// a new file, a removed file, a retargeted symlink.
fn tree_v2(dir: &Path) {
    let p = dir.join("d1/big");
    let mut b = std::fs::read(&p).unwrap();
    for i in (500..b.len()).step_by(3000) {
        b[i] ^= 0x5a;
    }
    std::fs::write(&p, b).unwrap();
    let p = dir.join("d3/big");
    let mut b = std::fs::read(&p).unwrap();
    b[10_000..10_100].copy_from_slice(&[7u8; 100]);
    std::fs::write(&p, b).unwrap();
    std::fs::write(dir.join("d2/new"), prng(999, 5000)).unwrap();
    std::fs::remove_file(dir.join("d4/e/f3")).unwrap();
    std::fs::remove_file(dir.join("link")).unwrap();
    std::os::unix::fs::symlink("d1/big", dir.join("link")).unwrap();
}

fn commit(bin: &Path, repo: &Path, tree: &Path, subject: &str) -> String {
    ok(
        bin,
        repo,
        &[
            "commit",
            "-b",
            "main",
            "--timestamp=2021-01-01",
            "-s",
            subject,
            tree.to_str().unwrap(),
        ],
    )
    .trim()
    .to_string()
}

/// Source repo with commits v1 and v2 (written by `bin`).
fn source(tmp: &Path, bin: &Path) -> (PathBuf, String, String) {
    let src = tmp.join("src");
    ok(bin, &src, &["init", "--mode=archive"]);
    let tree = tmp.join("tree");
    tree_v1(&tree);
    let c1 = commit(bin, &src, &tree, "one");
    tree_v2(&tree);
    let c2 = commit(bin, &src, &tree, "two");
    (src, c1, c2)
}

fn fsck_both(repo: &Path) {
    ok(require("ostree"), repo, &["fsck"]);
    ok(oxtree(), repo, &["fsck"]);
}

fn ls(repo: &Path, rev: &str) -> String {
    ok(require("ostree"), repo, &["ls", "-R", "-C", rev])
}

fn delta_dir(repo: &Path, from: Option<&str>, to: &str) -> PathBuf {
    let f = from.map(|f| oxtree_object::Checksum::from_hex(f).unwrap());
    let t = oxtree_object::Checksum::from_hex(to).unwrap();
    repo.join(sd::delta_dir(f.as_ref(), &t))
}

fn new_repo(bin: &Path, path: &Path, mode: &str) -> PathBuf {
    ok(bin, path, &["init", &format!("--mode={mode}")]);
    path.to_path_buf()
}

/// `dst` holding commit `c1` of `src` (pulled by ostree).
fn with_v1(src: &Path, path: &Path, mode: &str, c1: &str) -> PathBuf {
    let ost = require("ostree");
    let dst = new_repo(&ost, path, mode);
    ok(&ost, &dst, &["pull-local", src.to_str().unwrap(), c1]);
    dst
}

#[test]
fn oxtree_deltas_apply_with_ostree() {
    let ost = require("ostree");
    let ox = oxtree();
    let tmp = tempfile::tempdir().unwrap();
    let (src, c1, c2) = source(tmp.path(), &ox);

    // from → to, bsdiff on: ostree applies it onto v1. (ostree's `o`
    // opcode only works in bare repositories, hence bare-user.)
    ok(
        &ox,
        &src,
        &["static-delta", "generate", "--from", &c1, "--to", &c2],
    );
    let name = format!("{c1}-{c2}");
    let show = ok(&ox, &src, &["static-delta", "show", &name]);
    assert!(
        !show.contains("bspatch=0"),
        "bsdiff was not exercised:\n{show}"
    );
    assert_eq!(show, ok(&ost, &src, &["static-delta", "show", &name]));
    let dst = with_v1(&src, &tmp.path().join("dst"), "bare-user", &c1);
    let dir = delta_dir(&src, Some(&c1), &c2);
    ok(
        &ost,
        &dst,
        &["static-delta", "apply-offline", dir.to_str().unwrap()],
    );
    fsck_both(&dst);
    assert_eq!(ls(&dst, &c2), ls(&src, &c2));

    // From scratch (ostree refuses offline deltas with fallbacks).
    ok(
        &ox,
        &src,
        &[
            "static-delta",
            "generate",
            "--empty",
            "--min-fallback-size=0",
            "--max-chunk-size=1",
            &c2,
        ],
    );
    let show = ok(&ox, &src, &["static-delta", "show", &c2]);
    assert!(
        show.contains("PartMeta1:"),
        "expected several parts:\n{show}"
    );
    assert_eq!(show, ok(&ost, &src, &["static-delta", "show", &c2]));
    for mode in ["archive", "bare-user"] {
        let d2 = new_repo(&ost, &tmp.path().join(format!("scratch-{mode}")), mode);
        let dir = delta_dir(&src, None, &c2);
        ok(
            &ost,
            &d2,
            &["static-delta", "apply-offline", dir.to_str().unwrap()],
        );
        fsck_both(&d2);
        assert_eq!(ls(&d2, &c2), ls(&src, &c2));
    }

    // Inline from scratch, a single file.
    let src2 = tmp.path().join("src-inline");
    net_cp(&src, &src2);
    ok(
        &ox,
        &src2,
        &[
            "static-delta",
            "generate",
            "--empty",
            "--inline",
            "--min-fallback-size=0",
            &c2,
        ],
    );
    let dir = delta_dir(&src2, None, &c2);
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(files.len(), 1, "inline delta is one file");
    let d3 = new_repo(&ost, &tmp.path().join("inline-dst"), "bare-user");
    ok(
        &ost,
        &d3,
        &["static-delta", "apply-offline", dir.to_str().unwrap()],
    );
    fsck_both(&d3);
}

fn net_cp(from: &Path, to: &Path) {
    let st = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn ostree_deltas_apply_with_oxtree() {
    let ost = require("ostree");
    let ox = oxtree();
    let tmp = tempfile::tempdir().unwrap();
    let (src, c1, c2) = source(tmp.path(), &ost);
    let name = format!("{c1}-{c2}");
    let cases: [(&str, &[&str]); 3] = [
        ("default", &[]),
        ("nobsdiff", &["--disable-bsdiff"]),
        ("inline", &["--inline"]),
    ];
    for (label, extra) in cases {
        let s = tmp.path().join(format!("src-{label}"));
        net_cp(&src, &s);
        let mut args = vec!["static-delta", "generate", "--from", &c1, "--to", &c2];
        args.extend_from_slice(extra);
        ok(&ost, &s, &args);
        if label == "default" {
            let show = ok(&ost, &s, &["static-delta", "show", &name]);
            assert!(
                !show.contains("bspatch=0"),
                "ostree used no bsdiff:\n{show}"
            );
            assert_eq!(show, ok(&ox, &s, &["static-delta", "show", &name]));
        }
        for mode in ["archive", "bare-user"] {
            let dst = with_v1(&src, &tmp.path().join(format!("{label}-{mode}")), mode, &c1);
            let dir = delta_dir(&s, Some(&c1), &c2);
            ok(
                &ox,
                &dst,
                &["static-delta", "apply-offline", dir.to_str().unwrap()],
            );
            fsck_both(&dst);
            assert_eq!(ls(&dst, &c2), ls(&src, &c2), "{label} {mode}");
            // No ref moved: apply-offline only stores objects.
            assert!(!dst.join("refs/heads/main").exists());
        }
    }
    // From scratch, by name inside the repository.
    let s = tmp.path().join("src-scratch");
    net_cp(&src, &s);
    ok(
        &ost,
        &s,
        &["static-delta", "generate", "--empty", "--to", &c2],
    );
    let dst = new_repo(&ox, &tmp.path().join("scratch-dst"), "archive");
    let dir = delta_dir(&s, None, &c2);
    ok(
        &ox,
        &dst,
        &["static-delta", "apply-offline", dir.to_str().unwrap()],
    );
    fsck_both(&dst);
}

#[test]
fn list_show_delete_match_ostree() {
    let ost = require("ostree");
    let ox = oxtree();
    let tmp = tempfile::tempdir().unwrap();
    let (src, c1, c2) = source(tmp.path(), &ost);
    assert_eq!(
        ok(&ox, &src, &["static-delta", "list"]),
        ok(&ost, &src, &["static-delta", "list"])
    );
    ok(
        &ost,
        &src,
        &["static-delta", "generate", "--empty", "--to", &c1],
    );
    ok(
        &ox,
        &src,
        &["static-delta", "generate", "--empty", "--to", &c2],
    );
    ok(&ost, &src, &["static-delta", "generate", "--to", &c2]);
    let list = ok(&ost, &src, &["static-delta", "list"]);
    assert_eq!(list.lines().count(), 3);
    assert_eq!(ok(&ox, &src, &["static-delta", "list"]), list);
    for name in list.lines() {
        assert_eq!(
            ok(&ox, &src, &["static-delta", "show", name]),
            ok(&ost, &src, &["static-delta", "show", name]),
            "show {name}"
        );
    }
    ok(&ox, &src, &["static-delta", "delete", &c1]);
    assert_eq!(
        ok(&ox, &src, &["static-delta", "list"]),
        ok(&ost, &src, &["static-delta", "list"])
    );
    assert_eq!(ok(&ost, &src, &["static-delta", "list"]).lines().count(), 2);
    fails(&ox, &src, &["static-delta", "delete", &c1]);
    fails(&ost, &src, &["static-delta", "delete", &c1]);
    fails(&ox, &src, &["static-delta", "show", &c1]);
}

#[test]
fn summary_lists_deltas_like_ostree() {
    let ost = require("ostree");
    let ox = oxtree();
    let tmp = tempfile::tempdir().unwrap();
    let src = new_repo(&ost, &tmp.path().join("src"), "archive");
    let tree = tmp.path().join("t");
    std::fs::create_dir_all(&tree).unwrap();
    // Enough deltas for GLib's hash table to resize and collide.
    for i in 0..10 {
        std::fs::write(tree.join("f"), format!("{i}\n")).unwrap();
        commit(&ost, &src, &tree, &format!("c{i}"));
        if i > 0 {
            ok(&ox, &src, &["static-delta", "generate", "main"]);
        }
        ok(&ost, &src, &["static-delta", "generate", "--empty", "main"]);
    }
    ok(&ost, &src, &["summary", "-u"]);
    let sa = std::fs::read(src.join("summary")).unwrap();
    let ia = snapshot_indexes(&src);
    assert_eq!(ia.len(), 10);
    std::fs::remove_dir_all(src.join("delta-indexes")).unwrap();
    ok(&ox, &src, &["summary", "-u"]);
    let sb = std::fs::read(src.join("summary")).unwrap();
    assert_eq!(sa.len(), sb.len());
    let diff: Vec<usize> = (0..sa.len()).filter(|&i| sa[i] != sb[i]).collect();
    if let (Some(f), Some(l)) = (diff.first(), diff.last()) {
        assert!(l - f < 8, "summaries differ beyond the timestamp: {diff:?}");
    }
    assert_eq!(snapshot_indexes(&src), ia, "delta-indexes differ");
}

fn snapshot_indexes(repo: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v = Vec::new();
    for d in std::fs::read_dir(repo.join("delta-indexes")).unwrap() {
        let d = d.unwrap();
        for f in std::fs::read_dir(d.path()).unwrap() {
            let f = f.unwrap();
            v.push((
                format!(
                    "{}/{}",
                    d.file_name().to_string_lossy(),
                    f.file_name().to_string_lossy()
                ),
                std::fs::read(f.path()).unwrap(),
            ));
        }
    }
    v.sort();
    v
}

/// An archive repo with v1 committed and summarized by `bin`, served over
/// HTTP with a request log, and a client repo of `client` pulling from it.
struct Published {
    src: PathBuf,
    tree: PathBuf,
    c1: String,
    log: PathBuf,
    url: String,
    dst: PathBuf,
    _server: net::Guard,
}

fn publish_v1(tmp: &Path, bin: &Path, client: &Path, client_mode: &str) -> Published {
    let src = new_repo(bin, &tmp.join("src"), "archive");
    let tree = tmp.join("tree");
    tree_v1(&tree);
    let c1 = commit(bin, &src, &tree, "one");
    ok(bin, &src, &["summary", "-u"]);
    let log = tmp.join("http.log");
    let (_server, url) = logging_server(&src, &log);
    let dst = new_repo(client, &tmp.join("dst"), client_mode);
    Published {
        src,
        tree,
        c1,
        log,
        url,
        dst,
        _server,
    }
}

#[test]
fn ostree_pulls_oxtree_delta_over_http() {
    let ost = require("ostree");
    let ox = oxtree();
    let tmp = tempfile::tempdir().unwrap();
    let p = publish_v1(tmp.path(), &ox, &ost, "bare-user");
    let (src, tree, c1, log, url, dst) = (&p.src, &p.tree, &p.c1, &p.log, &p.url, &p.dst);
    ok(
        &ost,
        dst,
        &["remote", "add", "--no-gpg-verify", "origin", url],
    );
    ok(&ost, dst, &["pull", "origin", "main"]);
    assert_eq!(ok(&ost, dst, &["rev-parse", "origin:main"]).trim(), *c1);

    tree_v2(tree);
    let c2 = commit(&ox, src, tree, "two");
    ok(&ox, src, &["static-delta", "generate", "main"]);
    ok(&ox, src, &["summary", "-u"]);
    let before = std::fs::read_to_string(log).unwrap().len();
    let out = ok(&ost, dst, &["pull", "origin", "main"]);
    assert_eq!(ok(&ost, dst, &["rev-parse", "origin:main"]).trim(), c2);
    let reqs = std::fs::read_to_string(log).unwrap()[before..].to_string();
    let m1 = sd::mb64(&oxtree_object::Checksum::from_hex(c1).unwrap());
    assert!(
        reqs.contains(&format!("GET /deltas/{}/{}", &m1[..2], &m1[2..])),
        "ostree did not fetch the delta:\n{reqs}\n{out}"
    );
    let m1 = &m1;
    assert!(
        reqs.contains(&format!("/{}-", &m1[2..])) && reqs.contains("/0 HTTP"),
        "ostree did not fetch the delta part:\n{reqs}"
    );
    // ostree scans the new commit while its delta part is still being
    // applied, so a few of the part's objects may also be fetched singly
    // (seen: 0 to 5 of its 10); without the delta it fetches all 10.
    let singly = reqs.matches(".filez").count() + reqs.matches(".dirtree").count();
    assert!(
        singly < 10,
        "ostree fetched every object one by one despite the delta:\n{reqs}"
    );
    fsck_both(dst);
    assert_eq!(ls(dst, &c2), ls(src, &c2));
}

/// Rewrite a delta's part 0 and superblock through `f`.
fn tamper(dir: &Path, f: impl FnOnce(&mut Superblock, &mut PartPayload)) {
    let sbp = dir.join("superblock");
    let mut sb = Superblock::decode(&std::fs::read(&sbp).unwrap()).unwrap();
    let part = std::fs::read(dir.join("0")).unwrap();
    let mut payload = PartPayload::decode(&sd::decompress_part(&part, 1 << 30).unwrap()).unwrap();
    f(&mut sb, &mut payload);
    let part = sd::compress_part(&payload.encode());
    sb.parts[0].checksum = oxtree_object::Checksum::of(&part);
    sb.parts[0].size = part.len() as u64;
    std::fs::write(dir.join("0"), part).unwrap();
    std::fs::write(&sbp, sb.encode()).unwrap();
}

/// Index in the op stream of the `n`th occurrence of opcode `op` at an
/// opcode position (walking the stream with the part's object list).
fn op_positions(
    ops: &[u8],
    objects: &[(oxtree_object::ObjectType, oxtree_object::Checksum)],
) -> Vec<(usize, u8)> {
    let mut out = Vec::new();
    let mut i = 0;
    let mut idx = 0;
    while i < ops.len() {
        let op = ops[i];
        out.push((i, op));
        i += 1;
        let n = match op {
            b'S' => {
                let meta = objects[idx].0.is_meta();
                idx += 1;
                if meta {
                    2
                } else {
                    4
                }
            }
            b'o' => 3,
            b'w' | b'B' => 2,
            b'r' => 1,
            b'c' => {
                idx += 1;
                0
            }
            _ => 0,
        };
        for _ in 0..n {
            let (_, k) = sd::read_varuint64(&ops[i..]).unwrap();
            i += k;
        }
    }
    out
}

#[test]
fn hostile_deltas_are_refused() {
    let ost = require("ostree");
    let ox = oxtree();
    let tmp = tempfile::tempdir().unwrap();
    let (src, c1, c2) = source(tmp.path(), &ox);
    ok(
        &ox,
        &src,
        &["static-delta", "generate", "--from", &c1, "--to", &c2],
    );
    let good = delta_dir(&src, Some(&c1), &c2);
    let sb = Superblock::decode(&std::fs::read(good.join("superblock")).unwrap()).unwrap();
    let objects = sb.parts[0].objects.clone();
    let bsdiff_target = {
        let part = std::fs::read(good.join("0")).unwrap();
        let p = PartPayload::decode(&sd::decompress_part(&part, 1 << 30).unwrap()).unwrap();
        let pos = op_positions(&p.ops, &objects);
        let opens = pos.iter().filter(|(_, o)| *o == b'o').count();
        assert!(opens >= 1, "the delta has no bsdiff object");
        // The object built by the first `o`: count closes/splices before it.
        let first_o = pos.iter().position(|(_, o)| *o == b'o').unwrap();
        let built_before = pos[..first_o]
            .iter()
            .filter(|(_, o)| *o == b'S' || *o == b'c')
            .count();
        objects[built_before].1.to_string()
    };

    type Tamper = Box<dyn Fn(&Path)>;
    let cases: Vec<(&str, Tamper, Option<String>)> = vec![
        (
            "corrupt part bytes",
            Box::new(|d: &Path| {
                let mut b = std::fs::read(d.join("0")).unwrap();
                let n = b.len() / 2;
                b[n] ^= 0xff;
                std::fs::write(d.join("0"), b).unwrap();
            }),
            Some("part 0 is corrupt".to_string()),
        ),
        (
            "write past the object size",
            Box::new({
                let objects = objects.clone();
                move |d: &Path| {
                    tamper(d, |_, p| {
                        let pos = op_positions(&p.ops, &objects);
                        let (at, _) = *pos.iter().find(|(_, o)| *o == b'o').unwrap();
                        // `o mode xattr size`: shrink the declared size.
                        let mut j = at + 1;
                        for _ in 0..2 {
                            j += sd::read_varuint64(&p.ops[j..]).unwrap().1;
                        }
                        let (size, k) = sd::read_varuint64(&p.ops[j..]).unwrap();
                        let mut v = Vec::new();
                        sd::write_varuint64(&mut v, size / 2);
                        p.ops.splice(j..j + k, v);
                    })
                }
            }),
            Some(bsdiff_target.clone()),
        ),
        (
            "read outside the part data",
            Box::new({
                let objects = objects.clone();
                move |d: &Path| {
                    tamper(d, |_, p| {
                        let pos = op_positions(&p.ops, &objects);
                        let (at, _) = *pos.iter().find(|(_, o)| *o == b'S').unwrap();
                        // `S len off` (metadata first): a huge length.
                        let j = at + 1;
                        let (_, k) = sd::read_varuint64(&p.ops[j..]).unwrap();
                        let mut v = Vec::new();
                        sd::write_varuint64(&mut v, 1 << 40);
                        p.ops.splice(j..j + k, v);
                    })
                }
            }),
            Some(objects[0].1.to_string()),
        ),
        (
            "lying uncompressed size",
            Box::new(|d: &Path| tamper(d, |sb, _| sb.parts[0].usize = 100)),
            Some("declared 100 bytes".to_string()),
        ),
        (
            "wrong object checksum",
            Box::new({
                let objects = objects.clone();
                move |d: &Path| {
                    let _ = &objects;
                    tamper(d, |sb, _| {
                        let last = sb.parts[0].objects.len() - 1;
                        sb.parts[0].objects[last].1 .0[5] ^= 1;
                    })
                }
            }),
            Some({
                let mut c = objects[objects.len() - 1].1;
                c.0[5] ^= 1;
                c.to_string()
            }),
        ),
        (
            "superblock commit is not TO",
            Box::new(|d: &Path| {
                tamper(d, |sb, _| {
                    sb.commit.subject = "forged".into();
                    sb.commit_bytes = sb.commit.encode();
                })
            }),
            Some(c2.clone()),
        ),
    ];
    for (i, (label, f, expect)) in cases.into_iter().enumerate() {
        let bad = tmp.path().join(format!("bad{i}"));
        net_cp(&good, &bad);
        f(&bad);
        let dst = with_v1(&src, &tmp.path().join(format!("dst{i}")), "archive", &c1);
        ok(&ost, &dst, &["refs", "--create=main", &c1]);
        let err = fails(
            &ox,
            &dst,
            &["static-delta", "apply-offline", bad.to_str().unwrap()],
        );
        if let Some(e) = expect {
            assert!(err.contains(&e), "{label}: error does not name {e}:\n{err}");
        }
        fsck_both(&dst);
        assert_eq!(
            ok(&ost, &dst, &["rev-parse", "main"]).trim(),
            c1,
            "{label}: ref moved"
        );
        let commit_path = dst
            .join("objects")
            .join(&c2[..2])
            .join(format!("{}.commit", &c2[2..]));
        assert!(!commit_path.exists(), "{label}: target commit was stored");
        // Nothing the delta built was published.
        for (k, c) in &objects {
            if *k == oxtree_object::ObjectType::DirTree {
                let p = dst
                    .join("objects")
                    .join(&c.to_string()[..2])
                    .join(format!("{}.dirtree", &c.to_string()[2..]));
                assert!(!p.exists(), "{label}: {c}.dirtree was stored");
            }
        }
    }
}

/// ed25519-signed superblocks (`OSTSGNDT`), oxtree to oxtree (Debian's
/// ostree is built without ed25519): verify with the right key only;
/// `apply-offline --keys-file` refuses a wrong key and applies with the
/// right one; `show` reports the signature.
#[test]
fn signed_deltas_verify_and_apply() {
    let ox = oxtree();
    let tmp = tempfile::tempdir().unwrap();
    let (src, c1, c2) = source(tmp.path(), &ox);
    let keys = |seed: &str| {
        let out = ok(&ox, &src, &["sign", "--generate-key"]);
        let mut l = out.lines();
        let (s, p) = (l.next().unwrap().to_string(), l.next().unwrap().to_string());
        let f = tmp.path().join(format!("{seed}.pub"));
        std::fs::write(&f, format!("{p}\n")).unwrap();
        (s, p, f)
    };
    let (sec, public, pubfile) = keys("good");
    let (_, other, otherfile) = keys("other");
    ok(
        &ox,
        &src,
        &[
            "static-delta",
            "generate",
            "--from",
            &c1,
            "--to",
            &c2,
            &format!("--sign={sec}"),
        ],
    );
    let name = format!("{c1}-{c2}");
    let sbp = delta_dir(&src, Some(&c1), &c2).join("superblock");
    assert_eq!(&std::fs::read(&sbp).unwrap()[..8], b"OSTSGNDT");
    assert!(ok(&ox, &src, &["static-delta", "show", &name]).contains("Signed: yes"));
    ok(&ox, &src, &["static-delta", "verify", &name, &public]);
    fails(&ox, &src, &["static-delta", "verify", &name, &other]);
    ok(
        &ox,
        &src,
        &[
            "static-delta",
            "verify",
            &name,
            &format!("--keys-file={}", pubfile.display()),
        ],
    );
    let dir = delta_dir(&src, Some(&c1), &c2);
    let dst = with_v1(&src, &tmp.path().join("dst"), "archive", &c1);
    fails(
        &ox,
        &dst,
        &[
            "static-delta",
            "apply-offline",
            &format!("--keys-file={}", otherfile.display()),
            dir.to_str().unwrap(),
        ],
    );
    assert!(!dst
        .join("objects")
        .join(&c2[..2])
        .join(format!("{}.commit", &c2[2..]))
        .exists());
    ok(
        &ox,
        &dst,
        &[
            "static-delta",
            "apply-offline",
            &format!("--keys-file={}", pubfile.display()),
            dir.to_str().unwrap(),
        ],
    );
    fsck_both(&dst);
    assert_eq!(ls(&dst, &c2), ls(&src, &c2));
}

/// `oxtree pull` uses the deltas the summary lists: from scratch first,
/// then FROM-TO (ostree-generated, with a fallback object), fetching only
/// the fallback object individually; `--disable-static-deltas` fetches
/// objects instead; a corrupt part fails the pull naming the part, moves
/// no ref and leaves a clean repository.
#[test]
fn oxtree_pull_uses_static_deltas() {
    let ost = require("ostree");
    let ox = oxtree();
    let tmp = tempfile::tempdir().unwrap();
    let src = new_repo(&ost, &tmp.path().join("src"), "archive");
    let tree = tmp.path().join("tree");
    tree_v1(&tree);
    let c1 = commit(&ost, &src, &tree, "one");
    ok(&ost, &src, &["static-delta", "generate", "--empty", "main"]);
    ok(&ost, &src, &["summary", "-u"]);
    let log = tmp.path().join("http.log");
    let (_g, url) = logging_server(&src, &log);
    let new_dst = |name: &str| {
        let d = new_repo(&ox, &tmp.path().join(name), "archive");
        ok(
            &ox,
            &d,
            &["remote", "add", "--no-gpg-verify", "origin", &url],
        );
        d
    };
    let dst = new_dst("dst");
    ok(&ox, &dst, &["pull", "origin", "main"]);
    let reqs = std::fs::read_to_string(&log).unwrap();
    assert!(reqs.contains("/superblock"), "no delta used:\n{reqs}");
    assert!(!reqs.contains(".filez"), "objects fetched singly:\n{reqs}");
    fsck_both(&dst);

    // v2 with a 1.5 MB new file, delta with --min-fallback-size=1 (MB).
    tree_v2(&tree);
    std::fs::write(tree.join("huge"), prng(4242, 1_500_000)).unwrap();
    let c2 = commit(&ost, &src, &tree, "two");
    ok(
        &ost,
        &src,
        &["static-delta", "generate", "--min-fallback-size=1", "main"],
    );
    let show = ok(&ost, &src, &["static-delta", "show", &format!("{c1}-{c2}")]);
    assert!(show.contains("Number of fallback entries: 1"), "{show}");
    ok(&ost, &src, &["summary", "-u"]);
    let before = std::fs::read_to_string(&log).unwrap().len();
    ok(&ox, &dst, &["pull", "origin", "main"]);
    let reqs = std::fs::read_to_string(&log).unwrap()[before..].to_string();
    assert!(reqs.contains("/superblock"), "no delta used:\n{reqs}");
    assert_eq!(
        reqs.matches(".filez").count(),
        1,
        "only the fallback object is fetched singly:\n{reqs}"
    );
    fsck_both(&dst);
    assert_eq!(ok(&ox, &dst, &["rev-parse", "origin:main"]).trim(), c2);
    assert_eq!(ls(&dst, &c2), ls(&src, &c2));

    // --disable-static-deltas: object by object.
    let plain = new_dst("plain");
    let before = std::fs::read_to_string(&log).unwrap().len();
    ok(
        &ox,
        &plain,
        &["pull", "--disable-static-deltas", "origin", "main"],
    );
    let reqs = std::fs::read_to_string(&log).unwrap()[before..].to_string();
    assert!(!reqs.contains("/deltas/"), "{reqs}");
    assert!(reqs.contains(".filez"));
    fsck_both(&plain);

    // A corrupt part: the pull fails naming it; no ref, nothing partial.
    let bad = new_dst("bad");
    ok(
        &ox,
        &bad,
        &["pull", "--disable-static-deltas", "origin", &c1],
    );
    // The local ref names the delta's source commit.
    let rd = bad.join("refs/remotes/origin");
    std::fs::create_dir_all(&rd).unwrap();
    std::fs::write(rd.join("main"), format!("{c1}\n")).unwrap();
    let part = delta_dir(&src, Some(&c1), &c2).join("0");
    let mut b = std::fs::read(&part).unwrap();
    let n = b.len() / 2;
    b[n] ^= 0xff;
    std::fs::write(&part, b).unwrap();
    let before = std::fs::read_to_string(&log).unwrap().len();
    let o = run(&ox, &bad, &["pull", "origin", "main"]);
    assert!(
        !o.status.success(),
        "pull with a corrupt part succeeded: {}\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
        &std::fs::read_to_string(&log).unwrap()[before..]
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("part 0 is corrupt"), "{err}");
    assert_eq!(ok(&ox, &bad, &["rev-parse", "origin:main"]).trim(), c1);
    let target = bad
        .join("objects")
        .join(&c2[..2])
        .join(format!("{}.commit", &c2[2..]));
    assert!(!target.exists(), "the delta's commit was stored");
    fsck_both(&bad);
}

/// A remote that verifies ed25519 signatures (`sign-verify`) also checks
/// the signatures of a signed delta superblock when pulling: signed by an
/// untrusted key, the pull fails naming the delta, the ref stays and the
/// delta's commit is not stored; signed by the trusted key, the pull uses
/// the delta.
#[test]
fn pull_checks_delta_superblock_signatures() {
    let ox = oxtree();
    let tmp = tempfile::tempdir().unwrap();
    let (src, c1, c2) = source(tmp.path(), &ox);
    let key = || {
        let out = ok(&ox, &src, &["sign", "--generate-key"]);
        let mut l = out.lines();
        (l.next().unwrap().to_string(), l.next().unwrap().to_string())
    };
    let (sec, public) = key();
    let (other_sec, _) = key();
    ok(&ox, &src, &["sign", &c1, &sec]);
    ok(&ox, &src, &["sign", &c2, &sec]);
    let name = format!("{c1}-{c2}");
    let generate = |k: &str| {
        let args = ["static-delta", "generate", "--from", &c1, "--to", &c2];
        ok(&ox, &src, &[&args[..], &[&format!("--sign={k}")]].concat());
        ok(&ox, &src, &["summary", "-u"]);
    };
    generate(&other_sec);
    let log = tmp.path().join("http.log");
    let (_g, url) = logging_server(&src, &log);
    let dst = new_repo(&ox, &tmp.path().join("dst"), "archive");
    let verify = format!("--sign-verify=ed25519=inline:{public}");
    ok(
        &ox,
        &dst,
        &["remote", "add", "--no-gpg-verify", &verify, "o", &url],
    );
    ok(&ox, &dst, &["pull", "--disable-static-deltas", "o", &c1]);
    let rd = dst.join("refs/remotes/o");
    std::fs::create_dir_all(&rd).unwrap();
    std::fs::write(rd.join("main"), format!("{c1}\n")).unwrap();
    let target = dst
        .join("objects")
        .join(&c2[..2])
        .join(format!("{}.commit", &c2[2..]));

    let e = fails(&ox, &dst, &["pull", "o", "main"]);
    assert!(
        e.contains(&format!("static delta {name}")) && e.contains("superblock signature"),
        "{e}"
    );
    assert_eq!(ok(&ox, &dst, &["rev-parse", "o:main"]).trim(), c1);
    assert!(!target.exists(), "the delta's commit was stored");

    ok(&ox, &src, &["static-delta", "delete", &name]);
    generate(&sec);
    let before = std::fs::read_to_string(&log).unwrap().len();
    ok(&ox, &dst, &["pull", "o", "main"]);
    let reqs = std::fs::read_to_string(&log).unwrap()[before..].to_string();
    assert!(reqs.contains("/superblock"), "no delta used:\n{reqs}");
    assert_eq!(ok(&ox, &dst, &["rev-parse", "o:main"]).trim(), c2);
    fsck_both(&dst);
}

/// `static-delta indexes` and `reindex` print and write what ostree's do,
/// and `pull` finds a delta through `delta-indexes/` alone: the summary
/// (ostree's, `indexed-deltas`) was written before the delta existed, and
/// only `reindex` published it.
#[test]
fn pull_finds_deltas_through_delta_indexes() {
    let ost = require("ostree");
    let ox = oxtree();
    let tmp = tempfile::tempdir().unwrap();
    let p = publish_v1(tmp.path(), &ost, &ox, "archive");
    let (src, tree, c1, log, url, dst) = (&p.src, &p.tree, &p.c1, &p.log, &p.url, &p.dst);
    ok(&ox, dst, &["remote", "add", "--no-gpg-verify", "o", url]);
    ok(&ox, dst, &["pull", "o", "main"]);
    assert_eq!(ok(&ox, dst, &["rev-parse", "o:main"]).trim(), *c1);

    tree_v2(tree);
    let c2 = commit(&ost, src, tree, "two");
    ok(&ost, src, &["summary", "-u"]);
    ok(&ost, src, &["static-delta", "generate", "main"]);
    let none = ok(&ost, src, &["static-delta", "indexes"]);
    assert_eq!(ok(&ox, src, &["static-delta", "indexes"]), none);
    ok(&ox, src, &["static-delta", "reindex", "--to", "main"]);
    let listed = ok(&ost, src, &["static-delta", "indexes"]);
    assert_eq!(listed.trim(), c2);
    assert_eq!(ok(&ox, src, &["static-delta", "indexes"]), listed);
    let ours = snapshot_indexes(src);
    std::fs::remove_dir_all(src.join("delta-indexes")).unwrap();
    ok(&ost, src, &["static-delta", "reindex"]);
    assert_eq!(snapshot_indexes(src), ours, "delta-indexes differ");
    let view = ok(&ost, src, &["summary", "--view"]);
    assert!(!view.contains("ostree.static-deltas"), "{view}");

    let before = std::fs::read_to_string(log).unwrap().len();
    ok(&ox, dst, &["pull", "o", "main"]);
    let reqs = std::fs::read_to_string(log).unwrap()[before..].to_string();
    assert!(reqs.contains("/delta-indexes/"), "index not read:\n{reqs}");
    assert!(reqs.contains("/superblock"), "no delta used:\n{reqs}");
    assert!(!reqs.contains(".filez"), "objects fetched singly:\n{reqs}");
    assert_eq!(ok(&ox, dst, &["rev-parse", "o:main"]).trim(), c2);
    fsck_both(dst);
}

/// `generate --filename=F` writes the superblock to F and the parts beside
/// it, as ostree does, leaving the repository's deltas alone; ostree
/// applies the result offline.
#[test]
fn generate_to_a_file_like_ostree() {
    let ost = require("ostree");
    let ox = oxtree();
    let tmp = tempfile::tempdir().unwrap();
    let (src, c1, c2) = source(tmp.path(), &ox);
    let files = |dir: &Path| {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let mut layouts = Vec::new();
    for (tool, name) in [(&ost, "by-ostree"), (&ox, "by-oxtree")] {
        let out = tmp.path().join(name);
        std::fs::create_dir_all(&out).unwrap();
        let f = format!("--filename={}", out.join("super").display());
        ok(
            tool,
            &src,
            &["static-delta", "generate", "--from", &c1, "--to", &c2, &f],
        );
        layouts.push(files(&out));
    }
    assert_eq!(layouts[1], layouts[0]);
    assert!(layouts[1].contains(&"super".to_string()), "{layouts:?}");
    assert_eq!(
        ok(&ox, &src, &["static-delta", "list"]).trim(),
        "(No static deltas)"
    );
    let dst = with_v1(&src, &tmp.path().join("dst"), "bare-user", &c1);
    let sb = tmp.path().join("by-oxtree/super");
    ok(
        &ost,
        &dst,
        &["static-delta", "apply-offline", sb.to_str().unwrap()],
    );
    fsck_both(&dst);
    assert_eq!(ls(&dst, &c2), ls(&src, &c2));
}

/// `--swap-endianness` writes a big-endian superblock (on this
/// little-endian host): both tools show it as such and ostree and oxtree
/// both apply it.
#[test]
fn swapped_endianness_deltas_apply() {
    let ost = require("ostree");
    let ox = oxtree();
    let tmp = tempfile::tempdir().unwrap();
    let (src, c1, c2) = source(tmp.path(), &ox);
    let args = ["static-delta", "generate", "--swap-endianness"];
    ok(
        &ox,
        &src,
        &[&args[..], &["--from", &c1, "--to", &c2]].concat(),
    );
    let name = format!("{c1}-{c2}");
    let shown = ok(&ost, &src, &["static-delta", "show", &name]);
    assert!(shown.contains("Endianness: big"), "{shown}");
    assert!(ok(&ox, &src, &["static-delta", "show", &name]).contains("Endianness: big"));
    let dir = delta_dir(&src, Some(&c1), &c2);
    for (tool, repo) in [(&ost, "dst-ostree"), (&ox, "dst-oxtree")] {
        let dst = with_v1(&src, &tmp.path().join(repo), "bare-user", &c1);
        ok(
            tool,
            &dst,
            &["static-delta", "apply-offline", dir.to_str().unwrap()],
        );
        fsck_both(&dst);
        assert_eq!(ls(&dst, &c2), ls(&src, &c2));
    }
}

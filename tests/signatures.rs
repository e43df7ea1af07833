//! Signature interop: GPG signatures ostree made are accepted by `oxtree
//! pull`, unsigned and badly signed commits and summaries are refused before
//! any ref moves or tree object arrives, ed25519 `sign` round trips and is
//! enforced by `sign-verify` remotes, and ostree accepts the GPG signatures
//! `oxtree gpg-sign` makes. Needs ostree, gpg (gnupg) and python3; a
//! missing one fails the test. Throwaway keys live in temporary GNUPGHOMEs
//! whose gpg-agent is stopped (`gpgconf --kill all`) when the test ends;
//! servers are killed by their own handle.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[path = "support/net.rs"]
mod net;
use net::{free_port, python_server, require, wait_for_port, Guard};
#[path = "support/cli.rs"]
mod cli;
use cli::{check, fails, ok, oxtree, run_env};
#[path = "support/gpg.rs"]
mod gpg;
use gpg::GpgHome;

fn make_tree(dir: &Path, extra: &str) {
    std::fs::create_dir_all(dir.join("d")).unwrap();
    std::fs::write(dir.join("a"), "one\n").unwrap();
    std::fs::write(dir.join("d/b"), extra).unwrap();
}

/// Objects of a type under `repo/objects`.
fn objects_with_suffix(repo: &Path, suffix: &str) -> usize {
    let mut n = 0;
    for d in std::fs::read_dir(repo.join("objects")).unwrap() {
        let d = d.unwrap();
        if d.file_type().unwrap().is_dir() {
            for f in std::fs::read_dir(d.path()).unwrap() {
                if f.unwrap().file_name().to_string_lossy().ends_with(suffix) {
                    n += 1;
                }
            }
        }
    }
    n
}

fn ref_file(repo: &Path, remote: &str, name: &str) -> PathBuf {
    repo.join("refs/remotes").join(remote).join(name)
}

fn commitmeta_path(repo: &Path, csum: &str) -> PathBuf {
    repo.join("objects")
        .join(&csum[..2])
        .join(format!("{}.commitmeta", &csum[2..]))
}

/// Flip one byte in the middle of a file.
fn flip_middle(p: &Path) {
    let mut b = std::fs::read(p).unwrap();
    let i = b.len() / 2;
    b[i] ^= 0x55;
    std::fs::write(p, b).unwrap();
}

/// An ostree archive repo with GPG-signed `main` and summary, plus
/// `unsigned`, `other` (signed by another key) and `flipped` (signature
/// with a flipped byte); served over HTTP. The summary is signed last.
#[test]
fn gpg_signatures_from_ostree_are_verified_on_pull() {
    let ost = require("ostree");
    let ox = oxtree();
    let tmp = tempfile::tempdir().unwrap();
    let k = GpgHome::new(tmp.path(), "good");
    let other = GpgHome::new(tmp.path(), "other");
    let src = tmp.path().join("src");
    ok(&ost, &src, &["init", "--mode=archive"]);
    let mut commits = std::collections::HashMap::new();
    for (i, b) in ["main", "unsigned", "other", "flipped"].iter().enumerate() {
        let tree = tmp.path().join(format!("tree-{b}"));
        make_tree(&tree, &format!("branch {b} {i}\n"));
        let c = ok(&ost, &src, &["commit", "-b", b, tree.to_str().unwrap()]);
        commits.insert(*b, c.trim().to_string());
    }
    ok(&ost, &src, &["gpg-sign", &k.homedir_arg(), "main", &k.fpr]);
    ok(
        &ost,
        &src,
        &["gpg-sign", &k.homedir_arg(), "flipped", &k.fpr],
    );
    ok(
        &ost,
        &src,
        &["gpg-sign", &other.homedir_arg(), "other", &other.fpr],
    );
    flip_middle(&commitmeta_path(&src, &commits["flipped"]));
    ok(
        &ost,
        &src,
        &[
            "summary",
            "-u",
            &format!("--gpg-sign={}", k.fpr),
            &k.homedir_arg(),
        ],
    );
    let (_srv, url) = python_server(&src);

    let dst = tmp.path().join("dst");
    ok(&ox, &dst, &["init", "--mode=bare-user"]);
    // gpg-verify is the default; without keys nothing is fetched.
    ok(&ox, &dst, &["remote", "add", "nokeys", &url]);
    let e = fails(&ox, &dst, &["pull", "nokeys", "main"]);
    assert!(e.contains("no trusted GPG keys"), "{e}");
    assert_eq!(objects_with_suffix(&dst, ""), 0);

    let pubkey = k.public.to_str().unwrap();
    ok(
        &ox,
        &dst,
        &[
            "remote",
            "add",
            "--set=gpg-verify-summary=true",
            &format!("--gpg-import={pubkey}"),
            "o",
            &url,
        ],
    );
    assert!(dst.join("o.trustedkeys.gpg").is_file());
    // ostree reads the keyring oxtree wrote.
    let listed = ok(&ost, &dst, &["remote", "gpg-list-keys", "o"]);
    assert!(listed.contains(&k.fpr), "{listed}");

    // (a) ostree's signatures on commit and summary are accepted.
    ok(&ox, &dst, &["pull", "o", "main"]);
    assert_eq!(
        std::fs::read_to_string(ref_file(&dst, "o", "main"))
            .unwrap()
            .trim(),
        commits["main"]
    );
    ok(&ost, &dst, &["fsck"]);
    let summary_refs = ok(&ox, &dst, &["remote", "refs", "o"]);
    assert!(summary_refs.contains("o:main"), "{summary_refs}");

    // (b) unsigned, signed by another key, flipped byte: refused before
    // the commit, its tree or a ref is stored.
    let trees_before = objects_with_suffix(&dst, ".dirtree");
    let commits_before = objects_with_suffix(&dst, ".commit");
    for (b, want) in [
        ("unsigned", "but no signatures found"),
        ("other", "does not verify against any trusted key"),
        ("flipped", "GPG verification failed"),
    ] {
        let e = fails(&ox, &dst, &["pull", "o", b]);
        assert!(e.contains(want) && e.contains(&commits[b]), "{b}: {e}");
        assert!(!ref_file(&dst, "o", b).exists(), "{b}");
        assert_eq!(objects_with_suffix(&dst, ".dirtree"), trees_before, "{b}");
        assert_eq!(objects_with_suffix(&dst, ".commit"), commits_before, "{b}");
        assert!(!commitmeta_path(&dst, &commits[b]).exists(), "{b}");
    }
    // A remote with gpg-verify off still pulls them.
    ok(
        &ox,
        &dst,
        &["remote", "add", "--no-gpg-verify", "plain", &url],
    );
    ok(&ox, &dst, &["pull", "plain", "unsigned"]);
    assert!(ref_file(&dst, "plain", "unsigned").exists());

    // A tampered summary.sig is refused when gpg-verify-summary is set.
    let src_sig = src.join("summary.sig");
    let good = std::fs::read(&src_sig).unwrap();
    flip_middle(&src_sig);
    let e = fails(&ox, &dst, &["pull", "o", "main"]);
    assert!(e.contains("summary of remote 'o'"), "{e}");
    std::fs::remove_file(&src_sig).unwrap();
    let e = fails(&ox, &dst, &["pull", "o", "main"]);
    assert!(e.contains("no summary.sig"), "{e}");
    std::fs::write(&src_sig, good).unwrap();
    ok(&ox, &dst, &["pull", "o", "main"]);

    // gpg-import -k adds to an existing remote; remote delete drops it.
    ok(&ox, &dst, &["remote", "add", "late", &url]);
    let out = ok(
        &ox,
        &dst,
        &[
            "remote",
            "gpg-import",
            "late",
            "-k",
            other.public.to_str().unwrap(),
        ],
    );
    assert_eq!(out, "Imported 1 GPG key to remote \"late\"\n");
    ok(&ox, &dst, &["pull", "late", "other"]);
    let e = fails(&ox, &dst, &["pull", "late", "main"]);
    assert!(e.contains("does not verify"), "{e}");
    ok(&ox, &dst, &["remote", "delete", "late"]);
    assert!(!dst.join("late.trustedkeys.gpg").exists());
}

/// (d) ostree's gpg-verify accepts what `oxtree gpg-sign` and `oxtree
/// summary --gpg-sign` make (served by `oxtree serve`).
#[test]
fn ostree_verifies_oxtree_gpg_signatures() {
    let ost = require("ostree");
    let ox = oxtree();
    let tmp = tempfile::tempdir().unwrap();
    let k = GpgHome::new(tmp.path(), "signer");
    let src = tmp.path().join("src");
    ok(&ox, &src, &["init", "--mode=archive"]);
    let tree = tmp.path().join("tree");
    make_tree(&tree, "x\n");
    let c = ok(&ox, &src, &["commit", "-b", "main", tree.to_str().unwrap()]);
    let c = c.trim().to_string();
    make_tree(&tree, "y\n");
    ok(
        &ox,
        &src,
        &["commit", "-b", "unsigned", tree.to_str().unwrap()],
    );
    make_tree(&tree, "z\n");
    ok(
        &ox,
        &src,
        &["commit", "-b", "byfile", tree.to_str().unwrap()],
    );
    let keyfile = format!("--gpg-key-file={}", k.secret.display());
    // One signature through GnuPG's home; a second one by the same key is
    // refused, as ostree refuses it; the exported key file signs another.
    ok(&ox, &src, &["gpg-sign", &k.homedir_arg(), "main", &k.fpr]);
    let e = fails(&ox, &src, &["gpg-sign", &keyfile, "main", &k.fpr]);
    assert!(e.contains("already signed"), "{e}");
    ok(&ox, &src, &["gpg-sign", &keyfile, "byfile", &k.fpr]);
    ok(
        &ox,
        &src,
        &["summary", "-u", &format!("--gpg-sign={}", k.fpr), &keyfile],
    );
    let port = free_port();
    let srv = Command::new(&ox)
        .arg(format!("--repo={}", src.display()))
        .args(["serve", "--bind=127.0.0.1", &format!("--port={port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting oxtree serve");
    let _srv = Guard(srv);
    wait_for_port(port);
    let url = format!("http://127.0.0.1:{port}/");

    let dst = tmp.path().join("dst");
    ok(&ost, &dst, &["init", "--mode=archive"]);
    ok(
        &ost,
        &dst,
        &[
            "remote",
            "add",
            "--set=gpg-verify-summary=true",
            &format!("--gpg-import={}", k.public.display()),
            "o",
            &url,
        ],
    );
    ok(&ost, &dst, &["pull", "o", "main"]);
    assert_eq!(
        std::fs::read_to_string(ref_file(&dst, "o", "main"))
            .unwrap()
            .trim(),
        c
    );
    let v = ok(&ost, &dst, &["show", "--gpg-verify-remote=o", "o:main"]);
    assert_eq!(v.matches("Good signature").count(), 1, "{v}");
    ok(&ost, &dst, &["pull", "o", "byfile"]);
    let v = ok(&ost, &dst, &["show", "--gpg-verify-remote=o", "o:byfile"]);
    assert_eq!(v.matches("Good signature").count(), 1, "{v}");
    // And ostree refuses the unsigned one, so verification was really on.
    let e = fails(&ost, &dst, &["pull", "o", "unsigned"]);
    assert!(e.contains("GPG"), "{e}");
    // oxtree verifies its own signatures too.
    let d2 = tmp.path().join("d2");
    ok(&ox, &d2, &["init", "--mode=archive"]);
    ok(
        &ox,
        &d2,
        &[
            "remote",
            "add",
            "--set=gpg-verify-summary=true",
            &format!("--gpg-import={}", k.public.display()),
            "o",
            &url,
        ],
    );
    ok(&ox, &d2, &["pull", "o", "main"]);
    // gpg-sign --delete removes it again; then oxtree refuses the commit.
    let out = ok(&ox, &src, &["gpg-sign", "--delete", "main", &k.fpr]);
    assert_eq!(out, "Signatures deleted: 1\n");
    let d3 = tmp.path().join("d3");
    ok(&ox, &d3, &["init", "--mode=archive"]);
    ok(
        &ox,
        &d3,
        &[
            "remote",
            "add",
            &format!("--gpg-import={}", k.public.display()),
            "o",
            &url,
        ],
    );
    let e = fails(&ox, &d3, &["pull", "o", "main"]);
    assert!(e.contains("but no signatures found"), "{e}");
}

/// Passphrase-protected keys: from a GnuPG home and from an exported key
/// file, `commit --gpg-sign` needs the passphrase, fails clearly without it
/// (the ref stays where it was) and ostree accepts what it signs.
#[test]
fn protected_keys_sign_with_a_passphrase() {
    let ost = require("ostree");
    let ox = oxtree();
    let tmp = tempfile::tempdir().unwrap();
    let k = GpgHome::with_passphrase(tmp.path(), "locked", "s3cret words");
    let pass = tmp.path().join("pass");
    std::fs::write(&pass, "s3cret words\n").unwrap();
    let passfile = format!("--gpg-passphrase-file={}", pass.display());
    let keyfile = format!("--gpg-key-file={}", k.secret.display());
    let sign = format!("--gpg-sign={}", k.fpr);
    let repo = tmp.path().join("repo");
    ok(&ox, &repo, &["init", "--mode=archive"]);
    ok(
        &ost,
        &repo,
        &[
            "remote",
            "add",
            &format!("--gpg-import={}", k.public.display()),
            "self",
            "http://127.0.0.1:9/",
        ],
    );
    let tree = tmp.path().join("tree");
    make_tree(&tree, "a\n");
    let t = tree.to_str().unwrap();
    let base = ok(&ox, &repo, &["commit", "-b", "main", t]);
    // Without the passphrase: a clear error and the ref does not move.
    let e = fails(&ox, &repo, &["commit", "-b", "main", &sign, &keyfile, t]);
    assert!(e.contains("passphrase"), "{e}");
    let e = fails(
        &ox,
        &repo,
        &["commit", "-b", "main", &sign, &k.homedir_arg(), t],
    );
    assert!(e.contains("gpg could not sign"), "{e}");
    assert_eq!(ok(&ox, &repo, &["rev-parse", "main"]), base);
    // With it, both ways sign, and ostree verifies the signatures.
    make_tree(&tree, "b\n");
    ok(
        &ox,
        &repo,
        &["commit", "-b", "main", &sign, &keyfile, &passfile, t],
    );
    let v = ok(&ost, &repo, &["show", "--gpg-verify-remote=self", "main"]);
    assert!(v.contains("Good signature"), "{v}");
    make_tree(&tree, "c\n");
    ok(
        &ox,
        &repo,
        &[
            "commit",
            "-b",
            "main",
            &sign,
            &k.homedir_arg(),
            &passfile,
            t,
        ],
    );
    let v = ok(&ost, &repo, &["show", "--gpg-verify-remote=self", "main"]);
    assert!(v.contains("Good signature"), "{v}");
}

fn keypair(ox: &Path, repo: &Path) -> (String, String) {
    let out = ok(ox, repo, &["sign", "--generate-key"]);
    let mut l = out.lines();
    (l.next().unwrap().to_string(), l.next().unwrap().to_string())
}

/// (c) ed25519: sign / sign --verify round trip, key files and system
/// directories (via OXTREE_SIGN_DIRS), revocation, and sign-verify pulls.
#[test]
fn ed25519_sign_verify_and_pull() {
    let ox = oxtree();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    ok(&ox, &src, &["init", "--mode=archive"]);
    let tree = tmp.path().join("tree");
    make_tree(&tree, "1\n");
    let c1 = ok(&ox, &src, &["commit", "-b", "main", tree.to_str().unwrap()]);
    let c1 = c1.trim().to_string();
    make_tree(&tree, "2\n");
    ok(
        &ox,
        &src,
        &["commit", "-b", "unsigned", tree.to_str().unwrap()],
    );
    make_tree(&tree, "3\n");
    ok(
        &ox,
        &src,
        &["commit", "-b", "wrongkey", tree.to_str().unwrap()],
    );
    let (sec, public) = keypair(&ox, &src);
    let (sec2, public2) = keypair(&ox, &src);
    assert_ne!(public, public2);

    // Verify before signing fails; sign; verify with the right key only.
    assert!(fails(&ox, &src, &["sign", "--verify", "main", &public]).contains("no signatures"));
    ok(&ox, &src, &["sign", "main", &sec]);
    let out = ok(&ox, &src, &["sign", "--verify", "main", &public]);
    assert_eq!(
        out,
        format!("ed25519: Signature verified successfully with key '{public}'\n")
    );
    fails(&ox, &src, &["sign", "--verify", "main", &public2]);
    // A second signature is appended; either key verifies now.
    let keys = tmp.path().join("keys");
    std::fs::write(&keys, format!("# secret keys\n{sec2}\n")).unwrap();
    ok(
        &ox,
        &src,
        &["sign", &format!("--keys-file={}", keys.display()), "main"],
    );
    ok(&ox, &src, &["sign", "--verify", "main", &public]);
    ok(&ox, &src, &["sign", "--verify", "main", &public2]);
    let pubs = tmp.path().join("pubs");
    std::fs::write(&pubs, format!("{public2}\n")).unwrap();
    ok(
        &ox,
        &src,
        &[
            "sign",
            "--verify",
            &format!("--keys-file={}", pubs.display()),
            "main",
        ],
    );
    // The detached metadata is a well-formed a{sv} for ostree too.
    let ost = require("ostree");
    let shown = ok(
        &ost,
        &src,
        &[
            "show",
            "--print-detached-metadata-key=ostree.sign.ed25519",
            "main",
        ],
    );
    assert!(shown.starts_with('['), "{shown}");
    // Delete the second one.
    assert_eq!(
        ok(&ox, &src, &["sign", "--delete", "main", &sec2]),
        "Signatures deleted: 1\n"
    );
    fails(&ox, &src, &["sign", "--verify", "main", &public2]);

    // System directories: trusted.ed25519.d/ and revoked.ed25519.
    let sys = tmp.path().join("sys");
    std::fs::create_dir_all(sys.join("trusted.ed25519.d")).unwrap();
    std::fs::write(sys.join("trusted.ed25519.d/k"), format!("{public}\n")).unwrap();
    let env = [("OXTREE_SIGN_DIRS", sys.as_path())];
    let args = ["sign", "--verify", "main"];
    check(
        format!("{} {args:?}", ox.display()),
        run_env(&ox, &src, &args, &env),
    );
    std::fs::write(sys.join("revoked.ed25519"), format!("{public}\n")).unwrap();
    assert!(!run_env(&ox, &src, &args, &env).status.success());
    std::fs::remove_file(sys.join("revoked.ed25519")).unwrap();
    ok(
        &ox,
        &src,
        &[
            "sign",
            "--verify",
            &format!("--keys-dir={}", sys.display()),
            "main",
        ],
    );

    // Pull with sign-verify: signed accepted, unsigned and wrong key refused.
    ok(&ox, &src, &["sign", "wrongkey", &sec2]);
    ok(&ox, &src, &["summary", "-u", &format!("--sign={sec}")]);
    let (_srv, url) = python_server(&src);
    let dst = tmp.path().join("dst");
    ok(&ox, &dst, &["init", "--mode=bare-user"]);
    // sign-verify without any key: refused up front.
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    ok(
        &ox,
        &dst,
        &[
            "remote",
            "add",
            "--no-gpg-verify",
            "--set=sign-verify=true",
            "nokey",
            &url,
        ],
    );
    let o = run_env(
        &ox,
        &dst,
        &["pull", "nokey", "main"],
        &[("OXTREE_SIGN_DIRS", &empty)],
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("requires ed25519 signatures"));
    ok(
        &ox,
        &dst,
        &[
            "remote",
            "add",
            "--no-gpg-verify",
            &format!("--sign-verify=ed25519=inline:{public}"),
            "--set=sign-verify-summary=true",
            "o",
            &url,
        ],
    );
    ok(&ox, &dst, &["pull", "o", "main"]);
    assert_eq!(
        std::fs::read_to_string(ref_file(&dst, "o", "main"))
            .unwrap()
            .trim(),
        c1
    );
    let trees = objects_with_suffix(&dst, ".dirtree");
    for (b, want) in [
        // ostree's wording (test-signed-pull-summary.sh matches it).
        ("unsigned", "No signatures found"),
        ("wrongkey", "none of the 1 signature(s) is valid"),
    ] {
        let e = fails(&ox, &dst, &["pull", "o", b]);
        assert!(e.contains(want), "{b}: {e}");
        assert!(!ref_file(&dst, "o", b).exists());
        assert_eq!(objects_with_suffix(&dst, ".dirtree"), trees);
    }
    // A key file works as well (verification-ed25519-file).
    ok(
        &ox,
        &dst,
        &[
            "remote",
            "add",
            "--no-gpg-verify",
            &format!("--sign-verify=ed25519=file:{}", pubs.display()),
            "f",
            &url,
        ],
    );
    ok(&ox, &dst, &["pull", "f", "wrongkey"]);
    fails(&ox, &dst, &["pull", "f", "main"]);
    // The summary signed with another key is refused by sign-verify-summary.
    ok(&ox, &src, &["summary", "-u", &format!("--sign={sec2}")]);
    let e = fails(&ox, &dst, &["pull", "o", "main"]);
    assert!(e.contains("summary of remote 'o'"), "{e}");
}

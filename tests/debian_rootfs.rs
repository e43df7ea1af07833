//! A real Debian root filesystem, built from Debian's packages with
//! mmdebstrap (minbase, cached outside the repository), committed by both
//! tools: the same commit checksum in bare-user and archive mode, ostree
//! fsck accepts oxtree's repository, and `ls -R -C` prints the same tree.

#[path = "support/cli.rs"]
mod cli;

use cli::{sh, OX};
use std::path::Path;

const CACHE: &str = "/var/cache/oxtree-tests/rootfs-minbase";

/// Build the rootfs once (about a minute); later runs reuse it.
fn rootfs() -> &'static str {
    if !Path::new(&format!("{CACHE}.complete")).exists() {
        sh("command -v mmdebstrap >/dev/null || { echo 'mmdebstrap is required (scripts/test.sh installs it)' >&2; exit 1; }");
        sh(&format!(
            "set -e; rm -rf {CACHE} {CACHE}.tmp; mkdir -p $(dirname {CACHE})
             mmdebstrap --quiet --mode=root --variant=minbase --format=directory \
               --customize-hook='rm -rf \"$1\"/var/cache/apt/* \"$1\"/var/lib/apt/lists/*' \
               bookworm {CACHE}.tmp
             # Device nodes, fifos and sockets cannot be committed by either tool.
             find {CACHE}.tmp -xdev \\( -type b -o -type c -o -type p -o -type s \\) -delete
             mv {CACHE}.tmp {CACHE}; touch {CACHE}.complete"
        ));
    }
    CACHE
}

#[test]
fn debian_rootfs_commits_identically() {
    let ox = OX;
    let tree = rootfs();
    let d = tempfile::Builder::new()
        .prefix("oxtree-debian-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let d = d.path().display();
    for mode in ["bare-user", "archive"] {
        let commit = |tool: &str, repo: &str| {
            sh(&format!(
                "set -e; {tool} --repo={d}/{repo} init --mode={mode}
                 {tool} --repo={d}/{repo} commit -b os --timestamp=2020-01-01 -s debian {tree}"
            ))
            .trim()
            .to_string()
        };
        let a = commit("ostree", &format!("ostree-{mode}"));
        let b = commit(ox, &format!("oxtree-{mode}"));
        assert_eq!(a.len(), 64, "{a}");
        assert_eq!(a, b, "{mode}: commit checksums differ");
        sh(&format!("ostree --repo={d}/oxtree-{mode} fsck"));
        let ls_o = sh(&format!("ostree --repo={d}/ostree-{mode} ls -R -C os"));
        let ls_x = sh(&format!("{ox} --repo={d}/oxtree-{mode} ls -R -C os"));
        assert!(ls_o.lines().count() > 5000, "suspiciously small rootfs");
        assert!(ls_o == ls_x, "{mode}: ls -R -C differs");
    }
}

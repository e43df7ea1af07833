//! The two Debian bases package layering is tested on (tests/layering.rs,
//! tests/agent.rs), composed once into a fixture repository. Included with
//! `#[path]` after fixture.rs.

#![allow(dead_code)]

use std::process::Command;

/// Package downloads, shared with tests/compose.rs.
pub const APT_CACHE: &str = "/var/cache/oxtree-tests/apt";
/// Bumped when the fixture changes in a way its treefiles do not show.
pub const FIXTURE: &str = "v2";

pub fn sh(script: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(script).output().unwrap();
    assert!(
        out.status.success(),
        "{script}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A repository holding `debian/main` (version 1: systemd, systemd-sysv,
/// linux-image-amd64, less) and `debian/next` (version 2: the same plus
/// iproute2), both composed by `oxtree compose tree`; a fixture
/// (tests/support/fixture.rs) keyed by the two treefiles, built once (a
/// compose takes minutes) under /var/cache/oxtree-tests/fixtures.
pub fn bases(ox: &str) -> String {
    let treefiles = [
        ("debian/main", "1", ""),
        ("debian/next", "2", ", \"iproute2\""),
    ]
    .map(|(branch, version, extra)| {
        format!(
            "ref = \"{branch}\"\nsuite = \"bookworm\"\nversion = \"{version}\"\n\
             packages = [\"systemd\", \"systemd-sysv\", \"linux-image-amd64\", \"less\"{extra}]\n"
        )
    });
    let dir = crate::fixture::cached(
        "layer-bases",
        &[
            FIXTURE.as_bytes(),
            treefiles[0].as_bytes(),
            treefiles[1].as_bytes(),
        ],
        |d| {
            let repo = d.join("repo");
            let repo = repo.display();
            sh(&format!(
                "set -e; mkdir -p {APT_CACHE}; {ox} init --repo={repo} --mode=bare"
            ));
            for (i, text) in treefiles.iter().enumerate() {
                let tf = d.join(format!("{i}.toml"));
                std::fs::write(&tf, text).unwrap();
                let tf = tf.display();
                sh(&format!(
                    "{ox} compose tree --repo={repo} --cachedir={APT_CACHE} {tf} && rm {tf}"
                ));
            }
        },
    );
    dir.join("repo").display().to_string()
}

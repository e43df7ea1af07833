//! The two Debian bases package layering is tested on (tests/layering.rs,
//! tests/agent.rs): [`MAIN`] is the one composed host base the
//! compose and boot tests share (tests/support/host_base.rs), and
//! `debian/next` the same treefile with one package more, composed once
//! into a fixture repository. Included with `#[path]` after cli.rs,
//! fixture.rs and host_base.rs.

#![allow(dead_code)]

use crate::cli::sh;

/// Bumped when the fixture changes in a way its inputs do not show.
pub const FIXTURE: &str = "v4";
/// The first base's ref: the host base's own (its commit is bound to it).
pub const MAIN: &str = crate::host_base::REF;
/// The package `debian/next` adds to the host base.
pub const NEXT_PACKAGE: &str = "tree";

/// A bare repository holding [`MAIN`] (the host base, version 1) and
/// `debian/next` (version 2: the host treefile plus [`NEXT_PACKAGE`],
/// composed by `oxtree compose tree`); a fixture (tests/support/fixture.rs)
/// keyed by the host base's commit, built once under
/// /var/cache/oxtree-tests/fixtures.
pub fn bases(ox: &str) -> String {
    let host = crate::host_base::repo();
    let host = host.display();
    let base = crate::cli::ox(&["--repo", &host.to_string(), "rev-parse", MAIN]);
    let base = base.trim();
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    let treefile = std::fs::read_to_string(format!("{examples}/host.toml"))
        .unwrap()
        .replace(&format!("ref = \"{MAIN}\""), "ref = \"debian/next\"")
        .replace("version = \"1\"", "version = \"2\"")
        .replace("packages = [", &format!("packages = [\"{NEXT_PACKAGE}\", "));
    assert!(treefile.contains("debian/next") && treefile.contains("version = \"2\""));
    let dir = crate::fixture::cached(
        "layer-bases",
        &[FIXTURE.as_bytes(), base.as_bytes(), treefile.as_bytes()],
        |d| {
            let repo = d.join("repo");
            let repo = repo.display();
            let apt = crate::host_base::APT_CACHE;
            std::fs::write(d.join("next.toml"), &treefile).unwrap();
            // add-files are relative to the treefile.
            sh(&format!(
                "set -e; cp -r {examples}/host {d}/host; {ox} init --repo={repo} --mode=bare
                 {ox} --repo={repo} pull-local {host} {MAIN}
                 {ox} compose tree --repo={repo} --cachedir={apt} {d}/next.toml
                 rm -r {d}/next.toml {d}/host",
                d = d.display()
            ));
        },
    );
    dir.join("repo").display().to_string()
}

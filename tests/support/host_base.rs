//! The one composed host base the compose and boot tests share
//! (tests/compose.rs checks its layout, tests/boot.rs boots it): the
//! example container host, `examples/host.toml`, composed by
//! `oxtree compose tree` into an archive repository kept as a fixture
//! (tests/support/fixture.rs). Included with `#[path]` after cli.rs and
//! fixture.rs.
//!
//! The fixture's key is what the composed tree depends on: the treefile
//! and its files, the compose crate's sources, and the code of the
//! `oxtree-prepare-root` binary that goes into the initramfs. The big
//! `oxtree` binary the image also carries is not in the key, since it
//! changes with every edit anywhere and would mean a new compose (minutes,
//! and a new fixture on disk) per build; [`with_current_oxtree`] commits
//! the binary under test on top instead, as an ordinary ostree commit.

#![allow(dead_code)]

use crate::cli::{ox, OX};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const TREEFILE: &str = "examples/host.toml";
pub const REF: &str = "debian/trixie/x86_64/host";
/// Package downloads for the trixie composes.
pub const APT_CACHE: &str = "/var/cache/oxtree-tests/apt-trixie";
/// Bumped when the fixture changes in a way its inputs do not show.
const FIXTURE: &str = "host-base v1";

fn src(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// The code of the `oxtree-prepare-root` binary the initramfs carries,
/// without what depends on where it was built: its debug information
/// holds the build directory and its build id hashes that, and CI builds
/// each run in a fresh clone.
fn prepare_root_code() -> Vec<u8> {
    let bin = Path::new(OX).with_file_name("oxtree-prepare-root");
    let tmp = tempfile::NamedTempFile::new().unwrap();
    let st = Command::new("strip")
        .args(["--strip-debug", "--remove-section=.note.gnu.build-id", "-o"])
        .arg(tmp.path())
        .arg(&bin)
        .status()
        .expect("strip (binutils) is required");
    assert!(st.success(), "strip {}", bin.display());
    std::fs::read(tmp.path()).unwrap()
}

/// The composed base: an archive repository with [`REF`], composed the
/// first time anyone asks for these inputs. Never modify it: copy it with
/// hardlinks (`cp -al`, objects are never changed in place) and commit to
/// the copy.
pub fn repo() -> PathBuf {
    let mut files = Vec::new();
    files_under(&src("examples/host"), &mut files);
    files_under(&src("crates/oxtree-compose/src"), &mut files);
    files.push(src(TREEFILE));
    files.sort();
    let mut inputs: Vec<Vec<u8>> = vec![FIXTURE.as_bytes().to_vec(), prepare_root_code()];
    let root = src("");
    for f in files {
        let rel = f.strip_prefix(&root).unwrap_or(&f);
        inputs.push(rel.to_string_lossy().as_bytes().to_vec());
        inputs.push(std::fs::read(&f).unwrap());
    }
    let refs: Vec<&[u8]> = inputs.iter().map(|v| v.as_slice()).collect();
    let dir = crate::fixture::cached("host-base", &refs, |dir| {
        let repo = dir.join("repo");
        let r = repo.to_str().unwrap();
        ox(&["--repo", r, "init", "--mode=archive"]);
        ox(&[
            "--repo",
            r,
            "compose",
            "tree",
            &format!("--cachedir={APT_CACHE}"),
            src(TREEFILE).to_str().unwrap(),
        ]);
    });
    dir.join("repo")
}

/// A copy of the base in `dest` (hardlinks) whose [`REF`] carries the
/// oxtree binary under test at `usr/bin/oxtree` (without debug
/// information, as compose installs it), with `version` in its metadata.
/// Returns the new commit.
pub fn with_current_oxtree(dest: &Path, version: &str) -> String {
    let st = Command::new("cp")
        .arg("-al")
        .arg(repo())
        .arg(dest)
        .status()
        .unwrap();
    assert!(st.success(), "cp -al of the host base");
    let overlay = tempfile::tempdir().unwrap();
    let bin = overlay.path().join("usr/bin/oxtree");
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    let st = Command::new("strip")
        .args(["--strip-debug", "-o"])
        .arg(&bin)
        .arg(OX)
        .status()
        .expect("strip (binutils) is required");
    assert!(st.success(), "strip --strip-debug {OX}");
    let r = dest.to_str().unwrap();
    let out = ox(&[
        "--repo",
        r,
        "commit",
        "-b",
        REF,
        "--bootable",
        &format!("--tree=ref={REF}"),
        &format!("--tree=dir={}", overlay.path().display()),
        &format!("--add-metadata-string=version={version}"),
        "-s",
        "the oxtree under test",
    ]);
    out.trim().lines().last().unwrap().to_string()
}

//! Running the built oxtree (or ostree) on a repo in the tests: `run`
//! returns the output, `ok` asserts success and returns stdout, `fails`
//! asserts failure and returns stderr. Included with `#[path]`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn oxtree() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_oxtree"))
}

pub fn run(bin: &Path, repo: &Path, args: &[&str]) -> Output {
    Command::new(bin)
        .arg(format!("--repo={}", repo.display()))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", bin.display()))
}

#[track_caller]
pub fn ok(bin: &Path, repo: &Path, args: &[&str]) -> String {
    let o = run(bin, repo, args);
    assert!(
        o.status.success(),
        "{} {:?} failed:\nstdout: {}\nstderr: {}",
        bin.display(),
        args,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

#[track_caller]
pub fn fails(bin: &Path, repo: &Path, args: &[&str]) -> String {
    let o = run(bin, repo, args);
    assert!(
        !o.status.success(),
        "{} {:?} unexpectedly succeeded",
        bin.display(),
        args
    );
    String::from_utf8_lossy(&o.stderr).into_owned()
}

//! Running the built oxtree (or ostree) on a repo in the tests: `run`
//! (`run_env`: with extra environment) returns the output, `ok` asserts
//! success and returns stdout (`check` does that for an output), `fails`
//! asserts failure and returns stderr. Included with `#[path]`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn oxtree() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_oxtree"))
}

pub fn run(bin: &Path, repo: &Path, args: &[&str]) -> Output {
    run_env(bin, repo, args, &[])
}

/// `run` with extra environment variables.
pub fn run_env(bin: &Path, repo: &Path, args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut c = Command::new(bin);
    c.arg(format!("--repo={}", repo.display())).args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output()
        .unwrap_or_else(|e| panic!("running {}: {e}", bin.display()))
}

/// Assert that `o` (of `bin args`) succeeded; its stdout.
#[track_caller]
pub fn check(bin: &Path, args: &[&str], o: Output) -> String {
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
pub fn ok(bin: &Path, repo: &Path, args: &[&str]) -> String {
    check(bin, args, run(bin, repo, args))
}

#[track_caller]
pub fn fails(bin: &Path, repo: &Path, args: &[&str]) -> String {
    let o = run(bin, repo, args);
    assert!(
        !o.status.success(),
        "{} {:?} unexpectedly succeeded:\nstdout: {}",
        bin.display(),
        args,
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stderr).into_owned()
}

//! The one harness for running programs from the integration tests
//! (included with `#[path]` as `cli`); a test file defines no `run`, `ok`,
//! `fails` or `sh` of its own. It owns:
//!
//! - the built oxtree: [`OX`], [`oxtree`];
//! - running oxtree (or ostree, or any binary taking `--repo`) on a repo:
//!   [`run`] (and [`run_env`], with extra environment) return the output,
//!   [`ok`] asserts success and returns stdout, [`fails`] asserts failure
//!   and returns stderr;
//! - running oxtree without a repo: [`ox`] (asserts success, stdout);
//! - a prepared [`Command`] (any program, any environment): [`repo_cmd`]
//!   starts one with `--repo`, [`output`] runs it, [`ok_cmd`] and
//!   [`fails_cmd`] assert as `ok` and `fails` do;
//! - an [`Output`] already in hand: [`check`] and [`check_fails`];
//! - a shell script: [`sh`] (asserts success, stdout).
//!
//! The interop suite (support/interop.rs) keeps its own `Tool`-based
//! runner: it swaps oxtree for ostree (self-check mode) and times out.
//! The loop-mounted sysroot scripts are support/sysroot.rs's.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The oxtree binary under test.
pub const OX: &str = env!("CARGO_BIN_EXE_oxtree");

pub fn oxtree() -> PathBuf {
    PathBuf::from(OX)
}

/// `bin --repo=REPO`, to add arguments and environment to.
pub fn repo_cmd(bin: impl AsRef<Path>, repo: &Path) -> Command {
    let mut c = Command::new(bin.as_ref());
    c.arg(format!("--repo={}", repo.display()));
    c
}

/// Run `cmd` to its end; its output.
pub fn output(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"))
}

pub fn run(bin: impl AsRef<Path>, repo: &Path, args: &[&str]) -> Output {
    run_env(bin, repo, args, &[])
}

/// `run` with extra environment variables.
pub fn run_env(bin: impl AsRef<Path>, repo: &Path, args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut c = repo_cmd(bin, repo);
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    output(&mut c)
}

/// Assert that `o` (of `what`, for the message) succeeded; its stdout.
#[track_caller]
pub fn check(what: impl Display, o: Output) -> String {
    assert!(
        o.status.success(),
        "{what} failed:\n--- stdout ---\n{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Assert that `o` (of `what`, for the message) failed; its stderr.
#[track_caller]
pub fn check_fails(what: impl Display, o: Output) -> String {
    assert!(
        !o.status.success(),
        "{what} unexpectedly succeeded:\n--- stdout ---\n{}",
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn describe(bin: &Path, args: &[&str]) -> String {
    format!("{} {args:?}", bin.display())
}

#[track_caller]
pub fn ok(bin: impl AsRef<Path>, repo: &Path, args: &[&str]) -> String {
    let bin = bin.as_ref();
    check(describe(bin, args), run(bin, repo, args))
}

#[track_caller]
pub fn fails(bin: impl AsRef<Path>, repo: &Path, args: &[&str]) -> String {
    let bin = bin.as_ref();
    check_fails(describe(bin, args), run(bin, repo, args))
}

/// oxtree with `args` and no implied repository; asserts success and
/// returns stdout.
#[track_caller]
pub fn ox<S: AsRef<OsStr> + std::fmt::Debug>(args: &[S]) -> String {
    let o = output(Command::new(OX).args(args));
    check(format!("oxtree {args:?}"), o)
}

/// Run a prepared command; asserts success and returns stdout.
#[track_caller]
pub fn ok_cmd(cmd: &mut Command) -> String {
    let o = output(cmd);
    check(format!("{cmd:?}"), o)
}

/// Run a prepared command; asserts failure and returns stderr.
#[track_caller]
pub fn fails_cmd(cmd: &mut Command) -> String {
    let o = output(cmd);
    check_fails(format!("{cmd:?}"), o)
}

/// Run `script` with `sh -c`; asserts success and returns stdout.
#[track_caller]
pub fn sh(script: &str) -> String {
    let o = output(Command::new("sh").arg("-c").arg(script));
    check(script, o)
}

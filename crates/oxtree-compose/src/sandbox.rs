//! Run Debian tools (apt, dpkg, maintainer scripts, update-initramfs)
//! confined to a root with bubblewrap: the root is bound on `/`, with a
//! fresh `/proc`, a minimal `/dev`, tmpfs `/tmp` and `/run`, the host's
//! network (and the host's resolv.conf when the root has none), a clean
//! environment, and a `policy-rc.d` that forbids starting services.

use crate::error::{ComposeError, IoContext, Result};
use crate::fsat;
use rustix::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The bubblewrap binary (overridable for tests or unusual installs).
pub const BWRAP: &str = "bwrap";

const POLICY_RC_D: &str = "usr/sbin/policy-rc.d";
const POLICY_RC_D_TEXT: &str =
    "#!/bin/sh\n# Written by oxtree while it runs package scripts: start no services.\nexit 101\n";

#[derive(Clone, Debug)]
pub struct SandboxOptions {
    /// Read-write bind mounts: (host path, path inside the root).
    pub binds: Vec<(PathBuf, String)>,
    /// Read-only bind mounts: (host path, path inside the root).
    pub ro_binds: Vec<(PathBuf, String)>,
    /// Extra environment, on top of the clean default (PATH, HOME, LC_ALL,
    /// DEBIAN_FRONTEND=noninteractive, DEBCONF_NONINTERACTIVE_SEEN).
    pub env: Vec<(String, String)>,
    /// Share the host's network (apt downloads). Default: true.
    pub share_net: bool,
    /// Working directory inside the root. Default: `/`.
    pub cwd: String,
    /// How many trailing lines of stderr a failure error carries.
    pub stderr_tail_lines: usize,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        SandboxOptions {
            binds: Vec::new(),
            ro_binds: Vec::new(),
            env: Vec::new(),
            share_net: true,
            cwd: "/".into(),
            stderr_tail_lines: 30,
        }
    }
}

impl SandboxOptions {
    /// Add `SOURCE_DATE_EPOCH` (reproducible builds) to the environment.
    pub fn source_date_epoch(mut self, epoch: u64) -> Self {
        self.env
            .push(("SOURCE_DATE_EPOCH".into(), epoch.to_string()));
        self
    }
}

/// The bwrap command line that runs `argv` confined to `root`.
pub fn command(root: &Path, argv: &[&str], opts: &SandboxOptions) -> Command {
    let mut c = Command::new(BWRAP);
    c.arg("--bind").arg(root).arg("/");
    c.args(["--proc", "/proc", "--dev", "/dev"]);
    // /tmp must be world-writable: apt drops to the _apt user.
    c.args(["--perms", "1777", "--tmpfs", "/tmp", "--tmpfs", "/run"]);
    c.args(["--unshare-ipc", "--unshare-uts", "--die-with-parent"]);
    if !opts.share_net {
        c.arg("--unshare-net");
    }
    for (src, dest) in &opts.binds {
        c.arg("--bind").arg(src).arg(dest);
    }
    for (src, dest) in &opts.ro_binds {
        c.arg("--ro-bind").arg(src).arg(dest);
    }
    c.args(["--chdir", &opts.cwd]);
    c.arg("--clearenv");
    let mut env: Vec<(String, String)> = vec![
        (
            "PATH".into(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        ),
        ("HOME".into(), "/root".into()),
        ("LC_ALL".into(), "C.UTF-8".into()),
        ("DEBIAN_FRONTEND".into(), "noninteractive".into()),
        ("DEBCONF_NONINTERACTIVE_SEEN".into(), "true".into()),
    ];
    env.extend(opts.env.iter().cloned());
    for (k, v) in &env {
        c.args(["--setenv", k, v]);
    }
    c.arg("--");
    c.args(argv);
    c
}

/// Run `argv` confined to `root` and wait for it. A non-zero exit is a
/// [`ComposeError::Command`] with the command and the tail of its stderr.
pub fn run_in_root(root: &Path, argv: &[&str], opts: &SandboxOptions) -> Result<Output> {
    let _policy = PolicyRcD::install(root)?;
    let mut opts = opts.clone();
    let _resolv = host_resolv_conf(root, &mut opts)?;
    let mut c = command(root, argv, &opts);
    c.stdin(Stdio::null());
    let out = c
        .output()
        .ctx(|| format!("running {BWRAP} (is bubblewrap installed?)"))?;
    check(argv, out, opts.stderr_tail_lines)
}

/// Turn a finished process into `Ok(output)` or a Command error.
pub(crate) fn check(argv: &[&str], out: Output, tail_lines: usize) -> Result<Output> {
    if out.status.success() {
        return Ok(out);
    }
    let err = if out.stderr.iter().any(|b| !b.is_ascii_whitespace()) {
        &out.stderr
    } else {
        &out.stdout
    };
    Err(ComposeError::Command {
        command: argv.join(" "),
        status: out.status.to_string(),
        stderr_tail: tail(&String::from_utf8_lossy(err), tail_lines),
    })
}

/// The last `n` lines of `s`.
pub(crate) fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// With a shared network, a root without its own `/etc/resolv.conf` (a
/// composed tree drops it) gets the host's, read-only, so apt can resolve
/// names; the empty mount point is removed again afterwards.
fn host_resolv_conf(root: &Path, opts: &mut SandboxOptions) -> Result<Option<Temporary>> {
    const RESOLV: &str = "etc/resolv.conf";
    let host = Path::new("/etc/resolv.conf");
    if !opts.share_net || !host.exists() {
        return Ok(None);
    }
    let rfd = fsat::open_root(root)?;
    let r = rfd.as_fd();
    if !fsat::is_dir(r, "etc")? || fsat::lstat(r, RESOLV)?.is_some() {
        return Ok(None);
    }
    fsat::write(r, RESOLV, b"")?;
    opts.ro_binds
        .push((host.to_path_buf(), format!("/{RESOLV}")));
    Ok(Some(Temporary {
        root: root.to_path_buf(),
        rel: RESOLV,
    }))
}

/// A file created in the root for one run, removed on drop.
pub(crate) struct Temporary {
    root: PathBuf,
    rel: &'static str,
}

impl Drop for Temporary {
    fn drop(&mut self) {
        if let Ok(rfd) = fsat::open_root(&self.root) {
            let _ = fsat::remove(rfd.as_fd(), self.rel);
        }
    }
}

/// A `policy-rc.d` written for the duration of a sandboxed run (unless the
/// root already has one), removed again on drop so it never reaches a
/// commit.
pub(crate) struct PolicyRcD {
    root: Option<PathBuf>,
}

impl PolicyRcD {
    pub(crate) fn install(root: &Path) -> Result<PolicyRcD> {
        let rfd = fsat::open_root(root)?;
        let r = rfd.as_fd();
        if !fsat::is_dir(r, "usr/sbin")? || fsat::lstat(r, POLICY_RC_D)?.is_some() {
            return Ok(PolicyRcD { root: None });
        }
        fsat::write(r, POLICY_RC_D, POLICY_RC_D_TEXT.as_bytes())?;
        let (p, n) = fsat::split(POLICY_RC_D);
        let pfd = fsat::open_dir_rel(r, p)?.expect("usr/sbin exists");
        rustix::fs::chmodat(
            &pfd,
            n,
            rustix::fs::Mode::from_raw_mode(0o755),
            rustix::fs::AtFlags::empty(),
        )
        .ctx(|| format!("chmod {POLICY_RC_D}"))?;
        Ok(PolicyRcD {
            root: Some(root.to_path_buf()),
        })
    }
}

impl Drop for PolicyRcD {
    fn drop(&mut self) {
        if let Some(root) = &self.root {
            if let Ok(rfd) = fsat::open_root(root) {
                let _ = fsat::remove(rfd.as_fd(), POLICY_RC_D);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A root whose /usr is the host's (read-only), enough to run sh.
    fn root() -> (tempfile::TempDir, SandboxOptions) {
        let t = tempfile::tempdir().unwrap();
        for l in ["bin", "lib", "lib64", "sbin"] {
            symlink(format!("usr/{l}"), t.path().join(l)).unwrap();
        }
        std::fs::create_dir_all(t.path().join("usr/sbin")).unwrap();
        std::fs::create_dir_all(t.path().join("out")).unwrap();
        let opts = SandboxOptions {
            ro_binds: vec![("/usr".into(), "/usr".into())],
            ..Default::default()
        };
        (t, opts)
    }

    #[test]
    fn runs_confined_with_a_clean_environment() {
        let (t, opts) = root();
        let opts = opts.source_date_epoch(42);
        let out = run_in_root(
            t.path(),
            &[
                "/bin/sh",
                "-c",
                "echo \"$DEBIAN_FRONTEND $SOURCE_DATE_EPOCH ${CARGO:-none}\"; echo hi > /out/f; test -d /proc/self; test -k /tmp",
            ],
            &opts,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "noninteractive 42 none\n"
        );
        assert_eq!(
            std::fs::read_to_string(t.path().join("out/f")).unwrap(),
            "hi\n"
        );
        // The temporary policy-rc.d is gone again.
        assert!(!t.path().join("usr/sbin/policy-rc.d").exists());
    }

    #[test]
    fn failure_carries_command_and_stderr_tail() {
        let (t, opts) = root();
        let err = run_in_root(
            t.path(),
            &[
                "/bin/sh",
                "-c",
                "for i in $(seq 100); do echo line$i >&2; done; exit 3",
            ],
            &opts,
        )
        .unwrap_err();
        match &err {
            ComposeError::Command {
                command,
                status,
                stderr_tail,
            } => {
                assert!(command.starts_with("/bin/sh -c"), "{command}");
                assert!(status.contains('3'), "{status}");
                assert!(stderr_tail.ends_with("line100"), "{stderr_tail}");
                assert!(!stderr_tail.contains("line70\n"), "{stderr_tail}");
            }
            e => panic!("unexpected error {e}"),
        }
        assert!(err.to_string().contains("line99"));
    }
}

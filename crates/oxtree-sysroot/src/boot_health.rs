//! Health-checked boots and automatic rollback, on the running system.
//!
//! The boot loader counts the tries of a new default deployment (see
//! `bootloader::grub`); this module is the userspace half:
//! - [`run_health_checks`] runs the executables of
//!   `/usr/lib/oxtree/health.d` and `/etc/oxtree/health.d`
//!   (`oxtree-healthcheck.service`, required by `boot-complete.target`);
//! - [`Sysroot::record_health_failure`] keeps what failed, per deployment,
//!   in `boot/oxtree/health-failures.json` on the physical root;
//! - [`Sysroot::boot_complete`] runs once `boot-complete.target` is
//!   reached: it blesses the booted deployment (removes the counter), or,
//!   when the boot loader fell back because the new default used up its
//!   tries, makes the rollback permanent (the booted deployment becomes
//!   the default, the failed one the rollback) and records what happened
//!   and why in `boot/oxtree/auto-rollback.json`, which `admin status`
//!   shows.

use crate::bootloader::grub::tries_var;
use crate::error::{IoContext, Result, SysrootError};
use crate::{grubenv, Deployment, Sysroot};
use oxtree_repo::fsutil;
use rustix::fd::AsFd;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const STATE_DIR: &str = "oxtree";
const FAILURES: &str = "oxtree/health-failures.json";
const ROLLBACK: &str = "oxtree/auto-rollback.json";
/// Health-check directories, relative to the root; a name in a later one
/// overrides the same name in an earlier one.
pub const HEALTH_DIRS: [&str; 2] = ["usr/lib/oxtree/health.d", "etc/oxtree/health.d"];
/// How long one check may run.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(300);

/// A deployment, as the records name it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentId {
    pub stateroot: String,
    pub checksum: String,
    pub deploy_serial: u32,
}

impl DeploymentId {
    pub fn of(d: &Deployment) -> Self {
        DeploymentId {
            stateroot: d.osname.clone(),
            checksum: d.csum.clone(),
            deploy_serial: d.deployserial,
        }
    }
    pub fn name(&self) -> String {
        format!("{}.{}", self.checksum, self.deploy_serial)
    }
}

/// One failed health check of one boot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthFailure {
    pub deployment: DeploymentId,
    /// The check (file name in health.d) or the unit that failed.
    pub check: String,
    /// The end of its output.
    pub output: String,
    /// Seconds since the epoch.
    pub time: u64,
}

/// A rollback the system made by itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AutoRollback {
    pub failed: DeploymentId,
    pub failed_version: Option<String>,
    pub restored: DeploymentId,
    pub tries: u32,
    /// Why, in one sentence.
    pub reason: String,
    pub health_failures: Vec<HealthFailure>,
    pub time: u64,
}

/// What [`Sysroot::boot_complete`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BootComplete {
    /// No try counter was running.
    NothingToDo,
    /// The new default deployment proved itself.
    Blessed(DeploymentId),
    /// The new default failed; the booted deployment is the default again.
    RolledBack(AutoRollback),
}

/// The result of one health check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckResult {
    pub name: String,
    pub ok: bool,
    pub output: String,
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn tail(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &s[start..])
}

/// The checks to run under `root`: executables by file name, a file in a
/// later directory overriding an earlier one; an empty file or a symlink
/// to /dev/null disables a check.
pub fn health_checks(root: &Path) -> Vec<(String, std::path::PathBuf)> {
    let mut by_name = std::collections::BTreeMap::new();
    for d in HEALTH_DIRS {
        let Ok(rd) = std::fs::read_dir(root.join(d)) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            by_name.insert(name, e.path());
        }
    }
    by_name
        .into_iter()
        .filter(|(_, p)| {
            let masked = std::fs::read_link(p).is_ok_and(|t| t == Path::new("/dev/null"));
            let empty = std::fs::metadata(p).map(|m| m.len() == 0).unwrap_or(true);
            !masked && !empty
        })
        .collect()
}

/// Run every health check under `root` (in name order, each with
/// [`CHECK_TIMEOUT`]); all are run even after a failure.
pub fn run_health_checks(root: &Path) -> Vec<CheckResult> {
    let mut out = Vec::new();
    for (name, path) in health_checks(root) {
        let child = Command::new(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let r = match child {
            Err(e) => CheckResult {
                name,
                ok: false,
                output: format!("cannot run {}: {e}", path.display()),
            },
            Ok(child) => wait_with_timeout(child, name, CHECK_TIMEOUT),
        };
        out.push(r);
    }
    out
}

fn wait_with_timeout(mut child: std::process::Child, name: String, limit: Duration) -> CheckResult {
    use std::io::Read;
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(o) = stdout.as_mut() {
            let _ = o.read_to_string(&mut s);
        }
        if let Some(e) = stderr.as_mut() {
            let _ = e.read_to_string(&mut s);
        }
        s
    });
    let t0 = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) if t0.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(_) => break None,
        }
    };
    let output = tail(reader.join().unwrap_or_default().trim_end(), 2000);
    match status {
        Some(st) if st.success() => CheckResult {
            name,
            ok: true,
            output,
        },
        Some(st) => CheckResult {
            name,
            ok: false,
            output: format!("{output}\n({st})").trim_start().to_string(),
        },
        None => CheckResult {
            name,
            ok: false,
            output: format!("{output}\n(timed out after {}s)", limit.as_secs())
                .trim_start()
                .to_string(),
        },
    }
}

impl Sysroot {
    fn boot_dir(&self) -> Result<rustix::fd::OwnedFd> {
        fsutil::open_dir_at(self.dir(), "boot").ctx(|| "opening boot")
    }

    fn read_json<T: for<'a> Deserialize<'a>>(&self, rel: &str) -> Result<Option<T>> {
        let boot = self.boot_dir()?;
        match fsutil::read_at(&boot, rel) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| SysrootError::Invalid(format!("boot/{rel}: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).ctx(|| format!("reading boot/{rel}")),
        }
    }

    fn write_json<T: Serialize>(&self, rel: &str, v: &T) -> Result<()> {
        let boot = self.boot_dir()?;
        let dir = fsutil::mkdir_p_at(&boot, STATE_DIR).ctx(|| "creating boot/oxtree")?;
        let text = serde_json::to_vec_pretty(v)
            .map_err(|e| SysrootError::Invalid(format!("serializing boot/{rel}: {e}")))?;
        let name = rel.rsplit('/').next().unwrap_or(rel);
        fsutil::write_atomic_at(&dir, name, &text, true).ctx(|| format!("writing boot/{rel}"))
    }

    /// The deployment this system booted, for the records.
    fn booted_deployment(&self) -> Result<&Deployment> {
        let b = self.booted_index().ok_or_else(|| {
            SysrootError::Refused("not booted into a deployment of this sysroot".into())
        })?;
        self.deployment(b)
    }

    /// Keep a failed health check of the booted deployment.
    pub fn record_health_failure(&self, check: &str, output: &str) -> Result<HealthFailure> {
        let d = DeploymentId::of(self.booted_deployment()?);
        let f = HealthFailure {
            deployment: d,
            check: check.to_string(),
            output: tail(output, 2000),
            time: now(),
        };
        let mut all: Vec<HealthFailure> = self.read_json(FAILURES)?.unwrap_or_default();
        all.push(f.clone());
        // Only the last few per deployment matter.
        let keep = all.len().saturating_sub(32);
        all.drain(..keep);
        self.write_json(FAILURES, &all)?;
        Ok(f)
    }

    /// The health failures recorded for `d`.
    pub fn health_failures(&self, d: &DeploymentId) -> Result<Vec<HealthFailure>> {
        let all: Vec<HealthFailure> = self.read_json(FAILURES)?.unwrap_or_default();
        Ok(all.into_iter().filter(|f| &f.deployment == d).collect())
    }

    /// The last automatic rollback, if any.
    pub fn last_auto_rollback(&self) -> Result<Option<AutoRollback>> {
        self.read_json(ROLLBACK)
    }

    /// Boot counting of the current bootversion: the tries left for
    /// entry 0, when a counter is running.
    pub fn boot_tries_left(&self) -> Result<Option<u32>> {
        let boot = self.boot_dir()?;
        let Some(env) = grubenv::read(boot.as_fd())? else {
            return Ok(None);
        };
        Ok(env
            .get(&tries_var(self.bootversion()))
            .and_then(|v| v.parse().ok()))
    }

    /// Called once the booted system reached `boot-complete.target` (see
    /// the module documentation). Holds the caller's sysroot lock.
    pub fn boot_complete(&mut self) -> Result<BootComplete> {
        let Some(left) = self.boot_tries_left()? else {
            return Ok(BootComplete::NothingToDo);
        };
        let b = self.booted_index().ok_or_else(|| {
            SysrootError::Refused("not booted into a deployment of this sysroot".into())
        })?;
        let booted = self.deployment(b)?.clone();
        let clear = |s: &Sysroot| -> Result<()> {
            let boot = s.boot_dir()?;
            grubenv::update(
                boot.as_fd(),
                &[(&tries_var(0), None), (&tries_var(1), None)],
            )
        };
        if b == 0 {
            clear(self)?;
            return Ok(BootComplete::Blessed(DeploymentId::of(&booted)));
        }
        if left > 0 {
            // Booted another entry by hand while the counter ran: leave it.
            return Ok(BootComplete::NothingToDo);
        }
        let failed = self.deployment(0)?.clone();
        let failed_id = DeploymentId::of(&failed);
        let failures = self.health_failures(&failed_id)?;
        let tries = self
            .config("boot-counting-tries")
            .and_then(|t| t.parse().ok())
            .unwrap_or(crate::bootloader::DEFAULT_BOOT_TRIES);
        let reason = match failures.last() {
            Some(f) => format!(
                "health check {} failed ({} of {} boots); the boot loader fell back to the previous deployment",
                f.check,
                failures.len(),
                tries
            ),
            None => format!(
                "it never reached boot-complete.target in {tries} boots (kernel, initramfs or early boot failure); the boot loader fell back to the previous deployment"
            ),
        };
        let version = oxtree_object::Checksum::from_hex(&failed.csum)
            .ok()
            .and_then(|c| self.repo().load_commit(&c).ok())
            .and_then(|c| c.metadata.get_str("version").map(str::to_string));
        let record = AutoRollback {
            failed: failed_id,
            failed_version: version,
            restored: DeploymentId::of(&booted),
            tries,
            reason,
            health_failures: failures,
            time: now(),
        };
        // Record first: a power cut after it and before the swap repeats
        // the same rollback at the next boot.
        self.write_json(ROLLBACK, &record)?;
        let mut list = vec![booted.clone()];
        list.extend(
            self.deployments()
                .iter()
                .filter(|d| !d.same(&booted))
                .cloned(),
        );
        self.write_deployments(list)?;
        clear(self)?;
        Ok(BootComplete::RolledBack(record))
    }
}

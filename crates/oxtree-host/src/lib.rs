//! The host's transactions as a library: what `oxtree admin
//! upgrade|switch|deploy|rollback|cleanup|status|set-origin|unlock` and `oxtree
//! install|uninstall|override` do, for the CLI and for an agent (oxtreed)
//! alike, so that no front end re-implements a transaction.
//!
//! - Every mutation opens the sysroot with its exclusive lock
//!   (`ostree/lock`) and holds it for its whole length; with
//!   [`LockMode::Try`] a held lock is [`HostError::Busy`] instead of a wait.
//! - Each returns a typed outcome ([`UpgradeOutcome`], [`Transaction`],
//!   [`LayerOutcome`], …) carrying what a front end needs to render it;
//!   "no update" is an outcome, not an error.
//! - Progress goes to a [`Reporter`] as [`Event`]s; a [`Cancel`] token
//!   stops a pull between objects and a layering build between steps.
//! - Plain and layered deployments share one [`Origin`] type and one
//!   upgrader (same origin deployment, same downgrade check); an origin
//!   may follow a container image instead (`image`: pulled with
//!   `oxtree_container`, its commit deployed).
//! - [`status`] returns the serializable, bootc-shaped [`Host`].
//! - Containers bound to an image (`/usr/lib/bootc/bound-images.d`) are
//!   pulled before it is deployed and removed when no deployment needs
//!   them ([`bound`]).
//! - The library never prints.

pub mod auto_rollback;
pub mod bound;
mod error;
mod image;
mod inplace;
mod layer;
mod ops;
mod origin;
mod progress;
mod reboot;
mod status;
mod upgrade;

pub use error::{HostError, Result};
pub use image::deploy_image;
pub use inplace::{
    check_set_origin, config_diff, init_stateroot, set_origin, unlock, SetOriginOutcome,
    SetOriginRequest, UnlockMode, UnlockOutcome,
};
pub use layer::{change_packages, DryRun, LayerOutcome, PackageChange, PackagesRequest};
pub use ops::{
    cleanup, cleanup_locked, deploy, edit_kargs, karg_base, pin, proc_cmdline_kargs, rollback,
    set_default, undeploy, Applied, DeployRequest, LayeredBuild, RollbackOutcome, Transaction,
    UndeployOutcome,
};
pub use origin::{is_image_reference, Origin};
pub use progress::{Cancel, Event, LayerStep, NullReporter, PullProgress, Reporter};
pub use reboot::{CommandReboot, Reboot, SystemctlReboot};
pub use status::{
    status, BootEntry, DeploymentRow, Host, HostSpec, HostStatus, ImageReference, ImageStatus,
    API_VERSION,
};
pub use upgrade::{
    check_update, switch, upgrade, CheckOutcome, SwitchRequest, UpgradeOutcome, UpgradeRequest,
};

use oxtree_sysroot::{Sysroot, SysrootError};
use std::path::PathBuf;
use std::sync::Arc;

/// How a transaction waits for the sysroot lock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LockMode {
    /// Block until the lock is free (the CLI, as ostree does).
    #[default]
    Wait,
    /// Fail at once with [`HostError::Busy`] (an agent that queues).
    Try,
}

/// Where the transactions run and what they report to.
#[derive(Clone)]
pub struct Context {
    /// The sysroot (`/` on a booted host).
    pub sysroot: PathBuf,
    /// Runtime state (`/run`): the staged deployment, unlock state.
    pub run_dir: PathBuf,
    pub reporter: Arc<dyn Reporter>,
    pub cancel: Cancel,
    /// Asked to reboot after a deploy that requested it.
    pub reboot: Arc<dyn Reboot>,
    pub lock: LockMode,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("sysroot", &self.sysroot)
            .field("run_dir", &self.run_dir)
            .field("cancel", &self.cancel)
            .field("lock", &self.lock)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// Defaults: no progress, a fresh cancel token, `systemctl reboot`,
    /// waiting for the lock.
    pub fn new(sysroot: impl Into<PathBuf>, run_dir: impl Into<PathBuf>) -> Context {
        Context {
            sysroot: sysroot.into(),
            run_dir: run_dir.into(),
            reporter: Arc::new(NullReporter),
            cancel: Cancel::new(),
            reboot: Arc::new(SystemctlReboot),
            lock: LockMode::Wait,
        }
    }

    pub fn with_reporter(mut self, r: Arc<dyn Reporter>) -> Context {
        self.reporter = r;
        self
    }

    pub fn with_cancel(mut self, c: Cancel) -> Context {
        self.cancel = c;
        self
    }

    pub fn with_reboot(mut self, r: Arc<dyn Reboot>) -> Context {
        self.reboot = r;
        self
    }

    pub fn with_lock(mut self, l: LockMode) -> Context {
        self.lock = l;
        self
    }

    pub(crate) fn report(&self, e: Event) {
        self.reporter.report(e);
    }

    pub(crate) fn say(&self, text: impl Into<String>) {
        self.report(Event::Message { text: text.into() });
    }

    /// Open the sysroot holding its lock (see [`LockMode`]).
    pub fn open_locked(&self) -> Result<Sysroot> {
        let p = &self.sysroot;
        let r = match self.lock {
            LockMode::Wait => Sysroot::open_locked(p),
            LockMode::Try => Sysroot::try_open_locked(p),
        };
        let mut s = r.map_err(|e| match e {
            // It says "opening sysroot P" itself.
            e @ SysrootError::OpenDir { .. } => HostError::from(e),
            e => HostError::from(e).context(format!("opening sysroot {}", p.display())),
        })?;
        s.set_run_dir(&self.run_dir)?;
        Ok(s)
    }

    /// Open the sysroot without its lock (read-only uses: status).
    pub fn open_unlocked(&self) -> Result<Sysroot> {
        let mut s = Sysroot::open(&self.sysroot)?;
        s.set_run_dir(&self.run_dir)?;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn try_lock_is_busy_while_held() {
        let d = tempfile::tempdir().unwrap();
        oxtree_sysroot::init_fs(d.path(), false).unwrap();
        let cx = Context::new(d.path(), d.path().join("run")).with_lock(LockMode::Try);
        let held = Sysroot::open_locked(d.path()).unwrap();
        let e = cleanup(&cx).unwrap_err();
        assert_eq!(e.kind(), "busy", "{e}");
        drop(held);
        // From here on, wait for the lock: another test's child process
        // may hold a copy of our lock's file description for the instant
        // between its fork and its exec.
        let cx = Context::new(d.path(), d.path().join("run"));
        cleanup(&cx).unwrap();
        // A sysroot with nothing deployed: nothing to upgrade, a bad request.
        let e = upgrade(&cx, &UpgradeRequest::default()).unwrap_err();
        assert_eq!(e.kind(), "bad-request", "{e}");
        let e = upgrade(
            &cx,
            &UpgradeRequest {
                pull_only: true,
                deploy_only: true,
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("Cannot simultaneously"), "{e}");
        let h = status(&cx).unwrap();
        assert_eq!(h.api_version, API_VERSION);
        assert!(h.deployments.is_empty());
    }
}

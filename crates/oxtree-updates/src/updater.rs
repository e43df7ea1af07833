//! The update loop (Zincati's role) over `oxtree-host`'s transactions.
//!
//! One [`Updater::run_once`] is one pass of a small state machine whose
//! state survives reboots in `STATE_DIR/state.json`:
//!
//! 1. **After a reboot** into an update (`pending` in the state):
//!    - the boot loader fell back and `boot-complete` recorded an
//!      automatic rollback of that deployment → [`Step::RolledBack`]: the
//!      node keeps its FleetLock slot (it never calls `steady-state`, or,
//!      with `report_rollback`, calls it with oxtree's `rolled_back`
//!      extension, which oxtree's server answers by keeping the slot and
//!      halting a canary rollout), remembers the failed commit and never
//!      stages it again;
//!    - the deployment runs but its boot is not blessed yet (a try counter
//!      is running) → [`Step::WaitingForBoot`];
//!    - it runs and is blessed → `steady-state` (releases the slot) →
//!      [`Step::SteadyState`].
//! 2. **At start-up** (first pass of a process) a healthy node that did
//!    not roll back reports `steady-state`, as Zincati does, so a slot
//!    held across a crash is given back.
//! 3. **Check** the origin's remote (`check_update`: pulls, deploys
//!    nothing); stage the new commit (`upgrade --stage`), unless one is
//!    staged already.
//! 4. **Gates**: wait for a maintenance window, then take the lock
//!    (`pre-reboot`); both compose.
//! 5. Record the pending update and run the reboot command.
//!
//! "Current" is the booted deployment, or, on a sysroot that is not
//! booted (an image, tests), the default one (index 0): a test "reboots"
//! such a host by finalizing its staged deployment.

use crate::config::{window_state, Config};
use crate::error::{Result, UpdatesError};
use chrono::Utc;
use oxtree_fleetlock::{Client, ClientError, ClientParams, RolledBack, Rollout};
use oxtree_host::{Cancel, CommandReboot, Context, Host, Reboot, UpgradeOutcome, UpgradeRequest};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What one pass did or is waiting for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Step {
    /// `[updates] enabled` is false.
    Disabled,
    /// Running `version`, healthy; the slot was released.
    SteadyState { version: String },
    /// `steady-state` could not be reported (the server refused or is
    /// unreachable); retried at the next pass before anything else.
    SteadyStateFailed {
        version: String,
        kind: Option<String>,
        why: String,
    },
    /// The reboot into `from` failed its boot and the host rolled back;
    /// the slot is kept.
    RolledBack { from: String, reason: String },
    /// The new deployment runs but has not reached boot-complete yet.
    WaitingForBoot { version: String },
    /// The reboot command ran; the host has not come back yet.
    WaitingForReboot { version: String },
    /// The remote has nothing newer than `version`.
    NoUpdate { version: String },
    /// `version` is available but rolled back here before: not retried.
    Skipped { version: String, why: String },
    /// Staged `version`; the window opens at `next` (RFC 3339, UTC).
    WaitingForWindow { version: String, next: String },
    /// Staged `version`; the lock server said no (its error `kind`, or
    /// none when it could not be reached).
    WaitingForLock {
        version: String,
        kind: Option<String>,
        why: String,
    },
    /// Holding the lock, the reboot command ran for `version`.
    Rebooting { version: String },
    /// The pass failed (pull, stage, reboot command).
    Failed { error: String },
}

/// A deployment as the state names it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub checksum: String,
    pub version: Option<String>,
}

impl Target {
    /// The version to show and send: the commit's `version`, else its
    /// checksum.
    pub fn name(&self) -> String {
        self.version
            .clone()
            .unwrap_or_else(|| self.checksum.clone())
    }
}

/// An update the host rebooted into (or is about to).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pending {
    pub target: Target,
    pub from: Target,
    /// RFC 3339.
    pub since: String,
}

/// An update that rolled back here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RollbackRecord {
    pub failed: Target,
    pub reason: String,
    /// The rollback was reported to the lock server.
    pub reported: bool,
    pub time: String,
}

/// The last pass.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Last {
    #[serde(flatten)]
    pub step: Step,
    /// RFC 3339.
    pub time: String,
}

/// `STATE_DIR/state.json`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<Pending>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolled_back: Option<RollbackRecord>,
    /// The last deployment reported in steady state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steady: Option<Target>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<Last>,
}

const STATE_FILE: &str = "state.json";

impl State {
    pub fn load(dir: &Path) -> Result<State> {
        let p = dir.join(STATE_FILE);
        match std::fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| UpdatesError::Invalid(format!("{}: {e}", p.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(UpdatesError::io(&p, e)),
        }
    }

    fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| UpdatesError::io(dir, e))?;
        let tmp = dir.join(".state.json.tmp");
        let text = serde_json::to_vec_pretty(self).expect("serializing the state");
        std::fs::write(&tmp, text).map_err(|e| UpdatesError::io(&tmp, e))?;
        std::fs::rename(&tmp, dir.join(STATE_FILE)).map_err(|e| UpdatesError::io(&tmp, e))
    }
}

/// What `oxtree updates status` and `GET /v1/updates` show.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub enabled: bool,
    pub strategy: crate::config::Strategy,
    pub group: String,
    pub node_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fleet_lock: Option<String>,
    pub windows: Vec<crate::config::Window>,
    pub interval_secs: u64,
    pub state: State,
}

impl Status {
    /// The status of a loop with this config and state directory (it
    /// need not be running).
    pub fn of(cfg: &Config, node_id: &str, state_dir: &Path) -> Result<Status> {
        Ok(Status {
            enabled: cfg.enabled,
            strategy: cfg.strategy,
            group: cfg.group.clone(),
            node_id: node_id.to_string(),
            fleet_lock: cfg.fleet_lock.as_ref().map(|f| f.base_url.clone()),
            windows: cfg.windows.clone(),
            interval_secs: cfg.interval.as_secs(),
            state: State::load(state_dir)?,
        })
    }
}

/// Called with every step (on the loop's thread).
pub type StepObserver = Arc<dyn Fn(&Step) + Send + Sync>;

pub struct Updater {
    cfg: Config,
    node_id: String,
    cx: Context,
    state_dir: PathBuf,
    reboot: Arc<dyn Reboot>,
    client: Option<Client>,
    rt: tokio::runtime::Runtime,
    /// The update this process ran the reboot command for.
    rebooted_to: Mutex<Option<String>>,
    started: AtomicBool,
    observer: StepObserver,
}

impl std::fmt::Debug for Updater {
    // The reboot hook, the runtime and the observer show nothing useful.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Updater")
            .field("cfg", &self.cfg)
            .field("node_id", &self.node_id)
            .field("state_dir", &self.state_dir)
            .finish_non_exhaustive()
    }
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn why(e: &ClientError) -> (Option<String>, String) {
    match e {
        ClientError::Refused { kind, value, .. } => (Some(kind.clone()), value.clone()),
        e => (None, oxtree_io::Chain(e).to_string()),
    }
}

impl Updater {
    /// `cx` is the host the loop updates (its reboot hook is used unless
    /// the config names a `reboot_command`); the state lives in
    /// `state_dir`.
    pub fn new(cfg: Config, node_id: String, cx: Context, state_dir: &Path) -> Result<Updater> {
        let client = match &cfg.fleet_lock {
            Some(f) => {
                Some(
                    Client::new(&f.base_url, f.timeout).map_err(|e| UpdatesError::Config {
                        path: "[updates.fleet_lock] base_url".into(),
                        msg: e.to_string(),
                    })?,
                )
            }
            None => None,
        };
        let reboot: Arc<dyn Reboot> = match &cfg.reboot_command {
            Some(c) => Arc::new(CommandReboot(c.clone())),
            None => Arc::clone(&cx.reboot),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| UpdatesError::io(Path::new("tokio runtime"), e))?;
        Ok(Updater {
            cfg,
            node_id,
            cx,
            state_dir: state_dir.to_path_buf(),
            reboot,
            client,
            rt,
            rebooted_to: Mutex::new(None),
            started: AtomicBool::new(false),
            observer: Arc::new(|_| {}),
        })
    }

    pub fn with_observer(mut self, o: StepObserver) -> Updater {
        self.observer = o;
        self
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn status(&self) -> Result<Status> {
        Status::of(&self.cfg, &self.node_id, &self.state_dir)
    }

    /// Passes every `interval` until `cancel` is set. A failed pass is
    /// recorded (and observed) and the loop goes on.
    pub fn run(&self, cancel: &Cancel) {
        while !cancel.is_cancelled() {
            let _ = self.run_once();
            let t = Instant::now();
            while t.elapsed() < self.cfg.interval && !cancel.is_cancelled() {
                std::thread::sleep(Duration::from_millis(100).min(self.cfg.interval));
            }
        }
    }

    /// One pass; the step is also recorded in the state and observed.
    pub fn run_once(&self) -> Result<Step> {
        let r = self.pass();
        let step = match &r {
            Ok(s) => s.clone(),
            Err(e) => Step::Failed {
                error: oxtree_io::Chain(e).to_string(),
            },
        };
        (self.observer)(&step);
        if let Ok(mut st) = State::load(&self.state_dir) {
            st.last = Some(Last {
                step: step.clone(),
                time: now(),
            });
            let _ = st.save(&self.state_dir);
        }
        r
    }

    fn lock_call(&self, pre: bool, rollout: Rollout) -> Result<(), ClientError> {
        let Some(c) = &self.client else {
            return Ok(());
        };
        let params = ClientParams {
            id: self.node_id.clone(),
            group: self.cfg.group.clone(),
        };
        self.rt.block_on(async {
            if pre {
                c.pre_reboot(&params, Some(&rollout)).await
            } else {
                c.steady_state(&params, Some(&rollout)).await
            }
        })
    }

    fn report_rollback(&self, rb: &RollbackRecord, current: &Target) -> bool {
        let wants = self.cfg.uses_lock()
            && self
                .cfg
                .fleet_lock
                .as_ref()
                .is_some_and(|f| f.report_rollback);
        if !wants {
            return true;
        }
        self.lock_call(
            false,
            Rollout {
                version: Some(current.name()),
                rolled_back: Some(RolledBack {
                    from: rb.failed.name(),
                    reason: rb.reason.clone(),
                }),
            },
        )
        .is_ok()
    }

    fn pass(&self) -> Result<Step> {
        if !self.cfg.enabled {
            return Ok(Step::Disabled);
        }
        let first = !self.started.swap(true, Ordering::SeqCst);
        let mut st = State::load(&self.state_dir)?;
        let host = oxtree_host::status(&self.cx)?;
        let current =
            current(&host).ok_or_else(|| UpdatesError::Invalid("nothing is deployed".into()))?;
        let lock = self.cfg.uses_lock();

        // 1. After a reboot into an update.
        if let Some(p) = st.pending.clone() {
            let rolled = host
                .status
                .automatic_rollback
                .as_ref()
                .filter(|a| a.failed.checksum == p.target.checksum && current != p.target);
            if let Some(a) = rolled {
                let mut rb = RollbackRecord {
                    failed: p.target.clone(),
                    reason: a.reason.clone(),
                    reported: false,
                    time: now(),
                };
                rb.reported = self.report_rollback(&rb, &current);
                st.pending = None;
                st.rolled_back = Some(rb.clone());
                st.save(&self.state_dir)?;
                return Ok(Step::RolledBack {
                    from: rb.failed.name(),
                    reason: rb.reason,
                });
            }
            if current.checksum == p.target.checksum {
                if host.status.boot_tries_left.is_some() {
                    return Ok(Step::WaitingForBoot {
                        version: current.name(),
                    });
                }
                if let Err(e) = self.steady(&current) {
                    let (kind, why) = why(&e);
                    return Ok(Step::SteadyStateFailed {
                        version: current.name(),
                        kind,
                        why,
                    });
                }
                st.pending = None;
                st.rolled_back = None;
                st.steady = Some(current.clone());
                st.save(&self.state_dir)?;
                return Ok(Step::SteadyState {
                    version: current.name(),
                });
            }
            let ran_here =
                self.rebooted_to.lock().unwrap().as_deref() == Some(p.target.checksum.as_str());
            if ran_here {
                return Ok(Step::WaitingForReboot {
                    version: p.target.name(),
                });
            }
            // A new process, and the host does not run the update: the
            // reboot never happened (or did not apply it). Start over;
            // the lock is recursive.
            st.pending = None;
            st.save(&self.state_dir)?;
        }

        // 2. Steady state at start-up (never after a rollback: the slot
        // stays taken).
        if let Some(rb) = st.rolled_back.clone() {
            if !rb.reported && self.report_rollback(&rb, &current) {
                st.rolled_back = Some(RollbackRecord {
                    reported: true,
                    ..rb
                });
                st.save(&self.state_dir)?;
            }
        } else if lock && (first || st.steady.as_ref() != Some(&current)) {
            if let Err(e) = self.steady(&current) {
                self.started.store(false, Ordering::SeqCst);
                let (kind, why) = why(&e);
                return Ok(Step::SteadyStateFailed {
                    version: current.name(),
                    kind,
                    why,
                });
            }
            st.steady = Some(current.clone());
            st.save(&self.state_dir)?;
        }

        // 3. Check and stage.
        let failed = st.rolled_back.as_ref().map(|r| r.failed.checksum.clone());
        let target = match staged(&host) {
            Some(t) => t,
            None => {
                let chk = oxtree_host::check_update(&self.cx, None)?;
                if !chk.available {
                    return Ok(Step::NoUpdate {
                        version: current.name(),
                    });
                }
                if failed.as_deref() == Some(chk.latest.to_hex().as_str()) {
                    return Ok(Step::Skipped {
                        version: st.rolled_back.as_ref().unwrap().failed.name(),
                        why: "it rolled back on this host".into(),
                    });
                }
                let req = UpgradeRequest {
                    deploy_only: true,
                    stage: true,
                    ..Default::default()
                };
                let out = oxtree_host::upgrade(&self.cx, &req)?;
                if !matches!(out, UpgradeOutcome::Applied(_)) {
                    return Ok(Step::NoUpdate {
                        version: current.name(),
                    });
                }
                staged(&oxtree_host::status(&self.cx)?).ok_or_else(|| {
                    UpdatesError::Invalid("the update was staged but is not listed".into())
                })?
            }
        };
        if failed.as_deref() == Some(target.checksum.as_str()) {
            return Ok(Step::Skipped {
                version: target.name(),
                why: "it rolled back on this host".into(),
            });
        }

        // 4. Gates: window, then lock.
        if self.cfg.uses_windows() {
            if let Err(next) = window_state(&self.cfg.windows, Utc::now()) {
                return Ok(Step::WaitingForWindow {
                    version: target.name(),
                    next: next.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                });
            }
        }
        if lock {
            let r = self.lock_call(
                true,
                Rollout {
                    version: Some(target.name()),
                    rolled_back: None,
                },
            );
            if let Err(e) = r {
                let (kind, why) = why(&e);
                return Ok(Step::WaitingForLock {
                    version: target.name(),
                    kind,
                    why,
                });
            }
        }

        // 5. Reboot.
        st.pending = Some(Pending {
            target: target.clone(),
            from: current,
            since: now(),
        });
        st.save(&self.state_dir)?;
        *self.rebooted_to.lock().unwrap() = Some(target.checksum.clone());
        if let Err(e) = self.reboot.reboot() {
            *self.rebooted_to.lock().unwrap() = None;
            st.pending = None;
            st.save(&self.state_dir)?;
            return Err(UpdatesError::Reboot(e));
        }
        Ok(Step::Rebooting {
            version: target.name(),
        })
    }

    fn steady(&self, current: &Target) -> Result<(), ClientError> {
        if !self.cfg.uses_lock() {
            return Ok(());
        }
        self.lock_call(
            false,
            Rollout {
                version: Some(current.name()),
                rolled_back: None,
            },
        )
    }
}

/// The booted deployment, else the default one.
fn current(h: &Host) -> Option<Target> {
    let r = h
        .deployments
        .iter()
        .find(|r| r.booted)
        .or_else(|| h.deployments.iter().find(|r| r.index == Some(0)))?;
    Some(Target {
        checksum: r.checksum.clone(),
        version: r.version.clone(),
    })
}

fn staged(h: &Host) -> Option<Target> {
    h.deployments.iter().find(|r| r.staged).map(|r| Target {
        checksum: r.checksum.clone(),
        version: r.version.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trip_and_steps_serialize() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(State::load(d.path()).unwrap(), State::default());
        let st = State {
            rolled_back: Some(RollbackRecord {
                failed: Target {
                    checksum: "ab".into(),
                    version: Some("2".into()),
                },
                reason: "health check x failed".into(),
                reported: true,
                time: now(),
            }),
            last: Some(Last {
                step: Step::WaitingForLock {
                    version: "2".into(),
                    kind: Some("canary_pending".into()),
                    why: "w".into(),
                },
                time: now(),
            }),
            ..Default::default()
        };
        st.save(d.path()).unwrap();
        assert_eq!(State::load(d.path()).unwrap(), st);
        let v = serde_json::to_value(&st).unwrap();
        assert_eq!(v["last"]["step"], "waiting-for-lock");
        assert_eq!(v["last"]["kind"], "canary_pending");
        assert_eq!(v["rolledBack"]["failed"]["version"], "2");
        std::fs::write(d.path().join(STATE_FILE), "{").unwrap();
        assert!(State::load(d.path()).is_err());
    }

    #[test]
    fn disabled_does_nothing() {
        let d = tempfile::tempdir().unwrap();
        let cx = Context::new(d.path().join("nosysroot"), d.path().join("run"));
        let u = Updater::new(Config::default(), "n".into(), cx, &d.path().join("state")).unwrap();
        assert_eq!(u.run_once().unwrap(), Step::Disabled);
        assert_eq!(u.status().unwrap().state.last.unwrap().step, Step::Disabled);
    }
}

//! Operations: every mutation becomes an operation resource that waits in
//! a FIFO queue and runs on one worker thread, one at a time, through
//! `oxtree_host`. Each keeps its numbered events (for resumable
//! Server-Sent Events), its state and its result; it can be cancelled
//! while queued (it never starts) or while running (through the host
//! library's `Cancel` token).
//!
//! The sysroot lock is taken with `LockMode::Try`: while another process
//! (an `oxtree admin` run by hand) holds it, the operation stays running
//! and retries, still cancellable, instead of failing "busy".

use crate::audit::Audit;
use crate::auth::Principal;
use crate::request::{OpRequest, UpgradeMode};
use oxtree_host::{Cancel, Context, Event, HostError, LockMode, Reboot};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Finished operations kept for `GET /v1/operations` (the oldest go).
const KEEP_FINISHED: usize = 64;
/// Pull counters are kept at most this often (the last one always
/// arrives as `pull-done`).
const PULL_EVENT_INTERVAL: Duration = Duration::from_millis(100);
/// How long to wait before trying a held sysroot lock again.
const BUSY_RETRY: Duration = Duration::from_millis(200);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl State {
    pub fn finished(self) -> bool {
        matches!(self, State::Succeeded | State::Failed | State::Cancelled)
    }
}

/// An operation's failure, as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ErrorBody {
    /// `busy`, `bad-request`, `cancelled`, `failed`.
    pub kind: String,
    pub message: String,
}

/// What `GET /v1/operations/{id}` returns.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationView {
    pub id: String,
    pub kind: String,
    pub state: State,
    pub request: Value,
    pub created_by: String,
    pub created: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished: Option<String>,
    /// Whether a cancel was asked for.
    pub cancel_requested: bool,
    /// Number of events so far (the last event id).
    pub events: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
    /// Where its events stream.
    pub events_url: String,
}

struct Progress {
    state: State,
    started: Option<String>,
    finished: Option<String>,
    /// JSON events; event id N is `events[N-1]`.
    events: Vec<Value>,
    last_pull: Option<Instant>,
    result: Option<Value>,
    error: Option<ErrorBody>,
}

pub struct Operation {
    pub id: u64,
    pub request: OpRequest,
    pub created_by: Principal,
    created: String,
    pub cancel: Cancel,
    progress: Mutex<Progress>,
    /// Bumped on every new event and state change; event streams wait on it.
    changed: tokio::sync::watch::Sender<u64>,
}

impl std::fmt::Debug for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Operation")
            .field("id", &self.id)
            .field("request", &self.request)
            .field("created", &self.created)
            .finish_non_exhaustive()
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Operation {
    pub fn view(&self) -> OperationView {
        let p = self.progress.lock().unwrap();
        OperationView {
            id: self.id.to_string(),
            kind: self.request.kind().to_string(),
            state: p.state,
            request: serde_json::to_value(&self.request).unwrap_or(Value::Null),
            created_by: self.created_by.name.clone(),
            created: self.created.clone(),
            started: p.started.clone(),
            finished: p.finished.clone(),
            cancel_requested: self.cancel.is_cancelled(),
            events: p.events.len() as u64,
            result: p.result.clone(),
            error: p.error.clone(),
            events_url: format!("/v1/operations/{}/events", self.id),
        }
    }

    pub fn state(&self) -> State {
        self.progress.lock().unwrap().state
    }

    /// Events after id `after` (ids count from 1), and whether the
    /// operation is finished.
    pub fn events_after(&self, after: u64) -> (Vec<(u64, Value)>, bool) {
        let p = self.progress.lock().unwrap();
        let from = (after as usize).min(p.events.len());
        let v = p.events[from..]
            .iter()
            .enumerate()
            .map(|(i, e)| ((from + i + 1) as u64, e.clone()))
            .collect();
        (v, p.state.finished())
    }

    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn push(&self, p: &mut Progress, e: Value) {
        p.events.push(e);
        self.changed.send_replace(p.events.len() as u64);
    }

    fn report(&self, e: Event) {
        let mut p = self.progress.lock().unwrap();
        if matches!(e, Event::Pull(_)) {
            let now = Instant::now();
            if p.last_pull
                .is_some_and(|t| now.duration_since(t) < PULL_EVENT_INTERVAL)
            {
                return;
            }
            p.last_pull = Some(now);
        }
        if let Ok(v) = serde_json::to_value(&e) {
            self.push(&mut p, v);
        }
    }

    fn set_state(&self, s: State) {
        let mut p = self.progress.lock().unwrap();
        p.state = s;
        match s {
            State::Running => p.started = Some(now()),
            s if s.finished() => p.finished = Some(now()),
            _ => {}
        }
        self.push(&mut p, json!({"type": "state", "state": s}));
    }

    /// Record the outcome; the final state is published by
    /// [`Operation::set_state`] after the audit record is written, so that
    /// a client that saw the end also finds it in the audit log.
    fn finish(&self, r: std::result::Result<Value, HostError>) -> State {
        let state = {
            let mut p = self.progress.lock().unwrap();
            match r {
                Ok(v) => {
                    p.result = Some(v);
                    State::Succeeded
                }
                Err(HostError::Cancelled) => {
                    p.error = Some(ErrorBody {
                        kind: "cancelled".into(),
                        message: "cancelled".into(),
                    });
                    State::Cancelled
                }
                Err(e) => {
                    p.error = Some(ErrorBody {
                        kind: e.kind().into(),
                        message: error_chain(&e),
                    });
                    State::Failed
                }
            }
        };
        state
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    oxtree_io::Chain(e).to_string()
}

/// Where operations run.
pub struct HostConfig {
    pub sysroot: PathBuf,
    pub run_dir: PathBuf,
    pub reboot: Arc<dyn Reboot>,
}

impl std::fmt::Debug for HostConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostConfig")
            .field("sysroot", &self.sysroot)
            .field("run_dir", &self.run_dir)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Queue {
    ops: BTreeMap<u64, Arc<Operation>>,
    waiting: VecDeque<u64>,
    next_id: u64,
    shutdown: bool,
}

/// The operations and their worker.
pub struct Operations {
    q: Mutex<Queue>,
    wake: Condvar,
    host: HostConfig,
    audit: Arc<Audit>,
    worker: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for Operations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Operations")
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

/// Why a cancel was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum CancelError {
    NotFound,
    /// Already finished (in this state).
    Finished(State),
}

impl Operations {
    /// The registry, with its worker thread started.
    pub fn start(host: HostConfig, audit: Arc<Audit>) -> Arc<Operations> {
        let ops = Arc::new(Operations {
            q: Mutex::new(Queue {
                next_id: 1,
                ..Queue::default()
            }),
            wake: Condvar::new(),
            host,
            audit,
            worker: Mutex::new(None),
        });
        let w = Arc::clone(&ops);
        let h = std::thread::Builder::new()
            .name("oxtreed-worker".into())
            .spawn(move || w.worker())
            .expect("spawning the worker thread");
        *ops.worker.lock().unwrap() = Some(h);
        ops
    }

    /// A context for read-only calls (status).
    pub fn context(&self) -> Context {
        Context::new(&self.host.sysroot, &self.host.run_dir)
    }

    /// Queue `request` on behalf of `who`.
    pub fn submit(&self, request: OpRequest, who: Principal) -> Arc<Operation> {
        let mut q = self.q.lock().unwrap();
        let id = q.next_id;
        q.next_id += 1;
        let (tx, _) = tokio::sync::watch::channel(0);
        let op = Arc::new(Operation {
            id,
            request,
            created_by: who,
            created: now(),
            cancel: Cancel::new(),
            progress: Mutex::new(Progress {
                state: State::Queued,
                started: None,
                finished: None,
                events: vec![json!({"type": "state", "state": State::Queued})],
                last_pull: None,
                result: None,
                error: None,
            }),
            changed: tx,
        });
        q.ops.insert(id, Arc::clone(&op));
        q.waiting.push_back(id);
        // Forget the oldest finished operations.
        let finished: Vec<u64> = q
            .ops
            .values()
            .filter(|o| o.state().finished())
            .map(|o| o.id)
            .collect();
        for id in finished
            .iter()
            .take(finished.len().saturating_sub(KEEP_FINISHED))
        {
            q.ops.remove(id);
        }
        self.wake.notify_all();
        op
    }

    pub fn get(&self, id: u64) -> Option<Arc<Operation>> {
        self.q.lock().unwrap().ops.get(&id).cloned()
    }

    pub fn list(&self) -> Vec<OperationView> {
        let ops: Vec<_> = self.q.lock().unwrap().ops.values().cloned().collect();
        ops.iter().map(|o| o.view()).collect()
    }

    /// Cancel: a queued operation never starts; a running one stops at
    /// its next check.
    pub fn cancel(&self, id: u64) -> std::result::Result<Arc<Operation>, CancelError> {
        let mut q = self.q.lock().unwrap();
        let op = q.ops.get(&id).cloned().ok_or(CancelError::NotFound)?;
        match op.state() {
            State::Queued => {
                q.waiting.retain(|&w| w != id);
                drop(q);
                op.cancel.cancel();
                let st = op.finish(Err(HostError::Cancelled));
                self.audit_end(&op, st);
                op.set_state(st);
            }
            State::Running => op.cancel.cancel(),
            s => return Err(CancelError::Finished(s)),
        }
        Ok(op)
    }

    /// Shutting down: cancel every operation not finished (the running
    /// one stops at its next check, leaving nothing half-deployed), stop
    /// the worker, and wait up to `grace` for it.
    pub fn shutdown(&self, grace: Duration) {
        let pending: Vec<u64> = {
            let mut q = self.q.lock().unwrap();
            q.shutdown = true;
            q.ops
                .values()
                .filter(|o| !o.state().finished())
                .map(|o| o.id)
                .collect()
        };
        for id in pending {
            let _ = self.cancel(id);
        }
        self.wake.notify_all();
        let t = Instant::now();
        while t.elapsed() < grace {
            if self
                .worker
                .lock()
                .unwrap()
                .as_ref()
                .is_none_or(|h| h.is_finished())
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn worker(self: Arc<Self>) {
        loop {
            let op = {
                let mut q = self.q.lock().unwrap();
                loop {
                    if q.shutdown {
                        return;
                    }
                    if let Some(id) = q.waiting.pop_front() {
                        if let Some(op) = q.ops.get(&id).cloned() {
                            // Under the queue lock: `cancel` sees either
                            // queued-and-waiting or running, never between.
                            op.set_state(State::Running);
                            break op;
                        }
                    } else {
                        q = self.wake.wait(q).unwrap();
                    }
                }
            };
            let r = self.run(&op);
            let st = op.finish(r);
            self.audit_end(&op, st);
            op.set_state(st);
        }
    }

    fn audit_end(&self, op: &Operation, state: State) {
        let v = op.view();
        let result = match &v.error {
            None => format!("{state:?}").to_lowercase(),
            Some(e) => format!("{}: {}", e.kind, e.message),
        };
        self.audit.record(
            &op.created_by.name,
            op.request.kind(),
            json!({"operation": v.id, "request": v.request, "outcome": v.result}),
            &result,
        );
    }

    /// Run the operation, retrying while another process holds the lock.
    fn run(&self, op: &Arc<Operation>) -> std::result::Result<Value, HostError> {
        let rep = Arc::clone(op);
        let cx = Context::new(&self.host.sysroot, &self.host.run_dir)
            .with_reporter(Arc::new(move |e: Event| rep.report(e)))
            .with_cancel(op.cancel.clone())
            .with_reboot(Arc::clone(&self.host.reboot))
            .with_lock(LockMode::Try);
        let mut said = false;
        loop {
            op.cancel.check()?;
            match execute(&cx, &op.request) {
                Err(HostError::Busy(m)) => {
                    if !said {
                        op.report(Event::Message {
                            text: format!("Waiting for the sysroot lock ({m})"),
                        });
                        said = true;
                    }
                    std::thread::sleep(BUSY_RETRY);
                }
                r => return r,
            }
        }
    }
}

/// One transaction through `oxtree_host`, its outcome as JSON.
fn execute(cx: &Context, r: &OpRequest) -> std::result::Result<Value, HostError> {
    use oxtree_host as h;
    match r {
        OpRequest::Upgrade(u) => {
            if u.mode == UpgradeMode::Check {
                let c = h::check_update(cx, u.os.as_deref())?;
                return Ok(json!({
                    "outcome": if c.available { "update-available" } else { "no-change" },
                    "current": c.current.to_hex(),
                    "latest": c.latest.to_hex(),
                }));
            }
            let req = h::UpgradeRequest {
                os: u.os.clone(),
                allow_downgrade: u.allow_downgrade,
                override_commit: u.override_commit.clone(),
                stage: u.mode == UpgradeMode::Stage,
                reboot: u.mode == UpgradeMode::Apply,
                pull_only: u.mode == UpgradeMode::PullOnly,
                deploy_only: u.mode == UpgradeMode::DeployOnly,
            };
            Ok(match h::upgrade(cx, &req)? {
                h::UpgradeOutcome::NoChange => json!({"outcome": "no-change"}),
                h::UpgradeOutcome::PulledOnly => json!({"outcome": "pulled-only"}),
                h::UpgradeOutcome::Applied(t) => transaction(&t),
            })
        }
        OpRequest::Rollback(b) => {
            let o = h::rollback(cx, b.reboot)?;
            Ok(json!({
                "outcome": "rolled-back",
                "deployment": o.default.name(),
                "checksum": o.default.csum,
                "rebooted": o.rebooted,
            }))
        }
        OpRequest::Undeploy(i) => {
            let o = h::undeploy(cx, i.index)?;
            Ok(json!({
                "outcome": "undeployed",
                "deployment": o.deployment.name(),
                "checksum": o.deployment.csum,
                "freedBytes": o.cleanup.prune.freed,
            }))
        }
        OpRequest::SetDefault(i) => {
            let (d, _) = h::set_default(cx, i.index)?;
            Ok(json!({
                "outcome": "default-set",
                "deployment": d.name(),
                "checksum": d.csum,
            }))
        }
        OpRequest::Pin(p) => {
            let changes = h::pin(cx, &p.indexes, !p.unpin)?;
            Ok(json!({
                "outcome": if p.unpin { "unpinned" } else { "pinned" },
                "changes": changes.iter().map(|(i, c)| json!({"index": i, "changed": c})).collect::<Vec<_>>(),
            }))
        }
        OpRequest::Deploy(d) => {
            let origin = match &d.origin {
                Some(t) => Some(
                    oxtree_sysroot::KeyFile::parse(t)
                        .map_err(|e| HostError::bad(format!("origin: {e}")))?,
                ),
                None => None,
            };
            let karg_base = h::karg_base(d.karg_proc_cmdline, d.karg_none)?;
            let t = h::deploy(
                cx,
                &h::DeployRequest {
                    rev: d.rev.clone(),
                    opts: oxtree_sysroot::DeployOptions {
                        osname: d.os.clone(),
                        karg_replace: d.karg.clone(),
                        karg_append: d.karg_append.clone(),
                        karg_delete: d.karg_delete.clone(),
                        karg_base,
                        origin,
                        retain: d.retain,
                        retain_pending: d.retain_pending,
                        retain_rollback: d.retain_rollback,
                        not_as_default: d.not_as_default,
                        no_merge: d.no_merge,
                    },
                    stage: d.stage,
                    lock_finalization: d.lock_finalization,
                    reboot: d.reboot,
                },
            )?;
            Ok(transaction(&t))
        }
        OpRequest::Switch(s) => {
            let t = h::switch(
                cx,
                &h::SwitchRequest {
                    os: s.os.clone(),
                    refspec: s.refspec.clone(),
                    stage: s.stage,
                    reboot: s.reboot,
                },
            )?;
            Ok(transaction(&t))
        }
        OpRequest::Packages(p) => {
            let change = p.change().map_err(|e| HostError::bad(e.to_string()))?;
            let req = h::PackagesRequest {
                os: p.os.clone(),
                change,
                stage: p.stage,
                dry_run: p.dry_run,
                reboot: p.reboot,
            };
            match h::change_packages(cx, &req)? {
                h::LayerOutcome::Applied(t) => Ok(transaction(&t)),
                h::LayerOutcome::DryRun(d) => {
                    let mut v = d.to_json();
                    v["outcome"] = "dry-run".into();
                    Ok(v)
                }
            }
        }
        OpRequest::Kargs(k) => {
            use oxtree_sysroot::upgrade::KargEdit;
            let mut edits = Vec::new();
            edits.extend(k.delete.iter().cloned().map(KargEdit::Delete));
            edits.extend(
                k.delete_if_present
                    .iter()
                    .cloned()
                    .map(KargEdit::DeleteIfPresent),
            );
            edits.extend(k.replace.iter().cloned().map(KargEdit::Replace));
            edits.extend(k.append.iter().cloned().map(KargEdit::Append));
            edits.extend(
                k.append_if_missing
                    .iter()
                    .cloned()
                    .map(KargEdit::AppendIfMissing),
            );
            let w = h::edit_kargs(cx, k.deployment, &edits)?;
            Ok(json!({
                "outcome": "kargs-changed",
                "deployment": k.deployment,
                "bootversion": w.bootversion,
            }))
        }
        OpRequest::SetOrigin(o) => {
            let r = h::set_origin(cx, &o.to_host())?;
            Ok(json!({
                "outcome": "origin-set",
                "index": r.index,
                "deployment": r.deployment.name(),
                "refspec": r.refspec,
                "remoteAdded": r.remote_added,
            }))
        }
        OpRequest::Unlock(u) => {
            let mode = if u.hotfix {
                h::UnlockMode::Hotfix
            } else {
                h::UnlockMode::Transient
            };
            let r = h::unlock(cx, u.deployment, mode)?;
            Ok(json!({
                "outcome": "unlocked",
                "mode": r.mode.as_str(),
                "deployment": r.deployment.name(),
                "rollback": r.rollback.map(|d| d.name()),
            }))
        }
        OpRequest::OsInit(o) => {
            h::init_stateroot(cx, &o.osname)?;
            Ok(json!({"outcome": "stateroot-created", "osname": o.osname}))
        }
        OpRequest::Cleanup => {
            let r = h::cleanup(cx)?;
            cx.reporter.report(Event::Done);
            Ok(json!({
                "outcome": "cleaned",
                "deploymentsRemoved": r.deployments_removed,
                "freedBytes": r.prune.freed,
                "boundImagesRemoved": r.bound_images_removed,
            }))
        }
        OpRequest::Reboot => {
            cx.reboot.reboot().map_err(|e| HostError::Failed {
                context: "rebooting".into(),
                source: e.into(),
            })?;
            cx.reporter.report(Event::Done);
            Ok(json!({"outcome": "rebooting"}))
        }
    }
}

/// A deploying transaction's outcome.
fn transaction(t: &oxtree_host::Transaction) -> Value {
    let d = t.applied.deployment();
    let staged = matches!(t.applied, oxtree_host::Applied::Staged(_));
    let (added, removed) = t
        .layered
        .as_ref()
        .map(|l| {
            (
                l.diff.added.iter().map(|p| p.name.clone()).collect(),
                l.diff.removed.iter().map(|p| p.name.clone()).collect(),
            )
        })
        .unwrap_or((Vec::<String>::new(), Vec::<String>::new()));
    json!({
        "outcome": if staged { "staged" } else { "deployed" },
        "deployment": d.name(),
        "stateroot": d.osname,
        "checksum": d.csum,
        "baseChecksum": t.base.to_hex(),
        "refspec": t.origin.as_ref().filter(|o| !o.is_image()).map(|o| o.refspec.clone()),
        "image": t.origin.as_ref().and_then(|o| o.container_image.clone()),
        "packagesAdded": added,
        "packagesRemoved": removed,
        "freedBytes": t.cleanup.prune.freed,
        "boundImagesRemoved": t.cleanup.bound_images_removed,
        "rebooted": t.rebooted,
    })
}

//! The lock server: the FleetLock listener (`/v1/pre-reboot`,
//! `/v1/steady-state`), the status listener (`/metrics`, `/-/healthy`) and
//! the admin listener (holders, force-release, rollout), on axum, over
//! the etcd [`Store`]. SIGHUP re-reads the configuration: slots, canary
//! groups, lease TTL and the admin token apply to the next request.
//!
//! The server never prints: it reports what it does as [`Event`]s to the
//! caller's observer (the CLI renders them as log lines).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use serde::Serialize;

use crate::config::{self, Config, ConfigError};
use crate::metrics::Metrics;
use crate::protocol::{self, ErrorBody, ProtocolError, Request, PROTOCOL_HEADER};
use crate::rollout::{GateError, RolloutState};
use crate::store::{GroupPolicy, HolderInfo, LockOutcome, Store, StoreError, UnlockOutcome};
use oxtree_io::Chain;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("binding {what} listener on {addr}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("reading admin token file {path}")]
    Token {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("serving")]
    Io(#[from] std::io::Error),
}

/// What the server did, for its log.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Listening {
        what: &'static str,
        addr: SocketAddr,
    },
    /// A pre-reboot or steady-state request and what came of it.
    Request {
        endpoint: &'static str,
        group: Option<String>,
        id: Option<String>,
        version: Option<String>,
        /// `granted`, `already_held`, `released`, `not_held`,
        /// `kept_after_rollback`, or the error kind.
        result: String,
        status: u16,
        #[serde(skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
        /// Milliseconds spent.
        ms: f64,
    },
    ForceReleased {
        group: String,
        id: String,
    },
    Resumed,
    Reloaded {
        groups: usize,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        needs_restart: Vec<&'static str>,
    },
    ReloadFailed {
        error: String,
    },
    Stopping,
}

pub type Observer = Arc<dyn Fn(Event) + Send + Sync>;

struct Shared {
    cfg: RwLock<Arc<Config>>,
    token: RwLock<Option<String>>,
    store: Store,
    metrics: Metrics,
    observe: Observer,
}

impl Shared {
    fn cfg(&self) -> Arc<Config> {
        self.cfg.read().expect("config lock").clone()
    }
}

fn error(status: StatusCode, kind: &str, value: impl Into<String>) -> Response {
    let body = ErrorBody {
        kind: kind.into(),
        value: value.into(),
    };
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_string(&body).expect("serialising an error"),
    )
        .into_response()
}

fn json<T: Serialize>(v: &T) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_string(v).expect("serialising a response"),
    )
        .into_response()
}

fn store_error(e: &StoreError) -> (StatusCode, &'static str) {
    match e {
        StoreError::Full { .. } => (StatusCode::CONFLICT, "failed_lock_semaphore_full"),
        StoreError::Gate(GateError::Halted(_)) => (StatusCode::CONFLICT, "rollout_halted"),
        StoreError::Gate(GateError::CanaryPending(_)) => (StatusCode::CONFLICT, "canary_pending"),
        StoreError::Contention(_) => (StatusCode::SERVICE_UNAVAILABLE, "failed_lock_contention"),
        StoreError::Etcd(_) | StoreError::Timeout(_) => {
            (StatusCode::SERVICE_UNAVAILABLE, "etcd_unavailable")
        }
        StoreError::Corrupt { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "failed_lock"),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Lock,
    Unlock,
}

async fn fleetlock(s: Arc<Shared>, op: Op, headers: HeaderMap, body: Body) -> Response {
    let t = Instant::now();
    let endpoint = match op {
        Op::Lock => "pre-reboot",
        Op::Unlock => "steady-state",
    };
    let mut req: Option<Request> = None;
    let (resp, result, status, detail) = 'r: {
        let refuse = |st: StatusCode, kind: &str, msg: String| {
            (error(st, kind, msg.clone()), kind.to_owned(), st, Some(msg))
        };
        let bytes = match axum::body::to_bytes(body, protocol::MAX_BODY).await {
            Ok(b) => b,
            Err(_) => {
                let e = ProtocolError::TooLarge;
                break 'r refuse(StatusCode::PAYLOAD_TOO_LARGE, e.kind(), e.to_string());
            }
        };
        let parsed = match protocol::parse_request(
            headers.get(PROTOCOL_HEADER).map(|v| v.as_bytes()),
            &bytes,
        ) {
            Ok(r) => r,
            Err(e) => {
                let st = match e {
                    ProtocolError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                    _ => StatusCode::BAD_REQUEST,
                };
                break 'r refuse(st, e.kind(), e.to_string());
            }
        };
        let r = req.insert(parsed);
        let cfg = s.cfg();
        let p = &r.client_params;
        let Some(g) = cfg.groups.get(&p.group) else {
            break 'r refuse(
                StatusCode::BAD_REQUEST,
                "unknown_group",
                format!("unknown group {:?}", p.group),
            );
        };
        if r.rollout
            .as_ref()
            .is_some_and(|ro| ro.rolled_back.is_some())
            && op == Op::Lock
        {
            break 'r refuse(
                StatusCode::BAD_REQUEST,
                "invalid_rollout",
                "rollout.rolled_back belongs in steady-state".into(),
            );
        }
        let policy = GroupPolicy {
            slots: g.slots,
            canary: g.canary,
            gated: cfg.has_canaries(),
            lease_ttl: cfg.lease_ttl,
            min_steady: cfg.canary_min_steady,
        };
        let outcome = match op {
            Op::Lock => s
                .store
                .lock(&p.group, &p.id, r.rollout.as_ref(), policy)
                .await
                .map(|o| match o {
                    LockOutcome::Granted => "granted",
                    LockOutcome::AlreadyHeld => "already_held",
                }),
            Op::Unlock => s
                .store
                .unlock(&p.group, &p.id, r.rollout.as_ref(), policy)
                .await
                .map(|o| match o {
                    UnlockOutcome::Released => "released",
                    UnlockOutcome::NotHeld => "not_held",
                    UnlockOutcome::KeptAfterRollback => "kept_after_rollback",
                }),
        };
        match outcome {
            Ok(what) => {
                if what == "granted" {
                    s.metrics.granted(t.elapsed().as_secs_f64());
                }
                (
                    StatusCode::OK.into_response(),
                    what.to_owned(),
                    StatusCode::OK,
                    None,
                )
            }
            Err(e) => {
                let (st, kind) = store_error(&e);
                break 'r refuse(st, kind, Chain(&e).to_string());
            }
        }
    };
    s.metrics.request(
        endpoint,
        if status == StatusCode::OK {
            "ok"
        } else {
            &result
        },
    );
    (s.observe)(Event::Request {
        endpoint,
        group: req.as_ref().map(|r| r.client_params.group.clone()),
        id: req.as_ref().map(|r| r.client_params.id.clone()),
        version: req
            .as_ref()
            .and_then(|r| r.rollout.as_ref())
            .and_then(|r| r.version.clone()),
        result,
        status: status.as_u16(),
        detail,
        ms: t.elapsed().as_secs_f64() * 1000.0,
    });
    resp
}

async fn pre_reboot(State(s): State<Arc<Shared>>, h: HeaderMap, b: Body) -> Response {
    fleetlock(s, Op::Lock, h, b).await
}

async fn steady_state(State(s): State<Arc<Shared>>, h: HeaderMap, b: Body) -> Response {
    fleetlock(s, Op::Unlock, h, b).await
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

async fn method_not_allowed() -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this endpoint",
    )
}

fn service_router(s: Arc<Shared>) -> Router {
    Router::new()
        .route(protocol::PRE_REBOOT_PATH, post(pre_reboot))
        .route(protocol::STEADY_STATE_PATH, post(steady_state))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(s)
}

async fn metrics(State(s): State<Arc<Shared>>) -> Response {
    let cfg = s.cfg();
    let mut up = true;
    for (name, g) in &cfg.groups {
        let n = s.store.holder_count(name).await;
        up &= n.is_ok();
        s.metrics.group(name, g.slots, n.ok());
    }
    let halted = match s.store.rollout().await {
        Ok(r) => r.halted.is_some(),
        Err(_) => {
            up = false;
            false
        }
    };
    s.metrics.etcd(up, halted);
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.render(),
    )
        .into_response()
}

async fn healthy(State(s): State<Arc<Shared>>) -> Response {
    match s.store.rollout().await {
        Ok(_) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "etcd_unavailable",
            Chain(&e).to_string(),
        ),
    }
}

fn status_router(s: Arc<Shared>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/-/healthy", get(healthy))
        .fallback(not_found)
        .with_state(s)
}

/// The 401 answer when the admin token is required and not given; the
/// token is compared in constant time.
fn unauthorised(s: &Shared, headers: &HeaderMap) -> Option<Response> {
    let token = s.token.read().expect("token lock").clone();
    let token = token?;
    let got = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let (a, b) = (got.as_bytes(), token.as_bytes());
    let diff = a.len() ^ b.len()
        | a.iter()
            .zip(b.iter().cycle())
            .fold(0usize, |d, (x, y)| d | usize::from(x ^ y));
    if diff == 0 && !b.is_empty() {
        None
    } else {
        Some(error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid 'Authorization: Bearer' token is required",
        ))
    }
}

/// A group as the admin API lists it.
#[derive(Debug, Serialize)]
pub struct GroupStatus {
    pub name: String,
    pub slots: u64,
    pub canary: bool,
    pub holders: Vec<HolderInfo>,
}

async fn admin_group(s: &Shared, name: &str) -> Result<GroupStatus, Response> {
    let cfg = s.cfg();
    let Some(g) = cfg.groups.get(name) else {
        return Err(error(
            StatusCode::NOT_FOUND,
            "unknown_group",
            format!("unknown group {:?}", protocol::truncate(name, 80)),
        ));
    };
    match s.store.holders(name).await {
        Ok(holders) => Ok(GroupStatus {
            name: name.to_owned(),
            slots: g.slots,
            canary: g.canary,
            holders,
        }),
        Err(e) => {
            let (st, kind) = store_error(&e);
            Err(error(st, kind, Chain(&e).to_string()))
        }
    }
}

async fn admin_groups(State(s): State<Arc<Shared>>, h: HeaderMap) -> Response {
    if let Some(r) = unauthorised(&s, &h) {
        return r;
    }
    let names: Vec<String> = s.cfg().groups.keys().cloned().collect();
    let mut out = vec![];
    for n in names {
        match admin_group(&s, &n).await {
            Ok(g) => out.push(g),
            Err(r) => return r,
        }
    }
    json(&out)
}

async fn admin_one_group(
    State(s): State<Arc<Shared>>,
    h: HeaderMap,
    UrlPath(group): UrlPath<String>,
) -> Response {
    if let Some(r) = unauthorised(&s, &h) {
        return r;
    }
    match admin_group(&s, &group).await {
        Ok(g) => json(&g),
        Err(r) => r,
    }
}

async fn admin_release(
    State(s): State<Arc<Shared>>,
    h: HeaderMap,
    UrlPath((group, id)): UrlPath<(String, String)>,
) -> Response {
    if let Some(r) = unauthorised(&s, &h) {
        return r;
    }
    let cfg = s.cfg();
    let Some(g) = cfg.groups.get(&group) else {
        return error(
            StatusCode::NOT_FOUND,
            "unknown_group",
            format!("unknown group {:?}", protocol::truncate(&group, 80)),
        );
    };
    match s.store.force_release(&group, &id, g.slots).await {
        Ok(true) => {
            (s.observe)(Event::ForceReleased {
                group: group.clone(),
                id: id.clone(),
            });
            json(&serde_json::json!({"released": true, "group": group, "id": id}))
        }
        Ok(false) => error(
            StatusCode::NOT_FOUND,
            "not_held",
            format!(
                "{:?} holds no slot in group {group:?}",
                protocol::truncate(&id, 80)
            ),
        ),
        Err(e) => {
            let (st, kind) = store_error(&e);
            error(st, kind, Chain(&e).to_string())
        }
    }
}

/// The rollout as the admin API shows it: the stored record plus a
/// one-line summary (`why` says what halted it).
#[derive(Debug, Serialize)]
pub struct RolloutStatus {
    pub canary_groups: Vec<String>,
    #[serde(flatten)]
    pub state: RolloutState,
    pub why: Option<String>,
}

async fn admin_rollout(State(s): State<Arc<Shared>>, h: HeaderMap) -> Response {
    if let Some(r) = unauthorised(&s, &h) {
        return r;
    }
    let cfg = s.cfg();
    match s.store.rollout().await {
        Ok(state) => json(&RolloutStatus {
            canary_groups: cfg
                .groups
                .iter()
                .filter(|(_, g)| g.canary)
                .map(|(n, _)| n.clone())
                .collect(),
            why: state.halted.as_ref().map(|h| h.describe()),
            state,
        }),
        Err(e) => {
            let (st, kind) = store_error(&e);
            error(st, kind, Chain(&e).to_string())
        }
    }
}

async fn admin_resume(State(s): State<Arc<Shared>>, h: HeaderMap) -> Response {
    if let Some(r) = unauthorised(&s, &h) {
        return r;
    }
    match s.store.resume().await {
        Ok(resumed) => {
            if resumed {
                (s.observe)(Event::Resumed);
            }
            json(&serde_json::json!({ "resumed": resumed }))
        }
        Err(e) => {
            let (st, kind) = store_error(&e);
            error(st, kind, Chain(&e).to_string())
        }
    }
}

fn admin_router(s: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/groups", get(admin_groups))
        .route("/v1/groups/{group}", get(admin_one_group))
        .route("/v1/groups/{group}/holders/{id}", delete(admin_release))
        .route("/v1/rollout", get(admin_rollout))
        .route("/v1/rollout/resume", post(admin_resume))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(s)
}

fn read_token(cfg: &Config) -> Result<Option<String>, ServerError> {
    match &cfg.admin_token_file {
        None => Ok(None),
        Some(p) => {
            let t = std::fs::read_to_string(p).map_err(|source| ServerError::Token {
                path: p.clone(),
                source,
            })?;
            Ok(Some(t.trim().to_owned()))
        }
    }
}

fn reload(s: &Shared, path: &Path) {
    let result = config::load(path)
        .map_err(ServerError::from)
        .and_then(|new| {
            let token = read_token(&new)?;
            Ok((new, token))
        });
    match result {
        Ok((new, token)) => {
            let old = s.cfg();
            let mut needs_restart = vec![];
            if old.service != new.service {
                needs_restart.push("service");
            }
            if old.status != new.status {
                needs_restart.push("status");
            }
            if old.admin != new.admin {
                needs_restart.push("admin");
            }
            if old.etcd_endpoints != new.etcd_endpoints
                || old.key_prefix != new.key_prefix
                || old.txn_timeout != new.txn_timeout
            {
                needs_restart.push("etcd3");
            }
            let groups = new.groups.len();
            *s.cfg.write().expect("config lock") = Arc::new(new);
            *s.token.write().expect("token lock") = token;
            s.metrics.reload(true);
            (s.observe)(Event::Reloaded {
                groups,
                needs_restart,
            });
        }
        Err(e) => {
            s.metrics.reload(false);
            (s.observe)(Event::ReloadFailed {
                error: Chain(&e).to_string(),
            });
        }
    }
}

async fn bind(
    what: &'static str,
    addr: SocketAddr,
) -> Result<tokio::net::TcpListener, ServerError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { what, addr, source })
}

/// Runs the server from the configuration file until SIGINT or SIGTERM.
pub async fn serve(config_path: &Path, observe: Observer) -> Result<(), ServerError> {
    use tokio::signal::unix::{signal, SignalKind};

    let cfg = config::load(config_path)?;
    let token = read_token(&cfg)?;
    let store = Store::connect(&cfg.etcd_endpoints, &cfg.key_prefix, cfg.txn_timeout).await?;
    let shared = Arc::new(Shared {
        cfg: RwLock::new(Arc::new(cfg.clone())),
        token: RwLock::new(token),
        store,
        metrics: Metrics::new(),
        observe: observe.clone(),
    });

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    let mut listeners = vec![("service", cfg.service, service_router(shared.clone()))];
    if let Some(a) = cfg.status {
        listeners.push(("status", a, status_router(shared.clone())));
    }
    if let Some(a) = cfg.admin {
        listeners.push(("admin", a, admin_router(shared.clone())));
    }
    for (what, addr, router) in listeners {
        let l = bind(what, addr).await?;
        let addr = l.local_addr()?;
        observe(Event::Listening { what, addr });
        let mut rx = stop_rx.clone();
        tasks.spawn(async move {
            axum::serve(l, router)
                .with_graceful_shutdown(async move {
                    let _ = rx.wait_for(|s| *s).await;
                })
                .await
        });
    }

    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    loop {
        tokio::select! {
            _ = hup.recv() => reload(&shared, config_path),
            _ = term.recv() => break,
            _ = int.recv() => break,
            Some(r) = tasks.join_next() => {
                // A listener ended on its own: that is an error.
                let _ = stop_tx.send(true);
                return match r {
                    Ok(Err(e)) => Err(e.into()),
                    _ => Err(std::io::Error::other("a listener stopped").into()),
                };
            }
        }
    }
    observe(Event::Stopping);
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
    Ok(())
}

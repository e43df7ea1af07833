//! The REST+JSON API under `/v1` (axum): authentication of every request
//! against the connection's [`Peer`], the host status, operations and
//! their Server-Sent Event streams. [`ROUTES`] lists every route; the
//! OpenAPI document must describe exactly these (a test checks it).

use crate::audit::Audit;
use crate::auth::{Denied, Peer, Policy, Principal, Role};
use crate::ops::{CancelError, Operations};
use crate::request::{self, BadRequest, MAX_BODY};
use crate::system;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use futures_util::stream::{self, StreamExt};
use serde_json::{json, Value};
use std::convert::Infallible;
use std::sync::Arc;

/// Every (method, path) the API serves (axum's `{id}` syntax).
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/v1/host"),
    ("POST", "/v1/host/upgrade"),
    ("POST", "/v1/host/rollback"),
    ("POST", "/v1/host/undeploy"),
    ("POST", "/v1/host/set-default"),
    ("POST", "/v1/host/pin"),
    ("POST", "/v1/host/deploy"),
    ("POST", "/v1/host/switch"),
    ("POST", "/v1/host/packages"),
    ("POST", "/v1/host/kargs"),
    ("POST", "/v1/host/set-origin"),
    ("POST", "/v1/host/unlock"),
    ("POST", "/v1/host/os-init"),
    ("GET", "/v1/host/config-diff"),
    ("POST", "/v1/host/cleanup"),
    ("POST", "/v1/host/reboot"),
    ("GET", "/v1/operations"),
    ("GET", "/v1/operations/{id}"),
    ("DELETE", "/v1/operations/{id}"),
    ("POST", "/v1/operations/{id}/cancel"),
    ("GET", "/v1/operations/{id}/events"),
    ("GET", "/v1/updates"),
    ("GET", "/v1/units"),
    ("GET", "/v1/units/{name}"),
    ("POST", "/v1/units/{name}/{action}"),
    ("GET", "/v1/units/{name}/journal"),
    ("GET", "/v1/network/links"),
    ("GET", "/v1/network/links/{name}"),
    ("PUT", "/v1/network/links/{name}"),
    ("DELETE", "/v1/network/links/{name}"),
    ("GET", "/v1/openapi.json"),
];

/// What the handlers share.
#[derive(Clone)]
pub struct App {
    pub ops: Arc<Operations>,
    pub policy: Policy,
    pub audit: Arc<Audit>,
    pub status: Arc<crate::status::StatusReads>,
    /// `--updates`: where the update loop's config and state are.
    pub updates: Option<Arc<crate::server::UpdatesSetup>>,
    /// Where `PUT /v1/network/links/{name}` writes its `.network` files
    /// (`/etc/systemd/network`).
    pub network_dir: Arc<std::path::PathBuf>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("ops", &self.ops)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// The API's router; every request must carry a [`Peer`] extension (the
/// server inserts it per connection).
pub fn router(app: App) -> Router {
    Router::new()
        .route("/v1/host", get(host))
        .route("/v1/host/config-diff", get(config_diff))
        .route("/v1/host/{kind}", post(submit))
        .route("/v1/operations", get(list))
        .route("/v1/operations/{id}", get(operation).delete(cancel))
        .route("/v1/operations/{id}/cancel", post(cancel))
        .route("/v1/operations/{id}/events", get(events))
        .route("/v1/updates", get(updates))
        .route("/v1/units", get(system::list_units))
        .route("/v1/units/{name}", get(system::unit_status))
        .route("/v1/units/{name}/journal", get(system::unit_journal_lines))
        .route("/v1/units/{name}/{action}", post(system::unit_action))
        .route("/v1/network/links", get(system::list_links))
        .route(
            "/v1/network/links/{name}",
            get(system::link)
                .put(system::set_link)
                .delete(system::unset_link),
        )
        .route("/v1/openapi.json", get(openapi))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "not-found", "no such resource") })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(app.clone(), authenticate))
        .with_state(app)
}

/// `{"error": {"kind", "message"}}` with `status`.
pub fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"kind": kind, "message": message}})),
    )
        .into_response()
}

/// Authenticate, then authorise: reads need any known caller, anything
/// else the admin role. Refusals are audited and change nothing.
async fn authenticate(State(app): State<App>, mut req: Request, next: Next) -> Response {
    let peer = req.extensions().get::<Peer>().cloned();
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let mutation = !matches!(*req.method(), Method::GET | Method::HEAD);
    let action = format!("{} {}", req.method(), req.uri().path());
    let r = match &peer {
        Some(p) => app.policy.authenticate(p, auth),
        None => Err(Denied::Unauthenticated),
    };
    match r {
        Ok(p) if mutation && p.role != Role::Admin => {
            app.audit
                .record(&p.name, &action, Value::Null, "denied: read-only");
            error(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this credential may only read",
            )
        }
        Ok(p) => {
            req.extensions_mut().insert(p);
            let r = next.run(req).await;
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                // axum's own rejection is plain text; keep errors JSON.
                return error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "bad-request",
                    &format!("request body larger than {MAX_BODY} bytes"),
                );
            }
            r
        }
        Err(Denied::Unauthenticated) => {
            if mutation {
                app.audit
                    .record("unauthenticated", &action, Value::Null, "denied: 401");
            }
            let mut r = error(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "a client certificate or a bearer token is required",
            );
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, "Bearer".parse().unwrap());
            r
        }
        Err(Denied::Forbidden(why)) => {
            let who = match peer {
                Some(Peer::Unix { uid, .. }) => format!("uid:{uid}"),
                _ => "unknown".into(),
            };
            app.audit.record(&who, &action, Value::Null, "denied: 403");
            error(StatusCode::FORBIDDEN, "forbidden", &why)
        }
    }
}

async fn updates(State(app): State<App>) -> Response {
    let Some(u) = app.updates.clone() else {
        return error(
            StatusCode::NOT_FOUND,
            "not-found",
            "the update loop is not configured (oxtreed --updates)",
        );
    };
    let r = tokio::task::spawn_blocking(move || {
        let (cfg, id) = oxtree_updates::load(&u.config_root)?;
        oxtree_updates::Status::of(&cfg, &id, &u.state_dir)
    })
    .await;
    match r {
        Ok(Ok(s)) => Json(s).into_response(),
        Ok(Err(e)) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "failed",
            &oxtree_io::Chain(&e).to_string(),
        ),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "failed", &e.to_string()),
    }
}

async fn host(State(app): State<App>) -> Response {
    match app.status.get(app.ops.context()).await {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        Err((kind, msg)) => error(StatusCode::INTERNAL_SERVER_ERROR, &kind, &msg),
    }
}

/// `admin config-diff`: `{"stateroot", "modified", "removed", "added"}`.
async fn config_diff(
    State(app): State<App>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let os = q.get("os").cloned();
    if let Some(os) = &os {
        if let Err(e) = request::check_stateroot(os) {
            return error(StatusCode::BAD_REQUEST, "bad-request", &e.to_string());
        }
    }
    let cx = app.ops.context();
    match tokio::task::spawn_blocking(move || oxtree_host::config_diff(&cx, os.as_deref())).await {
        Ok(Ok((os, d))) => Json(json!({
            "stateroot": os,
            "modified": d.modified,
            "removed": d.removed,
            "added": d.added,
        }))
        .into_response(),
        Ok(Err(e)) => {
            let status = match e {
                oxtree_host::HostError::BadRequest(_) => StatusCode::BAD_REQUEST,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            error(status, e.kind(), &oxtree_io::Chain(&e).to_string())
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "failed", &e.to_string()),
    }
}

async fn submit(
    State(app): State<App>,
    Extension(who): Extension<Principal>,
    Path(kind): Path<String>,
    body: Bytes,
) -> Response {
    let req = match request::parse(&kind, &body) {
        Ok(r) => r,
        Err(e) => {
            let status = match e {
                BadRequest::UnknownKind(_) => StatusCode::NOT_FOUND,
                _ => StatusCode::BAD_REQUEST,
            };
            app.audit.record(
                &who.name,
                &format!(
                    "POST /v1/host/{}",
                    kind.chars().take(64).collect::<String>()
                ),
                Value::Null,
                &format!("rejected: {e}"),
            );
            return error(status, "bad-request", &e.to_string());
        }
    };
    let op = app.ops.submit(req, who.clone());
    let v = op.view();
    app.audit.record(
        &who.name,
        op.request.kind(),
        json!({"operation": v.id, "request": v.request}),
        "accepted",
    );
    let loc = format!("/v1/operations/{}", op.id);
    (StatusCode::ACCEPTED, [(header::LOCATION, loc)], Json(v)).into_response()
}

async fn list(State(app): State<App>) -> Response {
    Json(json!({"operations": app.ops.list()})).into_response()
}

fn parse_id(id: &str) -> Option<u64> {
    if id.is_empty() || id.len() > 19 || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    id.parse().ok()
}

fn no_such_operation() -> Response {
    error(StatusCode::NOT_FOUND, "not-found", "no such operation")
}

async fn operation(State(app): State<App>, Path(id): Path<String>) -> Response {
    match parse_id(&id).and_then(|i| app.ops.get(i)) {
        Some(op) => Json(op.view()).into_response(),
        None => no_such_operation(),
    }
}

async fn cancel(
    State(app): State<App>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Response {
    let Some(n) = parse_id(&id) else {
        return no_such_operation();
    };
    let r = app.ops.cancel(n);
    let result = match &r {
        Ok(_) => "cancel requested".to_string(),
        Err(e) => format!("refused: {e:?}"),
    };
    app.audit
        .record(&who.name, "cancel", json!({"operation": id}), &result);
    match r {
        Ok(op) => (StatusCode::ACCEPTED, Json(op.view())).into_response(),
        Err(CancelError::NotFound) => no_such_operation(),
        Err(CancelError::Finished(s)) => error(
            StatusCode::CONFLICT,
            "conflict",
            &format!("operation {id} already finished ({s:?})"),
        ),
    }
}

#[derive(serde::Deserialize)]
struct EventsQuery {
    /// Resume after this event id (like `Last-Event-ID`).
    after: Option<u64>,
}

/// The operation's events as Server-Sent Events: `id` numbers them (a
/// client resumes with `Last-Event-ID` or `?after=`), `event` is the
/// event's `type`, `data` its JSON. When the operation has finished and
/// every event was sent, a last `end` event (no id) carries the
/// operation, and the stream closes.
async fn events(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(q): Query<EventsQuery>,
) -> Response {
    let Some(op) = parse_id(&id).and_then(|i| app.ops.get(i)) else {
        return no_such_operation();
    };
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .or(q.after)
        .unwrap_or(0);
    let rx = op.subscribe();
    let s = stream::unfold(
        (op, after, rx, false),
        |(op, mut after, mut rx, done)| async move {
            if done {
                return None;
            }
            loop {
                let (evs, finished) = op.events_after(after);
                if let Some((last, _)) = evs.last() {
                    after = *last;
                    let out: Vec<_> = evs
                        .into_iter()
                        .map(|(i, v)| {
                            let ty = v["type"].as_str().unwrap_or("event").to_string();
                            SseEvent::default()
                                .id(i.to_string())
                                .event(ty)
                                .data(v.to_string())
                        })
                        .collect();
                    return Some((out, (op, after, rx, false)));
                }
                if finished {
                    let end = SseEvent::default()
                        .event("end")
                        .data(serde_json::to_string(&op.view()).unwrap_or_default());
                    return Some((vec![end], (op, after, rx, true)));
                }
                if rx.changed().await.is_err() {
                    return None;
                }
            }
        },
    )
    .flat_map(|v| stream::iter(v.into_iter().map(Ok::<_, Infallible>)));
    Sse::new(s).keep_alive(KeepAlive::default()).into_response()
}

async fn openapi() -> Response {
    Json(crate::openapi::document()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::HostConfig;
    use axum::body::Body;
    use tower::ServiceExt;

    /// Every route in [`ROUTES`] is served: none answers 404 or 405 for
    /// lack of a route (operation 1 exists).
    #[test]
    fn every_listed_route_is_served() {
        let d = tempfile::tempdir().unwrap();
        oxtree_sysroot::init_fs(d.path(), false).unwrap();
        let ops = Operations::start(
            HostConfig {
                sysroot: d.path().into(),
                run_dir: d.path().join("run"),
                reboot: Arc::new(oxtree_host::CommandReboot("true".into())),
            },
            Arc::new(Audit::none()),
        );
        let app = router(App {
            ops: ops.clone(),
            policy: Policy::default(),
            audit: Arc::new(Audit::none()),
            status: Default::default(),
            // GET /v1/updates answers 404 without the update loop.
            updates: Some(Arc::new(crate::server::UpdatesSetup {
                config_root: d.path().into(),
                state_dir: d.path().join("updates"),
            })),
            network_dir: Arc::new(d.path().join("network")),
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let call = |method: &str, path: &str| {
            let mut req = Request::builder()
                .method(method)
                .uri(path)
                .body(Body::from("{}"))
                .unwrap();
            req.extensions_mut().insert(Peer::Unix {
                uid: 0,
                gid: 0,
                pid: None,
            });
            rt.block_on(app.clone().oneshot(req)).unwrap().status()
        };
        assert_eq!(call("POST", "/v1/host/cleanup"), StatusCode::ACCEPTED);
        for (m, p) in ROUTES {
            let path = p
                .replace("{id}", "1")
                .replace("{name}", "x.service")
                .replace("{action}", "start");
            let st = call(m, &path);
            assert!(
                st != StatusCode::NOT_FOUND && st != StatusCode::METHOD_NOT_ALLOWED,
                "{m} {path}: {st}"
            );
        }
        // A bad unit or link name is a 400 before any bus is needed (this
        // sandbox has none).
        assert_eq!(
            call("GET", "/v1/units/a%20b.service"),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            call("POST", "/v1/units/x%2F..%2Fy.service/start"),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            call("GET", "/v1/network/links/..x"),
            StatusCode::BAD_REQUEST
        );
        // Without a peer: 401, whatever the route.
        let req = Request::builder()
            .uri("/v1/host")
            .body(Body::empty())
            .unwrap();
        let st = rt.block_on(app.clone().oneshot(req)).unwrap().status();
        assert_eq!(st, StatusCode::UNAUTHORIZED);
        ops.shutdown(std::time::Duration::from_secs(5));
    }
}

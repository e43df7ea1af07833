//! The host-management half of the API (Photon OS PMD's role): systemd
//! units, a unit's journal, and systemd-networkd links, served from
//! `oxtree_system`. These calls are not host transactions: they take no
//! sysroot lock and finish within a bounded time (systemd queues its own
//! jobs), so they answer directly (200) instead of queueing an operation
//! behind an upgrade. Every mutation is audited.

use crate::auth::Principal;
use crate::request;
use crate::router::{error, App};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use oxtree_system::journal::unit_journal;
use oxtree_system::network::{NetworkDir, Networkd};
use oxtree_system::units::{Systemd, UnitAction};
use oxtree_system::SystemError;
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;

/// How long a start, stop or restart may take before the call answers
/// 504 (the job goes on in systemd).
pub const UNIT_JOB_TIMEOUT: Duration = Duration::from_secs(90);
/// Journal lines when the request does not say.
const DEFAULT_LINES: usize = 100;

/// A typed error as an HTTP error.
pub fn system_error(e: &SystemError) -> Response {
    let (status, kind) = match e {
        SystemError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad-request"),
        SystemError::NoSuchUnit(_) | SystemError::NoSuchLink(_) => {
            (StatusCode::NOT_FOUND, "not-found")
        }
        SystemError::Refused { .. } => (StatusCode::CONFLICT, "conflict"),
        SystemError::AccessDenied(_) => (StatusCode::FORBIDDEN, "forbidden"),
        SystemError::Unavailable { .. } => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        SystemError::Timeout { .. } => (StatusCode::GATEWAY_TIMEOUT, "timeout"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "failed"),
    };
    error(status, kind, &oxtree_io::Chain(e).to_string())
}

/// Run blocking D-Bus or journalctl work off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> oxtree_system::Result<T> + Send + 'static,
) -> Result<T, SystemError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(SystemError::Bus(format!("the worker ended: {e}"))))
}

fn ok_json<T: serde::Serialize>(r: Result<T, SystemError>) -> Response {
    match r {
        Ok(v) => Json(v).into_response(),
        Err(e) => system_error(&e),
    }
}

fn result_text<T>(r: &Result<T, SystemError>) -> String {
    match r {
        Ok(_) => "succeeded".into(),
        Err(e) => format!("failed: {}", oxtree_io::Chain(e)),
    }
}

/// `GET /v1/units[?type=service]`
pub async fn list_units(Query(q): Query<HashMap<String, String>>) -> Response {
    let kind = q.get("type").cloned();
    let r = blocking(move || Systemd::system()?.list(kind.as_deref())).await;
    ok_json(r.map(|units| json!({ "units": units })))
}

/// `GET /v1/units/{name}`
pub async fn unit_status(Path(name): Path<String>) -> Response {
    ok_json(blocking(move || Systemd::system()?.status(&name)).await)
}

/// `POST /v1/units/{name}/{action}`: start, stop, restart, enable,
/// disable. The body, if any, must be `{}`.
pub async fn unit_action(
    State(app): State<App>,
    Extension(who): Extension<Principal>,
    Path((name, action)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let short: String = name.chars().take(64).collect();
    let what = format!("unit {}", action.chars().take(16).collect::<String>());
    let Some(a) = UnitAction::parse(&action) else {
        return error(
            StatusCode::NOT_FOUND,
            "not-found",
            "no such unit action (start, stop, restart, enable, disable)",
        );
    };
    if let Err(e) = request::parse_empty(&body) {
        app.audit.record(
            &who.name,
            &what,
            json!({"unit": short}),
            &format!("rejected: {e}"),
        );
        return error(StatusCode::BAD_REQUEST, "bad-request", &e.to_string());
    }
    let n = name.clone();
    let r = blocking(move || Systemd::system()?.act(&n, a, UNIT_JOB_TIMEOUT)).await;
    app.audit
        .record(&who.name, &what, json!({"unit": short}), &result_text(&r));
    ok_json(r)
}

/// `GET /v1/units/{name}/journal[?lines=N]`
pub async fn unit_journal_lines(
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let lines = match q.get("lines") {
        None => DEFAULT_LINES,
        Some(s) => match s.parse::<usize>() {
            Ok(n) => n,
            Err(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "bad-request",
                    "lines must be a number",
                )
            }
        },
    };
    let r = blocking(move || unit_journal(&name, lines)).await;
    ok_json(r.map(|entries| json!({ "entries": entries })))
}

/// `GET /v1/network/links`
pub async fn list_links() -> Response {
    let r = blocking(|| Networkd::system()?.links()).await;
    ok_json(r.map(|links| json!({ "links": links })))
}

/// `GET /v1/network/links/{name}`
pub async fn link(Path(name): Path<String>) -> Response {
    ok_json(blocking(move || Networkd::system()?.link(&name)).await)
}

/// `PUT /v1/network/links/{name}`: a static configuration (addresses,
/// gateway, DNS) as a `.network` file in the network directory, applied.
pub async fn set_link(
    State(app): State<App>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let short: String = name.chars().take(64).collect();
    let config = match request::parse_static_network(&body) {
        Ok(c) => c,
        Err(e) => {
            app.audit.record(
                &who.name,
                "network set",
                json!({"link": short}),
                &format!("rejected: {e}"),
            );
            return error(StatusCode::BAD_REQUEST, "bad-request", &e.to_string());
        }
    };
    let dir = app.network_dir.clone();
    let detail = json!({"link": short, "config": config});
    let r = blocking(move || {
        let d = NetworkDir::open(&dir)?;
        Networkd::system()?.set_static(&d, &name, &config)
    })
    .await;
    app.audit
        .record(&who.name, "network set", detail, &result_text(&r));
    ok_json(r)
}

/// `DELETE /v1/network/links/{name}`: remove the static configuration
/// written by PUT (404 if the link has none).
pub async fn unset_link(
    State(app): State<App>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
) -> Response {
    let short: String = name.chars().take(64).collect();
    let dir = app.network_dir.clone();
    let n = name.clone();
    let r = blocking(move || {
        let d = NetworkDir::open(&dir)?;
        Networkd::system()?.unset_static(&d, &n)
    })
    .await;
    app.audit.record(
        &who.name,
        "network unset",
        json!({"link": short}),
        &result_text(&r),
    );
    match r {
        Ok((false, _)) => error(
            StatusCode::NOT_FOUND,
            "not-found",
            &format!("{short} has no static configuration from oxtree"),
        ),
        Ok((true, link)) => Json(link).into_response(),
        Err(e) => system_error(&e),
    }
}

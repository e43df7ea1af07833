//! FleetLock clients: [`Client`] speaks the protocol exactly (so it works
//! against airlock or any other FleetLock server), and [`AdminClient`]
//! drives this server's admin API.

use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::protocol::{
    ClientParams, ErrorBody, Request, Rollout, PRE_REBOOT_PATH, PROTOCOL_HEADER, STEADY_STATE_PATH,
};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("bad base URL {0:?}: must be http:// or https://")]
    Url(String),
    #[error("{url}")]
    Http { url: String, source: reqwest::Error },
    /// The server refused, with its `{kind, value}` body when it sent one.
    #[error("{url}: HTTP {status}: {kind}: {value}")]
    Refused {
        url: String,
        status: u16,
        kind: String,
        value: String,
    },
    #[error("{url}: unexpected answer: {msg}")]
    BadAnswer { url: String, msg: String },
}

impl ClientError {
    /// The server's error kind, when it refused with one.
    pub fn kind(&self) -> Option<&str> {
        match self {
            ClientError::Refused { kind, .. } => Some(kind),
            _ => None,
        }
    }
}

fn http(timeout: Duration) -> reqwest::Client {
    // reqwest with rustls needs a process-wide crypto provider (ring, as
    // oxtree-transport installs it); installing twice is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .expect("building an HTTP client")
}

fn base(url: &str) -> Result<String, ClientError> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(ClientError::Url(url.to_owned()));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

async fn refused(url: String, resp: reqwest::Response) -> ClientError {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    match serde_json::from_str::<ErrorBody>(&text) {
        Ok(e) => ClientError::Refused {
            url,
            status,
            kind: e.kind,
            value: e.value,
        },
        Err(_) => ClientError::Refused {
            url,
            status,
            kind: "generic_error".into(),
            value: crate::protocol::truncate(text.trim(), 512).to_owned(),
        },
    }
}

/// A FleetLock client for one server.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    /// `base_url` as Zincati's `[updates.fleet_lock] base_url`. Zincati
    /// waits up to 30 minutes for an answer; `timeout` is ours to choose.
    pub fn new(base_url: &str, timeout: Duration) -> Result<Client, ClientError> {
        Ok(Client {
            base: base(base_url)?,
            http: http(timeout),
        })
    }

    async fn post(
        &self,
        path: &str,
        params: &ClientParams,
        rollout: Option<&Rollout>,
    ) -> Result<(), ClientError> {
        let url = format!("{}{path}", self.base);
        let body = Request {
            client_params: params.clone(),
            rollout: rollout.cloned(),
        };
        let resp = self
            .http
            .post(&url)
            .header(PROTOCOL_HEADER, "true")
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(&body).expect("serialising a request"))
            .send()
            .await
            .map_err(|source| ClientError::Http {
                url: url.clone(),
                source,
            })?;
        if resp.status() == reqwest::StatusCode::OK {
            Ok(())
        } else {
            Err(refused(url, resp).await)
        }
    }

    /// RecursiveLock: `POST {base}/v1/pre-reboot`. Ok means the node may
    /// reboot. `rollout` is oxtree's optional extension (None sends the
    /// plain protocol body).
    pub async fn pre_reboot(
        &self,
        params: &ClientParams,
        rollout: Option<&Rollout>,
    ) -> Result<(), ClientError> {
        self.post(PRE_REBOOT_PATH, params, rollout).await
    }

    /// UnlockIfHeld: `POST {base}/v1/steady-state`.
    pub async fn steady_state(
        &self,
        params: &ClientParams,
        rollout: Option<&Rollout>,
    ) -> Result<(), ClientError> {
        self.post(STEADY_STATE_PATH, params, rollout).await
    }
}

/// A client for this server's admin API (`[admin]` listener).
#[derive(Clone)]
pub struct AdminClient {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl std::fmt::Debug for AdminClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the token.
        f.debug_struct("AdminClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl AdminClient {
    pub fn new(
        base_url: &str,
        token: Option<String>,
        timeout: Duration,
    ) -> Result<AdminClient, ClientError> {
        Ok(AdminClient {
            base: base(base_url)?,
            token,
            http: http(timeout),
        })
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
    ) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut rq = self.http.request(method, &url);
        if let Some(t) = &self.token {
            rq = rq.bearer_auth(t);
        }
        let resp = rq.send().await.map_err(|source| ClientError::Http {
            url: url.clone(),
            source,
        })?;
        if resp.status() != reqwest::StatusCode::OK {
            return Err(refused(url, resp).await);
        }
        let text = resp.text().await.map_err(|source| ClientError::Http {
            url: url.clone(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|e| ClientError::BadAnswer {
            url,
            msg: e.to_string(),
        })
    }

    /// Every configured group with its holders.
    pub async fn groups(&self) -> Result<serde_json::Value, ClientError> {
        self.call(reqwest::Method::GET, "/v1/groups").await
    }

    /// Releases `id`'s slot in `group`.
    pub async fn release(&self, group: &str, id: &str) -> Result<serde_json::Value, ClientError> {
        let id = percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC);
        self.call(
            reqwest::Method::DELETE,
            &format!("/v1/groups/{group}/holders/{id}"),
        )
        .await
    }

    /// The canary rollout, and why it is halted if it is.
    pub async fn rollout(&self) -> Result<serde_json::Value, ClientError> {
        self.call(reqwest::Method::GET, "/v1/rollout").await
    }

    /// Lifts a halted rollout.
    pub async fn resume(&self) -> Result<serde_json::Value, ClientError> {
        self.call(reqwest::Method::POST, "/v1/rollout/resume").await
    }
}

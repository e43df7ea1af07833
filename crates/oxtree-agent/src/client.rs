//! A client of the agent, for the CLI's `--host`: JSON requests and an
//! operation's event stream, resumed with `Last-Event-ID` when the
//! connection drops. `unix:///path` connects to the socket;
//! `https://host:port` uses TLS (the CA in `$OXTREE_AGENT_CA`, a bearer
//! token in `$OXTREE_AGENT_TOKEN`, or a client certificate and key in
//! `$OXTREE_AGENT_CERT` / `$OXTREE_AGENT_KEY`).

use crate::error::{AgentError, Result};
use crate::sse::SseParser;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};

enum Target {
    Unix(PathBuf),
    Https {
        host: String,
        port: u16,
        tls: Arc<rustls::ClientConfig>,
    },
}

pub struct Client {
    target: Target,
    token: Option<String>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the token.
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

/// A response: status and JSON body (Null when empty or not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

impl Reply {
    /// The body, or the API error it carries.
    pub fn ok(self) -> Result<Value> {
        if self.status.is_success() {
            return Ok(self.body);
        }
        let e = &self.body["error"];
        Err(AgentError::Api {
            status: self.status.as_u16(),
            kind: e["kind"].as_str().unwrap_or("").to_string(),
            message: e["message"]
                .as_str()
                .unwrap_or("the agent refused the request")
                .to_string(),
        })
    }
}

impl Client {
    /// `unix:///run/oxtree/oxtreed.sock` or `https://HOST:PORT`.
    pub fn new(url: &str) -> Result<Client> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        if let Some(p) = url.strip_prefix("unix://") {
            if !p.starts_with('/') {
                return Err(AgentError::Config(format!(
                    "--host={url}: the socket path must be absolute (unix:///path)"
                )));
            }
            return Ok(Client {
                target: Target::Unix(PathBuf::from(p)),
                token: None,
            });
        }
        let Some(rest) = url.strip_prefix("https://") else {
            return Err(AgentError::Config(format!(
                "--host={url}: expected unix:///PATH or https://HOST:PORT"
            )));
        };
        let hostport = rest.trim_end_matches('/');
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (
                h.trim_start_matches('[').trim_end_matches(']').to_string(),
                p.parse()
                    .map_err(|_| AgentError::Config(format!("--host={url}: bad port")))?,
            ),
            None => (hostport.to_string(), 443),
        };
        let tls = client_tls(
            env("OXTREE_AGENT_CA").map(PathBuf::from),
            env("OXTREE_AGENT_CERT")
                .map(PathBuf::from)
                .zip(env("OXTREE_AGENT_KEY").map(PathBuf::from)),
        )?;
        Ok(Client {
            target: Target::Https {
                host,
                port,
                tls: Arc::new(tls),
            },
            token: env("OXTREE_AGENT_TOKEN"),
        })
    }

    async fn send(
        &self,
        req: Request<Full<Bytes>>,
    ) -> Result<hyper::Response<hyper::body::Incoming>> {
        match &self.target {
            Target::Unix(p) => {
                let s = tokio::net::UnixStream::connect(p)
                    .await
                    .map_err(|e| AgentError::io(p, e))?;
                exchange(s, req).await
            }
            Target::Https { host, port, tls } => {
                let s = tokio::net::TcpStream::connect((host.as_str(), *port))
                    .await
                    .map_err(|e| AgentError::io(format!("{host}:{port}"), e))?;
                let name = rustls_pki_types::ServerName::try_from(host.clone())
                    .map_err(AgentError::tls)?;
                let s = tokio_rustls::TlsConnector::from(tls.clone())
                    .connect(name, s)
                    .await
                    .map_err(AgentError::tls)?;
                exchange(s, req).await
            }
        }
    }

    fn build(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Request<Full<Bytes>>> {
        let host = match &self.target {
            Target::Unix(_) => "localhost".to_string(),
            Target::Https { host, port, .. } => format!("{host}:{port}"),
        };
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header("host", host);
        if let Some(t) = &self.token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        let bytes = match body {
            Some(v) => {
                b = b.header("content-type", "application/json");
                Bytes::from(v.to_string())
            }
            None => Bytes::new(),
        };
        b.body(Full::new(bytes)).map_err(AgentError::client)
    }

    /// One JSON request.
    pub async fn request(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Reply> {
        let resp = self.send(self.build(method, path, body)?).await?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(AgentError::client)?
            .to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Reply { status, body })
    }

    /// Follow the events of operation `id` until its `end` event, calling
    /// `on_event` with each event's JSON; reconnects with `Last-Event-ID`
    /// when the stream breaks. Returns the finished operation.
    pub async fn follow(&self, id: &str, mut on_event: impl FnMut(&Value)) -> Result<Value> {
        let mut last: u64 = 0;
        let mut failures = 0;
        loop {
            let path = format!("/v1/operations/{id}/events");
            let mut req = self.build(Method::GET, &path, None)?;
            req.headers_mut()
                .insert("last-event-id", last.to_string().parse().unwrap());
            let r = async {
                let resp = self.send(req).await?;
                if !resp.status().is_success() {
                    let status = resp.status();
                    let bytes = resp
                        .into_body()
                        .collect()
                        .await
                        .map_err(AgentError::client)?
                        .to_bytes();
                    return Reply {
                        status,
                        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                    }
                    .ok()
                    .map(|_| None);
                }
                let mut body = resp.into_body();
                let mut parser = SseParser::default();
                while let Some(frame) = body.frame().await {
                    let frame = frame.map_err(AgentError::client)?;
                    let Some(data) = frame.data_ref() else {
                        continue;
                    };
                    for ev in parser.feed(data) {
                        if ev.event == "end" {
                            return Ok(serde_json::from_str(&ev.data).ok());
                        }
                        if let Some(i) = ev.id.as_deref().and_then(|i| i.parse().ok()) {
                            last = i;
                        }
                        if let Ok(v) = serde_json::from_str::<Value>(&ev.data) {
                            on_event(&v);
                        }
                    }
                }
                Ok(None)
            }
            .await;
            match r {
                Ok(Some(op)) => return Ok(op),
                Err(e @ AgentError::Api { .. }) => return Err(e),
                _ => {
                    failures += 1;
                    if failures > 30 {
                        return Err(AgentError::Client(format!(
                            "lost the event stream of operation {id}"
                        )));
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }
}

async fn exchange<S>(
    s: S,
    req: Request<Full<Bytes>>,
) -> Result<hyper::Response<hyper::body::Incoming>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
        .await
        .map_err(AgentError::client)?;
    tokio::spawn(conn);
    tx.send_request(req).await.map_err(AgentError::client)
}

fn client_tls(
    ca: Option<PathBuf>,
    identity: Option<(PathBuf, PathBuf)>,
) -> Result<rustls::ClientConfig> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let Some(ca) = ca else {
        return Err(AgentError::Config(
            "an https agent needs its CA certificate in $OXTREE_AGENT_CA".into(),
        ));
    };
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(&ca)
        .map_err(|e| AgentError::Config(format!("{}: {e}", ca.display())))?
    {
        let c = c.map_err(|e| AgentError::Config(format!("{}: {e}", ca.display())))?;
        roots.add(c).map_err(AgentError::tls)?;
    }
    let b = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(AgentError::tls)?
    .with_root_certificates(roots);
    match identity {
        Some((cert, key)) => {
            let certs = CertificateDer::pem_file_iter(&cert)
                .and_then(|i| i.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(|e| AgentError::Config(format!("{}: {e}", cert.display())))?;
            let key = PrivateKeyDer::from_pem_file(&key)
                .map_err(|e| AgentError::Config(format!("{}: {e}", key.display())))?;
            b.with_client_auth_cert(certs, key).map_err(AgentError::tls)
        }
        None => Ok(b.with_no_client_auth()),
    }
}

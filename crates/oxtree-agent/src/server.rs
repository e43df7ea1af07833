//! The listeners: the unix socket (peer credentials per connection) and
//! optionally TCP with TLS (client certificate per connection). Each
//! connection is served by hyper with the router, its [`Peer`] attached
//! to every request. Runs until SIGTERM or SIGINT.

use crate::audit::Audit;
use crate::auth::{cert_fingerprint, tls_config, Peer, Policy, Tokens};
use crate::error::{AgentError, Result};
use crate::ops::{HostConfig, Operations};
use crate::router::{router, App};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use oxtree_host::Reboot;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tower::ServiceExt;

/// Default unix socket.
pub const DEFAULT_SOCKET: &str = "/run/oxtree/oxtreed.sock";
/// Default audit log.
pub const DEFAULT_AUDIT_LOG: &str = "/var/log/oxtree/audit.log";

/// A client must send its request head within this time.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// TCP with TLS.
#[derive(Clone, Debug)]
pub struct TlsListen {
    pub addr: SocketAddr,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
    pub tokens: Option<PathBuf>,
}

/// Everything `oxtree agent` is started with.
pub struct Config {
    pub sysroot: PathBuf,
    pub run_dir: PathBuf,
    pub socket: PathBuf,
    /// Besides root, members of this group may use the socket.
    pub group: Option<u32>,
    pub tls: Option<TlsListen>,
    pub audit_log: PathBuf,
    pub reboot: Arc<dyn Reboot>,
    /// Run the automatic update loop (when its config enables it) and
    /// serve `GET /v1/updates`.
    pub updates: Option<UpdatesSetup>,
    /// Where static network configurations are written
    /// (`oxtree_system::network::NETWORK_DIR`).
    pub network_dir: PathBuf,
}

/// Where the update loop reads its config (drop-ins and machine-id under
/// `config_root`) and keeps its state.
#[derive(Clone, Debug)]
pub struct UpdatesSetup {
    pub config_root: PathBuf,
    pub state_dir: PathBuf,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("sysroot", &self.sysroot)
            .field("run_dir", &self.run_dir)
            .field("socket", &self.socket)
            .field("group", &self.group)
            .field("audit_log", &self.audit_log)
            .finish_non_exhaustive()
    }
}

/// Serve until SIGTERM/SIGINT; `ready` is called once the listeners are
/// bound (the binary prints a line tests wait for).
pub fn run(cfg: Config, ready: impl FnOnce(&str)) -> Result<()> {
    // Two workers are plenty for a control API and keep the idle
    // footprint small; the transactions run on their own thread.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| AgentError::io("tokio runtime", e))?;
    rt.block_on(serve(cfg, ready))
}

async fn serve(cfg: Config, ready: impl FnOnce(&str)) -> Result<()> {
    let tokens = match cfg.tls.as_ref().and_then(|t| t.tokens.as_ref()) {
        Some(p) => Some(Arc::new(Tokens::load(p)?)),
        None => None,
    };
    if let Some(t) = &cfg.tls {
        if t.client_ca.is_none() && t.tokens.is_none() {
            return Err(AgentError::Config(
                "--listen needs --client-ca or --tokens: TCP clients must authenticate".into(),
            ));
        }
    }
    let audit = Arc::new(Audit::open(&cfg.audit_log)?);
    let ops = Operations::start(
        HostConfig {
            sysroot: cfg.sysroot.clone(),
            run_dir: cfg.run_dir.clone(),
            reboot: cfg.reboot.clone(),
        },
        audit.clone(),
    );
    // The update loop: its config is read now so that a bad one stops the
    // agent with a clear error; it runs on its own thread (its
    // transactions wait for the sysroot lock like queued operations).
    let updates_cancel = oxtree_host::Cancel::new();
    let mut updates_thread = None;
    if let Some(u) = &cfg.updates {
        let (ucfg, id) = oxtree_updates::load(&u.config_root)
            .map_err(|e| AgentError::Config(format!("update config: {}", oxtree_io::Chain(&e))))?;
        if ucfg.enabled {
            let cx = oxtree_host::Context::new(&cfg.sysroot, &cfg.run_dir)
                .with_reboot(cfg.reboot.clone())
                .with_cancel(updates_cancel.clone());
            // Built here, not on the thread, so that what only the
            // updater checks (the lock server's URL) stops start-up too.
            let up = oxtree_updates::Updater::new(ucfg, id, cx, &u.state_dir).map_err(|e| {
                AgentError::Config(format!("update config: {}", oxtree_io::Chain(&e)))
            })?;
            let cancel = updates_cancel.clone();
            updates_thread = Some(std::thread::spawn(move || up.run(&cancel)));
        }
    }
    let app = router(App {
        ops: ops.clone(),
        policy: Policy {
            group: cfg.group,
            tokens,
        },
        audit,
        status: Default::default(),
        updates: cfg.updates.clone().map(Arc::new),
        network_dir: Arc::new(cfg.network_dir.clone()),
    });

    let unix = bind_unix(&cfg.socket)?;
    let mut what = format!("unix:{}", cfg.socket.display());
    let tls = match &cfg.tls {
        Some(t) => {
            let sc = tls_config(&t.cert, &t.key, t.client_ca.as_deref(), t.tokens.is_some())?;
            let l = TcpListener::bind(t.addr)
                .await
                .map_err(|e| AgentError::io(t.addr.to_string(), e))?;
            let addr = l.local_addr().map_err(|e| AgentError::io("listener", e))?;
            what.push_str(&format!(" https://{addr}"));
            Some((l, tokio_rustls::TlsAcceptor::from(Arc::new(sc))))
        }
        None => None,
    };
    ready(&what);

    let unix_app = app.clone();
    let unix_loop = async move {
        loop {
            let Ok((s, _)) = unix.accept().await else {
                continue;
            };
            let peer = match s.peer_cred() {
                Ok(c) => Peer::Unix {
                    uid: c.uid(),
                    gid: c.gid(),
                    pid: c.pid(),
                },
                Err(_) => continue,
            };
            tokio::spawn(connection(s, peer, unix_app.clone()));
        }
    };
    let tls_loop = async move {
        let Some((l, acceptor)) = tls else {
            return std::future::pending::<()>().await;
        };
        loop {
            let Ok((s, _)) = l.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            let app = app.clone();
            tokio::spawn(async move {
                let Ok(Ok(tls)) = tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(s)).await
                else {
                    return;
                };
                let cert = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .map(|c| cert_fingerprint(c.as_ref()));
                connection(tls, Peer::Tls { cert }, app).await;
            });
        }
    };
    let stop = async {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).ok();
        let t = async {
            match term.as_mut() {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = t => {},
            _ = tokio::signal::ctrl_c() => {},
        }
    };
    tokio::select! {
        _ = unix_loop => {},
        _ = tls_loop => {},
        _ = stop => {},
    }
    updates_cancel.cancel();
    let o = ops.clone();
    let _ = tokio::task::spawn_blocking(move || o.shutdown(Duration::from_secs(25))).await;
    if let Some(t) = updates_thread {
        let _ = tokio::task::spawn_blocking(move || t.join()).await;
    }
    let _ = std::fs::remove_file(&cfg.socket);
    Ok(())
}

/// Bind the socket: its directory is created (0755), a stale socket
/// replaced, and the socket is 0666 — who may do what is decided per
/// request from the peer's credentials, so that others get a clear 403
/// instead of EACCES.
fn bind_unix(path: &std::path::Path) -> Result<UnixListener> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|e| AgentError::io(d, e))?;
    }
    if let Ok(m) = std::fs::symlink_metadata(path) {
        if !m.file_type().is_socket() {
            return Err(AgentError::Config(format!(
                "{} exists and is not a socket",
                path.display()
            )));
        }
        std::fs::remove_file(path).map_err(|e| AgentError::io(path, e))?;
    }
    let l = UnixListener::bind(path).map_err(|e| AgentError::io(path, e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))
        .map_err(|e| AgentError::io(path, e))?;
    Ok(l)
}

async fn connection<S>(s: S, peer: Peer, app: Router)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = app.map_request(move |mut req: hyper::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(peer.clone());
        req
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(s), TowerToHyperService::new(svc))
        .await;
}

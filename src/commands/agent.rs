//! `oxtree agent` (also run as `oxtreed`): the host agent. Parses its
//! options and runs `oxtree_agent::server`.

use anyhow::{bail, Context, Result};
use oxtree_agent::server::{Config, TlsListen, DEFAULT_AUDIT_LOG, DEFAULT_SOCKET};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct Args {
    /// The system root to manage
    #[arg(long, value_name = "PATH", default_value = "/")]
    sysroot: PathBuf,
    /// Runtime state directory (staged deployment)
    #[arg(long, value_name = "PATH", default_value = "/run")]
    run_dir: PathBuf,
    /// The unix socket to serve on
    #[arg(long, value_name = "PATH", default_value = DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Besides root, members of this group (name or gid) may use the socket
    #[arg(long, value_name = "GROUP")]
    group: Option<String>,
    /// Also serve HTTPS on ADDR:PORT (needs --tls-cert, --tls-key and
    /// --client-ca or --tokens)
    #[arg(long, value_name = "ADDR:PORT", requires_all = ["tls_cert", "tls_key"])]
    listen: Option<SocketAddr>,
    /// Server certificate chain (PEM)
    #[arg(long, value_name = "FILE", requires = "listen")]
    tls_cert: Option<PathBuf>,
    /// Server private key (PEM)
    #[arg(long, value_name = "FILE", requires = "listen")]
    tls_key: Option<PathBuf>,
    /// Authenticate TCP clients by certificates signed by this CA (PEM)
    #[arg(long, value_name = "FILE", requires = "listen")]
    client_ca: Option<PathBuf>,
    /// Authenticate TCP clients by bearer tokens: `NAME SECRET [read|admin]`
    /// per line, in a file only its owner may read (0600)
    #[arg(long, value_name = "FILE", requires = "listen")]
    tokens: Option<PathBuf>,
    /// The audit log (JSON lines)
    #[arg(long, value_name = "FILE", default_value = DEFAULT_AUDIT_LOG)]
    audit_log: PathBuf,
    /// Reboot by running this with `sh -c` instead of `systemctl reboot`
    #[arg(long, value_name = "COMMAND", env = "OXTREE_REBOOT_COMMAND")]
    reboot_command: Option<String>,
    /// Run the automatic update loop when its config enables it, and serve
    /// GET /v1/updates (config: `{usr/lib,run,etc}/oxtree/updates.d`)
    #[arg(long)]
    updates: bool,
    /// Where the update config drop-ins and `etc/machine-id` are read
    #[arg(long, value_name = "PATH", default_value = "/", requires = "updates")]
    updates_config_root: PathBuf,
    /// Where the update loop keeps its state across reboots
    #[arg(long, value_name = "PATH", default_value = oxtree_updates::DEFAULT_STATE_DIR, requires = "updates")]
    updates_state_dir: PathBuf,
    /// Where PUT /v1/network/links/NAME writes its `.network` files
    #[arg(long, value_name = "PATH", default_value = oxtree_system::network::NETWORK_DIR)]
    network_dir: PathBuf,
}

pub fn run(a: Args) -> Result<()> {
    let tls = match a.listen {
        Some(addr) => {
            if a.client_ca.is_none() && a.tokens.is_none() {
                bail!("--listen needs --client-ca or --tokens: TCP clients must authenticate");
            }
            Some(TlsListen {
                addr,
                cert: a.tls_cert.clone().context("--listen needs --tls-cert")?,
                key: a.tls_key.clone().context("--listen needs --tls-key")?,
                client_ca: a.client_ca.clone(),
                tokens: a.tokens.clone(),
            })
        }
        None => None,
    };
    let group = match &a.group {
        Some(g) => Some(gid(g)?),
        None => None,
    };
    let reboot: Arc<dyn oxtree_host::Reboot> = match a.reboot_command.filter(|c| !c.is_empty()) {
        Some(c) => Arc::new(oxtree_host::CommandReboot(c)),
        None => Arc::new(oxtree_host::SystemctlReboot),
    };
    let cfg = Config {
        sysroot: a.sysroot,
        run_dir: a.run_dir,
        socket: a.socket,
        group,
        tls,
        audit_log: a.audit_log,
        reboot,
        updates: a.updates.then_some(oxtree_agent::server::UpdatesSetup {
            config_root: a.updates_config_root,
            state_dir: a.updates_state_dir,
        }),
        network_dir: a.network_dir,
    };
    oxtree_agent::server::run(cfg, |what| {
        // Tests and systemd's log wait for this line.
        println!("oxtreed listening on {what}");
    })?;
    Ok(())
}

/// A group name (from /etc/group) or a numeric gid.
fn gid(g: &str) -> Result<u32> {
    if let Ok(n) = g.parse() {
        return Ok(n);
    }
    let text = std::fs::read_to_string("/etc/group").context("reading /etc/group")?;
    text.lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 3 && f[0] == g)
                .then(|| f[2].parse().ok())
                .flatten()
        })
        .with_context(|| format!("no group {g:?} in /etc/group"))
}

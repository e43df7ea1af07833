//! `oxtree fleetlock`: the FleetLock server (`serve --config=FILE`), the
//! client's two calls (`pre-reboot`, `steady-state`) for operators and
//! scripts, and the server's admin API (`admin groups|release|rollout|
//! resume`). The logic is in crates/oxtree-fleetlock.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use oxtree_fleetlock::server::{self, Event};
use oxtree_fleetlock::{AdminClient, Client, ClientError, ClientParams, RolledBack, Rollout};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Subcommand)]
enum Cmd {
    /// Run a FleetLock server backed by etcd (airlock's TOML config plus
    /// oxtree's keys; SIGHUP re-reads it)
    Serve(ServeArgs),
    /// Ask for a reboot slot (FleetLock RecursiveLock)
    PreReboot(CallArgs),
    /// Release the reboot slot (FleetLock UnlockIfHeld)
    SteadyState(SteadyArgs),
    /// The server's admin API: holders, force-release, canary rollout
    Admin(AdminArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Configuration file
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Log one JSON object per line instead of text
    #[arg(long)]
    json_log: bool,
}

#[derive(clap::Args)]
struct CallArgs {
    /// The server's base URL (Zincati's `[updates.fleet_lock] base_url`)
    #[arg(long, value_name = "URL")]
    url: String,
    /// This node's id
    #[arg(long)]
    id: String,
    /// Reboot group
    #[arg(long, default_value = "default")]
    group: String,
    /// oxtree extension: the version being rebooted into (pre-reboot) or
    /// running now (steady-state); plain FleetLock sends none
    #[arg(long = "update-version", value_name = "VERSION")]
    version: Option<String>,
    /// Seconds to wait for the server
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// Print the result as JSON
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct SteadyArgs {
    #[command(flatten)]
    call: CallArgs,
    /// oxtree extension: this node booted VERSION, failed and rolled back
    /// (it keeps its slot; a canary halts the rollout)
    #[arg(long, value_name = "VERSION", requires = "reason")]
    rolled_back_from: Option<String>,
    /// Why it rolled back
    #[arg(long, requires = "rolled_back_from")]
    reason: Option<String>,
}

#[derive(clap::Args)]
struct AdminArgs {
    /// The admin listener's base URL (required)
    #[arg(long, global = true, value_name = "URL")]
    url: Option<String>,
    /// File holding the admin bearer token
    #[arg(long, global = true, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Print JSON (the default for `groups` and `rollout` is text)
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: AdminCmd,
}

#[derive(clap::Subcommand)]
enum AdminCmd {
    /// List groups, slots and holders
    Groups,
    /// Force-release a holder's slot
    Release { group: String, id: String },
    /// Show the canary rollout and why it is halted
    Rollout,
    /// Lift a halted rollout
    Resume,
}

pub fn run(a: Args) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match a.cmd {
        Cmd::Serve(s) => rt.block_on(serve(s)),
        Cmd::PreReboot(c) => rt.block_on(call(c, None, true)),
        Cmd::SteadyState(s) => {
            let rb = match (s.rolled_back_from, s.reason) {
                (Some(from), Some(reason)) => Some(RolledBack { from, reason }),
                _ => None,
            };
            rt.block_on(call(s.call, rb, false))
        }
        Cmd::Admin(a) => rt.block_on(admin(a)),
    }
}

fn render_event(e: &Event) -> String {
    match e {
        Event::Listening { what, addr } => format!("listening: {what} on http://{addr}"),
        Event::Request {
            endpoint,
            group,
            id,
            version,
            result,
            status,
            detail,
            ms,
        } => {
            let mut s = format!("{endpoint}: {result} ({status})");
            if let Some(g) = group {
                s.push_str(&format!(" group={g}"));
            }
            if let Some(i) = id {
                s.push_str(&format!(" id={i:?}"));
            }
            if let Some(v) = version {
                s.push_str(&format!(" version={v:?}"));
            }
            s.push_str(&format!(" {ms:.1}ms"));
            if let Some(d) = detail {
                s.push_str(&format!(": {d}"));
            }
            s
        }
        Event::ForceReleased { group, id } => format!("admin: released {id:?} in group {group}"),
        Event::Resumed => "admin: rollout resumed".into(),
        Event::Reloaded {
            groups,
            needs_restart,
        } => {
            let mut s = format!("configuration reloaded: {groups} groups");
            if !needs_restart.is_empty() {
                s.push_str(&format!(
                    "; changes to [{}] apply after a restart",
                    needs_restart.join("], [")
                ));
            }
            s
        }
        Event::ReloadFailed { error } => {
            format!("configuration reload failed, keeping the old one: {error}")
        }
        Event::Stopping => "stopping".into(),
    }
}

async fn serve(s: ServeArgs) -> Result<()> {
    let json = s.json_log;
    let observe: server::Observer = Arc::new(move |e: Event| {
        let line = if json {
            serde_json::to_string(&e).unwrap_or_default()
        } else {
            format!(
                "{} {}",
                chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ"),
                render_event(&e)
            )
        };
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{line}");
    });
    server::serve(&s.config, observe).await?;
    Ok(())
}

async fn call(c: CallArgs, rolled_back: Option<RolledBack>, lock: bool) -> Result<()> {
    let client = Client::new(&c.url, Duration::from_secs(c.timeout))?;
    let params = ClientParams {
        id: c.id,
        group: c.group,
    };
    let rollout = (c.version.is_some() || rolled_back.is_some()).then(|| Rollout {
        version: c.version.clone(),
        rolled_back,
    });
    let r = if lock {
        client.pre_reboot(&params, rollout.as_ref()).await
    } else {
        client.steady_state(&params, rollout.as_ref()).await
    };
    let what = if lock { "lock" } else { "unlock" };
    match r {
        Ok(()) => {
            if c.json {
                println!("{}", serde_json::json!({ "ok": true }));
            } else {
                println!(
                    "{}: {what} ok",
                    if lock { "pre-reboot" } else { "steady-state" }
                );
            }
            Ok(())
        }
        Err(ClientError::Refused {
            status,
            kind,
            value,
            url,
        }) if c.json => {
            println!(
                "{}",
                serde_json::json!({ "ok": false, "status": status, "kind": kind, "value": value })
            );
            anyhow::bail!("{url}: HTTP {status}: {kind}")
        }
        Err(e) => Err(e.into()),
    }
}

async fn admin(a: AdminArgs) -> Result<()> {
    let token = match &a.token_file {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .with_context(|| format!("reading {}", p.display()))?
                .trim()
                .to_owned(),
        ),
        None => None,
    };
    let url = a
        .url
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("fleetlock admin: --url is required"))?;
    let c = AdminClient::new(url, token, Duration::from_secs(30))?;
    let v = match &a.cmd {
        AdminCmd::Groups => c.groups().await?,
        AdminCmd::Release { group, id } => c.release(group, id).await?,
        AdminCmd::Rollout => c.rollout().await?,
        AdminCmd::Resume => c.resume().await?,
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    match &a.cmd {
        AdminCmd::Groups => {
            for g in v.as_array().into_iter().flatten() {
                let holders = g["holders"].as_array().cloned().unwrap_or_default();
                println!(
                    "{}{}: {}/{} slots taken",
                    g["name"].as_str().unwrap_or("?"),
                    if g["canary"].as_bool() == Some(true) {
                        " (canary)"
                    } else {
                        ""
                    },
                    holders.len(),
                    g["slots"]
                );
                for h in holders {
                    let mut line = format!("  {}", h["id"]);
                    if let Some(v) = h["version"].as_str() {
                        line.push_str(&format!(" version={v}"));
                    }
                    match h["lease_ttl_left"].as_i64() {
                        Some(t) => line.push_str(&format!(" lease={t}s")),
                        None => line.push_str(" (no lease)"),
                    }
                    if let Some(rb) = h.get("rolled_back").filter(|r| !r.is_null()) {
                        line.push_str(&format!(
                            " rolled back from {}: {}",
                            rb["from"], rb["reason"]
                        ));
                    }
                    println!("{line}");
                }
            }
        }
        AdminCmd::Release { group, id } => println!("released {id:?} in group {group}"),
        AdminCmd::Rollout => {
            let target = v["target"].as_str().unwrap_or("(none)");
            println!("target: {target}");
            let passed: Vec<&str> = v["passed"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p.as_str())
                .collect();
            println!("passed: {}", passed.join(" "));
            match v["why"].as_str() {
                Some(why) => println!("{why}"),
                None => println!("not halted"),
            }
        }
        AdminCmd::Resume => println!(
            "{}",
            if v["resumed"].as_bool() == Some(true) {
                "rollout resumed"
            } else {
                "rollout was not halted"
            }
        ),
    }
    Ok(())
}

//! `oxtree updates run|status`: automatic updates (Zincati's role) from
//! the command line, for tests and cron-like use; `oxtreed --updates`
//! runs the same loop. The logic is in crates/oxtree-updates.

use anyhow::{Context as _, Result};
use oxtree_host::{Cancel, Context, NullReporter};
use oxtree_updates::{Step, Updater};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args, Clone)]
pub struct Common {
    /// The system root to update
    #[arg(long, value_name = "PATH", default_value = "/")]
    sysroot: PathBuf,
    /// Runtime state directory (staged deployment)
    #[arg(long, value_name = "PATH", default_value = "/run")]
    run_dir: PathBuf,
    /// Where the config drop-ins (`{usr/lib,run,etc}/oxtree/updates.d`)
    /// and `etc/machine-id` are read
    #[arg(long, value_name = "PATH", default_value = "/")]
    config_root: PathBuf,
    /// Where the loop keeps its state across reboots
    #[arg(long, value_name = "PATH", default_value = oxtree_updates::DEFAULT_STATE_DIR)]
    state_dir: PathBuf,
    /// One JSON object per line
    #[arg(long)]
    json: bool,
}

#[derive(clap::Subcommand)]
enum Cmd {
    /// Run the update loop until SIGTERM/SIGINT (or one pass with --once)
    Run {
        #[command(flatten)]
        common: Common,
        /// One pass, then exit (status 0 unless the pass failed)
        #[arg(long)]
        once: bool,
    },
    /// The configuration and the loop's state
    Status {
        #[command(flatten)]
        common: Common,
    },
}

static CANCEL: OnceLock<Cancel> = OnceLock::new();

extern "C" fn on_term(_: libc::c_int) {
    if let Some(c) = CANCEL.get() {
        c.cancel();
    }
}

fn updater(c: &Common) -> Result<Updater> {
    let (cfg, id) = oxtree_updates::load(&c.config_root).with_context(|| {
        format!(
            "reading the update config under {}",
            c.config_root.display()
        )
    })?;
    let mut cx = Context::new(&c.sysroot, &c.run_dir).with_reporter(Arc::new(NullReporter));
    if let Ok(cmd) = std::env::var("OXTREE_REBOOT_COMMAND") {
        if !cmd.is_empty() {
            cx = cx.with_reboot(Arc::new(oxtree_host::CommandReboot(cmd)));
        }
    }
    Ok(Updater::new(cfg, id, cx, &c.state_dir)?)
}

pub fn render(s: &Step) -> String {
    match s {
        Step::Disabled => "updates are disabled ([updates] enabled = false)".into(),
        Step::SteadyState { version } => format!("steady state on {version}"),
        Step::SteadyStateFailed { version, kind, why } => format!(
            "steady state on {version} not reported yet: {}{why}",
            kind.as_deref()
                .map(|k| format!("{k}: "))
                .unwrap_or_default()
        ),
        Step::RolledBack { from, reason } => {
            format!("the update to {from} rolled back ({reason}); keeping the reboot slot")
        }
        Step::WaitingForBoot { version } => format!("{version} has not reached boot-complete yet"),
        Step::WaitingForReboot { version } => format!("waiting for the reboot into {version}"),
        Step::NoUpdate { version } => format!("no update; running {version}"),
        Step::Skipped { version, why } => format!("not updating to {version}: {why}"),
        Step::WaitingForWindow { version, next } => {
            format!("{version} staged; waiting for the window at {next}")
        }
        Step::WaitingForLock { version, kind, why } => format!(
            "{version} staged; waiting for the reboot lock: {}{why}",
            kind.as_deref()
                .map(|k| format!("{k}: "))
                .unwrap_or_default()
        ),
        Step::Rebooting { version } => format!("rebooting into {version}"),
        Step::Failed { error } => format!("failed: {error}"),
        _ => format!("{s:?}"),
    }
}

fn print(json: bool, s: &Step) {
    let line = if json {
        serde_json::to_string(s).unwrap_or_default()
    } else {
        format!(
            "{} {}",
            chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ"),
            render(s)
        )
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

pub fn run(a: Args) -> Result<()> {
    match a.cmd {
        Cmd::Run { common, once } => {
            let json = common.json;
            let u = updater(&common)?.with_observer(Arc::new(move |s: &Step| print(json, s)));
            if once {
                u.run_once()?;
                return Ok(());
            }
            let cancel = CANCEL.get_or_init(Cancel::new).clone();
            // SAFETY: the handler only stores to an atomic.
            #[allow(unsafe_code)]
            unsafe {
                libc::signal(libc::SIGTERM, on_term as *const () as libc::sighandler_t);
                libc::signal(libc::SIGINT, on_term as *const () as libc::sighandler_t);
            }
            u.run(&cancel);
            Ok(())
        }
        Cmd::Status { common } => {
            let s = updater(&common)?.status()?;
            if common.json {
                println!("{}", serde_json::to_string_pretty(&s)?);
                return Ok(());
            }
            println!(
                "Updates: {}",
                if s.enabled { "enabled" } else { "disabled" }
            );
            println!("Strategy: {:?}", s.strategy);
            println!("Node: {} (group {})", s.node_id, s.group);
            if let Some(f) = &s.fleet_lock {
                println!("FleetLock: {f}");
            }
            for w in &s.windows {
                println!(
                    "Window: days {:?} at {:02}:{:02} UTC for {} min",
                    w.days,
                    w.start_minute / 60,
                    w.start_minute % 60,
                    w.length_minutes
                );
            }
            if let Some(p) = &s.state.pending {
                println!("Pending: {} (from {})", p.target.name(), p.from.name());
            }
            if let Some(r) = &s.state.rolled_back {
                println!(
                    "Rolled back: {} at {}: {}",
                    r.failed.name(),
                    r.time,
                    r.reason
                );
            }
            if let Some(l) = &s.state.last {
                println!("Last: {} {}", l.time, render(&l.step));
            }
            Ok(())
        }
    }
}

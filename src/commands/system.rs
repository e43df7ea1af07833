//! `oxtree units`, `oxtree journal` and `oxtree network`: the host's
//! systemd units, a unit's journal and networkd links (PMD's `systemd` and
//! `net` commands). Run here through `oxtree_system`, or with
//! `--host=unix:///…|https://…` through an oxtreed agent; both give the
//! library's types, rendered the same way.

use anyhow::{Context, Result};
use hyper::Method;
use oxtree_agent::client::Client;
use oxtree_system::journal::{unit_journal, JournalEntry};
use oxtree_system::network::{Link, NetworkDir, Networkd, StaticConfig, NETWORK_DIR};
use oxtree_system::units::{ActionOutcome, Systemd, UnitAction, UnitStatus, UnitSummary};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct UnitsArgs {
    #[command(subcommand)]
    cmd: UnitsCmd,
    /// JSON output
    #[arg(long, global = true)]
    json: bool,
}

#[derive(clap::Subcommand)]
enum UnitsCmd {
    /// The loaded units
    List {
        /// Only units of this type: service, timer, socket, ...
        #[arg(long = "type", value_name = "TYPE")]
        kind: Option<String>,
    },
    /// One unit's state
    Status { unit: String },
    /// Start a unit and wait for its job
    Start { unit: String },
    /// Stop a unit and wait for its job
    Stop { unit: String },
    /// Restart a unit and wait for its job
    Restart { unit: String },
    /// Enable a unit (its [Install] symlinks), then reload systemd
    Enable { unit: String },
    /// Disable a unit, then reload systemd
    Disable { unit: String },
}

#[derive(clap::Args)]
pub struct JournalArgs {
    /// The unit whose journal to show
    unit: String,
    /// How many of the last lines
    #[arg(short = 'n', long, default_value_t = 50)]
    lines: usize,
    /// JSON output
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct NetworkArgs {
    #[command(subcommand)]
    cmd: NetworkCmd,
    /// JSON output
    #[arg(long, global = true)]
    json: bool,
}

#[derive(clap::Subcommand)]
enum NetworkCmd {
    /// Links with their state and addresses
    List,
    /// Give a link static addresses, a gateway and DNS servers (a
    /// .network file in /etc/systemd/network, applied at once)
    Set {
        link: String,
        /// ADDRESS/PREFIX; repeat for more
        #[arg(long = "address", value_name = "ADDR/PREFIX", required = true)]
        addresses: Vec<String>,
        #[arg(long, value_name = "ADDR")]
        gateway: Option<String>,
        /// Repeat for more
        #[arg(long, value_name = "ADDR")]
        dns: Vec<String>,
        /// Where the .network file goes (local runs only)
        #[arg(long, value_name = "PATH", default_value = NETWORK_DIR)]
        network_dir: PathBuf,
    },
    /// Remove a link's static configuration set by `network set`
    Unset {
        link: String,
        #[arg(long, value_name = "PATH", default_value = NETWORK_DIR)]
        network_dir: PathBuf,
    },
}

/// A request to the agent, decoded into a library type.
fn call<T: DeserializeOwned>(
    host: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Result<T> {
    let c = Client::new(host)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let v = rt.block_on(c.request(method, path, body))?.ok()?;
    serde_json::from_value(v).with_context(|| format!("the agent's answer to {path}"))
}

/// A path segment: unit and link names are checked by the agent; here they
/// only need escaping.
fn seg(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn print_json(v: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

pub fn units(a: UnitsArgs, host: Option<&str>) -> Result<()> {
    let action = |unit: &str, act: UnitAction| -> Result<ActionOutcome> {
        Ok(match host {
            Some(h) => call(
                h,
                Method::POST,
                &format!("/v1/units/{}/{}", seg(unit), act.as_str()),
                None,
            )?,
            None => Systemd::system()?.act(unit, act, oxtree_agent::system::UNIT_JOB_TIMEOUT)?,
        })
    };
    match a.cmd {
        UnitsCmd::List { kind } => {
            #[derive(serde::Deserialize, serde::Serialize)]
            struct Units {
                units: Vec<UnitSummary>,
            }
            let list = match host {
                Some(h) => {
                    let q = kind
                        .as_deref()
                        .map(|k| format!("?type={}", seg(k)))
                        .unwrap_or_default();
                    call::<Units>(h, Method::GET, &format!("/v1/units{q}"), None)?.units
                }
                None => Systemd::system()?.list(kind.as_deref())?,
            };
            if a.json {
                return print_json(&Units { units: list });
            }
            let w = list.iter().map(|u| u.name.len()).max().unwrap_or(4).max(4);
            println!(
                "{:w$} {:9} {:8} {:9} DESCRIPTION",
                "UNIT", "LOAD", "ACTIVE", "SUB"
            );
            for u in &list {
                println!(
                    "{:w$} {:9} {:8} {:9} {}",
                    u.name, u.load_state, u.active_state, u.sub_state, u.description
                );
            }
            println!("\n{} loaded units listed.", list.len());
            Ok(())
        }
        UnitsCmd::Status { unit } => {
            let s: UnitStatus = match host {
                Some(h) => call(h, Method::GET, &format!("/v1/units/{}", seg(&unit)), None)?,
                None => Systemd::system()?.status(&unit)?,
            };
            if a.json {
                return print_json(&s);
            }
            print_status(&s);
            Ok(())
        }
        UnitsCmd::Start { unit } => done(action(&unit, UnitAction::Start)?, a.json),
        UnitsCmd::Stop { unit } => done(action(&unit, UnitAction::Stop)?, a.json),
        UnitsCmd::Restart { unit } => done(action(&unit, UnitAction::Restart)?, a.json),
        UnitsCmd::Enable { unit } => done(action(&unit, UnitAction::Enable)?, a.json),
        UnitsCmd::Disable { unit } => done(action(&unit, UnitAction::Disable)?, a.json),
    }
}

fn print_status(s: &UnitStatus) {
    println!("{} - {}", s.name, s.description);
    let file = match s.unit_file_state.as_str() {
        "" => String::new(),
        f => format!("; {f}"),
    };
    println!("     Loaded: {} ({}{file})", s.load_state, s.fragment_path);
    let since = s
        .active_since
        .as_deref()
        .map(|t| format!(" since {t}"))
        .unwrap_or_default();
    println!("     Active: {} ({}){since}", s.active_state, s.sub_state);
    if let Some(p) = s.main_pid {
        println!("   Main PID: {p}");
    }
    if let Some(r) = s.result.as_deref().filter(|r| *r != "success") {
        println!("     Result: {r}");
    }
}

fn done(o: ActionOutcome, json: bool) -> Result<()> {
    if json {
        return print_json(&o);
    }
    for c in &o.changes {
        match c.change.as_str() {
            "symlink" => println!("Created symlink {} → {}.", c.file, c.destination),
            "unlink" => println!("Removed \"{}\".", c.file),
            other => println!("{other}: {} {}", c.file, c.destination),
        }
    }
    if let Some(u) = &o.unit {
        println!(
            "{}: {} ({}), {}",
            u.name,
            u.active_state,
            u.sub_state,
            if u.unit_file_state.is_empty() {
                "no unit file"
            } else {
                &u.unit_file_state
            }
        );
    }
    Ok(())
}

pub fn journal(a: JournalArgs, host: Option<&str>) -> Result<()> {
    #[derive(serde::Deserialize, serde::Serialize)]
    struct Entries {
        entries: Vec<JournalEntry>,
    }
    let entries = match host {
        Some(h) => {
            call::<Entries>(
                h,
                Method::GET,
                &format!("/v1/units/{}/journal?lines={}", seg(&a.unit), a.lines),
                None,
            )?
            .entries
        }
        None => unit_journal(&a.unit, a.lines)?,
    };
    if a.json {
        return print_json(&Entries { entries });
    }
    for e in &entries {
        let pid = e.pid.map(|p| format!("[{p}]")).unwrap_or_default();
        println!(
            "{} {}{pid}: {}",
            e.time.as_deref().unwrap_or("-"),
            a.unit,
            e.message
        );
    }
    Ok(())
}

pub fn network(a: NetworkArgs, host: Option<&str>) -> Result<()> {
    match a.cmd {
        NetworkCmd::List => {
            #[derive(serde::Deserialize, serde::Serialize)]
            struct Links {
                links: Vec<Link>,
            }
            let links = match host {
                Some(h) => call::<Links>(h, Method::GET, "/v1/network/links", None)?.links,
                None => Networkd::system()?.links()?,
            };
            if a.json {
                return print_json(&Links { links });
            }
            println!(
                "{:>3} {:16} {:10} {:12} SETUP",
                "IDX", "LINK", "TYPE", "OPERATIONAL"
            );
            for l in &links {
                print_link(l);
            }
            Ok(())
        }
        NetworkCmd::Set {
            link,
            addresses,
            gateway,
            dns,
            network_dir,
        } => {
            let config = StaticConfig {
                addresses,
                gateway,
                dns,
            };
            let l: Link = match host {
                Some(h) => call(
                    h,
                    Method::PUT,
                    &format!("/v1/network/links/{}", seg(&link)),
                    Some(&serde_json::to_value(&config)?),
                )?,
                None => Networkd::system()?.set_static(
                    &NetworkDir::open(&network_dir)?,
                    &link,
                    &config,
                )?,
            };
            if a.json {
                return print_json(&l);
            }
            print_link(&l);
            Ok(())
        }
        NetworkCmd::Unset { link, network_dir } => {
            let l: Link = match host {
                Some(h) => call(
                    h,
                    Method::DELETE,
                    &format!("/v1/network/links/{}", seg(&link)),
                    None,
                )?,
                None => match Networkd::system()?
                    .unset_static(&NetworkDir::open(&network_dir)?, &link)?
                {
                    (true, l) => l,
                    (false, _) => anyhow::bail!("{link} has no static configuration from oxtree"),
                },
            };
            if a.json {
                return print_json(&l);
            }
            print_link(&l);
            Ok(())
        }
    }
}

fn print_link(l: &Link) {
    let o = |s: &Option<String>| s.clone().unwrap_or_else(|| "-".into());
    println!(
        "{:>3} {:16} {:10} {:12} {}",
        l.index,
        l.name,
        o(&l.kind),
        o(&l.operational_state),
        o(&l.setup_state)
    );
    if let Some(f) = &l.network_file {
        println!("      Network file: {f}");
    }
    for a in &l.addresses {
        let src = a
            .source
            .as_deref()
            .map(|s| format!(" ({s})"))
            .unwrap_or_default();
        println!("      Address: {}/{}{src}", a.address, a.prefix_length);
    }
    for d in &l.dns {
        println!("      DNS: {d}");
    }
}

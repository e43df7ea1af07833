//! `oxtree admin …`: sysroot and deployment management, with ostree's
//! command names, flags and (for a sysroot that is not booted) output.

use crate::output::format_size;
use anyhow::{bail, Context, Result};
use oxtree_sysroot::write::WriteReport;
use oxtree_sysroot::{DeployOptions, KeyFile, Sysroot};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// Use the system root at PATH
    #[arg(long, global = true, value_name = "PATH", default_value = "/")]
    sysroot: PathBuf,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(clap::Subcommand)]
enum Cmd {
    /// Initialize a root filesystem with an empty bare repository
    InitFs { path: PathBuf },
    /// Initialize a new stateroot (osname)
    #[command(visible_alias = "stateroot-init")]
    OsInit { osname: String },
    /// Check out a revision as a new deployment and make it the default
    Deploy(DeployArgs),
    /// List deployments
    Status {
        /// Output JSON
        #[arg(long)]
        json: bool,
    },
    /// Delete deployment INDEX
    Undeploy { index: usize },
    /// Make deployment INDEX the default (rpm-ostree semantics)
    SetDefault { index: usize },
    /// Make the previous deployment the default (rpm-ostree semantics)
    Rollback,
    /// Exempt deployments from garbage collection
    Pin {
        /// Unset pin
        #[arg(short = 'u', long)]
        unpin: bool,
        #[arg(required = true)]
        index: Vec<usize>,
    },
    /// Change the remote and ref a deployment follows
    SetOrigin {
        /// Deployment index (default: the merge deployment)
        #[arg(long)]
        index: Option<usize>,
        /// Set config option KEY=VALUE for the remote
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        remote: String,
        url: String,
        branch: Option<String>,
    },
    /// Delete leftover deployments, boot files and unreferenced objects
    Cleanup,
    /// List local changes to /etc of the merge deployment
    ConfigDiff {
        /// Use a different operating system root than the current one
        #[arg(long)]
        os: Option<String>,
    },
    /// Not implemented yet
    #[command(external_subcommand)]
    Other(Vec<String>),
}

#[derive(clap::Args)]
struct DeployArgs {
    /// Use a different operating system root than the current one
    #[arg(long)]
    os: Option<String>,
    /// Set kernel argument, like root=/dev/sda1; replaces an earlier one with the same name
    #[arg(long = "karg", value_name = "NAME=VALUE")]
    karg: Vec<String>,
    /// Append kernel argument
    #[arg(long = "karg-append", value_name = "NAME=VALUE")]
    karg_append: Vec<String>,
    /// Specify an origin file
    #[arg(long = "origin-file", value_name = "FILENAME")]
    origin_file: Option<PathBuf>,
    /// Do not delete previous deployments
    #[arg(long)]
    retain: bool,
    /// Do not make the new deployment the default
    #[arg(long)]
    not_as_default: bool,
    /// Refspec or checksum
    rev: String,
}

fn write_line(w: &WriteReport) {
    let what = if w.bootconfig_swap {
        "Bootloader updated"
    } else {
        "Transaction complete"
    };
    println!(
        "{what}; bootconfig swap: {}; bootversion: boot.{}.{}, deployment count change: {}",
        if w.bootconfig_swap { "yes" } else { "no" },
        w.bootversion,
        w.subbootversion,
        w.count_change
    );
}

fn cleanup(s: &mut Sysroot) -> Result<()> {
    let r = s.cleanup().context("cleaning up")?;
    if r.prune.freed > 0 {
        println!("Freed objects: {}", format_size(r.prune.freed));
    }
    Ok(())
}

fn open(path: &Path) -> Result<Sysroot> {
    Sysroot::open_locked(path).with_context(|| format!("opening sysroot {}", path.display()))
}

pub fn run(_repo: Option<PathBuf>, a: Args) -> Result<()> {
    let sr = a.sysroot.as_path();
    match a.command {
        Cmd::InitFs { path } => oxtree_sysroot::init_fs(&path)?,
        Cmd::OsInit { osname } => {
            open(sr)?.init_stateroot(&osname)?;
            println!("ostree/deploy/{osname} initialized as OSTree root");
        }
        Cmd::Deploy(d) => {
            let mut s = open(sr)?;
            let origin = match &d.origin_file {
                Some(p) => {
                    let t = std::fs::read_to_string(p)
                        .with_context(|| format!("reading {}", p.display()))?;
                    Some(KeyFile::parse(&t).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?)
                }
                None => None,
            };
            let opts = DeployOptions {
                osname: d.os.clone(),
                karg_replace: d.karg.clone(),
                karg_append: d.karg_append.clone(),
                origin,
                retain: d.retain,
                not_as_default: d.not_as_default,
            };
            let r = s.deploy(&d.rev, &opts)?;
            if let Some(e) = &r.etc {
                println!(
                    "Copying /etc changes: {} modified, {} removed, {} added",
                    e.modified.len(),
                    e.removed.len(),
                    e.added.len()
                );
            }
            write_line(&r.write);
            cleanup(&mut s)?;
        }
        Cmd::Status { json } => status(&Sysroot::open(sr)?, json)?,
        Cmd::Undeploy { index } => {
            let mut s = open(sr)?;
            let (d, w) = s.undeploy(index)?;
            write_line(&w);
            cleanup(&mut s)?;
            println!("Deleted deployment {}", d.name());
        }
        Cmd::SetDefault { index } => {
            let mut s = open(sr)?;
            let name = s.deployment(index)?.name();
            let w = s.set_default(index)?;
            write_line(&w);
            println!("Deployment {name} is now the default");
        }
        Cmd::Rollback => {
            let mut s = open(sr)?;
            let name = s.deployment(1).map(|d| d.name()).unwrap_or_default();
            let w = s.rollback()?;
            write_line(&w);
            println!("Deployment {name} is now the default");
        }
        Cmd::Pin { unpin, index } => {
            let mut s = open(sr)?;
            for i in index {
                let was = s.deployment(i)?.is_pinned();
                if was != unpin {
                    println!(
                        "Deployment {i} is already {}",
                        if unpin { "unpinned" } else { "pinned" }
                    );
                    continue;
                }
                s.set_pinned(i, !unpin)?;
                println!(
                    "Deployment {i} is now {}",
                    if unpin { "unpinned" } else { "pinned" }
                );
            }
        }
        Cmd::SetOrigin {
            index,
            set,
            remote,
            url,
            branch,
        } => {
            let mut s = open(sr)?;
            let i = match index {
                Some(i) => i,
                None => {
                    let os = s.resolve_osname(None)?;
                    let m = s
                        .merge_deployment(&os)
                        .context("no deployment to change")?
                        .clone();
                    s.deployments().iter().position(|d| d.same(&m)).unwrap_or(0)
                }
            };
            let d = s.deployment(i)?.clone();
            let branch = match branch {
                Some(b) => b,
                None => {
                    let cur = d
                        .refspec()
                        .context("the deployment has no origin refspec")?;
                    cur.split_once(':').map_or(cur, |(_, r)| r).to_string()
                }
            };
            let section = format!("remote \"{remote}\"");
            let mut cfg = s.repo().config().clone();
            if cfg.get(&section, "url").is_none() {
                cfg.set(&section, "url", &url);
                for kv in &set {
                    let (k, v) = kv.split_once('=').context("--set takes KEY=VALUE")?;
                    cfg.set(&section, k, v);
                }
                s.repo_mut().write_config(cfg)?;
            }
            let mut o = d.origin.clone().unwrap_or_default();
            o.set("origin", "refspec", &format!("{remote}:{branch}"));
            s.write_origin(i, &o)?;
        }
        Cmd::Cleanup => {
            let mut s = open(sr)?;
            cleanup(&mut s)?;
        }
        Cmd::ConfigDiff { os } => {
            let s = Sysroot::open(sr)?;
            let os = s.resolve_osname(os.as_deref())?;
            let d = s.config_diff(&os)?;
            for p in &d.modified {
                println!("M    {p}");
            }
            for p in &d.removed {
                println!("D    {p}");
            }
            for p in &d.added {
                println!("A    {p}");
            }
        }
        Cmd::Other(args) => bail!(
            "admin {}: not implemented yet",
            args.first().map(String::as_str).unwrap_or("")
        ),
    }
    Ok(())
}

fn status(s: &Sysroot, json: bool) -> Result<()> {
    let booted = s.booted_index();
    let version = |csum: &str| {
        oxtree_object::Checksum::from_hex(csum)
            .ok()
            .and_then(|c| s.repo().load_commit(&c).ok())
            .and_then(|c| c.metadata.get_str("version").map(str::to_string))
    };
    if json {
        let list: Vec<_> = s
            .deployments()
            .iter()
            .enumerate()
            .map(|(i, d)| {
                serde_json::json!({
                    "index": i,
                    "osname": d.osname,
                    "checksum": d.csum,
                    "serial": d.deployserial,
                    "booted": Some(i) == booted,
                    "pinned": d.is_pinned(),
                    "version": version(&d.csum),
                    "origin-refspec": d.refspec(),
                    "bootcsum": d.bootcsum,
                    "kargs": d.kargs,
                })
            })
            .collect();
        let v = serde_json::json!({ "deployments": list });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    if s.deployments().is_empty() {
        println!("No deployments.");
        return Ok(());
    }
    for (i, d) in s.deployments().iter().enumerate() {
        let tag = match booted {
            Some(b) if i < b && d.osname == s.deployments()[b].osname => " (pending)",
            Some(b) if i > b && d.osname == s.deployments()[b].osname => " (rollback)",
            _ => "",
        };
        let mark = if Some(i) == booted { '*' } else { ' ' };
        println!("{mark} {} {}{tag}", d.osname, d.name());
        if let Some(v) = version(&d.csum) {
            println!("    Version: {v}");
        }
        if d.is_pinned() {
            println!("    Pinned: yes");
        }
        match &d.origin {
            None => println!("    origin: none"),
            Some(o) => match o.get("origin", "refspec") {
                Some(r) => println!("    origin refspec: {r}"),
                None => println!("    origin: <unknown origin type>"),
            },
        }
    }
    Ok(())
}

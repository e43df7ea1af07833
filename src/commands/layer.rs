//! `oxtree install / uninstall / override remove|reset`: client-side
//! package layering (rpm-ostree's commands). The transaction is
//! `oxtree_host::change_packages`; this parses and renders.

use crate::commands::admin::{print_applied, print_freed};
use crate::reporter::context;
use anyhow::Result;
use oxtree_host::{LayerOutcome, PackageChange, PackagesRequest, Transaction};
use std::path::PathBuf;

#[derive(clap::Args, Clone)]
pub struct Common {
    /// Use the system root at PATH
    #[arg(long, value_name = "PATH", default_value = "/")]
    sysroot: PathBuf,
    /// Runtime state directory (staged deployment)
    #[arg(long, value_name = "PATH", default_value = "/run")]
    run_dir: PathBuf,
    /// Operate on this stateroot (osname)
    #[arg(long)]
    os: Option<String>,
    /// Stage the new deployment (finalized at shutdown) instead of
    /// writing the boot entries now
    #[arg(long)]
    stage: bool,
    /// Print the result as JSON (progress goes to stderr)
    #[arg(long)]
    json: bool,
    /// Only show what apt would install and remove; change nothing
    #[arg(long, conflicts_with = "stage")]
    dry_run: bool,
    /// Reboot after a successful change
    #[arg(short = 'r', long, conflicts_with = "dry_run")]
    reboot: bool,
}

#[derive(clap::Args)]
pub struct InstallArgs {
    #[command(flatten)]
    common: Common,
    /// Debian packages to layer on the base
    #[arg(required = true, value_name = "PKG")]
    packages: Vec<String>,
}

#[derive(clap::Args)]
pub struct UninstallArgs {
    #[command(flatten)]
    common: Common,
    /// Layered packages to take away again
    #[arg(required = true, value_name = "PKG")]
    packages: Vec<String>,
}

#[derive(clap::Args)]
pub struct OverrideArgs {
    #[command(subcommand)]
    cmd: OverrideCmd,
}

#[derive(clap::Subcommand)]
enum OverrideCmd {
    /// Remove packages of the base commit
    Remove {
        #[command(flatten)]
        common: Common,
        #[arg(required = true, value_name = "PKG")]
        packages: Vec<String>,
    },
    /// Undo removals of base packages
    Reset {
        #[command(flatten)]
        common: Common,
        /// Undo every removal
        #[arg(long, conflicts_with = "packages")]
        all: bool,
        #[arg(value_name = "PKG", required_unless_present = "all")]
        packages: Vec<String>,
    },
}

pub fn install(a: InstallArgs, host: Option<&str>) -> Result<()> {
    match host {
        Some(h) => remote(h, &a.common, "install", a.packages),
        None => change(&a.common, PackageChange::Install(a.packages)),
    }
}

pub fn uninstall(a: UninstallArgs, host: Option<&str>) -> Result<()> {
    match host {
        Some(h) => remote(h, &a.common, "uninstall", a.packages),
        None => change(&a.common, PackageChange::Uninstall(a.packages)),
    }
}

/// A package change (`what`: the request's field: `install`,
/// `uninstall`, `overrideRemove`, `overrideReset`) through the agent at
/// `host`.
fn remote(host: &str, c: &Common, what: &str, packages: Vec<String>) -> Result<()> {
    remote_body(host, c, serde_json::json!({ what: packages }))
}

fn remote_body(host: &str, c: &Common, mut body: serde_json::Value) -> Result<()> {
    body["dryRun"] = c.dry_run.into();
    body["os"] = serde_json::json!(c.os);
    body["stage"] = c.stage.into();
    body["reboot"] = c.reboot.into();
    crate::commands::via_agent::operation(host, "packages", body, c.json)
}

pub fn override_(a: OverrideArgs, host: Option<&str>) -> Result<()> {
    if let Some(h) = host {
        return match a.cmd {
            OverrideCmd::Remove { common, packages } => {
                remote(h, &common, "overrideRemove", packages)
            }
            OverrideCmd::Reset {
                common, all: true, ..
            } => remote_body(h, &common, serde_json::json!({"overrideResetAll": true})),
            OverrideCmd::Reset {
                common, packages, ..
            } => remote(h, &common, "overrideReset", packages),
        };
    }
    match a.cmd {
        OverrideCmd::Remove { common, packages } => {
            change(&common, PackageChange::OverrideRemove(packages))
        }
        OverrideCmd::Reset {
            common,
            all,
            packages,
        } => change(&common, PackageChange::OverrideReset { all, packages }),
    }
}

fn change(c: &Common, change: PackageChange) -> Result<()> {
    let req = PackagesRequest {
        os: c.os.clone(),
        change,
        stage: c.stage,
        dry_run: c.dry_run,
        reboot: c.reboot,
    };
    match oxtree_host::change_packages(&context(&c.sysroot, &c.run_dir, c.json), &req)? {
        LayerOutcome::DryRun(d) => dry_run(&d, c.json),
        LayerOutcome::Applied(t) => {
            print_applied(&t.applied, c.json);
            print_freed(&t.cleanup, c.json);
            render(&t, c.json);
            Ok(())
        }
    }
}

/// The result of a layering transaction (also a layered `admin upgrade`).
pub(crate) fn render(t: &Transaction, json: bool) {
    let d = t.applied.deployment();
    let diff = t.layered.as_ref().map(|l| &l.diff);
    let fmt = |p: &oxtree_compose::Package| format!("{} {} {}", p.name, p.version, p.architecture);
    if json {
        let (packages, removals) = t
            .origin
            .as_ref()
            .map(|o| (o.packages.clone(), o.removals.clone()))
            .unwrap_or_default();
        let v = serde_json::json!({
            "deployment": d.name(),
            "osname": d.osname,
            "checksum": d.csum,
            "base-checksum": t.base.to_hex(),
            "staged": matches!(t.applied, oxtree_host::Applied::Staged(_)),
            "requested-packages": packages,
            "requested-base-removals": removals,
            "added": diff.map(|d| d.added.iter().map(|p| &p.name).collect::<Vec<_>>()),
            "removed": diff.map(|d| d.removed.iter().map(|p| &p.name).collect::<Vec<_>>()),
        });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return;
    }
    if let Some(diff) = diff {
        for p in &diff.added {
            println!("Added: {}", fmt(p));
        }
        for p in &diff.removed {
            println!("Removed: {}", fmt(p));
        }
        for (o, n) in diff.upgraded.iter().chain(&diff.downgraded) {
            println!("Changed: {} {} -> {}", o.name, o.version, n.version);
        }
    }
    println!("Deployment {} is the new default", d.name());
}

/// `--dry-run`: apt's simulation of the request on the base.
fn dry_run(d: &oxtree_host::DryRun, json: bool) -> Result<()> {
    let v = d.to_json();
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print_dry_run(&v);
    }
    Ok(())
}

/// A dry run's text, from its JSON ([`oxtree_host::DryRun::to_json`]),
/// for a local run and for one through the agent alike.
pub(crate) fn print_dry_run(v: &serde_json::Value) {
    let s = |v: &serde_json::Value| v.as_str().unwrap_or("").to_string();
    if v["layered"] != true {
        println!(
            "Would deploy the base commit {} (nothing layered)",
            s(&v["base-checksum"])
        );
    }
    for (what, key) in [("install", "install"), ("remove", "remove")] {
        for p in v[key].as_array().into_iter().flatten() {
            println!("Would {what}: {} {}", s(&p["name"]), s(&p["version"]));
        }
    }
    println!("Dry run: nothing changed");
}

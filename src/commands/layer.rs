//! `oxtree install / uninstall / override remove|reset`: client-side
//! package layering (rpm-ostree's commands), and the layered branch of
//! `admin upgrade`. The logic is in `oxtree_compose::layer`; this decides
//! what to build, deploys it and renders the result.

use crate::commands::admin::{open, print_deploy, pull_into};
use anyhow::{bail, Context, Result};
use oxtree_compose::layer::{self, AptDirs, BuildOptions, LayerSpec, Step};
use oxtree_compose::packages::PackageDiff;
use oxtree_object::Checksum;
use oxtree_sysroot::{DeployOptions, Deployment, Sysroot};
use std::path::{Path, PathBuf};

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

pub fn install(a: InstallArgs) -> Result<()> {
    change(&a.common, |s| {
        for p in &a.packages {
            if !s.packages.insert(p.clone()) {
                bail!("package {p} is already requested");
            }
            if s.removals.contains(p) {
                bail!("package {p} is a removed base package; use `override reset {p}`");
            }
        }
        Ok(())
    })
}

pub fn uninstall(a: UninstallArgs) -> Result<()> {
    change(&a.common, |s| {
        for p in &a.packages {
            if !s.packages.remove(p) {
                bail!("package {p} is not a layered package");
            }
        }
        Ok(())
    })
}

pub fn override_(a: OverrideArgs) -> Result<()> {
    match a.cmd {
        OverrideCmd::Remove { common, packages } => change(&common, |s| {
            for p in &packages {
                if s.packages.contains(p) {
                    bail!("package {p} is layered, not from the base; use `uninstall {p}`");
                }
                if !s.removals.insert(p.clone()) {
                    bail!("package {p} is already removed");
                }
            }
            Ok(())
        }),
        OverrideCmd::Reset {
            common,
            all,
            packages,
        } => change(&common, |s| {
            if all {
                if s.removals.is_empty() {
                    bail!("no base package removals to reset");
                }
                s.removals.clear();
            }
            for p in &packages {
                if !s.removals.remove(p) {
                    bail!("package {p} is not a removed base package");
                }
            }
            Ok(())
        }),
    }
}

/// Keep layered bases (and a staged commit) referenced, then clean up.
fn cleanup(s: &mut Sysroot, json: bool) -> Result<()> {
    layer::sync_refs(s).context("updating layering refs")?;
    let r = s.cleanup().context("cleaning up")?;
    if r.prune.freed > 0 {
        say(
            json,
            &format!(
                "Freed objects: {}",
                crate::output::format_size(r.prune.freed)
            ),
        );
    }
    Ok(())
}

/// Progress lines: stdout, or stderr when stdout carries JSON.
fn say(json: bool, line: &str) {
    if json {
        eprintln!("{line}");
    } else {
        println!("{line}");
    }
}

/// apt's state and the admin's sources for a stateroot.
fn apt_dirs(s: &Sysroot, d: &Deployment) -> AptDirs {
    // Sources come from a deployment that has an /etc (a staged one has
    // none yet): the configuration merge deployment.
    let merge = s.merge_deployment(&d.osname).unwrap_or(d);
    let var = s.path().join(format!("ostree/deploy/{}/var", merge.osname));
    AptDirs {
        lists: Some(var.join("lib/apt/lists")),
        cache: Some(var.join("cache/apt")),
        etc: Some(s.path().join(merge.relpath()).join("etc/apt")),
    }
}

/// Build `spec` on `base` (or take the base itself when nothing is
/// layered) and return the commit to deploy.
fn build(
    s: &Sysroot,
    merge: &Deployment,
    base: &Checksum,
    spec: &LayerSpec,
    json: bool,
) -> Result<(Checksum, Option<PackageDiff>)> {
    if !spec.is_layered() {
        return Ok((*base, None));
    }
    let t0 = std::time::Instant::now();
    let progress = |step: Step, msg: &str| {
        let _ = step;
        say(json, &format!("{msg}..."));
    };
    let built = layer::build(
        s.repo(),
        base,
        spec,
        &BuildOptions {
            apt: apt_dirs(s, merge),
            timestamp: None,
            progress: &progress,
        },
    )?;
    say(
        json,
        &format!(
            "Layered commit {} built in {:.1}s",
            built.commit,
            t0.elapsed().as_secs_f64()
        ),
    );
    Ok((built.commit, Some(built.diff)))
}

/// Deploy `commit` with the origin of `spec`; staged when asked.
fn deploy(
    s: &mut Sysroot,
    c: &Common,
    merge: &Deployment,
    commit: &Checksum,
    spec: &LayerSpec,
) -> Result<Deployment> {
    let opts = DeployOptions {
        osname: Some(merge.osname.clone()),
        origin: Some(spec.to_origin(merge.origin.as_ref())),
        ..DeployOptions::default()
    };
    let d = if c.stage {
        let d = s.stage(&commit.to_hex(), &opts, false)?;
        say(
            c.json,
            &format!(
                "Staged deployment {}; it is finalized at shutdown",
                d.name()
            ),
        );
        d
    } else {
        let r = s.deploy(&commit.to_hex(), &opts)?;
        if !c.json {
            print_deploy(&r);
        }
        r.deployment
    };
    Ok(d)
}

fn render(
    c: &Common,
    d: &Deployment,
    base: &Checksum,
    spec: &LayerSpec,
    diff: Option<&PackageDiff>,
) {
    let fmt = |p: &oxtree_compose::Package| format!("{} {} {}", p.name, p.version, p.architecture);
    if c.json {
        let v = serde_json::json!({
            "deployment": d.name(),
            "osname": d.osname,
            "checksum": d.csum,
            "base-checksum": base.to_hex(),
            "staged": c.stage,
            "requested-packages": spec.packages,
            "requested-base-removals": spec.removals,
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

/// The deployment whose request is edited, its spec and its base commit.
/// As rpm-ostree, that is the newest deployment of the stateroot (the
/// staged one, else the default), so changes stack on a pending
/// deployment instead of replacing it; /etc still merges from the booted
/// one.
fn current(s: &Sysroot, os: Option<&str>) -> Result<(Deployment, LayerSpec, Checksum)> {
    let osname = s.resolve_osname(os)?;
    let merge = s
        .staged()
        .filter(|d| d.osname == osname)
        .or_else(|| s.deployments().iter().find(|d| d.osname == osname))
        .cloned()
        .with_context(|| format!("no deployment of stateroot {osname}"))?;
    let spec = merge
        .origin
        .as_ref()
        .and_then(LayerSpec::from_origin)
        .with_context(|| {
            format!(
                "deployment {} has no origin refspec; cannot layer on it",
                merge.name()
            )
        })?;
    let csum = Checksum::from_hex(&merge.csum).context("bad deployment checksum")?;
    let base = layer::base_commit(s.repo(), &csum)?;
    Ok((merge, spec, base))
}

fn change(c: &Common, edit: impl FnOnce(&mut LayerSpec) -> Result<()>) -> Result<()> {
    let mut s = open(&c.sysroot, &c.run_dir)?;
    let (merge, spec, base) = current(&s, c.os.as_deref())?;
    let mut new = spec.clone();
    edit(&mut new)?;
    layer::check_names(new.packages.iter().chain(&new.removals))?;
    if c.dry_run {
        return dry_run(&s, &merge, &base, &new, c.json);
    }
    let (commit, diff) = build(&s, &merge, &base, &new, c.json)?;
    let d = deploy(&mut s, c, &merge, &commit, &new)?;
    cleanup(&mut s, c.json)?;
    render(c, &d, &base, &new, diff.as_ref());
    Ok(())
}

/// What `admin upgrade` was asked to do.
pub struct UpgradeRequest<'a> {
    pub os: Option<&'a str>,
    pub pull: bool,
    pub deploy: bool,
    pub allow_downgrade: bool,
    pub override_commit: Option<&'a str>,
    pub stage: bool,
    /// `admin switch REFSPEC`: follow this base refspec from now on
    /// (a bare REF keeps the current remote), as `rpm-ostree rebase`.
    pub rebase: Option<&'a str>,
}

/// `--dry-run`: apt's simulation of `spec` on `base`.
fn dry_run(
    s: &Sysroot,
    merge: &Deployment,
    base: &Checksum,
    spec: &LayerSpec,
    json: bool,
) -> Result<()> {
    let r = if spec.is_layered() {
        let progress = |_: Step, msg: &str| say(json, &format!("{msg}..."));
        layer::resolve(
            s.repo(),
            base,
            spec,
            &BuildOptions {
                apt: apt_dirs(s, merge),
                timestamp: None,
                progress: &progress,
            },
        )?
    } else {
        layer::Resolution::default()
    };
    if json {
        let list = |v: &[(String, String)]| {
            v.iter()
                .map(|(n, ver)| serde_json::json!({ "name": n, "version": ver }))
                .collect::<Vec<_>>()
        };
        let v = serde_json::json!({
            "dry-run": true,
            "base-checksum": base.to_hex(),
            "layered": spec.is_layered(),
            "requested-packages": spec.packages,
            "requested-base-removals": spec.removals,
            "install": list(&r.install),
            "remove": list(&r.remove),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    if !spec.is_layered() {
        println!("Would deploy the base commit {base} (nothing layered)");
    }
    for (n, v) in &r.install {
        println!("Would install: {n} {v}");
    }
    for (n, v) in &r.remove {
        println!("Would remove: {n} {v}");
    }
    println!("Dry run: nothing changed");
    Ok(())
}

/// `admin upgrade` of a deployment with layered packages: fetch the base
/// refspec, and when it moved, layer the same request on the new base;
/// `admin switch` (`rebase`) does the same on another base refspec.
/// Returns false (doing nothing) when the deployment is not layered.
pub fn upgrade_layered(sysroot: &Path, run_dir: &Path, u: UpgradeRequest<'_>) -> Result<bool> {
    let mut s = open(sysroot, run_dir)?;
    let (merge, mut spec, old_base) = current(&s, u.os)?;
    if !spec.is_layered() {
        return Ok(false);
    }
    if let Some(to) = u.rebase {
        let (old_remote, _) = oxtree_sysroot::upgrade::split_refspec(&spec.base_refspec);
        let (remote, branch) = oxtree_sysroot::upgrade::split_refspec(to);
        let new = match remote.or(old_remote) {
            Some(r) => format!("{r}:{branch}"),
            None => branch.to_string(),
        };
        if new == spec.base_refspec {
            bail!("Old and new refs are equal: {new}");
        }
        spec.base_refspec = new;
    }
    let (remote, branch) = oxtree_sysroot::upgrade::split_refspec(&spec.base_refspec);
    if u.pull {
        if let Some(r) = remote {
            println!("Fetching {branch} from {r}...");
            pull_into(&s, r, branch, u.override_commit)?;
        }
    }
    if !u.deploy {
        return Ok(true);
    }
    let new_base = match u.override_commit {
        Some(c) => s.repo().resolve_rev(c)?,
        None => s.repo().resolve_rev(&spec.base_refspec)?,
    };
    if new_base == old_base && u.rebase.is_none() {
        println!("No update available.");
        return Ok(true);
    }
    if !u.allow_downgrade && u.rebase.is_none() {
        let old_ts = s.repo().load_commit(&old_base)?.timestamp;
        let new_ts = s.repo().load_commit(&new_base)?.timestamp;
        if new_ts < old_ts {
            bail!(
                "Upgrade target revision '{new_base}' is chronologically older than the current base '{old_base}'; use --allow-downgrade to permit"
            );
        }
    }
    println!(
        "New base commit {new_base}; re-applying {}",
        layer::describe(&spec)
    );
    let c = Common {
        sysroot: sysroot.to_path_buf(),
        run_dir: run_dir.to_path_buf(),
        os: Some(merge.osname.clone()),
        stage: u.stage,
        json: false,
        dry_run: false,
    };
    let (commit, diff) = build(&s, &merge, &new_base, &spec, false)?;
    let d = deploy(&mut s, &c, &merge, &commit, &spec)?;
    cleanup(&mut s, false)?;
    render(&c, &d, &new_base, &spec, diff.as_ref());
    Ok(true)
}

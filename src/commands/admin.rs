//! `oxtree admin …`: sysroot and deployment management, with ostree's
//! command names, flags and (for a sysroot that is not booted) output.

use crate::output::format_size;
use crate::reporter::context;
use anyhow::{bail, Context, Result};
use oxtree_host::{Applied, Transaction, UpgradeOutcome};
use oxtree_sysroot::cleanup::CleanupReport;
use oxtree_sysroot::write::WriteReport;
use oxtree_sysroot::{DeployOptions, KeyFile, Sysroot, SysrootError};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// Use the system root at PATH
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        default_value = "/",
        env = "OSTREE_SYSROOT"
    )]
    sysroot: PathBuf,
    /// Runtime state directory (staged deployment, unlock state)
    #[arg(long, global = true, value_name = "PATH", default_value = "/run")]
    run_dir: PathBuf,
    /// Print the directory of the current deployment (the booted one, else
    /// the default) and exit
    #[arg(long)]
    print_current_dir: bool,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(clap::Subcommand)]
enum Cmd {
    /// Initialize a root filesystem with an empty bare repository
    InitFs {
        /// Only create /boot and /ostree (no /dev, /proc, /tmp, …)
        #[arg(long)]
        modern: bool,
        path: PathBuf,
    },
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
        /// Fail unless each deployment from a remote has a good signature
        #[arg(short = 'V', long)]
        verify: bool,
        /// Do not show signatures
        #[arg(short = 'S', long)]
        skip_signatures: bool,
    },
    /// Delete deployment INDEX
    Undeploy { index: usize },
    /// Make deployment INDEX the default (rpm-ostree semantics)
    SetDefault { index: usize },
    /// Make the previous deployment the default (rpm-ostree semantics)
    Rollback {
        /// Reboot after a successful rollback
        #[arg(short = 'r', long)]
        reboot: bool,
    },
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
    /// Fetch and deploy the latest commit of the merge deployment's origin
    Upgrade(UpgradeArgs),
    /// Deploy another refspec (remote:ref or ref), recording it in the origin
    Switch(SwitchArgs),
    /// Change kernel arguments
    Kargs {
        #[command(subcommand)]
        cmd: KargsCmd,
    },
    /// Merge /etc and write the boot entries of the staged deployment
    FinalizeStaged,
    /// Make /usr of a deployment writable with an overlayfs
    Unlock {
        /// Retain changes across reboots (and keep a pristine rollback)
        #[arg(long)]
        hotfix: bool,
        /// Unlock only until reboot (the default)
        #[arg(long)]
        transient: bool,
        /// Deployment index (default: the booted one, else the default one)
        #[arg(long)]
        deployment: Option<usize>,
    },
    /// Early boot: set up the deployment named by ostree= as the new root
    PrepareRoot(crate::commands::prepare_root::Args),
    /// Run the health checks of /usr/lib/oxtree/health.d and /etc/oxtree/health.d
    HealthCheck,
    /// The boot reached boot-complete.target: bless it, or make an
    /// automatic rollback permanent
    BootComplete,
    /// A health check failed: record it (and reboot with --reboot)
    BootFailed {
        /// Reboot afterwards, so the boot loader counts the try
        #[arg(long)]
        reboot: bool,
    },
    /// Installer helpers (ostree's `admin instutil`)
    Instutil {
        #[command(subcommand)]
        cmd: InstutilCmd,
    },
    /// Not implemented yet
    #[command(external_subcommand)]
    Other(Vec<String>),
}

#[derive(clap::Subcommand)]
enum InstutilCmd {
    /// Set the kernel arguments of the default deployment to ARGS
    SetKargs {
        /// Start from the current arguments instead of none
        #[arg(long)]
        merge: bool,
        /// Start from the running kernel's arguments
        #[arg(long)]
        import_proc_cmdline: bool,
        /// Set NAME=VALUE, replacing every value of NAME
        #[arg(long, value_name = "NAME=VALUE")]
        replace: Vec<String>,
        /// Append NAME=VALUE
        #[arg(long, value_name = "NAME=VALUE")]
        append: Vec<String>,
        /// Arguments to append; a REMOTE:REF word is ignored, as ostree
        /// ignores it
        args: Vec<String>,
    },
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
    /// Delete kernel argument NAME (every value) or exactly NAME=VALUE
    #[arg(long = "karg-delete", value_name = "NAME[=VALUE]")]
    karg_delete: Vec<String>,
    /// Import current /proc/cmdline
    #[arg(long = "karg-proc-cmdline")]
    karg_proc_cmdline: bool,
    /// Start from no kernel arguments instead of the merge deployment's
    #[arg(long = "karg-none", conflicts_with = "karg_proc_cmdline")]
    karg_none: bool,
    /// Specify an origin file
    #[arg(long = "origin-file", value_name = "FILENAME")]
    origin_file: Option<PathBuf>,
    /// Do not delete previous deployments
    #[arg(long)]
    retain: bool,
    /// Keep the deployments newer than the booted one
    #[arg(long)]
    retain_pending: bool,
    /// Keep the deployments older than the booted one
    #[arg(long)]
    retain_rollback: bool,
    /// Do not make the new deployment the default
    #[arg(long)]
    not_as_default: bool,
    /// Do not merge /etc or kernel arguments from the current deployment
    #[arg(long)]
    no_merge: bool,
    /// Prepare the deployment now; finalize it at shutdown (finalize-staged)
    #[arg(long)]
    stage: bool,
    /// With --stage: hold finalization back until the lock file is removed
    #[arg(long)]
    lock_finalization: bool,
    /// Reboot after a successful deploy
    #[arg(short = 'r', long)]
    reboot: bool,
    /// Refspec or checksum
    rev: String,
}

#[derive(clap::Args)]
struct UpgradeArgs {
    /// Use a different operating system root than the current one
    #[arg(long)]
    os: Option<String>,
    /// Do not create a deployment, just download
    #[arg(long)]
    pull_only: bool,
    /// Do not pull, only deploy
    #[arg(long)]
    deploy_only: bool,
    /// Permit deployment of chronologically older trees
    #[arg(long)]
    allow_downgrade: bool,
    /// Deploy CHECKSUM instead of the latest tree
    #[arg(long, value_name = "CHECKSUM")]
    override_commit: Option<String>,
    /// Enable staging (finalization at shutdown)
    #[arg(long)]
    stage: bool,
    /// Reboot after a successful upgrade
    #[arg(short = 'r', long)]
    reboot: bool,
    /// Only say whether an update is available (fetched, not deployed)
    #[arg(long, conflicts_with_all = ["pull_only", "deploy_only", "stage", "reboot", "allow_downgrade"])]
    check: bool,
}

#[derive(clap::Args)]
struct SwitchArgs {
    /// Use a different operating system root than the current one
    #[arg(long)]
    os: Option<String>,
    /// Enable staging (finalization at shutdown)
    #[arg(long)]
    stage: bool,
    /// Reboot after a successful switch
    #[arg(short = 'r', long)]
    reboot: bool,
    /// REMOTE:REF, REF (keeps the current remote), or a container image:
    /// ostree-unverified-registry:HOST[:PORT]/NAME[:TAG],
    /// ostree-unverified-image:oci:DIR[:TAG],
    /// ostree-image-signed:docker://HOST[:PORT]/NAME[:TAG] (verified on
    /// every pull as /etc/containers/policy.json, or
    /// $OXTREE_CONTAINERS_POLICY, says) (registry settings:
    /// `[registry "HOST[:PORT]"] insecure=true|cert-dir=DIR` in the repo
    /// config)
    refspec: String,
}

#[derive(clap::Subcommand)]
enum KargsCmd {
    /// Rewrite the kernel arguments of the default deployment
    EditInPlace {
        /// Append a kernel argument
        #[arg(long, value_name = "NAME=VALUE")]
        append: Vec<String>,
        /// Append kernel arguments if they do not exist
        #[arg(long, value_name = "NAME=VALUE")]
        append_if_missing: Vec<String>,
        /// Delete a kernel argument (NAME, or exactly NAME=VALUE)
        #[arg(long, value_name = "NAME[=VALUE]")]
        delete: Vec<String>,
        /// Delete a kernel argument if it is present
        #[arg(long, value_name = "NAME[=VALUE]")]
        delete_if_present: Vec<String>,
        /// Replace an existing argument: NAME=VALUE or NAME=OLD=NEW
        #[arg(long, value_name = "NAME=VALUE")]
        replace: Vec<String>,
        /// Deployment index (default: 0, the default deployment)
        #[arg(long, default_value_t = 0)]
        deployment: usize,
        /// Ignored, as ostree ignores words after the options
        #[arg(hide = true)]
        _rest: Vec<String>,
    },
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

/// `Freed objects: …` after a cleanup that freed something.
pub(crate) fn print_freed(r: &CleanupReport, json: bool) {
    let mut lines: Vec<String> = r
        .bound_images_removed
        .iter()
        .map(|id| format!("Removed bound image {}", &id[..id.len().min(12)]))
        .collect();
    if r.prune.freed > 0 {
        lines.push(format!("Freed objects: {}", format_size(r.prune.freed)));
    }
    for line in lines {
        if json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }
}

/// Clean up a sysroot this command already holds locked.
/// `admin pin` lines, for each (index, changed).
fn print_pins(changes: &[(usize, bool)], unpin: bool) {
    let state = if unpin { "unpinned" } else { "pinned" };
    for (i, changed) in changes {
        match changed {
            true => println!("Deployment {i} is now {state}"),
            false => println!("Deployment {i} is already {state}"),
        }
    }
}

fn cleanup(s: &mut Sysroot) -> Result<()> {
    print_freed(&oxtree_host::cleanup_locked(s)?, false);
    Ok(())
}

fn open(path: &Path, run: &Path) -> Result<Sysroot> {
    let mut s = Sysroot::open_locked(path).map_err(|e| match e {
        // It says "opening sysroot PATH" itself.
        e @ SysrootError::OpenDir { .. } => e.into(),
        e => anyhow::Error::from(e).context(format!("opening sysroot {}", path.display())),
    })?;
    s.set_run_dir(run)?;
    Ok(s)
}

fn open_unlocked(path: &Path, run: &Path) -> Result<Sysroot> {
    let mut s = Sysroot::open(path)?;
    s.set_run_dir(run)?;
    Ok(s)
}

pub(crate) fn print_deploy(r: &oxtree_sysroot::DeployReport) {
    if let Some(e) = &r.etc {
        for p in &e.skipped {
            eprintln!("warning: /etc/{p} is not a regular file, directory or symlink; not copied");
        }
        println!(
            "Copying /etc changes: {} modified, {} removed, {} added",
            e.modified.len(),
            e.removed.len(),
            e.added.len()
        );
    }
    write_line(&r.write);
}

/// How a deployment was applied: the staged line, or the /etc and boot
/// entry lines (only the staged line, on stderr, when stdout is JSON).
pub(crate) fn print_applied(a: &Applied, json: bool) {
    match a {
        Applied::Staged(d) => {
            let line = format!(
                "Staged deployment {}; it is finalized at shutdown",
                d.name()
            );
            if json {
                eprintln!("{line}");
            } else {
                println!("{line}");
            }
        }
        Applied::Deployed(r) if !json => print_deploy(r),
        Applied::Deployed(_) => {}
    }
}

/// A deploying transaction: how it was applied, the cleanup after it and,
/// for a layered deployment, its packages.
fn print_transaction(t: &Transaction) {
    print_applied(&t.applied, false);
    print_freed(&t.cleanup, false);
    if t.layered.is_some() {
        crate::commands::layer::render(t, false);
    }
}

/// `admin config-diff`'s lines, as ostree prints them.
fn print_config_diff(modified: &[String], removed: &[String], added: &[String]) {
    for (mark, list) in [("M", modified), ("D", removed), ("A", added)] {
        for p in list {
            println!("{mark}    {p}");
        }
    }
}

/// `--set KEY=VALUE` options of `set-origin`.
fn remote_options(set: &[String]) -> Result<Vec<(String, String)>> {
    set.iter()
        .map(|kv| {
            let (k, v) = kv.split_once('=').context("--set takes KEY=VALUE")?;
            Ok((k.to_string(), v.to_string()))
        })
        .collect()
}

fn unlock_mode(hotfix: bool, transient: bool) -> Result<oxtree_host::UnlockMode> {
    if hotfix && transient {
        bail!("--hotfix and --transient are exclusive");
    }
    Ok(if hotfix {
        oxtree_host::UnlockMode::Hotfix
    } else {
        oxtree_host::UnlockMode::Transient
    })
}

/// ostree's words after `admin unlock`.
pub(crate) fn print_unlocked(mode: oxtree_host::UnlockMode) {
    if mode == oxtree_host::UnlockMode::Hotfix {
        println!("Hotfix mode enabled.  A writable overlayfs is now mounted on /usr");
        println!("for this booted deployment.  A non-hotfixed clone has been created");
        println!("as the non-default rollback target.");
    } else {
        println!("Development mode enabled.  A writable overlayfs is now mounted on /usr.");
        println!("All changes there will be discarded on reboot.");
    }
}

/// An `admin` command through the agent at `host` (`--host`).
fn remote(host: &str, cmd: Cmd) -> Result<()> {
    use crate::commands::via_agent::{operation, status};
    use serde_json::json;
    match cmd {
        Cmd::Status { json, .. } => status(host, json),
        Cmd::Upgrade(u) => {
            if u.deploy_only && u.pull_only {
                bail!("--pull-only and --deploy-only are exclusive");
            }
            let mode = if u.check {
                "check"
            } else if u.pull_only {
                "pull-only"
            } else if u.reboot {
                "apply"
            } else if u.stage {
                "stage"
            } else if u.deploy_only {
                "deploy-only"
            } else {
                "deploy"
            };
            if u.deploy_only && (u.stage || u.reboot) {
                bail!("--host: --deploy-only through the agent deploys now; it takes no --stage or --reboot");
            }
            operation(
                host,
                "upgrade",
                json!({"mode": mode, "os": u.os, "allowDowngrade": u.allow_downgrade,
                       "overrideCommit": u.override_commit}),
                false,
            )
        }
        Cmd::Rollback { reboot } => operation(host, "rollback", json!({ "reboot": reboot }), false),
        Cmd::Switch(w) => operation(
            host,
            "switch",
            json!({"refspec": w.refspec, "os": w.os, "stage": w.stage, "reboot": w.reboot}),
            false,
        ),
        Cmd::Deploy(d) => {
            // The origin file is read here; the host's /proc/cmdline there.
            let origin = match &d.origin_file {
                Some(p) => Some(
                    std::fs::read_to_string(p)
                        .with_context(|| format!("reading {}", p.display()))?,
                ),
                None => None,
            };
            operation(
                host,
                "deploy",
                json!({"rev": d.rev, "os": d.os, "stage": d.stage, "reboot": d.reboot,
                       "lockFinalization": d.lock_finalization, "karg": d.karg,
                       "kargAppend": d.karg_append, "kargDelete": d.karg_delete,
                       "kargProcCmdline": d.karg_proc_cmdline, "kargNone": d.karg_none,
                       "origin": origin, "retain": d.retain, "retainPending": d.retain_pending,
                       "retainRollback": d.retain_rollback, "notAsDefault": d.not_as_default,
                       "noMerge": d.no_merge}),
                false,
            )
        }
        Cmd::Cleanup => operation(host, "cleanup", json!({}), false),
        Cmd::OsInit { osname } => {
            operation(host, "os-init", json!({ "osname": osname }), false)?;
            println!("ostree/deploy/{osname} initialized as OSTree root");
            Ok(())
        }
        Cmd::ConfigDiff { os } => {
            let path = match &os {
                Some(os) => format!(
                    "/v1/host/config-diff?os={}",
                    percent_encoding::utf8_percent_encode(os, percent_encoding::NON_ALPHANUMERIC)
                ),
                None => "/v1/host/config-diff".to_string(),
            };
            let v = crate::commands::via_agent::get(host, &path)?;
            let list = |k: &str| -> Vec<String> {
                v[k].as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| p.as_str().map(str::to_string))
                    .collect()
            };
            print_config_diff(&list("modified"), &list("removed"), &list("added"));
            Ok(())
        }
        Cmd::SetOrigin {
            index,
            set,
            remote,
            url,
            branch,
        } => {
            let options: serde_json::Map<String, serde_json::Value> = remote_options(&set)?
                .into_iter()
                .map(|(k, v)| (k, v.into()))
                .collect();
            operation(
                host,
                "set-origin",
                json!({"index": index, "remote": remote, "url": url, "branch": branch,
                       "options": options}),
                false,
            )
        }
        Cmd::Unlock {
            hotfix,
            transient,
            deployment,
        } => {
            let mode = unlock_mode(hotfix, transient)?;
            operation(
                host,
                "unlock",
                json!({"deployment": deployment, "hotfix": mode == oxtree_host::UnlockMode::Hotfix}),
                false,
            )
        }
        Cmd::Undeploy { index } => operation(host, "undeploy", json!({ "index": index }), false),
        Cmd::SetDefault { index } => {
            operation(host, "set-default", json!({ "index": index }), false)
        }
        Cmd::Pin { unpin, index } => operation(
            host,
            "pin",
            json!({ "indexes": index, "unpin": unpin }),
            false,
        ),
        Cmd::Kargs {
            cmd:
                KargsCmd::EditInPlace {
                    append,
                    append_if_missing,
                    delete,
                    delete_if_present,
                    replace,
                    deployment,
                    ..
                },
        } => operation(
            host,
            "kargs",
            json!({"deployment": deployment, "append": append,
                   "appendIfMissing": append_if_missing, "delete": delete,
                   "deleteIfPresent": delete_if_present, "replace": replace}),
            false,
        ),
        Cmd::InitFs { .. }
        | Cmd::PrepareRoot(_)
        | Cmd::FinalizeStaged
        | Cmd::HealthCheck
        | Cmd::BootComplete
        | Cmd::BootFailed { .. } => bail!(
            "--host: this admin command belongs to the host's own boot, shutdown or \
             installation and runs only there"
        ),
        _ => bail!("--host: this admin command is not available through the agent"),
    }
}

pub fn run(_repo: Option<PathBuf>, a: Args, host: Option<&str>) -> Result<()> {
    if let Some(h) = host {
        let Some(command) = a.command else {
            bail!(
                "No \"admin\" subcommand specified\n\n{}",
                crate::usage_of(&["admin"])
            );
        };
        return remote(h, command);
    }
    let sr = a.sysroot.as_path();
    let rn = a.run_dir.as_path();
    if a.print_current_dir {
        let s = open_unlocked(sr, rn)?;
        let i = s.booted_index().unwrap_or(0);
        let d = s.deployment(i).context("No deployments found")?;
        let dir = std::path::absolute(s.path())?.join(format!(
            "ostree/deploy/{}/deploy/{}",
            d.osname,
            d.name()
        ));
        println!("{}", dir.display());
        return Ok(());
    }
    let Some(command) = a.command else {
        bail!(
            "No \"admin\" subcommand specified\n\n{}",
            crate::usage_of(&["admin"])
        );
    };
    match command {
        Cmd::InitFs { path, modern } => oxtree_sysroot::init_fs(&path, modern)?,
        Cmd::OsInit { osname } => {
            oxtree_host::init_stateroot(&context(sr, rn, false), &osname)?;
            println!("ostree/deploy/{osname} initialized as OSTree root");
        }
        Cmd::Deploy(d) => {
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
                karg_delete: d.karg_delete.clone(),
                karg_base: oxtree_host::karg_base(d.karg_proc_cmdline, d.karg_none)?,
                origin,
                retain: d.retain,
                retain_pending: d.retain_pending,
                retain_rollback: d.retain_rollback,
                not_as_default: d.not_as_default,
                no_merge: d.no_merge,
            };
            let t = oxtree_host::deploy(
                &context(sr, rn, false),
                &oxtree_host::DeployRequest {
                    rev: d.rev.clone(),
                    opts,
                    stage: d.stage,
                    lock_finalization: d.lock_finalization,
                    reboot: d.reboot,
                },
            )?;
            print_transaction(&t);
        }
        Cmd::Status {
            json,
            verify,
            skip_signatures,
        } => {
            let mut h = oxtree_host::status(&context(sr, rn, json))?;
            if verify {
                use oxtree_transport::gpg::SignatureStatus;
                for r in &h.deployments {
                    let from_remote = r.origin_refspec.as_deref().is_some_and(|o| o.contains(':'));
                    if from_remote
                        && !r
                            .gpg_signatures
                            .iter()
                            .any(|g| g.status == SignatureStatus::Good)
                    {
                        bail!(
                            "Deployment {}.{}: no good GPG signature (or its remote does not verify them)",
                            r.checksum,
                            r.serial
                        );
                    }
                }
            }
            if skip_signatures {
                for r in &mut h.deployments {
                    r.gpg_signatures.clear();
                }
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&h)?);
            } else {
                print!("{}", h.to_text());
            }
        }
        Cmd::Undeploy { index } => {
            let r = oxtree_host::undeploy(&context(sr, rn, false), index)?;
            write_line(&r.write);
            print_freed(&r.cleanup, false);
            println!("Deleted deployment {}", r.deployment.name());
        }
        Cmd::SetDefault { index } => {
            let (d, w) = oxtree_host::set_default(&context(sr, rn, false), index)?;
            write_line(&w);
            println!("Deployment {} is now the default", d.name());
        }
        Cmd::Rollback { reboot } => {
            let r = oxtree_host::rollback(&context(sr, rn, false), reboot)?;
            write_line(&r.write);
            println!("Deployment {} is now the default", r.default.name());
        }
        Cmd::Pin { unpin, index } => {
            let changes = oxtree_host::pin(&context(sr, rn, false), &index, !unpin)?;
            print_pins(&changes, unpin);
        }
        Cmd::SetOrigin {
            index,
            set,
            remote,
            url,
            branch,
        } => {
            let req = oxtree_host::SetOriginRequest {
                index,
                remote,
                url,
                branch,
                options: remote_options(&set)?,
            };
            oxtree_host::set_origin(&context(sr, rn, false), &req)?;
        }
        Cmd::Cleanup => print_freed(&oxtree_host::cleanup(&context(sr, rn, false))?, false),
        Cmd::ConfigDiff { os } => {
            let (_, d) = oxtree_host::config_diff(&context(sr, rn, false), os.as_deref())?;
            print_config_diff(&d.modified, &d.removed, &d.added);
        }
        Cmd::Upgrade(u) if u.check => {
            let c = oxtree_host::check_update(&context(sr, rn, false), u.os.as_deref())?;
            if c.available {
                println!("Update available: {} -> {}", c.current, c.latest);
            } else {
                println!("No update available.");
            }
        }
        Cmd::Upgrade(u) => {
            let req = oxtree_host::UpgradeRequest {
                os: u.os,
                pull_only: u.pull_only,
                deploy_only: u.deploy_only,
                allow_downgrade: u.allow_downgrade,
                override_commit: u.override_commit,
                stage: u.stage,
                reboot: u.reboot,
            };
            match oxtree_host::upgrade(&context(sr, rn, false), &req)? {
                UpgradeOutcome::NoChange => println!("No update available."),
                UpgradeOutcome::PulledOnly => {}
                UpgradeOutcome::Applied(t) => print_transaction(&t),
            }
        }
        Cmd::Switch(w) => {
            let req = oxtree_host::SwitchRequest {
                os: w.os,
                refspec: w.refspec,
                stage: w.stage,
                reboot: w.reboot,
            };
            print_transaction(&oxtree_host::switch(&context(sr, rn, false), &req)?);
        }
        Cmd::Kargs {
            cmd:
                KargsCmd::EditInPlace {
                    append,
                    append_if_missing,
                    delete,
                    delete_if_present,
                    replace,
                    deployment,
                    ..
                },
        } => {
            use oxtree_sysroot::upgrade::KargEdit;
            let mut edits = Vec::new();
            edits.extend(delete.into_iter().map(KargEdit::Delete));
            edits.extend(delete_if_present.into_iter().map(KargEdit::DeleteIfPresent));
            edits.extend(replace.into_iter().map(KargEdit::Replace));
            edits.extend(append.into_iter().map(KargEdit::Append));
            edits.extend(append_if_missing.into_iter().map(KargEdit::AppendIfMissing));
            if edits.is_empty() {
                bail!("no edit given (--append, --append-if-missing, --delete, --delete-if-present, --replace)");
            }
            let mut s = open(sr, rn)?;
            let w = s.edit_kargs(deployment, &edits)?;
            write_line(&w);
        }
        Cmd::Instutil {
            cmd:
                InstutilCmd::SetKargs {
                    merge,
                    import_proc_cmdline,
                    replace,
                    append,
                    args,
                },
        } => {
            use oxtree_sysroot::upgrade::KargEdit;
            let mut edits = Vec::new();
            if import_proc_cmdline {
                edits.push(KargEdit::Clear);
                edits.extend(
                    oxtree_host::proc_cmdline_kargs()?
                        .split_whitespace()
                        .filter(|a| !a.starts_with("ostree="))
                        .map(|a| KargEdit::Append(a.to_string())),
                );
            } else if !merge {
                edits.push(KargEdit::Clear);
            }
            edits.extend(replace.into_iter().map(KargEdit::Set));
            edits.extend(append.into_iter().map(KargEdit::Append));
            edits.extend(
                args.into_iter()
                    .filter(|a| !a.contains(':') || a.contains('='))
                    .map(KargEdit::Append),
            );
            let mut s = open(sr, rn)?;
            write_line(&s.edit_kargs(0, &edits)?);
        }
        Cmd::FinalizeStaged => {
            use oxtree_sysroot::staged::FinalizeOutcome;
            let mut s = open(sr, rn)?;
            match s.finalize_staged()? {
                FinalizeOutcome::NothingStaged => println!("No staged deployment."),
                FinalizeOutcome::Locked => println!(
                    "Not finalizing; found {}",
                    rn.join(oxtree_sysroot::staged::STAGED_LOCK).display()
                ),
                FinalizeOutcome::Done(r) => {
                    print_deploy(&r);
                    cleanup(&mut s)?;
                }
            }
        }
        Cmd::Unlock {
            hotfix,
            transient,
            deployment,
        } => {
            let mode = unlock_mode(hotfix, transient)?;
            oxtree_host::unlock(&context(sr, rn, false), deployment, mode)?;
            print_unlocked(mode);
        }
        Cmd::PrepareRoot(p) => {
            // The admin default `/` is never a physical root to prepare.
            let root = if sr == Path::new("/") {
                Path::new("/sysroot")
            } else {
                sr
            };
            crate::commands::prepare_root::run(p, root)?
        }
        Cmd::HealthCheck => crate::commands::boot_health::health_check(sr, Path::new("/"))?,
        Cmd::BootComplete => crate::commands::boot_health::boot_complete(&mut open(sr, rn)?)?,
        Cmd::BootFailed { reboot } => {
            crate::commands::boot_health::boot_failed(&open_unlocked(sr, rn)?, reboot)?
        }
        Cmd::Other(args) => bail!(
            "Unknown \"admin\" subcommand '{}'\n\n{}",
            args.first().map(String::as_str).unwrap_or(""),
            crate::usage_of(&["admin"])
        ),
    }
    Ok(())
}

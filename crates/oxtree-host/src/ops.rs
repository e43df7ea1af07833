//! `deploy`, `rollback`, `cleanup` and the tail every deploying
//! transaction shares: deploy or stage, clean up, reboot when asked.

use crate::error::{HostError, Result};
use crate::origin::Origin;
use crate::progress::Event;
use crate::Context;
use oxtree_compose::layer;
use oxtree_compose::PackageDiff;
use oxtree_object::Checksum;
use oxtree_sysroot::cleanup::CleanupReport;
use oxtree_sysroot::write::WriteReport;
use oxtree_sysroot::{DeployOptions, DeployReport, Deployment, Sysroot};

/// How a new deployment was applied.
#[derive(Clone, Debug)]
pub enum Applied {
    /// Staged: finalized at shutdown (`finalize-staged`).
    Staged(Deployment),
    /// Deployed now: boot entries written.
    Deployed(DeployReport),
}

impl Applied {
    pub fn deployment(&self) -> &Deployment {
        match self {
            Applied::Staged(d) => d,
            Applied::Deployed(r) => &r.deployment,
        }
    }
}

/// A layered commit built for a transaction.
#[derive(Clone, Debug)]
pub struct LayeredBuild {
    /// The base commit the packages were layered on.
    pub base: Checksum,
    /// The layered commit deployed.
    pub commit: Checksum,
    /// Packages added, removed and changed against the base.
    pub diff: PackageDiff,
}

/// A transaction that deployed (or staged) something.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Transaction {
    pub applied: Applied,
    /// The origin of the new deployment (None: `deploy` with an origin
    /// file that names no refspec).
    pub origin: Option<Origin>,
    /// The base commit of the new deployment (the commit itself when
    /// nothing is layered).
    pub base: Checksum,
    /// Set when packages were layered on `base`.
    pub layered: Option<LayeredBuild>,
    /// What the cleanup after it removed.
    pub cleanup: CleanupReport,
    /// The reboot hook was called.
    pub rebooted: bool,
}

/// Keep the bases of layered deployments (and a staged commit) from the
/// prune, then delete leftover deployments, boot files and objects.
/// For callers that already hold the locked sysroot.
pub fn cleanup_locked(s: &mut Sysroot) -> Result<CleanupReport> {
    layer::sync_refs(s).map_err(|e| HostError::from(e).context("updating layering refs"))?;
    let mut r = s
        .cleanup()
        .map_err(|e| HostError::from(e).context("cleaning up"))?;
    r.bound_images_removed = crate::bound::prune(s)
        .map_err(|e| e.context("removing bound images no deployment needs"))?;
    Ok(r)
}

/// `admin cleanup`.
pub fn cleanup(cx: &Context) -> Result<CleanupReport> {
    let mut s = cx.open_locked()?;
    cleanup_locked(&mut s)
}

/// Deploy or stage `rev` with `opts`, clean up and reboot when asked:
/// the tail of every deploying transaction.
pub(crate) struct Apply<'a> {
    /// A checksum, or a refspec (`deploy`: the default origin names it).
    pub rev: &'a str,
    pub opts: DeployOptions,
    pub stage: bool,
    pub lock_finalization: bool,
    pub reboot: bool,
}

pub(crate) fn apply(
    cx: &Context,
    s: &mut Sysroot,
    a: Apply<'_>,
) -> Result<(Applied, CleanupReport, bool)> {
    cx.cancel.check()?;
    let hex = a.rev;
    // Containers bound to the new commit are in the store before it is
    // deployed, so that its first boot needs no network.
    crate::bound::pull_for(cx, s, hex)?;
    cx.report(Event::Deploying {
        rev: hex.to_string(),
        staged: a.stage,
    });
    let applied = if a.stage {
        Applied::Staged(s.stage(hex, &a.opts, a.lock_finalization)?)
    } else {
        Applied::Deployed(s.deploy(hex, &a.opts)?)
    };
    let cleanup = cleanup_locked(s)?;
    let rebooted = if a.reboot {
        cx.reboot.reboot().map_err(|e| HostError::Failed {
            context: "rebooting".into(),
            source: e.into(),
        })?;
        true
    } else {
        false
    };
    cx.report(Event::Done);
    Ok((applied, cleanup, rebooted))
}

/// `admin deploy REV`.
#[derive(Clone, Debug, Default)]
pub struct DeployRequest {
    /// Refspec or checksum.
    pub rev: String,
    /// Stateroot, kernel arguments, origin file, retain, not-as-default.
    pub opts: DeployOptions,
    pub stage: bool,
    /// With `stage`: hold finalization until the lock file is removed.
    pub lock_finalization: bool,
    /// Ask the reboot hook to reboot afterwards.
    pub reboot: bool,
}

/// The running kernel's arguments, for `deploy --karg-proc-cmdline`:
/// `/proc/cmdline` (or `$OXTREE_PROC_CMDLINE`) without the boot loader's
/// `BOOT_IMAGE=` and `initrd=`.
pub fn proc_cmdline_kargs() -> Result<String> {
    let path = std::env::var_os("OXTREE_PROC_CMDLINE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "/proc/cmdline".into());
    let text = std::fs::read_to_string(&path).map_err(|e| HostError::Failed {
        context: format!("reading {}", path.display()),
        source: e.into(),
    })?;
    Ok(text
        .split_whitespace()
        .filter(|a| !a.starts_with("BOOT_IMAGE=") && !a.starts_with("initrd="))
        .collect::<Vec<_>>()
        .join(" "))
}

/// `DeployOptions::karg_base` for `deploy --karg-proc-cmdline` (the
/// running kernel's arguments) or `--karg-none` (none); neither: the merge
/// deployment's (None).
pub fn karg_base(proc_cmdline: bool, none: bool) -> Result<Option<String>> {
    match (proc_cmdline, none) {
        (true, true) => Err(HostError::bad(
            "--karg-proc-cmdline and --karg-none are exclusive",
        )),
        (true, false) => Ok(Some(proc_cmdline_kargs()?)),
        (false, true) => Ok(Some(String::new())),
        (false, false) => Ok(None),
    }
}

pub fn deploy(cx: &Context, req: &DeployRequest) -> Result<Transaction> {
    if req.lock_finalization && !req.stage {
        return Err(HostError::bad("--lock-finalization requires --stage"));
    }
    if req.stage && (req.opts.retain || req.opts.not_as_default) {
        return Err(HostError::bad(
            "--stage cannot be combined with --retain or --not-as-default",
        ));
    }
    let mut s = cx.open_locked()?;
    let (applied, cleanup, rebooted) = apply(
        cx,
        &mut s,
        Apply {
            rev: &req.rev,
            opts: req.opts.clone(),
            stage: req.stage,
            lock_finalization: req.lock_finalization,
            reboot: req.reboot,
        },
    )?;
    let commit = Checksum::from_hex(&applied.deployment().csum).map_err(|e| HostError::Failed {
        context: "the new deployment".into(),
        source: e.into(),
    })?;
    let base = layer::base_commit(s.repo(), &commit).unwrap_or(commit);
    let origin = applied
        .deployment()
        .origin
        .as_ref()
        .and_then(Origin::from_keyfile);
    Ok(Transaction {
        applied,
        origin,
        base,
        layered: None,
        cleanup,
        rebooted,
    })
}

/// What `rollback` did.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RollbackOutcome {
    /// The deployment that is now the default.
    pub default: Deployment,
    pub write: WriteReport,
    pub rebooted: bool,
}

/// `admin rollback` (rpm-ostree's): the previous deployment (index 1)
/// becomes the default; reboot afterwards when asked.
pub fn rollback(cx: &Context, reboot: bool) -> Result<RollbackOutcome> {
    let mut s = cx.open_locked()?;
    let Ok(d) = s.deployment(1).cloned() else {
        return Err(HostError::bad("no rollback deployment available"));
    };
    let write = s.rollback()?;
    if reboot {
        cx.reboot.reboot().map_err(|e| HostError::Failed {
            context: "rebooting".into(),
            source: e.into(),
        })?;
    }
    cx.report(Event::Done);
    Ok(RollbackOutcome {
        default: d,
        write,
        rebooted: reboot,
    })
}

/// The deployment whose origin a transaction follows and edits, as
/// rpm-ostree picks it: the staged deployment of the stateroot, else its
/// first (default, possibly pending) one, so that changes stack on a
/// pending deployment instead of replacing it. (/etc and kernel arguments
/// still merge from the sysroot's merge deployment, the booted one.)
/// `what` ends the error messages ("upgrade", "layer on it").
pub(crate) fn origin_deployment(
    s: &Sysroot,
    os: Option<&str>,
    what: &str,
) -> Result<(Deployment, Origin, Checksum)> {
    // No stateroot, or several and none named: a bad request.
    let osname = s.resolve_osname(os)?;
    let d = s
        .staged()
        .filter(|d| d.osname == osname)
        .or_else(|| s.deployments().iter().find(|d| d.osname == osname))
        .cloned()
        .ok_or_else(|| HostError::bad(format!("no deployment of stateroot {osname} to {what}")))?;
    let origin = d
        .origin
        .as_ref()
        .and_then(Origin::from_keyfile)
        .ok_or_else(|| {
            HostError::bad(format!(
                "deployment {} has no origin refspec; cannot {what}",
                d.name()
            ))
        })?;
    let csum = Checksum::from_hex(&d.csum).map_err(|e| HostError::Failed {
        context: format!("deployment {}", d.name()),
        source: e.into(),
    })?;
    let base = layer::base_commit(s.repo(), &csum)?;
    Ok((d, origin, base))
}

/// Fetch `branch` (at `commit`, if given) from `remote` into the sysroot
/// repository, with the remote's TLS and proxy settings, reporting
/// progress and honouring the cancel token.
pub(crate) fn pull_into(
    cx: &Context,
    s: &Sysroot,
    remote: &str,
    branch: &str,
    commit: Option<&str>,
    timestamp_check_from: Option<oxtree_object::Checksum>,
) -> Result<()> {
    use oxtree_transport::{PullOptions, Remote};
    cx.cancel.check()?;
    let what = format!("pulling {branch} from {remote}");
    let repo = s.repo();
    let r = Remote::open(repo, remote)?;
    let mut opts = PullOptions {
        cancel: Some(cx.cancel.flag()),
        timestamp_check_from,
        ..PullOptions::default()
    };
    opts.fetch = r
        .fetch_options(opts.fetch)
        .map_err(|e| HostError::from(e).context(what.clone()))?;
    let req = match commit {
        Some(c) => format!("{branch}@{c}"),
        None => branch.to_string(),
    };
    cx.report(Event::PullStarted {
        remote: remote.to_string(),
        refspec: branch.to_string(),
    });
    let progress = |p: &oxtree_transport::PullProgress| cx.report(Event::Pull(p.into()));
    let res = oxtree_transport::pull(repo, &r, &[req], &opts, &progress)
        .map_err(|e| HostError::from(e).context(what))?;
    cx.report(Event::PullDone((&res.progress).into()));
    Ok(())
}

/// What [`undeploy`] did.
#[derive(Debug)]
pub struct UndeployOutcome {
    pub deployment: Deployment,
    pub write: WriteReport,
    pub cleanup: CleanupReport,
}

/// `admin undeploy INDEX`: take deployment `index` out of the boot
/// entries, then clean up (its directory, boot files, unreferenced
/// objects; layered bases stay protected).
pub fn undeploy(cx: &Context, index: usize) -> Result<UndeployOutcome> {
    let mut s = cx.open_locked()?;
    let (deployment, write) = s.undeploy(index)?;
    let cleanup = cleanup_locked(&mut s)?;
    cx.report(Event::Done);
    Ok(UndeployOutcome {
        deployment,
        write,
        cleanup,
    })
}

/// `admin set-default INDEX`: make deployment `index` the default; the
/// deployment and the boot write.
pub fn set_default(cx: &Context, index: usize) -> Result<(Deployment, WriteReport)> {
    let mut s = cx.open_locked()?;
    let d = s.deployment(index)?.clone();
    let w = s.set_default(index)?;
    cx.report(Event::Done);
    Ok((d, w))
}

/// `admin pin [--unpin] INDEX…`: pin (or unpin) each deployment; for
/// each index, whether it changed (false: it already was).
pub fn pin(cx: &Context, indexes: &[usize], pinned: bool) -> Result<Vec<(usize, bool)>> {
    if indexes.is_empty() {
        return Err(HostError::bad("no deployment index given"));
    }
    let mut s = cx.open_locked()?;
    // Every index is checked before anything changes.
    for &i in indexes {
        s.deployment(i)?;
    }
    let mut out = Vec::new();
    for &i in indexes {
        let changed = s.deployment(i)?.is_pinned() != pinned;
        if changed {
            s.set_pinned(i, pinned)?;
        }
        out.push((i, changed));
    }
    cx.report(Event::Done);
    Ok(out)
}

/// `admin kargs edit-in-place`: change the kernel arguments of deployment
/// `index` (0: the default one) in place.
pub fn edit_kargs(
    cx: &Context,
    index: usize,
    edits: &[oxtree_sysroot::upgrade::KargEdit],
) -> Result<WriteReport> {
    if edits.is_empty() {
        return Err(HostError::bad("no kernel argument edit given"));
    }
    let mut s = cx.open_locked()?;
    let w = s.edit_kargs(index, edits)?;
    cx.report(Event::Done);
    Ok(w)
}

//! Transactions that change an existing deployment in place, with no new
//! checkout: the remote and branch it follows (`admin set-origin`) and a
//! writable `/usr` over it (`admin unlock`); and the two small stateroot
//! calls beside them: creating one (`admin os-init`) and listing the
//! local changes to its `/etc` (`admin config-diff`).

use crate::{Context, Event, HostError, Result};
use oxtree_sysroot::etc_merge::EtcDiff;
use oxtree_sysroot::Deployment;

pub use oxtree_sysroot::unlock::UnlockMode;

/// `admin set-origin`: make a deployment follow `remote:branch`, adding
/// the remote (with `url` and `options`) when the repo has none of that
/// name.
#[derive(Clone, Debug, Default)]
pub struct SetOriginRequest {
    /// The deployment (default: the merge deployment of the booted or
    /// default stateroot).
    pub index: Option<usize>,
    pub remote: String,
    pub url: String,
    /// The ref to follow (default: the deployment's current one).
    pub branch: Option<String>,
    /// `KEY=VALUE` settings of a newly added remote.
    pub options: Vec<(String, String)>,
}

/// What [`set_origin`] did.
#[derive(Debug)]
pub struct SetOriginOutcome {
    pub index: usize,
    pub deployment: Deployment,
    /// The refspec the deployment now follows.
    pub refspec: String,
    /// Whether the remote was added (false: it existed and was kept).
    pub remote_added: bool,
}

/// Every name and value is checked before anything is written: a remote
/// name or option that could break out of its config line is refused.
pub fn check_set_origin(req: &SetOriginRequest) -> Result<()> {
    oxtree_transport::remote::validate_remote_name(&req.remote)
        .map_err(|e| HostError::bad(e.to_string()))?;
    let printable = |s: &str| !s.is_empty() && !s.chars().any(char::is_control);
    if !printable(&req.url) {
        return Err(HostError::bad(
            "the remote URL is empty or has control characters",
        ));
    }
    if let Some(b) = &req.branch {
        oxtree_repo::refs::validate_ref_name(b)
            .map_err(|_| HostError::bad(format!("invalid branch name {b:?}")))?;
    }
    for (k, v) in &req.options {
        let key_ok = !k.is_empty()
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !key_ok || v.chars().any(char::is_control) {
            return Err(HostError::bad(format!("invalid remote option {k:?}")));
        }
    }
    Ok(())
}

pub fn set_origin(cx: &Context, req: &SetOriginRequest) -> Result<SetOriginOutcome> {
    check_set_origin(req)?;
    let mut s = cx.open_locked()?;
    let index = match req.index {
        Some(i) => i,
        None => {
            let os = s.resolve_osname(None)?;
            let m = s
                .merge_deployment(&os)
                .ok_or_else(|| HostError::bad("no deployment to change"))?
                .clone();
            s.deployments().iter().position(|d| d.same(&m)).unwrap_or(0)
        }
    };
    let d = s.deployment(index)?.clone();
    let branch = match &req.branch {
        Some(b) => b.clone(),
        None => {
            let cur = d.refspec().ok_or_else(|| {
                HostError::bad("the deployment has no origin refspec; give a branch")
            })?;
            cur.split_once(':').map_or(cur, |(_, r)| r).to_string()
        }
    };
    let section = oxtree_transport::remote::section(&req.remote);
    let mut cfg = s.repo().config().clone();
    let remote_added = cfg.get(&section, "url").is_none();
    if remote_added {
        cfg.set(&section, "url", &req.url);
        for (k, v) in &req.options {
            cfg.set(&section, k, v);
        }
        s.repo_mut().write_config(cfg).map_err(HostError::from)?;
    }
    let refspec = format!("{}:{branch}", req.remote);
    let mut o = d.origin.clone().unwrap_or_default();
    o.set("origin", "refspec", &refspec);
    s.write_origin(index, &o)?;
    let deployment = s.deployment(index)?.clone();
    cx.report(Event::Done);
    Ok(SetOriginOutcome {
        index,
        deployment,
        refspec,
        remote_added,
    })
}

/// What [`unlock`] did.
#[derive(Debug)]
pub struct UnlockOutcome {
    pub deployment: Deployment,
    pub mode: UnlockMode,
    /// With [`UnlockMode::Hotfix`]: the pristine copy made the rollback.
    pub rollback: Option<Deployment>,
}

/// `admin unlock [--hotfix]`: mount a writable overlay on `/usr` of
/// deployment `index` (default: the booted one, else the default one).
/// Transient changes vanish at reboot; a hotfix keeps them and makes a
/// pristine copy the rollback.
pub fn unlock(cx: &Context, index: Option<usize>, mode: UnlockMode) -> Result<UnlockOutcome> {
    let mut s = cx.open_locked()?;
    let index = index.or(s.booted_index()).unwrap_or(0);
    let r = s.unlock(index, mode)?;
    cx.report(Event::Done);
    Ok(UnlockOutcome {
        deployment: r.deployment,
        mode,
        rollback: r.rollback,
    })
}

/// `admin os-init NAME`: create stateroot `name` (nothing happens if it
/// exists).
pub fn init_stateroot(cx: &Context, name: &str) -> Result<()> {
    let s = cx.open_locked()?;
    s.init_stateroot(name)?;
    cx.report(Event::Done);
    Ok(())
}

/// `admin config-diff`: the local changes to `/etc` of stateroot `os`'s
/// merge deployment (default: the booted or only stateroot), and its
/// name. Takes no lock: it only reads.
pub fn config_diff(cx: &Context, os: Option<&str>) -> Result<(String, EtcDiff)> {
    let s = cx.open_unlocked()?;
    let os = s.resolve_osname(os)?;
    let d = s.config_diff(&os)?;
    Ok((os, d))
}

//! One upgrader for plain and layered deployments: `upgrade` follows the
//! origin's refspec, `switch` moves it. Both
//!
//! - follow the origin of the same deployment ([`crate::ops`]'s
//!   `origin_deployment`: the staged one, else the default one);
//! - compare base commits (a plain deployment is its own base): the same
//!   base is "no change", an older one (by commit timestamp) a downgrade
//!   refused unless allowed, with ostree's message;
//! - layer the origin's packages again on the new base when it has any.

use crate::error::{HostError, Result};
use crate::ops::{apply, origin_deployment, pull_into, Apply, LayeredBuild, Transaction};
use crate::origin::Origin;
use crate::Context;
use oxtree_compose::layer;
use oxtree_object::Checksum;
use oxtree_sysroot::{DeployOptions, Deployment, Sysroot};

/// `admin upgrade`.
#[derive(Clone, Debug, Default)]
pub struct UpgradeRequest {
    /// Stateroot (default: the booted one, or the only one).
    pub os: Option<String>,
    /// Download only; deploy nothing.
    pub pull_only: bool,
    /// Deploy what is already in the repository; do not pull.
    pub deploy_only: bool,
    /// Permit a chronologically older target.
    pub allow_downgrade: bool,
    /// Deploy this commit instead of the latest (recorded in the origin).
    pub override_commit: Option<String>,
    /// Stage (finalized at shutdown) instead of writing boot entries now.
    pub stage: bool,
    /// Ask the reboot hook to reboot after deploying or staging.
    pub reboot: bool,
}

/// What `upgrade` did.
#[derive(Clone, Debug)]
pub enum UpgradeOutcome {
    /// The target is what the deployment already runs.
    NoChange,
    /// `pull_only`: fetched, nothing deployed.
    PulledOnly,
    /// Deployed or staged (see [`Transaction::applied`]).
    Applied(Box<Transaction>),
}

/// `admin switch REFSPEC` (`rpm-ostree rebase`); `refspec` may also be an
/// image reference (`ostree-unverified-registry:…`, see
/// [`crate::is_image_reference`]).
#[derive(Clone, Debug, Default)]
pub struct SwitchRequest {
    pub os: Option<String>,
    /// `REMOTE:REF`, or `REF` (keeps the current remote).
    pub refspec: String,
    pub stage: bool,
    pub reboot: bool,
}

/// `admin upgrade`: fetch the origin's refspec (unless `deploy_only`) and
/// deploy its latest commit (or the override commit), layering the
/// origin's packages again on it.
pub fn upgrade(cx: &Context, req: &UpgradeRequest) -> Result<UpgradeOutcome> {
    if req.pull_only && req.deploy_only {
        return Err(HostError::bad(
            "Cannot simultaneously specify --pull-only and --deploy-only",
        ));
    }
    let mut s = cx.open_locked()?;
    let (current, mut origin, base) = origin_deployment(&s, req.os.as_deref(), "upgrade")?;
    if let Some(why) = origin.unconfigured_state() {
        if req.override_commit.is_none() {
            return Err(HostError::bad(why.to_string()));
        }
    }
    // A plain upgrade goes back to the branch's tip: an override commit
    // from an earlier `--override-commit` is dropped, as ostree does.
    origin.override_commit = req.override_commit.clone();
    run(
        cx,
        &mut s,
        Plan {
            current,
            base,
            origin,
            pull: !req.deploy_only,
            deploy: !req.pull_only,
            allow_downgrade: req.allow_downgrade,
            switch: false,
            stage: req.stage,
            reboot: req.reboot,
        },
    )
}

/// `admin switch`: follow another refspec (keeping layered packages) and
/// deploy its latest commit, even when it is the same commit.
pub fn switch(cx: &Context, req: &SwitchRequest) -> Result<Transaction> {
    let mut s = cx.open_locked()?;
    let (current, origin, base) = origin_deployment(&s, req.os.as_deref(), "upgrade")?;
    let new = origin.rebased(&req.refspec);
    if new.refspec == origin.refspec && new.container_image == origin.container_image {
        return Err(HostError::bad(match &new.container_image {
            Some(i) => format!("Old and new image references are equal: {i}"),
            None => format!("Old and new refs are equal: {}", new.refspec),
        }));
    }
    let out = run(
        cx,
        &mut s,
        Plan {
            current,
            base,
            origin: new,
            pull: true,
            deploy: true,
            allow_downgrade: true,
            switch: true,
            stage: req.stage,
            reboot: req.reboot,
        },
    )?;
    match out {
        UpgradeOutcome::Applied(t) => Ok(*t),
        _ => unreachable!("a switch always deploys"),
    }
}

/// What [`check_update`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckOutcome {
    /// The base commit the followed deployment runs.
    pub current: Checksum,
    /// The latest commit of the origin's refspec (or its override commit).
    pub latest: Checksum,
    /// `latest` differs from `current`.
    pub available: bool,
}

/// `upgrade --check`: fetch the origin's refspec (commits and content, as
/// `--pull-only` does, so that a later deploy needs no network) and say
/// whether it moved. Deploys nothing.
pub fn check_update(cx: &Context, os: Option<&str>) -> Result<CheckOutcome> {
    let s = cx.open_locked()?;
    let (current, origin, base) = origin_deployment(&s, os, "upgrade")?;
    if let Some(image) = &origin.container_image {
        // The manifest first; the image only when it changed.
        let now = crate::image::remote_digest(cx, &s, image)?;
        let deployed = crate::image::deployed_digest(&s, &current, &origin);
        let latest = if deployed.as_deref() == Some(now.as_str()) {
            base
        } else {
            crate::image::pull_bootable(cx, &s, image, Some(base))?.commit
        };
        cx.report(crate::progress::Event::Done);
        return Ok(CheckOutcome {
            current: base,
            latest,
            available: latest != base,
        });
    }
    if let Some(remote) = origin.remote() {
        pull_into(
            cx,
            &s,
            remote,
            origin.branch(),
            origin.override_commit.as_deref(),
            None,
        )?;
    }
    cx.cancel.check()?;
    let latest = s.repo().resolve_rev(origin.target_rev())?;
    cx.report(crate::progress::Event::Done);
    Ok(CheckOutcome {
        current: base,
        latest,
        available: latest != base,
    })
}

pub(crate) struct Plan {
    /// The deployment followed and its base commit.
    pub current: Deployment,
    pub base: Checksum,
    /// The origin of the new deployment.
    pub origin: Origin,
    pub pull: bool,
    pub deploy: bool,
    pub allow_downgrade: bool,
    /// Deploy even when the base is unchanged (the origin changes).
    pub switch: bool,
    pub stage: bool,
    pub reboot: bool,
}

fn run(cx: &Context, s: &mut Sysroot, mut p: Plan) -> Result<UpgradeOutcome> {
    if p.origin.is_image() {
        // Images are deployed as tagged: no downgrade check.
        return crate::image::run(cx, s, p);
    }
    if p.pull {
        fetch(cx, s, &p.origin, (!p.allow_downgrade).then_some(p.base))?;
    }
    // A branch marked end-of-life may name its successor: follow it (also
    // for --deploy-only, after a --pull-only fetched both).
    if !p.switch && p.origin.override_commit.is_none() {
        {
            let tip = s.repo().resolve_rev(p.origin.target_rev())?;
            let next = s
                .repo()
                .load_commit(&tip)?
                .metadata
                .get_str("ostree.endoflife-rebase")
                .map(str::to_string);
            if let Some(next) = next {
                cx.say(format!(
                    "Branch {} is end-of-life; rebasing to {next}",
                    p.origin.branch()
                ));
                p.origin = p.origin.rebased(&next);
                p.switch = true;
                if p.pull {
                    fetch(cx, s, &p.origin, (!p.allow_downgrade).then_some(p.base))?;
                }
            }
        }
    }
    let o = &p.origin;
    if !p.deploy {
        return Ok(UpgradeOutcome::PulledOnly);
    }
    cx.cancel.check()?;
    let new_base = s.repo().resolve_rev(o.target_rev())?;
    if new_base == p.base && !p.switch {
        return Ok(UpgradeOutcome::NoChange);
    }
    if !p.allow_downgrade {
        check_downgrade(s, &p.base, &new_base)?;
    }
    let layered = if o.is_layered() {
        cx.say(format!(
            "New base commit {new_base}; re-applying {}",
            layer::describe(&o.layer_spec())
        ));
        let b = crate::layer::build(cx, s, &p.current, &new_base, &o.layer_spec())?;
        Some(b)
    } else {
        None
    };
    let commit = layered
        .as_ref()
        .map_or(new_base, |b: &LayeredBuild| b.commit);
    deploy_commit(cx, s, p, commit, new_base, layered)
}

/// Deploy `commit` (built on `base`) for `p` with its origin: the shared
/// end of an upgrade or switch, from a branch or from an image.
pub(crate) fn deploy_commit(
    cx: &Context,
    s: &mut Sysroot,
    p: Plan,
    commit: Checksum,
    base: Checksum,
    layered: Option<LayeredBuild>,
) -> Result<UpgradeOutcome> {
    let origin = p.origin;
    let opts = DeployOptions {
        osname: Some(p.current.osname.clone()),
        origin: Some(origin.to_keyfile()),
        ..DeployOptions::default()
    };
    let (applied, cleanup, rebooted) = apply(
        cx,
        s,
        Apply {
            rev: &commit.to_hex(),
            opts,
            stage: p.stage,
            lock_finalization: false,
            reboot: p.reboot,
        },
    )?;
    Ok(UpgradeOutcome::Applied(Box::new(Transaction {
        applied,
        origin: Some(origin),
        base,
        layered,
        cleanup,
        rebooted,
    })))
}

/// Pull the origin's branch (or override commit). `not_older_than`: a
/// commit older than this one (the deployment's) is refused as it
/// arrives (nothing of its tree fetched, no ref moved), as ostree's
/// upgrader does unless downgrades are allowed.
fn fetch(cx: &Context, s: &Sysroot, o: &Origin, not_older_than: Option<Checksum>) -> Result<()> {
    if let Some(remote) = o.remote() {
        if o.is_layered() {
            cx.say(format!("Fetching {} from {remote}...", o.branch()));
        }
        pull_into(
            cx,
            s,
            remote,
            o.branch(),
            o.override_commit.as_deref(),
            not_older_than,
        )?;
    }
    Ok(())
}

/// ostree's downgrade check: a target whose commit timestamp is older than
/// the current one's is refused.
fn check_downgrade(s: &Sysroot, cur: &Checksum, new: &Checksum) -> Result<()> {
    let old_ts = s.repo().load_commit(cur)?.timestamp;
    let new_ts = s.repo().load_commit(new)?.timestamp;
    if new_ts < old_ts {
        return Err(HostError::bad(format!(
            "Upgrade target revision '{new}' with timestamp {} is chronologically older than current revision '{cur}' with timestamp {}; use --allow-downgrade to permit",
            fmt_ts(new_ts),
            fmt_ts(old_ts)
        )));
    }
    Ok(())
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub(crate) fn fmt_ts(t: u64) -> String {
    chrono::DateTime::from_timestamp(t as i64, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| format!("@{t}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_like_ostree() {
        assert_eq!(super::fmt_ts(1_704_067_200), "2024-01-01T00:00:00Z");
    }
}

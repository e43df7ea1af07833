//! `install`, `uninstall`, `override remove|reset` (rpm-ostree's
//! commands): edit the origin's package request, build it on the base
//! with `oxtree_compose::layer` and deploy the result.

use crate::error::{HostError, Result};
use crate::ops::{apply, origin_deployment, Apply, LayeredBuild, Transaction};
use crate::origin::Origin;
use crate::progress::{Event, LayerStep};
use crate::Context;
use oxtree_compose::layer::{self, AptDirs, BuildOptions, LayerSpec, Resolution, Step};
use oxtree_object::Checksum;
use oxtree_sysroot::{DeployOptions, Deployment, Sysroot};

/// A change of the package request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PackageChange {
    /// Layer these packages.
    Install(Vec<String>),
    /// Take layered packages away again.
    Uninstall(Vec<String>),
    /// Remove packages of the base.
    OverrideRemove(Vec<String>),
    /// Undo removals of base packages (`all`: every one).
    OverrideReset { all: bool, packages: Vec<String> },
}

impl PackageChange {
    /// Apply to `o`; a change that makes no sense is a bad request.
    pub fn apply_to(&self, o: &mut Origin) -> Result<()> {
        let bad = |m: String| Err(HostError::BadRequest(m));
        match self {
            PackageChange::Install(pkgs) => {
                for p in pkgs {
                    if !o.packages.insert(p.clone()) {
                        return bad(format!("package {p} is already requested"));
                    }
                    if o.removals.contains(p) {
                        return bad(format!(
                            "package {p} is a removed base package; use `override reset {p}`"
                        ));
                    }
                }
            }
            PackageChange::Uninstall(pkgs) => {
                for p in pkgs {
                    if !o.packages.remove(p) {
                        return bad(format!("package {p} is not a layered package"));
                    }
                }
            }
            PackageChange::OverrideRemove(pkgs) => {
                for p in pkgs {
                    if o.packages.contains(p) {
                        return bad(format!(
                            "package {p} is layered, not from the base; use `uninstall {p}`"
                        ));
                    }
                    if !o.removals.insert(p.clone()) {
                        return bad(format!("package {p} is already removed"));
                    }
                }
            }
            PackageChange::OverrideReset { all, packages } => {
                if *all {
                    if o.removals.is_empty() {
                        return bad("no base package removals to reset".into());
                    }
                    o.removals.clear();
                }
                for p in packages {
                    if !o.removals.remove(p) {
                        return bad(format!("package {p} is not a removed base package"));
                    }
                }
            }
        }
        layer::check_names(o.packages.iter().chain(&o.removals))?;
        Ok(())
    }
}

/// `install` / `uninstall` / `override …`.
#[derive(Clone, Debug)]
pub struct PackagesRequest {
    pub os: Option<String>,
    pub change: PackageChange,
    /// Stage instead of writing the boot entries now.
    pub stage: bool,
    /// Only ask apt what it would do; change nothing.
    pub dry_run: bool,
    pub reboot: bool,
}

/// apt's simulation of a request (`dry_run`).
#[derive(Clone, Debug)]
pub struct DryRun {
    pub base: Checksum,
    pub origin: Origin,
    /// Empty when nothing is layered.
    pub resolution: Resolution,
}

impl DryRun {
    /// The simulation as JSON: what `--dry-run --json` prints and what the
    /// agent answers (with `"outcome": "dry-run"`).
    pub fn to_json(&self) -> serde_json::Value {
        let list = |v: &[(String, String)]| {
            v.iter()
                .map(|(n, ver)| serde_json::json!({ "name": n, "version": ver }))
                .collect::<Vec<_>>()
        };
        serde_json::json!({
            "dry-run": true,
            "base-checksum": self.base.to_hex(),
            "layered": self.origin.is_layered(),
            "requested-packages": self.origin.packages,
            "requested-base-removals": self.origin.removals,
            "install": list(&self.resolution.install),
            "remove": list(&self.resolution.remove),
        })
    }
}

#[derive(Clone, Debug)]
pub enum LayerOutcome {
    DryRun(Box<DryRun>),
    Applied(Box<Transaction>),
}

/// Edit the package request of the followed deployment (the staged one,
/// else the default one, so changes stack) and deploy it on the same base.
pub fn change_packages(cx: &Context, req: &PackagesRequest) -> Result<LayerOutcome> {
    if req.dry_run && (req.stage || req.reboot) {
        return Err(HostError::bad(
            "a dry run cannot be combined with staging or a reboot",
        ));
    }
    let mut s = cx.open_locked()?;
    let (current, origin, base) = origin_deployment(&s, req.os.as_deref(), "layer on it")?;
    if origin.is_image() {
        return Err(HostError::bad(
            "packages layered on a container image are not supported yet",
        ));
    }
    let mut new = origin.clone();
    req.change.apply_to(&mut new)?;
    let spec = new.layer_spec();
    if req.dry_run {
        let resolution = if new.is_layered() {
            let progress = |step: Step, msg: &str| report_step(cx, &step, msg);
            let opts = build_options(&s, &current, &progress);
            layer::resolve(s.repo(), &base, &spec, &opts)?
        } else {
            Resolution::default()
        };
        return Ok(LayerOutcome::DryRun(Box::new(DryRun {
            base,
            origin: new,
            resolution,
        })));
    }
    let layered = if new.is_layered() {
        Some(build(cx, &s, &current, &base, &spec)?)
    } else {
        None
    };
    let commit = layered.as_ref().map_or(base, |b| b.commit);
    let opts = DeployOptions {
        osname: Some(current.osname.clone()),
        origin: Some(new.to_keyfile()),
        ..DeployOptions::default()
    };
    let (applied, cleanup, rebooted) = apply(
        cx,
        &mut s,
        Apply {
            rev: &commit.to_hex(),
            opts,
            stage: req.stage,
            lock_finalization: false,
            reboot: req.reboot,
        },
    )?;
    Ok(LayerOutcome::Applied(Box::new(Transaction {
        applied,
        origin: Some(new),
        base,
        layered,
        cleanup,
        rebooted,
    })))
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

fn report_step(cx: &Context, step: &Step, msg: &str) {
    cx.report(Event::Layering {
        step: LayerStep::from(step),
        text: msg.to_string(),
    })
}

fn build_options<'a>(
    s: &Sysroot,
    d: &Deployment,
    progress: &'a dyn Fn(Step, &str),
) -> BuildOptions<'a> {
    BuildOptions {
        apt: apt_dirs(s, d),
        timestamp: None,
        progress,
    }
}

/// Build `spec` on `base`. The cancel token is checked before the build
/// and after it (compose's steps cannot be interrupted from here yet): a
/// cancelled build is never deployed.
pub(crate) fn build(
    cx: &Context,
    s: &Sysroot,
    current: &Deployment,
    base: &Checksum,
    spec: &LayerSpec,
) -> Result<LayeredBuild> {
    cx.cancel.check()?;
    let t0 = std::time::Instant::now();
    let progress = |step: Step, msg: &str| report_step(cx, &step, msg);
    let built = layer::build(s.repo(), base, spec, &build_options(s, current, &progress))?;
    cx.cancel.check()?;
    cx.say(format!(
        "Layered commit {} built in {:.1}s",
        built.commit,
        t0.elapsed().as_secs_f64()
    ));
    Ok(LayeredBuild {
        base: *base,
        commit: built.commit,
        diff: built.diff,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_edits() {
        let mut o = Origin::new("debian/main");
        PackageChange::Install(vec!["nano".into()])
            .apply_to(&mut o)
            .unwrap();
        assert!(o.is_layered());
        let e = PackageChange::Install(vec!["nano".into()]).apply_to(&mut o.clone());
        assert!(matches!(e, Err(HostError::BadRequest(m)) if m.contains("already requested")));
        let e = PackageChange::Install(vec!["Bad/Name".into()]).apply_to(&mut o.clone());
        assert!(
            matches!(e, Err(HostError::BadRequest(m)) if m.contains("not a valid Debian package name"))
        );
        let e = PackageChange::OverrideRemove(vec!["nano".into()]).apply_to(&mut o.clone());
        assert!(matches!(e, Err(HostError::BadRequest(_))));
        PackageChange::OverrideRemove(vec!["less".into()])
            .apply_to(&mut o)
            .unwrap();
        PackageChange::OverrideReset {
            all: true,
            packages: vec![],
        }
        .apply_to(&mut o)
        .unwrap();
        PackageChange::Uninstall(vec!["nano".into()])
            .apply_to(&mut o)
            .unwrap();
        assert!(!o.is_layered());
        let e = PackageChange::OverrideReset {
            all: true,
            packages: vec![],
        }
        .apply_to(&mut o);
        assert!(
            matches!(e, Err(HostError::BadRequest(m)) if m == "no base package removals to reset")
        );
    }
}

//! Client-side package layering, like `rpm-ostree install/uninstall/
//! override remove`: a local commit derived from a deployment's base
//! commit with extra Debian packages installed and base packages removed.
//!
//! - The request lives in the deployment's origin, as rpm-ostree writes
//!   it: `[origin] baserefspec=REMOTE:REF` (instead of `refspec`),
//!   `[packages] requested=a;b;`, `[overrides] remove=c;`. A deployment
//!   without a request has a plain `refspec` origin and no groups of ours.
//! - The derived commit's parent is the base; its metadata keeps the
//!   base's (`version` …) and adds `oxtree.clientlayer=true`,
//!   `oxtree.base-commit`, the request, and the new `oxtree.packages`.
//! - It is built over an overlayfs on a hardlinked checkout of the base
//!   (see [`crate::overlay`]): apt and maintainer scripts never write to a
//!   repository object, and only the change is hashed and written.
//! - apt runs in the bubblewrap sandbox. Its package lists and download
//!   cache are the stateroot's (`/var/lib/apt/lists`, `/var/cache/apt`),
//!   bound in from outside the tree so they persist between builds and
//!   never reach a commit; its sources are the merge deployment's
//!   `/etc/apt` (what the admin configured), bound read-only.
//! - Base commits of layered deployments are kept from pruning by refs
//!   `oxtree/base/N`, as rpm-ostree's `rpmostree/base/N`.

use crate::error::{ComposeError, IoContext, IoError, Result};
use crate::overlay::OverlayRoot;
use crate::packages::{self, Package, PackageDiff};
use crate::sandbox::{self, SandboxOptions};
use oxtree_object::gvariant::Value;
use oxtree_object::{Checksum, Metadata};
use oxtree_repo::{CommitOptions, Repo};
use oxtree_sysroot::{KeyFile, Sysroot};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

pub const CLIENTLAYER_KEY: &str = "oxtree.clientlayer";
pub const BASE_COMMIT_KEY: &str = "oxtree.base-commit";
pub const REQUESTED_KEY: &str = "oxtree.requested-packages";
pub const REMOVED_KEY: &str = "oxtree.removed-base-packages";
/// Refs that keep base commits of layered deployments.
pub const BASE_REF_PREFIX: &str = "oxtree/base/";
/// Ref that keeps the staged deployment's commit.
pub const STAGED_REF: &str = "oxtree/staged-deployment";
/// Work directories below the repository's `tmp/`.
const WORK_PREFIX: &str = "oxtree-layer-";

/// What a deployment follows and what is layered on it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LayerSpec {
    /// The refspec of the base (`REMOTE:REF` or `REF`).
    pub base_refspec: String,
    /// Packages installed on top of the base.
    pub packages: BTreeSet<String>,
    /// Base packages removed.
    pub removals: BTreeSet<String>,
}

fn strv(v: Option<&str>) -> BTreeSet<String> {
    v.unwrap_or("")
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn to_strv(s: &BTreeSet<String>) -> String {
    s.iter().map(|p| format!("{p};")).collect()
}

impl LayerSpec {
    /// Read an origin: `baserefspec` (layered) or `refspec` (plain).
    /// `None` when it names neither.
    pub fn from_origin(o: &KeyFile) -> Option<LayerSpec> {
        let base = o
            .get("origin", "baserefspec")
            .or_else(|| o.get("origin", "refspec"))?;
        let (packages, removals) = Self::requests_in(o);
        Some(LayerSpec {
            base_refspec: base.to_string(),
            packages,
            removals,
        })
    }

    /// The layering request an origin records, whatever its base names:
    /// `[packages] requested` and `[overrides] remove`.
    pub fn requests_in(o: &KeyFile) -> (BTreeSet<String>, BTreeSet<String>) {
        (
            strv(o.get("packages", "requested")),
            strv(o.get("overrides", "remove")),
        )
    }

    /// Anything to layer?
    pub fn is_layered(&self) -> bool {
        !self.packages.is_empty() || !self.removals.is_empty()
    }

    /// The origin for a deployment of this spec, keeping what else `old`
    /// holds (minus transient state: pin, unlock).
    pub fn to_origin(&self, old: Option<&KeyFile>) -> KeyFile {
        let mut o = oxtree_sysroot::upgrade::new_origin(old, None);
        o.remove("origin", "override-commit");
        o.remove_group("packages");
        o.remove_group("overrides");
        if self.is_layered() {
            o.remove("origin", "refspec");
            o.set("origin", "baserefspec", &self.base_refspec);
            if !self.packages.is_empty() {
                o.set("packages", "requested", &to_strv(&self.packages));
            }
            if !self.removals.is_empty() {
                o.set("overrides", "remove", &to_strv(&self.removals));
            }
        } else {
            o.remove("origin", "baserefspec");
            o.set("origin", "refspec", &self.base_refspec);
        }
        o
    }
}

/// Was `commit` built by layering?
pub fn is_layered_commit(md: &Metadata) -> bool {
    matches!(md.get(CLIENTLAYER_KEY), Some(Value::Bool(true)))
}

/// The base commit of a deployed commit: itself unless it is layered.
pub fn base_commit(repo: &Repo, commit: &Checksum) -> Result<Checksum> {
    let c = repo.load_commit(commit)?;
    if !is_layered_commit(&c.metadata) {
        return Ok(*commit);
    }
    let hex = c
        .metadata
        .get_str(BASE_COMMIT_KEY)
        .ok_or_else(|| ComposeError::Metadata {
            commit: commit.to_string(),
            message: format!("layered commit without {BASE_COMMIT_KEY}"),
        })?;
    Checksum::from_hex(hex).map_err(|e| ComposeError::Metadata {
        commit: commit.to_string(),
        message: format!("{BASE_COMMIT_KEY}: {e}"),
    })
}

/// Where apt's state and configuration come from.
#[derive(Clone, Debug, Default)]
pub struct AptDirs {
    /// Bound on `/var/lib/apt/lists` (created if missing).
    pub lists: Option<PathBuf>,
    /// Bound on `/var/cache/apt` (created if missing).
    pub cache: Option<PathBuf>,
    /// An `/etc/apt` whose sources, trusted keys, preferences and auth
    /// files apt uses instead of the tree's own (read-only).
    pub etc: Option<PathBuf>,
}

/// A step of a build, for progress lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Checkout,
    AptUpdate,
    Resolve,
    Install,
    Commit,
}

pub struct BuildOptions<'a> {
    pub apt: AptDirs,
    /// Seconds since the epoch for the commit (default: now).
    pub timestamp: Option<u64>,
    pub progress: &'a dyn Fn(Step, &str),
}

impl std::fmt::Debug for BuildOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuildOptions")
            .field("apt", &self.apt)
            .field("timestamp", &self.timestamp)
            .finish_non_exhaustive()
    }
}

/// A built layered commit.
#[derive(Clone, Debug)]
pub struct Built {
    pub commit: Checksum,
    pub base: Checksum,
    pub packages: Vec<Package>,
    /// From the base's packages to the layered commit's.
    pub diff: PackageDiff,
}

/// apt's own reasons (its `E:` lines, and dpkg's errors when a package
/// failed to unpack or configure), or the tail it printed.
fn apt_reason(e: &ComposeError) -> String {
    match e {
        ComposeError::Command { stderr_tail, .. } => {
            let mut errs: Vec<&str> = Vec::new();
            let mut in_dpkg = false;
            for l in stderr_tail.lines() {
                if l.starts_with("E: ") || l.starts_with("dpkg: error") {
                    in_dpkg = l.starts_with("dpkg: error");
                    errs.push(l);
                } else if in_dpkg && l.starts_with(' ') {
                    errs.push(l);
                } else {
                    in_dpkg = false;
                }
            }
            if errs.is_empty() {
                stderr_tail.trim().to_string()
            } else {
                errs.join("\n")
            }
        }
        other => other.to_string(),
    }
}

fn valid_name(p: &str) -> bool {
    // Debian package names, optionally with :arch (an architecture name).
    let (name, arch) = match p.split_once(':') {
        Some((n, a)) => (n, Some(a)),
        None => (p, None),
    };
    let arch_ok = arch.is_none_or(|a| {
        !a.is_empty()
            && a.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    });
    arch_ok
        && name.len() >= 2
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b))
        && name.as_bytes()[0].is_ascii_alphanumeric()
}

/// Check package names before anything runs (they end up on apt's
/// command line and in the origin file).
pub fn check_names<'a>(names: impl IntoIterator<Item = &'a String>) -> Result<()> {
    for n in names {
        if !valid_name(n) {
            return Err(ComposeError::Layer(format!(
                "'{n}' is not a valid Debian package name"
            )));
        }
    }
    Ok(())
}

/// Remove work directories a crashed run left behind (the caller holds
/// the sysroot lock, so no other build is using them).
fn remove_stale_work(tmp: &Path) {
    let Ok(rd) = std::fs::read_dir(tmp) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with(WORK_PREFIX) {
            continue;
        }
        let merged = e.path().join("merged");
        let _ = std::process::Command::new("umount")
            .arg(&merged)
            .stderr(std::process::Stdio::null())
            .status();
        // Still mounted: leave it rather than delete through the mount.
        let still = std::fs::read_to_string("/proc/self/mountinfo")
            .map(|m| m.contains(&format!(" {} ", merged.display())))
            .unwrap_or(true);
        if !still {
            if let Ok(d) = oxtree_repo::fsutil::open_dir(tmp) {
                let _ = oxtree_repo::transaction::remove_tree_at(&d, &name);
            }
        }
    }
}

fn apt_options(etc: bool) -> Vec<String> {
    let mut v = vec![
        "-q".to_string(),
        "-o".into(),
        "Dpkg::Use-Pty=0".into(),
        "-o".into(),
        "Acquire::Languages=none".into(),
    ];
    if etc {
        for (k, p) in [
            ("Dir::Etc::SourceList", "sources.list"),
            ("Dir::Etc::SourceParts", "sources.list.d"),
            ("Dir::Etc::TrustedParts", "trusted.gpg.d"),
            ("Dir::Etc::Trusted", "trusted.gpg"),
            ("Dir::Etc::PreferencesParts", "preferences.d"),
            ("Dir::Etc::Preferences", "preferences"),
            ("Dir::Etc::NetrcParts", "auth.conf.d"),
        ] {
            v.push("-o".into());
            v.push(format!("{k}={APT_ETC}/{p}"));
        }
    }
    v
}

/// Where the admin's /etc/apt appears inside the sandbox.
const APT_ETC: &str = "/run/oxtree-apt";

/// Build the layered commit of `spec` on `base`. Nothing but the
/// repository's objects changes; on error the work directory is removed
/// and no commit is written.
pub fn build(
    repo: &Repo,
    base: &Checksum,
    spec: &LayerSpec,
    opts: &BuildOptions<'_>,
) -> Result<Built> {
    let (_, built) = layer_impl(repo, base, spec, opts, false)?;
    Ok(built.expect("not a dry run"))
}

/// What apt would do for `spec` on `base` (a dry run: checkout, package
/// lists update and apt's simulation; nothing is committed).
pub fn resolve(
    repo: &Repo,
    base: &Checksum,
    spec: &LayerSpec,
    opts: &BuildOptions<'_>,
) -> Result<Resolution> {
    Ok(layer_impl(repo, base, spec, opts, true)?.0)
}

/// Packages apt's simulation installs and removes: (name, version).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resolution {
    pub install: Vec<(String, String)>,
    pub remove: Vec<(String, String)>,
}

/// Parse `Inst NAME [OLD] (VERSION …)` and `Remv NAME [VERSION]` lines.
fn parse_simulation(stdout: &str) -> Resolution {
    let mut r = Resolution::default();
    for l in stdout.lines() {
        let (inst, rest) = match (l.strip_prefix("Inst "), l.strip_prefix("Remv ")) {
            (Some(x), _) => (true, x),
            (_, Some(x)) => (false, x),
            _ => continue,
        };
        let Some(name) = rest.split_whitespace().next() else {
            continue;
        };
        let name = name.split(':').next().unwrap_or(name).to_string();
        let ver = if inst {
            rest.split_once('(')
                .and_then(|(_, v)| v.split_whitespace().next())
        } else {
            rest.split_once('[').and_then(|(_, v)| v.split(']').next())
        }
        .unwrap_or("")
        .to_string();
        if inst {
            r.install.push((name, ver));
        } else {
            r.remove.push((name, ver));
        }
    }
    r
}

fn layer_impl(
    repo: &Repo,
    base: &Checksum,
    spec: &LayerSpec,
    opts: &BuildOptions<'_>,
    dry: bool,
) -> Result<(Resolution, Option<Built>)> {
    check_names(spec.packages.iter().chain(&spec.removals))?;
    let progress = opts.progress;
    let tmp = repo.path().join("tmp");
    remove_stale_work(&tmp);
    let work = tmp.join(oxtree_repo::fsutil::temp_name(WORK_PREFIX));
    progress(Step::Checkout, &format!("Checking out base commit {base}"));
    let mut ov = OverlayRoot::create(repo, base, &work)?;
    let root = ov.merged();
    crate::layout::to_installable(&root)?;
    kernels_to_boot(&root)?;

    let base_pkgs = packages::installed(&root)?;
    let in_base = |n: &str| {
        let n = n.split(':').next().unwrap_or(n);
        base_pkgs.iter().any(|p| p.name == n)
    };
    for p in &spec.packages {
        if in_base(p) {
            return Err(ComposeError::Layer(format!(
                "package {p} is already in the base commit"
            )));
        }
    }
    for p in &spec.removals {
        if !in_base(p) {
            return Err(ComposeError::Layer(format!(
                "package {p} is not in the base commit; cannot remove it"
            )));
        }
    }

    let mut sb = SandboxOptions::default();
    for (host, inside) in [
        (&opts.apt.lists, "/var/lib/apt/lists"),
        (&opts.apt.cache, "/var/cache/apt"),
    ] {
        if let Some(h) = host {
            std::fs::create_dir_all(h.join("partial"))
                .and_then(|_| {
                    if inside == "/var/cache/apt" {
                        std::fs::create_dir_all(h.join("archives/partial"))
                    } else {
                        Ok(())
                    }
                })
                .ctx(|| format!("creating {}", h.display()))?;
            sb.binds.push((h.clone(), inside.to_string()));
        }
    }
    let use_etc = match &opts.apt.etc {
        Some(e) if e.is_dir() => {
            sb.ro_binds.push((e.clone(), APT_ETC.to_string()));
            true
        }
        _ => false,
    };
    let aopts = apt_options(use_etc);
    let apt = |args: &[&str]| -> Result<std::process::Output> {
        let mut argv: Vec<&str> = vec!["apt-get"];
        argv.extend(aopts.iter().map(String::as_str));
        argv.extend_from_slice(args);
        sandbox::run_in_root(&root, &argv, &sb)
    };

    progress(Step::AptUpdate, "Updating package lists");
    apt(&["update"])
        .map_err(|e| ComposeError::Layer(format!("apt-get update failed: {}", apt_reason(&e))))?;

    // One apt run installs and removes: NAME installs, NAME- removes.
    let mut args: Vec<String> = vec!["install".into(), "-y".into()];
    args.extend(spec.packages.iter().cloned());
    args.extend(spec.removals.iter().map(|r| format!("{r}-")));
    let what = describe(spec);
    progress(Step::Resolve, &format!("Resolving {what}"));
    let mut sim: Vec<&str> = vec!["-s"];
    sim.extend(args.iter().map(String::as_str));
    let out =
        apt(&sim).map_err(|e| ComposeError::Layer(format!("cannot {what}: {}", apt_reason(&e))))?;
    let resolution = parse_simulation(&String::from_utf8_lossy(&out.stdout));
    let removed: BTreeSet<String> = resolution.remove.iter().map(|(n, _)| n.clone()).collect();
    let extra: Vec<&String> = removed.difference(&spec.removals).collect();
    if !extra.is_empty() {
        return Err(ComposeError::Layer(format!(
            "cannot {what}: apt would also remove {} (they depend on a removed package or conflict with a new one)",
            extra.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        )));
    }
    if dry {
        return Ok((resolution, None));
    }
    progress(
        Step::Install,
        &format!("Downloading and installing ({what})"),
    );
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    apt(&argv).map_err(|e| ComposeError::Layer(format!("cannot {what}: {}", apt_reason(&e))))?;

    adopt_initramfs(&root)?;
    crate::layout::to_deployable(&root)?;
    let new_pkgs = packages::installed(&root)?;
    let diff = packages::diff(&base_pkgs, &new_pkgs);

    progress(Step::Commit, "Writing the layered commit");
    let bc = repo.load_commit(base)?;
    let mut md = bc.metadata.clone();
    // The derived commit is not on the base's branch.
    md.remove("ostree.ref-binding");
    md.set(CLIENTLAYER_KEY, Value::Bool(true));
    md.set_str(BASE_COMMIT_KEY, &base.to_hex());
    md.set_strv(
        REQUESTED_KEY,
        &spec.packages.iter().cloned().collect::<Vec<_>>(),
    );
    md.set_strv(
        REMOVED_KEY,
        &spec.removals.iter().cloned().collect::<Vec<_>>(),
    );
    packages::set_metadata(&mut md, &new_pkgs);
    let tx = repo.begin()?;
    let tree = ov.commit_changes(&tx, base)?;
    let timestamp = opts.timestamp.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    });
    let copts = CommitOptions {
        subject: format!("Layered on {}: {what}", short(base)),
        body: String::new(),
        timestamp,
        parent: Some(*base),
        metadata: md,
    };
    let commit = tx.write_commit_object(tree, &copts)?;
    tx.commit()?;
    drop(ov);
    Ok((
        resolution,
        Some(Built {
            commit,
            base: *base,
            packages: new_pkgs,
            diff,
        }),
    ))
}

/// Put each kernel back where Debian's tools expect it
/// (`boot/vmlinuz-KVER`, `boot/initrd.img-KVER`, …), so a package whose
/// trigger runs update-initramfs (an initramfs hook, firmware) gets the
/// initramfs rebuilt; `to_deployable` moves them back afterwards.
fn kernels_to_boot(root: &Path) -> Result<()> {
    let modules = root.join("usr/lib/modules");
    let Ok(rd) = std::fs::read_dir(&modules) else {
        return Ok(());
    };
    let io = |what: String| {
        move |source| {
            ComposeError::from(IoError {
                context: what,
                source,
            })
        }
    };
    std::fs::create_dir_all(root.join("boot")).map_err(io("creating boot".into()))?;
    for e in rd.flatten() {
        let kver = e.file_name().to_string_lossy().into_owned();
        if !e.path().join("vmlinuz").is_file() {
            continue;
        }
        for (from, to) in [
            ("vmlinuz", "vmlinuz"),
            ("initramfs.img", "initrd.img"),
            ("config", "config"),
            ("System.map", "System.map"),
        ] {
            let src = e.path().join(from);
            if src.is_file() {
                let dest = root.join("boot").join(format!("{to}-{kver}"));
                std::fs::rename(&src, &dest).map_err(io(format!(
                    "moving {} to {}",
                    src.display(),
                    dest.display()
                )))?;
            }
        }
    }
    Ok(())
}

/// A package trigger may have rebuilt the initramfs of an installed
/// kernel: update-initramfs writes `boot/initrd.img-KVER`, while the
/// deployable layout keeps it as `usr/lib/modules/KVER/initramfs.img`
/// (whose kernel is already there, so the layout would not move it).
fn adopt_initramfs(root: &Path) -> Result<()> {
    let boot = root.join("boot");
    let Ok(rd) = std::fs::read_dir(&boot) else {
        return Ok(());
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(kver) = name.strip_prefix("initrd.img-") else {
            continue;
        };
        let mods = root.join("usr/lib/modules").join(kver);
        let has_kernel = boot.join(format!("vmlinuz-{kver}")).exists();
        if kver.contains('/') || has_kernel || !mods.join("vmlinuz").is_file() {
            continue;
        }
        let dest = mods.join("initramfs.img");
        std::fs::rename(e.path(), &dest)
            .ctx(|| format!("moving boot/{name} to {}", dest.display()))?;
    }
    Ok(())
}

fn short(c: &Checksum) -> String {
    c.to_hex()[..10].to_string()
}

/// "install nano, remove less" for messages.
pub fn describe(spec: &LayerSpec) -> String {
    let mut parts = Vec::new();
    if !spec.packages.is_empty() {
        parts.push(format!(
            "install {}",
            spec.packages.iter().cloned().collect::<Vec<_>>().join(" ")
        ));
    }
    if !spec.removals.is_empty() {
        parts.push(format!(
            "remove {}",
            spec.removals.iter().cloned().collect::<Vec<_>>().join(" ")
        ));
    }
    parts.join(", ")
}

/// Point `oxtree/base/N` at the base commit of every layered deployment
/// (and `oxtree/staged-deployment` at the staged one's commit), dropping
/// refs no deployment needs any more, so a cleanup's prune keeps them.
pub fn sync_refs(sysroot: &Sysroot) -> Result<()> {
    let repo = sysroot.repo();
    let mut bases = BTreeSet::new();
    for d in sysroot.deployments().iter().chain(sysroot.staged()) {
        let Ok(c) = Checksum::from_hex(&d.csum) else {
            continue;
        };
        if let Ok(b) = base_commit(repo, &c) {
            if b != c {
                bases.insert(b);
            }
        }
    }
    let sync = repo.fsync_enabled()?;
    let mut keep = BTreeSet::new();
    for (i, b) in bases.iter().enumerate() {
        let name = format!("{BASE_REF_PREFIX}{i}");
        if repo.read_ref(&name)? != Some(*b) {
            repo.write_ref(&name, Some(b), sync)?;
        }
        keep.insert(name);
    }
    if let Some(c) = sysroot
        .staged()
        .and_then(|d| Checksum::from_hex(&d.csum).ok())
    {
        if repo.read_ref(STAGED_REF)? != Some(c) {
            repo.write_ref(STAGED_REF, Some(&c), sync)?;
        }
        keep.insert(STAGED_REF.to_string());
    }
    for (name, _) in repo.list_refs()? {
        let ours = name.starts_with(BASE_REF_PREFIX) || name == STAGED_REF;
        if ours && !keep.contains(&name) {
            repo.write_ref(&name, None, sync)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_roundtrip_like_rpm_ostree() {
        let plain = KeyFile::parse("[origin]\nrefspec=origin:debian/main\n").unwrap();
        let mut s = LayerSpec::from_origin(&plain).unwrap();
        assert!(!s.is_layered());
        s.packages.insert("nano".into());
        let o = s.to_origin(Some(&plain));
        assert_eq!(
            o.to_text(),
            "[origin]\nbaserefspec=origin:debian/main\n\n[packages]\nrequested=nano;\n"
        );
        let mut s2 = LayerSpec::from_origin(&o).unwrap();
        assert_eq!(s2, s);
        s2.removals.insert("less".into());
        s2.packages.insert("vim".into());
        let o2 = s2.to_origin(Some(&o));
        assert_eq!(o2.get("packages", "requested"), Some("nano;vim;"));
        assert_eq!(o2.get("overrides", "remove"), Some("less;"));
        // Back to nothing layered: the plain origin again, byte for byte.
        let back = LayerSpec {
            base_refspec: "origin:debian/main".into(),
            ..Default::default()
        };
        assert_eq!(back.to_origin(Some(&o2)).to_text(), plain.to_text());
    }

    #[test]
    fn apt_reasons_keep_dpkg_errors() {
        let e = ComposeError::Command {
            command: "apt-get install -y foo".into(),
            status: "exit status: 100".into(),
            stderr_tail: "debconf: noise\ndpkg: error processing package foo (--configure):\n installed foo package post-installation script subprocess returned error exit status 1\nE: Sub-process /usr/bin/dpkg returned an error code (1)".into(),
        };
        assert_eq!(
            apt_reason(&e),
            "dpkg: error processing package foo (--configure):\n installed foo package post-installation script subprocess returned error exit status 1\nE: Sub-process /usr/bin/dpkg returned an error code (1)"
        );
    }

    #[test]
    fn names_and_simulation() {
        assert!(check_names(&["nano".to_string(), "libc6:amd64".to_string()]).is_ok());
        assert!(check_names(&["-o".to_string()]).is_err());
        assert!(check_names(&["a b".to_string()]).is_err());
        assert!(check_names(&["nano:../../x".to_string()]).is_err());
        assert!(check_names(&["nano:".to_string()]).is_err());
        let out = "Inst nano (7.2-1 Debian:12/stable [amd64])\nConf nano (7.2-1 Debian:12/stable [amd64])\nRemv less [590-2]\nRemv foo:amd64 [1]\nInst libx [1.0] (1.1 Debian:12 [amd64])\n";
        let r = parse_simulation(out);
        let own = |v: &[(&str, &str)]| {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(r.install, own(&[("nano", "7.2-1"), ("libx", "1.1")]));
        assert_eq!(r.remove, own(&[("less", "590-2"), ("foo", "1")]));
    }
}

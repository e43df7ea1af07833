//! The host's status as one serializable type, shaped like bootc's `Host`
//! (`apiVersion`, `kind`, `spec`, `status.{booted,staged,rollback}`), for
//! `admin status --json`, an agent's API and the CLI's text alike.
//!
//! Besides bootc's shape, `deployments` is the flat list of every
//! deployment in ostree's order (staged first), with the keys
//! `admin status --json` has always had, for scripts.
//!
//! All types are `#[non_exhaustive]`: new fields (boot health, automatic
//! rollback, update policy) can be added without breaking readers; keep
//! them optional (`Option`, skipped when empty).

use crate::error::Result;
use crate::upgrade::fmt_ts;
use crate::Context;
use oxtree_compose::layer::{self, LayerSpec};
use oxtree_object::Checksum;
use oxtree_sysroot::{Deployment, Sysroot};
use serde::{Deserialize, Serialize};

pub const API_VERSION: &str = "org.oxtree/v1";

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Host {
    /// `org.oxtree/v1`.
    pub api_version: String,
    /// `Host`.
    pub kind: String,
    pub spec: HostSpec,
    pub status: HostStatus,
    /// Every deployment, staged first, then the boot order.
    pub deployments: Vec<DeploymentRow>,
}

/// What the host is set to follow: the origin of its newest deployment
/// (the staged one, else the default one) of the booted (or only)
/// stateroot.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct HostSpec {
    pub stateroot: Option<String>,
    /// `REMOTE:REF` or `REF` (the base refspec of a layered deployment).
    pub refspec: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_commit: Option<String>,
    pub layered_packages: Vec<String>,
    pub removed_base_packages: Vec<String>,
    /// The container image followed instead of a refspec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageReference>,
}

/// A container image as bootc names it: `{"image": "HOST/NAME:TAG",
/// "transport": "registry"}` (or `oci`, `oci-archive` and a path), with
/// `"signature": "containerPolicy"` for an `ostree-image-signed:` one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ImageReference {
    pub image: String,
    pub transport: String,
    /// How its signatures are checked (bootc's `ImageSignature`): only
    /// `containerPolicy` here; absent when unverified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

/// The image a deployment was made from (bootc's `ImageStatus`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ImageStatus {
    pub image: ImageReference,
    /// The commit's `version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The commit's timestamp, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// The manifest digest deployed (`sha256:…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
}

impl ImageReference {
    fn of(imgref: &str) -> ImageReference {
        let (transport, image) = crate::image::transport_and_name(imgref);
        let signed = oxtree_container::pull::parse_ostree_imgref(imgref)
            .is_ok_and(|r| r.sigverify == oxtree_container::pull::SigVerify::Policy);
        ImageReference {
            image,
            transport,
            signature: signed.then(|| "containerPolicy".to_string()),
        }
    }
}

/// bootc's `status`. On a sysroot that is not booted (an image being
/// prepared, tests) `booted` and `rollback` are null and every deployment
/// but the staged one is in `otherDeployments`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct HostStatus {
    /// The deployment finalized at shutdown.
    pub staged: Option<BootEntry>,
    /// The running deployment.
    pub booted: Option<BootEntry>,
    /// The deployment booted before (ostree's "(rollback)").
    pub rollback: Option<BootEntry>,
    /// Every other deployment (pending ones, other stateroots, older ones).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_deployments: Vec<BootEntry>,
    /// Boots the new default deployment has left before the boot loader
    /// falls back (while it has not proven itself yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_tries_left: Option<u32>,
    /// The last rollback the host made by itself, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automatic_rollback: Option<oxtree_sysroot::boot_health::AutoRollback>,
}

/// One deployment, for `status`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct BootEntry {
    /// Position in the boot order (None: staged).
    pub index: Option<usize>,
    /// The refspec it follows (the base refspec when layered).
    pub refspec: Option<String>,
    /// The commit's `version` metadata.
    pub version: Option<String>,
    /// The commit's timestamp, RFC 3339.
    pub timestamp: Option<String>,
    /// The deployed commit.
    pub checksum: String,
    /// The base commit (the deployed commit unless packages are layered).
    pub base_checksum: String,
    pub stateroot: String,
    pub deploy_serial: u32,
    pub pinned: bool,
    /// `development`, `hotfix`, … when /usr is unlocked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unlocked: Option<String>,
    pub layered_packages: Vec<String>,
    pub removed_base_packages: Vec<String>,
    /// Kernel arguments of its boot entry.
    pub kargs: String,
    /// Checksum of its kernel and initramfs.
    pub boot_checksum: String,
    /// The container image it was deployed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageStatus>,
}

/// One entry of the flat `deployments` list (the keys of oxtree's
/// original `admin status --json`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub struct DeploymentRow {
    pub index: Option<usize>,
    pub osname: String,
    pub checksum: String,
    pub serial: u32,
    pub booted: bool,
    pub staged: bool,
    pub pinned: bool,
    pub unlocked: Option<String>,
    /// Newer than the booted one (staged, or before it in the order).
    pub pending: bool,
    pub version: Option<String>,
    /// The commit's `ostree.source-title` metadata (what it was built
    /// from), shown under the origin as ostree does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_title: Option<String>,
    /// The commit's GPG signatures, checked with its origin remote's keys
    /// when that remote verifies GPG signatures (shown as ostree does).
    #[serde(skip)]
    pub gpg_signatures: Vec<oxtree_transport::gpg::SignatureReport>,
    pub origin_refspec: Option<String>,
    pub layered: bool,
    pub base_checksum: String,
    pub requested_packages: Vec<String>,
    pub requested_base_removals: Vec<String>,
    /// The origin file's text.
    pub origin: Option<String>,
    pub bootcsum: String,
    pub kargs: String,
    /// The commit's timestamp (seconds since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<u64>,
    /// The origin's image reference (`ostree-unverified-registry:…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_image_reference: Option<String>,
    /// The manifest digest of that image deployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
}

/// The status of the sysroot. Read without taking the lock (as ostree's
/// `admin status`), so it answers while a transaction runs.
pub fn status(cx: &Context) -> Result<Host> {
    let s = cx.open_unlocked()?;
    Ok(host_of(&s))
}

/// What is layered on `d`: (base commit, spec); None for a plain one.
fn layered_of(s: &Sysroot, d: &Deployment) -> Option<(Checksum, LayerSpec)> {
    let spec = d.origin.as_ref().and_then(LayerSpec::from_origin)?;
    let csum = Checksum::from_hex(&d.csum).ok()?;
    let base = layer::base_commit(s.repo(), &csum).ok()?;
    (base != csum || spec.is_layered()).then_some((base, spec))
}

/// The signatures `admin status` lists under a deployment: only when its
/// origin's remote has gpg-verify on; nothing when anything is missing.
fn gpg_signatures(s: &Sysroot, d: &Deployment) -> Vec<oxtree_transport::gpg::SignatureReport> {
    use oxtree_transport::{sign, verify, Remote};
    let go = || -> Option<Vec<oxtree_transport::gpg::SignatureReport>> {
        let (remote, _) = d.refspec()?.split_once(':')?;
        let remote = Remote::open(s.repo(), remote).ok()?;
        if !remote.gpg_verify {
            return None;
        }
        let csum = Checksum::from_hex(&d.csum).ok()?;
        let md = s.repo().load_commitmeta(&csum).ok()??;
        let sigs = sign::signatures_in(&md, sign::GPG_KEY).ok()?;
        if sigs.is_empty() {
            return None;
        }
        let ring = verify::remote_gpg_keyring(s.repo(), &remote).ok()?;
        let bytes = s
            .repo()
            .load_meta_bytes(oxtree_object::ObjectType::Commit, &csum)
            .ok()?;
        Some(ring.describe(&bytes, &sigs))
    };
    go().unwrap_or_default()
}

fn row(s: &Sysroot, i: Option<usize>, d: &Deployment) -> DeploymentRow {
    let booted = s.booted_index();
    let commit = Checksum::from_hex(&d.csum)
        .ok()
        .and_then(|c| s.repo().load_commit(&c).ok());
    let l = layered_of(s, d);
    let image = d
        .origin
        .as_ref()
        .and_then(crate::Origin::from_keyfile)
        .filter(|o| o.is_image());
    let pending = match (i, booted) {
        (None, _) => true,
        (Some(i), Some(b)) => i < b && d.osname == s.deployments()[b].osname,
        _ => false,
    };
    DeploymentRow {
        index: i,
        osname: d.osname.clone(),
        checksum: d.csum.clone(),
        serial: d.deployserial,
        booted: i.is_some() && i == booted,
        staged: i.is_none(),
        pinned: d.is_pinned(),
        unlocked: s.unlocked_state(d),
        pending,
        version: commit
            .as_ref()
            .and_then(|c| c.metadata.get_str("version").map(str::to_string)),
        source_title: commit.as_ref().and_then(|c| {
            c.metadata
                .get_str("ostree.source-title")
                .map(str::to_string)
        }),
        gpg_signatures: gpg_signatures(s, d),
        origin_refspec: match &l {
            Some((_, spec)) => Some(spec.base_refspec.clone()),
            None => d.refspec().map(str::to_string),
        },
        layered: l.is_some(),
        base_checksum: l
            .as_ref()
            .map(|(b, _)| b.to_hex())
            .unwrap_or_else(|| d.csum.clone()),
        requested_packages: l
            .as_ref()
            .map(|(_, sp)| sp.packages.iter().cloned().collect())
            .unwrap_or_default(),
        requested_base_removals: l
            .as_ref()
            .map(|(_, sp)| sp.removals.iter().cloned().collect())
            .unwrap_or_default(),
        origin: d.origin.as_ref().map(|o| o.to_text()),
        bootcsum: d.bootcsum.clone(),
        kargs: d.kargs.clone(),
        timestamp: commit.as_ref().map(|c| c.timestamp),
        container_image_reference: image.as_ref().and_then(|o| o.container_image.clone()),
        image_digest: image.and_then(|o| crate::image::deployed_digest(s, d, &o)),
    }
}

impl From<&DeploymentRow> for BootEntry {
    fn from(r: &DeploymentRow) -> Self {
        BootEntry {
            index: r.index,
            refspec: r.origin_refspec.clone(),
            version: r.version.clone(),
            timestamp: r.timestamp.map(fmt_ts),
            checksum: r.checksum.clone(),
            base_checksum: r.base_checksum.clone(),
            stateroot: r.osname.clone(),
            deploy_serial: r.serial,
            pinned: r.pinned,
            unlocked: r.unlocked.clone(),
            layered_packages: r.requested_packages.clone(),
            removed_base_packages: r.requested_base_removals.clone(),
            kargs: r.kargs.clone(),
            boot_checksum: r.bootcsum.clone(),
            image: r.container_image_reference.as_deref().map(|i| ImageStatus {
                image: ImageReference::of(i),
                version: r.version.clone(),
                timestamp: r.timestamp.map(fmt_ts),
                image_digest: r.image_digest.clone(),
            }),
        }
    }
}

/// ostree's tag of a row: staged, pending or rollback (relative to the
/// booted deployment of the same stateroot).
fn tag(rows: &[DeploymentRow], r: &DeploymentRow) -> &'static str {
    let booted = rows.iter().find(|b| b.booted);
    match (
        r.index,
        booted.and_then(|b| b.index.map(|i| (i, &b.osname))),
    ) {
        (None, _) => " (staged)",
        (Some(i), Some((b, os))) if i < b && r.osname == *os => " (pending)",
        (Some(i), Some((b, os))) if i > b && r.osname == *os => " (rollback)",
        _ => "",
    }
}

pub(crate) fn host_of(s: &Sysroot) -> Host {
    // The staged deployment comes first, as in ostree.
    let deployments: Vec<DeploymentRow> = s
        .staged()
        .map(|d| row(s, None, d))
        .into_iter()
        .chain(
            s.deployments()
                .iter()
                .enumerate()
                .map(|(i, d)| row(s, Some(i), d)),
        )
        .collect();
    let mut status = HostStatus::default();
    for r in &deployments {
        let e = BootEntry::from(r);
        match tag(&deployments, r) {
            _ if r.booted => status.booted = Some(e),
            " (staged)" => status.staged = Some(e),
            " (rollback)" if status.rollback.is_none() => status.rollback = Some(e),
            _ => status.other_deployments.push(e),
        }
    }
    let osname = s.resolve_osname(None).ok();
    let followed = osname.as_deref().and_then(|os| {
        s.staged()
            .filter(|d| d.osname == os)
            .or_else(|| s.deployments().iter().find(|d| d.osname == os))
    });
    let origin = followed
        .and_then(|d| d.origin.as_ref())
        .and_then(crate::Origin::from_keyfile);
    let spec = HostSpec {
        stateroot: osname,
        refspec: origin
            .as_ref()
            .filter(|o| !o.is_image())
            .map(|o| o.refspec.clone()),
        image: origin
            .as_ref()
            .and_then(|o| o.container_image.as_deref())
            .map(ImageReference::of),
        override_commit: origin.as_ref().and_then(|o| o.override_commit.clone()),
        layered_packages: origin
            .as_ref()
            .map(|o| o.packages.iter().cloned().collect())
            .unwrap_or_default(),
        removed_base_packages: origin
            .as_ref()
            .map(|o| o.removals.iter().cloned().collect())
            .unwrap_or_default(),
    };
    // Unreadable records must not hide the deployments: status shows
    // what it can.
    status.boot_tries_left = s.boot_tries_left().ok().flatten();
    status.automatic_rollback = s.last_auto_rollback().ok().flatten();
    Host {
        api_version: API_VERSION.into(),
        kind: "Host".into(),
        spec,
        status,
        deployments,
    }
}

impl Host {
    /// `admin status` as text: exactly ostree's lines for plain
    /// deployments, plus `BaseCommit`, `LayeredPackages` and
    /// `RemovedBasePackages` for layered ones.
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let rows = &self.deployments;
        if rows.is_empty() {
            return "No deployments.\n".into();
        }
        let mut out = String::new();
        for r in rows {
            let mark = if r.booted { '*' } else { ' ' };
            let _ = writeln!(
                out,
                "{mark} {} {}.{}{}",
                r.osname,
                r.checksum,
                r.serial,
                tag(rows, r)
            );
            if let Some(v) = &r.version {
                let _ = writeln!(out, "    Version: {v}");
            }
            if let Some(u) = &r.unlocked {
                let _ = writeln!(out, "    Unlocked: {u}");
            }
            if r.pinned {
                out.push_str("    Pinned: yes\n");
            }
            if r.layered {
                let refspec = r.origin_refspec.as_deref().unwrap_or_default();
                let _ = writeln!(out, "    origin refspec: {refspec}");
                let _ = writeln!(out, "    BaseCommit: {}", r.base_checksum);
                if !r.requested_packages.is_empty() {
                    let _ = writeln!(
                        out,
                        "    LayeredPackages: {}",
                        r.requested_packages.join(" ")
                    );
                }
                if !r.requested_base_removals.is_empty() {
                    let _ = writeln!(
                        out,
                        "    RemovedBasePackages: {}",
                        r.requested_base_removals.join(" ")
                    );
                }
                continue;
            }
            if let Some(i) = &r.container_image_reference {
                let _ = writeln!(out, "    origin image: {i}");
                if let Some(d) = &r.image_digest {
                    let _ = writeln!(out, "    Digest: {d}");
                }
                continue;
            }
            match (&r.origin, &r.origin_refspec) {
                (None, _) => out.push_str("    origin: none\n"),
                (Some(_), Some(refspec)) => {
                    let _ = writeln!(out, "    origin refspec: {refspec}");
                    if let Some(t) = &r.source_title {
                        let _ = writeln!(out, "    `- {t}");
                    }
                    for g in &r.gpg_signatures {
                        out.push_str(&g.describe("    GPG: "));
                    }
                }
                (Some(_), None) => out.push_str("    origin: <unknown origin type>\n"),
            }
        }
        // oxtree's own lines, only when there is something to say (plain
        // output stays ostree's).
        if let Some(n) = self.status.boot_tries_left {
            let _ = writeln!(
                out,
                "BootCounting: {n} tries left for the default deployment"
            );
        }
        if let Some(r) = &self.status.automatic_rollback {
            let when = fmt_ts(r.time);
            let _ = writeln!(
                out,
                "AutomaticRollback: {when}: deployment {}{} failed: {}; now on {}",
                r.failed.name(),
                r.failed_version
                    .as_deref()
                    .map(|v| format!(" (version {v})"))
                    .unwrap_or_default(),
                r.reason,
                r.restored.name()
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(index: Option<usize>, booted: bool) -> DeploymentRow {
        DeploymentRow {
            index,
            osname: "os".into(),
            checksum: "ab".into(),
            serial: index.map_or(9, |i| i as u32),
            booted,
            staged: index.is_none(),
            kargs: "root=/dev/vda".into(),
            ..Default::default()
        }
    }

    #[test]
    fn shape_and_text() {
        let mut rows = vec![r(None, false), r(Some(0), true), r(Some(1), false)];
        rows[1].version = Some("2.0".into());
        rows[1].origin = Some("[origin]\nrefspec=o:x\n".into());
        rows[1].origin_refspec = Some("o:x".into());
        rows[1].timestamp = Some(1_704_067_200);
        rows[2].pinned = true;
        rows[2].layered = true;
        rows[2].origin_refspec = Some("o:x".into());
        rows[2].base_checksum = "cd".into();
        rows[2].requested_packages = vec!["nano".into()];
        let mut h = Host {
            api_version: API_VERSION.into(),
            kind: "Host".into(),
            deployments: rows.clone(),
            ..Default::default()
        };
        h.status.staged = Some((&rows[0]).into());
        h.status.booted = Some((&rows[1]).into());
        h.status.rollback = Some((&rows[2]).into());
        assert_eq!(
            h.to_text(),
            "  os ab.9 (staged)\n    origin: none\n\
             * os ab.0\n    Version: 2.0\n    origin refspec: o:x\n\
             \x20 os ab.1 (rollback)\n    Pinned: yes\n    origin refspec: o:x\n    BaseCommit: cd\n    LayeredPackages: nano\n"
        );
        let v = serde_json::to_value(&h).unwrap();
        assert_eq!(v["apiVersion"], "org.oxtree/v1");
        assert_eq!(v["kind"], "Host");
        assert_eq!(v["status"]["booted"]["version"], "2.0");
        assert_eq!(v["status"]["booted"]["timestamp"], "2024-01-01T00:00:00Z");
        assert_eq!(v["status"]["booted"]["deploySerial"], 0);
        assert_eq!(v["status"]["rollback"]["layeredPackages"][0], "nano");
        assert!(v["status"].get("otherDeployments").is_none());
        assert_eq!(v["deployments"][0]["staged"], true);
        assert_eq!(v["deployments"][2]["requested-packages"][0], "nano");
        assert_eq!(v["deployments"][1]["origin-refspec"], "o:x");
        // A deployment from an image.
        rows[1].origin_refspec = None;
        rows[1].container_image_reference =
            Some("ostree-unverified-registry:reg:5000/os:v1".into());
        rows[1].image_digest = Some("sha256:ab".into());
        h.deployments = rows.clone();
        h.status.booted = Some((&rows[1]).into());
        assert!(h
            .to_text()
            .contains("* os ab.0\n    Version: 2.0\n    origin image: ostree-unverified-registry:reg:5000/os:v1\n    Digest: sha256:ab\n  os ab.1"));
        let v = serde_json::to_value(&h).unwrap();
        let i = &v["status"]["booted"]["image"];
        assert_eq!(i["image"]["image"], "reg:5000/os:v1");
        assert_eq!(i["image"]["transport"], "registry");
        assert_eq!(i["imageDigest"], "sha256:ab");
        assert_eq!(i["version"], "2.0");
        assert_eq!(v["deployments"][1]["image-digest"], "sha256:ab");
        assert!(i["image"].get("signature").is_none(), "{i}");
        // Round trip (for a remote CLI).
        let back: Host = serde_json::from_value(v).unwrap();
        assert_eq!(back, h);
        assert_eq!(Host::default().to_text(), "No deployments.\n");
        // A signed one says how it is verified, as bootc does.
        rows[1].container_image_reference =
            Some("ostree-image-signed:docker://reg:5000/os:v1".into());
        h.status.booted = Some((&rows[1]).into());
        let v = serde_json::to_value(&h).unwrap();
        let i = &v["status"]["booted"]["image"]["image"];
        assert_eq!(i["image"], "reg:5000/os:v1");
        assert_eq!(i["signature"], "containerPolicy");
    }
}

//! Hosts that follow a container image (`[origin]
//! container-image-reference=ostree-unverified-registry:…`): `switch` to
//! an image and `upgrade` from it pull the image with
//! `oxtree_container`'s import (only the layers the repository lacks) and
//! deploy the image's own commit (its `ostree.commit`, not the merge
//! commit the image ref points to) as an ordinary deployment: /etc
//! merged, kernel arguments kept. An image a container build derived from
//! an ostree image deploys its merge commit instead: the derived layers'
//! tree over the image's commit (`oxtree_container::derived`).
//!
//! - `upgrade` first fetches only the manifest: the digest the deployment
//!   was made from (`[oxtree] image-digest` in its origin) means "no
//!   update";
//! - an image whose config lacks `ostree.bootable=true` (or
//!   `containers.bootc=1`) is refused before any layer is fetched or ref
//!   moved;
//! - `ostree-image-signed:docker://…` is verified on every pull (switch,
//!   upgrade) against the containers-policy.json of the sysroot
//!   (`/etc/containers/policy.json` on a booted host, or
//!   `$OXTREE_CONTAINERS_POLICY`): sigstore signatures for the manifest
//!   fetched, before any layer is fetched or ref moved; `--deploy-only`
//!   deploys such an image only if its pull was verified;
//!   `ostree-remote-image:` is refused when parsed;
//! - after a pull, layer refs no stored image names any more are deleted
//!   (the deploy's cleanup then prunes what no deployment uses);
//! - registry settings come from the sysroot repository's config, per
//!   registry: `[registry "HOST[:PORT]"]` with `insecure=true` (plain
//!   HTTP, no certificate check) and `cert-dir=DIR` (extra CAs);
//!   credentials from bootc's auth.json files (`/run/ostree/auth.json`,
//!   `/etc/ostree/auth.json`, `/usr/lib/ostree/auth.json`).

use crate::error::{HostError, Result};
use crate::origin::Origin;
use crate::upgrade::{Plan, UpgradeOutcome};
use crate::Context;
use oxtree_container::pull::{self, OstreeImageRef, PullRequirements, Pulled, SigVerify};
use oxtree_container::{ImageRef, Progress, RegistryOptions};
use oxtree_object::Checksum;
use oxtree_repo::Repo;
use oxtree_sysroot::{Deployment, Sysroot};

/// Parse an ostree-ext image reference (`ostree-remote-image:` is
/// refused).
pub(crate) fn parse(image: &str) -> Result<OstreeImageRef> {
    Ok(pull::parse_ostree_imgref(image)?)
}

/// Where bootc looks for registry credentials (containers' auth.json
/// format), first found wins: the run dir's, then the sysroot's /etc, then
/// its /usr/lib.
fn auth_files(cx: &Context) -> [std::path::PathBuf; 3] {
    [
        cx.run_dir.join("ostree/auth.json"),
        cx.sysroot.join("etc/ostree/auth.json"),
        cx.sysroot.join("usr/lib/ostree/auth.json"),
    ]
}

/// `auths.HOST.auth` (base64 of `USER:PASSWORD`) of an auth.json.
fn credentials_in(text: &str, host: &str) -> Option<std::result::Result<(String, String), String>> {
    use base64::Engine;
    let v: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return Some(Err(e.to_string())),
    };
    let auth = v["auths"][host]["auth"].as_str()?;
    let plain = base64::engine::general_purpose::STANDARD
        .decode(auth)
        .ok()
        .and_then(|b| String::from_utf8(b).ok());
    Some(match plain.as_deref().and_then(|p| p.split_once(':')) {
        Some((u, p)) => Ok((u.to_string(), p.to_string())),
        None => Err(format!("auths.{host}.auth is not base64 of USER:PASSWORD")),
    })
}

/// How to reach the registry of `img`: the repository's
/// `[registry "HOST[:PORT]"]` group (`insecure`, `cert-dir`) and the
/// credentials for that host in the first auth.json found (see
/// [`auth_files`]).
pub(crate) fn registry_options(
    cx: &Context,
    repo: &Repo,
    img: &ImageRef,
) -> Result<RegistryOptions> {
    let ImageRef::Registry { reference } = img else {
        return Ok(RegistryOptions::default());
    };
    let host = reference.split('/').next().unwrap_or_default();
    let group = format!("registry \"{host}\"");
    let cfg = repo.config();
    let insecure = cfg
        .get_bool(&group, "insecure", false)
        .map_err(|e| HostError::bad(format!("repository config [{group}]: {e}")))?;
    let mut credentials = None;
    for f in auth_files(cx) {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        if let Some(c) = credentials_in(&text, host) {
            credentials = Some(c.map_err(|e| HostError::bad(format!("{}: {e}", f.display())))?);
            break;
        }
    }
    Ok(RegistryOptions {
        insecure,
        cert_dir: cfg.get(&group, "cert-dir").map(Into::into),
        credentials,
    })
}

/// The manifest digest deployment `d` (following image origin `o`) was
/// made from: its origin's record; else its commit's
/// `ostree.manifest-digest` (bootc deploys the merge commit); else that of
/// the stored image whose commit it is. None when nothing says.
pub(crate) fn deployed_digest(s: &Sysroot, d: &Deployment, o: &Origin) -> Option<String> {
    if let Some(x) = &o.image_digest {
        return Some(x.clone());
    }
    let csum = Checksum::from_hex(&d.csum).ok()?;
    let c = s.repo().load_commit(&csum).ok()?;
    if let Some(x) = c.metadata.get_str(pull::META_MANIFEST_DIGEST) {
        return Some(x.to_string());
    }
    let img = parse(o.container_image.as_deref()?).ok()?.imgref;
    let name = oxtree_container::refescape::image_ref(&img.to_string()).ok()?;
    let merge = s.repo().read_ref(&name).ok()??;
    let m = s.repo().load_commit(&merge).ok()?;
    if m.parent != Some(csum) {
        return None;
    }
    m.metadata
        .get_str(pull::META_MANIFEST_DIGEST)
        .map(str::to_string)
}

/// The manifest digest of `image` now (fetches only the manifest).
pub(crate) fn remote_digest(cx: &Context, s: &Sysroot, image: &str) -> Result<String> {
    let img = parse(image)?.imgref;
    let opts = registry_options(cx, s.repo(), &img)?;
    pull::manifest_digest(&img, &opts)
        .map_err(|e| HostError::from(e).context(format!("fetching the manifest of {image}")))
}

/// Pull `image` into the sysroot repository, refusing an image that is
/// not bootable before anything is fetched or moved. `from`: the commit
/// deployed now, where a static delta published beside the image may
/// start.
pub(crate) fn pull_bootable(
    cx: &Context,
    s: &Sysroot,
    image: &str,
    from: Option<Checksum>,
) -> Result<Pulled> {
    cx.cancel.check()?;
    let img = parse(image)?;
    let opts = registry_options(cx, s.repo(), &img.imgref)?;
    cx.say(format!("Pulling {image}..."));
    let progress = |p: Progress| match p {
        Progress::LayerWritten {
            done,
            total,
            digest,
            size,
            ..
        } => cx.say(format!(
            "Fetched layer {done}/{total} {digest} ({size} bytes)"
        )),
        Progress::DeltaApplied { tag, size } => {
            cx.say(format!("Applied static delta {tag} ({size} bytes)"))
        }
        _ => {}
    };
    let flag = cx.cancel.flag();
    let pulled = pull::pull_with(
        s.repo(),
        &img,
        &opts,
        &PullRequirements {
            bootable: true,
            delta_from: from,
            policy: Some(oxtree_container::policy::default_path(&cx.sysroot)),
        },
        &progress,
        &flag,
    )
    .map_err(|e| HostError::from(e).context(format!("pulling {image}")))?;
    if let Some(v) = &pulled.verified {
        cx.say(format!("Signature policy {v}"));
    }
    cx.say(format!(
        "Image {}: {} layers fetched, {} already present, {} not needed; commit {}",
        pulled.manifest_digest,
        pulled.layers_fetched,
        pulled.layers_present,
        pulled.layers_not_needed,
        pulled.commit
    ));
    if let Some(e) = &pulled.delta_error {
        cx.say(format!(
            "The registry's static delta was not used ({e}); fetched the layers instead"
        ));
    }
    let d = &pulled.derived;
    if d.layers > 0 {
        cx.say(format!(
            "{} derived layers applied over it ({} entries under /var, /run, /tmp or /boot \
             left out{}); deploying {}",
            d.layers,
            d.dropped,
            if d.kernels.is_empty() {
                String::new()
            } else {
                format!(
                    "; kernel {} moved to /usr/lib/modules",
                    d.kernels.join(", ")
                )
            },
            pulled.deploy
        ));
    }
    // Layers of the image's earlier versions: their refs go, the cleanup
    // after the deploy frees what no deployment uses.
    let gone = pull::gc_layers(s.repo())
        .map_err(|e| HostError::from(e).context("removing unused layer refs"))?;
    if gone > 0 {
        cx.say(format!("Removed {gone} unused layer refs"));
    }
    Ok(pulled)
}

/// The image as already stored (for `--deploy-only`): its commit and
/// manifest digest, checked bootable.
fn stored(s: &Sysroot, image: &str) -> Result<(Checksum, String)> {
    let OstreeImageRef { sigverify, imgref } = parse(image)?;
    let name = oxtree_container::refescape::image_ref(&imgref.to_string())?;
    let merge = s
        .repo()
        .read_ref(&name)?
        .ok_or_else(|| HostError::bad(format!("image {image} has not been pulled")))?;
    let c = s.repo().load_commit(&merge)?;
    let (Some(commit), Some(digest)) = (c.parent, c.metadata.get_str(pull::META_MANIFEST_DIGEST))
    else {
        return Err(HostError::bad(format!(
            "{name} is not an image merge commit"
        )));
    };
    // A signed origin deploys only what a verifying pull stored.
    if sigverify == SigVerify::Policy && c.metadata.get_str(pull::META_SIGNATURE).is_none() {
        return Err(HostError::bad(format!(
            "image {image}: the stored image was pulled without signature verification; \
             pull it again (admin upgrade without --deploy-only)"
        )));
    }
    // With derived layers the merge commit has a tree of its own, and is
    // what is deployed (as `pull` says in `Pulled::deploy`).
    let image = s.repo().load_commit(&commit)?;
    let commit = if (c.root_tree, c.root_meta) == (image.root_tree, image.root_meta) {
        commit
    } else {
        merge
    };
    let config: serde_json::Value = c
        .metadata
        .get_str(pull::META_CONFIG)
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default();
    let labels: Option<std::collections::HashMap<String, String>> =
        serde_json::from_value(config["config"]["Labels"].clone()).ok();
    if !pull::is_bootable(labels.as_ref()) {
        return Err(oxtree_container::ContainerError::NotBootable(imgref.to_string()).into());
    }
    Ok((commit, digest.to_string()))
}

/// `upgrade` / `switch` of a deployment whose new origin names an image.
pub(crate) fn run(cx: &Context, s: &mut Sysroot, mut p: Plan) -> Result<UpgradeOutcome> {
    let mut origin = std::mem::take(&mut p.origin);
    let Some(image) = origin.container_image.clone() else {
        return Err(HostError::bad("the origin names no container image"));
    };
    if origin.is_layered() {
        return Err(HostError::bad(
            "packages layered on a container image are not supported yet",
        ));
    }
    if origin.override_commit.is_some() {
        return Err(HostError::bad(
            "--override-commit is not supported for a container image origin",
        ));
    }
    parse(&image)?;
    let (commit, digest) = if p.pull {
        if !p.switch {
            let now = remote_digest(cx, s, &image)?;
            if deployed_digest(s, &p.current, &origin).as_deref() == Some(now.as_str()) {
                return Ok(UpgradeOutcome::NoChange);
            }
        }
        let pulled = pull_bootable(cx, s, &image, Some(p.base))?;
        (pulled.deploy, pulled.manifest_digest)
    } else {
        stored(s, &image)?
    };
    if !p.deploy {
        return Ok(UpgradeOutcome::PulledOnly);
    }
    cx.cancel.check()?;
    if commit == p.base && !p.switch {
        return Ok(UpgradeOutcome::NoChange);
    }
    origin.image_digest = Some(digest);
    p.origin = origin;
    crate::upgrade::deploy_commit(cx, s, p, commit, commit, None)
}

/// `container image deploy` (ostree-ext's): pull `image` into the
/// sysroot's repository and deploy it on stateroot `os`, which may have no
/// deployment yet; the new deployment's origin follows the image, so
/// `admin upgrade` goes on from the registry. `kargs` as `--karg`.
pub fn deploy_image(
    cx: &Context,
    image: &str,
    os: Option<String>,
    kargs: Vec<String>,
) -> Result<crate::ops::Transaction> {
    parse(image)?;
    let (commit, digest) = {
        let s = cx.open_locked()?;
        let pulled = pull_bootable(cx, &s, image, None)?;
        (pulled.deploy, pulled.manifest_digest)
    };
    let mut origin = Origin::default();
    origin.container_image = Some(image.to_string());
    origin.image_digest = Some(digest);
    crate::ops::deploy(
        cx,
        &crate::ops::DeployRequest {
            rev: commit.to_hex(),
            opts: oxtree_sysroot::DeployOptions {
                osname: os,
                karg_replace: kargs,
                origin: Some(origin.to_keyfile()),
                ..Default::default()
            },
            stage: false,
            lock_finalization: false,
            reboot: false,
        },
    )
}

/// `ImageRef`'s transport and name as bootc's status names them:
/// `("registry", "HOST/NAME:TAG")`, `("oci", "DIR")`, …
pub(crate) fn transport_and_name(image: &str) -> (String, String) {
    match parse(image).map(|r| r.imgref) {
        Ok(ImageRef::Registry { reference }) => ("registry".into(), reference),
        Ok(r @ ImageRef::OciDir { .. }) => ("oci".into(), strip(&r.to_string(), "oci:")),
        Ok(r @ ImageRef::OciArchive { .. }) => {
            ("oci-archive".into(), strip(&r.to_string(), "oci-archive:"))
        }
        Err(_) => (String::new(), image.to_string()),
    }
}

fn strip(s: &str, p: &str) -> String {
    s.strip_prefix(p).unwrap_or(s).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_json() {
        let t = r#"{"auths":{"h:5000":{"auth":"dXNlcjpwYTpzcw=="}}}"#;
        assert_eq!(
            credentials_in(t, "h:5000"),
            Some(Ok(("user".into(), "pa:ss".into())))
        );
        assert_eq!(credentials_in(t, "other"), None);
        assert!(matches!(
            credentials_in(r#"{"auths":{"h":{"auth":"!!"}}}"#, "h"),
            Some(Err(_))
        ));
        assert!(matches!(credentials_in("nope", "h"), Some(Err(_))));
    }

    #[test]
    fn bootc_names() {
        assert_eq!(
            transport_and_name("ostree-unverified-registry:127.0.0.1:5000/os:v1"),
            ("registry".into(), "127.0.0.1:5000/os:v1".into())
        );
        assert_eq!(
            transport_and_name("ostree-unverified-image:oci:/x/y:v1"),
            ("oci".into(), "/x/y:v1".into())
        );
        let e = parse("ostree-remote-image:r:docker://h/n:t").unwrap_err();
        assert_eq!(e.kind(), "bad-request");
        assert!(e.to_string().contains("not supported yet"), "{e}");
    }
}

//! `pull`: an ostree-ext image into a repository. Only layers whose blob
//! has no `ostree/container/blob/sha256_3A_HEX` ref are fetched; every
//! digest is checked (manifest, config, each compressed layer and its
//! uncompressed diff id), the commit must be the one `ostree.commit`
//! names and be complete, and only then do the refs move: one per layer
//! (the commit layer's to the commit, a content layer's to a commit of its
//! objects, as ostree-ext keeps them) and `ostree/container/image/IMGREF`
//! to a merge commit whose parent is the image's commit, with the manifest
//! and config in its metadata. A failure moves no ref.
//!
//! An `ostree-image-signed:` reference is checked against the
//! containers-policy.json (`policy`) right after the manifest is fetched
//! and before anything else is: the signatures must be for the digest of
//! those manifest bytes, and the config and layers are then fetched by
//! the digests those same bytes name. An image the policy refuses fetches
//! no config or layer and moves no ref.
//!
//! This folder, one file per concept: this file owns the pull itself (the
//! transaction from manifest to refs) and what it reports; `reference`
//! the `ostree-…:` image references and how they are verified; `source`
//! where manifests and blobs come from (OCI layout, archive, registry),
//! each read verified; `stored` the images already pulled (listing them,
//! dropping layer refs no image names).

mod reference;
mod source;
mod stored;

pub use reference::{parse_ostree_imgref, OstreeImageRef, SigVerify};
pub(crate) use source::Source;
use source::{open_source, too_big};
pub use stored::{gc_layers, list, StoredImage};

use crate::encapsulate::COMMIT_LABEL;
use crate::error::{ContainerError, IoContext, Result};
use crate::imgref::ImageRef;
use crate::import::import_layer;
use crate::policy::PolicyFile;
use crate::refescape;
use crate::registry::RegistryOptions;
use crate::{Progress, MAX_MANIFEST};
use oci_spec::image::{ImageConfiguration, ImageManifest};
use oxtree_object::{Checksum, Commit, DirMeta, DirTree, FileEntry, Metadata, Xattrs};
use oxtree_repo::Repo;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{Read, Seek};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

pub const META_MANIFEST_DIGEST: &str = "ostree.manifest-digest";
pub const META_MANIFEST: &str = "ostree.manifest";
pub const META_CONFIG: &str = "ostree.container.image-config";
/// In the merge commit of an image pulled through `ostree-image-signed:`:
/// what the signature policy accepted it by.
pub const META_SIGNATURE: &str = "oxtree.signature-policy";

const LAYER_TYPES: &[&str] = &[
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
];

/// What a pull did.
#[derive(Clone, Debug)]
pub struct Pulled {
    pub image: String,
    /// The ref of the image (`ostree/container/image/…`).
    pub image_ref: String,
    pub manifest_digest: String,
    /// The image's ostree commit (`ostree.commit`).
    pub commit: Checksum,
    /// The merge commit the image ref points to: the image's commit, or
    /// with derived layers their tree over it.
    pub merge_commit: Checksum,
    /// What a host deploys: the image's commit, or with derived layers
    /// the merge commit.
    pub deploy: Checksum,
    pub layers_fetched: usize,
    pub layers_present: usize,
    /// Layers neither fetched nor here: the commit they hold was here
    /// already, or came by a static delta.
    pub layers_not_needed: usize,
    /// The derived layers applied (none for a plain ostree image).
    pub derived: crate::derived::DerivedReport,
    /// The static delta that brought the image's commit, if one did.
    pub delta: Option<crate::delta::DeltaUse>,
    /// Why a static delta the registry offered was not used (the layers
    /// were fetched instead).
    pub delta_error: Option<String>,
    /// For an `ostree-image-signed:` pull: the policy file and what in it
    /// accepted the image.
    pub verified: Option<String>,
}

/// Reads through, hashing what passes.
struct HashReader<R> {
    inner: R,
    h: Sha256,
}

impl<R: Read> Read for HashReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.h.update(&buf[..n]);
        Ok(n)
    }
}

fn object_set_commit(txn: &oxtree_repo::Transaction<'_>, objs: &[Checksum]) -> Result<Checksum> {
    let tree = DirTree {
        files: objs
            .iter()
            .map(|c| FileEntry {
                name: c.to_hex(),
                checksum: *c,
            })
            .collect(),
        dirs: Vec::new(),
    };
    let meta = DirMeta {
        uid: 0,
        gid: 0,
        mode: 0o40755,
        xattrs: Xattrs::new(),
    };
    let root_tree = txn.write_dirtree(&tree)?;
    let root_meta = txn.write_dirmeta(&meta)?;
    layer_commit(txn, root_tree, root_meta)
}

/// The commit a layer's blob ref points to: just a tree, no metadata, no
/// parent, timestamp 0 (so the same layer gives the same commit).
pub(crate) fn layer_commit(
    txn: &oxtree_repo::Transaction<'_>,
    root_tree: Checksum,
    root_meta: Checksum,
) -> Result<Checksum> {
    Ok(txn.write_commit(&Commit {
        metadata: Metadata::new(),
        parent: None,
        related: Vec::new(),
        subject: String::new(),
        body: String::new(),
        timestamp: 0,
        root_tree,
        root_meta,
    })?)
}

/// The digest of `img`'s manifest, fetching only the manifest (to decide
/// whether an image changed before pulling it). Not verified: a pull
/// that follows checks the signatures of what it fetches.
pub fn manifest_digest(img: &ImageRef, opts: &RegistryOptions) -> Result<String> {
    Ok(open_source(img, opts)?.manifest()?.1)
}

/// What a pull requires of the image beyond being an ostree image.
#[derive(Clone, Debug, Default)]
pub struct PullRequirements {
    /// Refuse, before fetching any layer, an image whose config has
    /// neither `ostree.bootable` nor `containers.bootc=1` (what bootc
    /// deploys).
    pub bootable: bool,
    /// A commit here that a static delta published beside the image may
    /// start from (the deployment being upgraded), tried first.
    pub delta_from: Option<Checksum>,
    /// The containers-policy.json an `ostree-image-signed:` reference is
    /// verified against (default: [`crate::policy::default_path`] of `/`).
    pub policy: Option<PathBuf>,
}

/// Is an image with these config labels bootable (bootc's and
/// ostree-ext's labels)?
pub fn is_bootable(labels: Option<&HashMap<String, String>>) -> bool {
    labels.is_some_and(|l| {
        l.get(crate::encapsulate::BOOTABLE_LABEL)
            .is_some_and(|v| v == "true")
            || l.get("containers.bootc").is_some_and(|v| v == "1")
    })
}

/// Pull `img` into `repo`, unverified.
pub fn pull(
    repo: &Repo,
    img: &ImageRef,
    opts: &RegistryOptions,
    progress: &(dyn Fn(Progress) + Sync),
    cancel: &AtomicBool,
) -> Result<Pulled> {
    let img = OstreeImageRef {
        sigverify: SigVerify::Unverified,
        imgref: img.clone(),
    };
    pull_with(
        repo,
        &img,
        opts,
        &PullRequirements::default(),
        progress,
        cancel,
    )
}

/// The policy an `ostree-image-signed:` pull of `img` is checked against,
/// loaded, and the registry reference it is checked for; refuses a policy
/// whose default accepts anything (as ostree-ext does).
fn signature_policy(
    img: &OstreeImageRef,
    req: &PullRequirements,
) -> Result<Option<(PolicyFile, String)>> {
    if img.sigverify == SigVerify::Unverified {
        return Ok(None);
    }
    let ImageRef::Registry { reference } = &img.imgref else {
        return Err(ContainerError::ImageRef {
            reference: img.to_string(),
            reason: "signatures are verified for registry images only".into(),
        });
    };
    let path = req
        .policy
        .clone()
        .unwrap_or_else(|| crate::policy::default_path(std::path::Path::new("/")));
    let p = PolicyFile::load(&path)?;
    if p.policy.default_is_insecure() {
        return Err(ContainerError::Policy {
            path: path.display().to_string(),
            reason: "its default is insecureAcceptAnything, so an ostree-image-signed: \
                     reference would accept any image; refusing (make the default reject, \
                     and require sigstoreSigned where images come from)"
                .into(),
        });
    }
    Ok(Some((p, reference.clone())))
}

/// Pull `img` into `repo`, refusing it (before any layer is fetched or
/// ref moved) when it does not meet `req` or, for `ostree-image-signed:`,
/// the signature policy.
pub fn pull_with(
    repo: &Repo,
    img: &OstreeImageRef,
    opts: &RegistryOptions,
    req: &PullRequirements,
    progress: &(dyn Fn(Progress) + Sync),
    cancel: &AtomicBool,
) -> Result<Pulled> {
    let policy = signature_policy(img, req)?;
    let mut src = open_source(&img.imgref, opts)?;
    let (manifest_bytes, manifest_digest) = src.manifest()?;
    // The signatures are checked against the digest of these bytes, and
    // everything below is fetched by the digests they name.
    let verified = match &policy {
        Some((p, reference)) => {
            let how = p.check(reference, &manifest_digest, &mut || {
                src.attachments(&manifest_digest)
            })?;
            Some(format!("{}: {how}", p.path.display()))
        }
        None => None,
    };
    let img = &img.imgref;
    let manifest: ImageManifest = crate::encapsulate::parse_manifest(&manifest_bytes)?;
    let cdesc = manifest.config();
    let csize = cdesc.size();
    if csize > MAX_MANIFEST as u64 {
        return Err(too_big("the config", MAX_MANIFEST as u64));
    }
    let mut cfile = tempfile::tempfile().ctx(|| "creating a temporary file")?;
    src.blob(cdesc.digest().as_ref(), csize, &mut cfile)?;
    let mut config_bytes = Vec::new();
    cfile.rewind().ctx(|| "reading the config")?;
    cfile
        .read_to_end(&mut config_bytes)
        .ctx(|| "reading the config")?;
    let config: ImageConfiguration = serde_json::from_slice(&config_bytes)
        .map_err(|e| ContainerError::Invalid(format!("not an OCI image config: {e}")))?;
    let label = config
        .labels_of_config()
        .and_then(|l| l.get(COMMIT_LABEL))
        .ok_or_else(|| {
            ContainerError::Invalid(format!("not an ostree image: no {COMMIT_LABEL} label"))
        })?;
    let commit = Checksum::from_hex(label)
        .map_err(|_| ContainerError::Invalid(format!("bad {COMMIT_LABEL} label {label:?}")))?;
    if req.bootable && !is_bootable(config.labels_of_config()) {
        return Err(ContainerError::NotBootable(img.to_string()));
    }
    let layers = manifest.layers();
    let diff_ids = config.rootfs().diff_ids();
    if layers.is_empty() || diff_ids.len() != layers.len() {
        return Err(ContainerError::Invalid(format!(
            "{} layers but {} diff ids",
            layers.len(),
            diff_ids.len()
        )));
    }
    // The ostree layers end at `ostree.final-diffid`; what follows was
    // added by a container build (derived layers).
    let ostree_layers = match config
        .labels_of_config()
        .and_then(|l| l.get(crate::encapsulate::DIFFID_LABEL))
    {
        None => layers.len(),
        Some(d) => {
            diff_ids.iter().position(|x| x == d).ok_or_else(|| {
                ContainerError::Invalid(format!(
                    "{}={d} names none of the image's layers",
                    crate::encapsulate::DIFFID_LABEL
                ))
            })? + 1
        }
    };

    // The image's commit may be here already (the same commit pulled over
    // HTTP), or come as a static delta published beside the image: then
    // none of its ostree layers is fetched.
    let image_ref = refescape::image_ref(&img.to_string())?;
    let mut delta = None;
    let mut delta_error = None;
    let mut commit_here = commit_complete(repo, &commit)?;
    if !commit_here {
        let limit = layers[..ostree_layers]
            .iter()
            .fold(0u64, |n, l| n.saturating_add(l.size()));
        for from in delta_bases(repo, &image_ref, req.delta_from, &commit)? {
            match crate::delta::fetch_apply(
                &mut *src,
                repo,
                &manifest_digest,
                (&from, &commit),
                limit,
                cancel,
            ) {
                Ok(Some(u)) => {
                    progress(Progress::DeltaApplied {
                        tag: u.tag.clone(),
                        size: u.size,
                    });
                    delta = Some(u);
                    commit_here = true;
                    break;
                }
                Ok(None) => {}
                Err(ContainerError::Cancelled) => return Err(ContainerError::Cancelled),
                // Not fatal: the layers hold the same commit.
                Err(e) => delta_error = Some(e.to_string()),
            }
        }
    }

    let mut refs: Vec<(String, Checksum)> = Vec::new();
    // The derived layers' commits, in order.
    let mut derived_layers: Vec<Checksum> = Vec::new();
    let mut commitmeta = None;
    let (mut fetched, mut present, mut not_needed) = (0, 0, 0);
    let txn = repo.begin()?;
    for (i, l) in layers.iter().enumerate() {
        if cancel.load(Ordering::Relaxed) {
            return Err(ContainerError::Cancelled);
        }
        let digest = l.digest().to_string();
        let lref = refescape::layer_ref(&digest)?;
        if let Some(c) = repo.read_ref(&lref)? {
            let ok = if i == 0 {
                c == commit
            } else {
                repo.load_commit(&c).is_ok()
            };
            if ok && !repo.is_commit_partial(&c)? {
                present += 1;
                if i >= ostree_layers {
                    derived_layers.push(c);
                }
                refs.push((lref, c));
                continue;
            }
        }
        if i < ostree_layers && commit_here {
            not_needed += 1;
            continue;
        }
        let mt = l.media_type().to_string();
        if !LAYER_TYPES.contains(&mt.as_str()) {
            return Err(ContainerError::Invalid(format!(
                "layer {digest}: unsupported media type {mt}"
            )));
        }
        let mut f = tempfile::tempfile().ctx(|| "creating a temporary file")?;
        src.blob(&digest, l.size(), &mut f)?;
        f.rewind().ctx(|| "reading a layer")?;
        let buf = std::io::BufReader::with_capacity(256 << 10, f);
        let plain: Box<dyn Read> = if mt.ends_with("gzip") {
            Box::new(flate2::read::GzDecoder::new(buf))
        } else {
            Box::new(buf)
        };
        let mut hr = HashReader {
            inner: plain,
            h: Sha256::new(),
        };
        let derived = i >= ostree_layers;
        let target = if derived {
            // A derived layer: inflated to a temp file while hashed, its
            // diff id checked, then imported as a tree of its own.
            let mut plain = tempfile::tempfile().ctx(|| "creating a temporary file")?;
            std::io::copy(&mut hr, &mut plain).ctx(|| format!("reading layer {digest}"))?;
            check_diff_id(&digest, hr.h.finalize().as_slice(), &diff_ids[i])?;
            plain.rewind().ctx(|| "reading a layer")?;
            crate::derived::import_layer(&txn, plain)?
        } else {
            let imported = import_layer(&txn, &mut hr, cancel)?;
            std::io::copy(&mut hr, &mut std::io::sink())
                .ctx(|| format!("reading layer {digest}"))?;
            check_diff_id(&digest, hr.h.finalize().as_slice(), &diff_ids[i])?;
            if i == 0 {
                match imported.commit {
                    Some(c) if c == commit => {}
                    Some(c) => {
                        return Err(ContainerError::Invalid(format!(
                            "the image holds commit {c}, its label says {commit}"
                        )))
                    }
                    None => {
                        return Err(ContainerError::Invalid(
                            "no commit in the first layer".into(),
                        ))
                    }
                }
                commitmeta = imported.commitmeta;
                commit
            } else {
                if imported.commit.is_some() {
                    return Err(ContainerError::Invalid(format!(
                        "layer {digest}: a second commit object"
                    )));
                }
                let objs: Vec<Checksum> = imported.content.into_iter().collect();
                object_set_commit(&txn, &objs)?
            }
        };
        fetched += 1;
        progress(Progress::LayerWritten {
            done: i + 1,
            total: layers.len(),
            digest: digest.clone(),
            size: l.size(),
            description: if derived {
                "fetched (derived)"
            } else {
                "fetched"
            }
            .into(),
        });
        if derived {
            derived_layers.push(target);
        }
        refs.push((lref, target));
    }
    let sync = txn.sync_enabled();
    txn.commit()?;
    if let Some(b) = commitmeta {
        repo.write_detached_metadata_bytes(&commit, &b, sync)?;
    }

    // The whole tree must be there before any ref names it.
    let mut reach = Default::default();
    repo.traverse_commit(&commit, 0, &mut reach)?;
    for (kind, c) in &reach {
        if !repo.has_object(*kind, c)? {
            return Err(ContainerError::Invalid(format!(
                "the image lacks {} object {c}",
                kind.extension(false)
            )));
        }
    }
    let base = repo.load_commit(&commit)?;
    let mut meta = Metadata::new();
    meta.set_str(META_MANIFEST_DIGEST, &manifest_digest);
    meta.set_str(META_MANIFEST, &String::from_utf8_lossy(&manifest_bytes));
    meta.set_str(META_CONFIG, &String::from_utf8_lossy(&config_bytes));
    if let Some(v) = &verified {
        meta.set_str(META_SIGNATURE, v);
    }
    let txn = repo.begin()?;
    let ((root_tree, root_meta), derived) = if derived_layers.is_empty() {
        ((base.root_tree, base.root_meta), Default::default())
    } else {
        // A deployable commit: the base's version and boot metadata kept.
        for key in ["version", "ostree.bootable", "ostree.linux"] {
            if let Some(v) = base.metadata.get(key) {
                meta.set(key, v.clone());
            }
        }
        crate::derived::merged_tree(repo, &txn, &base, &derived_layers)?
    };
    let merge = txn.write_commit(&Commit {
        metadata: meta,
        parent: Some(commit),
        related: Vec::new(),
        subject: String::new(),
        body: String::new(),
        timestamp: base.timestamp,
        root_tree,
        root_meta,
    })?;
    txn.commit()?;
    refs.push((image_ref.clone(), merge));
    for (r, c) in &refs {
        repo.write_ref(r, Some(c), sync)?;
    }
    Ok(Pulled {
        image: img.to_string(),
        image_ref,
        manifest_digest,
        commit,
        merge_commit: merge,
        deploy: if derived_layers.is_empty() {
            commit
        } else {
            merge
        },
        layers_fetched: fetched,
        layers_present: present,
        layers_not_needed: not_needed,
        derived,
        delta,
        delta_error,
        verified,
    })
}

/// Is `c` here with its whole tree (not a partial pull)?
fn commit_complete(repo: &Repo, c: &Checksum) -> Result<bool> {
    Ok(repo.has_object(oxtree_object::ObjectType::Commit, c)? && !repo.is_commit_partial(c)?)
}

/// The commits a static delta to `to` may start from, best first: the
/// caller's (the deployment being upgraded), then the commit this image
/// reference pointed to before. Only complete commits.
fn delta_bases(
    repo: &Repo,
    image_ref: &str,
    hint: Option<Checksum>,
    to: &Checksum,
) -> Result<Vec<Checksum>> {
    let previous = match repo.read_ref(image_ref)? {
        Some(merge) => repo.load_commit(&merge).ok().and_then(|m| m.parent),
        None => None,
    };
    let mut out = Vec::new();
    for c in [hint, previous].into_iter().flatten() {
        if c != *to && !out.contains(&c) && commit_complete(repo, &c)? {
            out.push(c);
        }
    }
    Ok(out)
}

fn check_diff_id(digest: &str, sha256: &[u8], want: &str) -> Result<()> {
    let diff_id = format!("sha256:{}", hex::encode(sha256));
    if diff_id != want {
        return Err(ContainerError::Invalid(format!(
            "layer {digest}: uncompressed it hashes to {diff_id}, the config says {want}"
        )));
    }
    Ok(())
}

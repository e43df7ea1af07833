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

use crate::encapsulate::COMMIT_LABEL;
use crate::error::{ContainerError, IoContext, Result};
use crate::imgref::ImageRef;
use crate::import::import_layer;
use crate::oci::{digest_hex, digest_of, REF_NAME};
use crate::policy::PolicyFile;
use crate::refescape;
use crate::registry::RegistryOptions;
use crate::sigstore::{self, Attachment};
use crate::{Progress, MAX_MANIFEST};
use oci_spec::image::{ImageConfiguration, ImageManifest};
use oxtree_object::{Checksum, Commit, DirMeta, DirTree, FileEntry, Metadata, Xattrs};
use oxtree_repo::Repo;
use rustix::fd::OwnedFd;
use rustix::fs::{Mode, OFlags, ResolveFlags};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::io::{Read, Seek, Write};
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

/// How a pull checks an image's signatures (ostree-ext's signature
/// source, less its ostree-remote form).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SigVerify {
    /// `ostree-unverified-registry:`, `ostree-unverified-image:` or a
    /// bare transport reference: not checked.
    Unverified,
    /// `ostree-image-signed:`: as the containers-policy.json says.
    Policy,
}

/// An ostree-ext image reference: the image and how it is verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OstreeImageRef {
    pub sigverify: SigVerify,
    pub imgref: ImageRef,
}

impl fmt::Display for OstreeImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.sigverify, &self.imgref) {
            (SigVerify::Policy, r) => write!(f, "ostree-image-signed:{r}"),
            (SigVerify::Unverified, ImageRef::Registry { reference }) => {
                write!(f, "ostree-unverified-registry:{reference}")
            }
            (SigVerify::Unverified, r) => write!(f, "ostree-unverified-image:{r}"),
        }
    }
}

/// `registry:X` is ostree-ext's other name for `docker://X`.
fn parse_transport(r: &str) -> Result<ImageRef> {
    match r.strip_prefix("registry:") {
        Some(r) => ImageRef::parse(&format!("docker://{r}")),
        None => ImageRef::parse(r),
    }
}

/// `ostree-unverified-registry:HOST/NAME:TAG`, `ostree-unverified-image:`
/// followed by `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]` or `docker://…`,
/// `ostree-image-signed:docker://HOST/NAME:TAG`, or a transport reference
/// bare (unverified).
pub fn parse_ostree_imgref(s: &str) -> Result<OstreeImageRef> {
    let unverified = |imgref| OstreeImageRef {
        sigverify: SigVerify::Unverified,
        imgref,
    };
    if let Some(r) = s.strip_prefix("ostree-unverified-registry:") {
        return Ok(unverified(ImageRef::parse(&format!("docker://{r}"))?));
    }
    if let Some(r) = s.strip_prefix("ostree-unverified-image:") {
        return Ok(unverified(parse_transport(r)?));
    }
    if let Some(r) = s.strip_prefix("ostree-image-signed:") {
        let imgref = parse_transport(r)?;
        if !matches!(imgref, ImageRef::Registry { .. }) {
            return Err(ContainerError::ImageRef {
                reference: s.to_string(),
                reason: "signatures are verified for registry images (docker://HOST/NAME:TAG) \
                         only; an OCI layout or archive has none"
                    .into(),
            });
        }
        return Ok(OstreeImageRef {
            sigverify: SigVerify::Policy,
            imgref,
        });
    }
    if s.starts_with("ostree-") {
        return Err(ContainerError::ImageRef {
            reference: s.to_string(),
            reason: "verification by an ostree remote's keys is not supported yet: use \
                     ostree-image-signed: (a containers-policy.json), \
                     ostree-unverified-registry: or ostree-unverified-image:"
                .into(),
        });
    }
    Ok(unverified(ImageRef::parse(s)?))
}

/// Where the image's documents and blobs come from.
pub(crate) trait Source {
    /// The manifest's bytes and their digest.
    fn manifest(&mut self) -> Result<(Vec<u8>, String)>;
    /// The blob `digest` (at most `size` bytes) into `out`, verified.
    fn blob(&mut self, digest: &str, size: u64, out: &mut dyn Write) -> Result<()>;
    /// Another tag's manifest in the same repository (an artifact beside
    /// the image), `None` when there is none. Only registries have them.
    fn tagged_manifest(&mut self, _tag: &str) -> Result<Option<Vec<u8>>> {
        Ok(None)
    }
    /// The sigstore attachments of the image whose manifest has `digest`
    /// (none where the source keeps none).
    fn attachments(&mut self, _digest: &str) -> Result<Vec<Attachment>> {
        Ok(Vec::new())
    }
}

fn too_big(what: &str, n: u64) -> ContainerError {
    ContainerError::Invalid(format!("{what} is over {n} bytes"))
}

/// Copy at most `size` bytes, hashing; fails on more, less or another digest.
fn copy_verified(r: &mut impl Read, digest: &str, size: u64, out: &mut dyn Write) -> Result<()> {
    let mut h = Sha256::new();
    let mut n = 0u64;
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let k = r.read(&mut buf).ctx(|| format!("reading blob {digest}"))?;
        if k == 0 {
            break;
        }
        n += k as u64;
        if n > size {
            return Err(ContainerError::Invalid(format!(
                "blob {digest} is larger than its descriptor says ({size} bytes)"
            )));
        }
        h.update(&buf[..k]);
        out.write_all(&buf[..k]).ctx(|| "storing a blob")?;
    }
    let actual = format!("sha256:{}", hex::encode(h.finalize()));
    if actual != digest || n != size {
        return Err(ContainerError::Invalid(format!(
            "blob {digest}: got {n} bytes hashing to {actual} (expected {size} bytes)"
        )));
    }
    Ok(())
}

/// Where the members of an OCI layout are: a directory or a tar file.
enum Layout {
    Dir(OwnedFd),
    /// The archive and its regular members: name -> (offset, size).
    Archive(std::fs::File, HashMap<String, (u64, u64)>),
}

struct OciSource {
    layout: Layout,
    tag: Option<String>,
    path: String,
}

impl OciSource {
    /// Open a member of the layout: in a directory beneath it, no
    /// symlinks; in an archive, a regular member of that exact name.
    fn open(&self, rel: &str) -> Result<Box<dyn Read + '_>> {
        match &self.layout {
            Layout::Dir(dir) => {
                let fd = rustix::fs::openat2(
                    dir,
                    rel,
                    OFlags::RDONLY | OFlags::CLOEXEC,
                    Mode::empty(),
                    ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
                )
                .ctx(|| format!("opening {}/{rel}", self.path))?;
                Ok(Box::new(std::fs::File::from(fd)))
            }
            Layout::Archive(f, members) => {
                let (off, size) = *members.get(rel).ok_or_else(|| {
                    ContainerError::Invalid(format!("{}: no member {rel}", self.path))
                })?;
                let mut f = f.try_clone().ctx(|| format!("reading {}", self.path))?;
                f.seek(std::io::SeekFrom::Start(off))
                    .ctx(|| format!("reading {}", self.path))?;
                Ok(Box::new(f.take(size)))
            }
        }
    }

    /// Index the regular members of an OCI archive.
    fn archive(path: &std::path::Path, tag: Option<String>) -> Result<OciSource> {
        let f = std::fs::File::open(path).ctx(|| format!("opening {}", path.display()))?;
        let mut members = HashMap::new();
        let mut ar = tar::Archive::new(f.try_clone().ctx(|| "reading the archive")?);
        let bad = |e: std::io::Error| {
            ContainerError::Invalid(format!("{}: not a tar archive: {e}", path.display()))
        };
        for e in ar.entries_with_seek().map_err(bad)? {
            let e = e.map_err(bad)?;
            if e.header().entry_type() != tar::EntryType::Regular {
                continue;
            }
            let name = crate::import::check_name(&e.path_bytes())?;
            members.insert(name, (e.raw_file_position(), e.size()));
        }
        Ok(OciSource {
            layout: Layout::Archive(f, members),
            tag,
            path: path.display().to_string(),
        })
    }

    fn read_small(&self, rel: &str) -> Result<Vec<u8>> {
        let mut v = Vec::new();
        self.open(rel)?
            .take(MAX_MANIFEST as u64 + 1)
            .read_to_end(&mut v)
            .ctx(|| format!("reading {}/{rel}", self.path))?;
        if v.len() > MAX_MANIFEST {
            return Err(too_big(rel, MAX_MANIFEST as u64));
        }
        Ok(v)
    }
}

impl Source for OciSource {
    fn manifest(&mut self) -> Result<(Vec<u8>, String)> {
        let index: serde_json::Value = serde_json::from_slice(&self.read_small("index.json")?)
            .map_err(|e| ContainerError::Invalid(format!("index.json: {e}")))?;
        let manifests = index["manifests"].as_array().cloned().unwrap_or_default();
        let pick: Vec<&serde_json::Value> = manifests
            .iter()
            .filter(|m| match &self.tag {
                Some(t) => m["annotations"][REF_NAME].as_str() == Some(t),
                None => true,
            })
            .collect();
        let m = match pick.as_slice() {
            [one] => *one,
            [] => {
                return Err(ContainerError::Invalid(match &self.tag {
                    Some(t) => format!("{}: no manifest tagged {t:?}", self.path),
                    None => format!("{}: no manifest", self.path),
                }))
            }
            _ => {
                return Err(ContainerError::Invalid(format!(
                    "{}: several manifests; name one with :TAG",
                    self.path
                )))
            }
        };
        let digest = m["digest"].as_str().unwrap_or_default().to_string();
        let size = m["size"].as_u64().unwrap_or(0);
        if size > MAX_MANIFEST as u64 {
            return Err(too_big("the manifest", MAX_MANIFEST as u64));
        }
        let hex = digest_hex(&digest)?;
        let bytes = self.read_small(&format!("blobs/sha256/{hex}"))?;
        if digest_of(&bytes) != digest || bytes.len() as u64 != size {
            return Err(ContainerError::Invalid(format!(
                "manifest {digest}: the blob does not match its digest and size"
            )));
        }
        Ok((bytes, digest))
    }

    fn blob(&mut self, digest: &str, size: u64, out: &mut dyn Write) -> Result<()> {
        let hex = digest_hex(digest)?;
        let mut f = self.open(&format!("blobs/sha256/{hex}"))?;
        copy_verified(&mut f, digest, size, out)
    }
}

struct RegistrySource {
    reference: oci_client::Reference,
    client: oci_client::Client,
    rt: tokio::runtime::Runtime,
    auth: oci_client::secrets::RegistryAuth,
}

impl RegistrySource {
    fn err(&self, e: impl std::fmt::Display) -> ContainerError {
        ContainerError::Registry {
            registry: self.reference.registry().to_string(),
            reason: e.to_string(),
        }
    }
}

impl Source for RegistrySource {
    fn manifest(&mut self) -> Result<(Vec<u8>, String)> {
        let (bytes, _) = self
            .rt
            .block_on(self.client.pull_manifest_raw(
                &self.reference,
                &self.auth,
                &[
                    oci_client::manifest::OCI_IMAGE_MEDIA_TYPE,
                    oci_client::manifest::IMAGE_MANIFEST_MEDIA_TYPE,
                ],
            ))
            .map_err(|e| self.err(crate::registry::chain(&e)))?;
        if bytes.len() > MAX_MANIFEST {
            return Err(too_big("the manifest", MAX_MANIFEST as u64));
        }
        let digest = digest_of(&bytes);
        if let Some(want) = self.reference.digest() {
            if want != digest {
                return Err(ContainerError::Invalid(format!(
                    "the registry sent a manifest hashing to {digest}, not {want}"
                )));
            }
        }
        Ok((bytes.to_vec(), digest))
    }

    fn tagged_manifest(&mut self, tag: &str) -> Result<Option<Vec<u8>>> {
        let r = oci_client::Reference::with_tag(
            self.reference.registry().to_string(),
            self.reference.repository().to_string(),
            tag.to_string(),
        );
        match self.rt.block_on(self.client.pull_manifest_raw(
            &r,
            &self.auth,
            &[oci_client::manifest::OCI_IMAGE_MEDIA_TYPE],
        )) {
            Ok((bytes, _)) if bytes.len() > MAX_MANIFEST => Err(too_big(
                &format!("the manifest of {}", r.whole()),
                MAX_MANIFEST as u64,
            )),
            Ok((bytes, _)) => Ok(Some(bytes.to_vec())),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(self.err(format!(
                "fetching {}: {}",
                r.whole(),
                crate::registry::chain(&e)
            ))),
        }
    }

    fn blob(&mut self, digest: &str, size: u64, out: &mut dyn Write) -> Result<()> {
        use futures_util::StreamExt;
        let r = &self.reference;
        let c = &self.client;
        let res: Result<()> = self.rt.block_on(async {
            let mut s =
                c.pull_blob_stream(r, digest)
                    .await
                    .map_err(|e| ContainerError::Registry {
                        registry: r.registry().to_string(),
                        reason: crate::registry::chain(&e),
                    })?;
            let mut h = Sha256::new();
            let mut n = 0u64;
            while let Some(chunk) = s.stream.next().await {
                let chunk = chunk.ctx(|| format!("fetching {digest}"))?;
                n += chunk.len() as u64;
                if n > size {
                    return Err(ContainerError::Invalid(format!(
                        "blob {digest} is larger than its descriptor says ({size} bytes)"
                    )));
                }
                h.update(&chunk);
                out.write_all(&chunk).ctx(|| "storing a blob")?;
            }
            let actual = format!("sha256:{}", hex::encode(h.finalize()));
            if actual != digest || n != size {
                return Err(ContainerError::Invalid(format!(
                    "blob {digest}: got {n} bytes hashing to {actual} (expected {size} bytes)"
                )));
            }
            Ok(())
        });
        res
    }

    /// The manifest tagged `sha256-HEX.sig` in the image's repository
    /// (none: no attachments) and the payload of each signature layer,
    /// each within its size limit and verified against its digest.
    fn attachments(&mut self, digest: &str) -> Result<Vec<Attachment>> {
        let tag = sigstore::attachment_tag(digest).map_err(ContainerError::Invalid)?;
        let Some(bytes) = self.tagged_manifest(&tag)? else {
            return Ok(Vec::new());
        };
        let r = oci_client::Reference::with_tag(
            self.reference.registry().to_string(),
            self.reference.repository().to_string(),
            tag,
        );
        let layers = sigstore::parse_attachment_manifest(&bytes)
            .map_err(|e| ContainerError::Invalid(format!("{}: {e}", r.whole())))?;
        let mut out = Vec::new();
        for layer in layers {
            let mut payload = Vec::new();
            if layer.media_type == sigstore::SIGNATURE_MEDIA_TYPE {
                if layer.size > sigstore::MAX_PAYLOAD {
                    return Err(ContainerError::Invalid(format!(
                        "{}: signature payload {} is over {} bytes",
                        r.whole(),
                        layer.digest,
                        sigstore::MAX_PAYLOAD
                    )));
                }
                digest_hex(&layer.digest)?;
                self.blob(&layer.digest, layer.size, &mut payload)?;
            }
            out.push(Attachment { layer, payload });
        }
        Ok(out)
    }
}

/// Does this error say the manifest is not there (so: no attachments)?
fn not_found(e: &oci_client::errors::OciDistributionError) -> bool {
    use oci_client::errors::{OciDistributionError as E, OciErrorCode as C};
    match e {
        E::RegistryError { envelope, .. } => {
            !envelope.errors.is_empty()
                && envelope
                    .errors
                    .iter()
                    .all(|x| matches!(x.code, C::ManifestUnknown | C::NotFound))
        }
        E::ServerError { code: 404, .. } | E::ImageManifestNotFoundError(_) => true,
        _ => false,
    }
}

fn open_source(img: &ImageRef, opts: &RegistryOptions) -> Result<Box<dyn Source>> {
    match img {
        ImageRef::OciDir { path, tag } => {
            let dir = rustix::fs::open(
                path,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .ctx(|| format!("opening {}", path.display()))?;
            Ok(Box::new(OciSource {
                layout: Layout::Dir(dir),
                tag: tag.clone(),
                path: path.display().to_string(),
            }))
        }
        ImageRef::OciArchive { path, tag } => Ok(Box::new(OciSource::archive(path, tag.clone())?)),
        ImageRef::Registry { reference } => {
            let r: oci_client::Reference =
                reference.parse().map_err(|e| ContainerError::ImageRef {
                    reference: reference.clone(),
                    reason: format!("{e}"),
                })?;
            let client = crate::registry::client(&r, opts)?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .ctx(|| "starting the async runtime")?;
            Ok(Box::new(RegistrySource {
                reference: r,
                client,
                rt,
                auth: crate::registry::auth(opts),
            }))
        }
    }
}

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

/// Delete the layer refs (`ostree/container/blob/…`) that no stored
/// image's manifest names any more (an image ref moved to a new version),
/// so that a prune can free what only they held; returns how many went.
/// Commits deployed from those images stay (deployments have refs of
/// their own). A stored image whose manifest cannot be read keeps every
/// layer (nothing is deleted).
pub fn gc_layers(repo: &Repo) -> Result<usize> {
    let refs = repo.list_refs()?;
    let mut wanted = std::collections::HashSet::new();
    let image_prefix = format!("{}/", refescape::IMAGE_PREFIX);
    for (name, c) in &refs {
        if !name.starts_with(&image_prefix) {
            continue;
        }
        let md = repo.load_commit(c)?.metadata;
        let Some(m) = md.get_str(META_MANIFEST) else {
            return Ok(0);
        };
        let m: ImageManifest = match crate::encapsulate::parse_manifest(m.as_bytes()) {
            Ok(m) => m,
            Err(_) => return Ok(0),
        };
        for l in m.layers() {
            wanted.insert(refescape::layer_ref(l.digest().as_ref())?);
        }
    }
    let layer_prefix = format!("{}/", refescape::LAYER_PREFIX);
    let mut n = 0;
    for (name, _) in &refs {
        if name.starts_with(&layer_prefix) && !wanted.contains(name) {
            repo.write_ref(name, None, false)?;
            n += 1;
        }
    }
    Ok(n)
}

/// An image in the repository.
#[derive(Clone, Debug)]
pub struct StoredImage {
    pub image: String,
    pub manifest_digest: Option<String>,
    pub commit: Option<Checksum>,
    pub merge_commit: Checksum,
}

/// The images pulled into `repo`.
pub fn list(repo: &Repo) -> Result<Vec<StoredImage>> {
    let prefix = format!("{}/", refescape::IMAGE_PREFIX);
    let mut out = Vec::new();
    for (name, c) in repo.list_refs()? {
        let Some(esc) = name.strip_prefix(&prefix) else {
            continue;
        };
        let image = refescape::unescape(esc)?;
        let (digest, parent) = match repo.load_commit(&c) {
            Ok(m) => (
                m.metadata.get_str(META_MANIFEST_DIGEST).map(str::to_string),
                m.parent,
            ),
            Err(_) => (None, None),
        };
        out.push(StoredImage {
            image,
            manifest_digest: digest,
            commit: parent,
            merge_commit: c,
        });
    }
    out.sort_by(|a, b| a.image.cmp(&b.image));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ostree_image_references() {
        let r = |s: &str| parse_ostree_imgref(s).map(|r| (r.sigverify, r.imgref.to_string()));
        use SigVerify::*;
        for s in [
            "ostree-unverified-registry:h:5000/os:v1",
            "ostree-unverified-image:docker://h:5000/os:v1",
            "ostree-unverified-image:registry:h:5000/os:v1",
            "docker://h:5000/os:v1",
        ] {
            assert_eq!(
                r(s).unwrap(),
                (Unverified, "docker://h:5000/os:v1".into()),
                "{s}"
            );
        }
        for s in [
            "ostree-image-signed:docker://h:5000/os:v1",
            "ostree-image-signed:registry:h:5000/os:v1",
        ] {
            assert_eq!(
                r(s).unwrap(),
                (Policy, "docker://h:5000/os:v1".into()),
                "{s}"
            );
        }
        assert_eq!(
            r("ostree-unverified-image:oci:/x:v1").unwrap(),
            (Unverified, "oci:/x:v1".into())
        );
        // Display gives the ostree-ext form back.
        for s in [
            "ostree-unverified-registry:h:5000/os:v1",
            "ostree-unverified-image:oci:/x:v1",
            "ostree-image-signed:docker://h:5000/os:v1",
        ] {
            assert_eq!(parse_ostree_imgref(s).unwrap().to_string(), s);
        }
        let e = parse_ostree_imgref("ostree-image-signed:oci:/x:v1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("registry images"), "{e}");
        for s in [
            "ostree-remote-image:origin:docker://h/os:v1",
            "ostree-remote-registry:origin:h/os:v1",
        ] {
            let e = parse_ostree_imgref(s).unwrap_err().to_string();
            assert!(e.contains("not supported yet"), "{e}");
        }
    }
}

//! Where a pull reads an image from: an OCI layout directory or archive,
//! or a registry. Each source gives the manifest and its digest, and copies
//! blobs verified against their digest and size.

use crate::error::{ContainerError, IoContext, Result};
use crate::imgref::ImageRef;
use crate::oci::{digest_hex, digest_of, REF_NAME};
use crate::registry::RegistryOptions;
use crate::sigstore::{self, Attachment};
use crate::MAX_MANIFEST;
use rustix::fd::OwnedFd;
use rustix::fs::{Mode, OFlags, ResolveFlags};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{Read, Seek, Write};

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

pub(super) fn too_big(what: &str, n: u64) -> ContainerError {
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

pub(super) fn open_source(img: &ImageRef, opts: &RegistryOptions) -> Result<Box<dyn Source>> {
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

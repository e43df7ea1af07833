//! Static deltas published beside an image in a registry, so that an
//! update fetches what changed between two commits rather than every layer
//! a change touched. ostree-ext's format has no such thing: a one-package
//! change re-sends the commit layer (every dirtree of the OS) and the
//! package database's layer, about 18× the package's size on our host
//! image. An ostree static delta between the two commits is about 1.2×.
//!
//! The delta is an OCI artifact in the image's repository: an image
//! manifest with `artifactType` [`ARTIFACT_TYPE`], the empty config, the
//! delta's superblock and its parts as blobs, `subject` naming the image's
//! manifest, and annotations naming both commits. Registries without the
//! OCI 1.1 referrers API (distribution 2.8) find it by the tag
//! [`tag`]`(image manifest digest, from commit)`, in the style of
//! cosign's `sha256-HEX.sig`. Clients that do not know it never see it.
//!
//! Nothing in the artifact is trusted: the superblock must go from a
//! commit the repository holds completely to the commit the image's
//! (verified) config names, and every object the delta writes is checked
//! against its checksum as the repository's static delta code applies it.
//! Any failure is reported and the pull falls back to the image's layers.

use crate::error::{ContainerError, IoContext, Result};
use crate::oci::{digest_hex, OciLayout, MANIFEST_MEDIA_TYPE};
use crate::registry::RegistryOptions;
use oxtree_object::Checksum;
use oxtree_repo::static_delta::{self, GenerateOptions};
use oxtree_repo::Repo;
use serde_json::{json, Value};
use std::sync::atomic::AtomicBool;

/// The artifact's type.
pub const ARTIFACT_TYPE: &str = "application/vnd.oxtree.static-delta.v1";
/// The superblock blob's media type.
pub const SUPERBLOCK_TYPE: &str = "application/vnd.oxtree.static-delta.superblock.v1";
/// A part blob's media type.
pub const PART_TYPE: &str = "application/vnd.oxtree.static-delta.part.v1";
/// OCI 1.1's empty config (`{}`).
const EMPTY_TYPE: &str = "application/vnd.oci.empty.v1+json";
pub const FROM_ANNOTATION: &str = "org.oxtree.delta.from";
pub const TO_ANNOTATION: &str = "org.oxtree.delta.to";
const PART_ANNOTATION: &str = "org.oxtree.delta.part";

/// The tag of the delta from commit `from` to the image whose manifest
/// has `manifest_digest`: `sha256-HEX.delta-FROM` (the commit's first 40
/// hex digits, to stay within a tag's 128 characters).
pub fn tag(manifest_digest: &str, from: &Checksum) -> Result<String> {
    let hex = digest_hex(manifest_digest)?;
    Ok(format!("sha256-{hex}.delta-{}", &from.to_hex()[..40]))
}

/// What [`publish`] pushed.
#[derive(Clone, Debug)]
pub struct PublishedDelta {
    pub from: Checksum,
    pub to: Checksum,
    /// `HOST/NAME:TAG` of the artifact.
    pub reference: String,
    /// The artifact's manifest digest.
    pub manifest_digest: String,
    /// Superblock and parts, in bytes.
    pub size: u64,
}

/// Generate the static delta `from → to` and push it beside the image
/// `image` (`HOST/NAME[:TAG]`, the one just pushed, whose manifest is
/// `manifest_digest` of `manifest_size` bytes). The delta carries every
/// object it needs (no fallback objects: a registry cannot serve loose
/// ostree objects).
pub fn publish(
    repo: &Repo,
    from: &Checksum,
    to: &Checksum,
    image: &str,
    (manifest_digest, manifest_size): (&str, u64),
    opts: &RegistryOptions,
    cancel: &AtomicBool,
) -> Result<PublishedDelta> {
    let work = tempfile::tempdir().ctx(|| "creating a temporary directory")?;
    let dir = work.path().join("delta");
    std::fs::create_dir(&dir).ctx(|| format!("creating {}", dir.display()))?;
    let gen = GenerateOptions {
        min_fallback_size: u64::MAX,
        output: Some(dir.join("superblock")),
        ..GenerateOptions::default()
    };
    static_delta::generate(repo, Some(from), to, &gen)?;
    let sb_bytes = std::fs::read(dir.join("superblock")).ctx(|| "reading the superblock")?;
    let (sb, _) = static_delta::parse_superblock_file(&sb_bytes)?;

    let layout = OciLayout::create(&work.path().join("oci"))?;
    let config = layout.put_blob(b"{}")?;
    let superblock = layout.put_blob(&sb_bytes)?;
    let mut blobs = vec![config.clone(), superblock.clone()];
    let mut layers = vec![json!({
        "mediaType": SUPERBLOCK_TYPE,
        "digest": superblock.digest,
        "size": superblock.size,
    })];
    let mut size = superblock.size;
    for i in 0..sb.parts.len() {
        if sb.inline_part(i).is_some() {
            continue;
        }
        let p = dir.join(i.to_string());
        let data = std::fs::read(&p).ctx(|| format!("reading {}", p.display()))?;
        let b = layout.put_blob(&data)?;
        size += b.size;
        layers.push(json!({
            "mediaType": PART_TYPE,
            "digest": b.digest,
            "size": b.size,
            "annotations": { PART_ANNOTATION: i.to_string() },
        }));
        blobs.push(b);
    }
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "artifactType": ARTIFACT_TYPE,
        "config": { "mediaType": EMPTY_TYPE, "digest": config.digest, "size": config.size },
        "layers": layers,
        "subject": {
            "mediaType": MANIFEST_MEDIA_TYPE,
            "digest": manifest_digest,
            "size": manifest_size,
        },
        "annotations": {
            FROM_ANNOTATION: from.to_hex(),
            TO_ANNOTATION: to.to_hex(),
        },
    });
    let (mblob, mbytes) = layout.put_json(&manifest)?;
    let r: oci_client::Reference = image.parse().map_err(|e| ContainerError::ImageRef {
        reference: image.to_string(),
        reason: format!("{e}"),
    })?;
    let reference = format!(
        "{}/{}:{}",
        r.registry(),
        r.repository(),
        tag(manifest_digest, from)?
    );
    crate::registry::push(
        &layout,
        &blobs,
        &mbytes,
        &reference,
        opts,
        &|_, _| {},
        cancel,
    )?;
    Ok(PublishedDelta {
        from: *from,
        to: *to,
        reference,
        manifest_digest: mblob.digest,
        size,
    })
}

/// A delta artifact's manifest, checked against what the pull expects.
#[derive(Debug)]
pub struct DeltaManifest {
    /// (digest, size) of the superblock.
    pub superblock: (String, u64),
    /// (index, digest, size) of each part stored as a blob.
    pub parts: Vec<(usize, String, u64)>,
}

impl DeltaManifest {
    pub fn size(&self) -> u64 {
        // Sizes come from the registry: no overflow.
        self.parts
            .iter()
            .fold(self.superblock.1, |n, p| n.saturating_add(p.2))
    }
}

/// Parse a delta artifact's manifest, refusing one that is not for the
/// image `manifest_digest` or not `from → to`.
pub fn parse_manifest(
    bytes: &[u8],
    manifest_digest: &str,
    from: &Checksum,
    to: &Checksum,
) -> Result<DeltaManifest> {
    let bad = |why: &str| ContainerError::Invalid(format!("static delta artifact: {why}"));
    if bytes.len() > crate::MAX_MANIFEST {
        return Err(bad("manifest too large"));
    }
    let v: Value = serde_json::from_slice(bytes).map_err(|e| bad(&e.to_string()))?;
    if v["artifactType"] != ARTIFACT_TYPE {
        return Err(bad("not an oxtree static delta"));
    }
    if v["subject"]["digest"] != manifest_digest {
        return Err(bad("made for another image manifest"));
    }
    if v["annotations"][FROM_ANNOTATION] != from.to_hex().as_str()
        || v["annotations"][TO_ANNOTATION] != to.to_hex().as_str()
    {
        return Err(bad("for other commits"));
    }
    let layers = v["layers"].as_array().ok_or_else(|| bad("no layers"))?;
    let desc = |l: &Value| -> Result<(String, u64)> {
        let d = l["digest"]
            .as_str()
            .ok_or_else(|| bad("a layer without digest"))?;
        digest_hex(d)?;
        let s = l["size"]
            .as_u64()
            .ok_or_else(|| bad("a layer without size"))?;
        Ok((d.to_string(), s))
    };
    let (first, rest) = layers.split_first().ok_or_else(|| bad("no superblock"))?;
    if first["mediaType"] != SUPERBLOCK_TYPE {
        return Err(bad("the first blob is not a superblock"));
    }
    let superblock = desc(first)?;
    if superblock.1 > crate::MAX_MANIFEST as u64 * 16 {
        return Err(bad("superblock too large"));
    }
    let mut parts = Vec::new();
    for l in rest {
        if l["mediaType"] != PART_TYPE {
            return Err(bad("a blob that is not a part"));
        }
        let i: usize = l["annotations"][PART_ANNOTATION]
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("a part without its index"))?;
        if parts.iter().any(|(j, _, _)| *j == i) {
            return Err(bad("a part listed twice"));
        }
        let (d, s) = desc(l)?;
        parts.push((i, d, s));
    }
    Ok(DeltaManifest { superblock, parts })
}

/// A delta a pull used.
#[derive(Clone, Debug)]
pub struct DeltaUse {
    /// The artifact's tag.
    pub tag: String,
    pub from: Checksum,
    /// Bytes fetched: superblock and parts.
    pub size: u64,
}

/// Look for the delta `from → to` beside the image `manifest_digest` and
/// apply it. `Ok(None)`: the registry has none. `limit`: the most worth
/// fetching (the image's layers together); a bigger delta is refused.
pub(crate) fn fetch_apply(
    src: &mut dyn crate::pull::Source,
    repo: &Repo,
    manifest_digest: &str,
    (from, to): (&Checksum, &Checksum),
    limit: u64,
    cancel: &AtomicBool,
) -> Result<Option<DeltaUse>> {
    let t = tag(manifest_digest, from)?;
    let Some(bytes) = src.tagged_manifest(&t)? else {
        return Ok(None);
    };
    let m = parse_manifest(&bytes, manifest_digest, from, to)?;
    if m.size() > limit {
        return Err(ContainerError::Invalid(format!(
            "static delta artifact {t}: {} bytes, more than the image's layers ({limit})",
            m.size()
        )));
    }
    let dir = tempfile::tempdir().ctx(|| "creating a temporary directory")?;
    let fetch = |src: &mut dyn crate::pull::Source, name: &str, digest: &str, size: u64| {
        if cancel.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(ContainerError::Cancelled);
        }
        let p = dir.path().join(name);
        let mut f = std::fs::File::create(&p).ctx(|| format!("creating {}", p.display()))?;
        src.blob(digest, size, &mut f)
    };
    fetch(src, "superblock", &m.superblock.0, m.superblock.1)?;
    let sb_bytes = std::fs::read(dir.path().join("superblock")).ctx(|| "reading the superblock")?;
    let (sb, _) = static_delta::parse_superblock_file(&sb_bytes)?;
    if sb.from.as_ref() != Some(from) || sb.to != *to {
        return Err(ContainerError::Invalid(format!(
            "static delta artifact {t}: its superblock is not {from} → {to}"
        )));
    }
    if !sb.fallbacks.is_empty() {
        return Err(ContainerError::Invalid(format!(
            "static delta artifact {t}: it needs fallback objects, which a registry cannot serve"
        )));
    }
    for i in 0..sb.parts.len() {
        if sb.inline_part(i).is_some() {
            continue;
        }
        let (_, d, s) = m.parts.iter().find(|(j, _, _)| *j == i).ok_or_else(|| {
            ContainerError::Invalid(format!("static delta artifact {t}: part {i} is missing"))
        })?;
        fetch(src, &i.to_string(), d, *s)?;
    }
    let spec = dir.path().to_str().ok_or_else(|| {
        ContainerError::Invalid("the temporary directory's path is not UTF-8".into())
    })?;
    let applied = static_delta::apply_offline(repo, spec)?;
    debug_assert_eq!(applied, *to);
    Ok(Some(DeltaUse {
        tag: t,
        from: *from,
        size: m.size(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csum(b: u8) -> Checksum {
        Checksum([b; 32])
    }

    fn manifest(from: &Checksum, to: &Checksum, subject: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "artifactType": ARTIFACT_TYPE,
            "layers": [
                {"mediaType": SUPERBLOCK_TYPE, "digest": format!("sha256:{}", "a".repeat(64)), "size": 10},
                {"mediaType": PART_TYPE, "digest": format!("sha256:{}", "b".repeat(64)), "size": 20,
                 "annotations": {PART_ANNOTATION: "0"}},
            ],
            "subject": {"digest": subject},
            "annotations": {FROM_ANNOTATION: from.to_hex(), TO_ANNOTATION: to.to_hex()},
        }))
        .unwrap()
    }

    #[test]
    fn tags_fit_and_name_both_ends() {
        let d = format!("sha256:{}", "c".repeat(64));
        let t = tag(&d, &csum(1)).unwrap();
        assert!(t.len() <= 128, "{t}");
        assert!(t.starts_with(&format!("sha256-{}.delta-0101", "c".repeat(64))));
        assert!(tag("sha256:XY", &csum(1)).is_err());
    }

    #[test]
    fn manifests_must_match_image_and_commits() {
        let d = format!("sha256:{}", "c".repeat(64));
        let (a, b) = (csum(1), csum(2));
        let m = parse_manifest(&manifest(&a, &b, &d), &d, &a, &b).unwrap();
        assert_eq!(m.size(), 30);
        assert_eq!(m.parts.len(), 1);
        let other = format!("sha256:{}", "e".repeat(64));
        assert!(parse_manifest(&manifest(&a, &b, &other), &d, &a, &b).is_err());
        assert!(parse_manifest(&manifest(&b, &a, &d), &d, &a, &b).is_err());
        assert!(parse_manifest(b"{", &d, &a, &b).is_err());
        let mut v: Value = serde_json::from_slice(&manifest(&a, &b, &d)).unwrap();
        v["layers"][1]["annotations"] = json!({});
        let bytes = serde_json::to_vec(&v).unwrap();
        assert!(parse_manifest(&bytes, &d, &a, &b).is_err());
    }
}

//! The images already pulled into a repository: listing them, and
//! dropping the layer refs that no stored image's manifest names.

use super::{META_MANIFEST, META_MANIFEST_DIGEST};
use crate::error::Result;
use crate::refescape;
use oci_spec::image::ImageManifest;
use oxtree_object::Checksum;
use oxtree_repo::Repo;

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

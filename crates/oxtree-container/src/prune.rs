//! `container image prune`: what a repository keeps of container images.
//! Removes the image refs asked for, then every layer ref no remaining
//! image names (`pull::gc_layers`), then the objects nothing reachable
//! from a ref needs (the repository's own prune, refs only). Commits that
//! hosts deployed from those images stay: deployments have refs of their
//! own.

use crate::error::{ContainerError, Result};
use crate::pull::{gc_layers, OstreeImageRef};
use crate::refescape;
use oxtree_repo::prune::PruneOptions;
use oxtree_repo::Repo;

/// What [`prune`] removed.
#[derive(Clone, Debug, Default)]
pub struct PruneReport {
    pub images_removed: usize,
    pub layer_refs_removed: usize,
    pub objects_deleted: u64,
    pub bytes_freed: u64,
}

/// Remove `images` (each must be stored), the layer refs no image needs
/// any more, and the objects no ref reaches.
pub fn prune(repo: &mut Repo, images: &[OstreeImageRef]) -> Result<PruneReport> {
    let mut names = Vec::new();
    for img in images {
        let name = refescape::image_ref(&img.imgref.to_string())?;
        if repo.read_ref(&name)?.is_none() {
            return Err(ContainerError::Invalid(format!(
                "image {} is not stored in this repository",
                img.imgref
            )));
        }
        names.push(name);
    }
    for name in &names {
        repo.write_ref(name, None, true)?;
    }
    let layer_refs_removed = gc_layers(repo)?;
    let r = repo.prune(
        &PruneOptions {
            refs_only: true,
            ..PruneOptions::default()
        },
        &|_, _| {},
    )?;
    Ok(PruneReport {
        images_removed: names.len(),
        layer_refs_removed,
        objects_deleted: r.deleted,
        bytes_freed: r.freed,
    })
}

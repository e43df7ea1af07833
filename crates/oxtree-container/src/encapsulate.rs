//! `encapsulate`: a commit as an OCI image in ostree-ext's format. The
//! commit layer comes first, then the content layers of the plan
//! (chunking.rs); the config and the manifest carry ostree-ext's labels
//! (`ostree.commit`, `ostree.final-diffid`, `containers.bootc`,
//! `ostree.bootable`, `version`), each content layer its
//! `ostree.components`. The same commit and options give the same digests.

use crate::chunking::{self, LayerPlan, ObjectInfo};
use crate::error::{ContainerError, Result};
use crate::imgref::ImageRef;
use crate::layer::{collect_objects, LayerWriter};
use crate::oci::{Blob, LayerBlob, OciLayout};
use crate::registry::{self, RegistryOptions};
use crate::{dpkg, Progress};
use oci_spec::image::{
    ConfigBuilder, DescriptorBuilder, HistoryBuilder, ImageConfigurationBuilder, ImageManifest,
    ImageManifestBuilder, MediaType, RootFsBuilder,
};
use oxtree_object::Checksum;
use oxtree_repo::Repo;
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicBool;

pub const COMMIT_LABEL: &str = "ostree.commit";
pub const DIFFID_LABEL: &str = "ostree.final-diffid";
pub const BOOTC_LABEL: &str = "containers.bootc";
pub const BOOTABLE_LABEL: &str = "ostree.bootable";
pub const LINUX_LABEL: &str = "ostree.linux";
pub const VERSION_LABEL: &str = "version";
pub const OCI_VERSION_LABEL: &str = "org.opencontainers.image.version";
pub const COMPONENTS_ANNOTATION: &str = "ostree.components";
pub const COMPONENT_SEPARATOR: char = ',';

#[derive(Clone, Debug)]
pub struct EncapsulateOptions {
    /// Extra labels (config and manifest annotations).
    pub labels: Vec<(String, String)>,
    /// The manifest of the previous build, for a stable layer plan.
    pub previous: Option<ImageManifest>,
    /// At most this many layers, the commit layer included.
    pub max_layers: u32,
    pub registry: RegistryOptions,
}

impl Default for EncapsulateOptions {
    fn default() -> Self {
        EncapsulateOptions {
            labels: Vec::new(),
            previous: None,
            max_layers: chunking::DEFAULT_MAX_LAYERS,
            registry: RegistryOptions::default(),
        }
    }
}

/// A layer of the written image.
#[derive(Clone, Debug)]
pub struct LayerSummary {
    pub digest: String,
    pub size: u64,
    pub description: String,
    pub components: Vec<String>,
}

/// What was written.
#[derive(Clone, Debug)]
pub struct Encapsulated {
    pub commit: Checksum,
    pub manifest_digest: String,
    pub manifest_size: u64,
    pub config_digest: String,
    pub layers: Vec<LayerSummary>,
    /// Blobs uploaded to a registry (the rest it had).
    pub pushed: Option<usize>,
}

/// Parse a manifest (a previous build's); refuses anything over 4 MiB.
pub fn parse_manifest(bytes: &[u8]) -> Result<ImageManifest> {
    if bytes.len() > crate::MAX_MANIFEST {
        return Err(ContainerError::Invalid(format!(
            "manifest is {} bytes (limit {})",
            bytes.len(),
            crate::MAX_MANIFEST
        )));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ContainerError::Invalid(format!("not an OCI image manifest: {e}")))
}

/// The `ostree.components` of a manifest's content layers.
pub fn prior_components(m: &ImageManifest) -> Vec<Vec<String>> {
    m.layers()
        .iter()
        .skip(1)
        .map(|l| {
            l.annotations()
                .as_ref()
                .and_then(|a| a.get(COMPONENTS_ANNOTATION))
                .map(|s| {
                    s.split(COMPONENT_SEPARATOR)
                        .filter(|c| !c.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect()
}

fn labels_of(
    repo: &Repo,
    commit: &Checksum,
    extra: &[(String, String)],
) -> Result<BTreeMap<String, String>> {
    let c = repo.load_commit(commit)?;
    let mut labels = BTreeMap::new();
    labels.insert(COMMIT_LABEL.to_string(), commit.to_hex());
    if let Some(oxtree_object::gvariant::Value::Bool(true)) = c.metadata.get("ostree.bootable") {
        labels.insert(BOOTABLE_LABEL.to_string(), "true".to_string());
        labels.insert(BOOTC_LABEL.to_string(), "1".to_string());
    }
    if let Some(v) = c.metadata.get_str("ostree.linux") {
        labels.insert(LINUX_LABEL.to_string(), v.to_string());
    }
    if let Some(v) = c.metadata.get_str("version") {
        labels.insert(VERSION_LABEL.to_string(), v.to_string());
        labels.insert(OCI_VERSION_LABEL.to_string(), v.to_string());
    }
    for (k, v) in extra {
        labels.insert(k.clone(), v.clone());
    }
    Ok(labels)
}

fn oci_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

fn invalid(e: impl std::fmt::Display) -> ContainerError {
    ContainerError::Invalid(e.to_string())
}

fn write_layer(
    repo: &Repo,
    layout: &OciLayout,
    cancel: &AtomicBool,
    body: impl FnOnce(&mut LayerWriter<'_, &mut crate::oci::LayerStream>) -> Result<()>,
) -> Result<LayerBlob> {
    let (tmp, mut stream) = layout.start_layer()?;
    let mut w = LayerWriter::new(repo, &mut stream, cancel);
    body(&mut w)?;
    w.finish()?;
    layout.finish_layer(tmp, stream)
}

/// Write `rev` of `repo` as an image to `dest`.
pub fn encapsulate(
    repo: &Repo,
    rev: &str,
    dest: &ImageRef,
    opts: &EncapsulateOptions,
    progress: &(dyn Fn(Progress) + Sync),
    cancel: &AtomicBool,
) -> Result<Encapsulated> {
    let commit = repo.resolve_rev(rev)?;
    let c = repo.load_commit(&commit)?;
    let labels = labels_of(repo, &commit, &opts.labels)?;
    let objects: BTreeMap<Checksum, ObjectInfo> = collect_objects(repo, &commit, cancel)?;
    let db = dpkg::read(repo, (c.root_tree, c.root_meta))?;
    let prior = opts.previous.as_ref().map(prior_components);
    let plan: Vec<LayerPlan> =
        chunking::plan(&objects, db.as_ref(), opts.max_layers, prior.as_deref())?;
    progress(Progress::Planned {
        layers: plan.len() + 1,
        objects: objects.len(),
        packages: db.as_ref().map(|d| d.packages.len()).unwrap_or(0),
    });

    // Registries and archives get a temporary layout.
    let tmpdir;
    let (root, tag) = match dest {
        ImageRef::OciDir { path, tag } => (path.clone(), tag.clone()),
        ImageRef::OciArchive { path, tag } => {
            let parent = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            tmpdir = tempfile::Builder::new()
                .prefix(".oxtree-oci-")
                .tempdir_in(parent)
                .map_err(|e| oxtree_io::IoError::new("creating a temporary layout", e))?;
            (tmpdir.path().to_path_buf(), tag.clone())
        }
        ImageRef::Registry { .. } => {
            tmpdir = tempfile::Builder::new()
                .prefix("oxtree-oci-")
                .tempdir_in(std::env::var_os("TMPDIR").unwrap_or("/var/tmp".into()))
                .map_err(|e| oxtree_io::IoError::new("creating a temporary layout", e))?;
            (tmpdir.path().to_path_buf(), None)
        }
    };
    let layout = OciLayout::create(&root)?;

    let total = plan.len() + 1;
    let done = std::sync::atomic::AtomicUsize::new(0);
    let report = |b: &LayerBlob, description: &str| {
        let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        progress(Progress::LayerWritten {
            done: n,
            total,
            digest: b.blob.digest.clone(),
            size: b.blob.size,
            description: description.to_string(),
        });
    };
    let commit_layer = write_layer(repo, &layout, cancel, |w| w.commit_layer(&commit))?;
    report(&commit_layer, "ostree commit");
    let content: Vec<LayerBlob> = plan
        .par_iter()
        .map(|l| {
            let b = write_layer(repo, &layout, cancel, |w| {
                w.content_layer(&l.objects, &objects)
            })?;
            report(&b, &l.description);
            Ok(b)
        })
        .collect::<Result<_>>()?;

    let mut labels = labels;
    let last = content.last().unwrap_or(&commit_layer);
    labels.insert(DIFFID_LABEL.to_string(), last.diff_id.clone());
    let created = chrono::DateTime::from_timestamp(c.timestamp as i64, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let description = if c.subject.is_empty() {
        format!("ostree export of commit {commit}")
    } else {
        c.subject.clone()
    };

    let mut history = vec![HistoryBuilder::default()
        .created(created.clone())
        .created_by(description)
        .build()
        .map_err(invalid)?];
    let mut descs = vec![DescriptorBuilder::default()
        .media_type(MediaType::ImageLayerGzip)
        .digest(
            commit_layer
                .blob
                .digest
                .parse::<oci_spec::image::Digest>()
                .map_err(invalid)?,
        )
        .size(commit_layer.blob.size)
        .build()
        .map_err(invalid)?];
    let mut summaries = vec![LayerSummary {
        digest: commit_layer.blob.digest.clone(),
        size: commit_layer.blob.size,
        description: "ostree commit".into(),
        components: Vec::new(),
    }];
    for (l, b) in plan.iter().zip(&content) {
        let comps = l.components.join(&COMPONENT_SEPARATOR.to_string());
        descs.push(
            DescriptorBuilder::default()
                .media_type(MediaType::ImageLayerGzip)
                .digest(
                    b.blob
                        .digest
                        .parse::<oci_spec::image::Digest>()
                        .map_err(invalid)?,
                )
                .size(b.blob.size)
                .annotations(HashMap::from([(COMPONENTS_ANNOTATION.to_string(), comps)]))
                .build()
                .map_err(invalid)?,
        );
        history.push(
            HistoryBuilder::default()
                .created(created.clone())
                .created_by(l.description.clone())
                .build()
                .map_err(invalid)?,
        );
        summaries.push(LayerSummary {
            digest: b.blob.digest.clone(),
            size: b.blob.size,
            description: l.description.clone(),
            components: l.components.clone(),
        });
    }
    let diff_ids: Vec<String> = std::iter::once(&commit_layer)
        .chain(&content)
        .map(|b| b.diff_id.clone())
        .collect();
    let label_map: HashMap<String, String> =
        labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let config = ImageConfigurationBuilder::default()
        .architecture(oci_arch())
        .os("linux")
        .created(created.clone())
        .config(
            ConfigBuilder::default()
                .labels(label_map.clone())
                .build()
                .map_err(invalid)?,
        )
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(diff_ids)
                .build()
                .map_err(invalid)?,
        )
        .history(history)
        .build()
        .map_err(invalid)?;
    let (config_blob, _) = layout.put_json(&serde_json::to_value(&config).map_err(invalid)?)?;
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(
            DescriptorBuilder::default()
                .media_type(MediaType::ImageConfig)
                .digest(
                    config_blob
                        .digest
                        .parse::<oci_spec::image::Digest>()
                        .map_err(invalid)?,
                )
                .size(config_blob.size)
                .build()
                .map_err(invalid)?,
        )
        .layers(descs)
        .annotations(label_map)
        .build()
        .map_err(invalid)?;
    let (manifest_blob, manifest_bytes) =
        layout.put_json(&serde_json::to_value(&manifest).map_err(invalid)?)?;
    let platform = serde_json::json!({ "architecture": oci_arch(), "os": "linux" });

    let mut pushed = None;
    match dest {
        ImageRef::OciDir { .. } => layout.add_manifest(&manifest_blob, tag.as_deref(), platform)?,
        ImageRef::OciArchive { path, .. } => {
            layout.add_manifest(&manifest_blob, tag.as_deref(), platform)?;
            layout.write_archive(path)?;
        }
        ImageRef::Registry { reference } => {
            let mut blobs: Vec<Blob> = vec![config_blob.clone(), commit_layer.blob.clone()];
            blobs.extend(content.iter().map(|b| b.blob.clone()));
            let n = registry::push(
                &layout,
                &blobs,
                &manifest_bytes,
                reference,
                &opts.registry,
                &|b, uploaded| {
                    progress(Progress::BlobPushed {
                        digest: b.digest.clone(),
                        size: b.size,
                        uploaded,
                    })
                },
                cancel,
            )?;
            pushed = Some(n);
        }
    }
    Ok(Encapsulated {
        commit,
        manifest_digest: manifest_blob.digest,
        manifest_size: manifest_blob.size,
        config_digest: config_blob.digest,
        layers: summaries,
        pushed,
    })
}

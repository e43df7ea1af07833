//! The OS as an OCI image, in ostree-ext's container format (what bootc
//! and rpm-ostree read): `encapsulate` writes a commit as an image chunked
//! by Debian package to an OCI layout, an OCI archive or a registry; `pull`
//! brings one back into a repository, the same commit.
//!
//! Modules: `imgref` (image references), `dpkg` (the package database in
//! a commit), `chunking` (the layer plan), `layer` (ostree-ext's tar
//! layers), `oci` (layouts, blobs, canonical JSON), `registry` (push),
//! `encapsulate` (all of it together), `import` (a layer back into a
//! repository), `pull` (an image into a repository), `prune` (removing images
//! and what only they needed), `derived` (layers a
//! container build added, applied over the image's commit), `delta`
//! (static deltas published beside an image), `refescape` (ref names),
//! `policy` (containers-policy.json: which images an
//! `ostree-image-signed:` pull accepts), `sigstore` (the signatures it
//! checks).

pub mod chunking;
pub mod delta;
pub mod derived;
pub mod dpkg;
pub mod encapsulate;
pub mod error;
pub mod imgref;
pub mod import;
pub mod layer;
pub mod oci;
pub mod policy;
pub mod prune;
pub mod pull;
pub mod refescape;
pub mod registry;
pub mod sigstore;

pub use encapsulate::{encapsulate, EncapsulateOptions, Encapsulated, LayerSummary};
pub use error::{ContainerError, Result};
pub use imgref::ImageRef;
pub use registry::RegistryOptions;

/// The largest manifest or config document accepted.
pub const MAX_MANIFEST: usize = 4 << 20;

/// What a long operation reports as it goes.
#[derive(Clone, Debug)]
pub enum Progress {
    /// The plan: layers (commit layer included), content objects, packages.
    Planned {
        layers: usize,
        objects: usize,
        packages: usize,
    },
    LayerWritten {
        done: usize,
        total: usize,
        digest: String,
        size: u64,
        description: String,
    },
    /// A static delta published beside the image brought its commit.
    DeltaApplied { tag: String, size: u64 },
    /// A blob checked against a registry, and whether it was uploaded.
    BlobPushed {
        digest: String,
        size: u64,
        uploaded: bool,
    },
}

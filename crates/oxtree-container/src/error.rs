//! The crate's error type: what went wrong, typed, for the CLI to render.

use oxtree_io::IoError;
use oxtree_repo::RepoError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ContainerError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// An image reference that cannot be parsed or is not supported.
    #[error("image reference {reference:?}: {reason}")]
    ImageRef { reference: String, reason: String },
    /// Bad input: options, a previous manifest, a commit's dpkg database.
    #[error("{0}")]
    Invalid(String),
    /// The registry refused or failed a request.
    #[error("registry {registry}: {reason}")]
    Registry { registry: String, reason: String },
    /// An image without `ostree.bootable` (or `containers.bootc=1`) where
    /// a bootable one is needed.
    #[error("image {0} is not bootable: its config has no ostree.bootable=true or containers.bootc=1 label")]
    NotBootable(String),
    /// A containers-policy.json that cannot be read or parsed, or whose
    /// requirement for an image is not supported.
    #[error("signature policy {path}: {reason}")]
    Policy { path: String, reason: String },
    /// An image the signature policy does not accept (no signature, a bad
    /// one, a `reject` scope): nothing was imported.
    #[error("image {image} refused by the signature policy {policy}: {reason}")]
    Refused {
        image: String,
        policy: String,
        reason: String,
    },
    #[error("cancelled")]
    Cancelled,
}

pub type Result<T, E = ContainerError> = std::result::Result<T, E>;

oxtree_io::io_context!(pub(crate) ContainerError);

//! Errors of the update loop. Refusals of the lock server and closed
//! windows are not errors but [`crate::Step`]s.

use std::path::Path;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpdatesError {
    /// A drop-in could not be used; `path` names it.
    #[error("{path}: {msg}")]
    Config { path: String, msg: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The machine-id or the state file is unusable.
    #[error("{0}")]
    Invalid(String),
    /// A host transaction failed (pull, stage, status).
    #[error(transparent)]
    Host(#[from] oxtree_host::HostError),
    #[error("the reboot command failed: {0}")]
    Reboot(#[source] std::io::Error),
}

impl UpdatesError {
    pub(crate) fn io(p: &Path, source: std::io::Error) -> UpdatesError {
        UpdatesError::Io {
            context: p.display().to_string(),
            source,
        }
    }
}

pub type Result<T, E = UpdatesError> = std::result::Result<T, E>;

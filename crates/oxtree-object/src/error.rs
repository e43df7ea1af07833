//! Errors raised while encoding, decoding or validating objects.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ObjectError {
    #[error("invalid checksum {0:?}: expected 64 lowercase hex digits")]
    InvalidChecksum(String),
    #[error("invalid object type {0:?}")]
    InvalidObjectType(String),
    /// ostree's wording (`Invalid / in filename ../afile`), which scripts match.
    #[error("{reason} {name}")]
    InvalidName { name: String, reason: &'static str },
    #[error("malformed {what}: {reason}")]
    Malformed { what: &'static str, reason: String },
    #[error("compressed content is corrupt: {0}")]
    Compression(String),
    #[error("{what}")]
    Io {
        what: &'static str,
        source: std::io::Error,
    },
}

impl ObjectError {
    pub fn malformed(what: &'static str, reason: impl std::fmt::Display) -> Self {
        ObjectError::Malformed {
            what,
            reason: reason.to_string(),
        }
    }
}

pub type Result<T> = std::result::Result<T, ObjectError>;

//! Errors of transport operations: configuration, HTTP, verification.

pub use oxtree_io::IoError;
use oxtree_object::ObjectError;
use oxtree_repo::RepoError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum TransportError {
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error(transparent)]
    Object(#[from] ObjectError),
    #[error("remote '{0}' not found")]
    NoSuchRemote(String),
    #[error("remote '{0}' already exists")]
    RemoteExists(String),
    #[error("invalid remote configuration: {0}")]
    Config(String),
    /// Verification the remote asks for and oxtree cannot do yet.
    #[error("{0}")]
    Unsupported(String),
    /// A signature is missing, malformed or not trusted.
    #[error("{0}")]
    Signature(String),
    #[error("fetching {url}: {reason}")]
    Http { url: String, reason: String },
    #[error("fetching {url}: not found (HTTP 404)")]
    NotFound { url: String },
    #[error("URI {url} exceeded maximum size of {limit} bytes")]
    TooLarge { url: String, limit: u64 },
    /// A metalink document that cannot be used, or a target that does
    /// not match it.
    #[error("metalink {url}: {source}")]
    Metalink {
        url: String,
        source: crate::metalink::MetalinkError,
    },
    /// No URL of a metalink served the file it describes.
    #[error("metalink {url}: Exhausted {count} metalink targets, last error: {last}")]
    MetalinkExhausted {
        url: String,
        count: usize,
        last: String,
    },
    #[error("{what}: {reason}")]
    Bad { what: String, reason: String },
    /// The pull was cancelled (`PullOptions::cancel`); no ref moved.
    #[error("cancelled")]
    Cancelled,
    #[error(transparent)]
    Io(#[from] IoError),
}

impl TransportError {
    pub fn bad(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        TransportError::Bad {
            what: what.into(),
            reason: reason.to_string(),
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        TransportError::Io(IoError::new(context, source))
    }
}

pub type Result<T> = std::result::Result<T, TransportError>;

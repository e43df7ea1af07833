//! Errors of repository operations, each carrying what was being done.

pub use oxtree_io::IoError;
use oxtree_object::{Checksum, ObjectError, ObjectType};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum RepoError {
    #[error(transparent)]
    Io(#[from] IoError),
    /// The repository's directory cannot be opened.
    #[error("opening repository {path}")]
    OpenDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Object(#[from] ObjectError),
    #[error("object {checksum}.{kind}: {reason}")]
    BadObject {
        checksum: Checksum,
        kind: ObjectType,
        reason: String,
    },
    /// ostree's wording, which scripts match: "Couldn't find file object"
    /// for content, "No such metadata object" for the rest.
    #[error("{}", missing_object(checksum, kind))]
    MissingObject {
        checksum: Checksum,
        kind: ObjectType,
    },
    #[error("Refspec '{0}' not found")]
    RefNotFound(String),
    #[error("Invalid ref name '{0}'")]
    InvalidRef(String),
    #[error("invalid repository config: {0}")]
    Config(String),
    #[error("{0}")]
    Invalid(String),
    #[error("timed out after {0} s waiting for the repository lock (another process holds it)")]
    LockTimeout(u64),
    #[error("not enough free space: {0}")]
    NoSpace(String),
    /// ostree's words ("No such file or directory"), which scripts match.
    #[error("{0}: No such file or directory (not in the commit)")]
    NoSuchPath(String),
    /// A path in a commit goes through a file (ostree's words).
    #[error("{0}: Not a directory")]
    NotADirectory(String),
    /// A file mode a bare-user-only repository cannot hold (setuid,
    /// setgid, sticky, world-writable), in ostree's words.
    #[error("Content object {}: invalid mode 0{mode:04o} with bits 0{:04o}", .checksum.map(|c| c.to_hex()).unwrap_or_else(|| "(new)".into()), mode & 0o7777 & !0o775)]
    BareUserOnlyMode {
        checksum: Option<Checksum>,
        mode: u32,
    },
    /// A failure asked for through `OSTREE_REPO_TEST_ERROR` (ostree's
    /// fault injection for test suites).
    #[error("OSTREE_REPO_TEST_ERROR_{0} specified")]
    TestError(&'static str),
}

pub type Result<T> = std::result::Result<T, RepoError>;

fn missing_object(c: &Checksum, kind: &ObjectType) -> String {
    if *kind == ObjectType::File {
        format!("Couldn't find file object '{c}'")
    } else {
        format!("No such metadata object {c}.{kind}")
    }
}

oxtree_io::io_context!(pub RepoError);

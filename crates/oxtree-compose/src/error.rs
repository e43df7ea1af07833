//! Errors of compose and layering, each carrying what was being done.

pub use oxtree_io::IoError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ComposeError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error(transparent)]
    Repo(#[from] oxtree_repo::RepoError),
    #[error(transparent)]
    Sysroot(#[from] oxtree_sysroot::SysrootError),
    /// A command (in the sandbox or on the host) exited unsuccessfully.
    #[error("{command} failed ({status}){}", fmt_tail(.stderr_tail))]
    Command {
        command: String,
        status: String,
        /// The last lines of its standard error.
        stderr_tail: String,
    },
    /// The treefile cannot be read or is invalid.
    #[error("treefile {path}: {message}")]
    Treefile { path: String, message: String },
    /// The root does not have the shape an operation needs.
    #[error("{0}")]
    Layout(String),
    /// The dpkg database of a root cannot be parsed.
    #[error("dpkg database: {0}")]
    Dpkg(String),
    /// Commit metadata has an unexpected shape.
    #[error("commit {commit}: {message}")]
    Metadata { commit: String, message: String },
    /// The initramfs's `oxtree-prepare-root` is not beside `oxtree`.
    #[error(
        "{path} is missing: it is built with oxtree (cargo build) and goes into the initramfs"
    )]
    MissingPrepareRoot { path: String },
    /// Package layering cannot do what was asked (the message says why).
    #[error("{0}")]
    Layer(String),
}

fn fmt_tail(tail: &str) -> String {
    if tail.trim().is_empty() {
        String::new()
    } else {
        format!(":\n{}", tail.trim_end())
    }
}

pub type Result<T> = std::result::Result<T, ComposeError>;

oxtree_io::io_context!(pub(crate) ComposeError);

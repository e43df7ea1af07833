//! Errors of compose and layering, each carrying what was being done.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ComposeError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Repo(#[from] oxtree_repo::RepoError),
    #[error(transparent)]
    Sysroot(#[from] oxtree_sysroot::SysrootError),
}

pub type Result<T> = std::result::Result<T, ComposeError>;

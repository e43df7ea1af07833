//! Errors an agent can tell apart: the sysroot is busy, the request is
//! bad, the operation was cancelled, or it failed. "No update" is not an
//! error but an outcome ([`crate::UpgradeOutcome::NoChange`]).

use oxtree_compose::ComposeError;
use oxtree_container::ContainerError;
use oxtree_repo::RepoError;
use oxtree_sysroot::SysrootError;
use oxtree_transport::TransportError;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug)]
#[non_exhaustive]
pub enum HostError {
    /// Another process holds the sysroot lock (only with
    /// [`crate::LockMode::Try`]); try again later.
    Busy(String),
    /// The request cannot be done as asked: a bad or unknown refspec, an
    /// unknown package, nothing to do, conflicting options, a refused
    /// downgrade. Nothing was changed.
    BadRequest(String),
    /// The [`crate::Cancel`] token was set; nothing was deployed and no
    /// ref moved.
    Cancelled,
    /// Anything else; `context` says what was being done. It displays as
    /// `context` with `source` as its source; without a context (empty) it
    /// is `source` itself, its text and its sources.
    Failed { context: String, source: BoxError },
}

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostError::Busy(m) | HostError::BadRequest(m) => f.write_str(m),
            HostError::Cancelled => f.write_str("cancelled"),
            HostError::Failed { context, source } if context.is_empty() => source.fmt(f),
            HostError::Failed { context, .. } => f.write_str(context),
        }
    }
}

impl std::error::Error for HostError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HostError::Failed { context, source } if context.is_empty() => source.source(),
            HostError::Failed { source, .. } => Some(&**source),
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, HostError>;

impl HostError {
    pub fn bad(msg: impl Into<String>) -> HostError {
        HostError::BadRequest(msg.into())
    }

    fn failed(source: impl Into<BoxError>) -> HostError {
        HostError::Failed {
            context: String::new(),
            source: source.into(),
        }
    }

    /// Say what was being done (only failures carry it; the other kinds
    /// already say what is wrong).
    pub fn context(self, what: impl Into<String>) -> HostError {
        match self {
            HostError::Failed { context, source } => HostError::Failed {
                context: if context.is_empty() {
                    what.into()
                } else {
                    format!("{}: {context}", what.into())
                },
                source,
            },
            e => e,
        }
    }

    /// A short machine-readable kind: `busy`, `bad-request`, `cancelled`,
    /// `failed` (for an API's error bodies).
    pub fn kind(&self) -> &'static str {
        match self {
            HostError::Busy(_) => "busy",
            HostError::BadRequest(_) => "bad-request",
            HostError::Cancelled => "cancelled",
            HostError::Failed { .. } => "failed",
        }
    }
}

impl From<RepoError> for HostError {
    fn from(e: RepoError) -> Self {
        match e {
            RepoError::RefNotFound(_) | RepoError::InvalidRef(_) => {
                HostError::BadRequest(e.to_string())
            }
            RepoError::LockTimeout(_) => HostError::Busy(e.to_string()),
            e => HostError::failed(e),
        }
    }
}

impl From<SysrootError> for HostError {
    fn from(e: SysrootError) -> Self {
        match e {
            SysrootError::Busy(_) => HostError::Busy(e.to_string()),
            SysrootError::Repo(r) => r.into(),
            SysrootError::NoStateroot(_)
            | SysrootError::InvalidStateroot(_)
            | SysrootError::NoSuchIndex { .. }
            | SysrootError::Refused(_) => HostError::BadRequest(e.to_string()),
            e => HostError::failed(e),
        }
    }
}

impl From<TransportError> for HostError {
    fn from(e: TransportError) -> Self {
        match e {
            TransportError::Cancelled => HostError::Cancelled,
            TransportError::NoSuchRemote(_) => HostError::BadRequest(e.to_string()),
            e => HostError::failed(e),
        }
    }
}

impl From<ComposeError> for HostError {
    fn from(e: ComposeError) -> Self {
        match e {
            ComposeError::Sysroot(s) => s.into(),
            ComposeError::Repo(r) => r.into(),
            // Invalid package names and requests layering cannot do.
            ComposeError::Layer(_) => HostError::BadRequest(e.to_string()),
            // apt does not know a requested package.
            ComposeError::Command {
                ref stderr_tail, ..
            } if stderr_tail.contains("Unable to locate package") => {
                HostError::BadRequest(e.to_string())
            }
            e => HostError::failed(e),
        }
    }
}

impl From<ContainerError> for HostError {
    fn from(e: ContainerError) -> Self {
        match e {
            ContainerError::Cancelled => HostError::Cancelled,
            ContainerError::Repo(r) => r.into(),
            // Self-contained messages: the image, and the policy file.
            ContainerError::ImageRef { .. }
            | ContainerError::NotBootable(_)
            | ContainerError::Policy { .. }
            | ContainerError::Refused { .. } => HostError::BadRequest(e.to_string()),
            e => HostError::failed(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let busy: HostError = SysrootError::Busy("/s".into()).into();
        assert_eq!(busy.kind(), "busy");
        let bad: HostError = SysrootError::Repo(RepoError::RefNotFound("x:y".into())).into();
        assert!(matches!(bad, HostError::BadRequest(ref m) if m == "Refspec 'x:y' not found"));
        let c: HostError = TransportError::Cancelled.into();
        assert!(matches!(c, HostError::Cancelled));
        let apt: HostError = ComposeError::Command {
            command: "apt-get install".into(),
            status: "exit status: 100".into(),
            stderr_tail: "E: Unable to locate package nosuch".into(),
        }
        .into();
        assert_eq!(apt.kind(), "bad-request");
        assert!(apt.to_string().contains("Unable to locate package nosuch"));
        let r: HostError = SysrootError::Refused("pass --os".into()).into();
        assert_eq!(r.kind(), "bad-request");
        let f: HostError = SysrootError::Invalid("boom".into()).into();
        let f = f.context("deploying").context("upgrading");
        assert_eq!(f.kind(), "failed");
        assert_eq!(f.to_string(), "upgrading: deploying");
        assert_eq!(
            oxtree_io::Chain(&f).to_string(),
            "upgrading: deploying: boom"
        );
        // Context never hides the kind of a bad request.
        let b = HostError::bad("no").context("x");
        assert_eq!(b.to_string(), "no");
    }
}

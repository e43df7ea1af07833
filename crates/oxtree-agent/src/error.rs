//! The agent's errors: configuration, I/O, TLS and client-side HTTP.

use std::path::Path;
use thiserror::Error;

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AgentError {
    #[error("{0}")]
    Config(String),
    #[error("{path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS: {0}")]
    Tls(String),
    /// Talking to an agent (client side).
    #[error("{0}")]
    Client(String),
    /// The agent answered with an error status.
    #[error("{message} ({status} {kind})")]
    Api {
        status: u16,
        kind: String,
        message: String,
    },
}

impl AgentError {
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> AgentError {
        AgentError::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }

    pub fn tls(e: impl std::fmt::Display) -> AgentError {
        AgentError::Tls(e.to_string())
    }

    pub fn client(e: impl std::fmt::Display) -> AgentError {
        AgentError::Client(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, AgentError>;

//! The errors of unit, journal and network management, typed so that the
//! agent can tell a bad request (400) from a missing unit or link (404),
//! a refusal (403/409), an absent bus (503) and a failure (500).

use thiserror::Error;

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SystemError {
    /// A unit or link name, address or option that is not valid.
    #[error("{0}")]
    BadRequest(String),
    #[error("no such unit {0}")]
    NoSuchUnit(String),
    #[error("no such network link {0}")]
    NoSuchLink(String),
    /// systemd refused (a masked unit, a unit that cannot be started by
    /// request, ...).
    #[error("{unit}: {message}")]
    Refused { unit: String, message: String },
    #[error("the caller may not do this: {0}")]
    AccessDenied(String),
    /// The system bus or the service on it is not there (no systemd, no
    /// systemd-networkd).
    #[error("{service} is not available: {message}")]
    Unavailable { service: String, message: String },
    /// The job ran, and the unit ended up failed.
    #[error("{unit}: {action} failed: the unit is {state} (result: {result})")]
    JobFailed {
        unit: String,
        action: String,
        state: String,
        result: String,
    },
    #[error("{unit}: {action} did not finish within {secs} s")]
    Timeout {
        unit: String,
        action: String,
        secs: u64,
    },
    /// Any other D-Bus error.
    #[error("D-Bus: {0}")]
    Bus(String),
    /// journalctl could not be run or said no.
    #[error("journalctl: {0}")]
    Journal(String),
    #[error(transparent)]
    Io(#[from] oxtree_io::IoError),
}

pub type Result<T> = std::result::Result<T, SystemError>;

oxtree_io::io_context!(pub(crate) SystemError);

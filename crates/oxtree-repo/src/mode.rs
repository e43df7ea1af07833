//! RepoMode: how objects are stored on disk.

use crate::error::{RepoError, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RepoMode {
    /// Real files with real owners, modes and xattrs (needs root).
    Bare,
    /// Content as the user's files; owner/mode/xattrs in `user.ostreemeta`.
    BareUser,
    /// Content only; owners and xattrs are canonicalized away at commit.
    BareUserOnly,
    /// Compressed `.filez` objects, for serving over HTTP.
    Archive,
}

impl RepoMode {
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "bare" => RepoMode::Bare,
            "bare-user" => RepoMode::BareUser,
            "bare-user-only" => RepoMode::BareUserOnly,
            "archive" | "archive-z2" => RepoMode::Archive,
            other => {
                return Err(RepoError::Config(format!(
                    "unknown repository mode '{other}' (expected bare, bare-user, bare-user-only or archive)"
                )))
            }
        })
    }

    /// The spelling written to `config` (ostree writes `archive-z2`).
    pub fn config_name(self) -> &'static str {
        match self {
            RepoMode::Bare => "bare",
            RepoMode::BareUser => "bare-user",
            RepoMode::BareUserOnly => "bare-user-only",
            RepoMode::Archive => "archive-z2",
        }
    }

    pub fn is_archive(self) -> bool {
        self == RepoMode::Archive
    }
}

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

/// ostree's rule for `--bareuseronly-files` (pull and pull-local): a
/// regular file's mode has no bits outside 0775, so no setuid, setgid or
/// world-writable content enters from a source that should not have it.
pub fn check_bareuseronly_mode(csum: &oxtree_object::Checksum, mode: u32) -> Result<()> {
    const S_IFMT: u32 = 0o170000;
    const S_IFREG: u32 = 0o100000;
    let bits = mode & !S_IFMT & !0o775;
    if mode & S_IFMT == S_IFREG && bits != 0 {
        return Err(RepoError::Invalid(format!(
            "Content object {csum}: invalid mode 0{:04o} with bits 0{bits:04o}",
            mode & !S_IFMT
        )));
    }
    Ok(())
}

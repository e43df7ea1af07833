//! ObjectType: the kinds of loose objects and their file-name extensions.

use crate::error::{ObjectError, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectType {
    File = 1,
    DirTree = 2,
    DirMeta = 3,
    Commit = 4,
    TombstoneCommit = 5,
    CommitMeta = 6,
    PayloadLink = 7,
    FileXattrs = 8,
    FileXattrsLink = 9,
}

impl ObjectType {
    pub const ALL: [ObjectType; 9] = [
        ObjectType::File,
        ObjectType::DirTree,
        ObjectType::DirMeta,
        ObjectType::Commit,
        ObjectType::TombstoneCommit,
        ObjectType::CommitMeta,
        ObjectType::PayloadLink,
        ObjectType::FileXattrs,
        ObjectType::FileXattrsLink,
    ];

    /// The name ostree uses on the command line and in loose paths.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectType::File => "file",
            ObjectType::DirTree => "dirtree",
            ObjectType::DirMeta => "dirmeta",
            ObjectType::Commit => "commit",
            ObjectType::TombstoneCommit => "tombstone-commit",
            ObjectType::CommitMeta => "commitmeta",
            ObjectType::PayloadLink => "payload-link",
            ObjectType::FileXattrs => "file-xattrs",
            ObjectType::FileXattrsLink => "file-xattrs-link",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| ObjectError::InvalidObjectType(s.to_string()))
    }

    pub fn from_u8(v: u8) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|t| *t as u8 == v)
            .ok_or_else(|| ObjectError::InvalidObjectType(v.to_string()))
    }

    /// Metadata objects are GVariants whose checksum is over their bytes.
    pub fn is_meta(self) -> bool {
        matches!(
            self,
            ObjectType::DirTree
                | ObjectType::DirMeta
                | ObjectType::Commit
                | ObjectType::TombstoneCommit
                | ObjectType::CommitMeta
        )
    }

    /// The loose-object file extension; in archive repos file objects are
    /// compressed and take a trailing `z`.
    pub fn extension(self, archive: bool) -> &'static str {
        match (self, archive) {
            (ObjectType::File, true) => "filez",
            (t, _) => t.as_str(),
        }
    }

    /// Parse a loose extension back (both `file` and `filez` mean File).
    pub fn from_extension(ext: &str) -> Option<Self> {
        if ext == "filez" {
            return Some(ObjectType::File);
        }
        Self::parse(ext).ok()
    }
}

impl std::fmt::Display for ObjectType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

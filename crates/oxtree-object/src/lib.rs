//! The ostree object model: what a commit, a directory tree, a directory's
//! metadata and a file object are, byte for byte as libostree writes them.
//!
//! This crate owns formats only. It never touches the filesystem and never
//! prints; the repository crate decides where the bytes live.

pub mod checksum;
pub mod commit;
pub mod dirmeta;
pub mod dirtree;
pub mod error;
pub mod file;
pub mod gvariant;
pub mod name;
pub mod objtype;
pub mod sizes;
pub mod static_delta;
pub mod text;
pub mod xattrs;

pub use checksum::{Checksum, Hasher};
pub use commit::{Commit, Metadata};
pub use dirmeta::DirMeta;
pub use dirtree::{DirEntry, DirTree, FileEntry};
pub use error::{ObjectError, Result};
pub use file::{ArchiveHeader, FileHeader};
pub use objtype::ObjectType;
pub use xattrs::Xattrs;

/// File type bits, as in `<sys/stat.h>`. Kept here so the format code does not
/// depend on a platform crate.
pub mod mode {
    pub const S_IFMT: u32 = 0o170000;
    pub const S_IFDIR: u32 = 0o040000;
    pub const S_IFREG: u32 = 0o100000;
    pub const S_IFLNK: u32 = 0o120000;
    pub const PERMS: u32 = 0o7777;

    pub fn is_dir(mode: u32) -> bool {
        mode & S_IFMT == S_IFDIR
    }
    pub fn is_reg(mode: u32) -> bool {
        mode & S_IFMT == S_IFREG
    }
    pub fn is_lnk(mode: u32) -> bool {
        mode & S_IFMT == S_IFLNK
    }
}

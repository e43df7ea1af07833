//! DirMeta: a directory's owner, mode and xattrs, `(uuua(ayay))`.

use crate::checksum::Checksum;
use crate::error::{ObjectError, Result};
use crate::gvariant::{be32, decode, encode, from_be32};
use crate::mode;
use crate::xattrs::Xattrs;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DirMeta {
    pub uid: u32,
    pub gid: u32,
    /// Full mode, including S_IFDIR.
    pub mode: u32,
    pub xattrs: Xattrs,
}

type Wire = (u32, u32, u32, Vec<(Vec<u8>, Vec<u8>)>);

impl DirMeta {
    pub fn encode(&self) -> Vec<u8> {
        let w: Wire = (
            be32(self.uid),
            be32(self.gid),
            be32(self.mode),
            self.xattrs.wire().clone(),
        );
        encode(&w)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let (uid, gid, m, x): Wire = decode("dirmeta", bytes)?;
        let dm = DirMeta {
            uid: from_be32(uid),
            gid: from_be32(gid),
            mode: from_be32(m),
            xattrs: Xattrs::from_wire(x)?,
        };
        if !mode::is_dir(dm.mode) || dm.mode & !(mode::S_IFMT | mode::PERMS) != 0 {
            return Err(ObjectError::malformed(
                "dirmeta",
                format!("invalid directory mode 0{:o}", dm.mode),
            ));
        }
        Ok(dm)
    }

    pub fn checksum(&self) -> Checksum {
        Checksum::of(&self.encode())
    }
}

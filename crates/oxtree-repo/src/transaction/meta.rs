//! Metadata objects (commits, dirtrees, dirmetas): written from their
//! bytes, named by their checksum or checked against a known one.

use super::Transaction;
use crate::error::{IoContext, RepoError, Result};
use oxtree_object::{Checksum, Commit, DirMeta, DirTree, ObjectType};
use std::io::Write;

impl Transaction<'_> {
    /// Write a metadata object from its bytes; returns its checksum.
    pub fn write_meta(&self, kind: ObjectType, bytes: &[u8]) -> Result<Checksum> {
        self.write_meta_at(kind, bytes, true)
    }

    fn write_meta_at(&self, kind: ObjectType, bytes: &[u8], disk: bool) -> Result<Checksum> {
        let csum = Checksum::of(bytes);
        if self.is_present(kind, &csum, disk)? {
            return Ok(csum);
        }
        self.charge(bytes.len() as u64)?;
        let (id, tmp) = self.tmp_name();
        let fd = self.create_tmp(&tmp, 0o644)?;
        let mut f = std::fs::File::from(fd);
        f.write_all(bytes).ctx(|| "writing metadata object")?;
        drop(f);
        self.stage(id, kind, csum, false)?;
        Ok(csum)
    }

    /// Write a metadata object whose checksum is known (a pull or import):
    /// refused if the bytes do not match.
    pub fn write_meta_trusted_name(
        &self,
        kind: ObjectType,
        expected: &Checksum,
        bytes: &[u8],
    ) -> Result<()> {
        self.write_meta_expect(kind, expected, bytes, true)
    }

    /// Like `write_meta_trusted_name`, for an object the caller has just
    /// found absent from the repository (a pull): only this transaction's
    /// staged objects are checked, not the disk again.
    pub fn write_meta_fetched(
        &self,
        kind: ObjectType,
        expected: &Checksum,
        bytes: &[u8],
    ) -> Result<()> {
        self.write_meta_expect(kind, expected, bytes, false)
    }

    fn write_meta_expect(
        &self,
        kind: ObjectType,
        expected: &Checksum,
        bytes: &[u8],
        disk: bool,
    ) -> Result<()> {
        let actual = Checksum::of(bytes);
        if actual != *expected {
            return Err(RepoError::BadObject {
                checksum: *expected,
                kind,
                reason: crate::fsck::checksum_mismatch(kind, expected, &actual),
            });
        }
        self.write_meta_at(kind, bytes, disk)?;
        Ok(())
    }

    pub fn write_dirtree(&self, t: &DirTree) -> Result<Checksum> {
        self.write_meta(ObjectType::DirTree, &t.encode())
    }
    pub fn write_dirmeta(&self, m: &DirMeta) -> Result<Checksum> {
        self.write_meta(ObjectType::DirMeta, &m.encode())
    }
    pub fn write_commit(&self, c: &Commit) -> Result<Checksum> {
        self.write_meta(ObjectType::Commit, &c.encode())
    }
}

//! Static deltas in a repository: list, load, delete, generate, apply.
//!
//! Applying never trusts the delta: every part is checked against its
//! size and checksum from the superblock before it is decompressed, every
//! rebuilt object goes through the transaction's verified writes, and the
//! superblock's commit must hash to the delta's target. Nothing is
//! published unless the whole delta applied; no ref is touched.
//!
//! The pieces: this file lists, loads and deletes a repository's deltas;
//! `apply` checks and applies them, reading parts through `blob`;
//! `generate` makes one, `fill` putting the new objects into parts (with
//! bsdiff) and `parts` building and compressing each part.

mod apply;
mod blob;
mod fill;
mod generate;
mod parts;

use crate::error::{IoContext, RepoError, Result};
use crate::{fsutil, Repo};
use oxtree_object::static_delta::{self as sd, Superblock};
use oxtree_object::{Checksum, Metadata};
use rustix::fs::{self as rfs, AtFlags};
use std::path::PathBuf;

pub use apply::{apply_offline, apply_part, apply_superblock, StaticDeltaApplier};
pub use generate::{generate, GenerateOptions, GenerateReport};

fn invalid(msg: impl Into<String>) -> RepoError {
    RepoError::Invalid(msg.into())
}

impl Repo {
    /// Names of every delta in `deltas/` (`FROM-TO` or `TO`).
    pub fn list_static_deltas(&self) -> Result<Vec<String>> {
        let dir = match fsutil::open_dir_at(self.dir(), "deltas") {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).ctx(|| "opening deltas/"),
        };
        let mut out = Vec::new();
        for (prefix, ft) in fsutil::list_dir(&dir).ctx(|| "listing deltas/")? {
            if !ft.is_dir() || prefix.len() != 2 {
                continue;
            }
            let sub =
                fsutil::open_dir_at(&dir, &prefix).ctx(|| format!("opening deltas/{prefix}"))?;
            for (rest, ft) in fsutil::list_dir(&sub).ctx(|| "listing deltas")? {
                if !ft.is_dir() {
                    continue;
                }
                if let Ok((f, t)) = sd::parse_delta_dir(&prefix, &rest) {
                    if rfs::statat(&sub, format!("{rest}/superblock"), AtFlags::empty()).is_ok() {
                        out.push(sd::delta_name(f.as_ref(), &t));
                    }
                }
            }
        }
        // Directory order, as ostree lists them.
        Ok(out)
    }

    /// Path of a delta's directory (whether or not it exists).
    pub fn static_delta_dir(&self, name: &str) -> Result<PathBuf> {
        let (f, t) = sd::parse_delta_name(name)
            .map_err(|_| invalid(format!("invalid delta name '{name}'")))?;
        Ok(self.path().join(sd::delta_dir(f.as_ref(), &t)))
    }

    /// The superblock file bytes of a delta in this repository.
    pub fn load_static_delta_superblock(&self, name: &str) -> Result<Vec<u8>> {
        let (f, t) = sd::parse_delta_name(name)
            .map_err(|_| invalid(format!("invalid delta name '{name}'")))?;
        let rel = format!("{}/superblock", sd::delta_dir(f.as_ref(), &t));
        match fsutil::read_at(self.dir(), &rel) {
            Ok(b) => Ok(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(invalid(format!("Static delta '{name}' not found")))
            }
            Err(e) => Err(e).ctx(|| format!("reading {rel}")),
        }
    }

    /// Remove a delta's directory.
    pub fn delete_static_delta(&self, name: &str) -> Result<()> {
        let (f, t) = sd::parse_delta_name(name)
            .map_err(|_| invalid(format!("invalid delta name '{name}'")))?;
        let rel = sd::delta_dir(f.as_ref(), &t);
        if rfs::statat(self.dir(), &rel, AtFlags::empty()).is_err() {
            return Err(invalid(format!("Static delta '{name}' not found")));
        }
        crate::transaction::remove_tree_at(self.dir(), &rel).ctx(|| format!("removing {rel}"))
    }

    /// `(name, superblock checksum)` of every delta.
    pub fn static_delta_checksums(&self) -> Result<Vec<(String, Checksum)>> {
        self.list_static_deltas()?
            .into_iter()
            .map(|n| {
                let b = self.load_static_delta_superblock(&n)?;
                Ok((n, Checksum::of(&b)))
            })
            .collect()
    }
}

/// Parse superblock file bytes, unwrapping a signed superblock.
pub fn parse_superblock_file(bytes: &[u8]) -> Result<(Superblock, Option<Metadata>)> {
    match sd::decode_signed(bytes)? {
        Some((inner, sigs)) => Ok((Superblock::decode(&inner)?, Some(sigs))),
        None => Ok((Superblock::decode(bytes)?, None)),
    }
}

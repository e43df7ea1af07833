//! The `summary` file: `(a(s(taya{sv}))a{sv})`, every local ref (sorted)
//! with its commit's size, checksum and `{ostree.commit.timestamp: t (BE),
//! ostree.commit.version: s}`, then repository-wide metadata.
//!
//! Quirks kept for byte compatibility with ostree 2022.7: the commit size is
//! written host-endian (little-endian), not swapped like every other integer;
//! per-ref metadata puts `version` before `timestamp`; the top-level keys come
//! in ostree's fixed order (mode, last-modified, tombstone-commits,
//! static-deltas, indexed-deltas, collection-id). `decode` parses network
//! bytes: bounded by the caller's size limit, errors instead of panics
//! (a cargo-fuzz target should cover it).

use crate::error::{Result, TransportError};
use oxtree_object::gvariant::{be64, decode, encode, from_be64};
use oxtree_object::{Checksum, Metadata, ObjectType};
use oxtree_repo::{fsutil, Repo};
use zvariant::{OwnedValue, Value};

pub const KEY_TIMESTAMP: &str = "ostree.commit.timestamp";
pub const KEY_VERSION: &str = "ostree.commit.version";
pub const KEY_LAST_MODIFIED: &str = "ostree.summary.last-modified";
pub const KEY_MODE: &str = "ostree.summary.mode";

/// One ref of a summary.
#[derive(Clone, Debug, PartialEq)]
pub struct SummaryRef {
    pub name: String,
    /// Size of the commit object in bytes.
    pub commit_size: u64,
    pub commit: Checksum,
    pub metadata: Metadata,
}

impl SummaryRef {
    pub fn timestamp(&self) -> Option<u64> {
        match self.metadata.get(KEY_TIMESTAMP)? {
            Value::U64(t) => Some(from_be64(*t)),
            _ => None,
        }
    }
    pub fn version(&self) -> Option<&str> {
        self.metadata.get_str(KEY_VERSION)
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    pub refs: Vec<SummaryRef>,
    pub metadata: Metadata,
}

type RefWire = (String, (u64, Vec<u8>, Vec<(String, OwnedValue)>));
type Wire = (Vec<RefWire>, Vec<(String, OwnedValue)>);

/// Both arrays empty: GVariant's normal form is one framing byte `00`,
/// which zvariant neither writes nor reads (see DirTree's EMPTY_DIRTREE).
const EMPTY_SUMMARY: [u8; 1] = [0];

impl Summary {
    pub fn encode(&self) -> Vec<u8> {
        if self.refs.is_empty() && self.metadata.is_empty() {
            return EMPTY_SUMMARY.to_vec();
        }
        let mut refs: Vec<RefWire> = self
            .refs
            .iter()
            .map(|r| {
                (
                    r.name.clone(),
                    (r.commit_size, r.commit.0.to_vec(), r.metadata.clone().0),
                )
            })
            .collect();
        refs.sort_by(|a, b| a.0.cmp(&b.0));
        let w: Wire = (refs, self.metadata.clone().0);
        encode(&w)
    }

    /// Parse untrusted summary bytes. Checksums must be 32 bytes and ref
    /// names valid; duplicate names are refused.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        if bytes == EMPTY_SUMMARY {
            return Ok(Summary::default());
        }
        let (refs, md): Wire = decode("summary", bytes)?;
        let mut out = Vec::with_capacity(refs.len());
        for (name, (size, csum, rmd)) in refs {
            oxtree_repo::refs::validate_ref_name(&name)
                .map_err(|_| TransportError::bad("summary", format!("invalid ref {name:?}")))?;
            let commit = Checksum::from_bytes(&csum)
                .map_err(|_| TransportError::bad("summary", format!("ref {name}: bad checksum")))?;
            out.push(SummaryRef {
                name,
                commit_size: size,
                commit,
                metadata: Metadata(rmd),
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        if out.windows(2).any(|w| w[0].name == w[1].name) {
            return Err(TransportError::bad("summary", "duplicate ref"));
        }
        Ok(Summary {
            refs: out,
            metadata: Metadata(md),
        })
    }

    pub fn get(&self, name: &str) -> Option<&SummaryRef> {
        self.refs
            .binary_search_by(|r| r.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.refs[i])
    }

    pub fn last_modified(&self) -> Option<u64> {
        match self.metadata.get(KEY_LAST_MODIFIED)? {
            Value::U64(t) => Some(from_be64(*t)),
            _ => None,
        }
    }

    pub fn mode(&self) -> Option<&str> {
        self.metadata.get_str(KEY_MODE)
    }

    /// Build the summary of `repo`'s local refs as ostree would.
    /// `last_modified` is seconds since the epoch.
    pub fn generate(repo: &Repo, last_modified: u64) -> Result<Self> {
        let mut refs = Vec::new();
        for (name, c) in repo.list_refs()? {
            if name.contains(':') {
                continue; // remote refs are not published
            }
            let bytes = repo.load_meta_bytes(ObjectType::Commit, &c)?;
            let commit = repo.load_commit(&c)?;
            let mut md = Metadata::new();
            if let Some(v) = commit.version() {
                md.set_str(KEY_VERSION, v);
            }
            md.set(KEY_TIMESTAMP, Value::U64(be64(commit.timestamp)));
            refs.push(SummaryRef {
                name,
                commit_size: bytes.len() as u64,
                commit: c,
                metadata: md,
            });
        }
        refs.sort_by(|a, b| a.name.cmp(&b.name));
        let cfg = repo.config();
        let mut md = Metadata::new();
        md.set_str(KEY_MODE, repo.mode().config_name());
        md.set(KEY_LAST_MODIFIED, Value::U64(be64(last_modified)));
        let tombstones = cfg.get_bool("core", "tombstone-commits", false)?;
        md.set("ostree.summary.tombstone-commits", Value::Bool(tombstones));
        md.set("ostree.summary.indexed-deltas", Value::Bool(true));
        if let Some(id) = cfg.get("core", "collection-id") {
            md.set_str("ostree.summary.collection-id", id);
        }
        Ok(Summary { refs, metadata: md })
    }
}

/// Regenerate `summary` in `repo` (like `ostree summary -u`): records
/// `core.indexed-deltas=true` as ostree does, writes the file atomically and
/// removes a now stale `summary.sig`. Returns the summary written.
pub fn update_summary(repo: &mut Repo, last_modified: u64) -> Result<Summary> {
    let s = Summary::generate(repo, last_modified)?;
    if repo.config().get("core", "indexed-deltas").is_none() {
        let mut cfg = repo.config().clone();
        cfg.set("core", "indexed-deltas", "true");
        repo.write_config(cfg)?;
    }
    let sync = repo.fsync_enabled()?;
    fsutil::write_atomic_at(repo.dir(), "summary", &s.encode(), sync)
        .map_err(|e| TransportError::io("writing summary", e))?;
    match rustix::fs::unlinkat(repo.dir(), "summary.sig", rustix::fs::AtFlags::empty()) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => {}
        Err(e) => return Err(TransportError::io("removing summary.sig", e.into())),
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_round_trip() {
        let s = Summary::default();
        assert_eq!(s.encode(), vec![0]);
        assert_eq!(Summary::decode(&[0]).unwrap(), s);
    }

    #[test]
    fn hostile_bytes_are_errors() {
        for b in [
            &[][..],
            &[1, 2, 3],
            &[0xff; 64],
            &[0, 0, 0, 0, 0, 0, 0, 0, 0xff],
        ] {
            let _ = Summary::decode(b);
        }
        let bad: Wire = (vec![("../x".into(), (1, vec![0; 32], vec![]))], vec![]);
        assert!(Summary::decode(&encode(&bad)).is_err());
        let short: Wire = (vec![("a".into(), (1, vec![0; 3], vec![]))], vec![]);
        assert!(Summary::decode(&encode(&short)).is_err());
    }
}

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
use oxtree_object::gvariant::{be64, decode, encode, from_be64, Type, Value, Variant};
use oxtree_object::static_delta as sd;
use oxtree_object::{Checksum, Metadata, ObjectType};
use oxtree_repo::{fsutil, Repo, RepoError};

pub const KEY_TIMESTAMP: &str = "ostree.commit.timestamp";
pub const KEY_VERSION: &str = "ostree.commit.version";
pub const KEY_LAST_MODIFIED: &str = "ostree.summary.last-modified";
pub const KEY_MODE: &str = "ostree.summary.mode";
pub const KEY_COLLECTION_ID: &str = "ostree.summary.collection-id";
pub const KEY_COLLECTION_MAP: &str = "ostree.summary.collection-map";
const COLLECTION_MAP_TYPE: &str = "a{sa(s(taya{sv}))}";

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
    /// `ostree.static-deltas` as written (name → superblock checksum, in
    /// directory order); encoded in GLib's hash order before
    /// `ostree.summary.indexed-deltas`. Empty when decoded: readers find
    /// the entry in `metadata`.
    pub static_deltas: Vec<(String, Checksum)>,
    /// `ostree.summary.collection-map` as written: the refs of collections
    /// other than the repository's own, by collection ID (sorted). Empty
    /// when decoded: `collection_map()` reads the entry in `metadata`.
    pub collection_map: Vec<(String, Vec<SummaryRef>)>,
}

type RefWire = (String, (u64, Vec<u8>, Metadata));
type Wire = (Vec<RefWire>, Metadata);

impl Summary {
    pub fn encode(&self) -> Vec<u8> {
        let refs = ref_wires(&self.refs);
        if self.static_deltas.is_empty() && self.collection_map.is_empty() {
            let w: Wire = (refs, self.metadata.clone());
            return encode(&w);
        }
        // In ostree's hash order both maps come just before
        // `indexed-deltas`.
        let mut maps = Vec::new();
        if !self.static_deltas.is_empty() {
            let deltas = sd::delta_map_value(&self.static_deltas);
            maps.push((sd::KEY_STATIC_DELTAS.to_string(), deltas));
        }
        if !self.collection_map.is_empty() {
            let cm = Value::Dict(
                Type::Str,
                Vec::<RefWire>::signature(),
                self.collection_map
                    .iter()
                    .map(|(id, refs)| (Value::Str(id.clone()), ref_wires(refs).to_value()))
                    .collect(),
            );
            maps.push((KEY_COLLECTION_MAP.to_string(), cm));
        }
        let mut md = Metadata::new();
        let mut placed = false;
        for (k, v) in &self.metadata.0 {
            if k == sd::KEY_STATIC_DELTAS || k == KEY_COLLECTION_MAP {
                continue;
            }
            if k == "ostree.summary.indexed-deltas" && !placed {
                md.0.append(&mut maps);
                placed = true;
            }
            md.0.push((k.clone(), v.clone()));
        }
        md.0.append(&mut maps);
        encode(&(refs, md))
    }

    /// Parse untrusted summary bytes. Checksums must be 32 bytes and ref
    /// names valid; duplicate names are refused.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let (refs, md): Wire = decode("summary", bytes)?;
        let out = decode_refs(refs)?;
        Ok(Summary {
            static_deltas: Vec::new(),
            collection_map: Vec::new(),
            refs: out,
            metadata: md,
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

    /// `ostree.static-deltas`: delta name → superblock checksum.
    pub fn static_delta_map(&self) -> Vec<(String, Checksum)> {
        if self.metadata.get(sd::KEY_STATIC_DELTAS).is_none() {
            return self.static_deltas.clone();
        }
        static_delta_map_in(&self.metadata)
    }

    /// `ostree.summary.indexed-deltas`: the publisher keeps
    /// `delta-indexes/`, which clients consult for a target's deltas.
    pub fn indexed_deltas(&self) -> bool {
        matches!(
            self.metadata.get("ostree.summary.indexed-deltas"),
            Some(Value::Bool(true))
        )
    }

    pub fn mode(&self) -> Option<&str> {
        self.metadata.get_str(KEY_MODE)
    }

    /// Build the summary of `repo`'s local refs as ostree would.
    /// `last_modified` is seconds since the epoch.
    pub fn generate(repo: &Repo, last_modified: u64) -> Result<Self> {
        let main_id = repo.collection_id();
        let mut refs = Vec::new();
        if main_id.is_none() {
            for (name, c) in repo.list_refs()? {
                if name.contains(':') {
                    continue; // remote refs are not published
                }
                refs.push(ref_entry(repo, name, c)?);
            }
        }
        // Refs with a collection ID (local refs of the repository's own
        // collection, mirrors, remotes with a collection-id): the own
        // collection's in the main list, the others in the collection map.
        let mut collection_map: Vec<(String, Vec<SummaryRef>)> = Vec::new();
        for (r, c) in crate::remote::collection_refs(repo, None)? {
            let entry = ref_entry(repo, r.ref_name, c)?;
            if Some(&r.collection_id) == main_id.as_ref() {
                refs.push(entry);
            } else if let Some(last) = collection_map
                .last_mut()
                .filter(|(id, _)| *id == r.collection_id)
            {
                last.1.push(entry);
            } else {
                collection_map.push((r.collection_id, vec![entry]));
            }
        }
        refs.sort_by(|a, b| a.name.cmp(&b.name));
        let cfg = repo.config();
        let mut md = Metadata::new();
        md.set_str(KEY_MODE, repo.mode().config_name());
        md.set(KEY_LAST_MODIFIED, Value::U64(be64(last_modified)));
        let tombstones = cfg.get_bool("core", "tombstone-commits", false)?;
        md.set("ostree.summary.tombstone-commits", Value::Bool(tombstones));
        md.set("ostree.summary.indexed-deltas", Value::Bool(true));
        if let Some(id) = &main_id {
            md.set_str(KEY_COLLECTION_ID, id);
        }
        // `core.no-deltas-in-summary`: clients find deltas through the
        // delta indexes only.
        let static_deltas = if cfg.get_bool("core", "no-deltas-in-summary", false)? {
            Vec::new()
        } else {
            repo.static_delta_checksums()?
        };
        Ok(Summary {
            refs,
            collection_map,
            metadata: md,
            static_deltas,
        })
    }
}

/// ostree's entry for one ref: commit size, checksum, `{version, timestamp}`.
fn ref_entry(repo: &Repo, name: String, c: Checksum) -> Result<SummaryRef> {
    // Decoded without checking its checksum, as ostree does: the summary
    // only describes the repository (clients verify what they fetch), and
    // a corrupt commit is fsck's to report.
    let bytes = repo.load_meta_bytes(ObjectType::Commit, &c)?;
    let commit = oxtree_object::Commit::decode(&bytes).map_err(|e| RepoError::BadObject {
        checksum: c,
        kind: ObjectType::Commit,
        reason: e.to_string(),
    })?;
    let mut md = Metadata::new();
    if let Some(v) = commit.version() {
        md.set_str(KEY_VERSION, v);
    }
    md.set(KEY_TIMESTAMP, Value::U64(be64(commit.timestamp)));
    Ok(SummaryRef {
        name,
        commit_size: bytes.len() as u64,
        commit: c,
        metadata: md,
    })
}

fn ref_wires(refs: &[SummaryRef]) -> Vec<RefWire> {
    let mut out: Vec<RefWire> = refs
        .iter()
        .map(|r| {
            (
                r.name.clone(),
                (r.commit_size, r.commit.0.to_vec(), r.metadata.clone()),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn decode_refs(refs: Vec<RefWire>) -> Result<Vec<SummaryRef>> {
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
            metadata: rmd,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    if out.windows(2).any(|w| w[0].name == w[1].name) {
        return Err(TransportError::bad("summary", "duplicate ref"));
    }
    Ok(out)
}

impl Summary {
    /// `ostree.summary.collection-id`: the collection of the main ref list.
    pub fn collection_id(&self) -> Option<&str> {
        self.metadata.get_str(KEY_COLLECTION_ID)
    }

    /// `ostree.summary.collection-map`: refs of other collections, by ID.
    /// A malformed entry is an error (the bytes are untrusted).
    pub fn collection_map(&self) -> Result<Vec<(String, Vec<SummaryRef>)>> {
        if !self.collection_map.is_empty() {
            return Ok(self.collection_map.clone());
        }
        let Some(v) = self.metadata.get(KEY_COLLECTION_MAP) else {
            return Ok(Vec::new());
        };
        let wrong = || TransportError::bad("summary", "collection-map has the wrong type");
        if v.type_().to_string() != COLLECTION_MAP_TYPE {
            return Err(wrong());
        }
        let Value::Dict(_, _, entries) = v else {
            return Err(wrong());
        };
        let cm = entries
            .iter()
            .map(|(id, refs)| {
                let id = id.as_str().ok_or_else(wrong)?.to_string();
                let refs = Vec::<RefWire>::from_value(refs.clone()).ok_or_else(wrong)?;
                Ok((id, refs))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut out = Vec::with_capacity(cm.len());
        for (id, refs) in cm {
            oxtree_repo::refs::validate_collection_id(&id).map_err(|_| {
                TransportError::bad("summary", format!("invalid collection ID {id:?}"))
            })?;
            out.push((id, decode_refs(refs)?));
        }
        Ok(out)
    }

    /// The commit of `(collection, ref)` in this summary: the main list
    /// holds the summary's own collection.
    pub fn find_collection_ref(&self, id: &str, name: &str) -> Result<Option<SummaryRef>> {
        if self.collection_id() == Some(id) {
            return Ok(self.get(name).cloned());
        }
        Ok(self
            .collection_map()?
            .into_iter()
            .find(|(c, _)| c == id)
            .and_then(|(_, refs)| refs.into_iter().find(|r| r.name == name)))
    }
}

/// The `ostree.static-deltas` entry of a summary's or a delta index's
/// metadata: delta name → superblock checksum (malformed entries skipped).
pub fn static_delta_map_in(md: &Metadata) -> Vec<(String, Checksum)> {
    let Some(Value::Dict(_, _, d)) = md.get(sd::KEY_STATIC_DELTAS) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (k, v) in d {
        let (Some(k), Some(bytes)) = (k.as_str(), v.unvariant().as_bytes()) else {
            continue;
        };
        if let Ok(c) = Checksum::from_bytes(bytes) {
            out.push((k.to_string(), c));
        }
    }
    out
}

/// Rewrite `delta-indexes/`: for each delta target, `XX/REST.index`, an
/// `a{sv}` whose `ostree.static-deltas` lists the deltas to it (name →
/// superblock checksum); indexes of targets without deltas are removed.
/// With `only`, just that target's index (`static-delta reindex --to`).
pub fn write_delta_indexes(repo: &Repo, sync: bool, only: Option<&Checksum>) -> Result<()> {
    let io = |what: &str, e: std::io::Error| TransportError::io(what, e);
    let mut by_target: std::collections::BTreeMap<String, Vec<(String, Checksum)>> =
        Default::default();
    let only = only.map(sd::delta_index_path);
    for (name, csum) in repo.static_delta_checksums()? {
        let (_, to) = sd::parse_delta_name(&name)?;
        let rel = sd::delta_index_path(&to);
        if only.as_ref().is_none_or(|o| *o == rel) {
            by_target.entry(rel).or_default().push((name, csum));
        }
    }
    for t in list_delta_indexes(repo)? {
        let rel = sd::delta_index_path(&t);
        if only.as_ref().is_none_or(|o| *o == rel) && !by_target.contains_key(&rel) {
            let _ = std::fs::remove_file(repo.path().join(&rel));
        }
    }
    for (rel, deltas) in &mut by_target {
        // ostree sorts on the source (from-scratch first) before filling
        // its dictionary, so the index is reproducible.
        deltas.sort_by_key(|(name, _)| name.split_once('-').map(|(f, _)| f.to_string()));
        let mut md = Metadata::new();
        md.set(sd::KEY_STATIC_DELTAS, sd::delta_map_value(deltas));
        let index = md.encode();
        let (dir, name) = rel.rsplit_once('/').expect("index paths have a directory");
        let d = fsutil::mkdir_p_at(repo.dir(), dir).map_err(|e| io("creating delta-indexes", e))?;
        if fsutil::read_at(&d, name).ok().as_deref() == Some(&index[..]) {
            continue;
        }
        fsutil::write_atomic_at(&d, name, &index, sync)
            .map_err(|e| io("writing a delta index", e))?;
    }
    Ok(())
}

/// The targets that have a delta index in `repo`, sorted.
pub fn list_delta_indexes(repo: &Repo) -> Result<Vec<Checksum>> {
    let io = |e: std::io::Error| TransportError::io("listing delta-indexes", e);
    let root = repo.path().join("delta-indexes");
    let mut out = Vec::new();
    if !root.is_dir() {
        return Ok(out);
    }
    for sub in std::fs::read_dir(&root).map_err(io)? {
        let sub = sub.map_err(io)?;
        let prefix = sub.file_name().to_string_lossy().into_owned();
        let Ok(files) = std::fs::read_dir(sub.path()) else {
            continue;
        };
        for f in files.flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            if let Some(rest) = name.strip_suffix(".index") {
                if let Ok(c) = sd::from_mb64(&format!("{prefix}{rest}")) {
                    out.push(c);
                }
            }
        }
    }
    out.sort_by_key(|c| c.to_hex());
    Ok(out)
}

/// Regenerate `summary` in `repo` (like `ostree summary -u`): records
/// `core.indexed-deltas=true` as ostree does, writes the file atomically and
/// removes a now stale `summary.sig`. Returns the summary written.
/// The ref of the repository-metadata commit that `summary -u` makes in a
/// repository with a collection ID, as ostree does (`OSTREE_REPO_METADATA_REF`).
pub const METADATA_REF: &str = "ostree-metadata";

/// In a repository with a collection ID, commit the repository metadata
/// to [`METADATA_REF`] as ostree's `summary -u` does before it regenerates
/// the summary: an empty root (`0:0 040755`), the previous such commit as
/// parent, `extra` plus the commit's collection and ref bindings as
/// metadata, dated `now`. Returns None without a collection ID.
pub fn write_metadata_commit(repo: &Repo, extra: &Metadata, now: u64) -> Result<Option<Checksum>> {
    let Some(id) = repo.collection_id() else {
        return Ok(None);
    };
    let parent = repo.read_ref(METADATA_REF)?;
    let mut metadata = extra.clone();
    metadata.set_str("ostree.collection-binding", &id);
    metadata.set_strv("ostree.ref-binding", &[METADATA_REF.to_string()]);
    let tx = repo.begin()?;
    let root_tree = tx.write_dirtree(&oxtree_object::DirTree::default())?;
    let root_meta = tx.write_dirmeta(&oxtree_object::DirMeta {
        uid: 0,
        gid: 0,
        mode: 0o40755,
        xattrs: Default::default(),
    })?;
    let commit = tx.write_commit(&oxtree_object::Commit {
        metadata,
        parent,
        related: Vec::new(),
        subject: String::new(),
        body: String::new(),
        timestamp: now,
        root_tree,
        root_meta,
    })?;
    let sync = tx.sync_enabled();
    tx.commit()?;
    repo.write_ref(METADATA_REF, Some(&commit), sync)?;
    Ok(Some(commit))
}

pub fn update_summary(repo: &mut Repo, last_modified: u64) -> Result<Summary> {
    update_summary_with(repo, last_modified, &Metadata::new())
}

/// [`update_summary`] with `extra` keys added to the summary's metadata
/// (`summary --add-metadata`), replacing generated ones of the same name.
pub fn update_summary_with(
    repo: &mut Repo,
    last_modified: u64,
    extra: &Metadata,
) -> Result<Summary> {
    let mut s = Summary::generate(repo, last_modified)?;
    for (k, v) in &extra.0 {
        s.metadata.set(k, v.clone());
    }
    if repo.config().get("core", "indexed-deltas").is_none() {
        let mut cfg = repo.config().clone();
        cfg.set("core", "indexed-deltas", "true");
        repo.write_config(cfg)?;
    }
    let sync = repo.fsync_enabled()?;
    write_delta_indexes(repo, sync, None)?;
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
        let bad: Wire = (
            vec![("../x".into(), (1, vec![0; 32], Metadata::new()))],
            Metadata::new(),
        );
        assert!(Summary::decode(&encode(&bad)).is_err());
        let short: Wire = (
            vec![("a".into(), (1, vec![0; 3], Metadata::new()))],
            Metadata::new(),
        );
        assert!(Summary::decode(&encode(&short)).is_err());
    }
}

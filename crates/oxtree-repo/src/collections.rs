//! Collection refs: `(COLLECTION-ID, REF)` pairs, as ostree names refs
//! across repositories. Where they live:
//!
//! - `refs/heads/REF` belongs to the repository's own collection
//!   (`core.collection-id`), when it has one;
//! - `refs/mirrors/COLLECTION-ID/REF` holds mirrored refs of any other
//!   collection;
//! - `refs/remotes/REMOTE/REF` belongs to the remote's `collection-id`, when
//!   the remote has a valid one (the caller supplies that lookup, since
//!   remotes are configured in the transport layer).

use crate::error::{IoContext, RepoError, Result};
use crate::fsutil;
use crate::refs::{validate_collection_id, validate_ref_name, walk_refs};
use crate::Repo;
use oxtree_object::Checksum;
use rustix::fd::OwnedFd;
use rustix::fs::{self, AtFlags, FileType};
use rustix::io::Errno;

/// A ref qualified by the collection it belongs to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CollectionRef {
    pub collection_id: String,
    pub ref_name: String,
}

impl Repo {
    /// `core.collection-id`, the repository's own collection.
    pub fn collection_id(&self) -> Option<String> {
        self.config()
            .get("core", "collection-id")
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }

    /// Every collection ref (only those of `match_id` when given), sorted by
    /// collection then ref name. `remote_collection` names a remote's
    /// collection ID; remotes without one are left out, as in ostree.
    pub fn list_collection_refs(
        &self,
        match_id: Option<&str>,
        remote_collection: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Vec<(CollectionRef, Checksum)>> {
        if let Some(m) = match_id {
            validate_collection_id(m)?;
        }
        let wanted = |id: &str| match_id.is_none_or(|m| m == id);
        let mut out = Vec::new();
        if let Some(main) = self.collection_id() {
            if wanted(&main) {
                if let Ok(d) = fsutil::open_dir_at(self.dir(), "refs/heads") {
                    walk(&d, &main, &mut out)?;
                }
            }
        }
        out.extend(
            self.list_mirror_refs()?
                .into_iter()
                .filter(|(r, _)| wanted(&r.collection_id)),
        );
        if let Ok(remotes) = fsutil::open_dir_at(self.dir(), "refs/remotes") {
            for (r, t) in fsutil::list_dir(&remotes).ctx(|| "listing refs/remotes")? {
                if t != FileType::Directory {
                    continue;
                }
                let Some(id) = remote_collection(&r) else {
                    continue;
                };
                if validate_collection_id(&id).is_err() || !wanted(&id) {
                    continue;
                }
                let d = fsutil::open_dir_at(&remotes, &r).ctx(|| "opening remote refs")?;
                walk(&d, &id, &mut out)?;
            }
        }
        out.sort();
        out.dedup_by(|a, b| a.0 == b.0);
        Ok(out)
    }

    /// Point a collection ref at a commit (None deletes it): a ref of the
    /// repository's own collection is `refs/heads/REF`, any other
    /// `refs/mirrors/ID/REF`.
    pub fn write_collection_ref(
        &self,
        r: &CollectionRef,
        target: Option<&Checksum>,
        sync: bool,
    ) -> Result<()> {
        validate_collection_id(&r.collection_id)?;
        validate_ref_name(&r.ref_name)?;
        if self.collection_id().as_deref() == Some(r.collection_id.as_str()) {
            return self.write_ref(&r.ref_name, target, sync);
        }
        let base = format!("refs/mirrors/{}", r.collection_id);
        let (parent, leaf) = match r.ref_name.rsplit_once('/') {
            Some((p, l)) => (format!("{base}/{p}"), l),
            None => (base, r.ref_name.as_str()),
        };
        let what = || format!("({}, {})", r.collection_id, r.ref_name);
        match target {
            Some(c) => {
                let dir =
                    fsutil::mkdir_p_at(self.dir(), &parent).ctx(|| format!("creating {parent}"))?;
                fsutil::write_atomic_at(&dir, leaf, format!("{c}\n").as_bytes(), sync)
                    .ctx(|| format!("writing ref {}", what()))?;
            }
            None => {
                let dir = match fsutil::open_dir_at(self.dir(), &parent) {
                    Ok(d) => d,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        return Err(RepoError::RefNotFound(what()))
                    }
                    Err(e) => return Err(e).ctx(|| format!("opening {parent}")),
                };
                match fs::unlinkat(&dir, leaf, AtFlags::empty()) {
                    Ok(()) => {}
                    Err(Errno::NOENT) => return Err(RepoError::RefNotFound(what())),
                    Err(e) => return Err(e).ctx(|| format!("deleting ref {}", what())),
                }
                if sync {
                    fs::fsync(&dir).ctx(|| "syncing refs")?;
                }
            }
        }
        Ok(())
    }

    /// Refs under `refs/mirrors/` only: commits they point to are
    /// reachable (prune, fsck) whatever the repository's collection.
    pub fn list_mirror_refs(&self) -> Result<Vec<(CollectionRef, Checksum)>> {
        let mut out = Vec::new();
        if let Ok(mirrors) = fsutil::open_dir_at(self.dir(), "refs/mirrors") {
            for (id, t) in fsutil::list_dir(&mirrors).ctx(|| "listing refs/mirrors")? {
                if t == FileType::Directory {
                    let d = fsutil::open_dir_at(&mirrors, &id).ctx(|| "opening mirror refs")?;
                    walk(&d, &id, &mut out)?;
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

/// The refs below `dir` (a ref directory of collection `id`), named by
/// their path below it.
fn walk(dir: &OwnedFd, id: &str, out: &mut Vec<(CollectionRef, Checksum)>) -> Result<()> {
    let mut refs = Vec::new();
    walk_refs(dir, &format!("({id}) "), "", &mut refs)?;
    let skip = id.len() + 3;
    out.extend(refs.into_iter().map(|(name, c)| {
        (
            CollectionRef {
                collection_id: id.to_string(),
                ref_name: name[skip..].to_string(),
            },
            c,
        )
    }));
    Ok(())
}

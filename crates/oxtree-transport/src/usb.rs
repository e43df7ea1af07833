//! Copying collection refs onto a removable volume, laid out as ostree's
//! mount finder looks for them (ostree's `create-usb`), so that machines
//! without network access can pull from the volume.
//!
//! The repository is an `archive` one (no xattrs or ownership needed on
//! FAT, compressed objects) at `.ostree/repo` below the mount point, or at
//! another path below it; a path other than `.ostree/repo` and
//! `ostree/repo` gets a symlink `.ostree/repos.d/NN-generated` pointing
//! at it (relative, so it survives remounting elsewhere). The refs are
//! mirrored as collection refs (`refs/mirrors/ID/REF`), commits keep their
//! detached metadata (signatures), and the summary is regenerated so that
//! readers find the refs without listing directories.
//!
//! Library code never prints.

use crate::error::{Result, TransportError};
use crate::summary::update_summary;
use oxtree_object::Checksum;
use oxtree_repo::collections::CollectionRef;
use oxtree_repo::fsutil;
use oxtree_repo::pull_local::PullLocalOptions;
use oxtree_repo::{Repo, RepoError, RepoMode};
use std::path::{Component, Path, PathBuf};

/// Where the repository goes when no other path is given; ostree's mount
/// finder also looks at `ostree/repo` without a symlink.
pub const DEFAULT_DEST_REPO: &str = ".ostree/repo";
const WELL_KNOWN: [&str; 2] = [".ostree/repo", "ostree/repo"];
/// How many `NN-generated` names are tried in `.ostree/repos.d`.
const MAX_SYMLINKS: u32 = 100;

#[derive(Clone, Debug, Default)]
pub struct UsbOptions {
    /// The repository's path below the mount point (default
    /// [`DEFAULT_DEST_REPO`]); relative, without `..`.
    pub dest_repo: Option<String>,
    /// Copy this commit instead of the ref's current one (one ref only).
    pub commit: Option<Checksum>,
    /// Overrides `core.fsync` of the destination.
    pub sync: Option<bool>,
    /// Trust the source's file objects (link or copy without re-hashing),
    /// as for `pull-local`; metadata is checked either way.
    pub trusted: bool,
}

/// What [`create_usb`] did.
#[derive(Clone, Debug)]
pub struct UsbCopied {
    /// The repository's path below the mount point.
    pub dest_repo: String,
    /// The refs written, with their commits.
    pub refs: Vec<(CollectionRef, Checksum)>,
    /// The `.ostree/repos.d` entry created for a non-standard location.
    pub symlink: Option<String>,
    pub stats: oxtree_repo::pull_local::PullStats,
}

/// Copy `refs` (resolved in `src` as collection refs: its own collection's
/// `refs/heads`, `refs/mirrors`, and remotes' refs under their
/// `collection-id`) with their commits' trees into the repository on the
/// volume mounted at `mount`, creating it when missing; the repository
/// must be on that volume and must not be `src`.
pub fn create_usb(
    src: &Repo,
    mount: &Path,
    refs: &[CollectionRef],
    o: &UsbOptions,
) -> Result<UsbCopied> {
    if refs.is_empty() {
        return Err(TransportError::Config("no collection refs to copy".into()));
    }
    if o.commit.is_some() && refs.len() > 1 {
        return Err(TransportError::Config(
            "a commit can only be given for a single collection ref".into(),
        ));
    }
    let dest_rel = o.dest_repo.as_deref().unwrap_or(DEFAULT_DEST_REPO);
    let rel = Path::new(dest_rel);
    if rel
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        || rel.as_os_str().is_empty()
    {
        return Err(TransportError::Config(format!(
            "the destination repository '{dest_rel}' must be a path below the mount point"
        )));
    }

    // What to copy, checked before the volume is touched.
    let available = crate::remote::collection_refs(src, None)?;
    let mut wanted = Vec::with_capacity(refs.len());
    for r in refs {
        oxtree_repo::refs::validate_collection_id(&r.collection_id)?;
        oxtree_repo::refs::validate_ref_name(&r.ref_name)?;
        let c = match o.commit {
            Some(c) => c,
            None => available
                .iter()
                .find(|(cr, _)| cr == r)
                .map(|(_, c)| *c)
                .ok_or_else(|| {
                    RepoError::RefNotFound(format!("({}, {})", r.collection_id, r.ref_name))
                })?,
        };
        // As a pull of collection refs: the commit must be bound to them.
        let commit = src.load_commit(&c)?;
        oxtree_repo::bindings::verify_bindings(Some(&r.collection_id), Some(&r.ref_name), &commit)
            .map_err(|e| TransportError::bad(format!("Commit {c}"), e))?;
        wanted.push((r.clone(), c));
    }

    let io = |what: String| move |e: std::io::Error| TransportError::io(what, e);
    let mount_dir = fsutil::open_dir(mount).map_err(io(format!("opening {}", mount.display())))?;
    let mount_st = rustix::fs::fstat(&mount_dir)
        .map_err(|e| TransportError::io(format!("stat {}", mount.display()), e.into()))?;
    fsutil::mkdir_p_at(&mount_dir, dest_rel).map_err(io(format!("creating {dest_rel}")))?;
    let dest_path = mount.join(dest_rel);
    let mut dest = Repo::init(&dest_path, RepoMode::Archive)?;
    let dest_st = rustix::fs::fstat(dest.dir())
        .map_err(|e| TransportError::io(format!("stat {}", dest_path.display()), e.into()))?;
    if dest_st.st_dev != mount_st.st_dev {
        return Err(TransportError::Config(format!(
            "the destination repository '{dest_rel}' is not on the volume mounted at {}",
            mount.display()
        )));
    }
    let src_st = rustix::fs::fstat(src.dir())
        .map_err(|e| TransportError::io("stat source repository", e.into()))?;
    if (src_st.st_dev, src_st.st_ino) == (dest_st.st_dev, dest_st.st_ino) {
        return Err(TransportError::Config(
            "the destination repository must not be the source repository".into(),
        ));
    }

    let commits: Vec<Checksum> = wanted.iter().map(|(_, c)| *c).collect();
    let po = PullLocalOptions {
        depth: 0,
        sync: o.sync,
        trusted: o.trusted,
        ..Default::default()
    };
    let stats = dest.pull_local_with(src, &commits, &po, &|_, _| {})?;
    let sync = match o.sync {
        Some(s) => s,
        None => dest.fsync_enabled()?,
    };
    for (r, c) in &wanted {
        dest.write_collection_ref(r, Some(c), sync)?;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    update_summary(&mut dest, now)?;

    let symlink = if WELL_KNOWN.contains(&normalized(rel).as_str()) {
        None
    } else {
        link_repo(
            &mount_dir,
            &normalized(rel),
            (dest_st.st_dev, dest_st.st_ino),
        )?
    };
    Ok(UsbCopied {
        dest_repo: dest_rel.to_string(),
        refs: wanted,
        symlink,
        stats,
    })
}

/// `rel` without `.` components or trailing slashes.
fn normalized(rel: &Path) -> String {
    let parts: Vec<String> = rel
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    parts.join("/")
}

/// Make `.ostree/repos.d/NN-generated` point at `rel` (below the mount),
/// unless an entry there already leads to that repository (`id`: its
/// device and inode). Returns the entry created.
fn link_repo(mount: &rustix::fd::OwnedFd, rel: &str, id: (u64, u64)) -> Result<Option<String>> {
    let io = |what: &str| {
        let what = what.to_string();
        move |e: std::io::Error| TransportError::io(what, e)
    };
    let repos_d =
        fsutil::mkdir_p_at(mount, ".ostree/repos.d").map_err(io("creating .ostree/repos.d"))?;
    for (name, _) in fsutil::list_dir(&repos_d).map_err(io("listing .ostree/repos.d"))? {
        if let Ok(st) = rustix::fs::statat(&repos_d, name.as_str(), rustix::fs::AtFlags::empty()) {
            if (st.st_dev, st.st_ino) == id {
                return Ok(None);
            }
        }
    }
    let target = PathBuf::from("../..").join(rel);
    for i in 0..MAX_SYMLINKS {
        let name = format!("{i:02}-generated");
        match rustix::fs::symlinkat(&target, &repos_d, name.as_str()) {
            Ok(()) => return Ok(Some(format!(".ostree/repos.d/{name}"))),
            Err(rustix::io::Errno::EXIST) => continue,
            Err(e) => {
                return Err(TransportError::io(
                    format!("creating .ostree/repos.d/{name}"),
                    e.into(),
                ))
            }
        }
    }
    Err(TransportError::Config(
        "no unused name in .ostree/repos.d for the repository's symlink".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destination_must_stay_below_the_mount() {
        let tmp = tempfile::tempdir().unwrap();
        let src = Repo::init(&tmp.path().join("src"), RepoMode::Archive).unwrap();
        let mount = tmp.path().join("mnt");
        std::fs::create_dir(&mount).unwrap();
        let r = [CollectionRef {
            collection_id: "org.example.A".into(),
            ref_name: "main".into(),
        }];
        for bad in ["../out", "/abs", "a/../../b", ""] {
            let o = UsbOptions {
                dest_repo: Some(bad.into()),
                ..Default::default()
            };
            let e = create_usb(&src, &mount, &r, &o).unwrap_err();
            assert!(
                e.to_string().contains("below the mount point"),
                "{bad}: {e}"
            );
        }
        assert!(std::fs::read_dir(&mount).unwrap().next().is_none());
        assert_eq!(normalized(Path::new("./ostree//repo/")), "ostree/repo");
    }
}

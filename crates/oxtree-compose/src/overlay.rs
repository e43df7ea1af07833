//! A writable view of a commit for package tools that never touches the
//! repository's objects, and a commit of only what changed.
//!
//! The commit is checked out with hardlinks into the repository's
//! objects (fast, no copy), and that checkout is only ever the *lower*
//! layer of an overlayfs: every write, including an in-place edit by a
//! maintainer script, copies the file up into `upper` first, so a
//! hardlinked object cannot be corrupted. A full copy would be as safe but
//! costs a copy of the whole tree (hundreds of MB with a kernel) on every
//! install.
//!
//! Afterwards `upper` holds exactly the change: new and modified files,
//! whiteouts for deletions, opaque and redirected directories. The new
//! tree is the base commit's tree with that change applied, so only the
//! changed files are read and hashed again.
//!
//! Mount options are fixed so `upper` stays interpretable: `metacopy=off`
//! (a copied-up file always carries its data), `redirect_dir=on` (a
//! directory rename works instead of failing with EXDEV, and is recorded
//! in `trusted.overlay.redirect`), `index=off`, `xino=off`.

use crate::error::{ComposeError, IoError, Result};
use oxtree_object::Checksum;
use oxtree_repo::{CommitModifier, MutableTree, Repo, Transaction};
use rustix::fs::FileType;
use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ComposeError {
    let context = context.into();
    move |source| IoError { context, source }.into()
}

/// A commit checked out as the read-only lower layer of an overlayfs
/// mounted at `merged`. Dropping it unmounts and removes the work
/// directory.
#[derive(Debug)]
pub struct OverlayRoot {
    dir: PathBuf,
    mounted: bool,
}

/// What the overlay's upper layer says about a directory of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    /// A whiteout: the entry is gone.
    Delete,
    /// An opaque directory: nothing of the lower one shows through.
    Opaque,
    /// A renamed directory: its lower content is the base's directory at
    /// this path (components).
    Redirect(Vec<String>),
}

impl OverlayRoot {
    /// Check out `commit` of `repo` below `dir` (a new directory on the
    /// repository's filesystem, so the checkout can hardlink) and mount
    /// the overlay.
    pub fn create(repo: &Repo, commit: &Checksum, dir: &Path) -> Result<OverlayRoot> {
        std::fs::create_dir(dir).map_err(io_err(format!("creating {}", dir.display())))?;
        let mut o = OverlayRoot {
            dir: dir.to_path_buf(),
            mounted: false,
        };
        repo.checkout(
            commit,
            &dir.join("lower"),
            &oxtree_repo::CheckoutOptions::default(),
            &|_| {},
        )?;
        for d in ["upper", "work", "merged"] {
            std::fs::create_dir(dir.join(d))
                .map_err(io_err(format!("creating {}", dir.join(d).display())))?;
        }
        // The merged root shows the upper directory's owner and mode: make
        // them the base root's.
        let lower = std::fs::metadata(dir.join("lower"))
            .map_err(io_err(format!("stat {}", dir.join("lower").display())))?;
        let upper = dir.join("upper");
        std::os::unix::fs::chown(&upper, Some(lower.uid()), Some(lower.gid()))
            .and_then(|_| std::fs::set_permissions(&upper, lower.permissions()))
            .map_err(io_err(format!("setting up {}", upper.display())))?;
        // Relative layer paths (resolved against the working directory)
        // keep commas or colons in the sysroot path out of the options.
        let out = Command::new("mount")
            .current_dir(dir)
            .args([
                "-t",
                "overlay",
                "oxtree-layer",
                "-o",
                "lowerdir=lower,upperdir=upper,workdir=work,redirect_dir=on,metacopy=off,index=off,xino=off",
                "merged",
            ])
            .output()
            .map_err(io_err("running mount"))?;
        if !out.status.success() {
            return Err(ComposeError::Layer(format!(
                "mounting the overlay over the base checkout failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        o.mounted = true;
        Ok(o)
    }

    /// The writable root.
    pub fn merged(&self) -> PathBuf {
        self.dir.join("merged")
    }

    /// The work directory (holds `lower`, `upper`, `work`, `merged`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn unmount(&mut self) -> Result<()> {
        if !self.mounted {
            return Ok(());
        }
        let out = Command::new("umount")
            .arg(self.merged())
            .output()
            .map_err(io_err("running umount"))?;
        if !out.status.success() {
            return Err(ComposeError::Layer(format!(
                "unmounting {} failed: {}",
                self.merged().display(),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        self.mounted = false;
        Ok(())
    }

    /// Unmount, then build the tree of `base` with the upper layer's
    /// changes applied, writing only the changed files. Returns the root
    /// (dirtree, dirmeta) checksums.
    pub fn commit_changes(
        &mut self,
        tx: &Transaction<'_>,
        base: &Checksum,
    ) -> Result<(Checksum, Checksum)> {
        self.unmount()?;
        let upper = self.dir.join("upper");
        let mut ops = BTreeMap::new();
        strip_ovl_xattrs(&upper)?;
        scan_upper(&upper, &mut Vec::new(), &[], &mut ops)?;
        let repo = tx.repo();
        let c = repo.load_commit(base)?;
        let base_tree = MutableTree::from_stored(repo, &c.root_tree, &c.root_meta)?;
        let mut tree = base_tree.clone();
        // Parents sort before their children: structure first, then the
        // entries below it.
        for (path, op) in &ops {
            apply(&mut tree, &base_tree, path, op);
        }
        let mut changed = MutableTree::new();
        tx.write_dir_into(&upper, &mut changed, &CommitModifier::default(), &|_, _| {})?;
        // The upper directory itself is ours, not the tree's root.
        changed.meta = None;
        tree.overlay(changed);
        Ok(tree.write(tx)?)
    }
}

impl Drop for OverlayRoot {
    fn drop(&mut self) {
        if self.mounted && self.unmount().is_err() {
            // Never delete below a mount we could not take away.
            let _ = Command::new("umount").arg("-l").arg(self.merged()).status();
            return;
        }
        if let Some((parent, name)) = self
            .dir
            .parent()
            .zip(self.dir.file_name().and_then(|n| n.to_str()))
        {
            if let Ok(p) = oxtree_repo::fsutil::open_dir(parent) {
                let _ = oxtree_repo::transaction::remove_tree_at(&p, name);
            }
        }
    }
}

const OVL_PREFIX: &str = "trusted.overlay.";

/// Walk the upper layer: record whiteouts, opaque and redirected
/// directories by path, delete the whiteouts and strip overlayfs' own
/// xattrs, so what remains commits as plain files and directories.
/// `lower` is the path of the current directory in the lower layer.
fn scan_upper(
    dir: &Path,
    rel: &mut Vec<String>,
    lower: &[String],
    ops: &mut BTreeMap<Vec<String>, Op>,
) -> Result<()> {
    let mut names = Vec::new();
    for e in std::fs::read_dir(dir).map_err(io_err(format!("listing {}", dir.display())))? {
        let e = e.map_err(io_err(format!("listing {}", dir.display())))?;
        let name = e.file_name().into_string().map_err(|n| {
            ComposeError::Layer(format!("non-UTF-8 file name {n:?} in {}", dir.display()))
        })?;
        names.push(name);
    }
    names.sort();
    for name in names {
        let p = dir.join(&name);
        let md = std::fs::symlink_metadata(&p).map_err(io_err(format!("stat {}", p.display())))?;
        rel.push(name.clone());
        let ft = md.file_type();
        if ft.is_char_device() && md.rdev() == 0 {
            ops.insert(rel.clone(), Op::Delete);
            std::fs::remove_file(&p).map_err(io_err(format!("removing {}", p.display())))?;
        } else if ft.is_dir() {
            let opaque = get_xattr(&p, "trusted.overlay.opaque")?;
            let redirect = get_xattr(&p, "trusted.overlay.redirect")?;
            let mut sub_lower = lower.to_vec();
            sub_lower.push(name.clone());
            if let Some(r) = redirect {
                let r = String::from_utf8_lossy(&r).into_owned();
                sub_lower = if let Some(abs) = r.strip_prefix('/') {
                    components(abs)
                } else {
                    let mut l = lower.to_vec();
                    l.extend(components(&r));
                    l
                };
                ops.insert(rel.clone(), Op::Redirect(sub_lower.clone()));
            } else if opaque.as_deref() == Some(b"y") {
                ops.insert(rel.clone(), Op::Opaque);
            }
            strip_ovl_xattrs(&p)?;
            scan_upper(&p, rel, &sub_lower, ops)?;
        } else {
            if FileType::from_raw_mode(md.mode()) != FileType::RegularFile && !ft.is_symlink() {
                return Err(ComposeError::Layer(format!(
                    "/{} is a device, fifo or socket; an OS tree cannot hold it",
                    rel.join("/")
                )));
            }
            strip_ovl_xattrs(&p)?;
        }
        rel.pop();
    }
    Ok(())
}

fn components(p: &str) -> Vec<String> {
    p.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_string)
        .collect()
}

fn get_xattr(p: &Path, name: &str) -> Result<Option<Vec<u8>>> {
    let c = std::ffi::CString::new(name).expect("no NUL");
    oxtree_repo::fsutil::get_link_xattr(p, &c)
        .map_err(io_err(format!("reading {name} of {}", p.display())))
}

fn strip_ovl_xattrs(p: &Path) -> Result<()> {
    let mut buf = vec![0u8; 4096];
    let n = loop {
        match rustix::fs::llistxattr(p, &mut buf) {
            Ok(n) => break n,
            Err(rustix::io::Errno::RANGE) => buf.resize(buf.len() * 4, 0),
            Err(e) => {
                return Err(io_err(format!("listing xattrs of {}", p.display()))(
                    e.into(),
                ))
            }
        }
    };
    for name in buf[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        if name.starts_with(OVL_PREFIX.as_bytes()) {
            let c = std::ffi::CString::new(name).expect("split at NUL");
            rustix::fs::lremovexattr(p, c.as_c_str())
                .map_err(|e| io_err(format!("removing an xattr of {}", p.display()))(e.into()))?;
        }
    }
    Ok(())
}

fn subtree<'a>(t: &'a MutableTree, path: &[String]) -> Option<&'a MutableTree> {
    let mut cur = t;
    for c in path {
        cur = cur.dirs.get(c)?;
    }
    Some(cur)
}

/// Apply one structural change at `path` to `tree`.
fn apply(tree: &mut MutableTree, base: &MutableTree, path: &[String], op: &Op) {
    let Some((leaf, parents)) = path.split_last() else {
        return;
    };
    if *op == Op::Delete {
        let mut parent = tree;
        for c in parents {
            match parent.dirs.get_mut(c) {
                Some(p) => parent = p,
                None => return,
            }
        }
        parent.files.remove(leaf);
        parent.dirs.remove(leaf);
        return;
    }
    // The upper layer has these parents, so they get their metadata there.
    let mut parent = tree;
    for c in parents {
        parent = parent.dir_mut(c);
    }
    match op {
        Op::Delete => {}
        Op::Opaque => {
            parent.files.remove(leaf);
            parent.dirs.insert(leaf.clone(), MutableTree::new());
        }
        Op::Redirect(from) => {
            let t = subtree(base, from).cloned().unwrap_or_default();
            parent.files.remove(leaf);
            parent.dirs.insert(leaf.clone(), t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csum(b: u8) -> Checksum {
        Checksum::from_hex(&format!("{:02x}", b).repeat(32)).unwrap()
    }

    #[test]
    fn structural_changes_apply_parent_first() {
        let mut base = MutableTree::new();
        base.dir_at_path(&["usr", "etc", "apt"])
            .set_file("x", csum(1));
        base.dir_at_path(&["usr", "bin"]).set_file("b", csum(2));
        base.dir_at_path(&["usr"]).set_file("f", csum(3));
        let mut ops = BTreeMap::new();
        let p = |s: &str| components(s);
        ops.insert(p("etc"), Op::Redirect(p("usr/etc")));
        ops.insert(p("usr/etc"), Op::Delete);
        ops.insert(p("usr/bin"), Op::Opaque);
        ops.insert(p("etc/apt/x"), Op::Delete);
        let mut t = base.clone();
        for (path, op) in &ops {
            apply(&mut t, &base, path, op);
        }
        assert!(t.dirs["etc"].dirs["apt"].files.is_empty());
        assert!(!t.dirs["usr"].dirs.contains_key("etc"));
        assert!(t.dirs["usr"].dirs["bin"].files.is_empty());
        assert_eq!(t.dirs["usr"].files["f"], csum(3));
        // The base is untouched.
        assert_eq!(base.dirs["usr"].dirs["etc"].dirs["apt"].files["x"], csum(1));
    }
}

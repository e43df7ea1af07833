//! Derived layers: what a container build adds after an ostree image's
//! own layers (`FROM` the image, then `RUN apt-get install …`, built by
//! podman or buildah). Each is an ordinary OCI filesystem diff: files that
//! replace the lower ones, whiteouts (`.wh.NAME` deletes NAME) and opaque
//! directories (`.wh..wh..opq` hides the lower directory's content).
//!
//! A derived layer is imported as a commit of its own tree, whiteouts
//! kept as the files they are (stored under its blob ref like the ostree
//! layers, so that a later pull fetches only new layers); the tar import
//! is the repository's archive import (`commit --tree=tar=`), which
//! refuses `..`, NUL, device nodes and links to unknown members and never
//! extracts anything. The layers are then applied in order onto the
//! image's commit, which gives the tree that is deployed:
//! - `/etc` goes to `/usr/etc`, where ostree keeps the defaults the /etc
//!   merge starts from;
//! - `/var` is dropped: it is the host's, never touched by updates (what a
//!   build leaves there is apt's lists, caches and logs); so are `/run`,
//!   `/tmp`, `/proc`, `/sys` and `/dev`;
//! - a kernel the build installed (`/boot/vmlinuz-KVER`,
//!   `/boot/initrd.img-KVER`) moves to `/usr/lib/modules/KVER/` (`vmlinuz`,
//!   `initramfs.img`), where a deployment looks for it; the rest of
//!   `/boot` is dropped;
//! - the dpkg database needs nothing: in the image `/var/lib/dpkg` is a
//!   symlink into `/usr/share/dpkg/database`, so dpkg's writes land in
//!   `/usr`.

use crate::error::Result;
use oxtree_object::{Checksum, Commit};
use oxtree_repo::archive::ArchiveOptions;
use oxtree_repo::commit::CommitModifier;
use oxtree_repo::mtree::MutableTree;
use oxtree_repo::{Repo, Transaction};

/// OCI's whiteout prefix and opaque-directory marker.
const WHITEOUT: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

/// Top-level directories a derived layer may not change in a deployment.
const DROPPED: &[&str] = &["var", "run", "tmp", "proc", "sys", "dev"];

/// What applying derived layers left out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DerivedReport {
    /// Derived layers applied.
    pub layers: usize,
    /// Files and directories under `/var`, `/run`, … that were dropped.
    pub dropped: usize,
    /// Kernels moved from `/boot` to `/usr/lib/modules/KVER`.
    pub kernels: Vec<String>,
}

/// Import the plain tar `file` (one derived layer, uncompressed) as a
/// commit of its own tree; its checksum.
pub fn import_layer(txn: &Transaction<'_>, file: std::fs::File) -> Result<Checksum> {
    let mut mt = MutableTree::new();
    let opts = ArchiveOptions {
        autocreate_parents: true,
        ..Default::default()
    };
    txn.write_archive_file_into(file, &mut mt, &CommitModifier::default(), &opts)?;
    let (root_tree, root_meta) = mt.write(txn)?;
    crate::pull::layer_commit(txn, root_tree, root_meta)
}

/// Count the entries of a tree (for the report of what was dropped).
fn count(t: &MutableTree) -> usize {
    t.files.len() + t.dirs.values().map(|d| 1 + count(d)).sum::<usize>()
}

/// A derived layer's tree mapped to the deployable layout.
fn to_deployable(mut upper: MutableTree, report: &mut DerivedReport) -> MutableTree {
    for name in DROPPED {
        if let Some(d) = upper.dirs.remove(*name) {
            report.dropped += 1 + count(&d);
        }
        if upper.files.remove(*name).is_some() {
            report.dropped += 1;
        }
    }
    if let Some(etc) = upper.dirs.remove("etc") {
        upper.dir_mut("usr").dir_mut("etc").overlay(etc);
    }
    if let Some(boot) = upper.dirs.remove("boot") {
        report.dropped += 1 + count(&boot);
        for (name, csum) in &boot.files {
            let (kver, file) = if let Some(k) = name.strip_prefix("vmlinuz-") {
                (k, "vmlinuz")
            } else if let Some(k) = name.strip_prefix("initrd.img-") {
                (k, "initramfs.img")
            } else {
                continue;
            };
            if oxtree_object::name::validate_filename(kver).is_err() {
                continue;
            }
            upper
                .dir_at_path(&["usr", "lib", "modules", kver])
                .set_file(file, *csum);
            report.dropped -= 1;
            if file == "vmlinuz" {
                report.kernels.push(kver.to_string());
            }
        }
    }
    upper
}

/// Lay `upper` over `lower` with OCI layer semantics.
fn apply(lower: &mut MutableTree, mut upper: MutableTree) {
    if upper.files.remove(OPAQUE).is_some() {
        lower.files.clear();
        lower.dirs.clear();
    }
    let whiteouts: Vec<String> = upper
        .files
        .keys()
        .filter(|n| n.starts_with(WHITEOUT))
        .cloned()
        .collect();
    for w in whiteouts {
        upper.files.remove(&w);
        let gone = &w[WHITEOUT.len()..];
        lower.files.remove(gone);
        lower.dirs.remove(gone);
    }
    if upper.meta.is_some() {
        lower.meta = upper.meta;
    }
    for (n, c) in upper.files {
        lower.set_file(&n, c);
    }
    for (n, sub) in upper.dirs {
        apply(lower.dir_mut(&n), sub);
    }
}

/// The tree of `base` with the derived layer commits `layers` applied in
/// order: its (dirtree, dirmeta), written through `txn`, and the report.
pub fn merged_tree(
    repo: &Repo,
    txn: &Transaction<'_>,
    base: &Commit,
    layers: &[Checksum],
) -> Result<((Checksum, Checksum), DerivedReport)> {
    let mut tree = MutableTree::from_stored(repo, &base.root_tree, &base.root_meta)?;
    let mut report = DerivedReport::default();
    for l in layers {
        let c = repo.load_commit(l)?;
        let upper = MutableTree::from_stored(repo, &c.root_tree, &c.root_meta)?;
        // The layer's own root metadata is autocreated: the image's stays.
        let mut upper = to_deployable(upper, &mut report);
        upper.meta = None;
        apply(&mut tree, upper);
        report.layers += 1;
    }
    Ok((tree.write(txn)?, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(n: u8) -> Checksum {
        Checksum([n; 32])
    }

    fn tree(files: &[(&str, u8)]) -> MutableTree {
        let mut t = MutableTree::new();
        for (path, n) in files {
            let comps: Vec<&str> = path.split('/').collect();
            let (leaf, dirs) = comps.split_last().unwrap();
            t.dir_at_path(dirs).set_file(leaf, c(*n));
        }
        t
    }

    #[test]
    fn whiteouts_opaque_dirs_and_the_layout() {
        let mut lower = tree(&[
            ("usr/bin/vi", 1),
            ("usr/bin/nano", 2),
            ("usr/share/doc/a/x", 3),
            ("usr/share/doc/b/y", 4),
            ("usr/etc/hostname", 5),
            ("usr/lib/modules/6.1/vmlinuz", 6),
        ]);
        let mut report = DerivedReport::default();
        let upper = tree(&[
            ("usr/bin/.wh.vi", 0),
            ("usr/bin/nano", 7),
            ("usr/share/doc/.wh..wh..opq", 0),
            ("usr/share/doc/c/z", 8),
            ("etc/hostname", 9),
            ("etc/new.conf", 10),
            ("var/lib/apt/lists/x", 11),
            ("var/log/apt/history.log", 12),
            ("tmp/junk", 13),
            ("boot/vmlinuz-6.12.0-1-amd64", 14),
            ("boot/initrd.img-6.12.0-1-amd64", 15),
            ("boot/config-6.12.0-1-amd64", 16),
        ]);
        apply(&mut lower, to_deployable(upper, &mut report));
        let has = |p: &str| {
            let comps: Vec<&str> = p.split('/').collect();
            lower.lookup_file(&comps)
        };
        assert_eq!(has("usr/bin/vi"), None);
        assert_eq!(has("usr/bin/.wh.vi"), None);
        assert_eq!(has("usr/bin/nano"), Some(c(7)));
        assert_eq!(has("usr/share/doc/a/x"), None);
        assert_eq!(has("usr/share/doc/c/z"), Some(c(8)));
        assert_eq!(has("usr/share/doc/.wh..wh..opq"), None);
        assert_eq!(has("usr/etc/hostname"), Some(c(9)));
        assert_eq!(has("usr/etc/new.conf"), Some(c(10)));
        assert_eq!(has("usr/lib/modules/6.1/vmlinuz"), Some(c(6)));
        assert_eq!(has("usr/lib/modules/6.12.0-1-amd64/vmlinuz"), Some(c(14)));
        assert_eq!(
            has("usr/lib/modules/6.12.0-1-amd64/initramfs.img"),
            Some(c(15))
        );
        assert!(!lower.dirs.contains_key("var"));
        assert!(!lower.dirs.contains_key("etc"));
        assert!(!lower.dirs.contains_key("boot"));
        assert_eq!(report.kernels, ["6.12.0-1-amd64"]);
        // var, var/lib, var/lib/apt, lists, x, var/log, apt, history.log;
        // tmp, junk; boot and its config file.
        assert_eq!(report.dropped, 12, "{report:?}");
    }

    #[test]
    fn a_whiteout_removes_a_directory_and_a_later_layer_can_bring_it_back() {
        let mut lower = tree(&[("usr/share/foo/a", 1), ("usr/share/bar", 2)]);
        let mut r = DerivedReport::default();
        apply(
            &mut lower,
            to_deployable(tree(&[("usr/share/.wh.foo", 0)]), &mut r),
        );
        assert!(!lower.dirs["usr"].dirs["share"].dirs.contains_key("foo"));
        apply(
            &mut lower,
            to_deployable(tree(&[("usr/share/foo/b", 3)]), &mut r),
        );
        let share = &lower.dirs["usr"].dirs["share"];
        assert_eq!(share.dirs["foo"].files.keys().collect::<Vec<_>>(), ["b"]);
        assert_eq!(share.files["bar"], c(2));
    }
}

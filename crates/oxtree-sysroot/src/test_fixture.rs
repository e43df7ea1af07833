//! Unit-test fixture: a sysroot in a temporary directory (no loop mount
//! needed: nothing here freezes a filesystem) with a stateroot `os` and a
//! small bootable tree committed as `os/main`.

use crate::{init_fs, Sysroot};
use oxtree_object::{Checksum, Commit, Metadata};
use oxtree_repo::{CommitModifier, MutableTree};
use std::path::Path;

/// Write `files` (path, content) under `dir`.
pub fn write_tree(dir: &Path, files: &[(&str, &str)]) {
    for (p, text) in files {
        let f = dir.join(p);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, text).unwrap();
    }
}

/// The tree every fixture commit starts from: a kernel, `/usr/etc`.
pub const BASE: &[(&str, &str)] = &[
    ("usr/lib/modules/6.1.0-test/vmlinuz", "kernel"),
    ("usr/lib/modules/6.1.0-test/initramfs.img", "initramfs"),
    ("usr/etc/hostname", "fixture\n"),
    ("usr/etc/os-release", "ID=fixture\n"),
    ("usr/bin/tool", "#!/bin/sh\n"),
];

/// Commit `BASE` plus `extra` as `os/main` (version `version`).
pub fn commit(s: &Sysroot, version: &str, extra: &[(&str, &str)]) -> Checksum {
    let t = tempfile::tempdir().unwrap();
    write_tree(t.path(), BASE);
    write_tree(t.path(), extra);
    let repo = s.repo();
    let txn = repo.begin().unwrap();
    let mut mt = MutableTree::new();
    txn.write_dir_into(t.path(), &mut mt, &CommitModifier::default(), &|_, _| {})
        .unwrap();
    let (root_tree, root_meta) = mt.write(&txn).unwrap();
    let mut metadata = Metadata::new();
    metadata.set_str("version", version);
    let c = txn
        .write_commit(&Commit {
            metadata,
            parent: None,
            related: Vec::new(),
            subject: String::new(),
            body: String::new(),
            timestamp: 1_700_000_000 + version.len() as u64,
            root_tree,
            root_meta,
        })
        .unwrap();
    txn.commit().unwrap();
    repo.write_ref("os/main", Some(&c), false).unwrap();
    c
}

/// An initialised sysroot with stateroot `os`, opened locked.
pub fn sysroot() -> (tempfile::TempDir, Sysroot) {
    let d = tempfile::tempdir().unwrap();
    init_fs(d.path(), false).unwrap();
    let s = Sysroot::open_locked(d.path()).unwrap();
    s.init_stateroot("os").unwrap();
    (d, s)
}

/// Deploy options for the fixture's stateroot `os`, nothing else set.
pub fn os_opts() -> crate::DeployOptions {
    crate::DeployOptions {
        osname: Some("os".into()),
        ..Default::default()
    }
}

//! `import::import_layer` on an untrusted (uncompressed) layer tar, into a
//! transaction of a scratch bare-user repository that is never committed.
//!
//! Must never panic nor allocate without bound (objects whose content does
//! not hash to their name are refused by the transaction, an error here).
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxtree_repo::{Repo, RepoMode};
use std::sync::atomic::AtomicBool;
use std::sync::OnceLock;

fn repo() -> &'static Repo {
    static REPO: OnceLock<(tempfile::TempDir, Repo)> = OnceLock::new();
    &REPO
        .get_or_init(|| {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let repo = Repo::init(&dir.path().join("repo"), RepoMode::BareUser).expect("init");
            (dir, repo)
        })
        .1
}

fuzz_target!(|data: &[u8]| {
    let repo = repo();
    let txn = repo.begin().expect("a transaction");
    let cancel = AtomicBool::new(false);
    let _ = oxtree_container::import::import_layer(&txn, data, &cancel);
    drop(txn);
});

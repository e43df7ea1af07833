//! `commit --tree=tar=` on untrusted bytes: `write_archive_file_into` (tar,
//! cpio newc, gzip of either, with a pathname filter and autocreated
//! parents), into a transaction of a scratch repository that is never
//! committed.
//!
//! Must never panic; a member path that would leave the tree must be an
//! error, never a file outside it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxtree_repo::archive::{ArchiveOptions, PathnameFilter};
use oxtree_repo::commit::CommitModifier;
use oxtree_repo::mtree::MutableTree;
use oxtree_repo::{Repo, RepoMode};
use std::io::{Seek, Write};
use std::sync::OnceLock;

fn repo() -> &'static Repo {
    static REPO: OnceLock<(tempfile::TempDir, Repo)> = OnceLock::new();
    &REPO
        .get_or_init(|| {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let repo = Repo::init(&dir.path().join("repo"), RepoMode::Bare).expect("init");
            (dir, repo)
        })
        .1
}

fuzz_target!(|data: &[u8]| {
    let repo = repo();
    let txn = repo.begin().expect("a transaction");
    let mut f = tempfile::tempfile().expect("a temp file");
    f.write_all(data).expect("writing the input");
    f.rewind().expect("rewinding");
    let opts = ArchiveOptions {
        autocreate_parents: data.first().is_some_and(|b| b & 1 == 1),
        pathname_filter: Some(PathnameFilter::parse("^usr/,usr/lib/").expect("a filter")),
    };
    let mut mt = MutableTree::new();
    let _ = txn.write_archive_file_into(f, &mut mt, &CommitModifier::default(), &opts);
    drop(txn);
});

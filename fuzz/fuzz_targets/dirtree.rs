//! `DirTree::decode` on untrusted `.dirtree` bytes.
//!
//! Must never panic. When decoding succeeds the result is fully validated
//! (names, strict order, no file/dir clash), so re-encoding it must decode
//! back to the same tree, entry for entry and in the same order.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxtree_object::DirTree;

fuzz_target!(|data: &[u8]| {
    let Ok(tree) = DirTree::decode(data) else {
        return;
    };
    let enc = tree.encode();
    let back = DirTree::decode(&enc).expect("re-encoded dirtree must decode");
    assert_eq!(back, tree);
    // Normal form is a fixed point, and only normal form decodes.
    assert_eq!(back.encode(), enc);
    assert_eq!(enc, data);
    let _ = tree.checksum();
});

//! `Commit::decode` on untrusted `.commit` bytes, plus `text::print` of every
//! metadata value (what `oxtree show` / `log` render).
//!
//! Must never panic. Only normal form decodes, so a decoded commit encodes
//! to exactly the input bytes, and survives encode → decode unchanged
//! (metadata compares by its normal-form encoding and by its text form);
//! cloning it — which the repository layer does freely — must work.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use oxtree_object::Commit;

fuzz_target!(|data: &[u8]| {
    let Ok(commit) = Commit::decode(data) else {
        return;
    };
    let printed = common::print_all(&commit.metadata);
    for (key, _) in &commit.metadata.0 {
        let _ = commit.metadata.get(key);
    }
    let _ = commit.version();
    let _ = commit.content_checksum();
    let copy = commit.clone();
    let enc = commit.encode();
    let _ = commit.checksum();
    assert_eq!(enc, data, "a decoded commit must re-encode to its bytes");
    let back = Commit::decode(&enc).expect("re-encoded commit must decode");
    assert_eq!(back, copy);
    assert_eq!(back.encode(), enc);
    // Metadata equality is by encoding, which a lossy encoder satisfies
    // trivially; the printed values must match too.
    assert_eq!(common::print_all(&back.metadata), printed);
});

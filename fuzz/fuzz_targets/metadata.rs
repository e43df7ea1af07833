//! `Metadata::decode` on untrusted `a{sv}` bytes (detached `.commitmeta`,
//! and the first member of every commit), plus `text::print` of each value.
//!
//! Must never panic. Only normal form decodes, so a decoded value re-encodes
//! to exactly the input bytes, which decode to an equal value that prints
//! the same text.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use oxtree_object::Metadata;

fuzz_target!(|data: &[u8]| {
    let Ok(md) = Metadata::decode(data) else {
        return;
    };
    let printed = common::print_all(&md);
    for (key, _) in &md.0 {
        let _ = md.get_str(key);
    }
    let copy = md.clone();
    let enc = md.encode();
    assert_eq!(enc, data, "decoded metadata must re-encode to its bytes");
    let back = Metadata::decode(&enc).expect("re-encoded metadata must decode");
    assert_eq!(back, copy);
    assert_eq!(back.encode(), enc);
    assert_eq!(common::print_all(&back), printed);
});

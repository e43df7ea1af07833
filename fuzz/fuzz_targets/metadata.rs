//! `Metadata::decode` on untrusted `a{sv}` bytes (detached `.commitmeta`,
//! and the first member of every commit), plus `text::print` of each value.
//!
//! Must never panic. A decoded value re-encodes to something that decodes to
//! an equal value and prints the same text.
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
    if !common::round_trip_expected(&md) {
        return;
    }
    let back = Metadata::decode(&enc).expect("re-encoded metadata must decode");
    assert_eq!(back, copy);
    assert_eq!(back.encode(), enc);
    assert_eq!(common::print_all(&back), printed);
});

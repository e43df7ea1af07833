//! The GVariant text parser (`oxtree_object::text::parse`, behind
//! `summary --add-metadata`): must never panic, and what it accepts prints
//! back to text that parses to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxtree_object::text::{parse, print};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(v) = parse(s) {
        let t = print(&v);
        let again = parse(&t).unwrap_or_else(|e| panic!("{t:?} does not parse back: {e}"));
        assert_eq!(print(&again), t);
    }
});

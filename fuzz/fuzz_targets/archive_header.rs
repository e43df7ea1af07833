//! `ArchiveHeader::decode` on the start of an untrusted `.filez` object
//! (BE u32 size ‖ 4 NUL ‖ `(tuuuusa(ayay))`).
//!
//! Must never panic; the returned content offset must lie inside the input;
//! a decoded header re-encodes to exactly `offset` bytes that decode back to
//! the same header.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxtree_object::ArchiveHeader;

fuzz_target!(|data: &[u8]| {
    let Ok((hdr, off)) = ArchiveHeader::decode(data) else {
        return;
    };
    assert!(off >= 8 && off <= data.len(), "offset {off} outside input");
    hdr.file
        .validate()
        .expect("decode returned an invalid header");
    let enc = hdr.encode();
    let (back, back_off) = ArchiveHeader::decode(&enc).expect("re-encoded header must decode");
    assert_eq!(back, hdr);
    assert_eq!(back_off, enc.len());
});

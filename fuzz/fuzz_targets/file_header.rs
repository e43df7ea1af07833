//! `FileHeader::decode` on untrusted `(uuuusa(ayay))` header bytes.
//!
//! Must never panic. A decoded header is valid by construction and must
//! survive encode → decode unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxtree_object::FileHeader;

fuzz_target!(|data: &[u8]| {
    let Ok(hdr) = FileHeader::decode(data) else {
        return;
    };
    hdr.validate().expect("decode returned an invalid header");
    assert!(hdr.is_regular() != hdr.is_symlink());
    let enc = hdr.encode();
    let back = FileHeader::decode(&enc).expect("re-encoded header must decode");
    assert_eq!(back, hdr);
    assert_eq!(back.encode(), enc);
    let _ = hdr.checksum(b"");
});

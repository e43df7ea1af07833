//! `DirMeta::decode` on untrusted `.dirmeta` bytes.
//!
//! Must never panic; a decoded value must survive encode → decode unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxtree_object::DirMeta;

fuzz_target!(|data: &[u8]| {
    let Ok(meta) = DirMeta::decode(data) else {
        return;
    };
    let enc = meta.encode();
    let back = DirMeta::decode(&enc).expect("re-encoded dirmeta must decode");
    assert_eq!(back, meta);
    assert_eq!(back.encode(), enc);
    // Only normal form decodes.
    assert_eq!(enc, data);
    let _ = meta.checksum();
    let _: Vec<_> = meta.xattrs.iter().collect();
});

//! `ArchiveHeader::read_object` on a complete untrusted `.filez` object:
//! header plus raw-deflate content.
//!
//! Must never panic nor allocate without bound (libFuzzer's -malloc_limit_mb
//! catches that); on success the content has exactly the announced size and
//! `write_object` of the result reads back identically.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxtree_object::ArchiveHeader;

fuzz_target!(|data: &[u8]| {
    let Ok((hdr, content)) = ArchiveHeader::read_object(data) else {
        return;
    };
    let (announced, _) = ArchiveHeader::decode(data).expect("read_object decoded it");
    assert_eq!(announced.size, content.len() as u64);
    assert_eq!(announced.file, hdr);
    let obj = ArchiveHeader::write_object(&hdr, &content);
    let (hdr2, content2) = ArchiveHeader::read_object(&obj).expect("rewritten object must read");
    assert_eq!(hdr2, hdr);
    assert_eq!(content2, content);
});

//! `Superblock::decode` (and the signed wrapper) on untrusted superblock
//! bytes, as fetched from a server or read by `apply-offline`.
//!
//! Must never panic. A superblock that decodes re-encodes to one that
//! decodes to the same value; its inline parts and detached metadata can
//! be looked up without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxtree_object::static_delta::{decode_signed, Superblock};

fuzz_target!(|data: &[u8]| {
    let inner = match decode_signed(data) {
        Ok(Some((inner, _sigs))) => inner,
        Ok(None) => data.to_vec(),
        Err(_) => return,
    };
    let Ok(sb) = Superblock::decode(&inner) else {
        return;
    };
    let _ = sb.name();
    let _ = sb.endianness.describe();
    for i in 0..sb.parts.len().min(4) {
        let _ = sb.inline_part(i);
    }
    let enc = sb.encode();
    let back = Superblock::decode(&enc).expect("re-encoded superblock must decode");
    assert_eq!(back.parts, sb.parts);
    assert_eq!(back.fallbacks, sb.fallbacks);
    assert_eq!(
        (back.from, back.to, back.timestamp),
        (sb.from, sb.to, sb.timestamp)
    );
    assert_eq!(back.commit_bytes, sb.commit_bytes);
});

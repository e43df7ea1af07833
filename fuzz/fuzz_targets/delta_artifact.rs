//! The manifest of a static delta artifact a registry hands us
//! (`oxtree_container::delta::parse_manifest`): must never panic; an
//! accepted one names a superblock and parts with distinct indices and
//! well-formed digests.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxtree_container::delta::parse_manifest;
use oxtree_object::Checksum;

fuzz_target!(|data: &[u8]| {
    let subject = format!("sha256:{}", "c".repeat(64));
    let (from, to) = (Checksum([1; 32]), Checksum([2; 32]));
    if let Ok(m) = parse_manifest(data, &subject, &from, &to) {
        assert!(m.superblock.0.starts_with("sha256:"));
        let mut idx: Vec<usize> = m.parts.iter().map(|p| p.0).collect();
        idx.sort_unstable();
        idx.dedup();
        assert_eq!(idx.len(), m.parts.len());
        assert!(m.size() >= m.superblock.1);
    }
});

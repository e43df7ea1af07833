//! Ref files and refspecs: `parse_ref_contents` on untrusted ref bytes and
//! `parse_refspec` / `validate_ref_name` on untrusted names.
//!
//! Must never panic; an accepted ref file must hold exactly one checksum.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxtree_repo::refs::{parse_ref_contents, parse_refspec, validate_ref_name};

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = parse_ref_contents(data) {
        let text = format!("{c}\n");
        assert!(data == text.as_bytes() || data == &text.as_bytes()[..64]);
    }
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok((remote, name)) = parse_refspec(s) {
            // Accepted names never escape refs/: no empty, `.` or `..` parts.
            for part in name.split('/').chain(remote) {
                assert!(!part.is_empty() && part != "." && part != "..");
                assert!(validate_ref_name(part).is_ok());
            }
        }
    }
});

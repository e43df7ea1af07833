//! What an HTTP peer controls as text: the path a client asks `oxtree
//! serve` for, its `Range` header, and the `REF[@COMMIT]` a pull request names.
//!
//! Must never panic; an accepted path never leaves the repository.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxtree_transport::pull::parse_ref_request;
use oxtree_transport::serve::{parse_range, request_path, ByteRange};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(rel) = request_path(s) {
        assert!(!rel.starts_with('/'));
        for c in rel.split('/') {
            assert!(!c.is_empty() && c != "." && c != ".." && !c.contains('\0'), "{rel:?}");
        }
    }
    let _ = parse_ref_request(s);
    // A range is always within the file it is asked of.
    let size = data.len() as u64 % 4096;
    if let ByteRange::Part(first, last) = parse_range(s, size) {
        assert!(first <= last && last < size, "{s:?} of {size}: {first}-{last}");
    }
});

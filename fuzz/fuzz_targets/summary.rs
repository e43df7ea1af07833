//! `Summary::decode` on untrusted `summary` bytes from a remote, and the
//! collection map (`ostree.summary.collection-map`) read from it.
//!
//! Must never panic; what decodes must re-encode to something that decodes
//! to the same refs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxtree_transport::summary::Summary;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = Summary::decode(data) else {
        return;
    };
    for r in &s.refs {
        let _ = (r.timestamp(), r.version());
    }
    let _ = (s.last_modified(), s.mode(), s.collection_id());
    // The collection map is parsed lazily, from the decoded metadata.
    if let Ok(map) = s.collection_map() {
        for (id, refs) in &map {
            if let Some(r) = refs.first() {
                let _ = s.find_collection_ref(id, &r.name);
            }
        }
    }
    if let Ok(back) = Summary::decode(&s.encode()) {
        let names: Vec<_> = back.refs.iter().map(|r| (&r.name, r.commit)).collect();
        let orig: Vec<_> = s.refs.iter().map(|r| (&r.name, r.commit)).collect();
        assert_eq!(names, orig);
    }
});

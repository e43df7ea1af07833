//! `Summary::decode` on untrusted `summary` bytes from a remote.
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
    let _ = (s.last_modified(), s.mode());
    if let Ok(back) = Summary::decode(&s.encode()) {
        let names: Vec<_> = back.refs.iter().map(|r| (&r.name, r.commit)).collect();
        let orig: Vec<_> = s.refs.iter().map(|r| (&r.name, r.commit)).collect();
        assert_eq!(names, orig);
    }
});

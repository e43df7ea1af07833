//! What an agent client controls: the body of `POST /v1/host/{kind}`
//! (`oxtree_agent::request::parse`), and what an agent sends the CLI's
//! event-stream parser.
//!
//! Must never panic; an accepted request names only valid package names
//! and serializes back to JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxtree_agent::request::{is_package_name, parse, OpRequest, KINDS};
use oxtree_agent::sse::SseParser;

fuzz_target!(|data: &[u8]| {
    let Some((&k, body)) = data.split_first() else {
        return;
    };
    let kind = KINDS[k as usize % KINDS.len()];
    if let Ok(r) = parse(kind, body) {
        assert_eq!(r.kind(), kind);
        if let OpRequest::Packages(p) = &r {
            for n in p.install.iter().chain(&p.uninstall) {
                assert!(is_package_name(n), "{n:?}");
                assert!(!n.contains('/') && !n.starts_with('-'), "{n:?}");
            }
        }
        serde_json::to_string(&r).unwrap();
    }
    // The same bytes as a stream, split in two at an arbitrary point.
    let mut p = SseParser::default();
    let cut = k as usize % (body.len() + 1);
    p.feed(&body[..cut]);
    for e in p.feed(&body[cut..]) {
        assert!(!e.event.is_empty());
    }
});

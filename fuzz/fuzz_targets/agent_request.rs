//! What an agent client controls: the body of `POST /v1/host/{kind}`
//! (`oxtree_agent::request::parse`) and of `PUT /v1/network/links/{name}`
//! (`parse_static_network`), and what an agent sends the CLI's
//! event-stream parser.
//!
//! Must never panic; an accepted request names only valid package names
//! and serializes back to JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxtree_agent::request::{is_package_name, parse, parse_static_network, OpRequest, KINDS};
use oxtree_agent::sse::SseParser;

fuzz_target!(|data: &[u8]| {
    let Some((&k, body)) = data.split_first() else {
        return;
    };
    let kind = KINDS[k as usize % KINDS.len()];
    if let Ok(r) = parse(kind, body) {
        assert_eq!(r.kind(), kind);
        if let OpRequest::Packages(p) = &r {
            let lists = [&p.install, &p.uninstall, &p.override_remove, &p.override_reset];
            for n in lists.into_iter().flatten() {
                assert!(is_package_name(n), "{n:?}");
                assert!(!n.contains('/') && !n.starts_with('-'), "{n:?}");
            }
        }
        serde_json::to_string(&r).unwrap();
    }
    // The same bytes as a static network configuration: accepted only with
    // checked addresses, and its .network text has no line an address
    // did not put there.
    if let Ok(c) = parse_static_network(body) {
        let checked = c.check().expect("accepted but fails its check");
        let text = checked.render("eth0");
        let lines = text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')).count();
        assert_eq!(lines, 3 + c.addresses.len() + c.gateway.iter().count() + c.dns.len(), "{text}");
    }
    // The same bytes as a stream, split in two at an arbitrary point.
    let mut p = SseParser::default();
    let cut = k as usize % (body.len() + 1);
    p.feed(&body[..cut]);
    for e in p.feed(&body[cut..]) {
        assert!(!e.event.is_empty());
    }
});

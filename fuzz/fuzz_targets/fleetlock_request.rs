//! What a FleetLock client controls: the `fleet-lock-protocol` header and
//! the request body that `oxtree fleetlock serve` parses
//! (`oxtree_fleetlock::protocol::parse_request`).
//!
//! Must never panic; an accepted request satisfies every documented limit
//! (group pattern and lengths, non-empty id without control characters),
//! so nothing unchecked reaches etcd key names.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxtree_fleetlock::protocol::{parse_request, valid_group, MAX_BODY, MAX_ID, MAX_VERSION};

fuzz_target!(|data: &[u8]| {
    // The first byte picks the header: absent, "true", or fuzzer bytes.
    let (header, body): (Option<&[u8]>, &[u8]) = match data.split_first() {
        None => (None, data),
        Some((0, rest)) => (None, rest),
        Some((1, rest)) => match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (Some(&rest[..i]), &rest[i + 1..]),
            None => (Some(rest), &[][..]),
        },
        Some((_, rest)) => (Some(b"true".as_slice()), rest),
    };
    if let Ok(req) = parse_request(header, body) {
        assert!(body.len() <= MAX_BODY);
        let p = &req.client_params;
        assert!(valid_group(&p.group), "{:?}", p.group);
        assert!(!p.id.is_empty() && p.id.len() <= MAX_ID);
        assert!(!p.id.chars().any(char::is_control));
        if let Some(v) = req.rollout.as_ref().and_then(|r| r.version.as_ref()) {
            assert!(!v.is_empty() && v.len() <= MAX_VERSION);
        }
        // What the server logs and stores serialises and parses back.
        let json = serde_json::to_vec(&req).unwrap();
        assert_eq!(parse_request(Some(b"true"), &json).unwrap(), req);
    }
});

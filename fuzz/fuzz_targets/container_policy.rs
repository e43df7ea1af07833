//! containers-policy.json as `ostree-image-signed:` pulls read it:
//! `Policy::parse` (strict serde: unknown and repeated keys, empty lists,
//! unknown types refused), the scope lookup, and the docker reference
//! grammar the identity rules compare (`DockerRef::parse`, normalized).
//!
//! Must never panic. An accepted policy yields, for any reference, a
//! scope that is `default` or one of its `transports.docker` keys. An
//! accepted reference prints to a string that parses back to itself; its
//! namespaces start with its name; and every identity rule accepts or
//! refuses a signature claiming the input without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxtree_container::policy::{DockerRef, Policy, SignedIdentity};

const REFS: &[&str] = &[
    "127.0.0.1:5000/os:v1",
    "reg.example.com/ns/os:latest",
    "busybox",
    "quay.io/a/b@sha256:0000000000000000000000000000000000000000000000000000000000000000",
];

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Policy::parse(data) {
        let _ = p.default_is_insecure();
        let docker = p.transports.0.get("docker");
        for s in REFS {
            let mut r = DockerRef::parse(s).expect("a valid reference");
            if r.is_name_only() {
                r.tag = Some("latest".into());
            }
            let (scope, reqs) = p.requirements_for(&r).expect("a tagged reference");
            assert!(!reqs.0.is_empty());
            if scope != "default" {
                let key = scope
                    .strip_prefix("transports.docker ")
                    .expect("a docker scope");
                let key: String = serde_json::from_str(key).expect("a quoted key");
                assert!(docker.is_some_and(|d| d.0.contains_key(&key)), "{key}");
            }
        }
    }
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(r) = DockerRef::parse(s) {
        let again = DockerRef::parse(&r.to_string()).expect("a printed reference parses");
        assert_eq!(again, r);
        assert_eq!(r.namespaces()[0], r.name);
        if r.tag.is_some() != r.digest.is_some() {
            assert!(r.identity().is_ok());
        }
    }
    let intended = DockerRef::parse("127.0.0.1:5000/os:v1").unwrap();
    for rule in [
        SignedIdentity::MatchExact {},
        SignedIdentity::MatchRepoDigestOrExact {},
        SignedIdentity::MatchRepository {},
        SignedIdentity::RemapIdentity {
            prefix: "127.0.0.1:5000".into(),
            signed_prefix: "quay.io/x".into(),
        },
    ] {
        let _ = rule.check(&intended, s);
    }
});

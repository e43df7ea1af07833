//! The untrusted bytes of a sigstore signature an `ostree-image-signed:`
//! pull fetches: the attachment manifest (`parse_attachment_manifest`),
//! a signature payload (`parse_payload`, strict), a public key
//! (`parse_public_key`) and a base64 DER signature (`verify_signature`).
//!
//! Must never panic. An accepted manifest has at most `MAX_ATTACHMENTS`
//! layers; an accepted payload, written again in cosign's form, parses to
//! the same payload; a signature the fuzzer makes up never verifies under
//! a fixed key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxtree_container::sigstore::{
    parse_attachment_manifest, parse_payload, parse_public_key, verify_signature, MAX_ATTACHMENTS,
};

const KEY: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAELlnczj9BbTOvdLlN45olovmDMmKb
eMAq7mdW3XWsuTeNF941NKozYHu7WOFp2+NBpsaOiiO5NDwB+E23uJ531A==
-----END PUBLIC KEY-----
";

fuzz_target!(|data: &[u8]| {
    if let Ok(layers) = parse_attachment_manifest(data) {
        assert!(layers.len() <= MAX_ATTACHMENTS);
    }
    if let Ok(p) = parse_payload(data) {
        let mut optional = serde_json::Map::new();
        if let Some(c) = &p.creator {
            optional.insert("creator".into(), c.clone().into());
        }
        if let Some(t) = p.timestamp {
            optional.insert("timestamp".into(), t.into());
        }
        let again = serde_json::json!({
            "critical": {
                "identity": {"docker-reference": p.docker_reference},
                "image": {"docker-manifest-digest": p.manifest_digest},
                "type": "cosign container image signature",
            },
            "optional": optional,
        });
        let bytes = serde_json::to_vec(&again).unwrap();
        assert_eq!(parse_payload(&bytes).expect("cosign's form parses"), p);
    }
    let _ = parse_public_key(data);
    let key = parse_public_key(KEY.as_bytes()).expect("the fixed key");
    // The input split: a payload, then a base64 signature after the last
    // newline.
    let s = String::from_utf8_lossy(data);
    let (payload, sig) = s.rsplit_once('\n').unwrap_or((&s, ""));
    assert!(verify_signature(&[key], payload.as_bytes(), sig).is_err());
});

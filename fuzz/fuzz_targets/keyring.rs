//! OpenPGP keyrings (`REMOTE.trustedkeys.gpg`, `gpg-import` input): parsed
//! from binary or armored bytes. Local and normally trusted, but imported
//! from wherever an administrator got them.
//!
//! Must never panic; what parses must serialize and parse back to the same
//! fingerprints.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxtree_transport::gpg::{self, Keyring};

fuzz_target!(|data: &[u8]| {
    let Ok(keys) = gpg::parse_public_keys(data) else {
        return;
    };
    let _ = gpg::check_keys(&keys);
    let fprs: Vec<String> = keys
        .iter()
        .map(|k| gpg::fingerprint_hex(&k.primary_key))
        .collect();
    let ring = Keyring::from_keys(keys);
    let _ = ring.verify(b"data", &[data.to_vec()]);
    if let Ok(bytes) = ring.to_bytes() {
        if let Ok(back) = gpg::parse_public_keys(&bytes) {
            let again: Vec<String> = back
                .iter()
                .map(|k| gpg::fingerprint_hex(&k.primary_key))
                .collect();
            assert_eq!(again, fprs);
        }
    }
});

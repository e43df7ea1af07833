//! Detached signature metadata from a remote (`.commitmeta` or
//! `summary.sig`): the `a{sv}` decode, the `aay` extraction under
//! `ostree.gpgsigs` / `ostree.sign.ed25519`, OpenPGP signature packet
//! parsing and verification attempts against fixed keys.
//!
//! Must never panic, and never accept: the signed data is fixed and no
//! input can hold a valid signature over it by keys nobody has.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxtree_object::Metadata;
use oxtree_transport::gpg::{self, Keyring};
use oxtree_transport::sign::{self, Ed25519Trust, ED25519_KEY, GPG_KEY};

fuzz_target!(|data: &[u8]| {
    // Raw bytes as one OpenPGP signature blob.
    let _ = gpg::parse_signatures(data);
    let _ = gpg::signature_issuers(data);
    let Ok(md) = Metadata::decode(data) else {
        return;
    };
    if let Ok(sigs) = sign::signatures_in(&md, GPG_KEY) {
        for s in &sigs {
            let _ = gpg::parse_signatures(s);
        }
        assert!(Keyring::new().verify(b"commit", &sigs).is_err());
    }
    if let Ok(sigs) = sign::signatures_in(&md, ED25519_KEY) {
        let mut t = Ed25519Trust::new();
        t.add_trusted(
            sign::parse_public_key("Tb6azKRJvh2w3JIqfZ0wGNt7bmSdxJEi/gAr2vJ0E8A=").unwrap(),
        );
        assert!(t.verify(b"commit", &sigs).is_err());
    }
});

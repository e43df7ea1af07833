//! The node id sent to the lock server: an app-specific id derived from
//! the machine-id, as systemd's `sd_id128_get_machine_app_specific()`
//! computes it (and Zincati uses it, with its own application id):
//! HMAC-SHA256 keyed with the 16 machine-id bytes over the 16 bytes of
//! the application id, the first 16 bytes of the digest marked as a
//! version-4 UUID, written as 32 lowercase hex digits. The machine-id
//! itself (confidential per machine-id(5)) never leaves the host.
//!
//! oxtree's application id is its own, so the id differs from Zincati's
//! for the same machine (a fleet never mixes the two agents on one node).

use crate::error::{Result, UpdatesError};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::path::Path;

/// oxtree's application id for the FleetLock node id.
pub const APP_ID: [u8; 16] = [
    0x6f, 0x78, 0x74, 0x72, 0x65, 0x65, 0x4e, 0x5a, 0x8c, 0x1d, 0x3b, 0x52, 0x91, 0xe4, 0x0a, 0x77,
];

/// The app-specific id of `machine_id` (32 hex digits).
pub fn app_specific_id(machine_id: &str, app_id: &[u8; 16]) -> Result<String> {
    let m = machine_id.trim();
    let bytes = hex::decode(m)
        .ok()
        .filter(|b| b.len() == 16 && m.len() == 32)
        .ok_or_else(|| {
            UpdatesError::Invalid(format!("machine-id {m:?}: expected 32 hex digits"))
        })?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&bytes).expect("HMAC takes any key length");
    mac.update(app_id);
    let d = mac.finalize().into_bytes();
    let mut id = [0u8; 16];
    id.copy_from_slice(&d[..16]);
    id[6] = (id[6] & 0x0f) | 0x40;
    id[8] = (id[8] & 0x3f) | 0x80;
    Ok(hex::encode(id))
}

/// The node id of the host whose root is `root` (`etc/machine-id`).
pub fn node_id(root: &Path) -> Result<String> {
    let p = root.join("etc/machine-id");
    let text = std::fs::read_to_string(&p).map_err(|e| UpdatesError::io(&p, e))?;
    app_specific_id(&text, &APP_ID)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_like_systemd() {
        let a = app_specific_id("0123456789abcdef0123456789abcdef\n", &APP_ID).unwrap();
        // The same value as `systemd-id128 machine-id
        // --app-specific=6f787472-6565-4e5a-8c1d-3b5291e40a77` on a machine
        // with that machine-id.
        assert_eq!(a, "ae6db9a4df6d440eaa0905265c469602");
        assert_eq!(&a[12..13], "4", "version 4: {a}");
        assert!("89ab".contains(&a[16..17]), "variant: {a}");
        // Stable, and different per machine and per application.
        assert_eq!(
            a,
            app_specific_id("0123456789abcdef0123456789abcdef", &APP_ID).unwrap()
        );
        assert_ne!(
            a,
            app_specific_id("f123456789abcdef0123456789abcdef", &APP_ID).unwrap()
        );
        assert_ne!(
            a,
            app_specific_id("0123456789abcdef0123456789abcdef", &[0; 16]).unwrap()
        );
        assert!(app_specific_id("xyz", &APP_ID).is_err());
        assert!(app_specific_id("", &APP_ID).is_err());
    }
}

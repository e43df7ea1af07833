//! The OCI documents an image source hands us: `parse_manifest` (size
//! limit, oci-spec types), the `ostree.components` of a previous build, an
//! image config, and image references.
//!
//! Must never panic; an accepted manifest serializes and parses back to
//! the same layer digests and component lists.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxtree_container::encapsulate::{parse_manifest, prior_components};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = parse_manifest(data) {
        let comps = prior_components(&m);
        let again = serde_json::to_vec(&m).expect("a parsed manifest serializes");
        let m2 = parse_manifest(&again).expect("a serialized manifest parses");
        assert_eq!(prior_components(&m2), comps);
        assert_eq!(m2.layers().len(), m.layers().len());
        for (a, b) in m.layers().iter().zip(m2.layers()) {
            assert_eq!(a.digest(), b.digest());
        }
    }
    let _ = serde_json::from_slice::<oci_spec::image::ImageConfiguration>(data);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = oxtree_container::pull::parse_ostree_imgref(s);
        if let Ok(e) = oxtree_container::refescape::escape(s) {
            assert_eq!(oxtree_container::refescape::unescape(&e).unwrap(), s);
        }
    }
});

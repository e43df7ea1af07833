//! A Quadlet file from an OS image's `/usr/lib/bootc/bound-images.d`
//! (`oxtree_host::bound::quadlet_image`): must never panic, and an image
//! name it accepts is one podman cannot take for an option or a path
//! trick.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxtree_host::bound::{is_image_name, quadlet_image};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for section in ["Container", "Image"] {
        if let Some(i) = quadlet_image(&text, section) {
            assert!(is_image_name(&i), "{i:?}");
            assert!(!i.starts_with('-') && !i.contains(' '));
            assert!(!i.split('/').any(|c| c == ".." || c.is_empty()));
        }
    }
});

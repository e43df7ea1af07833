//! The GVariant codec itself (`oxtree_object::gvariant`) on any type and
//! any bytes: the input is a type string, a NUL, then the serialized value.
//!
//! Must never panic. The decoder accepts normal form only, so whatever
//! decodes must encode to exactly the input bytes; its text form must print
//! without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxtree_object::gvariant::{from_bytes, to_bytes, Type};

fuzz_target!(|data: &[u8]| {
    let Some(nul) = data.iter().position(|&b| b == 0) else {
        return;
    };
    let Ok(sig) = std::str::from_utf8(&data[..nul]) else {
        return;
    };
    let Ok(t) = Type::parse(sig) else {
        return;
    };
    assert_eq!(t.to_string(), sig);
    let body = &data[nul + 1..];
    let Ok(v) = from_bytes("fuzz", &t, body) else {
        return;
    };
    assert_eq!(v.type_(), t);
    let enc = to_bytes(&v);
    assert_eq!(enc, body, "a decoded value must re-encode to its bytes");
    let _ = oxtree_object::text::print(&v);
});

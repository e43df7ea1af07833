//! `metalink::parse` on untrusted metalink documents (a remote's
//! `metalink=URL`), for the `summary` entry.
//!
//! Must never panic. An accepted entry has what the pull relies on: a
//! non-zero size, a well-formed digest (64 or 128 lower-case hex digits)
//! and at least one http(s) URL; its `check` accepts only bytes of the
//! listed size.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxtree_transport::metalink;

fuzz_target!(|data: &[u8]| {
    let Ok(f) = metalink::parse(data, "summary") else {
        return;
    };
    assert!(f.size > 0);
    assert!(f.sha256.is_some() || f.sha512.is_some());
    let hex = |s: &str, n: usize| {
        s.len() == n && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    if let Some(h) = &f.sha256 {
        assert!(hex(h, 64), "{h}");
    }
    if let Some(h) = &f.sha512 {
        assert!(hex(h, 128), "{h}");
    }
    assert!(!f.urls.is_empty());
    for u in &f.urls {
        assert!(u.starts_with("http://") || u.starts_with("https://"), "{u}");
    }
    // A body of another size is refused before any hashing.
    if f.size < 4096 {
        let body = vec![0u8; f.size as usize + 1];
        assert!(f.check(&body).is_err());
    }
    // The whole document is a wrong body for the summary it describes
    // unless its size happens to match.
    if data.len() as u64 != f.size {
        assert!(f.check(data).is_err());
    }
});

//! `bspatch` on an untrusted raw bsdiff stream (the `B` opcode).
//!
//! Input: 4 bytes (LE) of output size (at most 1 MiB), 2 bytes (LE) of
//! old-file length, the old file, then the patch. Must never panic or
//! allocate beyond the declared output; a success yields exactly the
//! declared size.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxtree_object::static_delta::bspatch;

fuzz_target!(|data: &[u8]| {
    if data.len() < 6 {
        return;
    }
    let size = u32::from_le_bytes(data[..4].try_into().unwrap()) as u64 % (1 << 20);
    let old_len = u16::from_le_bytes([data[4], data[5]]) as usize;
    let rest = &data[6..];
    let old_len = old_len.min(rest.len());
    let (old, patch) = rest.split_at(old_len);
    if let Ok(new) = bspatch(old, size, patch) {
        assert_eq!(new.len() as u64, size);
    }
});

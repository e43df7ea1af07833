//! The delta generator's `bsdiff` followed by `bspatch` (what an applier
//! runs on the `B` opcode) must give back the new file, for any pair.
//!
//! Input: 2 bytes (LE) of old-file length, the old file, then the new file.
//! Half the time both are mapped to a 3-letter alphabet, which makes long
//! repeats (the match search's hard case).
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxtree_object::static_delta::bspatch;
use oxtree_repo::bsdiff::{diff, Scratch};

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let old_len = u16::from_le_bytes([data[0], data[1]]) as usize;
    let rest = &data[2..];
    let (old, new) = rest.split_at(old_len.min(rest.len()));
    let (old, new) = if data[0] & 1 == 1 {
        (
            old.iter().map(|b| b % 3).collect::<Vec<u8>>(),
            new.iter().map(|b| b % 3).collect::<Vec<u8>>(),
        )
    } else {
        (old.to_vec(), new.to_vec())
    };
    let mut patch = Vec::new();
    diff(&old, &new, &mut Scratch::default(), &mut patch);
    let got = bspatch(&old, new.len() as u64, &patch).expect("our own patch applies");
    assert_eq!(got, new);
});

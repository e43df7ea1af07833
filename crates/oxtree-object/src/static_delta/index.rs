//! The delta index and the summary's delta map: `a{sv}` written in
//! GLib's hash-table order, byte for byte what ostree writes.

use crate::checksum::Checksum;
use crate::gvariant::{to_bytes, Type, Value};

/// `a{sv}` of delta name → superblock checksum (`ay`), in GLib's order
/// for a dictionary filled with `entries` in order.
pub fn delta_map_value(entries: &[(String, Checksum)]) -> Value {
    let names: Vec<String> = entries.iter().map(|e| e.0.clone()).collect();
    let ordered = ghash_order(&names)
        .into_iter()
        .map(|i| {
            (
                Value::Str(entries[i].0.clone()),
                Value::variant(Value::Bytes(entries[i].1 .0.to_vec())),
            )
        })
        .collect();
    Value::Dict(Type::Str, Type::Variant, ordered)
}

/// [`delta_map_value`]'s bytes.
pub fn encode_delta_map(entries: &[(String, Checksum)]) -> Vec<u8> {
    to_bytes(&delta_map_value(entries))
}

/// Order of `g_hash_table` iteration after inserting `keys` (string keys,
/// `g_str_hash`) in order: what a GVariantDict built by ostree yields.
pub fn ghash_order(keys: &[String]) -> Vec<usize> {
    fn str_hash(s: &str) -> u32 {
        let mut h: u32 = 5381;
        for &b in s.as_bytes() {
            h = (h << 5).wrapping_add(h).wrapping_add(b as i8 as i32 as u32);
        }
        if h < 2 {
            2
        } else {
            h
        }
    }
    const PRIME_MOD: [u32; 32] = [
        1, 2, 3, 7, 13, 31, 61, 127, 251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071,
        262139, 524287, 1048573, 2097143, 4194301, 8388593, 16777213, 33554393, 67108859,
        134217689, 268435399, 536870909, 1073741789, 2147483647,
    ];
    struct T {
        shift: u32,
        hashes: Vec<u32>,
        vals: Vec<usize>,
        nnodes: usize,
        noccupied: usize,
    }
    impl T {
        fn size(&self) -> usize {
            1 << self.shift
        }
        fn idx(&self, h: u32) -> usize {
            (h.wrapping_mul(11) % PRIME_MOD[self.shift as usize]) as usize
        }
        fn insert(&mut self, h: u32, v: usize) {
            let mask = self.size() - 1;
            let mut i = self.idx(h);
            let mut step = 0;
            while self.hashes[i] != 0 {
                step += 1;
                i = (i + step) & mask;
            }
            self.hashes[i] = h;
            self.vals[i] = v;
            self.nnodes += 1;
            self.noccupied += 1;
            let size = self.size();
            if (size > self.nnodes * 4 && size > 8) || size <= self.noccupied + self.noccupied / 16
            {
                self.resize();
            }
        }
        fn resize(&mut self) {
            let old = self.size();
            let mut n = (self.nnodes as f64 * 1.333) as u64;
            let mut shift = 0;
            while n != 0 {
                n >>= 1;
                shift += 1;
            }
            self.shift = shift.max(3);
            let new = self.size();
            if new > old {
                self.hashes.resize(new, 0);
                self.vals.resize(new, 0);
            }
            let mut moved = vec![false; new.max(old)];
            let mask = new - 1;
            for i in 0..old {
                let mut h = self.hashes[i];
                if h < 2 {
                    self.hashes[i] = 0;
                    continue;
                }
                if moved[i] {
                    continue;
                }
                self.hashes[i] = 0;
                let mut v = self.vals[i];
                loop {
                    let mut j = self.idx(h);
                    let mut step = 0;
                    while moved[j] {
                        step += 1;
                        j = (j + step) & mask;
                    }
                    moved[j] = true;
                    let rh = self.hashes[j];
                    let rv = self.vals[j];
                    self.hashes[j] = h;
                    self.vals[j] = v;
                    if rh < 2 {
                        break;
                    }
                    h = rh;
                    v = rv;
                }
            }
            if new < old {
                self.hashes.truncate(new);
                self.vals.truncate(new);
            }
            self.noccupied = self.nnodes;
        }
    }
    let mut t = T {
        shift: 3,
        hashes: vec![0; 8],
        vals: vec![0; 8],
        nnodes: 0,
        noccupied: 0,
    };
    for (i, k) in keys.iter().enumerate() {
        t.insert(str_hash(k), i);
    }
    (0..t.size())
        .filter(|&i| t.hashes[i] >= 2)
        .map(|i| t.vals[i])
        .collect()
}

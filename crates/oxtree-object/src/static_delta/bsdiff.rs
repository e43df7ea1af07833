//! bsdiff and bspatch, together: the raw header-less bsdiff stream ostree's
//! deltas carry (`OP_BSPATCH`): control triples of sign-magnitude
//! little-endian i64 (diff length, extra length, seek), each followed by
//! its diff bytes (new − old, bytewise) and its extra bytes. [`diff`]
//! writes it (the generator), [`Bspatch`] applies it as a reader over
//! positional IO (the applier, on untrusted bytes).
//!
//! [`diff`] is hand-written on purpose: the suffix array comes from
//! `divsufsort` (4-byte indices, ~10× faster than qsufsort), but no
//! maintained crate runs bsdiff's match search over it and writes this raw
//! stream (the `bsdiff` crate sorts with qsufsort over two 8-byte arrays —
//! 17× the old file in memory — and others write BSDIFF40 with bzip2
//! blocks). The search is Colin Percival's / Matthew Endsley's bsdiff loop,
//! so the patches match what ostree's own generator would write.

use super::positional::RandomRead;
use super::MAX_OBJECT_SIZE;
use std::io::Read;

// ---------------------------------------------------------------- bsdiff

/// The largest old file the 32-bit suffix array indexes.
pub const MAX_OLD_SIZE: usize = i32::MAX as usize;

/// A reusable suffix-array buffer: keep one per thread across diffs so
/// each diff does not fault in fresh pages.
#[derive(Debug, Default)]
pub struct Scratch {
    sa: Vec<i32>,
}

impl Scratch {
    /// Largest buffer [`Scratch::trim`] keeps (entries).
    const KEEP: usize = 4 << 20;

    /// Release the buffer if it is large: a 16 MiB suffix array would
    /// otherwise stay allocated while the parts are compressed.
    pub fn trim(&mut self) {
        if self.sa.capacity() > Self::KEEP {
            self.sa = Vec::new();
        }
    }
}

/// Append the raw bsdiff stream turning `old` into `new` to `out`.
///
/// # Panics
/// If `old` is longer than [`MAX_OLD_SIZE`].
pub fn diff(old: &[u8], new: &[u8], scratch: &mut Scratch, out: &mut Vec<u8>) {
    assert!(old.len() <= MAX_OLD_SIZE, "bsdiff: old file too large");
    let sa = &mut scratch.sa;
    sa.clear();
    sa.resize(old.len(), 0);
    divsufsort::sort_in_place(old, sa);
    let sa: &[i32] = sa;

    let old_len = old.len() as isize;
    let new_len = new.len();
    let mut scan = 0usize;
    let mut len = 0usize;
    let mut pos = 0usize;
    let mut lastscan = 0usize;
    let mut lastpos = 0usize;
    let mut lastoffset = 0isize;
    // Whether old[i + off] exists and equals new[i].
    let same = |i: usize, off: isize| {
        let o = i as isize + off;
        o >= 0 && o < old_len && old[o as usize] == new[i]
    };
    while scan < new_len {
        let mut oldscore = 0usize;
        scan += len;
        let mut scsc = scan;
        while scan < new_len {
            (pos, len) = search(sa, old, &new[scan..]);
            while scsc < scan + len {
                if same(scsc, lastoffset) {
                    oldscore += 1;
                }
                scsc += 1;
            }
            if (len == oldscore && len != 0) || len > oldscore + 8 {
                break;
            }
            if same(scan, lastoffset) {
                oldscore -= 1;
            }
            scan += 1;
        }
        if len == oldscore && scan != new_len {
            continue;
        }

        // Extend the last match forwards...
        let (mut s, mut best, mut lenf) = (0isize, 0isize, 0usize);
        let mut i = 0usize;
        while lastscan + i < scan && lastpos + i < old.len() {
            if old[lastpos + i] == new[lastscan + i] {
                s += 1;
            }
            i += 1;
            if s * 2 - i as isize > best * 2 - lenf as isize {
                best = s;
                lenf = i;
            }
        }
        // ...and this one backwards...
        let mut lenb = 0usize;
        if scan < new_len {
            let (mut s, mut best) = (0isize, 0isize);
            let mut i = 1usize;
            while scan >= lastscan + i && pos >= i {
                if old[pos - i] == new[scan - i] {
                    s += 1;
                }
                if s * 2 - i as isize > best * 2 - lenb as isize {
                    best = s;
                    lenb = i;
                }
                i += 1;
            }
        }
        // ...and split where they overlap.
        if lastscan + lenf > scan - lenb {
            let overlap = (lastscan + lenf) - (scan - lenb);
            let (mut s, mut best, mut lens) = (0isize, 0isize, 0usize);
            for i in 0..overlap {
                if new[lastscan + lenf - overlap + i] == old[lastpos + lenf - overlap + i] {
                    s += 1;
                }
                if new[scan - lenb + i] == old[pos - lenb + i] {
                    s -= 1;
                }
                if s > best {
                    best = s;
                    lens = i + 1;
                }
            }
            lenf = lenf + lens - overlap;
            lenb -= lens;
        }

        let extra = (scan - lenb) - (lastscan + lenf);
        let seek = (pos as i64 - lenb as i64) - (lastpos + lenf) as i64;
        out.reserve(24 + lenf + extra);
        put_offset(out, lenf as i64);
        put_offset(out, extra as i64);
        put_offset(out, seek);
        out.extend(
            new[lastscan..lastscan + lenf]
                .iter()
                .zip(&old[lastpos..lastpos + lenf])
                .map(|(n, o)| n.wrapping_sub(*o)),
        );
        out.extend_from_slice(&new[lastscan + lenf..scan - lenb]);

        lastscan = scan - lenb;
        lastpos = pos - lenb;
        lastoffset = pos as isize - scan as isize;
    }
}

/// bsdiff's `offtout`: sign and magnitude, little-endian.
fn put_offset(out: &mut Vec<u8>, x: i64) {
    let v = if x < 0 {
        x.unsigned_abs() | 1 << 63
    } else {
        x as u64
    };
    out.extend_from_slice(&v.to_le_bytes());
}

fn match_len(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// The position in `old` sharing the longest prefix with `new`, and that
/// length: bsdiff's binary search over the suffix array.
fn search(sa: &[i32], old: &[u8], new: &[u8]) -> (usize, usize) {
    if sa.is_empty() {
        return (0, 0);
    }
    let (mut st, mut en) = (0usize, sa.len() - 1);
    while en - st >= 2 {
        let x = st + (en - st) / 2;
        let suffix = &old[sa[x] as usize..];
        let n = suffix.len().min(new.len());
        if suffix[..n] < new[..n] {
            st = x;
        } else {
            en = x;
        }
    }
    let (a, b) = (sa[st] as usize, sa[en] as usize);
    let x = match_len(&old[a..], new);
    let y = match_len(&old[b..], new);
    if x > y {
        (a, x)
    } else {
        (b, y)
    }
}

// ---------------------------------------------------------------- bspatch

pub(super) fn offtin(b: &[u8]) -> i64 {
    let mut y = u64::from_le_bytes(b[..8].try_into().unwrap());
    let neg = y & (1 << 63) != 0;
    y &= !(1 << 63);
    if neg {
        -(y as i64)
    } else {
        y as i64
    }
}

/// A raw bsdiff stream (the header-less format of mendsley's bsdiff
/// library, which ostree uses) applied as a reader: control triples of
/// sign-magnitude little-endian i64 (diff length, extra length, seek),
/// each followed by the diff and extra bytes. Reads the patch and the old
/// file by offset through a small buffer; yields exactly `new_size` bytes
/// or an error.
#[derive(Debug)]
pub struct Bspatch<P, O> {
    patch: P,
    old: O,
    new_size: u64,
    produced: u64,
    /// Position in the patch.
    p: u64,
    /// Position in the old file of the next diff byte.
    oldpos: i64,
    /// Where the old file position goes after the current control.
    next_oldpos: i64,
    diff_left: u64,
    extra_left: u64,
    scratch: Vec<u8>,
}

fn patch_err(msg: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, format!("bspatch: {msg}"))
}

/// Largest read the patch reader serves at once.
const BSPATCH_CHUNK: usize = 64 << 10;

impl<P: RandomRead, O: RandomRead> Bspatch<P, O> {
    /// `new_size` comes from the delta.
    pub fn new(patch: P, old: O, new_size: u64) -> std::io::Result<Self> {
        if new_size > MAX_OBJECT_SIZE {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("bspatch output of {new_size} bytes is too large"),
            ));
        }
        Ok(Bspatch {
            patch,
            old,
            new_size,
            produced: 0,
            p: 0,
            oldpos: 0,
            next_oldpos: 0,
            diff_left: 0,
            extra_left: 0,
            scratch: Vec::new(),
        })
    }

    /// Read the next control triple and check it against the patch and
    /// the output size; false at the end of the output.
    fn next_control(&mut self) -> std::io::Result<bool> {
        self.oldpos = self.next_oldpos;
        if self.produced >= self.new_size {
            return Ok(false);
        }
        let plen = self.patch.size();
        if self.p.checked_add(24).is_none_or(|e| e > plen) {
            return Err(patch_err("truncated control block"));
        }
        let mut ctrl = [0u8; 24];
        self.patch.read_exact_at(&mut ctrl, self.p)?;
        self.p += 24;
        let (d, x, s) = (offtin(&ctrl[0..]), offtin(&ctrl[8..]), offtin(&ctrl[16..]));
        if d < 0 || x < 0 {
            return Err(patch_err("negative length"));
        }
        let (du, xu) = (d as u64, x as u64);
        if self.produced + du > self.new_size {
            return Err(patch_err("diff past the end of the output"));
        }
        if self.p.checked_add(du).is_none_or(|e| e > plen) {
            return Err(patch_err("truncated diff data"));
        }
        let after_diff = self
            .oldpos
            .checked_add(d)
            .ok_or_else(|| patch_err("overflow"))?;
        if self.produced + du + xu > self.new_size {
            return Err(patch_err("extra past the end of the output"));
        }
        if (self.p + du).checked_add(xu).is_none_or(|e| e > plen) {
            return Err(patch_err("truncated extra data"));
        }
        self.next_oldpos = after_diff
            .checked_add(s)
            .ok_or_else(|| patch_err("overflow"))?;
        self.diff_left = du;
        self.extra_left = xu;
        Ok(true)
    }

    /// `buf[..n]` holds diff bytes: add the old file's bytes under them
    /// (zero outside the old file).
    fn add_old(&mut self, buf: &mut [u8]) -> std::io::Result<()> {
        let n = buf.len() as i64;
        let lo = self.oldpos.max(0);
        let hi = (self.oldpos + n).min(self.old.size().min(i64::MAX as u64) as i64);
        if lo >= hi {
            return Ok(());
        }
        let len = (hi - lo) as usize;
        self.scratch.resize(len, 0);
        self.old.read_exact_at(&mut self.scratch, lo as u64)?;
        let at = (lo - self.oldpos) as usize;
        for (b, o) in buf[at..at + len].iter_mut().zip(&self.scratch) {
            *b = b.wrapping_add(*o);
        }
        Ok(())
    }
}

impl<P: RandomRead, O: RandomRead> Read for Bspatch<P, O> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let max = buf.len().min(BSPATCH_CHUNK) as u64;
        while self.diff_left == 0 && self.extra_left == 0 {
            if !self.next_control()? {
                return Ok(0);
            }
        }
        let n = if self.diff_left > 0 {
            let n = self.diff_left.min(max) as usize;
            self.patch.read_exact_at(&mut buf[..n], self.p)?;
            self.add_old(&mut buf[..n])?;
            self.oldpos += n as i64;
            self.diff_left -= n as u64;
            n
        } else {
            let n = self.extra_left.min(max) as usize;
            self.patch.read_exact_at(&mut buf[..n], self.p)?;
            self.extra_left -= n as u64;
            n
        };
        self.p += n as u64;
        self.produced += n as u64;
        Ok(n)
    }
}

/// Apply a raw bsdiff stream in memory (see [`Bspatch`]). `new_size`
/// comes from the delta.
pub fn bspatch(old: &[u8], new_size: u64, patch: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let mut r = Bspatch::new(patch, old, new_size).map_err(|e| e.to_string())?;
    let mut new = Vec::with_capacity(new_size.min(patch.len() as u64 * 64 + 4096) as usize);
    r.read_to_end(&mut new).map_err(|e| e.to_string())?;
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(old: &[u8], new: &[u8]) -> Vec<u8> {
        let mut patch = Vec::new();
        diff(old, new, &mut Scratch::default(), &mut patch);
        let got = bspatch(old, new.len() as u64, &patch).expect("bspatch");
        assert_eq!(got, new, "old {} bytes, new {} bytes", old.len(), new.len());
        patch
    }

    /// xorshift64*: deterministic bytes without a dev-dependency.
    fn noise(seed: u64, n: usize) -> Vec<u8> {
        let mut x = seed.max(1);
        (0..n)
            .map(|_| {
                x ^= x >> 12;
                x ^= x << 25;
                x ^= x >> 27;
                (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
            })
            .collect()
    }

    #[test]
    fn edge_cases() {
        let r = noise(1, 5000);
        round_trip(b"", b"");
        round_trip(b"", &r);
        round_trip(&r, b"");
        round_trip(&r, &r);
        round_trip(b"a", b"b");
        round_trip(b"a", b"a");
        round_trip(&[0; 4096], &[0; 8192]);
        round_trip(&[7; 10], &r);
    }

    #[test]
    fn identical_is_one_control_of_zeros() {
        let r = noise(2, 10_000);
        let p = round_trip(&r, &r);
        assert_eq!(p.len(), 24 + r.len());
        assert!(p[24..].iter().all(|&b| b == 0));
    }

    #[test]
    fn edits() {
        let old = noise(3, 64 * 1024);
        // One byte changed in the middle.
        let mut new = old.clone();
        new[30_000] ^= 0x55;
        round_trip(&old, &new);
        // Appended and prepended.
        let mut new = old.clone();
        new.extend_from_slice(&noise(4, 3000));
        round_trip(&old, &new);
        let mut new = noise(5, 3000);
        new.extend_from_slice(&old);
        round_trip(&old, &new);
        // Blocks shuffled, one dropped, one duplicated.
        let blocks: Vec<&[u8]> = old.chunks(4096).collect();
        let mut new = Vec::new();
        for i in [5, 3, 3, 0, 15, 9, 1, 2, 4, 6, 8, 7, 11, 10, 12, 14] {
            new.extend_from_slice(blocks[i]);
        }
        let p = round_trip(&old, &new);
        let weight = p.iter().filter(|&&b| b != 0).count();
        assert!(weight < new.len() / 10, "shuffle not found: {weight}");
        // Truncated; unrelated.
        round_trip(&old, &old[..1000]);
        round_trip(&old, &noise(6, 50_000));
    }

    #[test]
    fn random_pairs() {
        for seed in 0..200u64 {
            let a = noise(seed * 7 + 1, (seed as usize * 37) % 700);
            let mut b = a.clone();
            let n = noise(seed * 11 + 3, 40);
            for (k, &v) in n.iter().enumerate().take((seed % 9) as usize) {
                if b.is_empty() {
                    break;
                }
                let at = (v as usize * 31 + k) % b.len();
                match v % 3 {
                    0 => b[at] = b[at].wrapping_add(1),
                    1 => b.insert(at, v),
                    _ => {
                        b.remove(at);
                    }
                }
            }
            // Small alphabets make long repeats, the search's hard case.
            let small: Vec<u8> = a.iter().map(|x| x % 3).collect();
            let small_b: Vec<u8> = b.iter().map(|x| x % 3).collect();
            round_trip(&a, &b);
            round_trip(&small, &small_b);
        }
    }

    #[test]
    fn scratch_is_reused() {
        let mut s = Scratch::default();
        let (a, b) = (noise(8, 9000), noise(9, 100));
        for (old, new) in [(&a, &b), (&b, &a), (&a, &a)] {
            let mut patch = Vec::new();
            diff(old, new, &mut s, &mut patch);
            assert_eq!(bspatch(old, new.len() as u64, &patch).unwrap(), *new);
        }
    }
}

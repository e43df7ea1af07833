use super::bsdiff::offtin;
use super::*;
use crate::checksum::Checksum;
use crate::error::Result;
use crate::file::FileHeader;
use crate::objtype::ObjectType;
use crate::xattrs::Xattrs;
use std::io::{Read, Write};

#[test]
fn mb64_round_trip_and_paths() {
    let c = Checksum::from_hex("f712d1ff91ea21063e9dc502cdc5632dee1a6bb6739ebb383ea9da6f7caa2be2")
        .unwrap();
    let f = Checksum::from_hex("f17b3968361dcc4edf4a08af927e11d04703527ae0a49a90debca25bb71d3c25")
        .unwrap();
    assert_eq!(
        delta_dir(None, &c),
        "deltas/9x/LR_5HqIQY+ncUCzcVjLe4aa7Zznrs4Pqnab3yqK+I"
    );
    assert_eq!(
        delta_dir(Some(&f), &c),
        "deltas/8X/s5aDYdzE7fSgivkn4R0EcDUnrgpJqQ3ryiW7cdPCU-9xLR_5HqIQY+ncUCzcVjLe4aa7Zznrs4Pqnab3yqK+I"
    );
    assert_eq!(from_mb64(&mb64(&c)).unwrap(), c);
    assert_eq!(
        parse_delta_dir(
            "8X",
            "s5aDYdzE7fSgivkn4R0EcDUnrgpJqQ3ryiW7cdPCU-9xLR_5HqIQY+ncUCzcVjLe4aa7Zznrs4Pqnab3yqK+I"
        )
        .unwrap(),
        (Some(f), c)
    );
}

/// Paths `ostree static-delta generate` (2022.7) wrote, with `+` and `_`.
#[test]
fn mb64_matches_ostree_paths() {
    let h = |s: &str| Checksum::from_hex(s).unwrap();
    let cases = [
        (
            Some("950568fe141d696696cd559548ecd615fb0a7b3b14a35cd903ecbe745bf4624f"),
            "631b8987eac2581a5085b2903d736040be2f1a3a8e56a3995c84ebe78791d6c3",
            "deltas/lQ/Vo_hQdaWaWzVWVSOzWFfsKezsUo1zZA+y+dFv0Yk8-YxuJh+rCWBpQhbKQPXNgQL4vGjqOVqOZXITr54eR1sM",
        ),
        (
            Some("b4a1604101197d1bc1e13d11714ebbd2c25d563f2bb73cc84c8aee0a723faa1b"),
            "b59b29b3f59a4ef0b6627a7fd36966750b03da72bbf7c34d13059ab12bd4953e",
            "deltas/tK/FgQQEZfRvB4T0RcU670sJdVj8rtzzITIruCnI_qhs-tZsps_WaTvC2Ynp_02lmdQsD2nK798NNEwWasSvUlT4",
        ),
        (
            None,
            "b59b29b3f59a4ef0b6627a7fd36966750b03da72bbf7c34d13059ab12bd4953e",
            "deltas/tZ/sps_WaTvC2Ynp_02lmdQsD2nK798NNEwWasSvUlT4",
        ),
    ];
    for (from, to, path) in cases {
        let (from, to) = (from.map(h), h(to));
        assert_eq!(delta_dir(from.as_ref(), &to), path);
        let rest = path.strip_prefix("deltas/").unwrap();
        assert_eq!(parse_delta_dir(&rest[..2], &rest[3..]).unwrap(), (from, to));
    }
    // Not 43 characters, `/` (standard base64, not ostree's), `=`.
    for bad in [
        "tZsps_WaTvC2Ynp_02lmdQsD2nK798NNEwWasSvUlT",
        "tZsps/WaTvC2Ynp_02lmdQsD2nK798NNEwWasSvUlT4",
        "tZsps_WaTvC2Ynp_02lmdQsD2nK798NNEwWasSvUl==",
    ] {
        assert!(from_mb64(bad).is_err(), "{bad}");
    }
}

#[test]
fn varuint_round_trip() {
    for v in [0, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
        let mut b = Vec::new();
        write_varuint64(&mut b, v);
        assert_eq!(read_varuint64(&b), Some((v, b.len())));
    }
    assert_eq!(read_varuint64(&[0x80]), None);
    assert_eq!(read_varuint64(&[0xff; 11]), None);
}

#[test]
fn payload_round_trip_with_empty_xattrs() {
    let p = PartPayload {
        modes: vec![(0, 0, 0o100644), (1, 2, 0o120777)],
        xattrs: vec![
            Xattrs::new(),
            Xattrs::from_pairs([(b"user.a".to_vec(), b"b".to_vec())]),
        ],
        data: vec![7; 300],
        ops: vec![b'S', 0, 0, 1, 0],
    };
    let b = p.encode();
    assert_eq!(PartPayload::decode(&b).unwrap(), p);
    let only_empty = PartPayload {
        xattrs: vec![Xattrs::new()],
        ..Default::default()
    };
    let b = only_empty.encode();
    assert_eq!(b, vec![0, 1, 1, 0]);
    assert_eq!(PartPayload::decode(&b).unwrap(), only_empty);
}

#[test]
fn streamed_compression_matches_the_encoding() {
    // Sizes on both sides of each framing offset width.
    for n in [0usize, 200, 300, 65_000, 70_000] {
        let p = PartPayload {
            modes: vec![(0, 0, 0o100644)],
            xattrs: vec![Xattrs::from_pairs([(b"user.a".to_vec(), b"b".to_vec())])],
            data: (0..n).map(|i| (i % 251) as u8).collect(),
            ops: vec![b'S', 0, 0, 1, 0],
        };
        let b = p.encode();
        assert_eq!(p.encoded_len(), b.len());
        let part = compress_part_payload(&p);
        assert_eq!(decompress_part(&part, 1 << 20).unwrap(), b);
        assert_eq!(decompress_part(&compress_part(&b), 1 << 20).unwrap(), b);
    }
}

#[test]
fn bspatch_hostile_input_is_an_error() {
    assert!(bspatch(b"abc", 10, &[]).is_err());
    let mut ctrl = vec![0u8; 24];
    ctrl[0] = 20; // diff of 20 bytes into a 10-byte output
    assert!(bspatch(b"abc", 10, &ctrl).is_err());
    assert_eq!(bspatch(b"abc", 0, &[]).unwrap(), Vec::<u8>::new());
}

struct NullSink(usize);
impl DeltaSink for NullSink {
    type Error = ObjectError;
    type Source = Vec<u8>;
    fn read_source(&mut self, _: &Checksum) -> Result<Vec<u8>> {
        Ok(Vec::new())
    }
    fn write_meta(&mut self, _: ObjectType, _: &Checksum, _: &[u8]) -> Result<()> {
        self.0 += 1;
        Ok(())
    }
    fn write_content(
        &mut self,
        _: &Checksum,
        _: &FileHeader,
        _: u64,
        r: &mut dyn Read,
    ) -> Result<()> {
        std::io::copy(r, &mut std::io::sink()).map_err(|e| ObjectError::Io {
            what: "test",
            source: e,
        })?;
        self.0 += 1;
        Ok(())
    }
}

/// The in-memory bspatch this crate had before it streamed: the
/// reference the streaming one must match.
fn bspatch_reference(
    old: &[u8],
    new_size: u64,
    patch: &[u8],
) -> std::result::Result<Vec<u8>, String> {
    if new_size > MAX_OBJECT_SIZE {
        return Err(format!("bspatch output of {new_size} bytes is too large"));
    }
    let new_size = new_size as usize;
    let mut new = Vec::new();
    let mut p = 0usize;
    let mut oldpos: i64 = 0;
    while new.len() < new_size {
        let ctrl = patch
            .get(p..p + 24)
            .ok_or("bspatch: truncated control block")?;
        p += 24;
        let (d, x, s) = (offtin(&ctrl[0..]), offtin(&ctrl[8..]), offtin(&ctrl[16..]));
        if d < 0 || x < 0 {
            return Err("bspatch: negative length".into());
        }
        let (d, x) = (d as u64, x as u64);
        if new.len() as u64 + d > new_size as u64 {
            return Err("bspatch: diff past the end of the output".into());
        }
        let diff = patch
            .get(p..)
            .and_then(|r| r.get(..d as usize))
            .ok_or("bspatch: truncated diff data")?;
        p += d as usize;
        for (i, &b) in diff.iter().enumerate() {
            let o = oldpos.checked_add(i as i64).ok_or("bspatch: overflow")?;
            let add = if o >= 0 && (o as u64) < old.len() as u64 {
                old[o as usize]
            } else {
                0
            };
            new.push(b.wrapping_add(add));
        }
        oldpos = oldpos.checked_add(d as i64).ok_or("bspatch: overflow")?;
        if new.len() as u64 + x > new_size as u64 {
            return Err("bspatch: extra past the end of the output".into());
        }
        let extra = patch
            .get(p..)
            .and_then(|r| r.get(..x as usize))
            .ok_or("bspatch: truncated extra data")?;
        p += x as usize;
        new.extend_from_slice(extra);
        oldpos = oldpos.checked_add(s).ok_or("bspatch: overflow")?;
    }
    Ok(new)
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn ctrl_word(v: i64) -> [u8; 8] {
    let m = v.unsigned_abs() | if v < 0 { 1 << 63 } else { 0 };
    m.to_le_bytes()
}

/// A well-formed random patch and its output size.
fn random_patch(rng: &mut Rng, old_len: usize) -> (Vec<u8>, u64) {
    let mut patch = Vec::new();
    let mut size = 0u64;
    for _ in 0..rng.below(6) {
        let d = rng.below(200_000) as i64;
        let x = rng.below(1000) as i64;
        let s = rng.below(2 * old_len as u64 + 1) as i64 - old_len as i64;
        for v in [d, x, s] {
            patch.extend_from_slice(&ctrl_word(v));
        }
        patch.extend(rng.bytes((d + x) as usize));
        size += (d + x) as u64;
    }
    (patch, size)
}

/// Read `r` to the end with reads of random small sizes.
fn read_choppy(r: &mut impl Read, rng: &mut Rng) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let mut buf = vec![0u8; 1 + rng.below(70_000) as usize];
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&buf[..n]);
    }
}

#[test]
fn streaming_bspatch_matches_the_in_memory_one() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..200 {
        let old_len = rng.below(100_000) as usize;
        let old = rng.bytes(old_len);
        let (mut patch, mut size) = random_patch(&mut rng, old.len());
        // Some rounds are damaged: cut, flipped or given a wrong size.
        match round % 5 {
            1 if !patch.is_empty() => {
                let cut = rng.below(patch.len() as u64) as usize;
                patch.truncate(cut);
            }
            2 if !patch.is_empty() => {
                let at = rng.below(patch.len() as u64) as usize;
                patch[at] ^= 0x80;
            }
            3 => size = rng.below(size + 10),
            _ => {}
        }
        let expected = bspatch_reference(&old, size, &patch);
        assert_eq!(bspatch(&old, size, &patch), expected, "round {round}");
        let got = Bspatch::new(&patch[..], &old[..], size)
            .and_then(|mut r| read_choppy(&mut r, &mut rng))
            .map_err(|e| e.to_string());
        assert_eq!(got, expected, "round {round} (choppy reads)");
    }
}

#[test]
fn bspatch_refuses_hostile_controls() {
    let patch_of = |d: i64, x: i64, s: i64, tail: usize| {
        let mut p = Vec::new();
        for v in [d, x, s] {
            p.extend_from_slice(&ctrl_word(v));
        }
        p.extend(std::iter::repeat_n(1u8, tail));
        p
    };
    let cases = [
        (patch_of(-1, 0, 0, 0), 4, "negative length"),
        (patch_of(0, -3, 0, 0), 4, "negative length"),
        (patch_of(5, 0, 0, 5), 4, "diff past the end"),
        (patch_of(4, 0, 0, 3), 4, "truncated diff"),
        (patch_of(2, 3, 0, 5), 4, "extra past the end"),
        (patch_of(2, 2, 0, 3), 4, "truncated extra"),
        (patch_of(2, 2, i64::MAX, 4), 8, "overflow"),
    ];
    for (patch, size, msg) in cases {
        let e = bspatch(b"abcdef", size, &patch).unwrap_err();
        assert!(e.contains(msg), "{e} (expected {msg})");
        assert_eq!(Err(e), bspatch_reference(b"abcdef", size, &patch));
    }
    assert!(bspatch(b"", MAX_OBJECT_SIZE + 1, &[]).is_err());
}

/// Records what a part builds.
#[derive(Default)]
struct Collect {
    sources: std::collections::HashMap<Checksum, Vec<u8>>,
    built: Vec<(Checksum, Option<FileHeader>, Vec<u8>)>,
}
impl DeltaSink for Collect {
    type Error = ObjectError;
    type Source = Vec<u8>;
    fn read_source(&mut self, c: &Checksum) -> Result<Vec<u8>> {
        Ok(self.sources[c].clone())
    }
    fn write_meta(&mut self, _: ObjectType, c: &Checksum, b: &[u8]) -> Result<()> {
        self.built.push((*c, None, b.to_vec()));
        Ok(())
    }
    fn write_content(
        &mut self,
        c: &Checksum,
        h: &FileHeader,
        size: u64,
        r: &mut dyn Read,
    ) -> Result<()> {
        let mut v = Vec::new();
        r.read_to_end(&mut v).map_err(|e| ObjectError::Io {
            what: "test",
            source: e,
        })?;
        assert_eq!(v.len() as u64, size);
        self.built.push((*c, Some(h.clone()), v));
        Ok(())
    }
}

/// A part using every opcode: a metadata splice, a file splice, a
/// symlink, writes from the data and from a read source, a bspatch.
fn every_opcode_part() -> (Vec<(ObjectType, Checksum)>, PartPayload, Collect) {
    let old = b"the old file, read by the delta".to_vec();
    let src = Checksum([3; 32]);
    let mut data = Vec::new();
    data.extend_from_slice(b"dirmeta!");
    data.extend_from_slice(b"spliced content");
    data.extend_from_slice(b"target");
    data.extend_from_slice(&src.0);
    // bspatch: 3 diff bytes (+1 on "the"), 2 extra, then 4 diff bytes
    // from offset 4 ("old ").
    let patch_off = data.len() as u64;
    for v in [3i64, 2, 1] {
        data.extend_from_slice(&ctrl_word(v));
    }
    data.extend_from_slice(&[1, 1, 1]);
    data.extend_from_slice(b"XY");
    for v in [4i64, 0, 0] {
        data.extend_from_slice(&ctrl_word(v));
    }
    data.extend_from_slice(&[0, 0, 0, 0]);
    let patch_len = data.len() as u64 - patch_off;
    let mut ops = vec![b'S', 8, 0];
    ops.extend_from_slice(&[b'S', 0, 0, 15, 8]);
    ops.extend_from_slice(&[b'S', 1, 0, 6, 23]);
    ops.extend_from_slice(&[b'o', 0, 0, 9, b'w', 4, 8, b'w', 5, 0, b'c']);
    ops.extend_from_slice(&[b'r', 29, b'o', 0, 1, 7, b'w', 3, 4, b'w', 4, 0, b'c', b'R']);
    ops.extend_from_slice(&[b'r', 29, b'o', 0, 0, 9, b'B']);
    write_varuint64(&mut ops, patch_off);
    write_varuint64(&mut ops, patch_len);
    ops.extend_from_slice(b"cR");
    let objects = vec![
        (ObjectType::DirMeta, Checksum([1; 32])),
        (ObjectType::File, Checksum([2; 32])),
        (ObjectType::File, Checksum([4; 32])),
        (ObjectType::File, Checksum([5; 32])),
        (ObjectType::File, Checksum([6; 32])),
        (ObjectType::File, Checksum([7; 32])),
    ];
    let p = PartPayload {
        modes: vec![(0, 0, 0o100644), (0, 0, 0o120777)],
        xattrs: vec![
            Xattrs::new(),
            Xattrs::from_pairs([(b"user.a".to_vec(), b"b".to_vec())]),
        ],
        data,
        ops,
    };
    let mut sink = Collect::default();
    sink.sources.insert(src, old);
    (objects, p, sink)
}

#[test]
fn a_part_read_by_offset_builds_what_it_builds_in_memory() {
    let (objects, p, mut mem) = every_opcode_part();
    execute_part(&objects, &p, &mut mem).unwrap();
    let contents: Vec<&[u8]> = mem.built.iter().map(|b| &b.2[..]).collect();
    let expected: [&[u8]; 6] = [
        b"dirmeta!",
        b"spliced content",
        b"",
        b"splidirme",
        b"oldthe ",
        b"uifXYold ",
    ];
    assert_eq!(contents, expected);
    assert_eq!(mem.built[2].1.as_ref().unwrap().symlink_target, "target");
    assert!(!mem.built[4].1.as_ref().unwrap().xattrs.is_empty());

    let encoded = p.encode();
    let tables = PartTables::read(&encoded[..]).unwrap();
    let mut f = tempfile::tempfile().unwrap();
    f.write_all(&encoded).unwrap();
    let file = FileAt::new(f).unwrap();
    let (_, _, mut from_file) = every_opcode_part();
    execute_part_at(&objects, &tables, &file, &mut from_file).unwrap();
    assert_eq!(from_file.built, mem.built);
}

#[test]
fn a_bad_patch_fails_naming_its_object() {
    let (objects, mut p, mut sink) = every_opcode_part();
    // Shorten the second control's diff data: truncated diff.
    let n = p.ops.len();
    p.ops[n - 3] -= 1;
    let e = execute_part(&objects, &p, &mut sink).unwrap_err();
    let c = Checksum([7; 32]);
    assert!(e.to_string().contains(&format!("{c}.file")), "{e}");
    assert!(
        e.to_string().contains("bspatch: truncated diff data"),
        "{e}"
    );
}

#[test]
fn splice_into_a_non_file_object_is_refused() {
    // Found by the delta_part fuzz target: `S` with content arguments
    // aimed at a file-xattrs object.
    let p = PartPayload {
        modes: vec![(0, 0, 0o100644)],
        xattrs: vec![Xattrs::new()],
        data: b"abc".to_vec(),
        ops: vec![b'S', 0, 0, 3, 0],
    };
    let c = Checksum([8; 32]);
    let mut sink = NullSink(0);
    let e = execute_part(&[(ObjectType::FileXattrs, c)], &p, &mut sink).unwrap_err();
    assert!(e.to_string().contains(&c.to_string()), "{e}");
    assert_eq!(sink.0, 0);
    execute_part(&[(ObjectType::File, c)], &p, &mut sink).unwrap();
    assert_eq!(sink.0, 1);
}

#[test]
fn write_past_declared_size_names_the_object() {
    let p = PartPayload {
        modes: vec![(0, 0, 0o100644)],
        xattrs: vec![Xattrs::new()],
        data: b"abcdef".to_vec(),
        ops: vec![b'o', 0, 0, 2, b'w', 6, 0, b'c'],
    };
    let c = Checksum([9; 32]);
    let e = execute_part(&[(ObjectType::File, c)], &p, &mut NullSink(0)).unwrap_err();
    assert!(e.to_string().contains(&format!("{c}.file")), "{e}");
    assert!(e.to_string().contains("past the declared size"), "{e}");
}

#[test]
fn bspatch_matches_the_bsdiff_stream_format() {
    // One control (3 diff, 2 extra, seek 0): "abc" + 1 each, then "XY".
    let mut patch = Vec::new();
    for v in [3u64, 2, 0] {
        patch.extend_from_slice(&v.to_le_bytes());
    }
    patch.extend_from_slice(&[1, 1, 1]);
    patch.extend_from_slice(b"XY");
    assert_eq!(bspatch(b"abc", 5, &patch).unwrap(), b"bcdXY");
}

#[test]
fn ghash_order_small() {
    let keys: Vec<String> = vec!["a".into(), "b".into()];
    let o = ghash_order(&keys);
    assert_eq!(o.len(), 2);
}

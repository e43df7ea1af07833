//! The codec against bytes GLib 2.x wrote (`g_variant_get_data` of
//! `g_variant_parse (TYPE, TEXT)`, via python3-gi), and its failure modes.

use super::*;
use sha2::{Digest, Sha256};

fn hex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

fn t(s: &str) -> Type {
    Type::parse(s).unwrap()
}

/// (type, GLib's bytes) for each value; decoding then re-encoding must give
/// the same bytes.
const GLIB: &[(&str, &str)] = &[
    // Containers whose members are all zero-length (zvariant's bug).
    ("aay", "0000"),                 // [@ay [], []]
    ("(ayay)", "00"),                // (@ay [], @ay [])
    ("(a(say)a(sayay))", "00"),      // the empty dirtree
    ("amu", "0000"),                 // [@mu nothing, nothing]
    ("as", "00000102"),              // ['', '']
    ("a(sayay)", "00010103"),        // [('', @ay [], @ay [])]
    ("a{sv}", "610000000000000000617902000000006200000000000000006173020c1c"),
    // Maybes.
    ("mu", "05000000"),   // just 5
    ("mu", ""),           // nothing
    ("ms", "68690000"),   // just 'hi'
    ("ms", "0000"),       // just ''
    ("mmay", "0000"),     // just just @ay []
    ("(msmu)", "6100000003"),
    // Nested variants.
    ("v", "7800007300760076"), // <<<'x'>>>
    ("(sv)", "6b0000000000000078010200287961792902"),
    // Metadata as ostree writes it.
    (
        "a{sv}",
        "6f73747265652e7265662d62696e64696e670000000000006d61696e00050061731300000000000076657273696f6e00312e3000007308006e0000000000000007000000000000000074020000000000620000000000000001006202000000006400000000000000000000000000f83f00640222374b5c73",
    ),
    // Fixed-size tuples, padding, the unit.
    ("(yt)", "01000000000000000200000000000000"),
    ("a(yt)", "0100000000000000020000000000000003000000000000000400000000000000"),
    ("(ty)", "01000000000000000200000000000000"),
    ("()", "00"),
    ("a()", "0000"),
    ("(s())", "61000002"),
    ("(()s)", "006100"),
    ("a{ys}", "016100026263000307"),
    ("a{yy}", "01020304"),
    ("(uuua(ayay))", "010000000200000003000000757365722e6100010709"),
    (
        "(nqixdbog)",
        "ffff0200fdfffffffcffffffffffffff000000000000d03f012f612f6200617b73767d001e",
    ),
];

#[test]
fn matches_glib_bytes() {
    for (ty, h) in GLIB {
        let b = hex(h);
        let v = from_bytes("test", &t(ty), &b).unwrap_or_else(|e| panic!("{ty} {h}: {e}"));
        assert_eq!(v.type_().to_string(), *ty);
        assert_eq!(to_bytes(&v), b, "{ty} {h}");
    }
}

#[test]
fn all_zero_length_members_get_offsets() {
    // Built, not decoded: what zvariant wrote wrong.
    let empty = || Value::Bytes(Vec::new());
    let aay = Value::Array(Type::array(Type::Byte), vec![empty(), empty()]);
    assert_eq!(to_bytes(&aay), [0, 0]);
    assert_eq!(to_bytes(&Value::Struct(vec![empty(), empty()])), [0]);
    let xattrs: Vec<Vec<(Vec<u8>, Vec<u8>)>> = vec![vec![]];
    assert_eq!(encode(&xattrs), [0]);
    let back: Vec<Vec<(Vec<u8>, Vec<u8>)>> = decode("test", &[0]).unwrap();
    assert_eq!(back, xattrs);
    let nothing = Value::Maybe(Type::UInt32, None);
    assert_eq!(
        to_bytes(&Value::Array(t("mu"), vec![nothing.clone(), nothing])),
        [0, 0]
    );
}

#[test]
fn offsets_widen_past_255_and_65535_bytes() {
    let strs = |n: usize| -> Value {
        Value::Array(
            Type::Str,
            (0..n).map(|i| Value::Str(format!("{i:030}"))).collect(),
        )
    };
    // 10 strings: 310 bytes of body, 2-byte offsets. 3000: 4-byte offsets.
    for (n, len, tail, sha) in [
        (
            10,
            330,
            "d900f80017013601",
            "8ca46deab8afd988e172af331a1ae9ac97fd85da18236eaf1e19f89d784dbf44",
        ),
        (
            3000,
            105000,
            "296b0100486b0100",
            "d5ba58d2a79bc20f2da1345794acc898d52c9feb4846d69c3468ce48da9cd95a",
        ),
    ] {
        let b = to_bytes(&strs(n));
        assert_eq!(b.len(), len);
        assert_eq!(hex::encode(&b[b.len() - 8..]), tail);
        assert_eq!(hex::encode(Sha256::digest(&b)), sha);
        assert_eq!(from_bytes("test", &t("as"), &b).unwrap(), strs(n));
    }
    let pair = |a: usize, b: usize| (vec![1u8; a], vec![2u8; b]);
    let e = encode(&pair(70000, 1));
    assert_eq!(
        (e.len(), hex::encode(&e[e.len() - 8..])),
        (70005, "0101010270110100".into())
    );
    let e = encode(&pair(250, 3));
    assert_eq!(
        (e.len(), hex::encode(&e[e.len() - 8..])),
        (254, "01010101020202fa".into())
    );
    assert_eq!(
        decode::<(Vec<u8>, Vec<u8>)>("test", &e).unwrap(),
        pair(250, 3)
    );
}

#[test]
fn framing_offsets_widen_past_255_bytes() {
    // 10 names of 40 bytes: the array needs 2-byte little-endian offsets.
    let files: Vec<(String, Vec<u8>)> = (0..10)
        .map(|i| (format!("{i:040}"), vec![i as u8; 32]))
        .collect();
    let bytes = encode(&files);
    let back: Vec<(String, Vec<u8>)> = decode("test", &bytes).unwrap();
    assert_eq!(back, files);
    // Each element is 41 (string+NUL) + 32 + 1 (offset) = 74 bytes; the
    // array's own offsets are 2 bytes each, little-endian.
    assert_eq!(bytes.len(), 10 * 74 + 10 * 2);
    let last = &bytes[bytes.len() - 2..];
    assert_eq!(u16::from_le_bytes([last[0], last[1]]), 740);
}

#[test]
fn rejects_non_normal_and_hostile_input() {
    let bad: &[(&str, &str)] = &[
        ("b", "02"),          // boolean 2
        ("u", "010000"),      // short
        ("s", "6162"),        // no NUL
        ("s", "610062"),      // inner NUL
        ("s", "ff00"),        // not UTF-8
        ("as", "610005"),     // offset past the body
        ("as", "6100016200"), // offsets out of order
        ("(yt)", "0100000000000000020000000000"),
        ("(yt)", "01ff000000000000020000000000000000"),
        ("()", "01"),
        ("v", "7800"),     // empty type string
        ("v", "78007373"), // two types
        ("v", "780068"),   // handle
        ("mu", "050000"),  // wrong size
        ("ms", "6869"),    // no trailing zero
        ("a(yt)", "0100000000000000020000000000000003"),
        ("o", "612f6200"),  // not a path
        ("g", "7b737d00"),  // bad signature
        ("(ss)", "610062"), // frame says 0x62
        ("(ayay)", ""),     // no frame
    ];
    for (ty, h) in bad {
        assert!(
            from_bytes("test", &t(ty), &hex(h)).is_err(),
            "{ty} {h} should be rejected"
        );
    }
    // Variants nested past the depth limit.
    let mut deep = Value::U8(1);
    for _ in 0..200 {
        deep = Value::variant(deep);
    }
    assert!(from_bytes("test", &Type::Variant, &to_bytes(&deep)).is_err());
    let mut ok = Value::U8(1);
    for _ in 0..100 {
        ok = Value::variant(ok);
    }
    assert!(from_bytes("test", &Type::Variant, &to_bytes(&ok)).is_ok());
}

#[test]
fn be_fields_round_trip() {
    assert_eq!(from_be32(be32(0x41ed)), 0x41ed);
    assert_eq!(be32(1).to_le_bytes(), [0, 0, 0, 1]);
    assert_eq!(from_be64(be64(1_577_836_800)), 1_577_836_800);
}

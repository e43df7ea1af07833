//! A static delta part: `decompress_part` (bounded), `PartPayload::decode`
//! and `PartTables::read`, and the opcode interpreter `execute_part`
//! (streaming each object to the sink), on untrusted bytes.
//!
//! Input: one byte `n` (objects, at most 8), `n` 33-byte (objtype,
//! checksum) entries for the part header, then the part file. Must never
//! panic or allocate without bound. A payload that decodes re-encodes to
//! one that decodes equal, and the tables read by offset equal the decoded
//! ones. Every object the interpreter hands out is one the header lists,
//! in order, and a content object streams exactly its declared size (or
//! fails).
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxtree_object::static_delta::{
    decompress_part, execute_part, parse_objects, DeltaSink, PartPayload, PartTables,
};
use oxtree_object::{Checksum, FileHeader, ObjectError, ObjectType};
use std::io::Read;

struct Sink {
    expected: Vec<(ObjectType, Checksum)>,
    built: usize,
    limit: usize,
}

impl DeltaSink for Sink {
    type Error = ObjectError;
    type Source = Vec<u8>;
    fn read_source(&mut self, c: &Checksum) -> Result<Vec<u8>, ObjectError> {
        // A deterministic "old file" of up to 4 kB.
        Ok(c.0
            .iter()
            .cycle()
            .take(c.0[0] as usize * 16)
            .copied()
            .collect())
    }
    fn write_meta(&mut self, k: ObjectType, c: &Checksum, b: &[u8]) -> Result<(), ObjectError> {
        assert_eq!(self.expected[self.built], (k, *c));
        assert!(k.is_meta());
        assert!(b.len() <= self.limit);
        self.built += 1;
        Ok(())
    }
    fn write_content(
        &mut self,
        c: &Checksum,
        h: &FileHeader,
        size: u64,
        r: &mut dyn Read,
    ) -> Result<(), ObjectError> {
        assert_eq!(self.expected[self.built], (ObjectType::File, *c));
        h.validate().expect("interpreter hands out valid headers");
        let n = std::io::copy(r, &mut std::io::sink()).map_err(|e| ObjectError::Io {
            what: "streaming an object",
            source: e,
        })?;
        assert_eq!(n, size, "an object streams its declared size");
        self.built += 1;
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = (n % 9) as usize;
    if rest.len() < n * 33 {
        return;
    }
    let Ok(objects) = parse_objects(&rest[..n * 33]) else {
        return;
    };
    let part = &rest[n * 33..];
    let Ok(payload) = decompress_part(part, 8 << 20) else {
        return;
    };
    let Ok(p) = PartPayload::decode(&payload) else {
        return;
    };
    let back = PartPayload::decode(&p.encode()).expect("re-encoded payload must decode");
    assert_eq!(back, p);
    let t = PartTables::read(&payload[..]).expect("a payload that decodes has tables");
    assert_eq!((&t.modes, &t.xattrs, &t.ops), (&p.modes, &p.xattrs, &p.ops));
    assert_eq!(&payload[t.data.start as usize..t.data.end as usize], &p.data[..]);
    let mut sink = Sink {
        expected: objects.clone(),
        built: 0,
        limit: payload.len(),
    };
    if execute_part(&objects, &p, &mut sink).is_ok() {
        assert_eq!(sink.built, objects.len());
    }
});

//! Static deltas: the superblock, part files and the opcode stream that
//! rebuilds objects, as libostree writes and reads them.
//!
//! * Names: `FROM-TO` (full hex) or `TO` for a from-scratch delta. On disk a
//!   delta lives in `deltas/XX/REST` where `XXREST` is the "modified base64"
//!   of the checksum bytes (`/` becomes `_`, no padding), with `-mb64(TO)`
//!   appended for a `FROM-TO` delta.
//! * Superblock `(a{sv}tayay<commit>aya(uayttay)a(yaytt))`: metadata
//!   (`ostree.endianness`, inline parts, detached commit metadata),
//!   timestamp (big-endian), from, to, the new commit, an unused list of
//!   parent deltas, part headers and fallback objects. The part header and
//!   fallback sizes are in the generator's byte order (`ostree.endianness`,
//!   'l' or 'B'), not big-endian like the rest of ostree.
//! * Part file `(yay)`: a compression byte (0 or 'x' for xz) and the payload
//!   `(a(uuu)aa(ayay)ayay)`: modes (big-endian), xattrs, data, opcodes.
//! * Opcodes take protobuf-style varuint64 arguments.
//!
//! One file per concept: `names`, `superblock`, `part` (framing),
//! `positional` (IO by offset), `opcodes` (the interpreter), `bsdiff`
//! (bsdiff and bspatch), `index` (the delta index's `a{sv}`).
//!
//! Everything here parses untrusted bytes: sizes are checked before any
//! allocation and errors never panic.

use crate::error::ObjectError;

pub mod bsdiff;
mod index;
mod names;
mod opcodes;
mod part;
mod positional;
mod superblock;
#[cfg(test)]
mod tests;

pub use bsdiff::{bspatch, Bspatch};
pub use index::{delta_map_value, encode_delta_map, ghash_order};
pub use names::{
    delta_dir, delta_index_path, delta_name, from_mb64, mb64, parse_delta_dir, parse_delta_name,
};
pub use opcodes::{
    execute_part, execute_part_at, op_stats_with, read_varuint64, write_varuint64, DeltaSink,
    OpStats, OP_BSPATCH, OP_CLOSE, OP_OPEN, OP_OPEN_SPLICE_AND_CLOSE, OP_SET_READ_SOURCE,
    OP_UNSET_READ_SOURCE, OP_WRITE,
};
pub use part::{
    compress_part, compress_part_payload, decompress_part, decompress_part_to, PartPayload,
    PartTables, PART_XZ_MAX_DICT,
};
pub use positional::{FileAt, RandomRead, SeqReader};
pub use superblock::{
    decode_signed, encode_signed, inline_part_value, parse_objects, Endianness, Fallback,
    PartHeader, Superblock,
};

/// Version of the part format (the only one ostree knows).
pub const PART_VERSION: u32 = 0;
/// Length of one (objtype, checksum) entry in a part header.
pub const OBJTYPE_CSUM_LEN: usize = 33;
/// Key of the endianness byte in the superblock metadata.
pub const KEY_ENDIANNESS: &str = "ostree.endianness";
/// Summary and delta-index key listing deltas.
pub const KEY_STATIC_DELTAS: &str = "ostree.static-deltas";
/// Magic of a signed superblock `(taya{sv})`, as a big-endian u64.
pub const SIGNED_MAGIC: &[u8; 8] = b"OSTSGNDT";
/// Largest superblock we read.
pub const MAX_SUPERBLOCK_SIZE: usize = 64 << 20;
/// Largest decompressed part payload we accept.
pub const MAX_PART_PAYLOAD: u64 = 1 << 30;
/// Largest single object a part may build.
pub const MAX_OBJECT_SIZE: u64 = 1 << 30;

pub(crate) fn bad(reason: impl std::fmt::Display) -> ObjectError {
    ObjectError::malformed("static delta", reason)
}

//! Serialization to normal form, as GLib's `g_variant_get_data` gives it.
//!
//! Containers of variable-size members record where members end in framing
//! offsets placed after the body (for a tuple: one per variable-size member
//! but the last, stored in reverse; for an array: one per element). Their
//! width is the smallest of 1, 2, 4 or 8 bytes that can address the whole
//! container, offsets included. A zero-length member still gets its offset.

use super::value::Value;

/// The width of a container's framing offsets, given its body size and
/// number of offsets (GLib's `gvs_calculate_total_size`).
pub(crate) fn offset_width(body: usize, n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    for w in [1usize, 2, 4] {
        if body.saturating_add(n.saturating_mul(w)) < (1u64 << (8 * w)) as usize {
            return w;
        }
    }
    8
}

fn pad(out: &mut Vec<u8>, align: usize) {
    out.resize(out.len().next_multiple_of(align), 0);
}

fn write_offsets(out: &mut Vec<u8>, start: usize, ends: impl ExactSizeIterator<Item = usize>) {
    let w = offset_width(out.len() - start, ends.len());
    for e in ends {
        out.extend_from_slice(&(e as u64).to_le_bytes()[..w]);
    }
}

/// Append `v`'s serialization. `out.len()` must be aligned for `v` (it is
/// relative to the start of the outermost value, which starts at 0, and
/// every container starts at its own alignment).
pub(super) fn write(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Bool(b) => out.push(*b as u8),
        Value::U8(b) => out.push(*b),
        Value::I16(n) => out.extend_from_slice(&n.to_le_bytes()),
        Value::U16(n) => out.extend_from_slice(&n.to_le_bytes()),
        Value::I32(n) => out.extend_from_slice(&n.to_le_bytes()),
        Value::U32(n) => out.extend_from_slice(&n.to_le_bytes()),
        Value::I64(n) => out.extend_from_slice(&n.to_le_bytes()),
        Value::U64(n) => out.extend_from_slice(&n.to_le_bytes()),
        Value::F64(n) => out.extend_from_slice(&n.to_bits().to_le_bytes()),
        Value::Str(s) | Value::ObjectPath(s) | Value::Signature(s) => {
            out.extend_from_slice(s.as_bytes());
            out.push(0);
        }
        Value::Variant(inner) => {
            write(out, inner);
            out.push(0);
            out.extend_from_slice(inner.type_().to_string().as_bytes());
        }
        Value::Maybe(t, child) => {
            if let Some(c) = child {
                write(out, c);
                if t.fixed_size().is_none() {
                    out.push(0);
                }
            }
        }
        Value::Bytes(b) => out.extend_from_slice(b),
        Value::Array(t, items) => {
            if t.fixed_size().is_some() {
                for x in items {
                    write(out, x);
                }
            } else {
                let start = out.len();
                let align = t.alignment();
                let mut ends = Vec::with_capacity(items.len());
                for x in items {
                    pad(out, align);
                    write(out, x);
                    ends.push(out.len() - start);
                }
                write_offsets(out, start, ends.into_iter());
            }
        }
        Value::Dict(k, val, entries) => {
            let entry_align = k.alignment().max(val.alignment());
            let fixed = k.fixed_size().is_some() && val.fixed_size().is_some();
            let start = out.len();
            let mut ends = Vec::with_capacity(if fixed { 0 } else { entries.len() });
            for (key, value) in entries {
                pad(out, entry_align);
                write_tuple(out, &[key, value]);
                ends.push(out.len() - start);
            }
            if !fixed {
                write_offsets(out, start, ends.into_iter());
            }
        }
        Value::Struct(members) => {
            let refs: Vec<&Value> = members.iter().collect();
            write_tuple(out, &refs);
        }
    }
}

fn write_tuple(out: &mut Vec<u8>, members: &[&Value]) {
    let start = out.len();
    if members.is_empty() {
        out.push(0);
        return;
    }
    let mut ends = Vec::new();
    let mut fixed = true;
    let mut align = 1usize;
    for (i, m) in members.iter().enumerate() {
        let a = m.alignment();
        align = align.max(a);
        pad(out, a);
        write(out, m);
        if !m.is_fixed_size() {
            fixed = false;
            if i + 1 < members.len() {
                ends.push(out.len() - start);
            }
        }
    }
    if fixed {
        pad(out, align);
    } else {
        write_offsets(out, start, ends.into_iter().rev());
    }
}

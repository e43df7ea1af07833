//! Deserialization of untrusted bytes of a known type.
//!
//! Errors, never panics; nesting is bounded by [`MAX_DEPTH`]. Only normal
//! form is accepted (what GLib itself writes): framing offsets in range and
//! in order, of the width the container's size implies; padding and the
//! unit tuple zero; booleans 0 or 1; strings NUL-terminated UTF-8 without
//! inner NULs; a variant's type one complete type; fixed-size values of
//! exactly their size. GLib would read non-normal data with substitutes
//! (defaults for broken children); we refuse it instead, so an object's
//! bytes are always the encoding of what we decoded.

use super::ser::offset_width;
use super::signature::{tuple_fixed_size, Type, MAX_DEPTH};
use super::value::Value;

type R<T> = Result<T, String>;

/// The framing offset width GLib reads for a container of `size` bytes.
pub(crate) fn read_width(size: usize) -> usize {
    match size {
        0 => 0,
        1..=0xff => 1,
        0x100..=0xffff => 2,
        _ if size as u64 <= 0xffff_ffff => 4,
        _ => 8,
    }
}

fn read_offset(b: &[u8]) -> usize {
    let mut a = [0u8; 8];
    a[..b.len()].copy_from_slice(b);
    usize::try_from(u64::from_le_bytes(a)).unwrap_or(usize::MAX)
}

fn check_zero(b: &[u8], what: &str) -> R<()> {
    if b.iter().all(|&x| x == 0) {
        Ok(())
    } else {
        Err(format!("non-zero padding in {what}"))
    }
}

fn string(b: &[u8]) -> R<String> {
    match b.split_last() {
        Some((0, body)) if !body.contains(&0) => std::str::from_utf8(body)
            .map(str::to_string)
            .map_err(|_| "string is not UTF-8".to_string()),
        _ => Err("string is not NUL-terminated or contains NUL".into()),
    }
}

fn valid_object_path(s: &str) -> bool {
    s == "/"
        || (s.starts_with('/')
            && !s.ends_with('/')
            && s[1..].split('/').all(|e| {
                !e.is_empty() && e.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
            }))
}

fn fixed<const N: usize>(b: &[u8]) -> R<[u8; N]> {
    b.try_into()
        .map_err(|_| format!("{} bytes where {N} were expected", b.len()))
}

/// Decode `b`, all of it, as a value of type `t`.
pub(super) fn read(t: &Type, b: &[u8], depth: usize) -> R<Value> {
    if depth > MAX_DEPTH {
        return Err("values nest too deep".into());
    }
    Ok(match t {
        Type::Bool => match fixed::<1>(b)? {
            [0] => Value::Bool(false),
            [1] => Value::Bool(true),
            _ => return Err("boolean other than 0 or 1".into()),
        },
        Type::Byte => Value::U8(fixed::<1>(b)?[0]),
        Type::Int16 => Value::I16(i16::from_le_bytes(fixed(b)?)),
        Type::UInt16 => Value::U16(u16::from_le_bytes(fixed(b)?)),
        Type::Int32 => Value::I32(i32::from_le_bytes(fixed(b)?)),
        Type::UInt32 => Value::U32(u32::from_le_bytes(fixed(b)?)),
        Type::Int64 => Value::I64(i64::from_le_bytes(fixed(b)?)),
        Type::UInt64 => Value::U64(u64::from_le_bytes(fixed(b)?)),
        Type::Double => Value::F64(f64::from_bits(u64::from_le_bytes(fixed(b)?))),
        Type::Str => Value::Str(string(b)?),
        Type::ObjectPath => {
            let s = string(b)?;
            if !valid_object_path(&s) {
                return Err(format!("invalid object path {s:?}"));
            }
            Value::ObjectPath(s)
        }
        Type::Signature => {
            let s = string(b)?;
            Type::parse_many(&s)?;
            Value::Signature(s)
        }
        Type::Variant => {
            let zero = b
                .iter()
                .rposition(|&c| c == 0)
                .ok_or("variant without a type string")?;
            let ts = std::str::from_utf8(&b[zero + 1..])
                .map_err(|_| "variant type string is not ASCII".to_string())?;
            let inner_t = Type::parse(ts)?;
            Value::Variant(Box::new(read(&inner_t, &b[..zero], depth + 1)?))
        }
        Type::Maybe(e) => {
            if b.is_empty() {
                return Ok(Value::Maybe((**e).clone(), None));
            }
            let child = match e.fixed_size() {
                Some(n) if b.len() == n => b,
                Some(_) => return Err("maybe of the wrong size".into()),
                None => match b.split_last() {
                    Some((0, c)) => c,
                    _ => return Err("maybe without its trailing zero".into()),
                },
            };
            Value::Maybe((**e).clone(), Some(Box::new(read(e, child, depth + 1)?)))
        }
        Type::Array(e) => {
            if **e == Type::Byte {
                return Ok(Value::Bytes(b.to_vec()));
            }
            let elems = split_array(e, b)?;
            match &**e {
                Type::DictEntry(k, v) => {
                    let mut out = Vec::with_capacity(elems.len());
                    for x in elems {
                        let mut m = read_tuple(&[k, v], x, depth + 1)?.into_iter();
                        let (Some(key), Some(val)) = (m.next(), m.next()) else {
                            return Err("dictionary entry without two members".into());
                        };
                        out.push((key, val));
                    }
                    Value::Dict((**k).clone(), (**v).clone(), out)
                }
                _ => Value::Array(
                    (**e).clone(),
                    elems
                        .into_iter()
                        .map(|x| read(e, x, depth + 1))
                        .collect::<R<_>>()?,
                ),
            }
        }
        Type::Tuple(m) => {
            let refs: Vec<&Type> = m.iter().collect();
            Value::Struct(read_tuple(&refs, b, depth + 1)?)
        }
        Type::DictEntry(k, v) => Value::Struct(read_tuple(&[k, v], b, depth + 1)?),
    })
}

/// The elements' byte ranges of an array of `e`.
fn split_array<'a>(e: &Type, b: &'a [u8]) -> R<Vec<&'a [u8]>> {
    if let Some(size) = e.fixed_size() {
        if !b.len().is_multiple_of(size) {
            return Err("array of fixed-size elements has a partial element".into());
        }
        return Ok(b.chunks(size).collect());
    }
    if b.is_empty() {
        return Ok(Vec::new());
    }
    let w = read_width(b.len());
    let last_end = read_offset(&b[b.len() - w..]);
    if last_end > b.len() - w || !(b.len() - last_end).is_multiple_of(w) {
        return Err("bad array framing".into());
    }
    let n = (b.len() - last_end) / w;
    if offset_width(last_end, n) != w {
        return Err("framing offsets wider than normal form".into());
    }
    let align = e.alignment();
    let mut out = Vec::with_capacity(n);
    let mut prev = 0usize;
    for i in 0..n {
        let start = prev.next_multiple_of(align);
        let end = read_offset(&b[last_end + i * w..last_end + (i + 1) * w]);
        if start > end || end > last_end {
            return Err("bad array framing".into());
        }
        check_zero(&b[prev..start], "an array")?;
        out.push(&b[start..end]);
        prev = end;
    }
    if prev != last_end {
        return Err("bad array framing".into());
    }
    Ok(out)
}

/// Read a tuple (or dictionary entry) of `members` from exactly `b`.
fn read_tuple(members: &[&Type], b: &[u8], depth: usize) -> R<Vec<Value>> {
    if depth > MAX_DEPTH {
        return Err("values nest too deep".into());
    }
    let fixed_total = tuple_fixed_size(members.iter().copied());
    if let Some(n) = fixed_total {
        if b.len() != n {
            return Err(format!(
                "tuple of {} bytes where {n} were expected",
                b.len()
            ));
        }
        if members.is_empty() {
            return match b {
                [0] => Ok(Vec::new()),
                _ => Err("unit tuple is not a zero byte".into()),
            };
        }
    }
    let w = read_width(b.len());
    let n_frames = members
        .iter()
        .take(members.len().saturating_sub(1))
        .filter(|t| t.fixed_size().is_none())
        .count();
    let frames_len = n_frames
        .checked_mul(w)
        .filter(|&l| l <= b.len() && (n_frames == 0 || w > 0))
        .ok_or("tuple framing larger than the tuple")?;
    let body_end = b.len() - frames_len;
    if n_frames > 0 && offset_width(body_end, n_frames) != w {
        return Err("framing offsets wider than normal form".into());
    }
    let mut frame = 0;
    let mut pos = 0usize;
    let mut out = Vec::with_capacity(members.len());
    for (i, t) in members.iter().enumerate() {
        let start = pos.next_multiple_of(t.alignment());
        if start > body_end {
            return Err("tuple member out of range".into());
        }
        check_zero(&b[pos..start], "a tuple")?;
        let end = match t.fixed_size() {
            Some(n) => start + n,
            None if i + 1 == members.len() => body_end,
            None => {
                frame += 1;
                let at = b.len() - frame * w;
                read_offset(&b[at..at + w])
            }
        };
        if end < start || end > body_end {
            return Err("bad tuple framing".into());
        }
        out.push(read(t, &b[start..end], depth + 1)?);
        pos = end;
    }
    match fixed_total {
        Some(_) => check_zero(&b[pos..], "a tuple")?,
        None if pos != body_end => return Err("bad tuple framing".into()),
        None => {}
    }
    Ok(out)
}

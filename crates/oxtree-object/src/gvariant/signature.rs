//! GVariant type signatures (`a{sv}`, `(uuua(ayay))`, …): parsing, printing
//! and the two layout properties serialization needs, alignment and fixed
//! size.

use std::fmt;

/// How deep types and values may nest. GLib's limit
/// (`G_VARIANT_MAX_RECURSION_DEPTH`) is also 128.
pub const MAX_DEPTH: usize = 128;

/// One complete GVariant type. Handles (`h`), indefinite types and
/// dictionary entries outside an array are not supported: ostree uses none
/// of them, and rejecting them keeps [`super::Value`] one-to-one with its
/// type.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Type {
    Bool,
    Byte,
    Int16,
    UInt16,
    Int32,
    UInt32,
    Int64,
    UInt64,
    Double,
    Str,
    ObjectPath,
    Signature,
    Variant,
    Array(Box<Type>),
    Maybe(Box<Type>),
    Tuple(Vec<Type>),
    /// `{KV}`; only ever the element type of an array.
    DictEntry(Box<Type>, Box<Type>),
}

impl Type {
    /// Parse exactly one complete type.
    pub fn parse(s: &str) -> Result<Type, String> {
        let b = s.as_bytes();
        let (t, n) = parse_one(b, 0, 0)?;
        if n != b.len() {
            return Err(format!("trailing characters in type string {s:?}"));
        }
        Ok(t)
    }

    /// Parse a D-Bus-style signature (`g`): zero or more complete types.
    pub fn parse_many(s: &str) -> Result<Vec<Type>, String> {
        let b = s.as_bytes();
        let mut i = 0;
        let mut out = Vec::new();
        while i < b.len() {
            let (t, n) = parse_one(b, i, 0)?;
            out.push(t);
            i = n;
        }
        Ok(out)
    }

    pub fn array(elem: Type) -> Type {
        Type::Array(Box::new(elem))
    }

    /// `a{KV}`.
    pub fn dict(key: Type, value: Type) -> Type {
        Type::array(Type::DictEntry(Box::new(key), Box::new(value)))
    }

    /// Basic types: the ones a dictionary key may have.
    pub fn is_basic(&self) -> bool {
        !matches!(
            self,
            Type::Variant | Type::Array(_) | Type::Maybe(_) | Type::Tuple(_) | Type::DictEntry(..)
        )
    }

    /// Alignment of the type's serialization (1, 2, 4 or 8).
    pub fn alignment(&self) -> usize {
        match self {
            Type::Bool | Type::Byte | Type::Str | Type::ObjectPath | Type::Signature => 1,
            Type::Int16 | Type::UInt16 => 2,
            Type::Int32 | Type::UInt32 => 4,
            Type::Int64 | Type::UInt64 | Type::Double | Type::Variant => 8,
            Type::Array(e) | Type::Maybe(e) => e.alignment(),
            Type::Tuple(m) => m.iter().map(Type::alignment).max().unwrap_or(1),
            Type::DictEntry(k, v) => k.alignment().max(v.alignment()),
        }
    }

    /// Size of every value of the type, when that is fixed.
    pub fn fixed_size(&self) -> Option<usize> {
        match self {
            Type::Bool | Type::Byte => Some(1),
            Type::Int16 | Type::UInt16 => Some(2),
            Type::Int32 | Type::UInt32 => Some(4),
            Type::Int64 | Type::UInt64 | Type::Double => Some(8),
            Type::Str
            | Type::ObjectPath
            | Type::Signature
            | Type::Variant
            | Type::Array(_)
            | Type::Maybe(_) => None,
            Type::Tuple(m) => tuple_fixed_size(m.iter()),
            Type::DictEntry(k, v) => tuple_fixed_size([&**k, &**v].into_iter()),
        }
    }
}

/// A tuple's size when all members are fixed: each member aligned, the end
/// padded to the tuple's alignment; the unit tuple `()` is one byte.
pub(super) fn tuple_fixed_size<'a>(
    members: impl Iterator<Item = &'a Type> + Clone,
) -> Option<usize> {
    let mut size = 0usize;
    let mut align = 1usize;
    let mut any = false;
    for m in members {
        let a = m.alignment();
        size = size.next_multiple_of(a) + m.fixed_size()?;
        align = align.max(a);
        any = true;
    }
    Some(if any { size.next_multiple_of(align) } else { 1 })
}

fn parse_one(b: &[u8], i: usize, depth: usize) -> Result<(Type, usize), String> {
    if depth > MAX_DEPTH {
        return Err("type nests too deep".into());
    }
    let Some(&c) = b.get(i) else {
        return Err("incomplete type string".into());
    };
    let simple = match c {
        b'b' => Some(Type::Bool),
        b'y' => Some(Type::Byte),
        b'n' => Some(Type::Int16),
        b'q' => Some(Type::UInt16),
        b'i' => Some(Type::Int32),
        b'u' => Some(Type::UInt32),
        b'x' => Some(Type::Int64),
        b't' => Some(Type::UInt64),
        b'd' => Some(Type::Double),
        b's' => Some(Type::Str),
        b'o' => Some(Type::ObjectPath),
        b'g' => Some(Type::Signature),
        b'v' => Some(Type::Variant),
        _ => None,
    };
    if let Some(t) = simple {
        return Ok((t, i + 1));
    }
    match c {
        b'a' => {
            if b.get(i + 1) == Some(&b'{') {
                let (k, n) = parse_one(b, i + 2, depth + 1)?;
                if !k.is_basic() {
                    return Err("dictionary key is not a basic type".into());
                }
                let (v, n) = parse_one(b, n, depth + 1)?;
                if b.get(n) != Some(&b'}') {
                    return Err("dictionary entry type without '}'".into());
                }
                Ok((Type::dict(k, v), n + 1))
            } else {
                let (e, n) = parse_one(b, i + 1, depth + 1)?;
                Ok((Type::array(e), n))
            }
        }
        b'm' => {
            let (e, n) = parse_one(b, i + 1, depth + 1)?;
            Ok((Type::Maybe(Box::new(e)), n))
        }
        b'(' => {
            let mut members = Vec::new();
            let mut j = i + 1;
            loop {
                match b.get(j) {
                    Some(b')') => return Ok((Type::Tuple(members), j + 1)),
                    Some(_) => {
                        let (m, n) = parse_one(b, j, depth + 1)?;
                        members.push(m);
                        j = n;
                    }
                    None => return Err("tuple type without ')'".into()),
                }
            }
        }
        c => Err(format!("unsupported type character {:?}", c as char)),
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = match self {
            Type::Bool => "b",
            Type::Byte => "y",
            Type::Int16 => "n",
            Type::UInt16 => "q",
            Type::Int32 => "i",
            Type::UInt32 => "u",
            Type::Int64 => "x",
            Type::UInt64 => "t",
            Type::Double => "d",
            Type::Str => "s",
            Type::ObjectPath => "o",
            Type::Signature => "g",
            Type::Variant => "v",
            Type::Array(e) => return write!(f, "a{e}"),
            Type::Maybe(e) => return write!(f, "m{e}"),
            Type::Tuple(m) => {
                f.write_str("(")?;
                for t in m {
                    write!(f, "{t}")?;
                }
                return f.write_str(")");
            }
            Type::DictEntry(k, v) => return write!(f, "{{{k}{v}}}"),
        };
        f.write_str(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_print_and_layout() {
        for s in [
            "a{sv}",
            "(a(say)a(sayay))",
            "(uuua(ayay))",
            "mmas",
            "()",
            "a{ya(yt)}",
        ] {
            assert_eq!(Type::parse(s).unwrap().to_string(), s);
        }
        for bad in [
            "", "a", "(s", "{sv}", "a{vs}", "a{s}", "h", "ss", "a{svv}", "z",
        ] {
            assert!(Type::parse(bad).is_err(), "{bad:?}");
        }
        let deep = "a".repeat(200) + "y";
        assert!(Type::parse(&deep).is_err());
        assert_eq!(Type::parse_many("sa{sv}i").unwrap().len(), 3);
        let t = |s: &str| Type::parse(s).unwrap();
        assert_eq!(t("(yt)").fixed_size(), Some(16));
        assert_eq!(t("(ty)").fixed_size(), Some(16));
        assert_eq!(t("(yy)").fixed_size(), Some(2));
        assert_eq!(t("()").fixed_size(), Some(1));
        assert_eq!(t("(uuu)").fixed_size(), Some(12));
        assert_eq!(t("(ys)").fixed_size(), None);
        assert_eq!(t("a{yy}").alignment(), 1);
        assert_eq!(t("(sv)").alignment(), 8);
    }
}

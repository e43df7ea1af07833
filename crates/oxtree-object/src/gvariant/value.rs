//! A GVariant value of any type, as metadata (`a{sv}`) holds them.

use super::signature::Type;

/// A dynamic GVariant value. Each variant maps to one type, so a value
/// knows its own type ([`Value::type_`]); an array carries its element type
/// so that an empty one does too.
///
/// `ay` is always [`Value::Bytes`] and `a{KV}` always [`Value::Dict`] (the
/// decoder and [`Value::array`] guarantee it), so code can match them
/// directly.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Bool(bool),
    U8(u8),
    I16(i16),
    U16(u16),
    I32(i32),
    U32(u32),
    I64(i64),
    U64(u64),
    F64(f64),
    Str(String),
    ObjectPath(String),
    Signature(String),
    /// `v`: a value with its type attached.
    Variant(Box<Value>),
    /// `mT`: the child type and maybe a child.
    Maybe(Type, Option<Box<Value>>),
    /// `ay`.
    Bytes(Vec<u8>),
    /// `aT` for any other element type (not a dictionary entry).
    Array(Type, Vec<Value>),
    /// `a{KV}`: key type, value type, entries in order (GLib keeps the
    /// order they were serialized in, and so do we).
    Dict(Type, Type, Vec<(Value, Value)>),
    /// `(…)`.
    Struct(Vec<Value>),
}

impl Value {
    /// An array of `elem`, in its canonical form (bytes for `ay`).
    pub fn array(elem: Type, items: Vec<Value>) -> Value {
        if elem == Type::Byte {
            let bytes: Option<Vec<u8>> = items
                .iter()
                .map(|v| match v {
                    Value::U8(b) => Some(*b),
                    _ => None,
                })
                .collect();
            if let Some(b) = bytes {
                return Value::Bytes(b);
            }
        }
        Value::Array(elem, items)
    }

    /// `v` holding `inner`.
    pub fn variant(inner: Value) -> Value {
        Value::Variant(Box::new(inner))
    }

    pub fn type_(&self) -> Type {
        match self {
            Value::Bool(_) => Type::Bool,
            Value::U8(_) => Type::Byte,
            Value::I16(_) => Type::Int16,
            Value::U16(_) => Type::UInt16,
            Value::I32(_) => Type::Int32,
            Value::U32(_) => Type::UInt32,
            Value::I64(_) => Type::Int64,
            Value::U64(_) => Type::UInt64,
            Value::F64(_) => Type::Double,
            Value::Str(_) => Type::Str,
            Value::ObjectPath(_) => Type::ObjectPath,
            Value::Signature(_) => Type::Signature,
            Value::Variant(_) => Type::Variant,
            Value::Maybe(t, _) => Type::Maybe(Box::new(t.clone())),
            Value::Bytes(_) => Type::array(Type::Byte),
            Value::Array(t, _) => Type::array(t.clone()),
            Value::Dict(k, v, _) => Type::dict(k.clone(), v.clone()),
            Value::Struct(m) => Type::Tuple(m.iter().map(Value::type_).collect()),
        }
    }

    /// Alignment of the value's type, without building the type.
    pub(super) fn alignment(&self) -> usize {
        match self {
            Value::Bool(_)
            | Value::U8(_)
            | Value::Str(_)
            | Value::ObjectPath(_)
            | Value::Signature(_)
            | Value::Bytes(_) => 1,
            Value::I16(_) | Value::U16(_) => 2,
            Value::I32(_) | Value::U32(_) => 4,
            Value::I64(_) | Value::U64(_) | Value::F64(_) | Value::Variant(_) => 8,
            Value::Maybe(t, _) | Value::Array(t, _) => t.alignment(),
            Value::Dict(k, v, _) => k.alignment().max(v.alignment()),
            Value::Struct(m) => m.iter().map(Value::alignment).max().unwrap_or(1),
        }
    }

    /// Whether the value's type has a fixed size, without building the type.
    pub(super) fn is_fixed_size(&self) -> bool {
        match self {
            Value::Bool(_)
            | Value::U8(_)
            | Value::I16(_)
            | Value::U16(_)
            | Value::I32(_)
            | Value::U32(_)
            | Value::I64(_)
            | Value::U64(_)
            | Value::F64(_) => true,
            Value::Struct(m) => m.iter().all(Value::is_fixed_size),
            _ => false,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The value inside a `v`, or the value itself.
    pub fn unvariant(&self) -> &Value {
        match self {
            Value::Variant(inner) => inner,
            other => other,
        }
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}
impl From<u8> for Value {
    fn from(v: u8) -> Self {
        Value::U8(v)
    }
}
impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Value::U32(v)
    }
}
impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::U64(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Str(v.to_string())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Str(v)
    }
}
impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Bytes(v)
    }
}
impl From<&[u8]> for Value {
    fn from(v: &[u8]) -> Self {
        Value::Bytes(v.to_vec())
    }
}

//! [`Variant`]: Rust types with a fixed GVariant type, so that the object
//! structs can name their wire form as a tuple type (`(u32, u32, u32,
//! Vec<(Vec<u8>, Vec<u8>)>)` for a dirmeta) and [`super::encode`] /
//! [`super::decode`] it.

use super::signature::Type;
use super::value::Value;

pub trait Variant: Sized {
    /// The GVariant type of every value of `Self`.
    fn signature() -> Type;
    fn to_value(&self) -> Value;
    /// None when `v` is not of [`Variant::signature`]'s shape.
    fn from_value(v: Value) -> Option<Self>;

    /// `Vec<Self>` as a value; overridden so that `Vec<u8>` is `ay` bytes.
    #[doc(hidden)]
    fn vec_to_value(items: &[Self]) -> Value {
        Value::Array(
            Self::signature(),
            items.iter().map(Self::to_value).collect(),
        )
    }
    #[doc(hidden)]
    fn vec_from_value(v: Value) -> Option<Vec<Self>> {
        match v {
            Value::Array(_, items) => items.into_iter().map(Self::from_value).collect(),
            _ => None,
        }
    }
}

macro_rules! basic {
    ($t:ty, $sig:ident, $var:ident) => {
        impl Variant for $t {
            fn signature() -> Type {
                Type::$sig
            }
            fn to_value(&self) -> Value {
                Value::$var(self.clone())
            }
            fn from_value(v: Value) -> Option<Self> {
                match v {
                    Value::$var(x) => Some(x),
                    _ => None,
                }
            }
        }
    };
}

basic!(bool, Bool, Bool);
basic!(u16, UInt16, U16);
basic!(u32, UInt32, U32);
basic!(i32, Int32, I32);
basic!(u64, UInt64, U64);
basic!(i64, Int64, I64);
basic!(String, Str, Str);

impl Variant for u8 {
    fn signature() -> Type {
        Type::Byte
    }
    fn to_value(&self) -> Value {
        Value::U8(*self)
    }
    fn from_value(v: Value) -> Option<Self> {
        match v {
            Value::U8(x) => Some(x),
            _ => None,
        }
    }
    fn vec_to_value(items: &[Self]) -> Value {
        Value::Bytes(items.to_vec())
    }
    fn vec_from_value(v: Value) -> Option<Vec<Self>> {
        match v {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }
}

impl<T: Variant> Variant for Vec<T> {
    fn signature() -> Type {
        Type::array(T::signature())
    }
    fn to_value(&self) -> Value {
        T::vec_to_value(self)
    }
    fn from_value(v: Value) -> Option<Self> {
        T::vec_from_value(v)
    }
}

/// `v`: any value.
impl Variant for Value {
    fn signature() -> Type {
        Type::Variant
    }
    fn to_value(&self) -> Value {
        Value::Variant(Box::new(self.clone()))
    }
    fn from_value(v: Value) -> Option<Self> {
        match v {
            Value::Variant(inner) => Some(*inner),
            _ => None,
        }
    }
}

macro_rules! tuple {
    ($($n:ident),+) => {
        impl<$($n: Variant),+> Variant for ($($n,)+) {
            fn signature() -> Type {
                Type::Tuple(vec![$($n::signature()),+])
            }
            #[allow(non_snake_case)]
            fn to_value(&self) -> Value {
                let ($($n,)+) = self;
                Value::Struct(vec![$($n.to_value()),+])
            }
            #[allow(non_snake_case)]
            fn from_value(v: Value) -> Option<Self> {
                let Value::Struct(m) = v else { return None };
                let mut it = m.into_iter();
                $(let $n = $n::from_value(it.next()?)?;)+
                if it.next().is_some() {
                    return None;
                }
                Some(($($n,)+))
            }
        }
    };
}

tuple!(A, B);
tuple!(A, B, C);
tuple!(A, B, C, D);
tuple!(A, B, C, D, E);
tuple!(A, B, C, D, E, F);
tuple!(A, B, C, D, E, F, G);
tuple!(A, B, C, D, E, F, G, H);

//! GVariant text format (what `ostree show`, `ls -X` and
//! `--print-metadata-key` print), for the value types ostree metadata uses.

use crate::gvariant::{Type, Value};

/// Render a value the way GLib's `g_variant_print (v, FALSE)` does for the
/// common types: strings quoted, byte arrays as `[byte 0x..]`, typed
/// integers with their prefix where GLib needs one.
pub fn print(v: &Value) -> String {
    let mut s = String::new();
    write_value(&mut s, v, true);
    s
}

/// A number standing alone with its bytes swapped, as `g_variant_byteswap`
/// gives it (`ostree show` swaps what it prints unless `-B`: ostree stores
/// its own numbers big-endian). None for anything but a number (bytes,
/// strings and booleans read the same either way; numbers inside
/// containers are not swapped).
pub fn byteswap_scalar(v: &Value) -> Option<Value> {
    Some(match v {
        Value::I16(n) => Value::I16(n.swap_bytes()),
        Value::U16(n) => Value::U16(n.swap_bytes()),
        Value::I32(n) => Value::I32(n.swap_bytes()),
        Value::U32(n) => Value::U32(n.swap_bytes()),
        Value::I64(n) => Value::I64(n.swap_bytes()),
        Value::U64(n) => Value::U64(n.swap_bytes()),
        Value::F64(n) => Value::F64(f64::from_bits(n.to_bits().swap_bytes())),
        _ => return None,
    })
}

/// Like [`print`], without the type annotations GLib adds to a value
/// standing alone (`{}` for an empty dictionary, `5` for a uint64).
pub fn print_bare(v: &Value) -> String {
    let mut s = String::new();
    write_value(&mut s, v, false);
    s
}

/// A byte array as GLib prints `ay`: `b'text'` when it is a NUL-terminated
/// printable string, else `[byte 0x.., 0x..]` (the `byte` annotation only
/// when `annotate`, i.e. on the first element of an enclosing array).
pub fn bytestring(bytes: &[u8], annotate: bool) -> String {
    if let Some((0, body)) = bytes.split_last() {
        if let Ok(s) = std::str::from_utf8(body) {
            if !s.contains('\0') && s.chars().all(|c| !c.is_control()) {
                let mut out = String::from("b");
                quote(&mut out, s);
                return out;
            }
        }
    }
    if bytes.is_empty() {
        return if annotate {
            "@ay []".into()
        } else {
            "[]".into()
        };
    }
    let items: Vec<String> = bytes
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if i == 0 && annotate {
                format!("byte 0x{b:02x}")
            } else {
                format!("0x{b:02x}")
            }
        })
        .collect();
    format!("[{}]", items.join(", "))
}

fn quote(out: &mut String, s: &str) {
    let q = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(q);
    for ch in s.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c == q => {
                out.push('\\');
                out.push(c)
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push(q);
}

fn write_value(out: &mut String, v: &Value, top: bool) {
    use std::fmt::Write;
    match v {
        Value::U8(b) => {
            let _ = write!(out, "{}0x{b:02x}", if top { "byte " } else { "" });
        }
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::I16(n) => {
            let _ = write!(out, "{}{n}", if top { "int16 " } else { "" });
        }
        Value::U16(n) => {
            let _ = write!(out, "{}{n}", if top { "uint16 " } else { "" });
        }
        Value::I32(n) => {
            let _ = write!(out, "{n}");
        }
        Value::U32(n) => {
            let _ = write!(out, "{}{n}", if top { "uint32 " } else { "" });
        }
        Value::I64(n) => {
            let _ = write!(out, "{}{n}", if top { "int64 " } else { "" });
        }
        Value::U64(n) => {
            let _ = write!(out, "{}{n}", if top { "uint64 " } else { "" });
        }
        Value::F64(n) if n.is_nan() => out.push_str("nan"),
        Value::F64(n) => {
            let _ = write!(out, "{n:?}");
        }
        Value::Str(s) => quote(out, s),
        Value::Signature(s) => {
            let _ = write!(out, "signature '{s}'");
        }
        Value::ObjectPath(p) => {
            let _ = write!(out, "objectpath '{p}'");
        }
        Value::Variant(inner) => {
            out.push('<');
            write_value(out, inner, true);
            out.push('>');
        }
        Value::Maybe(..) => {
            // As g_variant_print: the type when annotating, then the
            // innermost value when every level is Just, else as many
            // `just` as levels above the first Nothing.
            if top {
                let _ = write!(out, "@{} ", v.type_());
            }
            let mut justs = 0;
            let mut cur = v;
            while let Value::Maybe(_, child) = cur {
                match child {
                    Some(c) => {
                        justs += 1;
                        cur = c;
                    }
                    None => {
                        out.push_str(&"just ".repeat(justs));
                        out.push_str("nothing");
                        return;
                    }
                }
            }
            write_value(out, cur, false);
        }
        Value::Bytes(bytes) => {
            if bytes.is_empty() {
                out.push_str("@ay []");
                return;
            }
            // A byte array that is a printable NUL-terminated string prints
            // as b'...' like GLib does.
            if let Some((0, body)) = bytes.split_last() {
                if let Ok(s) = std::str::from_utf8(body) {
                    if !s.contains('\0') && s.chars().all(|c| !c.is_control()) {
                        out.push('b');
                        quote(out, s);
                        return;
                    }
                }
            }
            out.push('[');
            for (i, b) in bytes.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, &Value::U8(*b), i == 0 && top);
            }
            out.push(']');
        }
        Value::Array(t, a) => {
            if a.is_empty() {
                let _ = write!(out, "@a{t} []");
                return;
            }
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, x, i == 0 && top);
            }
            out.push(']');
        }
        Value::Dict(_, _, d) => {
            if d.is_empty() {
                // GLib names the type of an empty container it cannot infer.
                if top {
                    let _ = write!(out, "@{} {{}}", v.type_());
                } else {
                    out.push_str("{}");
                }
                return;
            }
            out.push('{');
            for (i, (k, val)) in d.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, k, false);
                out.push_str(": ");
                write_value(out, val, false);
            }
            out.push('}');
        }
        Value::Struct(f) => {
            out.push('(');
            for (i, x) in f.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, x, top);
            }
            if f.len() == 1 {
                out.push(',');
            }
            out.push(')');
        }
    }
}

/// Parse the GVariant text format (`g_variant_parse`) for the values
/// metadata on the command line uses (`summary --add-metadata`): strings
/// (`'…'`, `"…"`), `true`/`false`, numbers (`5` is an int32, `1.5` a
/// double; `byte`, `int16`, `uint16`, `int32`, `uint32`, `int64`,
/// `uint64` prefixes), `b'…'` byte strings, `<…>` variants, arrays of one
/// type, `{'k': <v>, …}` dictionaries, and `@TYPE` annotations on empty
/// containers (`@a{sv} {}`, `@as []`).
///
/// Written by hand: no maintained crate parses GLib's text format.
pub fn parse(text: &str) -> Result<Value, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
        depth: 0,
    };
    let v = p.value(None)?;
    p.ws();
    if p.i != p.s.len() {
        return Err(format!(
            "trailing text at offset {}: '{}'",
            p.i,
            &text[p.i..]
        ));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    depth: usize,
}

/// How deep containers may nest in parsed text.
const MAX_TEXT_DEPTH: usize = 64;

impl<'a> Parser<'a> {
    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> Result<(), String> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected '{}' at offset {}", c as char, self.i))
        }
    }

    fn word(&mut self) -> &'a str {
        self.ws();
        let start = self.i;
        while self
            .s
            .get(self.i)
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-' | b'+'))
        {
            self.i += 1;
        }
        std::str::from_utf8(&self.s[start..self.i]).unwrap_or("")
    }

    /// A type string after `@` (one complete type).
    fn type_string(&mut self) -> Result<String, String> {
        self.ws();
        let start = self.i;
        let mut open = 0i32;
        while let Some(&c) = self.s.get(self.i) {
            match c {
                b'a' | b'm' => {}
                b'(' | b'{' => open += 1,
                b')' | b'}' => open -= 1,
                c if c.is_ascii_alphabetic() || c == b'*' || c == b'?' => {}
                _ => break,
            }
            self.i += 1;
            if open == 0 && !matches!(c, b'a' | b'm') {
                break;
            }
        }
        let t = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
        if t.is_empty() {
            return Err(format!("expected a type after '@' at offset {start}"));
        }
        Ok(t.to_string())
    }

    fn value(&mut self, want: Option<&str>) -> Result<Value, String> {
        self.depth += 1;
        if self.depth > MAX_TEXT_DEPTH {
            return Err("values nest too deep".into());
        }
        let r = self.value_inner(want);
        self.depth -= 1;
        r
    }

    fn value_inner(&mut self, want: Option<&str>) -> Result<Value, String> {
        match self.peek() {
            Some(b'@') => {
                self.i += 1;
                let t = self.type_string()?;
                self.value(Some(&t))
            }
            Some(b'\'') | Some(b'"') => Ok(Value::from(self.string()?)),
            Some(b'<') => {
                self.i += 1;
                let v = self.value(None)?;
                self.eat(b'>')?;
                Ok(Value::variant(v))
            }
            Some(b'[') => self.array(want),
            Some(b'{') => self.dict(want),
            Some(b'b')
                if self
                    .s
                    .get(self.i + 1)
                    .is_some_and(|c| *c == b'\'' || *c == b'"') =>
            {
                self.i += 1;
                let mut bytes = self.string()?.into_bytes();
                bytes.push(0);
                Ok(Value::from(bytes))
            }
            Some(_) => {
                let w = self.word();
                let typed = |p: &mut Self, t: &str| -> Result<Value, String> {
                    let n = p.word();
                    number(t, n)
                };
                match w {
                    "true" => Ok(Value::Bool(true)),
                    "false" => Ok(Value::Bool(false)),
                    "byte" => typed(self, "y"),
                    "int16" => typed(self, "n"),
                    "uint16" => typed(self, "q"),
                    "int32" => typed(self, "i"),
                    "uint32" => typed(self, "u"),
                    "int64" => typed(self, "x"),
                    "uint64" => typed(self, "t"),
                    "double" => typed(self, "d"),
                    "" => Err(format!("unexpected character at offset {}", self.i)),
                    n => number(
                        want.unwrap_or(if n.contains(['.', 'e']) || is_special_double(n) {
                            "d"
                        } else {
                            "i"
                        }),
                        n,
                    ),
                }
            }
            None => Err("unexpected end of text".into()),
        }
    }

    fn string(&mut self) -> Result<String, String> {
        let q = self.s[self.i];
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let Some(&c) = self.s.get(self.i) else {
                return Err("unterminated string".into());
            };
            self.i += 1;
            match c {
                c if c == q => break,
                b'\\' => {
                    let Some(&e) = self.s.get(self.i) else {
                        return Err("unterminated string".into());
                    };
                    self.i += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'0' => out.push(0),
                        b'u' => {
                            let h = self
                                .s
                                .get(self.i..self.i + 4)
                                .and_then(|h| std::str::from_utf8(h).ok())
                                .and_then(|h| u32::from_str_radix(h, 16).ok())
                                .and_then(char::from_u32)
                                .ok_or("bad \\u escape")?;
                            self.i += 4;
                            let mut b = [0u8; 4];
                            out.extend_from_slice(h.encode_utf8(&mut b).as_bytes());
                        }
                        other => out.push(other),
                    }
                }
                c => out.push(c),
            }
        }
        String::from_utf8(out).map_err(|_| "string is not UTF-8".to_string())
    }

    fn array(&mut self, want: Option<&str>) -> Result<Value, String> {
        self.eat(b'[')?;
        let elem_want = want.and_then(|t| t.strip_prefix('a')).map(str::to_string);
        let mut items = Vec::new();
        if self.peek() != Some(b']') {
            loop {
                // Later elements take the first one's type.
                let t = elem_want
                    .clone()
                    .or_else(|| items.first().map(|v: &Value| v.type_().to_string()));
                items.push(self.value(t.as_deref())?);
                match self.peek() {
                    Some(b',') => self.i += 1,
                    _ => break,
                }
            }
        }
        self.eat(b']')?;
        let sig = match (items.first(), &elem_want) {
            (Some(v), _) => v.type_(),
            (None, Some(t)) => Type::parse(t)?,
            (None, None) => return Err("an empty array needs a type: @as []".into()),
        };
        if matches!(sig, Type::DictEntry(..)) {
            return Err("dictionary entries outside {…}".into());
        }
        if items.iter().any(|v| v.type_() != sig) {
            return Err("array elements of different types".into());
        }
        Ok(Value::array(sig, items))
    }

    fn dict(&mut self, want: Option<&str>) -> Result<Value, String> {
        self.eat(b'{')?;
        let (kt, vt) = match want
            .and_then(|t| t.strip_prefix("a{"))
            .and_then(|t| t.strip_suffix('}'))
        {
            Some(kv) if kv.len() >= 2 => (kv[..1].to_string(), kv[1..].to_string()),
            _ => ("s".to_string(), "v".to_string()),
        };
        let mut pairs = Vec::new();
        if self.peek() != Some(b'}') {
            loop {
                let k = self.value(Some(&kt))?;
                self.eat(b':')?;
                let v = self.value(Some(&vt))?;
                pairs.push((k, v));
                match self.peek() {
                    Some(b',') => self.i += 1,
                    _ => break,
                }
            }
        }
        self.eat(b'}')?;
        let ks = Type::parse(&kt)?;
        let vs = Type::parse(&vt)?;
        if !ks.is_basic() {
            return Err("dictionary key is not a basic type".into());
        }
        if pairs
            .iter()
            .any(|(k, v)| k.type_() != ks || v.type_() != vs)
        {
            return Err("dictionary entries of different types".into());
        }
        Ok(Value::Dict(ks, vs, pairs))
    }
}

/// The words GLib's parser reads as doubles (and prints them as).
fn is_special_double(n: &str) -> bool {
    matches!(n, "inf" | "-inf" | "nan")
}

/// A double as GLib's parser reads it: a decimal literal that fits (one
/// too big for a double is an error there, not infinity), or `inf`,
/// `-inf`, `nan`; not Rust's other spellings (`infinity`, `NaN`).
fn double(n: &str) -> Option<f64> {
    match n {
        "inf" => Some(f64::INFINITY),
        "-inf" => Some(f64::NEG_INFINITY),
        "nan" => Some(f64::NAN),
        _ if n
            .bytes()
            .any(|c| c.is_ascii_alphabetic() && c != b'e' && c != b'E') =>
        {
            None
        }
        _ => n.parse::<f64>().ok().filter(|d| d.is_finite()),
    }
}

fn number(t: &str, n: &str) -> Result<Value, String> {
    let bad = || format!("'{n}' is not a valid {t} value");
    let int = |n: &str| -> Result<i128, String> {
        match n.strip_prefix("0x") {
            Some(h) => i128::from_str_radix(h, 16).map_err(|_| bad()),
            None => n.parse::<i128>().map_err(|_| bad()),
        }
    };
    Ok(match t {
        "y" => Value::U8(u8::try_from(int(n)?).map_err(|_| bad())?),
        "n" => Value::I16(i16::try_from(int(n)?).map_err(|_| bad())?),
        "q" => Value::U16(u16::try_from(int(n)?).map_err(|_| bad())?),
        "i" => Value::I32(i32::try_from(int(n)?).map_err(|_| bad())?),
        "u" => Value::U32(u32::try_from(int(n)?).map_err(|_| bad())?),
        "x" => Value::I64(i64::try_from(int(n)?).map_err(|_| bad())?),
        "t" => Value::U64(u64::try_from(int(n)?).map_err(|_| bad())?),
        "d" => Value::F64(double(n).ok_or_else(bad)?),
        _ => return Err(bad()),
    })
}

#[cfg(test)]
mod parse_tests {
    use super::*;

    #[test]
    fn round_trips_through_print() {
        for t in [
            "'value'",
            "true",
            "uint64 5",
            "@a{sv} {}",
            "['a', 'b']",
            "{'k': <'v'>, 'n': <uint64 3>}",
            "<int64 -2>",
            "b'hi'",
            "@as []",
        ] {
            let v = parse(t).unwrap_or_else(|e| panic!("{t}: {e}"));
            assert_eq!(print(&v), t, "{t}");
        }
        assert_eq!(print(&parse("5").unwrap()), "5");
        for bad in ["'open", "[1, 'a']", "[]", "uint8 3", "{'k' <1>}", "1 2"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let deep = "[".repeat(100) + &"]".repeat(100);
        // Maybes as GLib prints them (g_variant_print, annotated).
        let m = |t: Type, c: Option<Value>| Value::Maybe(t, c.map(Box::new));
        assert_eq!(print(&m(Type::UInt32, Some(Value::U32(5)))), "@mu 5");
        assert_eq!(print(&m(Type::UInt32, None)), "@mu nothing");
        let mu = Type::Maybe(Box::new(Type::UInt32));
        let just_nothing = m(mu.clone(), Some(m(Type::UInt32, None)));
        assert_eq!(print(&just_nothing), "@mmu just nothing");
        let pair = Value::Struct(vec![m(Type::Str, Some("a".into())), m(Type::UInt32, None)]);
        assert_eq!(print(&pair), "(@ms 'a', @mu nothing)");
        assert!(parse(&deep).is_err());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_doubles_print_and_parse_as_glib_does() {
        // GLib: `inf`, `-inf` and `nan` are doubles; a literal too big for
        // a double is an error ("number too big for any type").
        for (text, printed) in [("inf", "inf"), ("-inf", "-inf"), ("nan", "nan")] {
            let v = parse(text).unwrap();
            assert_eq!(print(&v), printed);
            assert_eq!(print(&parse(&print(&v)).unwrap()), printed);
        }
        assert_eq!(print(&parse("[inf, 1.0]").unwrap()), "[inf, 1.0]");
        assert!(parse("double 22e622").is_err());
        assert!(parse("22e622").is_err());
        assert!(parse("double infinity").is_err());
        assert!(parse("double NaN").is_err());
        assert_eq!(print(&parse("double 1.5").unwrap()), "1.5");
    }
}

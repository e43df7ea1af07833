//! GVariant text format (what `ostree show`, `ls -X` and
//! `--print-metadata-key` print), for the value types ostree metadata uses.

use zvariant::Value;

/// Render a value the way GLib's `g_variant_print (v, FALSE)` does for the
/// common types: strings quoted, byte arrays as `[byte 0x..]`, typed
/// integers with their prefix where GLib needs one.
pub fn print(v: &Value<'_>) -> String {
    let mut s = String::new();
    write_value(&mut s, v, true);
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

fn write_value(out: &mut String, v: &Value<'_>, top: bool) {
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
        Value::F64(n) => {
            let _ = write!(out, "{n:?}");
        }
        Value::Str(s) => quote(out, s.as_str()),
        Value::Signature(s) => {
            let _ = write!(out, "signature '{s}'");
        }
        Value::ObjectPath(p) => {
            let _ = write!(out, "objectpath '{p}'");
        }
        Value::Value(inner) => {
            out.push('<');
            write_value(out, inner, true);
            out.push('>');
        }
        Value::Array(a) => {
            let elem_sig = a.element_signature().to_string();
            if a.is_empty() {
                let _ = write!(out, "@a{elem_sig} []");
                return;
            }
            // A byte array that is a printable NUL-terminated string prints
            // as b'...' like GLib does.
            if elem_sig == "y" {
                let bytes = crate::gvariant::byte_array(a).unwrap_or_default();
                if let Some((0, body)) = bytes.split_last() {
                    if let Ok(s) = std::str::from_utf8(body) {
                        if !s.contains('\0') && s.chars().all(|c| !c.is_control()) {
                            out.push('b');
                            quote(out, s);
                            return;
                        }
                    }
                }
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
        Value::Dict(d) => {
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
        Value::Structure(st) => {
            out.push('(');
            let f = st.fields();
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
        #[allow(unreachable_patterns)]
        other => {
            let _ = write!(out, "{other:?}");
        }
    }
}

//! ostree-ext's escaping of arbitrary strings into ref names: ASCII
//! alphanumerics and `-` stay, `_` becomes `__`, `/` stays between
//! alphanumerics (not last), anything else is `_XX_` (hex of the code
//! point, upper case). `sha256:ab` is `sha256_3A_ab`.

use crate::error::{ContainerError, Result};
use std::fmt::Write;

pub const LAYER_PREFIX: &str = "ostree/container/blob";
pub const IMAGE_PREFIX: &str = "ostree/container/image";

pub fn escape(s: &str) -> Result<String> {
    if s.is_empty() || s.contains('\0') {
        return Err(ContainerError::Invalid(format!(
            "{s:?} cannot be escaped into a ref"
        )));
    }
    let chars: Vec<char> = s.chars().collect();
    let mut r = String::new();
    let mut prev_alnum = false;
    for (i, &c) in chars.iter().enumerate() {
        let alnum = c.is_ascii_alphanumeric();
        let has_next = i + 1 < chars.len();
        match c {
            c if alnum => r.push(c),
            '/' if prev_alnum && has_next => r.push(c),
            '-' => r.push(c),
            '_' => r.push_str("__"),
            o => write!(r, "_{:02X}_", o as u32).expect("writing to a String"),
        }
        prev_alnum = alnum;
    }
    Ok(r)
}

pub fn unescape(s: &str) -> Result<String> {
    let bad = || ContainerError::Invalid(format!("{s:?} is not an escaped ref"));
    let mut out = String::new();
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c != '_' {
            out.push(c);
            continue;
        }
        if it.peek() == Some(&'_') {
            it.next();
            out.push('_');
            continue;
        }
        let mut hex = String::new();
        loop {
            match it.next() {
                Some('_') => break,
                Some(h) if h.is_ascii_hexdigit() => hex.push(h),
                _ => return Err(bad()),
            }
        }
        let v = u32::from_str_radix(&hex, 16).map_err(|_| bad())?;
        out.push(char::from_u32(v).ok_or_else(bad)?);
    }
    Ok(out)
}

/// `ostree/container/blob/sha256_3A_HEX`
pub fn layer_ref(digest: &str) -> Result<String> {
    Ok(format!("{LAYER_PREFIX}/{}", escape(digest)?))
}

/// `ostree/container/image/ESCAPED`
pub fn image_ref(imgref: &str) -> Result<String> {
    Ok(format!("{IMAGE_PREFIX}/{}", escape(imgref)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_ostree_ext() {
        assert_eq!(
            escape("registry:quay.io/coreos/fedora:latest").unwrap(),
            "registry_3A_quay_2E_io/coreos/fedora_3A_latest"
        );
        assert_eq!(escape("sha256:ab").unwrap(), "sha256_3A_ab");
        assert_eq!(escape("a//b_").unwrap(), "a/_2F_b__");
        for s in ["docker://127.0.0.1:5000/x/y:v1", "oci:/tmp/a_b", "a/"] {
            assert_eq!(unescape(&escape(s).unwrap()).unwrap(), s);
        }
        assert!(escape("").is_err());
    }
}

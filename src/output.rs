//! Rendering shared by several commands: ostree's commit dump and its
//! JSON form, and the `ls` line format.

use crate::util::format_date;
use oxtree_object::text;
use oxtree_object::{Checksum, Commit, Xattrs};
use serde_json::json;

/// Indent each line by four spaces (ostree's dump_indented_lines).
fn indented(s: &str) -> String {
    s.lines().map(|l| format!("    {l}\n")).collect()
}

/// The commit block `ostree log` and `ostree show` print.
pub fn commit_text(csum: &Checksum, c: &Commit) -> String {
    let mut s = format!("commit {csum}\n");
    if let Some(p) = c.parent {
        s += &format!("Parent:  {p}\n");
    }
    s += &format!("ContentChecksum:  {}\n", c.content_checksum());
    s += &format!("Date:  {}\n", format_date(c.timestamp));
    if let Some(v) = c.version() {
        s += &format!("Version: {v}\n");
    }
    if c.subject.is_empty() {
        s += "(no subject)\n";
    } else {
        s += "\n";
        s += &indented(&c.subject);
    }
    if !c.body.is_empty() {
        s += "\n";
        s += &indented(&c.body);
    }
    s += "\n";
    s
}

pub fn commit_json(csum: &Checksum, c: &Commit) -> serde_json::Value {
    let md: serde_json::Map<String, serde_json::Value> = c
        .metadata
        .0
        .iter()
        .map(|(k, v)| (k.clone(), json!(text::print(v))))
        .collect();
    json!({
        "checksum": csum.to_hex(),
        "parent": c.parent.map(|p| p.to_hex()),
        "subject": c.subject,
        "body": c.body,
        "timestamp": c.timestamp,
        "date": format_date(c.timestamp),
        "version": c.version(),
        "content_checksum": c.content_checksum().to_hex(),
        "root_tree": c.root_tree.to_hex(),
        "root_meta": c.root_meta.to_hex(),
        "metadata": md,
    })
}

/// xattrs as `g_variant_print (xattrs, TRUE)` renders `a(ayay)`.
pub fn xattrs_text(x: &Xattrs) -> String {
    if x.is_empty() {
        return "@a(ayay) []".into();
    }
    let items: Vec<String> = x
        .wire()
        .iter()
        .enumerate()
        .map(|(i, (n, v))| {
            format!(
                "({}, {})",
                text::bytestring(n, i == 0),
                text::bytestring(v, i == 0)
            )
        })
        .collect();
    format!("[{}]", items.join(", "))
}

/// A byte count as GLib's `g_format_size` writes it (SI units): `1 byte`,
/// `786 bytes`, then `1.2 kB`, `3.4 MB` with a no-break space (U+00A0).
pub fn format_size(n: u64) -> String {
    if n == 1 {
        return "1 byte".into();
    }
    if n < 1000 {
        return format!("{n} bytes");
    }
    let units = ["kB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = n as f64 / 1000.0;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < units.len() {
        v /= 1000.0;
        i += 1;
    }
    format!("{v:.1}\u{a0}{}", units[i])
}

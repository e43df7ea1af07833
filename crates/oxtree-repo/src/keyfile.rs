//! The GLib keyfile (`GKeyFile`) format that ostree writes its repository
//! `config`, `remotes.d/*.conf` and deployment origins in: `[group]` headers
//! and `key=value` lines. The one parser and writer of that format in
//! oxtree; `RepoConfig` and the sysroot's origins both use it.
//!
//! It follows GLib where ostree's files can show a difference (checked
//! against `ostree config` 2022.7, which loads keyfiles without
//! `G_KEY_FILE_KEEP_COMMENTS`):
//! - groups and keys keep their order; a repeated `[group]` header continues
//!   the earlier group; a repeated key keeps both lines, the last one is the
//!   value that `get`, `set` and `remove` act on;
//! - `#` lines and blank lines are comments, dropped on reading (as ostree
//!   drops them when it rewrites a file); `;` is not a comment;
//! - a key loses the blanks before `=`, a value the blanks after it; the
//!   value's trailing blanks stay; a line ending in `\r\n` loses the `\r`
//!   (so a raw value ending in `\r` does not survive a write and a read;
//!   `RepoConfig::to_checked_text` refuses it);
//! - written back as `[group]` and `key=value` lines, groups separated by
//!   one blank line, empty groups included;
//! - `get`/`set` are raw (`g_key_file_get_value`/`set_value`);
//!   `get_string`/`set_string` apply the escapes `\s \n \t \r \\` and the
//!   `_list` forms split and join on `;` (`g_key_file_get_string_list`).

use std::fmt;

/// A keyfile's groups in file order, each with its `key=value` entries in
/// file order (a key may repeat; the last one counts).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyFile {
    groups: Vec<(String, Vec<(String, String)>)>,
}

/// Why a text is not a keyfile, or a value not a valid escaped string:
/// GLib's wording, with the line number when there is one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyFileError {
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for KeyFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(n) => write!(f, "line {n}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for KeyFileError {}

fn err(line: usize, message: String) -> KeyFileError {
    KeyFileError {
        line: Some(line),
        message,
    }
}

/// GLib's `g_ascii_isspace`, which trims lines, keys and values.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

/// GLib's `g_key_file_is_group_name`: not empty, no brackets, no control
/// characters.
fn is_group_name(g: &str) -> bool {
    !g.is_empty()
        && !g
            .chars()
            .any(|c| c == '[' || c == ']' || c.is_ascii_control())
}

/// GLib's `g_key_file_is_key_name`: not empty, no `=`, no blank at either
/// end, brackets only as a `key[locale]` suffix.
fn is_key_name(k: &str) -> bool {
    let base_end = k.find(['=', '[', ']']).unwrap_or(k.len());
    let base = &k[..base_end];
    if base.is_empty() || base.starts_with(' ') || base.ends_with(' ') {
        return false;
    }
    match &k[base_end..] {
        "" => true,
        rest => {
            // `[locale]` and nothing after it.
            let Some(locale) = rest.strip_prefix('[').and_then(|r| r.strip_suffix(']')) else {
                return false;
            };
            !locale.is_empty() && !locale.contains(['[', ']', '='])
        }
    }
}

impl KeyFile {
    pub fn new() -> Self {
        KeyFile::default()
    }

    /// Parse as `g_key_file_load_from_data` without keeping comments.
    pub fn parse(text: &str) -> Result<KeyFile, KeyFileError> {
        let mut kf = KeyFile::new();
        let mut current: Option<usize> = None;
        for (n, raw) in text.split('\n').enumerate() {
            let n = n + 1;
            let raw = raw.strip_suffix('\r').unwrap_or(raw);
            let line = raw.trim_start_matches(is_space);
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(rest) = line.strip_prefix('[') {
                // The name runs to the first `]`; only blanks may follow.
                if let Some((name, after)) = rest.split_once(']') {
                    if after.trim_matches([' ', '\t']).is_empty() {
                        if !is_group_name(name) {
                            return Err(err(n, format!("Invalid group name: {name}")));
                        }
                        current = Some(kf.group_index(name));
                        continue;
                    }
                }
            }
            match line.find('=') {
                Some(eq) if eq > 0 => {
                    let Some(g) = current else {
                        return Err(err(n, "Key file does not start with a group".into()));
                    };
                    let key = line[..eq].trim_end_matches(is_space);
                    if !is_key_name(key) {
                        return Err(err(n, format!("Invalid key name: {key}")));
                    }
                    let value = line[eq + 1..].trim_start_matches(is_space);
                    kf.groups[g].1.push((key.to_string(), value.to_string()));
                }
                _ => {
                    return Err(err(
                        n,
                        format!(
                            "Key file contains line “{raw}” which is not a key-value pair, group, or comment"
                        ),
                    ))
                }
            }
        }
        Ok(kf)
    }

    fn group_index(&mut self, g: &str) -> usize {
        match self.groups.iter().position(|(n, _)| n == g) {
            Some(i) => i,
            None => {
                self.groups.push((g.to_string(), Vec::new()));
                self.groups.len() - 1
            }
        }
    }

    fn group(&self, group: &str) -> Option<&[(String, String)]> {
        self.groups
            .iter()
            .find(|(g, _)| g == group)
            .map(|(_, kv)| kv.as_slice())
    }

    /// The groups, in file order.
    pub fn groups(&self) -> impl Iterator<Item = &str> {
        self.groups.iter().map(|(g, _)| g.as_str())
    }

    pub fn has_group(&self, group: &str) -> bool {
        self.group(group).is_some()
    }

    /// A group's `(key, raw value)` entries in file order, repeats included.
    pub fn entries(&self, group: &str) -> impl Iterator<Item = (&str, &str)> {
        self.group(group)
            .unwrap_or_default()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The raw value (`g_key_file_get_value`): the last line with this key.
    pub fn get(&self, group: &str, key: &str) -> Option<&str> {
        self.group(group)?
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Set the raw value (`g_key_file_set_value`): the last line with this
    /// key changes, or a line is added at the end of the group (created at
    /// the end of the file when missing).
    pub fn set(&mut self, group: &str, key: &str, value: &str) {
        let g = self.group_index(group);
        let kv = &mut self.groups[g].1;
        match kv.iter_mut().rev().find(|(k, _)| k == key) {
            Some(e) => e.1 = value.to_string(),
            None => kv.push((key.to_string(), value.to_string())),
        }
    }

    /// The value with GLib's escapes undone (`g_key_file_get_string`).
    pub fn get_string(&self, group: &str, key: &str) -> Option<Result<String, KeyFileError>> {
        self.get(group, key)
            .map(|v| unescape(v, None).map(|mut l| l.remove(0)))
    }

    /// Set a string, escaped as `g_key_file_set_string` does.
    pub fn set_string(&mut self, group: &str, key: &str, value: &str) {
        self.set(group, key, &escape(value, false));
    }

    /// The `;`-separated list (`g_key_file_get_string_list`): a trailing
    /// `;` ends the last item, `\;` is a `;` inside an item.
    pub fn get_string_list(
        &self,
        group: &str,
        key: &str,
    ) -> Option<Result<Vec<String>, KeyFileError>> {
        self.get(group, key).map(|v| unescape(v, Some(';')))
    }

    /// Set a list as `g_key_file_set_string_list` does: each item escaped
    /// and followed by `;`.
    pub fn set_string_list<S: AsRef<str>>(&mut self, group: &str, key: &str, items: &[S]) {
        let mut v = String::new();
        for i in items {
            v.push_str(&escape(i.as_ref(), true));
            v.push(';');
        }
        self.set(group, key, &v);
    }

    /// Remove the key's last line, as `g_key_file_remove_key`; an earlier
    /// repeat of it becomes the value. The (possibly empty) group stays.
    pub fn remove(&mut self, group: &str, key: &str) -> bool {
        if let Some((_, kv)) = self.groups.iter_mut().find(|(n, _)| n == group) {
            if let Some(i) = kv.iter().rposition(|(k, _)| k == key) {
                kv.remove(i);
                return true;
            }
        }
        false
    }

    /// Remove a whole group (`g_key_file_remove_group`).
    pub fn remove_group(&mut self, group: &str) -> bool {
        let before = self.groups.len();
        self.groups.retain(|(g, _)| g != group);
        self.groups.len() != before
    }

    /// The text as `g_key_file_to_data` writes it.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for (i, (g, kv)) in self.groups.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push('[');
            out.push_str(g);
            out.push_str("]\n");
            for (k, v) in kv {
                out.push_str(k);
                out.push('=');
                out.push_str(v);
                out.push('\n');
            }
        }
        out
    }
}

/// `g_key_file_parse_string_as_value`: blanks escaped while they lead the
/// value, line breaks and backslashes always, and for a list item its
/// separator. As in GLib, a leading `\x0b` or `\x0c` has no escape and is
/// lost on reading.
fn escape(s: &str, list: bool) -> String {
    let mut out = String::with_capacity(s.len());
    let mut leading = true;
    for c in s.chars() {
        match c {
            ' ' if leading => out.push_str("\\s"),
            '\t' if leading => out.push_str("\\t"),
            ' ' | '\t' => out.push(c),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\\' => {
                out.push_str("\\\\");
                leading = false;
            }
            ';' if list => {
                out.push_str("\\;");
                leading = false;
            }
            _ => {
                out.push(c);
                leading = false;
            }
        }
    }
    out
}

/// `g_key_file_parse_value_as_string`, split on `sep` (unescaped) when it
/// is a list. A value that is not a list gives one item.
fn unescape(v: &str, sep: Option<char>) -> Result<Vec<String>, KeyFileError> {
    let bad = |message: String| KeyFileError {
        line: None,
        message,
    };
    let mut items = Vec::new();
    let mut cur = String::new();
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('s') => cur.push(' '),
                Some('n') => cur.push('\n'),
                Some('t') => cur.push('\t'),
                Some('r') => cur.push('\r'),
                Some('\\') => cur.push('\\'),
                Some(c) if Some(c) == sep => cur.push(c),
                Some(c) => {
                    return Err(bad(format!(
                        "Key file contains invalid escape sequence “\\{c}”"
                    )))
                }
                None => {
                    return Err(bad(
                        "Key file contains escape character at end of line".into()
                    ))
                }
            }
        } else if Some(c) == sep {
            items.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    if sep.is_none() || !cur.is_empty() {
        items.push(cur);
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_like_glib() {
        let mut k = KeyFile::parse("[origin]\nrefspec=fakeos/main\n").unwrap();
        k.set("libostree-transient", "pinned", "true");
        assert_eq!(
            k.to_text(),
            "[origin]\nrefspec=fakeos/main\n\n[libostree-transient]\npinned=true\n"
        );
        k.remove("libostree-transient", "pinned");
        // The empty group stays, separated like any other.
        assert_eq!(
            k.to_text(),
            "[origin]\nrefspec=fakeos/main\n\n[libostree-transient]\n"
        );
        assert_eq!(KeyFile::parse(&k.to_text()).unwrap(), k);
        assert!(k.remove_group("libostree-transient"));
        assert_eq!(k.to_text(), "[origin]\nrefspec=fakeos/main\n");
    }

    #[test]
    fn what_ostree_init_and_remote_add_write() {
        let mut c = KeyFile::new();
        c.set("core", "repo_version", "1");
        c.set("core", "mode", "bare");
        assert_eq!(c.to_text(), "[core]\nrepo_version=1\nmode=bare\n");
        c.set("remote \"origin\"", "url", "http://example.com/repo");
        c.set("remote \"origin\"", "gpg-verify", "false");
        assert_eq!(
            c.to_text(),
            "[core]\nrepo_version=1\nmode=bare\n\n[remote \"origin\"]\nurl=http://example.com/repo\ngpg-verify=false\n"
        );
        assert_eq!(
            c.groups().collect::<Vec<_>>(),
            ["core", "remote \"origin\""]
        );
    }

    #[test]
    fn comments_blanks_and_whitespace() {
        // As `ostree config` rewrites such a file: comments and blank lines
        // gone, a key's trailing blanks and a value's leading ones dropped,
        // a value's trailing blanks kept, `;` not a comment, CRLF read.
        let k = KeyFile::parse(
            "# top\n\n  [core]  \n  # indented comment\nk  =  v  \n;x=y\nw=a # b\r\n\n\n[x]\ny=1",
        )
        .unwrap();
        assert_eq!(k.get("core", "k"), Some("v  "));
        assert_eq!(k.get("core", ";x"), Some("y"));
        assert_eq!(k.get("core", "w"), Some("a # b"));
        assert_eq!(k.to_text(), "[core]\nk=v  \n;x=y\nw=a # b\n\n[x]\ny=1\n");
    }

    #[test]
    fn duplicate_keys_and_groups() {
        // What `ostree config get/set/unset` does with them.
        let mut k = KeyFile::parse("[core]\nk=first\nk=second\n[x]\ny=1\n[core]\nz=3\n").unwrap();
        assert_eq!(k.get("core", "k"), Some("second"));
        assert_eq!(k.get("core", "z"), Some("3"));
        assert_eq!(k.to_text(), "[core]\nk=first\nk=second\nz=3\n\n[x]\ny=1\n");
        k.set("core", "k", "new");
        assert_eq!(k.to_text(), "[core]\nk=first\nk=new\nz=3\n\n[x]\ny=1\n");
        assert!(k.remove("core", "k"));
        assert_eq!(k.get("core", "k"), Some("first"));
        assert!(k.remove("core", "k"));
        assert!(!k.remove("core", "k"));
        assert_eq!(k.get("core", "k"), None);
    }

    #[test]
    fn ordering_kept() {
        let mut k = KeyFile::parse("[b]\nz=1\na=2\n\n[a]\nm=3\n").unwrap();
        k.set("b", "c", "4");
        k.set("0", "k", "5");
        assert_eq!(k.groups().collect::<Vec<_>>(), ["b", "a", "0"]);
        assert_eq!(
            k.entries("b").collect::<Vec<_>>(),
            [("z", "1"), ("a", "2"), ("c", "4")]
        );
        assert_eq!(k.to_text(), "[b]\nz=1\na=2\nc=4\n\n[a]\nm=3\n\n[0]\nk=5\n");
    }

    #[test]
    fn escapes_like_set_string() {
        // Byte for byte what `ostree config set core.x` wrote for this value.
        let mut k = KeyFile::new();
        let v = "  lead\ttab\nnl\\ x ;y";
        k.set_string("core", "x", v);
        assert_eq!(k.get("core", "x"), Some("\\s\\slead\ttab\\nnl\\\\ x ;y"));
        assert_eq!(k.get_string("core", "x").unwrap().unwrap(), v);
        k.set_string("core", "t", "\t\r");
        assert_eq!(k.get("core", "t"), Some("\\t\\r"));
        let back = KeyFile::parse(&k.to_text()).unwrap();
        assert_eq!(back.get_string("core", "x").unwrap().unwrap(), v);
        assert_eq!(back.get_string("core", "t").unwrap().unwrap(), "\t\r");
        for bad in ["a\\", "a\\q", "\\;"] {
            k.set("core", "bad", bad);
            assert!(k.get_string("core", "bad").unwrap().is_err(), "{bad}");
        }
        assert!(k.get_string("core", "missing").is_none());
    }

    #[test]
    fn lists() {
        let k =
            KeyFile::parse("[r]\nbranches=main;b/c;\nno-end=a;b\nesc=x\\;y;z;\nnone=\n").unwrap();
        let list = |key| k.get_string_list("r", key).unwrap().unwrap();
        assert_eq!(list("branches"), ["main", "b/c"]);
        assert_eq!(list("no-end"), ["a", "b"]);
        assert_eq!(list("esc"), ["x;y", "z"]);
        assert!(list("none").is_empty());
        let mut k = KeyFile::new();
        k.set_string_list("r", "l", &["a;b", " c", "d"]);
        assert_eq!(k.get("r", "l"), Some("a\\;b;\\sc;d;"));
        assert_eq!(
            k.get_string_list("r", "l").unwrap().unwrap(),
            ["a;b", " c", "d"]
        );
    }

    #[test]
    fn not_keyfiles() {
        for (text, line) in [
            ("x=y\n", 1),
            ("[a]\nnot a pair\n", 2),
            ("[a]\n=v\n", 2),
            ("[a]\n[]\n", 2),
            ("[a]b]\n", 1),
            ("[a]\nk]=v\n", 2),
            ("[a\n", 1),
        ] {
            let e = KeyFile::parse(text).unwrap_err();
            assert_eq!(e.line, Some(line), "{text:?}: {e}");
        }
        // Locale keys, spaces inside keys and groups are GLib's too.
        let k = KeyFile::parse("[a b]\nName[de]=x\nk k=v\n").unwrap();
        assert_eq!(k.get("a b", "Name[de]"), Some("x"));
        assert_eq!(k.get("a b", "k k"), Some("v"));
    }
}

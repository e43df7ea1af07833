//! Boot Loader Specification entries (`loader.N/entries/*.conf`): ordered
//! `key value` lines. ostree writes `title`, `version`, `options`, `linux`,
//! `initrd` (and `devicetree`); the `version` orders the entries, highest
//! first, and that order is the deployment list.

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlsEntry {
    fields: Vec<(String, String)>,
}

impl BlsEntry {
    pub fn new() -> Self {
        BlsEntry::default()
    }

    pub fn parse(text: &str) -> BlsEntry {
        let mut e = BlsEntry::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (k, v) = match line.split_once(char::is_whitespace) {
                Some((k, v)) => (k, v.trim()),
                None => (line, ""),
            };
            e.fields.push((k.to_string(), v.to_string()));
        }
        e
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn set(&mut self, key: &str, value: &str) {
        match self.fields.iter_mut().find(|(k, _)| k == key) {
            Some(e) => e.1 = value.to_string(),
            None => self.fields.push((key.to_string(), value.to_string())),
        }
    }

    pub fn to_text(&self) -> String {
        self.fields
            .iter()
            .map(|(k, v)| format!("{k} {v}\n"))
            .collect()
    }

    /// The `ostree=` kernel argument: `/ostree/boot.N/OS/BOOTCSUM/SERIAL`.
    pub fn ostree_arg(&self) -> Option<&str> {
        self.get("options")?
            .split_whitespace()
            .find_map(|a| a.strip_prefix("ostree="))
    }
}

/// Compare two BLS `version` values the way ostree sorts entries: numeric
/// runs numerically, the rest bytewise (an rpmvercmp-like order).
pub fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        let skip = |s: &[u8]| {
            s.iter()
                .position(|c| c.is_ascii_alphanumeric())
                .unwrap_or(s.len())
        };
        a = &a[skip(a)..];
        b = &b[skip(b)..];
        if a.is_empty() || b.is_empty() {
            return match (a.is_empty(), b.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Less,
                _ => Ordering::Greater,
            };
        }
        let numeric = a[0].is_ascii_digit();
        let run = |s: &[u8]| {
            s.iter()
                .position(|c| {
                    if numeric {
                        !c.is_ascii_digit()
                    } else {
                        !c.is_ascii_alphabetic()
                    }
                })
                .unwrap_or(s.len())
        };
        let (ra, rb) = (run(a), run(b));
        let (sa, sb) = (&a[..ra], &b[..rb]);
        if rb == 0 {
            // Different kinds of run: numbers sort after letters.
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let ord = if numeric {
            let ta = trim_zeros(sa);
            let tb = trim_zeros(sb);
            ta.len().cmp(&tb.len()).then_with(|| ta.cmp(tb))
        } else {
            sa.cmp(sb)
        };
        if ord != Ordering::Equal {
            return ord;
        }
        a = &a[ra..];
        b = &b[rb..];
    }
}

fn trim_zeros(s: &[u8]) -> &[u8] {
    let i = s.iter().position(|c| *c != b'0').unwrap_or(s.len());
    &s[i..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering::*;
    #[test]
    fn parse_and_versions() {
        let e = BlsEntry::parse(
            "title A B (ostree:0)\nversion 2\noptions quiet ostree=/ostree/boot.1/os/abc/0\n",
        );
        assert_eq!(e.get("title"), Some("A B (ostree:0)"));
        assert_eq!(e.ostree_arg(), Some("/ostree/boot.1/os/abc/0"));
        assert_eq!(compare_versions("10", "9"), Greater);
        assert_eq!(compare_versions("2", "2"), Equal);
        assert_eq!(compare_versions("1", "2"), Less);
        assert_eq!(compare_versions("1.1", "1"), Greater);
    }
}

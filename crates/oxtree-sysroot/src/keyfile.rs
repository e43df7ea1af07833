//! A GKeyFile-style `[group]` / `key=value` file that keeps group and key
//! order, as used by origin files. Serialized the way GLib writes it:
//! groups separated by one blank line.

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyFile {
    groups: Vec<(String, Vec<(String, String)>)>,
}

impl KeyFile {
    pub fn new() -> Self {
        KeyFile::default()
    }

    /// Parse; comments and blank lines are dropped. Returns a message on a
    /// line that is neither a group header nor `key=value`.
    pub fn parse(text: &str) -> Result<KeyFile, String> {
        let mut kf = KeyFile::new();
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(g) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                kf.group_mut(g);
            } else if let Some((k, v)) = line.split_once('=') {
                let Some(last) = kf.groups.last_mut() else {
                    return Err(format!("line {}: key outside a group", n + 1));
                };
                let k = k.trim().to_string();
                let v = v.trim_start().to_string();
                match last.1.iter_mut().find(|(kk, _)| *kk == k) {
                    Some(e) => e.1 = v,
                    None => last.1.push((k, v)),
                }
            } else {
                return Err(format!("line {}: not `key=value`: {raw}", n + 1));
            }
        }
        Ok(kf)
    }

    fn group_mut(&mut self, g: &str) -> &mut Vec<(String, String)> {
        let i = match self.groups.iter().position(|(n, _)| n == g) {
            Some(i) => i,
            None => {
                self.groups.push((g.to_string(), Vec::new()));
                self.groups.len() - 1
            }
        };
        &mut self.groups[i].1
    }

    pub fn get(&self, group: &str, key: &str) -> Option<&str> {
        self.groups
            .iter()
            .find(|(g, _)| g == group)?
            .1
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn set(&mut self, group: &str, key: &str, value: &str) {
        let g = self.group_mut(group);
        match g.iter_mut().find(|(k, _)| k == key) {
            Some(e) => e.1 = value.to_string(),
            None => g.push((key.to_string(), value.to_string())),
        }
    }

    /// Remove a key; the (possibly empty) group stays, as GLib leaves it.
    pub fn remove(&mut self, group: &str, key: &str) -> bool {
        if let Some((_, g)) = self.groups.iter_mut().find(|(n, _)| n == group) {
            let before = g.len();
            g.retain(|(k, _)| k != key);
            return g.len() != before;
        }
        false
    }

    /// Remove a whole group (rpm-ostree drops `[packages]` this way).
    pub fn remove_group(&mut self, group: &str) -> bool {
        let before = self.groups.len();
        self.groups.retain(|(g, _)| g != group);
        self.groups.len() != before
    }

    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for (i, (g, kv)) in self.groups.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push_str(&format!("[{g}]\n"));
            for (k, v) in kv {
                out.push_str(&format!("{k}={v}\n"));
            }
        }
        out
    }
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
        assert_eq!(
            k.to_text(),
            "[origin]\nrefspec=fakeos/main\n\n[libostree-transient]\n"
        );
        assert!(KeyFile::parse("x=y").is_err());
    }
}

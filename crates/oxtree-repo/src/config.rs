//! RepoConfig: the repository's `config` keyfile (GLib keyfile syntax:
//! `[core]`, `[remote "name"]`), read and written in place.

use crate::error::{RepoError, Result};
use crate::keyfile::KeyFile;

#[derive(Clone, Debug)]
pub struct RepoConfig {
    kf: KeyFile,
}

impl RepoConfig {
    pub fn parse(text: &str) -> Result<Self> {
        let kf = KeyFile::parse(text).map_err(|e| RepoError::Config(e.to_string()))?;
        Ok(RepoConfig { kf })
    }

    pub fn new() -> Self {
        RepoConfig { kf: KeyFile::new() }
    }

    /// The keyfile underneath, for what the accessors here do not cover.
    pub fn keyfile(&self) -> &KeyFile {
        &self.kf
    }

    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.kf.get(section, key)
    }

    pub fn get_bool(&self, section: &str, key: &str, default: bool) -> Result<bool> {
        match self.get(section, key) {
            None => Ok(default),
            Some("true") | Some("1") | Some("yes") => Ok(true),
            Some("false") | Some("0") | Some("no") => Ok(false),
            Some(v) => Err(RepoError::Config(format!(
                "{section}.{key}: '{v}' is not a boolean"
            ))),
        }
    }

    pub fn set(&mut self, section: &str, key: &str, value: &str) {
        self.kf.set(section, key, value);
    }

    pub fn remove_key(&mut self, section: &str, key: &str) -> bool {
        self.kf.remove(section, key)
    }

    /// Remove a whole `[section]` (a deleted remote's).
    pub fn remove_section(&mut self, section: &str) -> bool {
        self.kf.remove_group(section)
    }

    pub fn sections(&self) -> impl Iterator<Item = &str> {
        self.kf.groups()
    }

    /// The text to write, checked to read back to exactly these values.
    /// Some keys and values (a key with `=` or `]`, a value with a newline
    /// or leading blanks) have no faithful keyfile form as raw values;
    /// writing them would leave a config that no longer parses or says
    /// something else, so they are refused instead.
    pub fn to_checked_text(&self) -> Result<String> {
        let text = self.to_text();
        let back = KeyFile::parse(&text).map_err(|e| {
            RepoError::Config(format!(
                "refusing to write a config that would not read back: {e}"
            ))
        })?;
        if back != self.kf {
            for section in self.kf.groups() {
                for (k, v) in self.kf.entries(section) {
                    if !back.entries(section).any(|e| e == (k, v)) {
                        return Err(RepoError::Config(format!(
                            "refusing to write key {k:?} = {v:?}: it has no faithful keyfile form"
                        )));
                    }
                }
            }
            return Err(RepoError::Config(
                "refusing to write a config that would not read back the same".into(),
            ));
        }
        Ok(text)
    }

    pub fn to_text(&self) -> String {
        self.kf.to_text()
    }
}

impl Default for RepoConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// Split `section.key` the way `ostree config` does: the key is the text
/// after the last dot (`remote "a.b".url` → (`remote "a.b"`, `url`)).
pub fn split_key(dotted: &str) -> Result<(&str, &str)> {
    dotted
        .rsplit_once('.')
        .filter(|(s, k)| !s.is_empty() && !k.is_empty())
        .ok_or_else(|| RepoError::Config(format!("key '{dotted}' must be SECTION.KEY")))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn parses_ostree_config() {
        let c = RepoConfig::parse(
            "[core]\nrepo_version=1\nmode=archive-z2\n\n[remote \"origin\"]\nurl=http://x/\ngpg-verify=false\n",
        )
        .unwrap();
        assert_eq!(c.get("core", "mode"), Some("archive-z2"));
        assert_eq!(c.get("remote \"origin\"", "url"), Some("http://x/"));
        assert!(!c.get_bool("remote \"origin\"", "gpg-verify", true).unwrap());
        let again = RepoConfig::parse(&c.to_checked_text().unwrap()).unwrap();
        // Raw keys and values with no faithful keyfile form are refused.
        for (k, v) in [
            ("key]", "v"),
            ("k", "a\nb"),
            ("k", " a"),
            ("a=b", "v"),
            ("k", "v\r"),
        ] {
            let mut odd = c.clone();
            odd.set("core", k, v);
            assert!(odd.to_checked_text().is_err(), "{k:?} = {v:?}");
        }
        assert_eq!(again.get("core", "repo_version"), Some("1"));
        assert_eq!(
            split_key("remote \"a.b\".url").unwrap(),
            ("remote \"a.b\"", "url")
        );
    }
}

//! RepoConfig: the repository's `config` keyfile (GLib keyfile syntax:
//! `[core]`, `[remote "name"]`), read and written in place.

use crate::error::{RepoError, Result};
use ini::{EscapePolicy, Ini, LineSeparator, ParseOption, WriteOption};

#[derive(Clone, Debug)]
pub struct RepoConfig {
    ini: Ini,
}

impl RepoConfig {
    pub fn parse(text: &str) -> Result<Self> {
        let opt = ParseOption {
            enabled_quote: false,
            enabled_escape: false,
            ..Default::default()
        };
        let ini =
            Ini::load_from_str_opt(text, opt).map_err(|e| RepoError::Config(e.to_string()))?;
        Ok(RepoConfig { ini })
    }

    pub fn new() -> Self {
        RepoConfig { ini: Ini::new() }
    }

    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.ini.get_from(Some(section), key)
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
        self.ini.with_section(Some(section)).set(key, value);
    }

    pub fn remove_key(&mut self, section: &str, key: &str) -> bool {
        self.ini.delete_from(Some(section), key).is_some()
    }

    pub fn sections(&self) -> impl Iterator<Item = &str> {
        self.ini.sections().flatten()
    }

    /// The text to write, checked to read back to exactly these values.
    /// Some keys and values (a key ending in `\\`, a value with a newline)
    /// have no faithful keyfile form; writing them would leave a config that
    /// no longer parses, so they are refused instead.
    pub fn to_checked_text(&self) -> Result<String> {
        let text = self.to_text();
        let back = RepoConfig::parse(&text).map_err(|e| {
            RepoError::Config(format!(
                "refusing to write a config that would not read back: {e}"
            ))
        })?;
        for (section, props) in self.ini.iter() {
            for (k, v) in props.iter() {
                if back.ini.get_from(section, k) != Some(v) {
                    return Err(RepoError::Config(format!(
                        "refusing to write key {k:?} = {v:?}: it has no faithful keyfile form"
                    )));
                }
            }
        }
        Ok(text)
    }

    pub fn to_text(&self) -> String {
        let mut out = Vec::new();
        let opt = WriteOption {
            escape_policy: EscapePolicy::Nothing,
            line_separator: LineSeparator::CR,
            kv_separator: "=",
        };
        self.ini
            .write_to_opt(&mut out, opt)
            .expect("writing to a Vec");
        String::from_utf8(out).expect("config is UTF-8")
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
        let mut odd = c.clone();
        odd.set("core", "key\\", "v");
        assert!(odd.to_checked_text().is_err());
        let mut nl = c.clone();
        nl.set("core", "k", "a\nb");
        assert!(nl.to_checked_text().is_err());
        assert_eq!(again.get("core", "repo_version"), Some("1"));
        assert_eq!(
            split_key("remote \"a.b\".url").unwrap(),
            ("remote \"a.b\"", "url")
        );
    }
}

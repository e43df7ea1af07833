//! The treefile: a TOML description of an OS commit.
//!
//! ```toml
//! ref = "debian/bookworm/x86_64/base"   # branch to commit to (required)
//! suite = "bookworm"                    # Debian suite (required)
//! mirror = "http://mirror/debian"       # optional; string or list; default: the host's apt sources
//! packages = ["systemd", "linux-image-amd64"]
//! exclude = ["foo"]                     # never installed (apt pin at priority -1)
//! add-files = [["motd", "/etc/motd"]]   # source (relative to the treefile) -> destination
//! postprocess = "echo hi > /etc/issue"  # shell script run in the sandbox over the root
//! version = "1.0"
//! kernel-args = ["quiet"]
//! ```
//!
//! Unknown keys are errors, so a typo never silently changes an image.

use crate::error::{ComposeError, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Treefile {
    #[serde(rename = "ref")]
    pub ref_: String,
    pub suite: String,
    #[serde(default)]
    pub mirror: Option<OneOrMany>,
    #[serde(default)]
    pub packages: Vec<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
    /// (source relative to the treefile, absolute destination in the root).
    #[serde(default)]
    pub add_files: Vec<(String, String)>,
    #[serde(default)]
    pub postprocess: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub kernel_args: Vec<String>,
    /// The directory `add-files` sources are relative to (not a key).
    #[serde(skip)]
    pub base_dir: PathBuf,
}

impl Treefile {
    /// Read, parse and validate a treefile.
    pub fn load(path: &Path) -> Result<Treefile> {
        let err = |message: String| ComposeError::Treefile {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let mut tf = Treefile::parse(&text).map_err(err)?;
        tf.base_dir = path
            .parent()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p
                }
            })
            .unwrap_or(Path::new("."))
            .to_path_buf();
        for (src, _) in &tf.add_files {
            let p = tf.base_dir.join(src);
            if !p.exists() {
                return Err(err(format!(
                    "add-files source {src} does not exist ({})",
                    p.display()
                )));
            }
        }
        Ok(tf)
    }

    /// Parse and validate treefile text (sources of add-files unchecked).
    pub fn parse(text: &str) -> std::result::Result<Treefile, String> {
        let tf: Treefile = toml::from_str(text).map_err(|e| e.to_string().trim().to_string())?;
        tf.validate()?;
        Ok(tf)
    }

    fn validate(&self) -> std::result::Result<(), String> {
        oxtree_repo::refs::validate_ref_name(&self.ref_)
            .map_err(|e| format!("ref {:?}: {e}", self.ref_))?;
        if self.suite.is_empty()
            || !self
                .suite
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
        {
            return Err(format!("suite {:?} is not a Debian suite name", self.suite));
        }
        for (what, list) in [("packages", &self.packages), ("exclude", &self.exclude)] {
            for p in list.iter() {
                if !valid_package_spec(p) {
                    return Err(format!("{what}: {p:?} is not a Debian package name"));
                }
            }
        }
        if let Some(m) = &self.mirror {
            for m in m.to_vec() {
                if m.is_empty() || m.contains('\n') {
                    return Err(format!("mirror {m:?} is not valid"));
                }
            }
        }
        for (src, dest) in &self.add_files {
            if src.is_empty() || Path::new(src).is_absolute() {
                return Err(format!(
                    "add-files source {src:?} must be a path relative to the treefile"
                ));
            }
            let rel = dest.strip_prefix('/').unwrap_or("");
            if rel.is_empty()
                || rel
                    .split('/')
                    .any(|c| c.is_empty() || c == "." || c == "..")
            {
                return Err(format!(
                    "add-files destination {dest:?} must be an absolute path without . or .."
                ));
            }
        }
        if let Some(v) = &self.version {
            if v.is_empty() || v.contains(char::is_control) {
                return Err(format!("version {v:?} is not valid"));
            }
        }
        for k in &self.kernel_args {
            if k.is_empty() || k.contains(char::is_whitespace) {
                return Err(format!(
                    "kernel-args: {k:?} must be one argument without whitespace"
                ));
            }
        }
        Ok(())
    }

    /// Whether a kernel is among the packages (an initramfs is built then).
    pub fn wants_kernel(&self) -> bool {
        self.packages.iter().any(|p| p.starts_with("linux-image-"))
    }
}

/// A package name, optionally with `:arch` or `=version`.
fn valid_package_spec(s: &str) -> bool {
    let name = s.split(['=', ':']).next().unwrap_or("");
    let name_ok = name.len() >= 2
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b));
    name_ok
        && s[name.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.~:=_".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_treefile() {
        let tf = Treefile::parse(
            r#"
            ref = "debian/test"
            suite = "bookworm"
            mirror = ["http://m/debian", "deb http://m/debian bookworm main"]
            packages = ["systemd", "linux-image-amd64", "libc6:amd64", "less=590-2"]
            exclude = ["foo"]
            add-files = [["motd", "/etc/motd"]]
            postprocess = "true"
            version = "1.0"
            kernel-args = ["quiet", "console=ttyS0"]
            "#,
        )
        .unwrap();
        assert_eq!(tf.ref_, "debian/test");
        assert!(tf.wants_kernel());
        assert_eq!(tf.add_files, vec![("motd".into(), "/etc/motd".into())]);
        assert_eq!(tf.mirror.unwrap().to_vec().len(), 2);
    }

    #[test]
    fn errors_are_clear() {
        let e = Treefile::parse("ref = \"a\"\nsuite = \"bookworm\"\npackgaes = []\n").unwrap_err();
        assert!(e.contains("unknown field `packgaes`"), "{e}");
        let e = Treefile::parse("suite = \"bookworm\"\n").unwrap_err();
        assert!(e.contains("missing field `ref`"), "{e}");
        let e = Treefile::parse("ref = \"a b\"\nsuite = \"bookworm\"\n").unwrap_err();
        assert!(e.contains("ref"), "{e}");
        let e = Treefile::parse("ref = \"a\"\nsuite = \"bookworm\"\npackages = [\"Bad Name\"]\n")
            .unwrap_err();
        assert!(e.contains("not a Debian package name"), "{e}");
        let e = Treefile::parse(
            "ref = \"a\"\nsuite = \"bookworm\"\nadd-files = [[\"x\", \"/etc/../x\"]]\n",
        )
        .unwrap_err();
        assert!(e.contains("destination"), "{e}");
        let e = Treefile::parse("ref = \"a\"\nsuite = \"bookworm\"\nkernel-args = [\"a b\"]\n")
            .unwrap_err();
        assert!(e.contains("kernel-args"), "{e}");
    }
}

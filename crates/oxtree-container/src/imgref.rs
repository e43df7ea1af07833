//! Image references: where an image is written (`oci:DIR[:TAG]`,
//! `oci-archive:FILE[:TAG]`, `docker://HOST[:PORT]/NAME[:TAG]`).

use crate::error::{ContainerError, Result};
use std::fmt;
use std::path::PathBuf;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageRef {
    /// An OCI image layout directory.
    OciDir { path: PathBuf, tag: Option<String> },
    /// An OCI image layout in a tar file.
    OciArchive { path: PathBuf, tag: Option<String> },
    /// A registry: `HOST[:PORT]/NAME[:TAG|@DIGEST]`.
    Registry { reference: String },
}

fn bad(s: &str, reason: &str) -> ContainerError {
    ContainerError::ImageRef {
        reference: s.to_string(),
        reason: reason.to_string(),
    }
}

/// `PATH[:TAG]` as ostree-ext splits it (at the first `:`).
fn path_and_tag(s: &str, rest: &str) -> Result<(PathBuf, Option<String>)> {
    let (p, tag) = match rest.split_once(':') {
        Some((p, t)) => (p, Some(t.to_string())),
        None => (rest, None),
    };
    if p.is_empty() {
        return Err(bad(s, "empty path"));
    }
    if let Some(t) = &tag {
        if !valid_tag(t) {
            return Err(bad(s, "a tag is [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"));
        }
    }
    Ok((PathBuf::from(p), tag))
}

/// The OCI distribution spec's tag grammar.
pub fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

impl ImageRef {
    pub fn parse(s: &str) -> Result<ImageRef> {
        if let Some(rest) = s.strip_prefix("oci:") {
            let (path, tag) = path_and_tag(s, rest)?;
            Ok(ImageRef::OciDir { path, tag })
        } else if let Some(rest) = s.strip_prefix("oci-archive:") {
            let (path, tag) = path_and_tag(s, rest)?;
            Ok(ImageRef::OciArchive { path, tag })
        } else if let Some(rest) = s.strip_prefix("docker://") {
            let (repo, _) = rest
                .split_once('/')
                .ok_or_else(|| bad(s, "no image name"))?;
            if repo.is_empty() || rest.ends_with('/') || rest.contains("//") {
                return Err(bad(s, "expected docker://HOST[:PORT]/NAME[:TAG]"));
            }
            oci_client::Reference::try_from(rest).map_err(|e| bad(s, &e.to_string()))?;
            Ok(ImageRef::Registry {
                reference: rest.to_string(),
            })
        } else {
            Err(bad(
                s,
                "unknown transport (expected oci:, oci-archive: or docker://)",
            ))
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = |t: &Option<String>| t.as_ref().map(|t| format!(":{t}")).unwrap_or_default();
        match self {
            ImageRef::OciDir { path, tag: t } => write!(f, "oci:{}{}", path.display(), tag(t)),
            ImageRef::OciArchive { path, tag: t } => {
                write!(f, "oci-archive:{}{}", path.display(), tag(t))
            }
            ImageRef::Registry { reference } => write!(f, "docker://{reference}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_transports() {
        assert_eq!(
            ImageRef::parse("oci:/x/y:v1").unwrap(),
            ImageRef::OciDir {
                path: "/x/y".into(),
                tag: Some("v1".into())
            }
        );
        assert_eq!(
            ImageRef::parse("oci-archive:a.tar").unwrap(),
            ImageRef::OciArchive {
                path: "a.tar".into(),
                tag: None
            }
        );
        let r = ImageRef::parse("docker://127.0.0.1:5000/oxtree/host:v1").unwrap();
        assert_eq!(r.to_string(), "docker://127.0.0.1:5000/oxtree/host:v1");
        for bad in [
            "",
            "oci:",
            "oci:/x:bad/tag",
            "docker://",
            "docker://h/",
            "foo:bar",
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad}");
        }
    }
}

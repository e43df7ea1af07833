//! One origin type for plain, layered and container image deployments.
//!
//! - plain: `[origin] refspec=REMOTE:REF` (ostree), optionally
//!   `override-commit=CHECKSUM`;
//! - layered: `[origin] baserefspec=…`, `[packages] requested=a;b;`,
//!   `[overrides] remove=c;` (rpm-ostree's keys);
//! - container image: `[origin] container-image-reference=IMGREF` (what
//!   bootc and rpm-ostree write, e.g.
//!   `ostree-unverified-registry:HOST/NAME:TAG`), plus oxtree's record of
//!   the manifest deployed, `[oxtree] image-digest=sha256:…`.
//!
//! Whatever else the origin file holds is kept; transient state (`pinned`,
//! `unlocked`) is dropped when it becomes a new deployment's origin.

use oxtree_compose::layer::LayerSpec;
use oxtree_sysroot::upgrade::split_refspec;
use oxtree_sysroot::KeyFile;
use std::collections::BTreeSet;

const IMAGE_KEY: &str = "container-image-reference";
const DIGEST_GROUP: &str = "oxtree";
const DIGEST_KEY: &str = "image-digest";

/// The prefixes of ostree-ext's image references (signed or not): an
/// argument starting with one names an image, not a refspec.
const IMAGE_PREFIXES: &[&str] = &[
    "ostree-unverified-registry:",
    "ostree-unverified-image:",
    "ostree-image-signed:",
    "ostree-remote-image:",
    "ostree-remote-registry:",
];

/// Does `s` name a container image (`ostree-unverified-registry:…`,
/// `ostree-remote-image:…`, …) rather than a refspec?
pub fn is_image_reference(s: &str) -> bool {
    IMAGE_PREFIXES.iter().any(|p| s.starts_with(p))
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    /// The refspec followed (the base refspec of a layered deployment):
    /// `REMOTE:REF` or a local `REF`. Empty for a container image origin.
    pub refspec: String,
    /// The container image followed instead of a refspec (ostree-ext's
    /// image reference, as written: `ostree-unverified-registry:…`).
    pub container_image: Option<String>,
    /// The manifest digest of the image this deployment was made from.
    pub image_digest: Option<String>,
    /// `[origin] override-commit`: deploy this commit instead of the
    /// refspec's latest.
    pub override_commit: Option<String>,
    /// Packages layered on the base.
    pub packages: BTreeSet<String>,
    /// Base packages removed.
    pub removals: BTreeSet<String>,
    /// The origin file this came from (other keys are kept).
    file: KeyFile,
}

impl Origin {
    /// A plain origin following `refspec`.
    pub fn new(refspec: impl Into<String>) -> Origin {
        Origin {
            refspec: refspec.into(),
            ..Origin::default()
        }
    }

    /// Read an origin file; `None` when it names no refspec (e.g. an
    /// `--origin-file` of another kind, or no origin at all).
    pub fn from_keyfile(o: &KeyFile) -> Option<Origin> {
        if let Some(img) = o.get("origin", IMAGE_KEY) {
            let (packages, removals) = LayerSpec::requests_in(o);
            return Some(Origin {
                refspec: String::new(),
                container_image: Some(img.to_string()),
                image_digest: o.get(DIGEST_GROUP, DIGEST_KEY).map(str::to_string),
                override_commit: None,
                packages,
                removals,
                file: o.clone(),
            });
        }
        let spec = LayerSpec::from_origin(o)?;
        Some(Origin {
            refspec: spec.base_refspec,
            override_commit: o.get("origin", "override-commit").map(str::to_string),
            container_image: None,
            image_digest: None,
            packages: spec.packages,
            removals: spec.removals,
            file: o.clone(),
        })
    }

    /// The origin file of a new deployment of this origin.
    pub fn to_keyfile(&self) -> KeyFile {
        let mut file = self.file.clone();
        file.remove("origin", IMAGE_KEY);
        file.remove_group(DIGEST_GROUP);
        let Some(img) = &self.container_image else {
            let mut o = self.layer_spec().to_origin(Some(&file));
            if let Some(c) = &self.override_commit {
                o.set("origin", "override-commit", c);
            }
            return o;
        };
        // The layer spec's keys, then the image in place of the refspec.
        let mut o = self.layer_spec().to_origin(Some(&file));
        for k in ["refspec", "baserefspec", "override-commit"] {
            o.remove("origin", k);
        }
        o.set("origin", IMAGE_KEY, img);
        if let Some(d) = &self.image_digest {
            o.set(DIGEST_GROUP, DIGEST_KEY, d);
        }
        o
    }

    /// Follow a container image (`container_image`) rather than a refspec?
    pub fn is_image(&self) -> bool {
        self.container_image.is_some()
    }

    /// Anything layered (packages or removals)?
    pub fn is_layered(&self) -> bool {
        !self.packages.is_empty() || !self.removals.is_empty()
    }

    /// The remote of the refspec (None: a local ref).
    pub fn remote(&self) -> Option<&str> {
        split_refspec(&self.refspec).0
    }

    /// The branch of the refspec.
    pub fn branch(&self) -> &str {
        split_refspec(&self.refspec).1
    }

    /// The rev to resolve in the sysroot repo for the target: the
    /// override commit, else the refspec.
    pub fn target_rev(&self) -> &str {
        self.override_commit.as_deref().unwrap_or(&self.refspec)
    }

    /// As `oxtree_compose::layer` wants it.
    pub fn layer_spec(&self) -> LayerSpec {
        LayerSpec {
            base_refspec: self.refspec.clone(),
            packages: self.packages.clone(),
            removals: self.removals.clone(),
        }
    }

    /// Follow `to` from now on: `REMOTE:REF`, or a bare `REF` that keeps
    /// the current remote (as ostree and rpm-ostree do). Drops an
    /// override commit.
    /// `REMOTE:` keeps the branch and changes the remote. A deployment
    /// that follows something else is configured: its origin's
    /// `unconfigured-state` is dropped.
    /// An image reference (see [`is_image_reference`]) makes it follow
    /// that image; a refspec from an image origin follows it as given.
    pub fn rebased(&self, to: &str) -> Origin {
        let mut file = self.file.clone();
        file.remove("origin", "unconfigured-state");
        if is_image_reference(to) || self.is_image() {
            let image = is_image_reference(to).then(|| to.to_string());
            return Origin {
                refspec: if image.is_some() {
                    String::new()
                } else {
                    to.to_string()
                },
                container_image: image,
                image_digest: None,
                override_commit: None,
                file,
                ..self.clone()
            };
        }
        let (remote, branch) = split_refspec(to);
        let branch = if branch.is_empty() {
            self.branch()
        } else {
            branch
        };
        let refspec = match remote.or(self.remote()) {
            Some(r) => format!("{r}:{branch}"),
            None => branch.to_string(),
        };
        Origin {
            refspec,
            override_commit: None,
            file,
            ..self.clone()
        }
    }

    /// `[origin] unconfigured-state`: why this deployment cannot be
    /// upgraded until it is switched to a configured source.
    pub fn unconfigured_state(&self) -> Option<&str> {
        self.file.get("origin", "unconfigured-state")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(t: &str) -> Origin {
        Origin::from_keyfile(&KeyFile::parse(t).unwrap()).unwrap()
    }

    #[test]
    fn plain_round_trip() {
        let o = parse("[origin]\nrefspec=origin:debian/main\noverride-commit=abc\n\n[libostree-transient]\npinned=true\n");
        assert_eq!(o.refspec, "origin:debian/main");
        assert_eq!(o.remote(), Some("origin"));
        assert_eq!(o.branch(), "debian/main");
        assert_eq!(o.override_commit.as_deref(), Some("abc"));
        assert_eq!(o.target_rev(), "abc");
        assert!(!o.is_layered());
        let k = o.to_keyfile();
        assert!(k
            .to_text()
            .starts_with("[origin]\nrefspec=origin:debian/main\noverride-commit=abc\n"));
        // Transient state does not carry over to a new deployment.
        assert_eq!(k.get("libostree-transient", "pinned"), None);
        assert_eq!(Origin::from_keyfile(&k).unwrap().refspec, o.refspec);
    }

    #[test]
    fn layered_round_trip() {
        let o = parse(
            "[origin]\nbaserefspec=debian/main\n\n[packages]\nrequested=nano;vim;\n\n[overrides]\nremove=less;\n",
        );
        assert!(o.is_layered());
        assert_eq!(o.remote(), None);
        assert_eq!(o.packages.iter().collect::<Vec<_>>(), ["nano", "vim"]);
        let k = o.to_keyfile();
        assert_eq!(k.get("origin", "baserefspec"), Some("debian/main"));
        assert_eq!(k.get("origin", "refspec"), None);
        assert_eq!(Origin::from_keyfile(&k).unwrap().to_keyfile(), k);
        // Nothing layered any more: back to a plain refspec.
        let mut p = o.clone();
        p.packages.clear();
        p.removals.clear();
        let k = p.to_keyfile();
        assert_eq!(k.to_text(), "[origin]\nrefspec=debian/main\n");
    }

    #[test]
    fn rebase_keeps_remote_and_drops_override() {
        let mut o = Origin::new("origin:a");
        o.override_commit = Some("c".into());
        let r = o.rebased("b");
        assert_eq!(r.refspec, "origin:b");
        assert_eq!(r.override_commit, None);
        assert_eq!(o.rebased("other:b").refspec, "other:b");
        assert_eq!(Origin::new("a").rebased("b").refspec, "b");
        assert!(Origin::from_keyfile(&KeyFile::parse("[x]\ny=1\n").unwrap()).is_none());
    }

    #[test]
    fn image_origins() {
        let img = "ostree-unverified-registry:127.0.0.1:5000/os:latest";
        assert!(is_image_reference(img));
        assert!(is_image_reference("ostree-remote-image:r:docker://x/y"));
        assert!(!is_image_reference("origin:debian/main"));
        let o = parse(&format!(
            "[origin]\ncontainer-image-reference={img}\n\n[oxtree]\nimage-digest=sha256:ab\n"
        ));
        assert!(o.is_image());
        assert_eq!(o.container_image.as_deref(), Some(img));
        assert_eq!(o.image_digest.as_deref(), Some("sha256:ab"));
        assert_eq!(o.remote(), None);
        let k = o.to_keyfile();
        assert_eq!(k.get("origin", "container-image-reference"), Some(img));
        assert_eq!(k.get("origin", "refspec"), None);
        assert_eq!(Origin::from_keyfile(&k).unwrap(), o);
        // From a refspec to an image: the refspec goes.
        let p = Origin::new("origin:debian/main");
        let r = p.rebased(img);
        let k = r.to_keyfile();
        assert_eq!(
            k.to_text(),
            format!("[origin]\ncontainer-image-reference={img}\n")
        );
        // And back: the image and its digest go.
        let mut r = Origin::from_keyfile(&k).unwrap();
        r.image_digest = Some("sha256:cd".into());
        let back = r.rebased("origin:debian/main");
        assert!(!back.is_image());
        assert_eq!(
            back.to_keyfile().to_text(),
            "[origin]\nrefspec=origin:debian/main\n"
        );
    }
}

//! One origin type for plain and layered deployments.
//!
//! - plain: `[origin] refspec=REMOTE:REF` (ostree), optionally
//!   `override-commit=CHECKSUM`;
//! - layered: `[origin] baserefspec=…`, `[packages] requested=a;b;`,
//!   `[overrides] remove=c;` (rpm-ostree's keys).
//!
//! Whatever else the origin file holds is kept; transient state (`pinned`,
//! `unlocked`) is dropped when it becomes a new deployment's origin.

use oxtree_compose::layer::LayerSpec;
use oxtree_sysroot::upgrade::split_refspec;
use oxtree_sysroot::KeyFile;
use std::collections::BTreeSet;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    /// The refspec followed (the base refspec of a layered deployment):
    /// `REMOTE:REF` or a local `REF`.
    pub refspec: String,
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
        let spec = LayerSpec::from_origin(o)?;
        Some(Origin {
            refspec: spec.base_refspec,
            override_commit: o.get("origin", "override-commit").map(str::to_string),
            packages: spec.packages,
            removals: spec.removals,
            file: o.clone(),
        })
    }

    /// The origin file of a new deployment of this origin.
    pub fn to_keyfile(&self) -> KeyFile {
        let mut o = self.layer_spec().to_origin(Some(&self.file));
        if let Some(c) = &self.override_commit {
            o.set("origin", "override-commit", c);
        }
        o
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
    pub fn rebased(&self, to: &str) -> Origin {
        let (remote, branch) = split_refspec(to);
        let branch = if branch.is_empty() {
            self.branch()
        } else {
            branch
        };
        let mut file = self.file.clone();
        file.remove("origin", "unconfigured-state");
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
}

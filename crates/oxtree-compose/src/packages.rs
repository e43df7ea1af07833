//! The package list of a root: read from its dpkg database, stored in
//! commit metadata as `oxtree.packages` (`a(sss)`: name, version,
//! architecture, sorted by name), read back by `db list` and `db diff`.

use crate::error::{ComposeError, Result};
use crate::fsat;
use crate::layout::{DPKG_DATABASE, DPKG_VAR};
use oxtree_object::gvariant::{Value, Variant};
use oxtree_object::{Checksum, Metadata};
use oxtree_repo::Repo;
use rustix::fd::AsFd;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::path::Path;

/// The commit metadata key holding the package list.
pub const METADATA_KEY: &str = "oxtree.packages";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub architecture: String,
}

/// Packages that differ between two lists.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageDiff {
    pub added: Vec<Package>,
    pub removed: Vec<Package>,
    /// (old, new) pairs.
    pub upgraded: Vec<(Package, Package)>,
    pub downgraded: Vec<(Package, Package)>,
}

impl PackageDiff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.upgraded.is_empty()
            && self.downgraded.is_empty()
    }
}

/// Installed packages of a root, in either layout, sorted by name (then
/// architecture).
pub fn installed(root: &Path) -> Result<Vec<Package>> {
    let rfd = fsat::open_root(root)?;
    let r = rfd.as_fd();
    // The deployable layout first: there var/lib/dpkg is a symlink, which
    // is never followed.
    let status = match fsat::read(r, &format!("{DPKG_DATABASE}/status"))? {
        Some(s) => s,
        None => fsat::read(r, &format!("{DPKG_VAR}/status"))?.ok_or_else(|| {
            ComposeError::Dpkg(format!(
                "{}: no dpkg status file in {DPKG_DATABASE} or {DPKG_VAR}",
                root.display()
            ))
        })?,
    };
    parse_status(&String::from_utf8_lossy(&status))
}

/// Parse a dpkg `status` file; keeps packages whose state is `installed`.
pub fn parse_status(text: &str) -> Result<Vec<Package>> {
    let mut out = Vec::new();
    for para in deb822_fast::borrowed::iter_paragraphs_borrowed(text) {
        let para = para.map_err(|e| ComposeError::Dpkg(format!("status: {e}")))?;
        let get = |k: &str| para.get_single(k).map(str::trim);
        let Some(name) = get("Package") else {
            return Err(ComposeError::Dpkg(format!(
                "stanza without Package field: {:?}",
                para.iter().next().map(|f| f.name()).unwrap_or("")
            )));
        };
        if get("Status").and_then(|s| s.split_whitespace().nth(2)) != Some("installed") {
            continue;
        }
        out.push(Package {
            name: name.to_string(),
            version: get("Version")
                .ok_or_else(|| ComposeError::Dpkg(format!("{name}: no Version")))?
                .to_string(),
            architecture: get("Architecture").unwrap_or("").to_string(),
        });
    }
    out.sort_by(|a, b| {
        (a.name.as_str(), a.architecture.as_str()).cmp(&(b.name.as_str(), b.architecture.as_str()))
    });
    Ok(out)
}

/// The `a(sss)` value stored under [`METADATA_KEY`].
pub fn to_metadata_value(packages: &[Package]) -> Value {
    let v: Vec<(String, String, String)> = packages
        .iter()
        .map(|p| (p.name.clone(), p.version.clone(), p.architecture.clone()))
        .collect();
    v.to_value()
}

/// Set [`METADATA_KEY`] in commit metadata.
pub fn set_metadata(md: &mut Metadata, packages: &[Package]) {
    md.set(METADATA_KEY, to_metadata_value(packages));
}

/// The package list in commit metadata, if the key is present.
pub fn from_metadata(md: &Metadata) -> std::result::Result<Option<Vec<Package>>, String> {
    let Some(v) = md.get(METADATA_KEY) else {
        return Ok(None);
    };
    let list = Vec::<(String, String, String)>::from_value(v.clone()).ok_or_else(|| {
        format!(
            "{METADATA_KEY} is not a(sss): it is {}",
            oxtree_object::text::print(v)
        )
    })?;
    Ok(Some(
        list.into_iter()
            .map(|(name, version, architecture)| Package {
                name,
                version,
                architecture,
            })
            .collect(),
    ))
}

/// The package list of a commit (an error if it has none).
pub fn from_commit(repo: &Repo, checksum: &Checksum) -> Result<Vec<Package>> {
    let c = repo.load_commit(checksum)?;
    let err = |message: String| ComposeError::Metadata {
        commit: checksum.to_string(),
        message,
    };
    from_metadata(&c.metadata).map_err(err)?.ok_or_else(|| {
        err(format!(
            "no package list ({METADATA_KEY}); not a composed commit"
        ))
    })
}

/// Debian version ordering (epoch, upstream, revision; `~` sorts before
/// everything, even the end of the string), as `dpkg --compare-versions`.
/// Uses the `debversion` crate; a string it cannot parse sorts by the same
/// character rules applied to the whole string.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    match (
        a.parse::<debversion::Version>(),
        b.parse::<debversion::Version>(),
    ) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.cmp(b),
    }
}

/// Differences from `old` to `new`. Packages are matched by name and
/// architecture; a package whose only change is its architecture (e.g.
/// `all` to `amd64`) is matched by name.
pub fn diff(old: &[Package], new: &[Package]) -> PackageDiff {
    let key = |p: &Package| (p.name.clone(), p.architecture.clone());
    let mut o: BTreeMap<(String, String), &Package> = old.iter().map(|p| (key(p), p)).collect();
    let mut n: BTreeMap<(String, String), &Package> = new.iter().map(|p| (key(p), p)).collect();
    let mut d = PackageDiff::default();
    let pair = |a: &Package, b: &Package, d: &mut PackageDiff| match compare_versions(
        &a.version, &b.version,
    ) {
        Ordering::Less => d.upgraded.push((a.clone(), b.clone())),
        Ordering::Greater => d.downgraded.push((a.clone(), b.clone())),
        Ordering::Equal if a.architecture != b.architecture => {
            d.upgraded.push((a.clone(), b.clone()))
        }
        Ordering::Equal => {}
    };
    let common: Vec<_> = o.keys().filter(|k| n.contains_key(*k)).cloned().collect();
    for k in common {
        let (a, b) = (o.remove(&k).unwrap(), n.remove(&k).unwrap());
        pair(a, b, &mut d);
    }
    // Same name, different architecture, once on each side.
    let names = |m: &BTreeMap<(String, String), &Package>, name: &str| {
        m.keys().filter(|k| k.0 == name).count()
    };
    let leftover: Vec<_> = o.keys().cloned().collect();
    for k in leftover {
        if names(&o, &k.0) == 1 && names(&n, &k.0) == 1 {
            let nk = n.keys().find(|x| x.0 == k.0).cloned().unwrap();
            let (a, b) = (o.remove(&k).unwrap(), n.remove(&nk).unwrap());
            pair(a, b, &mut d);
        }
    }
    d.removed = o.into_values().cloned().collect();
    d.added = n.into_values().cloned().collect();
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str, version: &str, arch: &str) -> Package {
        Package {
            name: name.into(),
            version: version.into(),
            architecture: arch.into(),
        }
    }

    #[test]
    fn version_order() {
        use Ordering::*;
        for (a, b, o) in [
            ("1.0", "1.0", Equal),
            ("1.0", "1.1", Less),
            ("1.0~rc1", "1.0", Less),
            ("1.0~~", "1.0~", Less),
            ("1:0.1", "2.0", Greater),
            ("1.0-1", "1.0-2", Less),
            ("1.0-1", "1.0", Greater),
            ("1.0a", "1.0", Greater),
            ("1.0+b1", "1.0", Greater),
            ("252.30-1~deb12u2", "252.30-1", Less),
            ("9", "10", Less),
        ] {
            assert_eq!(compare_versions(a, b), o, "{a} vs {b}");
        }
    }

    #[test]
    fn status_parsing() {
        let s = "Package: b\nStatus: install ok installed\nVersion: 2\nArchitecture: amd64\nDescription: x\n y: z\n\n\
                 Package: a\nStatus: deinstall ok config-files\nVersion: 1\nArchitecture: all\n\n\
                 Package: a2\nStatus: install ok installed\nArchitecture: all\nVersion: 1:3-1\n";
        let v = parse_status(s).unwrap();
        assert_eq!(v, vec![p("a2", "1:3-1", "all"), p("b", "2", "amd64")]);
    }

    #[test]
    fn metadata_roundtrip() {
        let pk = vec![p("a", "1", "all"), p("b", "2:1~x", "amd64")];
        let mut md = Metadata::new();
        md.set_str("version", "1");
        set_metadata(&mut md, &pk);
        let back = Metadata::decode(&md.encode()).unwrap();
        assert_eq!(from_metadata(&back).unwrap(), Some(pk));
        // The GVariant type is a(sss).
        let v = to_metadata_value(&[]);
        assert_eq!(v.type_().to_string(), "a(sss)");
    }

    #[test]
    fn diffs() {
        let old = vec![
            p("a", "1", "all"),
            p("b", "2", "amd64"),
            p("c", "3", "amd64"),
            p("d", "1", "all"),
        ];
        let new = vec![
            p("a", "1", "all"),
            p("b", "3", "amd64"),
            p("c", "2", "amd64"),
            p("d", "1", "amd64"),
            p("e", "1", "all"),
        ];
        let d = diff(&old, &new);
        assert_eq!(d.added, vec![p("e", "1", "all")]);
        assert!(d.removed.is_empty());
        assert_eq!(
            d.upgraded,
            vec![
                (p("b", "2", "amd64"), p("b", "3", "amd64")),
                (p("d", "1", "all"), p("d", "1", "amd64"))
            ]
        );
        assert_eq!(
            d.downgraded,
            vec![(p("c", "3", "amd64"), p("c", "2", "amd64"))]
        );
        let d = diff(&new, &old);
        assert_eq!(d.removed, vec![p("e", "1", "all")]);
    }
}

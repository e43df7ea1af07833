//! The dpkg database inside a commit: which package owns which path
//! (`info/*.list`), and each package's source package and installed size
//! (`status`). `oxtree compose` keeps it at `usr/share/dpkg/database`; a
//! plain Debian tree has it at `var/lib/dpkg`.

use crate::error::{ContainerError, Result};
use oxtree_object::Checksum;
use oxtree_repo::{Node, Repo, RepoError};
use std::collections::{BTreeMap, HashMap};

/// Where the database may be, in order.
pub const DATABASE_DIRS: &[&str] = &["usr/share/dpkg/database", "var/lib/dpkg"];

/// Largest database file read (a `status` of a big system is a few MB).
const MAX_FILE: u64 = 256 << 20;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackageInfo {
    /// The source package (the package's own name when it has no Source:).
    pub source: String,
    /// `Installed-Size`, in KiB.
    pub installed_kib: u64,
}

#[derive(Clone, Debug, Default)]
pub struct PackageDb {
    /// Commit path (no leading `/`, `/etc` as `usr/etc`) -> owning package.
    pub owners: HashMap<String, String>,
    pub packages: BTreeMap<String, PackageInfo>,
}

/// A dpkg path as it is in an ostree commit: relative, `/etc` under
/// `usr/etc`, the merged-usr directories under `usr/`.
pub fn commit_path(dpkg_path: &str) -> Option<String> {
    let p = dpkg_path.trim_start_matches('/').trim_end_matches('/');
    if p.is_empty() || p == "." {
        return None;
    }
    let (first, rest) = match p.split_once('/') {
        Some((f, r)) => (f, Some(r)),
        None => (p, None),
    };
    let top = match first {
        "etc" => "usr/etc",
        "bin" => "usr/bin",
        "sbin" => "usr/sbin",
        "lib" => "usr/lib",
        "lib32" => "usr/lib32",
        "lib64" => "usr/lib64",
        "libx32" => "usr/libx32",
        other => other,
    };
    Some(match rest {
        Some(r) => format!("{top}/{r}"),
        None => top.to_string(),
    })
}

/// Parse a `status` file: installed packages with their source and size.
pub fn parse_status(text: &str) -> Result<BTreeMap<String, PackageInfo>> {
    let mut out = BTreeMap::new();
    for para in deb822_fast::borrowed::iter_paragraphs_borrowed(text) {
        let para =
            para.map_err(|e| ContainerError::Invalid(format!("dpkg database: status: {e}")))?;
        let get = |k: &str| para.get_single(k).map(str::trim);
        let installed = get("Status").is_some_and(|s| s.ends_with(" installed"));
        let Some(name) = get("Package").filter(|_| installed) else {
            continue;
        };
        let source = get("Source")
            .and_then(|s| s.split_whitespace().next())
            .unwrap_or(name);
        out.insert(
            name.to_string(),
            PackageInfo {
                source: source.to_string(),
                installed_kib: get("Installed-Size")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
            },
        );
    }
    Ok(out)
}

fn read_file(repo: &Repo, csum: &Checksum, what: &str) -> Result<Vec<u8>> {
    let f = repo.open_file(csum)?;
    if f.size > MAX_FILE {
        return Err(ContainerError::Invalid(format!(
            "dpkg database: {what} is {} bytes",
            f.size
        )));
    }
    let (_, data) = f.read_all().map_err(|e| RepoError::BadObject {
        checksum: *csum,
        kind: oxtree_object::ObjectType::File,
        reason: e.to_string(),
    })?;
    Ok(data)
}

/// The package database of the commit whose root is `root`, if it has one.
pub fn read(repo: &Repo, root: (Checksum, Checksum)) -> Result<Option<PackageDb>> {
    for dir in DATABASE_DIRS {
        let Ok(Node::Dir { tree, .. }) = repo.resolve_path(root, dir) else {
            continue;
        };
        let t = repo.load_dirtree(&tree)?;
        let Some(status) = t.files.iter().find(|f| f.name == "status") else {
            continue;
        };
        let status = read_file(repo, &status.checksum, "status")?;
        let mut db = PackageDb {
            packages: parse_status(&String::from_utf8_lossy(&status))?,
            ..Default::default()
        };
        let Some(info) = t.dirs.iter().find(|d| d.name == "info") else {
            return Ok(Some(db));
        };
        let info = repo.load_dirtree(&info.tree)?;
        for f in &info.files {
            let Some(stem) = f.name.strip_suffix(".list") else {
                continue;
            };
            let pkg = stem.split(':').next().unwrap_or(stem).to_string();
            let list = read_file(repo, &f.checksum, &f.name)?;
            for line in String::from_utf8_lossy(&list).lines() {
                if let Some(p) = commit_path(line) {
                    // The first package listing a path (in name order) owns it.
                    db.owners.entry(p).or_insert_with(|| pkg.clone());
                }
            }
        }
        return Ok(Some(db));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_dpkg_paths() {
        assert_eq!(commit_path("/etc/passwd").unwrap(), "usr/etc/passwd");
        assert_eq!(commit_path("/bin/ls").unwrap(), "usr/bin/ls");
        assert_eq!(commit_path("/usr/bin/ls").unwrap(), "usr/bin/ls");
        assert_eq!(commit_path("/etcx/a").unwrap(), "etcx/a");
        assert_eq!(commit_path("/."), None);
    }

    #[test]
    fn parses_status() {
        let s = "Package: libc6\nStatus: install ok installed\nSource: glibc (2.41-12)\n\
                 Installed-Size: 12000\nDescription: x\n more\n\n\
                 Package: gone\nStatus: deinstall ok config-files\n\n\
                 Package: bash\nStatus: install ok installed\nInstalled-Size: 7000\n";
        let m = parse_status(s).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m["libc6"].source, "glibc");
        assert_eq!(m["libc6"].installed_kib, 12000);
        assert_eq!(m["bash"].source, "bash");
    }
}

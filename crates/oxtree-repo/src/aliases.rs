//! Ref aliases: `refs/heads/ALIAS` as a symlink to another local ref (a
//! relative path inside `refs/heads`), as `ostree refs -A --create=ALIAS
//! REF` makes them. Reading an alias reads its target; an alias may not
//! point outside `refs/heads` or to a remote's ref.

use crate::error::{IoContext, RepoError, Result};
use crate::fsutil;
use crate::refs::validate_ref_name;
use crate::Repo;
use rustix::fs::{self, AtFlags, FileType};
use rustix::io::Errno;

/// At most this many aliases are followed to reach a ref.
const MAX_ALIAS_DEPTH: usize = 8;

/// The local ref named by a symlink at `name` (a ref path) with contents
/// `link`: relative to the symlink's directory, inside `refs/heads`.
fn resolve_link(name: &str, link: &str) -> Option<String> {
    let mut parts: Vec<&str> = name.split('/').collect();
    parts.pop();
    for c in link.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    let r = parts.join("/");
    validate_ref_name(&r).ok().map(|_| r)
}

impl Repo {
    /// The ref `refs/heads/NAME` is an alias of, when it is a symlink.
    pub fn ref_alias_target(&self, name: &str) -> Result<Option<String>> {
        let link = match fs::readlinkat(self.dir(), format!("refs/heads/{name}"), Vec::new()) {
            Ok(l) => l,
            Err(Errno::INVAL) | Err(Errno::NOENT) | Err(Errno::NOTDIR) => return Ok(None),
            Err(e) => return Err(e).ctx(|| format!("reading alias {name}")),
        };
        let link = link.to_string_lossy().into_owned();
        resolve_link(name, &link)
            .map(Some)
            .ok_or_else(|| RepoError::Invalid(format!("alias {name} points outside refs/heads")))
    }

    /// Follow aliases from local ref `name` to the ref that holds a commit.
    pub fn resolve_ref_alias(&self, name: &str) -> Result<String> {
        let mut cur = name.to_string();
        for _ in 0..MAX_ALIAS_DEPTH {
            match self.ref_alias_target(&cur)? {
                Some(t) => cur = t,
                None => return Ok(cur),
            }
        }
        Err(RepoError::Invalid(format!(
            "too many levels of aliases at ref {name}"
        )))
    }

    /// Every alias of the repository: (alias, target ref), sorted.
    pub fn list_ref_aliases(&self) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        let mut dirs = vec![String::new()];
        while let Some(rel) = dirs.pop() {
            let path = if rel.is_empty() {
                "refs/heads".to_string()
            } else {
                format!("refs/heads/{rel}")
            };
            let Ok(d) = fsutil::open_dir_at(self.dir(), &path) else {
                continue;
            };
            for (n, t) in fsutil::list_dir(&d).ctx(|| format!("listing {path}"))? {
                let name = if rel.is_empty() {
                    n
                } else {
                    format!("{rel}/{n}")
                };
                if t == FileType::Directory {
                    dirs.push(name);
                } else if t == FileType::Symlink {
                    if let Some(target) = self.ref_alias_target(&name)? {
                        out.push((name, target));
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Make `alias` a symlink to local ref `target` (replacing an alias or
    /// ref of that name).
    pub fn write_ref_alias(&self, alias: &str, target: &str) -> Result<()> {
        validate_ref_name(alias)?;
        validate_ref_name(target)?;
        let (parent, leaf) = match alias.rsplit_once('/') {
            Some((p, l)) => (format!("refs/heads/{p}"), l),
            None => ("refs/heads".to_string(), alias),
        };
        let depth = alias.matches('/').count();
        let link = format!("{}{target}", "../".repeat(depth));
        let dir = fsutil::mkdir_p_at(self.dir(), &parent).ctx(|| format!("creating {parent}"))?;
        let tmp = format!(".{leaf}.alias-tmp");
        let _ = fs::unlinkat(&dir, &tmp, AtFlags::empty());
        fs::symlinkat(&link, &dir, &tmp).ctx(|| format!("creating alias {alias}"))?;
        fs::renameat(&dir, &tmp, &dir, leaf).ctx(|| format!("creating alias {alias}"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::resolve_link;
    #[test]
    fn links_stay_in_heads() {
        assert_eq!(resolve_link("a/b/c", "../26/x").as_deref(), Some("a/26/x"));
        assert_eq!(resolve_link("c", "d").as_deref(), Some("d"));
        assert_eq!(resolve_link("c", "../x"), None);
        assert_eq!(resolve_link("a/c", "../../x"), None);
    }
}

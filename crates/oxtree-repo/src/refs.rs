//! Refs: named pointers to commits under `refs/heads/`, `refs/remotes/R/`
//! and `refs/mirrors/`, and revision parsing (`REF`, `REMOTE:REF`,
//! `CHECKSUM`, `REV^`).

use crate::error::{IoContext, RepoError, Result};
use crate::fsutil;
use crate::Repo;
use oxtree_object::Checksum;
use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{self, AtFlags, FileType};
use rustix::io::Errno;

/// A ref name: `/`-separated components, each starting with a letter, digit
/// or `_` and continuing with those or `-` `.` (ostree's rule).
pub fn validate_ref_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.split('/').all(|c| {
            let mut ch = c.chars();
            matches!(ch.next(), Some(f) if f.is_ascii_alphanumeric() || f == '_')
                && ch.all(|x| x.is_ascii_alphanumeric() || matches!(x, '_' | '-' | '.'))
        });
    if ok {
        Ok(())
    } else {
        Err(RepoError::InvalidRef(name.to_string()))
    }
}

/// A collection ID: reverse-DNS, at least two `.`-separated elements of
/// `[A-Za-z0-9_-]`, not starting with a digit (ostree's rule).
pub fn validate_collection_id(id: &str) -> Result<()> {
    let parts: Vec<&str> = id.split('.').collect();
    let ok = parts.len() >= 2
        && id.len() <= 255
        && parts.iter().all(|p| {
            !p.is_empty()
                && !p.starts_with(|c: char| c.is_ascii_digit())
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        });
    if ok {
        Ok(())
    } else {
        Err(RepoError::Invalid(format!("Invalid collection ID {id}")))
    }
}

/// Parse the contents of a ref file (untrusted): one checksum, optional newline.
pub fn parse_ref_contents(bytes: &[u8]) -> Result<Checksum> {
    let s = std::str::from_utf8(bytes).map_err(|_| RepoError::InvalidRef("<not UTF-8>".into()))?;
    let s = s.strip_suffix('\n').unwrap_or(s);
    Ok(Checksum::from_hex(s)?)
}

/// Split a refspec `REMOTE:REF` into its parts (remote is None for local).
pub fn parse_refspec(spec: &str) -> Result<(Option<&str>, &str)> {
    match spec.split_once(':') {
        Some((r, name)) => {
            validate_ref_name(r)?;
            validate_ref_name(name)?;
            Ok((Some(r), name))
        }
        None => {
            validate_ref_name(spec)?;
            Ok((None, spec))
        }
    }
}

impl Repo {
    fn refs_base(&self, remote: Option<&str>) -> String {
        match remote {
            Some(r) => format!("refs/remotes/{r}"),
            None => "refs/heads".to_string(),
        }
    }

    fn read_ref_file(&self, dir: &str, name: &str) -> Result<Option<Checksum>> {
        let path = format!("{dir}/{name}");
        match fsutil::read_at(self.dir(), &path) {
            Ok(b) => Ok(Some(parse_ref_contents(&b).map_err(|_| {
                RepoError::Invalid(format!("ref file {path} does not hold a checksum"))
            })?)),
            Err(e) if matches!(e.raw_os_error(), Some(x) if x == Errno::NOENT.raw_os_error() || x == Errno::NOTDIR.raw_os_error() || x == Errno::ISDIR.raw_os_error()) => {
                Ok(None)
            }
            // A symlink: a ref alias, when it is a local ref.
            Err(e)
                if dir == "refs/heads" && e.raw_os_error() == Some(Errno::LOOP.raw_os_error()) =>
            {
                let target = self.resolve_ref_alias(name)?;
                if target == name {
                    return Ok(None);
                }
                self.read_ref_file(dir, &target)
            }
            Err(e) => Err(e).ctx(|| format!("reading ref {path}")),
        }
    }

    /// The commit a refspec (`REF` or `REMOTE:REF`) points to, if it exists.
    pub fn read_ref(&self, refspec: &str) -> Result<Option<Checksum>> {
        let (remote, name) = parse_refspec(refspec)?;
        if let Some(c) = self.read_ref_file(&self.refs_base(remote), name)? {
            return Ok(Some(c));
        }
        if remote.is_none() {
            // `origin/main` also names refs/remotes/origin/main, and mirrors.
            if let Some(c) = self.read_ref_file("refs/remotes", name)? {
                return Ok(Some(c));
            }
            if let Some(c) = self.read_ref_file("refs/mirrors", name)? {
                return Ok(Some(c));
            }
        }
        Ok(None)
    }

    /// Point a ref at a commit (None deletes it). The ref file is written
    /// atomically and synced when `sync`.
    pub fn write_ref(&self, refspec: &str, target: Option<&Checksum>, sync: bool) -> Result<()> {
        let (remote, name) = parse_refspec(refspec)?;
        let base = self.refs_base(remote);
        let (parent, leaf) = match name.rsplit_once('/') {
            Some((p, l)) => (format!("{base}/{p}"), l),
            None => (base.clone(), name),
        };
        match target {
            Some(c) => {
                let dir =
                    fsutil::mkdir_p_at(self.dir(), &parent).ctx(|| format!("creating {parent}"))?;
                // A directory in the way (ref `a` when `a/b` exists) is an
                // error; an empty one (its refs were deleted) goes.
                let body = format!("{c}\n");
                if let Err(e) = fsutil::write_atomic_at(&dir, leaf, body.as_bytes(), sync) {
                    if fs::unlinkat(&dir, leaf, AtFlags::REMOVEDIR).is_err() {
                        return Err(e).ctx(|| format!("writing ref {refspec}"));
                    }
                    fsutil::write_atomic_at(&dir, leaf, body.as_bytes(), sync)
                        .ctx(|| format!("writing ref {refspec}"))?;
                }
            }
            None => {
                let dir = match fsutil::open_dir_at(self.dir(), &parent) {
                    Ok(d) => d,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        return Err(RepoError::RefNotFound(refspec.into()))
                    }
                    Err(e) => return Err(e).ctx(|| format!("opening {parent}")),
                };
                match fs::unlinkat(&dir, leaf, AtFlags::empty()) {
                    Ok(()) => {}
                    Err(Errno::NOENT) => return Err(RepoError::RefNotFound(refspec.into())),
                    Err(e) => return Err(e).ctx(|| format!("deleting ref {refspec}")),
                }
                if sync {
                    fs::fsync(&dir).ctx(|| "syncing refs")?;
                }
            }
        }
        Ok(())
    }

    /// All refs: local ones as `name`, remote ones as `remote:name`, sorted.
    pub fn list_refs(&self) -> Result<Vec<(String, Checksum)>> {
        let mut out = Vec::new();
        // Every repository has both directories; one that is gone is
        // damage to report (as ostree does), not an empty list.
        let open = |d: &str| {
            fsutil::open_dir_at(self.dir(), d).ctx(|| format!("Listing refs: opendir({d})"))
        };
        let heads = open("refs/heads")?;
        walk_refs(&heads, "", "", &mut out)?;
        // Aliases (symlinks, skipped by the walk) list as refs too.
        for (alias, target) in self.list_ref_aliases()? {
            if let Some(c) = self.read_ref_file("refs/heads", &target)? {
                out.push((alias, c));
            }
        }
        let remotes = open("refs/remotes")?;
        for (r, t) in fsutil::list_dir(&remotes).ctx(|| "listing refs/remotes")? {
            if t == FileType::Directory {
                let d = fsutil::open_dir_at(&remotes, &r).ctx(|| "opening remote refs")?;
                walk_refs(&d, &format!("{r}:"), "", &mut out)?;
            }
        }
        out.sort();
        Ok(out)
    }

    /// A partial checksum (at least 4 hex digits) names the one commit
    /// object it starts, as in ostree.
    fn by_prefix(&self, rev: &str) -> Result<Checksum> {
        let hex = rev.len() >= 4 && rev.len() < 64 && rev.bytes().all(|b| b.is_ascii_hexdigit());
        if !hex {
            return Err(RepoError::RefNotFound(rev.to_string()));
        }
        let rev_lc = rev.to_ascii_lowercase();
        let found: Vec<Checksum> = self
            .list_commits()?
            .into_iter()
            .filter(|c| c.to_hex().starts_with(&rev_lc))
            .collect();
        match found.as_slice() {
            [c] => Ok(*c),
            [] => Err(RepoError::RefNotFound(rev.to_string())),
            _ => Err(RepoError::Invalid(format!(
                "Refspec '{rev}' is ambiguous ({} commits start with it)",
                found.len()
            ))),
        }
    }

    /// As ostree, a local name that is no local ref may name a remote's ref:
    /// the first `refs/remotes/*/NAME`, remotes in name order.
    fn find_in_remotes(&self, name: &str) -> Result<Option<Checksum>> {
        if name.contains(':') {
            return Ok(None);
        }
        let Ok(remotes) = fsutil::open_dir_at(self.dir(), "refs/remotes") else {
            return Ok(None);
        };
        let mut dirs: Vec<String> = fsutil::list_dir(&remotes)
            .ctx(|| "listing refs/remotes")?
            .into_iter()
            .filter(|(_, t)| *t == FileType::Directory)
            .map(|(n, _)| n)
            .collect();
        dirs.sort();
        for r in dirs {
            if let Some(c) = self.read_ref_file(&format!("refs/remotes/{r}"), name)? {
                return Ok(Some(c));
            }
        }
        Ok(None)
    }

    /// Resolve a revision: a full checksum, a refspec, or either followed by
    /// one or more `^` (parent).
    pub fn resolve_rev(&self, rev: &str) -> Result<Checksum> {
        if let Some(base) = rev.strip_suffix('^') {
            let c = self.resolve_rev(base)?;
            let commit = self.load_commit(&c)?;
            return commit
                .parent
                .ok_or_else(|| RepoError::Invalid(format!("commit {c} has no parent")));
        }
        if Checksum::is_hex(rev) {
            return Checksum::from_hex(rev).map_err(Into::into);
        }
        match self.read_ref(rev) {
            Ok(Some(c)) => Ok(c),
            Ok(None) => match self.find_in_remotes(rev)? {
                Some(c) => Ok(c),
                None => self.by_prefix(rev),
            },
            Err(RepoError::InvalidRef(_)) => Err(RepoError::RefNotFound(rev.to_string())),
            Err(e) => Err(e),
        }
    }
}

/// The refs below `dir`, named `PREFIX` + their path below it.
pub(crate) fn walk_refs(
    dir: &OwnedFd,
    prefix: &str,
    rel: &str,
    out: &mut Vec<(String, Checksum)>,
) -> Result<()> {
    for (name, t) in fsutil::list_dir(dir.as_fd()).ctx(|| "listing refs")? {
        if name.starts_with('.') {
            continue;
        }
        let path = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        if t == FileType::Directory {
            let sub = fsutil::open_dir_at(dir, &name).ctx(|| format!("opening refs dir {path}"))?;
            walk_refs(&sub, prefix, &path, out)?;
        } else if t == FileType::RegularFile || t == FileType::Unknown {
            let b = fsutil::read_at(dir, &name).ctx(|| format!("reading ref {path}"))?;
            let c = parse_ref_contents(&b).map_err(|_| {
                RepoError::Invalid(format!("ref {prefix}{path} does not hold a checksum"))
            })?;
            out.push((format!("{prefix}{path}"), c));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn ref_names() {
        for ok in ["main", "fedora/x86_64/coreos/stable", "a.b-c_d", "_x"] {
            validate_ref_name(ok).unwrap();
        }
        for bad in [
            "", "/a", "a/", "a//b", "../x", "a/../b", ".x", "-x", "a b", "a:b",
        ] {
            assert!(validate_ref_name(bad).is_err(), "{bad:?}");
        }
        assert!(parse_ref_contents(b"zz\n").is_err());
        let c = Checksum::of(b"x");
        assert_eq!(parse_ref_contents(format!("{c}\n").as_bytes()).unwrap(), c);
    }

    #[test]
    fn collection_ids() {
        for ok in ["org.example.Collection", "com.x-y.A_b"] {
            validate_collection_id(ok).unwrap();
        }
        for bad in ["", "single", "org..x", "org.1x", "org.ex ample", ".org.x"] {
            assert!(validate_collection_id(bad).is_err(), "{bad:?}");
        }
    }
}

//! Where a remote's files come from: one base URL, or several mirrors.
//!
//! A remote's `url` and `contenturl` are each either a base URL or
//! `mirrorlist=URL`: a text file of base URLs, one a line (blank lines and
//! `#` comments skipped, only http and https kept). As ostree does, the
//! mirrors are checked in order until one serves its `config`, and the
//! ones before it are dropped; every request then tries the remaining
//! mirrors in order, going to the next one when a mirror fails or has not
//! got the file.
//!
//! [`Sources`] are a remote's two lists: metadata (`config`, `summary`,
//! `summary.sig`, refs, detached commit metadata, which carries the
//! signatures) from `url`, and objects and static deltas from `contenturl`
//! (or `url` when there is none). A remote with a `metalink` has no `url`:
//! its summary comes through the metalink, and the directory that served
//! it is the base of everything else.

use crate::error::{Result, TransportError};
use crate::fetch::{join_url, Body, Fetcher};
use crate::remote::Remote;
use std::path::PathBuf;
use std::sync::Arc;

/// Largest mirrorlist accepted.
pub const MAX_MIRRORLIST_SIZE: u64 = 1 << 20;
const MAX_CONFIG_SIZE: u64 = 1 << 20;

/// Base URLs tried in order. Cheap to clone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mirrors {
    bases: Arc<Vec<String>>,
}

impl Mirrors {
    /// One base URL.
    pub fn single(base: &str) -> Mirrors {
        Mirrors {
            bases: Arc::new(vec![base.to_string()]),
        }
    }

    /// Several base URLs; None when `bases` is empty.
    pub fn new(bases: Vec<String>) -> Option<Mirrors> {
        (!bases.is_empty()).then(|| Mirrors {
            bases: Arc::new(bases),
        })
    }

    pub fn bases(&self) -> &[String] {
        &self.bases
    }

    /// The first base URL (the only one without a mirrorlist).
    pub fn first(&self) -> &str {
        &self.bases[0]
    }

    /// GET `rel` below each base in turn until one serves it. A mirror
    /// that has not got it or fails is followed by the next; the last
    /// mirror's answer is the result (`Ok(None)`: not found). A body over
    /// `limit` is an error at once: every mirror should serve the same
    /// bytes.
    pub async fn get(
        &self,
        fetcher: &Fetcher,
        rel: &str,
        limit: u64,
        spill: Option<PathBuf>,
    ) -> Result<Option<Body>> {
        self.first_serving(rel, |url| {
            let spill = spill.clone();
            async move { fetcher.get(&url, limit, spill).await }
        })
        .await
    }

    /// [`Mirrors::get`] of a file whose size is known, in up to `pieces`
    /// ranges at once ([`Fetcher::get_split`]).
    pub async fn get_split(
        &self,
        fetcher: &Fetcher,
        rel: &str,
        size: u64,
        pieces: usize,
        limit: u64,
        spill: Option<PathBuf>,
    ) -> Result<Option<Body>> {
        self.first_serving(rel, |url| {
            let spill = spill.clone();
            async move { fetcher.get_split(&url, size, pieces, limit, spill).await }
        })
        .await
    }

    /// `fetch` the URL of `rel` below each base in turn, as [`Mirrors::get`]
    /// describes.
    async fn first_serving<F, Fut>(&self, rel: &str, fetch: F) -> Result<Option<Body>>
    where
        F: Fn(String) -> Fut,
        Fut: std::future::Future<Output = Result<Option<Body>>>,
    {
        let n = self.bases.len();
        for (i, base) in self.bases.iter().enumerate() {
            let last = i + 1 == n;
            match fetch(join_url(base, rel)).await {
                Ok(Some(b)) => return Ok(Some(b)),
                Ok(None) if last => return Ok(None),
                Err(e) if last => return Err(e),
                Err(e @ (TransportError::TooLarge { .. } | TransportError::Cancelled)) => {
                    return Err(e)
                }
                Ok(None) | Err(_) => continue,
            }
        }
        Ok(None)
    }

    /// [`Mirrors::get`] of a small file, into memory.
    pub async fn get_vec(
        &self,
        fetcher: &Fetcher,
        rel: &str,
        limit: u64,
    ) -> Result<Option<Vec<u8>>> {
        match self.get(fetcher, rel, limit, None).await? {
            None => Ok(None),
            Some(b) => b
                .into_vec()
                .map(Some)
                .map_err(|e| TransportError::io(format!("reading {rel}"), e)),
        }
    }
}

/// The candidate mirrors of a mirrorlist, in order: lines that are not
/// blank, not `#` comments and start with `http://` or `https://`.
pub fn parse_mirrorlist(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter(|l| l.starts_with("http://") || l.starts_with("https://"))
        .map(str::to_string)
        .collect()
}

fn check_scheme(remote: &str, url: &str, local_ok: bool) -> Result<()> {
    let ok = url.starts_with("http://")
        || url.starts_with("https://")
        || (local_ok && url.starts_with("file://"));
    if !ok {
        // ostree's wording, which scripts match.
        return Err(TransportError::Config(format!(
            "remote '{remote}': Invalid URI scheme in {url}"
        )));
    }
    Ok(())
}

/// Check the form of a `url`/`contenturl` value without fetching.
pub fn check_spec(remote: &str, spec: &str) -> Result<()> {
    match spec.strip_prefix("mirrorlist=") {
        Some(list) => check_scheme(remote, list, true),
        None => check_scheme(remote, spec, true),
    }
}

/// The mirrors a `url`/`contenturl` value names: itself, or the working
/// mirrors of the mirrorlist it points to.
pub async fn resolve(fetcher: &Fetcher, remote: &str, spec: &str) -> Result<Mirrors> {
    check_spec(remote, spec)?;
    let Some(list_url) = spec.strip_prefix("mirrorlist=") else {
        return Ok(Mirrors::single(spec));
    };
    let text = fetcher
        .get(list_url, MAX_MIRRORLIST_SIZE, None)
        .await
        .and_then(|b| {
            b.ok_or_else(|| TransportError::NotFound {
                url: list_url.to_string(),
            })
        })
        .and_then(|b| {
            b.into_vec()
                .map_err(|e| TransportError::io(format!("reading {list_url}"), e))
        })
        .map_err(|e| {
            TransportError::Config(format!(
                "remote '{remote}': While fetching mirrorlist '{list_url}': {e}"
            ))
        })?;
    let text = String::from_utf8_lossy(&text);
    let mut bases = Vec::new();
    for m in parse_mirrorlist(&text) {
        // Drop leading mirrors that do not even serve the config: every
        // request would try them first.
        if bases.is_empty() {
            let cfg = fetcher
                .get(&join_url(&m, "config"), MAX_CONFIG_SIZE, None)
                .await;
            if !matches!(cfg, Ok(Some(_))) {
                continue;
            }
        }
        bases.push(m);
    }
    Mirrors::new(bases).ok_or_else(|| {
        TransportError::Config(format!(
            "remote '{remote}': No valid mirrors were found in mirrorlist '{list_url}'"
        ))
    })
}

/// A remote's metadata and content mirrors, and the summary a metalink
/// gave (already checked against the metalink's size and digest).
#[derive(Clone, Debug)]
pub struct Sources {
    pub meta: Mirrors,
    pub content: Mirrors,
    pub metalink_summary: Option<Vec<u8>>,
}

impl Sources {
    /// Find where `remote`'s files come from (fetches the metalink or the
    /// mirrorlists it names).
    pub async fn resolve(fetcher: &Fetcher, remote: &Remote) -> Result<Sources> {
        let name = &remote.name;
        let (meta, metalink_summary) = match &remote.metalink {
            Some(ml) => {
                check_scheme(name, ml, false)?;
                let t =
                    crate::metalink::fetch(fetcher, ml, "summary", crate::pull::MAX_METADATA_SIZE)
                        .await?;
                (Mirrors::single(&t.base_url()), Some(t.data))
            }
            None => (resolve(fetcher, name, remote.require_url()?).await?, None),
        };
        let content = match &remote.content_url {
            Some(c) => resolve(fetcher, name, c).await?,
            None => meta.clone(),
        };
        Ok(Sources {
            meta,
            content,
            metalink_summary,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrorlist_lines() {
        let t = "\n# comment\n\nhttp://a/r\n  https://b/r  \nfile:///x\nftp://c\n";
        assert_eq!(parse_mirrorlist(t), vec!["http://a/r", "https://b/r"]);
        assert!(check_spec("o", "mirrorlist=http://x/list").is_ok());
        assert!(check_spec("o", "mirrorlist=ftp://x/list").is_err());
        assert!(check_spec("o", "gopher://x").is_err());
        assert!(Mirrors::new(Vec::new()).is_none());
    }
}

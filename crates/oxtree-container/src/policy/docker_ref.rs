//! The docker reference grammar the identity rules and scope lookup
//! compare, normalized as containers/image does.

use std::fmt;

/// A docker reference, normalized as containers/image does
/// (`busybox` is `docker.io/library/busybox`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DockerRef {
    /// `DOMAIN/PATH`
    pub name: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

/// A path component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: &u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(&b[0]) || !alnum(&b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(&b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(&b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `host(.host)*(:port)?`, host labels `[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?`,
/// or `[IPv6](:port)?`.
fn valid_domain(d: &str) -> bool {
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        if v6.is_empty() || !v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return false;
        }
        match after {
            "" => return true,
            a => match a.strip_prefix(':') {
                Some(p) => ("x", Some(p)),
                None => return false,
            },
        }
    } else {
        match d.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (d, None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    !host.is_empty()
        && host.split('.').all(|l| {
            let b = l.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
        })
}

fn valid_digest(d: &str) -> bool {
    let Some((alg, hex)) = d.split_once(':') else {
        return false;
    };
    let len = match alg {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return false,
    };
    hex.len() == len && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl DockerRef {
    /// Parse `[DOMAIN/]PATH[:TAG][@DIGEST]`, normalized.
    pub fn parse(s: &str) -> std::result::Result<DockerRef, String> {
        if s.is_empty() || s.len() > 1024 {
            return Err("empty or too long".into());
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                if !valid_digest(d) {
                    return Err(format!("invalid digest {d:?}"));
                }
                (r, Some(d.to_string()))
            }
            None => (s, None),
        };
        let after_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[after_slash..].rfind(':') {
            Some(i) => {
                let t = &rest[after_slash + i + 1..];
                if !crate::imgref::valid_tag(t) {
                    return Err(format!("invalid tag {t:?}"));
                }
                (&rest[..after_slash + i], Some(t.to_string()))
            }
            None => (rest, None),
        };
        let (domain, path) = match name.split_once('/') {
            Some((d, p)) if d.contains(['.', ':']) || d == "localhost" || d.to_lowercase() != d => {
                (d, p.to_string())
            }
            _ => ("docker.io", name.to_string()),
        };
        let domain = if domain == "index.docker.io" {
            "docker.io"
        } else {
            domain
        };
        let path = if domain == "docker.io" && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        if !valid_domain(domain) {
            return Err(format!("invalid domain {domain:?}"));
        }
        if !path.split('/').all(valid_component) {
            return Err(format!(
                "invalid repository path {path:?} (lowercase letters, digits and separators)"
            ));
        }
        let name = format!("{domain}/{path}");
        if name.len() > 255 {
            return Err("the repository name is longer than 255 characters".into());
        }
        Ok(DockerRef { name, tag, digest })
    }

    pub fn is_name_only(&self) -> bool {
        self.tag.is_none() && self.digest.is_none()
    }

    /// The policy identity: `NAME:TAG` or `NAME@DIGEST`.
    pub fn identity(&self) -> std::result::Result<String, String> {
        match (&self.tag, &self.digest) {
            (Some(t), None) => Ok(format!("{}:{t}", self.name)),
            (None, Some(d)) => Ok(format!("{}@{d}", self.name)),
            (Some(_), Some(_)) => {
                Err("references with both a tag and a digest are not supported".into())
            }
            (None, None) => Err("a reference with neither a tag nor a digest".into()),
        }
    }

    /// The scopes above the identity, most specific first: the name, its
    /// parent namespaces down to `HOST[:PORT]`, then `*.DOMAIN` for each
    /// parent domain of the host.
    pub fn namespaces(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut n = self.name.as_str();
        loop {
            out.push(n.to_string());
            match n.rfind('/') {
                Some(i) => n = &n[..i],
                None => break,
            }
        }
        let mut host = n.split(':').next().unwrap_or(n);
        while let Some(i) = host.find('.') {
            host = &host[i + 1..];
            out.push(format!("*.{host}"));
        }
        out
    }
}

impl fmt::Display for DockerRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::test_helpers::*;

    #[test]
    fn references() {
        let x = r("127.0.0.1:5000/os:v1");
        assert_eq!(x.name, "127.0.0.1:5000/os");
        assert_eq!(x.tag.as_deref(), Some("v1"));
        assert_eq!(x.to_string(), "127.0.0.1:5000/os:v1");
        assert_eq!(r("busybox").name, "docker.io/library/busybox");
        assert_eq!(r("index.docker.io/a/b").name, "docker.io/a/b");
        assert_eq!(r("localhost/a").name, "localhost/a");
        assert_eq!(r("quay.io/a/b/c:t").name, "quay.io/a/b/c");
        assert_eq!(r("[::1]:5000/os").name, "[::1]:5000/os");
        let d = format!("sha256:{}", "a".repeat(64));
        let x = r(&format!("h.io/os@{d}"));
        assert_eq!((x.tag, x.digest), (None, Some(d.clone())));
        let x = r(&format!("h.io/os:t@{d}"));
        assert!(x.identity().is_err());
        assert!(r("h.io/os").is_name_only());
        for bad in [
            "",
            "h.io/OS",
            "h.io/os:",
            "h.io/os:-t",
            "h.io/os@sha256:ab",
            "h.io//os",
            "h.io/os/",
            "h.io/a..b",
            "-h.io/os",
            "h.io:x/os",
            &format!("h.io/os@sha256:{}", "A".repeat(64)),
        ] {
            assert!(DockerRef::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn namespaces() {
        assert_eq!(
            r("reg.example.com:5000/ns/sub/os:v1").namespaces(),
            [
                "reg.example.com:5000/ns/sub/os",
                "reg.example.com:5000/ns/sub",
                "reg.example.com:5000/ns",
                "reg.example.com:5000",
                "*.example.com",
                "*.com"
            ]
        );
        assert_eq!(
            r("127.0.0.1:5000/os").namespaces(),
            [
                "127.0.0.1:5000/os",
                "127.0.0.1:5000",
                "*.0.0.1",
                "*.0.1",
                "*.1"
            ]
        );
    }
}

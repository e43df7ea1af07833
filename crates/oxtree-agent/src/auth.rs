//! Who is calling and what they may do: unix peer credentials (root, or a
//! member of the configured group), TLS client certificates verified
//! against a CA, and bearer tokens from a private (0600) file.

use crate::error::{AgentError, Result};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;

/// What a caller may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Read status and operations only.
    Read,
    /// Everything.
    Admin,
}

/// An authenticated caller, as the audit log names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// `uid:0`, `cert:sha256:…`, `token:NAME`.
    pub name: String,
    pub role: Role,
}

/// What the transport knows about a connection.
#[derive(Clone, Debug)]
pub enum Peer {
    /// A unix socket peer (SO_PEERCRED).
    Unix {
        uid: u32,
        gid: u32,
        pid: Option<i32>,
    },
    /// A TLS peer; `cert` is the SHA-256 of the verified client
    /// certificate, when it sent one.
    Tls { cert: Option<String> },
}

/// Why a request was refused before it did anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Denied {
    /// No or bad credentials (401).
    Unauthenticated,
    /// Known caller, not allowed (403).
    Forbidden(String),
}

/// The bearer tokens: `NAME SECRET [ROLE]` per line (`ROLE` is `admin`,
/// the default, or `read`); `#` starts a comment.
#[derive(Clone, Default)]
pub struct Tokens(Vec<(String, [u8; 32], Role)>);

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({} entries)", self.0.len())
    }
}

impl Tokens {
    /// Load `path`, refusing a file that others than its owner may read or
    /// write (secrets in a readable file are no secrets).
    pub fn load(path: &Path) -> Result<Tokens> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).map_err(|e| AgentError::io(path, e))?;
        if m.mode() & 0o077 != 0 {
            return Err(AgentError::Config(format!(
                "{}: tokens file must not be accessible by group or others (mode {:o}; chmod 600 it)",
                path.display(),
                m.mode() & 0o7777
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|e| AgentError::io(path, e))?;
        Tokens::parse(&text).map_err(|m| AgentError::Config(format!("{}: {m}", path.display())))
    }

    pub fn parse(text: &str) -> std::result::Result<Tokens, String> {
        let mut v = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let f: Vec<&str> = line.split_whitespace().collect();
            let role = match f.get(2).copied() {
                None | Some("admin") => Role::Admin,
                Some("read") => Role::Read,
                Some(r) => return Err(format!("line {}: unknown role {r:?}", i + 1)),
            };
            if f.len() < 2 || f.len() > 3 {
                return Err(format!("line {}: expected NAME SECRET [ROLE]", i + 1));
            }
            if f[1].len() < 16 {
                return Err(format!("line {}: token shorter than 16 characters", i + 1));
            }
            v.push((f[0].to_string(), sha256(f[1].as_bytes()), role));
        }
        Ok(Tokens(v))
    }

    /// The token's principal; compares digests without early exit.
    pub fn check(&self, secret: &str) -> Option<Principal> {
        let d = sha256(secret.as_bytes());
        let mut found = None;
        for (name, h, role) in &self.0 {
            let diff = h.iter().zip(d.iter()).fold(0u8, |a, (x, y)| a | (x ^ y));
            if diff == 0 {
                found = Some(Principal {
                    name: format!("token:{name}"),
                    role: *role,
                });
            }
        }
        found
    }
}

fn sha256(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

/// The authorisation policy.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// Members of this group (primary or supplementary) may use the unix
    /// socket besides root.
    pub group: Option<u32>,
    pub tokens: Option<Arc<Tokens>>,
}

impl Policy {
    /// The caller of a request on a connection from `peer`, with its
    /// `Authorization` header.
    pub fn authenticate(
        &self,
        peer: &Peer,
        authorization: Option<&str>,
    ) -> std::result::Result<Principal, Denied> {
        match peer {
            Peer::Unix { uid, gid, pid } => {
                let admin = |n: String| Principal {
                    name: n,
                    role: Role::Admin,
                };
                if *uid == 0 {
                    return Ok(admin("uid:0".into()));
                }
                if let Some(g) = self.group {
                    if *gid == g || pid.is_some_and(|p| supplementary_groups(p).contains(&g)) {
                        return Ok(admin(format!("uid:{uid}")));
                    }
                }
                Err(Denied::Forbidden(format!(
                    "uid {uid} is neither root nor in the agent's group"
                )))
            }
            Peer::Tls { cert } => {
                if let Some(c) = cert {
                    return Ok(Principal {
                        name: format!("cert:sha256:{c}"),
                        role: Role::Admin,
                    });
                }
                let token = authorization
                    .and_then(|a| a.strip_prefix("Bearer "))
                    .map(str::trim);
                match (token, &self.tokens) {
                    (Some(t), Some(tokens)) => tokens.check(t).ok_or(Denied::Unauthenticated),
                    _ => Err(Denied::Unauthenticated),
                }
            }
        }
    }
}

/// The supplementary groups of process `pid` (`Groups:` of its status).
fn supplementary_groups(pid: i32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("Groups:")).map(|g| {
                g.split_whitespace()
                    .filter_map(|x| x.parse().ok())
                    .collect()
            })
        })
        .unwrap_or_default()
}

/// SHA-256 (hex) of a DER certificate: how a client certificate is named.
pub fn cert_fingerprint(der: &[u8]) -> String {
    hex::encode(sha256(der))
}

/// The rustls server configuration: `cert`/`key` (PEM) and, with
/// `client_ca`, client certificates verified against it (optional when
/// `tokens_too`, so token clients can still connect).
pub fn tls_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
    tokens_too: bool,
) -> Result<rustls::ServerConfig> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| AgentError::Config(format!("{}: {e}", cert.display())))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| AgentError::Config(format!("{}: {e}", key.display())))?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(AgentError::tls)?;
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(ca)
                .map_err(|e| AgentError::Config(format!("{}: {e}", ca.display())))?
            {
                let c = c.map_err(|e| AgentError::Config(format!("{}: {e}", ca.display())))?;
                roots.add(c).map_err(AgentError::tls)?;
            }
            let v = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            );
            let v = if tokens_too {
                v.allow_unauthenticated()
            } else {
                v
            };
            builder.with_client_cert_verifier(v.build().map_err(AgentError::tls)?)
        }
        None => builder.with_no_client_auth(),
    };
    let mut cfg = builder
        .with_single_cert(certs, key)
        .map_err(AgentError::tls)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        let t =
            Tokens::parse("# c\nops 0123456789abcdef0123\nro  fedcba9876543210xx read\n").unwrap();
        assert_eq!(
            t.check("0123456789abcdef0123").unwrap(),
            Principal {
                name: "token:ops".into(),
                role: Role::Admin
            }
        );
        assert_eq!(t.check("fedcba9876543210xx").unwrap().role, Role::Read);
        assert!(t.check("0123456789abcdef012").is_none());
        assert!(Tokens::parse("short abc").is_err());
        assert!(Tokens::parse("a 0123456789abcdef0123 root").is_err());
        let p = Policy {
            group: None,
            tokens: Some(Arc::new(t)),
        };
        let tls = Peer::Tls { cert: None };
        assert_eq!(
            p.authenticate(&tls, Some("Bearer nope")),
            Err(Denied::Unauthenticated)
        );
        assert_eq!(p.authenticate(&tls, None), Err(Denied::Unauthenticated));
        assert!(p
            .authenticate(&tls, Some("Bearer 0123456789abcdef0123"))
            .is_ok());
        let u = |uid| Peer::Unix {
            uid,
            gid: 100,
            pid: None,
        };
        assert!(p.authenticate(&u(0), None).is_ok());
        assert!(matches!(
            p.authenticate(&u(1000), None),
            Err(Denied::Forbidden(_))
        ));
        let g = Policy {
            group: Some(100),
            tokens: None,
        };
        assert_eq!(g.authenticate(&u(1000), None).unwrap().name, "uid:1000");
    }

    #[test]
    fn world_readable_tokens_refused() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("tokens");
        std::fs::write(&f, "a 0123456789abcdef0123\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = Tokens::load(&f).unwrap_err();
        assert!(e.to_string().contains("chmod 600"), "{e}");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(Tokens::load(&f).is_ok());
    }
}

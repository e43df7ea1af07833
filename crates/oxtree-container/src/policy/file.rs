//! The policy file: where it is, reading it (bounded), and the decision
//! for an image: every requirement of its scope must accept it.

use super::{DockerRef, Policy, Requirement, SigstoreSigned};
use crate::error::{ContainerError, IoContext, Result};
use crate::sigstore::{self, Attachment};
use base64::Engine;
use p256::ecdsa::VerifyingKey;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Where containers keep the policy (below the root of the system).
pub const DEFAULT_PATH: &str = "etc/containers/policy.json";
/// An environment variable naming the policy file instead.
pub const PATH_ENV: &str = "OXTREE_CONTAINERS_POLICY";
/// The largest policy file read.
pub const MAX_POLICY: usize = 1 << 20;

/// The policy in effect for the system whose root is `root`:
/// `$OXTREE_CONTAINERS_POLICY` when set, else `ROOT/etc/containers/policy.json`.
pub fn default_path(root: &Path) -> PathBuf {
    match std::env::var_os(PATH_ENV) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => root.join(DEFAULT_PATH),
    }
}

/// A policy and the file it came from.
#[derive(Clone, Debug)]
pub struct PolicyFile {
    pub path: PathBuf,
    pub policy: Policy,
}

fn read_limited(path: &Path, limit: usize) -> Result<Vec<u8>> {
    let f = std::fs::File::open(path).ctx(|| format!("opening {}", path.display()))?;
    let mut v = Vec::new();
    f.take(limit as u64 + 1)
        .read_to_end(&mut v)
        .ctx(|| format!("reading {}", path.display()))?;
    if v.len() > limit {
        return Err(ContainerError::Invalid(format!(
            "{} is over {limit} bytes",
            path.display()
        )));
    }
    Ok(v)
}

impl PolicyFile {
    /// Read and parse the policy at `path`.
    pub fn load(path: &Path) -> Result<PolicyFile> {
        let bad = |reason: String| ContainerError::Policy {
            path: path.display().to_string(),
            reason,
        };
        let bytes = read_limited(path, MAX_POLICY).map_err(|e| bad(crate::registry::chain(&e)))?;
        let policy = Policy::parse(&bytes).map_err(bad)?;
        Ok(PolicyFile {
            path: path.to_path_buf(),
            policy,
        })
    }

    fn policy_err(&self, reason: impl Into<String>) -> ContainerError {
        ContainerError::Policy {
            path: self.path.display().to_string(),
            reason: reason.into(),
        }
    }

    /// The public keys of a `sigstoreSigned` requirement, and how to name
    /// them in a message.
    fn keys(&self, s: &SigstoreSigned) -> Result<(Vec<VerifyingKey>, String)> {
        let unsupported = |what: &str| {
            self.policy_err(format!(
                "sigstoreSigned with {what} is not supported (only public keys: keyPath, \
                 keyPaths, keyData, keyDatas)"
            ))
        };
        if s.fulcio.is_some() {
            return Err(unsupported("fulcio"));
        }
        if s.pki.is_some() {
            return Err(unsupported("pki"));
        }
        if s.rekor_public_key_path.is_some()
            || s.rekor_public_key_paths.is_some()
            || s.rekor_public_key_data.is_some()
            || s.rekor_public_key_datas.is_some()
        {
            return Err(unsupported("a Rekor public key"));
        }
        let mut pems: Vec<(Vec<u8>, String)> = Vec::new();
        let paths: Vec<&PathBuf> = s
            .key_path
            .iter()
            .chain(s.key_paths.iter().flatten())
            .collect();
        for p in paths {
            let b = read_limited(p, sigstore::MAX_KEY).map_err(|e| {
                self.policy_err(format!(
                    "key {}: {}",
                    p.display(),
                    crate::registry::chain(&e)
                ))
            })?;
            pems.push((b, p.display().to_string()));
        }
        for (i, d) in s
            .key_data
            .iter()
            .chain(s.key_datas.iter().flatten())
            .enumerate()
        {
            let b = base64::engine::general_purpose::STANDARD
                .decode(d.trim())
                .map_err(|e| self.policy_err(format!("keyData: not base64: {e}")))?;
            pems.push((b, format!("keyData #{}", i + 1)));
        }
        let mut keys = Vec::new();
        for (pem, name) in &pems {
            keys.push(
                sigstore::parse_public_key(pem)
                    .map_err(|e| self.policy_err(format!("key {name}: {e}")))?,
            );
        }
        let names: Vec<&str> = pems.iter().map(|(_, n)| n.as_str()).collect();
        Ok((keys, names.join(", ")))
    }

    /// Decide on the registry image `reference` (`HOST/NAME[:TAG|@DIGEST]`,
    /// a bare name tagged `latest`) whose manifest, as fetched, has
    /// `manifest_digest`. `attachments` fetches the image's signature
    /// attachments; it is called once, and only when a requirement needs
    /// them. Returns what accepted the image; refuses with
    /// [`ContainerError::Refused`].
    pub fn check(
        &self,
        reference: &str,
        manifest_digest: &str,
        attachments: &mut dyn FnMut() -> Result<Vec<Attachment>>,
    ) -> Result<String> {
        let refused = |reason: String| ContainerError::Refused {
            image: format!("docker://{reference}"),
            policy: self.path.display().to_string(),
            reason,
        };
        let mut intended = DockerRef::parse(reference).map_err(|e| ContainerError::ImageRef {
            reference: reference.to_string(),
            reason: e,
        })?;
        if intended.is_name_only() {
            intended.tag = Some("latest".into());
        }
        let (scope, reqs) = self.policy.requirements_for(&intended).map_err(refused)?;
        let mut fetched: Option<Vec<Attachment>> = None;
        let mut accepted = Vec::new();
        for r in &reqs.0 {
            match r {
                Requirement::InsecureAcceptAnything {} => {
                    accepted.push("insecureAcceptAnything".to_string())
                }
                Requirement::Reject {} => {
                    return Err(refused(format!("{scope} is \"reject\"")));
                }
                Requirement::SignedBy { .. } => {
                    return Err(self.policy_err(format!(
                        "{scope}: signedBy (GPG simple signing) is not supported; \
                         use sigstoreSigned"
                    )));
                }
                Requirement::SignedBaseLayer { .. } => {
                    return Err(
                        self.policy_err(format!("{scope}: signedBaseLayer is not supported"))
                    );
                }
                Requirement::SigstoreSigned(s) => {
                    let (keys, key_names) = self.keys(s)?;
                    if fetched.is_none() {
                        fetched = Some(attachments()?);
                    }
                    let all = fetched.as_deref().unwrap_or_default();
                    let sigs: Vec<&Attachment> = all
                        .iter()
                        .filter(|a| a.layer.media_type == sigstore::SIGNATURE_MEDIA_TYPE)
                        .collect();
                    if sigs.is_empty() {
                        return Err(refused(format!(
                            "{scope} requires a sigstore signature (key {key_names}), but the \
                             image has none{}",
                            if all.is_empty() {
                                String::new()
                            } else {
                                format!(" ({} other attachments)", all.len())
                            }
                        )));
                    }
                    let id_ok = |signed: &str| s.signed_identity.check(&intended, signed);
                    let mut reasons = Vec::new();
                    let mut ok = None;
                    for a in &sigs {
                        match sigstore::verify_attachment(&keys, a, manifest_digest, &id_ok) {
                            Ok(p) => {
                                ok = Some(p);
                                break;
                            }
                            Err(e) => reasons.push(e),
                        }
                    }
                    match ok {
                        Some(p) => accepted.push(format!(
                            "sigstore signature by key {key_names} for {}",
                            p.docker_reference
                        )),
                        None if reasons.len() == 1 => {
                            return Err(refused(format!(
                                "{scope} requires a sigstore signature (key {key_names}): {}",
                                reasons[0]
                            )))
                        }
                        None => {
                            return Err(refused(format!(
                                "{scope} requires a sigstore signature (key {key_names}): none of \
                                 the {} signatures is accepted: {}",
                                reasons.len(),
                                reasons.join("; ")
                            )))
                        }
                    }
                }
            }
        }
        Ok(format!("{scope}: {}", accepted.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::test_helpers::*;

    fn file(s: &str) -> PolicyFile {
        PolicyFile {
            path: "/p.json".into(),
            policy: policy(s),
        }
    }

    #[test]
    fn decisions_without_signatures() {
        let p = file(
            r#"{"default":[{"type":"reject"}],"transports":{"docker":{
                "h:5000/open":[{"type":"insecureAcceptAnything"}],
                "h:5000/gpg":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/gpg"}],
                "h:5000/ful":[{"type":"sigstoreSigned","fulcio":{"caPath":"/x"},"rekorPublicKeyPath":"/r"}],
                "h:5000/nokey":[{"type":"sigstoreSigned","keyPath":"/nonexistent/key.pub"}]}}}"#,
        );
        let d = format!("sha256:{}", "c".repeat(64));
        let mut never = || -> Result<Vec<Attachment>> { panic!("signatures fetched") };
        assert!(p.check("h:5000/open:v1", &d, &mut never).is_ok());
        assert!(p.check("h:5000/open", &d, &mut never).is_ok());
        let e = p.check("h:5000/closed:v1", &d, &mut never).unwrap_err();
        assert!(matches!(e, ContainerError::Refused { .. }), "{e}");
        assert!(e.to_string().contains("default is \"reject\""), "{e}");
        let e = p
            .check("h:5000/gpg:v1", &d, &mut never)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("signedBy (GPG simple signing) is not supported"),
            "{e}"
        );
        let e = p
            .check("h:5000/ful:v1", &d, &mut never)
            .unwrap_err()
            .to_string();
        assert!(e.contains("fulcio is not supported"), "{e}");
        let e = p
            .check("h:5000/nokey:v1", &d, &mut never)
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/key.pub"), "{e}");
        let mut none = || -> Result<Vec<Attachment>> { Ok(Vec::new()) };
        use p256::pkcs8::{EncodePublicKey, LineEnding};
        let pem = p256::ecdsa::SigningKey::from_slice(&[7; 32])
            .unwrap()
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        let p = file(&format!(
            r#"{{"default":[{{"type":"sigstoreSigned","keyData":"{}"}}]}}"#,
            base64::engine::general_purpose::STANDARD.encode(pem)
        ));
        let e = p
            .check("h:5000/os:v1", &d, &mut none)
            .unwrap_err()
            .to_string();
        assert!(e.contains("but the image has none"), "{e}");
        assert!(e.contains("image docker://h:5000/os:v1 refused"), "{e}");
    }
}

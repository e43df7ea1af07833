//! The `signedIdentity` rules: which references a signature may name for
//! the image being pulled.

use super::{DockerRef, SignedIdentity};

impl SignedIdentity {
    pub(super) fn validate(&self) -> std::result::Result<(), String> {
        match self {
            SignedIdentity::ExactReference { docker_reference } => {
                let r = DockerRef::parse(docker_reference)
                    .map_err(|e| format!("exactReference {docker_reference:?}: {e}"))?;
                if r.is_name_only() {
                    return Err(format!(
                        "exactReference {docker_reference:?} has neither a tag nor a digest"
                    ));
                }
                Ok(())
            }
            SignedIdentity::ExactRepository { docker_repository } => {
                DockerRef::parse(docker_repository)
                    .map(|_| ())
                    .map_err(|e| format!("exactRepository {docker_repository:?}: {e}"))
            }
            SignedIdentity::RemapIdentity {
                prefix,
                signed_prefix,
            } => {
                for p in [prefix, signed_prefix] {
                    if p.is_empty() || p.contains(['@', ' ']) || p.ends_with('/') {
                        return Err(format!("remapIdentity: prefix {p:?} is not valid"));
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Does a signature claiming `signed` satisfy this rule for the image
    /// `intended`? Why not, when not.
    pub fn check(&self, intended: &DockerRef, signed: &str) -> std::result::Result<(), String> {
        let sig = DockerRef::parse(signed)
            .map_err(|e| format!("the signature's identity {signed:?} is not a reference: {e}"))?;
        let exact = |a: &DockerRef, b: &DockerRef| {
            !a.is_name_only() && !b.is_name_only() && a.to_string() == b.to_string()
        };
        let ok = match self {
            SignedIdentity::MatchExact {} => exact(intended, &sig),
            SignedIdentity::MatchRepoDigestOrExact {} => repo_digest_or_exact(intended, &sig),
            SignedIdentity::MatchRepository {} => sig.name == intended.name,
            SignedIdentity::ExactReference { docker_reference } => {
                exact(&DockerRef::parse(docker_reference)?, &sig)
            }
            SignedIdentity::ExactRepository { docker_repository } => {
                DockerRef::parse(docker_repository)?.name == sig.name
            }
            SignedIdentity::RemapIdentity {
                prefix,
                signed_prefix,
            } => {
                let name = &intended.name;
                let under = name == prefix
                    || (name.starts_with(prefix.as_str())
                        && name.as_bytes().get(prefix.len()) == Some(&b'/'));
                let remapped = if under {
                    let s = intended.to_string();
                    DockerRef::parse(&format!("{signed_prefix}{}", &s[prefix.len()..]))?
                } else {
                    intended.clone()
                };
                repo_digest_or_exact(&remapped, &sig)
            }
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "the signature's identity {signed} is not accepted for {intended} (signedIdentity {self})"
            ))
        }
    }
}

fn repo_digest_or_exact(intended: &DockerRef, sig: &DockerRef) -> bool {
    if sig.is_name_only() {
        return false;
    }
    if intended.tag.is_some() {
        sig.to_string() == intended.to_string()
    } else if intended.digest.is_some() {
        sig.name == intended.name
    } else {
        false
    }
}

#[cfg(test)]
mod tests {
    use crate::policy::test_helpers::*;
    use crate::policy::{DockerRef, SignedIdentity};

    #[test]
    fn identities() {
        let d = format!("sha256:{}", "b".repeat(64));
        let tagged = r("h:5000/os:v1");
        let digested = r(&format!("h:5000/os@{d}"));
        let ok = |i: &SignedIdentity, intended: &DockerRef, s: &str| i.check(intended, s).is_ok();
        use SignedIdentity::*;
        assert!(ok(&MatchRepoDigestOrExact {}, &tagged, "h:5000/os:v1"));
        assert!(!ok(&MatchRepoDigestOrExact {}, &tagged, "h:5000/os:v2"));
        assert!(!ok(&MatchRepoDigestOrExact {}, &tagged, "h:5000/os"));
        assert!(ok(&MatchRepoDigestOrExact {}, &digested, "h:5000/os:v7"));
        assert!(!ok(
            &MatchRepoDigestOrExact {},
            &digested,
            "h:5000/other:v7"
        ));
        assert!(ok(&MatchExact {}, &tagged, "h:5000/os:v1"));
        assert!(!ok(&MatchExact {}, &digested, "h:5000/os:v1"));
        assert!(ok(&MatchRepository {}, &tagged, "h:5000/os:v9"));
        assert!(ok(&MatchRepository {}, &tagged, "h:5000/os"));
        assert!(!ok(&MatchRepository {}, &tagged, "h:5001/os:v1"));
        let er = ExactReference {
            docker_reference: "q.io/os:v1".into(),
        };
        assert!(ok(&er, &tagged, "q.io/os:v1"));
        assert!(!ok(&er, &tagged, "h:5000/os:v1"));
        let erepo = ExactRepository {
            docker_repository: "q.io/os".into(),
        };
        assert!(ok(&erepo, &tagged, "q.io/os:anything"));
        assert!(!ok(&erepo, &tagged, "q.io/os2:v1"));
        let remap = RemapIdentity {
            prefix: "h:5000".into(),
            signed_prefix: "q.io/mirror".into(),
        };
        assert!(ok(&remap, &tagged, "q.io/mirror/os:v1"));
        assert!(!ok(&remap, &tagged, "h:5000/os:v1"));
        assert!(!ok(&MatchRepoDigestOrExact {}, &tagged, "not a reference"));
        // Normalization: docker.io short names.
        assert!(ok(
            &MatchRepoDigestOrExact {},
            &r("docker.io/library/busybox:1"),
            "busybox:1"
        ));
    }
}

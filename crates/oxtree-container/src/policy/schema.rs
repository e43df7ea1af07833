//! The policy's JSON as serde reads it, as strict as containers/image
//! (unknown or repeated keys, empty requirement lists and unknown types
//! are errors), its validation, and the scope lookup for the `docker`
//! transport.

use super::{DockerRef, MAX_POLICY};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// A parsed policy.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub default: Requirements,
    #[serde(default)]
    pub transports: UniqueMap<UniqueMap<Requirements>>,
}

/// A JSON object whose keys must not repeat (serde's maps keep the last).
#[derive(Clone, Debug)]
pub struct UniqueMap<V>(pub BTreeMap<String, V>);

impl<V> Default for UniqueMap<V> {
    fn default() -> Self {
        UniqueMap(BTreeMap::new())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for UniqueMap<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V_<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for V_<V> {
            type Value = UniqueMap<V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut a: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut m = BTreeMap::new();
                while let Some(k) = a.next_key::<String>()? {
                    if m.contains_key(&k) {
                        return Err(serde::de::Error::custom(format!("repeated key {k:?}")));
                    }
                    let v = a.next_value()?;
                    m.insert(k, v);
                }
                Ok(UniqueMap(m))
            }
        }
        d.deserialize_map(V_(std::marker::PhantomData))
    }
}

/// A non-empty list of requirements, all of which must accept an image.
#[derive(Clone, Debug)]
pub struct Requirements(pub Vec<Requirement>);

impl<'de> Deserialize<'de> for Requirements {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let v = Vec::<Requirement>::deserialize(d)?;
        if v.is_empty() {
            return Err(serde::de::Error::custom(
                "a list of requirements must not be empty",
            ));
        }
        Ok(Requirements(v))
    }
}

/// One requirement (`type`).
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum Requirement {
    #[serde(rename = "insecureAcceptAnything")]
    InsecureAcceptAnything {},
    #[serde(rename = "reject")]
    Reject {},
    /// GPG simple signing: parsed, not supported.
    #[serde(rename = "signedBy", rename_all = "camelCase")]
    SignedBy {
        key_type: String,
        key_path: Option<String>,
        key_paths: Option<Vec<String>>,
        key_data: Option<String>,
        signed_identity: Option<SignedIdentity>,
    },
    /// Parsed, not supported.
    #[serde(rename = "signedBaseLayer", rename_all = "camelCase")]
    SignedBaseLayer { base_layer_identity: SignedIdentity },
    #[serde(rename = "sigstoreSigned")]
    SigstoreSigned(SigstoreSigned),
}

/// `sigstoreSigned`: exactly one source of trust.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SigstoreSigned {
    pub key_path: Option<PathBuf>,
    pub key_paths: Option<Vec<PathBuf>>,
    /// Base64 of a PEM public key.
    pub key_data: Option<String>,
    pub key_datas: Option<Vec<String>>,
    pub fulcio: Option<serde_json::Value>,
    pub pki: Option<serde_json::Value>,
    pub rekor_public_key_path: Option<serde_json::Value>,
    pub rekor_public_key_paths: Option<serde_json::Value>,
    pub rekor_public_key_data: Option<serde_json::Value>,
    pub rekor_public_key_datas: Option<serde_json::Value>,
    #[serde(default)]
    pub signed_identity: SignedIdentity,
}

/// Which identities (a signature's `docker-reference`) are accepted.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum SignedIdentity {
    /// The image's reference exactly (tags only).
    #[serde(rename = "matchExact")]
    MatchExact {},
    /// The image's reference exactly when it has a tag; the same
    /// repository when it names a digest.
    #[serde(rename = "matchRepoDigestOrExact")]
    MatchRepoDigestOrExact {},
    /// The same repository.
    #[serde(rename = "matchRepository")]
    MatchRepository {},
    /// Exactly this reference.
    #[serde(rename = "exactReference", rename_all = "camelCase")]
    ExactReference { docker_reference: String },
    /// This repository.
    #[serde(rename = "exactRepository", rename_all = "camelCase")]
    ExactRepository { docker_repository: String },
    /// `matchRepoDigestOrExact` after the image's `prefix` is replaced by
    /// `signedPrefix`.
    #[serde(rename = "remapIdentity", rename_all = "camelCase")]
    RemapIdentity {
        prefix: String,
        signed_prefix: String,
    },
}

impl Default for SignedIdentity {
    fn default() -> Self {
        SignedIdentity::MatchRepoDigestOrExact {}
    }
}

impl fmt::Display for SignedIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignedIdentity::MatchExact {} => f.write_str("matchExact"),
            SignedIdentity::MatchRepoDigestOrExact {} => f.write_str("matchRepoDigestOrExact"),
            SignedIdentity::MatchRepository {} => f.write_str("matchRepository"),
            SignedIdentity::ExactReference { docker_reference } => {
                write!(f, "exactReference {docker_reference}")
            }
            SignedIdentity::ExactRepository { docker_repository } => {
                write!(f, "exactRepository {docker_repository}")
            }
            SignedIdentity::RemapIdentity {
                prefix,
                signed_prefix,
            } => write!(f, "remapIdentity {prefix} -> {signed_prefix}"),
        }
    }
}

impl Policy {
    /// Parse and check a policy's bytes.
    pub fn parse(bytes: &[u8]) -> std::result::Result<Policy, String> {
        if bytes.len() > MAX_POLICY {
            return Err(format!("over {MAX_POLICY} bytes"));
        }
        let p: Policy = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        let all = p.default.0.iter().chain(
            p.transports
                .0
                .values()
                .flat_map(|s| s.0.values().flat_map(|r| &r.0)),
        );
        for r in all {
            r.validate()?;
        }
        Ok(p)
    }

    /// Is the default exactly `[insecureAcceptAnything]`? ostree-ext
    /// refuses `ostree-image-signed:` with such a policy: "signed" would
    /// accept anything.
    pub fn default_is_insecure(&self) -> bool {
        matches!(
            self.default.0.as_slice(),
            [Requirement::InsecureAcceptAnything {}]
        )
    }

    /// The requirements for the registry image `r` and the scope they
    /// came from (`transports.docker` most specific first, then
    /// `default`).
    pub fn requirements_for(
        &self,
        r: &DockerRef,
    ) -> std::result::Result<(String, &Requirements), String> {
        if let Some(scopes) = self.transports.0.get("docker") {
            let id = r.identity()?;
            for s in std::iter::once(id)
                .chain(r.namespaces())
                .chain([String::new()])
            {
                if let Some(req) = scopes.0.get(&s) {
                    return Ok((format!("transports.docker {s:?}"), req));
                }
            }
        }
        Ok(("default".into(), &self.default))
    }
}

impl Requirement {
    fn validate(&self) -> std::result::Result<(), String> {
        match self {
            Requirement::SigstoreSigned(s) => {
                let sources = [
                    s.key_path.is_some(),
                    s.key_paths.is_some(),
                    s.key_data.is_some(),
                    s.key_datas.is_some(),
                    s.fulcio.is_some(),
                    s.pki.is_some(),
                ];
                if sources.iter().filter(|x| **x).count() != 1 {
                    return Err(
                        "sigstoreSigned: exactly one of keyPath, keyPaths, keyData, \
                                keyDatas, fulcio and pki must be specified"
                            .into(),
                    );
                }
                if s.key_paths.as_ref().is_some_and(|v| v.is_empty())
                    || s.key_datas.as_ref().is_some_and(|v| v.is_empty())
                {
                    return Err("sigstoreSigned: keyPaths or keyDatas has no entries".into());
                }
                s.signed_identity.validate()
            }
            Requirement::SignedBy {
                signed_identity: Some(i),
                ..
            } => i.validate(),
            Requirement::SignedBaseLayer {
                base_layer_identity,
            } => base_layer_identity.validate(),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::test_helpers::*;
    use std::path::Path;

    #[test]
    fn parsing() {
        let p = policy(
            r#"{"default":[{"type":"reject"}],"transports":{"docker":{
                "h:5000/os":[{"type":"sigstoreSigned","keyPath":"/k.pub"}],
                "h:5000/x":[{"type":"sigstoreSigned","keyData":"AAAA","signedIdentity":{"type":"matchRepository"}}],
                "h:5000/y":[{"type":"sigstoreSigned","keyPaths":["/a","/b"],"signedIdentity":{"type":"exactReference","dockerReference":"h:5000/z:v1"}}],
                "h:5000/r":[{"type":"sigstoreSigned","keyPath":"/a","signedIdentity":{"type":"remapIdentity","prefix":"h:5000","signedPrefix":"q.io/p"}}],
                "reg.example.com":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/gpg"}],
                "f.io":[{"type":"sigstoreSigned","fulcio":{"caPath":"/x","oidcIssuer":"i","subjectEmail":"e"},"rekorPublicKeyPath":"/r"}],
                "b.io":[{"type":"signedBaseLayer","baseLayerIdentity":{"type":"exactRepository","dockerRepository":"b.io/x"}}],
                "":[{"type":"insecureAcceptAnything"}]},
              "docker-daemon":{"":[{"type":"insecureAcceptAnything"}]}}}"#,
        );
        assert!(!p.default_is_insecure());
        let Requirement::SigstoreSigned(s) = &p.transports.0["docker"].0["h:5000/os"].0[0] else {
            panic!()
        };
        assert_eq!(s.key_path.as_deref(), Some(Path::new(KEY)));
        assert_eq!(s.signed_identity, SignedIdentity::MatchRepoDigestOrExact {});
        assert!(policy(r#"{"default":[{"type":"insecureAcceptAnything"}]}"#).default_is_insecure());
        assert!(!policy(
            r#"{"default":[{"type":"insecureAcceptAnything"},{"type":"insecureAcceptAnything"}]}"#
        )
        .default_is_insecure());

        for bad in [
            "",
            "{}",
            r#"{"default":[]}"#,
            r#"{"default":[{"type":"nope"}]}"#,
            r#"{"default":[{"type":"reject","x":1}]}"#,
            r#"{"default":[{"type":"reject"}],"extra":1}"#,
            r#"{"default":[{"type":"reject"}],"default":[{"type":"reject"}]}"#,
            r#"{"default":[{"type":"reject"}],"transports":{"docker":{"a":[{"type":"reject"}],"a":[{"type":"reject"}]}}}"#,
            r#"{"default":[{"type":"reject"}],"transports":{"docker":{"a":[]}}}"#,
            r#"{"default":[{"type":"sigstoreSigned"}]}"#,
            r#"{"default":[{"type":"sigstoreSigned","keyPath":"/a","keyData":"AA"}]}"#,
            r#"{"default":[{"type":"sigstoreSigned","keyPaths":[]}]}"#,
            r#"{"default":[{"type":"sigstoreSigned","keyPath":"/a","bogus":1}]}"#,
            r#"{"default":[{"type":"sigstoreSigned","keyPath":"/a","signedIdentity":{"type":"matchWhatever"}}]}"#,
            r#"{"default":[{"type":"sigstoreSigned","keyPath":"/a","signedIdentity":{"type":"matchExact","x":1}}]}"#,
            r#"{"default":[{"type":"sigstoreSigned","keyPath":"/a","signedIdentity":{"type":"exactReference","dockerReference":"h.io/os"}}]}"#,
            r#"{"default":[{"type":"sigstoreSigned","keyPath":"/a","signedIdentity":{"type":"exactRepository","dockerRepository":"H.io/OS"}}]}"#,
            r#"{"default":[{"type":"reject"}],"transports":[]}"#,
        ] {
            assert!(Policy::parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn scopes() {
        let p = policy(
            r#"{"default":[{"type":"reject"}],"transports":{"docker":{
                "h:5000/ns/os:v1":[{"type":"reject"}],
                "h:5000/ns/os":[{"type":"reject"}],
                "h:5000/ns":[{"type":"reject"}],
                "h:5000":[{"type":"reject"}],
                "*.example.com":[{"type":"reject"}],
                "":[{"type":"insecureAcceptAnything"}]}}}"#,
        );
        let scope = |s: &str| p.requirements_for(&r(s)).unwrap().0;
        assert_eq!(
            scope("h:5000/ns/os:v1"),
            r#"transports.docker "h:5000/ns/os:v1""#
        );
        assert_eq!(
            scope("h:5000/ns/os:v2"),
            r#"transports.docker "h:5000/ns/os""#
        );
        assert_eq!(
            scope("h:5000/ns/other:v1"),
            r#"transports.docker "h:5000/ns""#
        );
        assert_eq!(scope("h:5000/else:v1"), r#"transports.docker "h:5000""#);
        assert_eq!(
            scope("reg.example.com/a:v1"),
            r#"transports.docker "*.example.com""#
        );
        assert_eq!(scope("other.io/a:v1"), r#"transports.docker """#);
        let p = policy(
            r#"{"default":[{"type":"reject"}],"transports":{"oci":{"":[{"type":"insecureAcceptAnything"}]}}}"#,
        );
        assert_eq!(p.requirements_for(&r("h:5000/a:v1")).unwrap().0, "default");
    }
}

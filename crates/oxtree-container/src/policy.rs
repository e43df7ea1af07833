//! containers-policy.json(5): which images an `ostree-image-signed:` pull
//! accepts. This module owns the policy file: where it is
//! (`/etc/containers/policy.json`, or `$OXTREE_CONTAINERS_POLICY`), its
//! parsing with serde (as strict as containers/image: unknown or repeated
//! keys, empty requirement lists and unknown types are errors), the scope
//! lookup for the `docker` transport (the image's `NAME:TAG` or
//! `NAME@DIGEST`, then `NAME`, its parent namespaces, `HOST[:PORT]`, the
//! `*.DOMAIN` wildcards, then `""`, then `default`), the docker reference
//! grammar the identity rules compare, and the decision: every
//! requirement of the scope must accept the image.
//!
//! Supported requirements: `insecureAcceptAnything`, `reject`, and
//! `sigstoreSigned` with public keys (`keyPath`, `keyPaths`, `keyData`,
//! `keyDatas`) and any `signedIdentity`. A policy that names `signedBy`
//! (GPG simple signing), `signedBaseLayer`, or sigstore's Fulcio, Rekor
//! or PKI roots still loads; applying such a requirement to an image is
//! refused as not supported. The signatures themselves are `sigstore`'s.

use crate::error::{ContainerError, IoContext, Result};
use crate::sigstore::{self, Attachment};
use base64::Engine;
use p256::ecdsa::VerifyingKey;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
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

impl SignedIdentity {
    fn validate(&self) -> std::result::Result<(), String> {
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

    fn r(s: &str) -> DockerRef {
        DockerRef::parse(s).unwrap()
    }

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

    const KEY: &str = "/k.pub";

    fn policy(s: &str) -> Policy {
        Policy::parse(s.as_bytes()).unwrap()
    }

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

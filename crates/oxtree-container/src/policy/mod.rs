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
//!
//! One file per concept: `schema` the policy's JSON and its validation
//! and scope lookup; `docker_ref` the docker reference grammar;
//! `identity` the `signedIdentity` rules; `file` where the policy file is,
//! reading it, and the decision for an image.

mod docker_ref;
mod file;
mod identity;
mod schema;

pub use docker_ref::DockerRef;
pub use file::{default_path, PolicyFile, DEFAULT_PATH, MAX_POLICY, PATH_ENV};
pub use schema::{Policy, Requirement, Requirements, SignedIdentity, SigstoreSigned, UniqueMap};

/// What the tests of several of these files share.
#[cfg(test)]
mod test_helpers {
    use super::{DockerRef, Policy};

    pub(super) fn r(s: &str) -> DockerRef {
        DockerRef::parse(s).unwrap()
    }

    pub(super) const KEY: &str = "/k.pub";

    pub(super) fn policy(s: &str) -> Policy {
        Policy::parse(s.as_bytes()).unwrap()
    }
}

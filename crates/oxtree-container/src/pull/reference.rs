//! ostree-ext's image references (`ostree-unverified-registry:`,
//! `ostree-unverified-image:`, `ostree-image-signed:`, or a bare transport
//! reference): which image, and how a pull verifies it.

use crate::error::{ContainerError, Result};
use crate::imgref::ImageRef;
use std::fmt;

/// How a pull checks an image's signatures (ostree-ext's signature
/// source, less its ostree-remote form).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SigVerify {
    /// `ostree-unverified-registry:`, `ostree-unverified-image:` or a
    /// bare transport reference: not checked.
    Unverified,
    /// `ostree-image-signed:`: as the containers-policy.json says.
    Policy,
}

/// An ostree-ext image reference: the image and how it is verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OstreeImageRef {
    pub sigverify: SigVerify,
    pub imgref: ImageRef,
}

impl fmt::Display for OstreeImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.sigverify, &self.imgref) {
            (SigVerify::Policy, r) => write!(f, "ostree-image-signed:{r}"),
            (SigVerify::Unverified, ImageRef::Registry { reference }) => {
                write!(f, "ostree-unverified-registry:{reference}")
            }
            (SigVerify::Unverified, r) => write!(f, "ostree-unverified-image:{r}"),
        }
    }
}

/// `registry:X` is ostree-ext's other name for `docker://X`.
fn parse_transport(r: &str) -> Result<ImageRef> {
    match r.strip_prefix("registry:") {
        Some(r) => ImageRef::parse(&format!("docker://{r}")),
        None => ImageRef::parse(r),
    }
}

/// `ostree-unverified-registry:HOST/NAME:TAG`, `ostree-unverified-image:`
/// followed by `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]` or `docker://…`,
/// `ostree-image-signed:docker://HOST/NAME:TAG`, or a transport reference
/// bare (unverified).
pub fn parse_ostree_imgref(s: &str) -> Result<OstreeImageRef> {
    let unverified = |imgref| OstreeImageRef {
        sigverify: SigVerify::Unverified,
        imgref,
    };
    if let Some(r) = s.strip_prefix("ostree-unverified-registry:") {
        return Ok(unverified(ImageRef::parse(&format!("docker://{r}"))?));
    }
    if let Some(r) = s.strip_prefix("ostree-unverified-image:") {
        return Ok(unverified(parse_transport(r)?));
    }
    if let Some(r) = s.strip_prefix("ostree-image-signed:") {
        let imgref = parse_transport(r)?;
        if !matches!(imgref, ImageRef::Registry { .. }) {
            return Err(ContainerError::ImageRef {
                reference: s.to_string(),
                reason: "signatures are verified for registry images (docker://HOST/NAME:TAG) \
                         only; an OCI layout or archive has none"
                    .into(),
            });
        }
        return Ok(OstreeImageRef {
            sigverify: SigVerify::Policy,
            imgref,
        });
    }
    if s.starts_with("ostree-") {
        return Err(ContainerError::ImageRef {
            reference: s.to_string(),
            reason: "verification by an ostree remote's keys is not supported yet: use \
                     ostree-image-signed: (a containers-policy.json), \
                     ostree-unverified-registry: or ostree-unverified-image:"
                .into(),
        });
    }
    Ok(unverified(ImageRef::parse(s)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ostree_image_references() {
        let r = |s: &str| parse_ostree_imgref(s).map(|r| (r.sigverify, r.imgref.to_string()));
        use SigVerify::*;
        for s in [
            "ostree-unverified-registry:h:5000/os:v1",
            "ostree-unverified-image:docker://h:5000/os:v1",
            "ostree-unverified-image:registry:h:5000/os:v1",
            "docker://h:5000/os:v1",
        ] {
            assert_eq!(
                r(s).unwrap(),
                (Unverified, "docker://h:5000/os:v1".into()),
                "{s}"
            );
        }
        for s in [
            "ostree-image-signed:docker://h:5000/os:v1",
            "ostree-image-signed:registry:h:5000/os:v1",
        ] {
            assert_eq!(
                r(s).unwrap(),
                (Policy, "docker://h:5000/os:v1".into()),
                "{s}"
            );
        }
        assert_eq!(
            r("ostree-unverified-image:oci:/x:v1").unwrap(),
            (Unverified, "oci:/x:v1".into())
        );
        // Display gives the ostree-ext form back.
        for s in [
            "ostree-unverified-registry:h:5000/os:v1",
            "ostree-unverified-image:oci:/x:v1",
            "ostree-image-signed:docker://h:5000/os:v1",
        ] {
            assert_eq!(parse_ostree_imgref(s).unwrap().to_string(), s);
        }
        let e = parse_ostree_imgref("ostree-image-signed:oci:/x:v1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("registry images"), "{e}");
        for s in [
            "ostree-remote-image:origin:docker://h/os:v1",
            "ostree-remote-registry:origin:h/os:v1",
        ] {
            let e = parse_ostree_imgref(s).unwrap_err().to_string();
            assert!(e.contains("not supported yet"), "{e}");
        }
    }
}

//! Sigstore image signatures as cosign and containers/image keep them in a
//! registry, and their check. This module owns the untrusted bytes of a
//! signature: the attachment manifest (tag `sha256-HEX.sig` beside the
//! image, one layer per signature), the payload a layer holds (the
//! "simple signing" JSON naming an identity and a manifest digest), the
//! base64 ECDSA signature in the layer's annotation, and the public keys
//! (PEM, PKIX) a policy names. `policy` decides which signatures an image
//! needs; the fetching is `pull`'s.
//!
//! A signature is accepted only when, in this order: it verifies under
//! one of the keys (ECDSA P-256, SHA-256, ASN.1 DER), its payload parses
//! strictly (exactly the fields cosign writes, the right `type`), the
//! payload's `docker-manifest-digest` is the digest of the manifest that
//! was fetched, and its `docker-reference` passes the policy's identity
//! rule.

use base64::Engine;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use serde::Deserialize;
use std::collections::HashMap;

/// The media type of a layer holding a signature payload.
pub const SIGNATURE_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The layer annotation holding the base64 signature of the payload.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The payload's `critical.type`.
pub const SIGNATURE_TYPE: &str = "cosign container image signature";

/// The largest attachment manifest accepted.
pub const MAX_ATTACHMENT_MANIFEST: usize = 1 << 20;
/// The largest payload fetched (cosign's are a few hundred bytes).
pub const MAX_PAYLOAD: u64 = 256 << 10;
/// The most attachments (layers) looked at for one image.
pub const MAX_ATTACHMENTS: usize = 64;
/// The largest public key accepted (a PEM P-256 key is under 200 bytes).
pub const MAX_KEY: usize = 64 << 10;

/// The tag of the attachments of the image whose manifest has `digest`:
/// `sha256:HEX` becomes `sha256-HEX.sig`.
pub fn attachment_tag(digest: &str) -> Result<String, String> {
    let hex = crate::oci::digest_hex(digest).map_err(|e| e.to_string())?;
    Ok(format!("sha256-{hex}.sig"))
}

/// One layer of an attachment manifest: what it is, where its blob is,
/// and its annotations (the signature among them).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttachmentLayer {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
}

#[derive(Deserialize)]
struct AttachmentManifest {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(default)]
    layers: Vec<AttachmentLayer>,
}

/// The layers of an attachment manifest (an OCI image manifest), at most
/// [`MAX_ATTACHMENTS`] of them.
pub fn parse_attachment_manifest(bytes: &[u8]) -> Result<Vec<AttachmentLayer>, String> {
    if bytes.len() > MAX_ATTACHMENT_MANIFEST {
        return Err(format!(
            "the signature manifest is over {MAX_ATTACHMENT_MANIFEST} bytes"
        ));
    }
    let m: AttachmentManifest = serde_json::from_slice(bytes)
        .map_err(|e| format!("the signature manifest is not an OCI manifest: {e}"))?;
    if m.schema_version != 2 {
        return Err(format!(
            "the signature manifest has schemaVersion {}",
            m.schema_version
        ));
    }
    if m.layers.len() > MAX_ATTACHMENTS {
        return Err(format!(
            "the signature manifest has {} layers, more than {MAX_ATTACHMENTS}",
            m.layers.len()
        ));
    }
    Ok(m.layers)
}

/// An attachment as fetched: its layer and the payload blob (verified
/// against the layer's digest by the fetcher).
#[derive(Clone, Debug)]
pub struct Attachment {
    pub layer: AttachmentLayer,
    pub payload: Vec<u8>,
}

/// What a signature payload claims (trusted only once its signature
/// verified).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payload {
    /// `critical.identity.docker-reference`
    pub docker_reference: String,
    /// `critical.image.docker-manifest-digest`
    pub manifest_digest: String,
    /// `optional.creator`, when there.
    pub creator: Option<String>,
    /// `optional.timestamp`, when there.
    pub timestamp: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPayload {
    critical: Critical,
    // Required, may be null (then no optional fields).
    optional: serde_json::Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Critical {
    #[serde(rename = "type")]
    kind: String,
    image: CriticalImage,
    identity: CriticalIdentity,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CriticalImage {
    #[serde(rename = "docker-manifest-digest")]
    digest: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CriticalIdentity {
    #[serde(rename = "docker-reference")]
    reference: String,
}

/// Parse a payload strictly: `critical` with exactly `type`, `image`
/// (`docker-manifest-digest`) and `identity` (`docker-reference`), and
/// `optional` (null or an object; `creator` a string and `timestamp` an
/// integer when present, anything else ignored). No key may repeat.
pub fn parse_payload(bytes: &[u8]) -> Result<Payload, String> {
    if bytes.len() as u64 > MAX_PAYLOAD {
        return Err(format!("the payload is over {MAX_PAYLOAD} bytes"));
    }
    let raw: RawPayload = serde_json::from_slice(bytes).map_err(|e| format!("payload: {e}"))?;
    if raw.critical.kind != SIGNATURE_TYPE {
        return Err(format!(
            "payload: unrecognized signature type {:?}",
            raw.critical.kind
        ));
    }
    let d = &raw.critical.image.digest;
    let valid_digest = match d.split_once(':') {
        Some((alg, hex)) => {
            !alg.is_empty()
                && alg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'.' | b'_' | b'-'))
                && hex.len() >= 32
                && hex.bytes().all(|b| b.is_ascii_hexdigit())
        }
        None => false,
    };
    if !valid_digest {
        return Err(format!("payload: invalid docker-manifest-digest {d:?}"));
    }
    let (creator, timestamp) = match &raw.optional {
        serde_json::Value::Null => (None, None),
        serde_json::Value::Object(o) => {
            let creator = match o.get("creator") {
                None => None,
                Some(serde_json::Value::String(s)) => Some(s.clone()),
                Some(_) => return Err("payload: optional.creator is not a string".into()),
            };
            let timestamp = match o.get("timestamp") {
                None => None,
                Some(v) => Some(integer(v).ok_or("payload: optional.timestamp is not an integer")?),
            };
            (creator, timestamp)
        }
        _ => return Err("payload: optional is neither null nor an object".into()),
    };
    // serde_json keeps the last of a repeated key in a Map (`optional`):
    // refuse repeats anywhere, as the strict fields above do.
    no_repeated_keys(bytes)?;
    Ok(Payload {
        docker_reference: raw.critical.identity.reference,
        manifest_digest: raw.critical.image.digest,
        creator,
        timestamp,
    })
}

/// A JSON number that is an integer (`1`, or `1.0` as Go writes large
/// ones in floating point).
fn integer(v: &serde_json::Value) -> Option<i64> {
    if let Some(i) = v.as_i64() {
        return Some(i);
    }
    let f = v.as_f64()?;
    (f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64).then_some(f as i64)
}

/// Refuse a JSON document in which some object repeats a key.
fn no_repeated_keys(bytes: &[u8]) -> Result<(), String> {
    struct Check;
    impl<'de> serde::de::DeserializeSeed<'de> for Check {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(Check)
        }
    }
    impl<'de> serde::de::Visitor<'de> for Check {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("JSON")
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<(), A::Error> {
            while a.next_element_seed(Check)?.is_some() {}
            Ok(())
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<(), A::Error> {
            let mut seen = std::collections::HashSet::new();
            while let Some(k) = a.next_key::<String>()? {
                if !seen.insert(k.clone()) {
                    return Err(serde::de::Error::custom(format!("repeated key {k:?}")));
                }
                a.next_value_seed(Check)?;
            }
            Ok(())
        }
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde::de::DeserializeSeed::deserialize(Check, &mut de).map_err(|e| format!("payload: {e}"))
}

/// A public key from PEM ("PUBLIC KEY", PKIX): ECDSA P-256 only.
pub fn parse_public_key(pem: &[u8]) -> Result<VerifyingKey, String> {
    use p256::pkcs8::DecodePublicKey;
    if pem.len() > MAX_KEY {
        return Err(format!("a public key is over {MAX_KEY} bytes"));
    }
    let text = std::str::from_utf8(pem).map_err(|_| "a public key is not PEM text".to_string())?;
    VerifyingKey::from_public_key_pem(text.trim()).map_err(|e| {
        format!("not a PEM \"PUBLIC KEY\" of an ECDSA P-256 key (the only kind supported): {e}")
    })
}

/// Check the base64 ASN.1 DER ECDSA signature `b64` of `payload` under
/// any of `keys`.
pub fn verify_signature(keys: &[VerifyingKey], payload: &[u8], b64: &str) -> Result<(), String> {
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| format!("the signature is not base64: {e}"))?;
    let sig = Signature::from_der(&der)
        .map_err(|_| "the signature is not an ASN.1 DER ECDSA signature".to_string())?;
    // Go's ECDSA signers do not normalize s; (r, s) and (r, n-s) verify
    // alike, so check the low-s form.
    let sig = sig.normalize_s().unwrap_or(sig);
    if keys.iter().any(|k| k.verify(payload, &sig).is_ok()) {
        Ok(())
    } else {
        Err(format!(
            "cryptographic signature verification failed under {} key{}",
            keys.len(),
            if keys.len() == 1 { "" } else { "s" }
        ))
    }
}

/// Check one attachment: a signature layer whose payload verifies under
/// `keys`, names `manifest_digest`, and whose identity `identity_ok`
/// accepts (it returns why not).
pub fn verify_attachment(
    keys: &[VerifyingKey],
    a: &Attachment,
    manifest_digest: &str,
    identity_ok: &dyn Fn(&str) -> Result<(), String>,
) -> Result<Payload, String> {
    let b64 = a
        .layer
        .annotations
        .get(SIGNATURE_ANNOTATION)
        .ok_or_else(|| format!("no {SIGNATURE_ANNOTATION} annotation"))?;
    verify_signature(keys, &a.payload, b64)?;
    let p = parse_payload(&a.payload)?;
    if p.manifest_digest != manifest_digest {
        return Err(format!(
            "the signature is for manifest {}, not {manifest_digest}",
            p.manifest_digest
        ));
    }
    identity_ok(&p.docker_reference)?;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Signer;
    use p256::ecdsa::SigningKey;
    use p256::pkcs8::{EncodePublicKey, LineEnding};

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn payload(digest: &str, reference: &str) -> Vec<u8> {
        format!(
            r#"{{"critical":{{"identity":{{"docker-reference":"{reference}"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":{{"creator":"t","timestamp":1700000000}}}}"#
        )
        .into_bytes()
    }

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_slice(&[seed; 32]).unwrap()
    }

    fn sign(k: &SigningKey, data: &[u8]) -> String {
        let s: Signature = k.sign(data);
        base64::engine::general_purpose::STANDARD.encode(s.to_der().as_bytes())
    }

    fn attachment(k: &SigningKey, payload: Vec<u8>) -> Attachment {
        let mut annotations = HashMap::new();
        annotations.insert(SIGNATURE_ANNOTATION.to_string(), sign(k, &payload));
        Attachment {
            layer: AttachmentLayer {
                media_type: SIGNATURE_MEDIA_TYPE.into(),
                digest: String::new(),
                size: payload.len() as u64,
                annotations,
            },
            payload,
        }
    }

    #[test]
    fn tags() {
        assert_eq!(
            attachment_tag(DIGEST).unwrap(),
            format!("sha256-{}.sig", &DIGEST[7..])
        );
        for bad in ["sha256:ab", "sha512:00", "", &DIGEST.to_uppercase()] {
            assert!(attachment_tag(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn payloads() {
        let p = parse_payload(&payload(DIGEST, "h:5000/os:v1")).unwrap();
        assert_eq!(p.docker_reference, "h:5000/os:v1");
        assert_eq!(p.manifest_digest, DIGEST);
        assert_eq!(p.creator.as_deref(), Some("t"));
        assert_eq!(p.timestamp, Some(1700000000));
        let ok = r#"{"critical":{"identity":{"docker-reference":"a/b:c"},"image":{"docker-manifest-digest":"sha256:0123456789abcdef0123456789abcdef"},"type":"cosign container image signature"},"optional":null}"#;
        assert!(parse_payload(ok.as_bytes()).is_ok());
        for bad in [
            // wrong type
            ok.replace(
                "cosign container image signature",
                "atomic container signature",
            ),
            // extra critical field
            ok.replace(r#""type""#, r#""extra":1,"type""#),
            // missing optional
            ok.replace(r#","optional":null"#, ""),
            // extra top-level field
            ok.replace(r#""optional":null"#, r#""optional":null,"x":1"#),
            // repeated key
            ok.replace(
                r#""optional":null"#,
                r#""optional":{"creator":"a","creator":"b"}"#,
            ),
            ok.replace(r#""optional":null"#, r#""optional":{"timestamp":1.5}"#),
            ok.replace(r#""optional":null"#, r#""optional":[]"#),
            ok.replace("sha256:0123456789abcdef0123456789abcdef", "sha256:xyz"),
            ok.replace("sha256:", ""),
            "[]".into(),
            "".into(),
        ] {
            assert!(parse_payload(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_and_signatures() {
        let k = key(7);
        let pem = k.verifying_key().to_public_key_pem(LineEnding::LF).unwrap();
        let vk = parse_public_key(pem.as_bytes()).unwrap();
        assert_eq!(&vk, k.verifying_key());
        assert!(
            parse_public_key(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
                .is_err()
        );
        assert!(parse_public_key(b"junk").is_err());

        let id_ok = |r: &str| {
            if r == "h:5000/os:v1" {
                Ok(())
            } else {
                Err(format!("identity {r}"))
            }
        };
        let good = attachment(&k, payload(DIGEST, "h:5000/os:v1"));
        assert!(verify_attachment(&[vk], &good, DIGEST, &id_ok).is_ok());
        // Another key.
        let other = attachment(&key(9), payload(DIGEST, "h:5000/os:v1"));
        let e = verify_attachment(&[vk], &other, DIGEST, &id_ok).unwrap_err();
        assert!(e.contains("cryptographic"), "{e}");
        // Either of two keys.
        let vk9 = *key(9).verifying_key();
        assert!(verify_attachment(&[vk, vk9], &other, DIGEST, &id_ok).is_ok());
        // Another digest, validly signed.
        let d2 = DIGEST.replace("0123", "3210");
        let e = verify_attachment(
            &[vk],
            &attachment(&k, payload(&d2, "h:5000/os:v1")),
            DIGEST,
            &id_ok,
        )
        .unwrap_err();
        assert!(e.contains("is for manifest"), "{e}");
        // Another identity.
        let e = verify_attachment(
            &[vk],
            &attachment(&k, payload(DIGEST, "h:5000/os:v2")),
            DIGEST,
            &id_ok,
        )
        .unwrap_err();
        assert!(e.contains("identity"), "{e}");
        // A payload changed after signing.
        let mut t = good.clone();
        t.payload = payload(DIGEST, "h:5000/os:v1 ");
        assert!(verify_attachment(&[vk], &t, DIGEST, &id_ok).is_err());
        // No annotation, bad base64, bad DER.
        let mut t = good.clone();
        t.layer.annotations.clear();
        assert!(verify_attachment(&[vk], &t, DIGEST, &id_ok)
            .unwrap_err()
            .contains("annotation"));
        for junk in ["!!", "AAAA"] {
            let mut t = good.clone();
            t.layer
                .annotations
                .insert(SIGNATURE_ANNOTATION.into(), junk.into());
            assert!(verify_attachment(&[vk], &t, DIGEST, &id_ok).is_err());
        }
        // The high-s form of a valid signature verifies too (Go does not
        // normalize).
        let s: Signature = k.sign(&good.payload);
        let (r, s_) = s.split_scalars();
        let high = Signature::from_scalars(r, -*s_).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(high.to_der().as_bytes());
        assert!(verify_signature(&[vk], &good.payload, &b64).is_ok());
    }

    #[test]
    fn attachment_manifests() {
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:1","size":2}},"layers":[{{"mediaType":"{SIGNATURE_MEDIA_TYPE}","digest":"{DIGEST}","size":300,"annotations":{{"{SIGNATURE_ANNOTATION}":"MEUC"}}}}]}}"#
        );
        let l = parse_attachment_manifest(m.as_bytes()).unwrap();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].media_type, SIGNATURE_MEDIA_TYPE);
        assert_eq!(l[0].annotations[SIGNATURE_ANNOTATION], "MEUC");
        assert!(parse_attachment_manifest(b"{\"schemaVersion\":1}").is_err());
        let many = format!(
            r#"{{"schemaVersion":2,"layers":[{}]}}"#,
            vec![r#"{"mediaType":"x","digest":"d","size":1}"#; MAX_ATTACHMENTS + 1].join(",")
        );
        assert!(parse_attachment_manifest(many.as_bytes()).is_err());
    }
}

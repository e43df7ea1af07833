//! The FleetLock wire format (Zincati's `docs/development/fleetlock/
//! protocol.md`): request bodies, the mandatory header, error bodies, and
//! the one parser of untrusted request bytes ([`parse_request`]), which
//! the server calls for every lock request and `fuzz/` exercises.
//!
//! oxtree adds one optional top-level object, `rollout`, for canary
//! rollouts (docs/FLEETLOCK.md). Plain FleetLock peers never send it and
//! ignore it (airlock and Zincati drop unknown JSON keys).

use serde::{Deserialize, Serialize};

/// The header every lock and unlock request carries, with value `true`.
pub const PROTOCOL_HEADER: &str = "fleet-lock-protocol";
/// Lock a reboot slot (RecursiveLock).
pub const PRE_REBOOT_PATH: &str = "/v1/pre-reboot";
/// Release a reboot slot (UnlockIfHeld).
pub const STEADY_STATE_PATH: &str = "/v1/steady-state";

/// Largest request body the server reads; larger ones get 413.
pub const MAX_BODY: usize = 16 * 1024;
/// Longest accepted client id, group and version, in bytes.
pub const MAX_ID: usize = 256;
pub const MAX_GROUP: usize = 64;
pub const MAX_VERSION: usize = 128;
/// Longest accepted rollback reason, in bytes.
pub const MAX_REASON: usize = 1024;

/// `client_params`: who asks, and in which reboot group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientParams {
    pub id: String,
    pub group: String,
}

/// oxtree's extension: what the node is updating to, or what it rolled
/// back from. See docs/FLEETLOCK.md, "Canary rollouts".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollout {
    /// pre-reboot: the version the node will boot into; steady-state: the
    /// version it runs now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// steady-state only: the node booted `from`, failed, and rolled back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolled_back: Option<RolledBack>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolledBack {
    /// The version that failed.
    pub from: String,
    /// Why, in the node's words (e.g. the failed health check).
    pub reason: String,
}

/// A whole request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub client_params: ClientParams,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
}

/// An error body: `{"kind": …, "value": …}`; `kind` is from a small fixed set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub kind: String,
    pub value: String,
}

/// Why a request was refused before it reached the lock.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProtocolError {
    #[error("missing or wrong '{PROTOCOL_HEADER}' header (must be 'true')")]
    MissingHeader,
    #[error("request body is larger than {MAX_BODY} bytes")]
    TooLarge,
    #[error("malformed request body: {0}")]
    Malformed(String),
    #[error("invalid client identity: {0}")]
    InvalidIdentity(String),
    #[error("invalid rollout: {0}")]
    InvalidRollout(String),
}

impl ProtocolError {
    /// The `kind` sent to the client (airlock's name where one exists).
    pub fn kind(&self) -> &'static str {
        match self {
            ProtocolError::MissingHeader
            | ProtocolError::Malformed(_)
            | ProtocolError::InvalidIdentity(_) => "invalid_client_identity",
            ProtocolError::TooLarge => "request_too_large",
            ProtocolError::InvalidRollout(_) => "invalid_rollout",
        }
    }
}

/// A group name as the protocol allows it: `^[a-zA-Z0-9.-]+$`, and at most
/// [`MAX_GROUP`] bytes (our limit: group names end up in etcd keys).
pub fn valid_group(group: &str) -> bool {
    !group.is_empty()
        && group.len() <= MAX_GROUP
        && group
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
}

fn check_text(what: &str, s: &str, max: usize) -> Result<(), String> {
    if s.is_empty() {
        return Err(format!("empty {what}"));
    }
    if s.len() > max {
        return Err(format!("{what} longer than {max} bytes"));
    }
    if s.chars().any(char::is_control) {
        return Err(format!("{what} contains control characters"));
    }
    Ok(())
}

/// Validates the header value and parses and checks a request body.
///
/// `header` is the raw value of `fleet-lock-protocol`, if present. Unknown
/// JSON keys are ignored, as airlock does. Never panics.
pub fn parse_request(header: Option<&[u8]>, body: &[u8]) -> Result<Request, ProtocolError> {
    if header.map(|h| h.trim_ascii()) != Some(b"true".as_slice()) {
        return Err(ProtocolError::MissingHeader);
    }
    if body.len() > MAX_BODY {
        return Err(ProtocolError::TooLarge);
    }
    let req: Request =
        serde_json::from_slice(body).map_err(|e| ProtocolError::Malformed(e.to_string()))?;
    let p = &req.client_params;
    check_text("client id", &p.id, MAX_ID).map_err(ProtocolError::InvalidIdentity)?;
    if !valid_group(&p.group) {
        return Err(ProtocolError::InvalidIdentity(format!(
            "group {:?} must match ^[a-zA-Z0-9.-]+$ and be at most {MAX_GROUP} bytes",
            truncate(&p.group, 80)
        )));
    }
    if let Some(r) = &req.rollout {
        if let Some(v) = &r.version {
            check_text("version", v, MAX_VERSION).map_err(ProtocolError::InvalidRollout)?;
        }
        if let Some(rb) = &r.rolled_back {
            check_text("rolled_back.from", &rb.from, MAX_VERSION)
                .map_err(ProtocolError::InvalidRollout)?;
            if rb.reason.len() > MAX_REASON {
                return Err(ProtocolError::InvalidRollout(format!(
                    "rolled_back.reason longer than {MAX_REASON} bytes"
                )));
            }
        }
    }
    Ok(req)
}

/// At most `max` bytes of `s`, cut on a character boundary (for messages
/// that quote client input).
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Option<&[u8]> = Some(b"true");

    #[test]
    fn accepts_zincati_body() {
        let b = br#"{"client_params":{"group":"workers","id":"c988d2509fdf5cdcbed39037c56406fb"}}"#;
        let r = parse_request(T, b).unwrap();
        assert_eq!(r.client_params.group, "workers");
        assert_eq!(r.rollout, None);
        // Unknown keys are ignored, as airlock does.
        let b = br#"{"client_params":{"group":"a","id":"x","extra":1},"more":[]}"#;
        assert!(parse_request(T, b).is_ok());
    }

    #[test]
    fn refuses_bad_input() {
        let ok = br#"{"client_params":{"group":"g","id":"x"}}"#;
        assert_eq!(parse_request(None, ok), Err(ProtocolError::MissingHeader));
        assert_eq!(
            parse_request(Some(b"yes"), ok),
            Err(ProtocolError::MissingHeader)
        );
        for bad in [
            &br#"{"client_params":{"group":"g"}}"#[..],
            br#"{"client_params":{"group":"","id":"x"}}"#,
            br#"{"client_params":{"group":"a/b","id":"x"}}"#,
            br#"{"client_params":{"group":"../x","id":"x"}}"#,
            br#"{"client_params":{"group":"g","id":""}}"#,
            br#"{"client_params":{"group":"g","id":"a\nb"}}"#,
            br#"{"client_params":{"group":"g","id":"x"},"rollout":{"version":""}}"#,
            b"{",
            b"",
            b"null",
        ] {
            assert!(
                parse_request(T, bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let huge = vec![b' '; MAX_BODY + 1];
        assert_eq!(parse_request(T, &huge), Err(ProtocolError::TooLarge));
    }

    #[test]
    fn group_names() {
        assert!(valid_group("default"));
        assert!(valid_group("eu-1.workers"));
        assert!(!valid_group("a_b"));
        assert!(!valid_group(&"a".repeat(MAX_GROUP + 1)));
    }
}

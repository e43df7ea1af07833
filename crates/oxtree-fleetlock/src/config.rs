//! The server's configuration file: airlock's TOML (`[service]`,
//! `[status]`, `[etcd3]`, `[lock]`, `[[lock.groups]]`) with the same
//! defaults where they make sense, plus oxtree's keys (holder leases,
//! canary groups, the admin listener). Every key is listed in
//! docs/FLEETLOCK.md.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::protocol::valid_group;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parsing {path}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

/// One reboot group as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfig {
    pub slots: u64,
    /// Its nodes go first in a rollout (docs/FLEETLOCK.md).
    pub canary: bool,
}

/// A validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The FleetLock listener (`[service] address, port`).
    pub service: SocketAddr,
    /// `/metrics` and `/-/healthy` (`[status]`), when enabled.
    pub status: Option<SocketAddr>,
    /// The admin API (`[admin]`), when enabled.
    pub admin: Option<SocketAddr>,
    /// A file holding the bearer token the admin API requires, if any.
    pub admin_token_file: Option<PathBuf>,
    pub etcd_endpoints: Vec<String>,
    /// Time allowed for one lock or unlock, retries included
    /// (`[etcd3] transaction_timeout_ms`, airlock's key).
    pub txn_timeout: Duration,
    /// Prefix of every key the server writes.
    pub key_prefix: String,
    pub default_group: String,
    pub groups: BTreeMap<String, GroupConfig>,
    /// How long a holder keeps its slot without renewing it.
    pub lease_ttl: Duration,
    /// Canary nodes that must reach steady state on a version before other
    /// groups may reboot into it.
    pub canary_min_steady: u64,
}

impl Config {
    /// Whether any group is a canary group (the canary gate is on).
    pub fn has_canaries(&self) -> bool {
        self.groups.values().any(|g| g.canary)
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Raw {
    service: Option<RawListener>,
    status: Option<RawStatus>,
    admin: Option<RawAdmin>,
    etcd3: Option<RawEtcd>,
    lock: Option<RawLock>,
    canary: Option<RawCanary>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawListener {
    address: Option<String>,
    port: Option<u16>,
    tls: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStatus {
    enabled: Option<bool>,
    address: Option<String>,
    port: Option<u16>,
    tls: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdmin {
    enabled: Option<bool>,
    address: Option<String>,
    port: Option<u16>,
    token_file: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEtcd {
    endpoints: Option<Vec<String>>,
    transaction_timeout_ms: Option<u64>,
    client_cert_pub_path: Option<String>,
    client_cert_key_path: Option<String>,
    key_prefix: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLock {
    default_group_name: Option<String>,
    default_slots: Option<u64>,
    lease_ttl_secs: Option<u64>,
    #[serde(default)]
    groups: Vec<RawGroup>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    name: String,
    slots: Option<u64>,
    #[serde(default)]
    canary: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCanary {
    min_steady: Option<u64>,
}

fn addr(what: &str, address: Option<String>, port: u16) -> Result<SocketAddr, ConfigError> {
    let a = address.unwrap_or_else(|| "127.0.0.1".into());
    let ip: IpAddr = a.parse().map_err(|_| {
        ConfigError::Invalid(format!("[{what}] address {a:?} is not an IP address"))
    })?;
    Ok(SocketAddr::new(ip, port))
}

fn invalid(msg: impl Into<String>) -> ConfigError {
    ConfigError::Invalid(msg.into())
}

/// Reads and validates a configuration file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&text).map_err(|e| match e {
        ConfigError::Parse { source, .. } => ConfigError::Parse {
            path: path.to_owned(),
            source,
        },
        other => other,
    })
}

/// Parses and validates configuration text.
pub fn parse(text: &str) -> Result<Config, ConfigError> {
    let raw: Raw = toml::from_str(text).map_err(|source| ConfigError::Parse {
        path: PathBuf::new(),
        source,
    })?;

    let svc = raw.service.unwrap_or(RawListener {
        address: None,
        port: None,
        tls: None,
    });
    if svc.tls == Some(true) {
        return Err(invalid(
            "[service] tls = true is not supported; terminate TLS in front of the server",
        ));
    }
    let service = addr("service", svc.address, svc.port.unwrap_or(9090))?;

    let status = match raw.status {
        Some(s) if s.enabled.unwrap_or(true) => {
            if s.tls == Some(true) {
                return Err(invalid("[status] tls = true is not supported"));
            }
            Some(addr("status", s.address, s.port.unwrap_or(9091))?)
        }
        _ => None,
    };

    let (admin, admin_token_file) = match raw.admin {
        Some(a) if a.enabled.unwrap_or(true) => (
            Some(addr("admin", a.address, a.port.unwrap_or(9092))?),
            a.token_file,
        ),
        _ => (None, None),
    };

    let etcd = raw
        .etcd3
        .ok_or_else(|| invalid("[etcd3] endpoints is required"))?;
    if etcd.client_cert_pub_path.is_some() || etcd.client_cert_key_path.is_some() {
        return Err(invalid(
            "[etcd3] client certificates are not supported; use http:// endpoints",
        ));
    }
    let etcd_endpoints = etcd.endpoints.unwrap_or_default();
    if etcd_endpoints.is_empty() {
        return Err(invalid("[etcd3] endpoints is empty"));
    }
    for e in &etcd_endpoints {
        if !e.starts_with("http://") {
            return Err(invalid(format!(
                "[etcd3] endpoint {e:?} must be an http:// URL"
            )));
        }
    }
    let txn_timeout = Duration::from_millis(etcd.transaction_timeout_ms.unwrap_or(3000));
    if txn_timeout.is_zero() {
        return Err(invalid("[etcd3] transaction_timeout_ms must be > 0"));
    }
    let key_prefix = etcd.key_prefix.unwrap_or_else(|| "oxtree.fleetlock".into());
    if key_prefix.is_empty() || key_prefix.ends_with('/') {
        return Err(invalid(
            "[etcd3] key_prefix must be non-empty and not end with '/'",
        ));
    }

    let lock = raw.lock.unwrap_or(RawLock {
        default_group_name: None,
        default_slots: None,
        lease_ttl_secs: None,
        groups: vec![],
    });
    // As airlock: groups without `slots` get `default_slots` (default 1),
    // and the default group always exists.
    let default_group = lock.default_group_name.unwrap_or_else(|| "default".into());
    let default_slots = lock.default_slots.unwrap_or(1);
    let mut groups = BTreeMap::new();
    for g in lock.groups {
        if !valid_group(&g.name) {
            return Err(invalid(format!(
                "[[lock.groups]] name {:?} must match ^[a-zA-Z0-9.-]+$ (at most 64 bytes)",
                g.name
            )));
        }
        let cfg = GroupConfig {
            slots: g.slots.unwrap_or(default_slots),
            canary: g.canary,
        };
        if groups.insert(g.name.clone(), cfg).is_some() {
            return Err(invalid(format!(
                "[[lock.groups]] {:?} is listed twice",
                g.name
            )));
        }
    }
    if !valid_group(&default_group) {
        return Err(invalid(format!(
            "[lock] default_group_name {default_group:?} must match ^[a-zA-Z0-9.-]+$"
        )));
    }
    groups.entry(default_group.clone()).or_insert(GroupConfig {
        slots: default_slots,
        canary: false,
    });
    let lease_ttl = Duration::from_secs(lock.lease_ttl_secs.unwrap_or(3600));
    if lease_ttl.as_secs() < 2 {
        return Err(invalid("[lock] lease_ttl_secs must be at least 2"));
    }
    let canary_min_steady = raw.canary.and_then(|c| c.min_steady).unwrap_or(1);
    if canary_min_steady == 0 {
        return Err(invalid("[canary] min_steady must be at least 1"));
    }

    Ok(Config {
        service,
        status,
        admin,
        admin_token_file,
        etcd_endpoints,
        txn_timeout,
        key_prefix,
        default_group,
        groups,
        lease_ttl,
        canary_min_steady,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn airlock_example() {
        // airlock's dist/examples/config.toml, with tls switched off.
        let c = parse(
            r#"
[status]
enabled = true
address = "127.0.0.1"
port = 2222
tls = false
[service]
address = "127.0.0.1"
port = 3333
tls = false
[etcd3]
endpoints = [ "http://127.0.0.1:2379" ]
[lock]
default_group_name = "default"
default_slots = 2
[[lock.groups]]
name = "workers"
[[lock.groups]]
name = "controllers"
slots = 1
"#,
        )
        .unwrap();
        assert_eq!(c.service.port(), 3333);
        assert_eq!(c.status.unwrap().port(), 2222);
        assert_eq!(c.groups["default"].slots, 2);
        assert_eq!(c.groups["workers"].slots, 2);
        assert_eq!(c.groups["controllers"].slots, 1);
        assert!(!c.has_canaries());
        assert_eq!(c.admin, None);
    }

    #[test]
    fn refuses_bad_config() {
        for bad in [
            "",
            "[etcd3]\nendpoints = []",
            "[etcd3]\nendpoints = [\"http://x\"]\n[service]\ntls = true",
            "[etcd3]\nendpoints = [\"http://x\"]\n[[lock.groups]]\nname = \"a/b\"",
            "[etcd3]\nendpoints = [\"http://x\"]\n[lock]\nslotz = 1",
            "[etcd3]\nendpoints = [\"http://x\"]\n[[lock.groups]]\nname = \"a\"\n[[lock.groups]]\nname = \"a\"",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}

//! systemd-networkd: its links with their state and addresses (through
//! `org.freedesktop.network1`'s `ListLinks` and `DescribeLink`), and a
//! static configuration for one link, written as
//! `/etc/systemd/network/10-oxtree-LINK.network` (networkd applies the
//! first matching file in lexical order, so it wins over a distribution's
//! `20-wired.network`), then applied with `Reload` and `ReconfigureLink`.
//!
//! The file is written through a handle on the network directory:
//! created beside its final name with `O_EXCL|O_NOFOLLOW`, synced, and
//! renamed over it, so a crash leaves the old file or the new one.

use crate::bus;
use crate::error::{IoContext, Result, SystemError};
use crate::names::check_link_name;
use rustix::fs::{Mode, OFlags, CWD};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::io::Write;
use std::net::IpAddr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use zbus::blocking::Connection;
use zbus::zvariant::OwnedObjectPath;

const NETWORKD: &str = "systemd-networkd (org.freedesktop.network1)";
/// Where static configurations go.
pub const NETWORK_DIR: &str = "/etc/systemd/network";
/// Most addresses or DNS servers in one configuration.
pub const MAX_ENTRIES: usize = 32;

#[zbus::proxy(
    interface = "org.freedesktop.network1.Manager",
    default_service = "org.freedesktop.network1",
    default_path = "/org/freedesktop/network1",
    gen_async = false,
    blocking_name = "NetworkManagerProxy"
)]
trait NetworkManager {
    fn list_links(&self) -> zbus::Result<Vec<(i32, String, OwnedObjectPath)>>;
    fn describe_link(&self, ifindex: i32) -> zbus::Result<String>;
    fn reload(&self) -> zbus::Result<()>;
    fn reconfigure_link(&self, ifindex: i32) -> zbus::Result<()>;
}

/// An address on a link, with where it came from (`static`, `DHCPv4`,
/// `IPv6LL`, `foreign`, ...).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkAddress {
    pub address: String,
    pub prefix_length: u8,
    pub source: Option<String>,
}

/// A network link as networkd sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Link {
    pub index: i32,
    pub name: String,
    /// ether, loopback, dummy, ...
    pub kind: Option<String>,
    pub operational_state: Option<String>,
    /// configured, unmanaged, configuring, failed, ...
    pub setup_state: Option<String>,
    /// The `.network` file networkd applied, if any.
    pub network_file: Option<String>,
    pub addresses: Vec<LinkAddress>,
    pub dns: Vec<String>,
}

/// An address with its prefix length, `192.0.2.10/24`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prefixed {
    pub address: IpAddr,
    pub prefix: u8,
}

impl std::str::FromStr for Prefixed {
    type Err = SystemError;
    fn from_str(s: &str) -> Result<Prefixed> {
        let bad = || {
            SystemError::BadRequest(format!(
                "invalid address {:?}: ADDRESS/PREFIX, e.g. 192.0.2.10/24 or 2001:db8::1/64",
                s.chars().take(64).collect::<String>()
            ))
        };
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let address: IpAddr = a.parse().map_err(|_| bad())?;
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        if prefix > max || address.is_unspecified() || address.is_multicast() {
            return Err(bad());
        }
        Ok(Prefixed { address, prefix })
    }
}

impl std::fmt::Display for Prefixed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

/// A static configuration for one link, as the API and CLI give it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StaticConfig {
    /// `ADDRESS/PREFIX`, at least one.
    pub addresses: Vec<String>,
    #[serde(default)]
    pub gateway: Option<String>,
    #[serde(default)]
    pub dns: Vec<String>,
}

/// A checked [`StaticConfig`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedConfig {
    pub addresses: Vec<Prefixed>,
    pub gateway: Option<IpAddr>,
    pub dns: Vec<IpAddr>,
}

fn parse_ip(what: &str, s: &str) -> Result<IpAddr> {
    s.parse::<IpAddr>()
        .ok()
        .filter(|a| !a.is_unspecified() && !a.is_multicast())
        .ok_or_else(|| {
            SystemError::BadRequest(format!(
                "invalid {what} {:?}: an IPv4 or IPv6 address",
                s.chars().take(64).collect::<String>()
            ))
        })
}

impl StaticConfig {
    /// Check every field: parsed addresses, no more than [`MAX_ENTRIES`]
    /// of each list, at least one address.
    pub fn check(&self) -> Result<CheckedConfig> {
        if self.addresses.is_empty() {
            return Err(SystemError::BadRequest(
                "a static configuration needs at least one address".into(),
            ));
        }
        if self.addresses.len() > MAX_ENTRIES || self.dns.len() > MAX_ENTRIES {
            return Err(SystemError::BadRequest(format!(
                "at most {MAX_ENTRIES} addresses and {MAX_ENTRIES} DNS servers"
            )));
        }
        let addresses = self
            .addresses
            .iter()
            .map(|a| a.parse())
            .collect::<Result<Vec<Prefixed>>>()?;
        Ok(CheckedConfig {
            addresses,
            gateway: self
                .gateway
                .as_deref()
                .map(|g| parse_ip("gateway", g))
                .transpose()?,
            dns: self
                .dns
                .iter()
                .map(|d| parse_ip("DNS server", d))
                .collect::<Result<_>>()?,
        })
    }
}

impl CheckedConfig {
    /// The `.network` file for `link` (a checked name).
    pub fn render(&self, link: &str) -> String {
        let mut s = format!(
            "# Written by oxtree (oxtreed): a static configuration for {link}.\n\
             # `oxtree network unset {link}` removes it.\n\
             [Match]\nName={link}\n\n[Network]\n"
        );
        for a in &self.addresses {
            s.push_str(&format!("Address={a}\n"));
        }
        if let Some(g) = self.gateway {
            s.push_str(&format!("Gateway={g}\n"));
        }
        for d in &self.dns {
            s.push_str(&format!("DNS={d}\n"));
        }
        s
    }
}

/// The file name of `link`'s static configuration.
pub fn file_name(link: &str) -> String {
    format!("10-oxtree-{link}.network")
}

/// `NETWORK_DIR` (or another, for tests), opened as a handle.
#[derive(Debug)]
pub struct NetworkDir {
    path: PathBuf,
    fd: OwnedFd,
}

impl NetworkDir {
    /// Open `path`, creating it (0755) if it is missing. It must be a
    /// directory, not a symlink.
    pub fn open(path: &Path) -> Result<NetworkDir> {
        let shown = path.display().to_string();
        match rustix::fs::mkdir(path, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(e).ctx(|| format!("creating {shown}")),
        }
        let fd = rustix::fs::openat(
            CWD,
            path,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
        )
        .ctx(|| format!("opening {shown}"))?;
        Ok(NetworkDir {
            path: path.to_path_buf(),
            fd,
        })
    }

    /// Write `link`'s file: a temporary file, synced, renamed over it.
    /// Returns the file's path.
    pub fn write(&self, link: &str, config: &CheckedConfig) -> Result<PathBuf> {
        check_link_name(link)?;
        let name = file_name(link);
        let tmp = format!(".{name}.tmp");
        let shown = self.path.join(&name).display().to_string();
        let _ = rustix::fs::unlinkat(&self.fd, &tmp, rustix::fs::AtFlags::empty());
        let fd = rustix::fs::openat(
            &self.fd,
            &tmp,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )
        .ctx(|| format!("creating {shown}"))?;
        let mut f = std::fs::File::from(fd);
        let written = f
            .write_all(config.render(link).as_bytes())
            .and_then(|()| f.sync_all());
        if let Err(e) = written {
            let _ = rustix::fs::unlinkat(&self.fd, &tmp, rustix::fs::AtFlags::empty());
            return Err(e).ctx(|| format!("writing {shown}"));
        }
        drop(f);
        rustix::fs::renameat(&self.fd, &tmp, &self.fd, &name)
            .ctx(|| format!("renaming into {shown}"))?;
        rustix::fs::fsync(&self.fd).ctx(|| format!("syncing {}", self.path.display()))?;
        Ok(self.path.join(name))
    }

    /// Remove `link`'s file; false if there was none.
    pub fn remove(&self, link: &str) -> Result<bool> {
        check_link_name(link)?;
        let name = file_name(link);
        match rustix::fs::unlinkat(&self.fd, &name, rustix::fs::AtFlags::empty()) {
            Ok(()) => {
                rustix::fs::fsync(&self.fd).ctx(|| format!("syncing {}", self.path.display()))?;
                Ok(true)
            }
            Err(rustix::io::Errno::NOENT) => Ok(false),
            Err(e) => Err(e).ctx(|| format!("removing {}", self.path.join(&name).display())),
        }
    }
}

/// An address in networkd's JSON: `[10,0,2,15]` (4 or 16 bytes).
fn json_ip(v: &Value) -> Option<IpAddr> {
    let b: Vec<u8> = v
        .as_array()?
        .iter()
        .map(|x| x.as_u64().and_then(|n| u8::try_from(n).ok()))
        .collect::<Option<_>>()?;
    match b.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(b).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(b).ok()?)),
        _ => None,
    }
}

/// A link from networkd's `DescribeLink` JSON (fields it does not have
/// are None or empty).
pub fn parse_describe(index: i32, name: &str, json: &str) -> Result<Link> {
    let v: Value = serde_json::from_str(json)
        .map_err(|e| SystemError::Bus(format!("networkd's description of {name}: {e}")))?;
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let addresses = v
        .get("Addresses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|a| {
            Some(LinkAddress {
                address: json_ip(a.get("Address")?)?.to_string(),
                prefix_length: u8::try_from(a.get("PrefixLength")?.as_u64()?).ok()?,
                source: a
                    .get("ConfigSource")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            })
        })
        .collect();
    let dns = v
        .get("DNS")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|d| json_ip(d.get("Address")?).map(|a| a.to_string()))
        .collect();
    Ok(Link {
        index,
        name: name.to_string(),
        kind: s("Type"),
        operational_state: s("OperationalState"),
        setup_state: s("SetupState"),
        network_file: s("NetworkFile"),
        addresses,
        dns,
    })
}

/// systemd-networkd on the system bus.
#[derive(Debug)]
pub struct Networkd {
    /// Connected on first use, so that a bad name is refused before the
    /// bus is needed.
    conn: std::sync::OnceLock<Connection>,
}

impl Networkd {
    pub fn system() -> Result<Networkd> {
        Ok(Networkd {
            conn: std::sync::OnceLock::new(),
        })
    }

    fn conn(&self) -> Result<&Connection> {
        if let Some(c) = self.conn.get() {
            return Ok(c);
        }
        let c = bus::system(NETWORKD)?;
        Ok(self.conn.get_or_init(|| c))
    }

    fn manager(&self) -> Result<NetworkManagerProxy<'_>> {
        NetworkManagerProxy::new(self.conn()?).map_err(|e| bus::map(e, NETWORKD, ""))
    }

    /// Every link, by index.
    pub fn links(&self) -> Result<Vec<Link>> {
        let m = self.manager()?;
        let mut rows = m.list_links().map_err(|e| bus::map(e, NETWORKD, ""))?;
        rows.sort_by_key(|r| r.0);
        rows.into_iter()
            .map(|(i, name, _)| {
                let d = m
                    .describe_link(i)
                    .map_err(|e| bus::map(e, NETWORKD, &name))?;
                parse_describe(i, &name, &d)
            })
            .collect()
    }

    /// One link by name.
    pub fn link(&self, name: &str) -> Result<Link> {
        check_link_name(name)?;
        self.links()?
            .into_iter()
            .find(|l| l.name == name)
            .ok_or_else(|| SystemError::NoSuchLink(name.to_string()))
    }

    /// Write `link`'s static configuration into `dir` and apply it.
    pub fn set_static(&self, dir: &NetworkDir, link: &str, config: &StaticConfig) -> Result<Link> {
        let checked = config.check()?;
        let l = self.link(link)?;
        dir.write(link, &checked)?;
        self.apply(l.index, link)?;
        self.link(link)
    }

    /// Remove `link`'s static configuration from `dir` (false: there was
    /// none) and apply what remains.
    pub fn unset_static(&self, dir: &NetworkDir, link: &str) -> Result<(bool, Link)> {
        let l = self.link(link)?;
        let removed = dir.remove(link)?;
        if removed {
            self.apply(l.index, link)?;
        }
        Ok((removed, self.link(link)?))
    }

    fn apply(&self, index: i32, link: &str) -> Result<()> {
        let m = self.manager()?;
        m.reload().map_err(|e| bus::map(e, NETWORKD, link))?;
        m.reconfigure_link(index)
            .map_err(|e| bus::map(e, NETWORKD, link))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        let p: Prefixed = "192.0.2.10/24".parse().unwrap();
        assert_eq!(p.to_string(), "192.0.2.10/24");
        assert_eq!("2001:db8::1/64".parse::<Prefixed>().unwrap().prefix, 64);
        for bad in [
            "192.0.2.10",
            "192.0.2.10/33",
            "192.0.2.10/",
            "192.0.2.10/+4",
            "0.0.0.0/0",
            "224.0.0.1/4",
            "x/24",
            "192.0.2.10/24\nDNS=1.1.1.1",
            "2001:db8::1/129",
        ] {
            assert!(bad.parse::<Prefixed>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn config_renders_only_checked_values() {
        let c = StaticConfig {
            addresses: vec!["192.0.2.10/24".into(), "2001:db8::10/64".into()],
            gateway: Some("192.0.2.1".into()),
            dns: vec!["192.0.2.53".into()],
        };
        let text = c.check().unwrap().render("dummy0");
        assert!(text.contains("[Match]\nName=dummy0\n"), "{text}");
        assert!(text.contains("Address=192.0.2.10/24\nAddress=2001:db8::10/64\nGateway=192.0.2.1\nDNS=192.0.2.53\n"), "{text}");
        for bad in [
            StaticConfig::default(),
            StaticConfig {
                addresses: vec!["192.0.2.10/24".into()],
                gateway: Some("192.0.2.1\n[Network]".into()),
                dns: vec![],
            },
            StaticConfig {
                addresses: vec!["192.0.2.10/24".into()],
                gateway: None,
                dns: vec!["::".into()],
            },
            StaticConfig {
                addresses: vec!["192.0.2.10/24".into(); MAX_ENTRIES + 1],
                gateway: None,
                dns: vec![],
            },
        ] {
            assert!(
                matches!(bad.check(), Err(SystemError::BadRequest(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn writes_and_removes_through_the_handle() {
        let d = tempfile::tempdir().unwrap();
        let net = d.path().join("network");
        let dir = NetworkDir::open(&net).unwrap();
        let c = StaticConfig {
            addresses: vec!["192.0.2.10/24".into()],
            ..Default::default()
        }
        .check()
        .unwrap();
        let p = dir.write("dummy0", &c).unwrap();
        assert_eq!(p, net.join("10-oxtree-dummy0.network"));
        assert_eq!(std::fs::read_to_string(&p).unwrap(), c.render("dummy0"));
        // Rewriting replaces it; no temporary file is left.
        dir.write("dummy0", &c).unwrap();
        let names: Vec<_> = std::fs::read_dir(&net)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["10-oxtree-dummy0.network"]);
        // A link name cannot reach outside the directory.
        assert!(matches!(
            dir.write("../x", &c),
            Err(SystemError::BadRequest(_))
        ));
        assert!(dir.remove("dummy0").unwrap());
        assert!(!dir.remove("dummy0").unwrap());
        // A symlink in place of the directory is refused.
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&net, &link).unwrap();
        assert!(NetworkDir::open(&link).is_err());
    }

    #[test]
    fn describe_json() {
        let j = r#"{"Index":2,"Name":"ens3","Type":"ether","OperationalState":"routable","SetupState":"configured",
            "NetworkFile":"/etc/systemd/network/20-wired.network",
            "Addresses":[{"Family":2,"Address":[10,0,2,15],"PrefixLength":24,"ConfigSource":"DHCPv4"},
                         {"Family":10,"Address":[254,128,0,0,0,0,0,0,0,0,0,0,0,0,0,1],"PrefixLength":64,"ConfigSource":"IPv6LL"},
                         {"Family":2,"Address":[1,2,3],"PrefixLength":8}],
            "DNS":[{"Family":2,"Address":[10,0,2,3],"ConfigSource":"DHCPv4"}]}"#;
        let l = parse_describe(2, "ens3", j).unwrap();
        assert_eq!(l.kind.as_deref(), Some("ether"));
        assert_eq!(l.addresses.len(), 2);
        assert_eq!(l.addresses[0].address, "10.0.2.15");
        assert_eq!(l.addresses[1].address, "fe80::1");
        assert_eq!(l.dns, ["10.0.2.3"]);
        assert!(parse_describe(1, "x", "not json").is_err());
        let empty = parse_describe(1, "lo", "{}").unwrap();
        assert!(empty.addresses.is_empty() && empty.network_file.is_none());
    }
}

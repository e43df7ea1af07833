//! The host's systemd, as the agent (oxtreed) and `oxtree units|journal|
//! network` manage it — Photon OS's PMD role:
//!
//! - [`names`]: unit and link names from requests, checked before they
//!   reach D-Bus, a command line or a path;
//! - [`units`]: list, status, start, stop, restart, enable and disable
//!   through systemd's own D-Bus API (`org.freedesktop.systemd1`);
//! - [`journal`]: a unit's last journal lines, from `journalctl -o json`;
//! - [`network`]: systemd-networkd's links and addresses
//!   (`org.freedesktop.network1`), and a static address, gateway and DNS
//!   for a link as a `.network` file in `/etc/systemd/network`.
//!
//! The library never prints.

mod bus;
mod error;
pub mod journal;
pub mod names;
pub mod network;
pub mod units;

pub use error::{Result, SystemError};

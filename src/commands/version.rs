//! `oxtree --version`: ostree's YAML-shaped version report, which scripts
//! parse (`- gpgme`, `- libarchive`, the `Version` for User-Agent checks).
//! The libostree section names the ostree release whose command line and
//! formats oxtree follows; oxtree's own version is a section of its own.

/// The ostree release oxtree's command line is tested against
/// (tests/ostree-suite.sh runs that release's own test suite).
pub use oxtree_transport::fetch::OSTREE_COMPAT_VERSION;

/// What oxtree does that ostree reports as build features:
/// OpenPGP signatures (gpgme), tar import and export (libarchive), ed25519
/// signatures (sign-ed25519), and staged deployments finalized at shutdown
/// through a systemd unit and mounts (systemd, libmount).
const FEATURES: &[&str] = &["gpgme", "libarchive", "sign-ed25519", "systemd", "libmount"];

pub fn render() -> String {
    let mut s = format!("libostree:\n Version: '{OSTREE_COMPAT_VERSION}'\n Features:\n");
    for f in FEATURES {
        s.push_str(&format!("  - {f}\n"));
    }
    s.push_str(&format!(
        "oxtree:\n Version: '{}'\n",
        env!("CARGO_PKG_VERSION")
    ));
    s
}

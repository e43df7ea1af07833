//! A throwaway GnuPG home with one key, for tests that sign commits and
//! summaries. Included with `#[path]`, next to support/net.rs (for
//! `require`).

#![allow(dead_code)]

use crate::net::require;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A throwaway GnuPG home with one key (protected by `passphrase` unless
/// it is empty); its gpg-agent is stopped on drop.
pub struct GpgHome {
    pub dir: PathBuf,
    pub fpr: String,
    /// Armored public key file.
    pub public: PathBuf,
    /// Armored secret key file.
    pub secret: PathBuf,
}

impl GpgHome {
    pub fn new(parent: &Path, name: &str) -> GpgHome {
        GpgHome::with_passphrase(parent, name, "")
    }

    pub fn with_passphrase(parent: &Path, name: &str, passphrase: &str) -> GpgHome {
        let gpg = require("gpg");
        let dir = parent.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        let g = |args: &[&str]| -> Vec<u8> {
            let o = Command::new(&gpg)
                .arg("--homedir")
                .arg(&dir)
                .args([
                    "--batch",
                    "--pinentry-mode",
                    "loopback",
                    "--passphrase",
                    passphrase,
                ])
                .args(args)
                .output()
                .expect("running gpg");
            assert!(
                o.status.success(),
                "gpg {args:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            o.stdout
        };
        g(&[
            "--quick-gen-key",
            &format!("{name} <{name}@example.invalid>"),
            "default",
            "default",
            "never",
        ]);
        let listing = String::from_utf8(g(&["--list-keys", "--with-colons"])).unwrap();
        let fpr = listing
            .lines()
            .find_map(|l| {
                l.strip_prefix("fpr:")
                    .map(|r| r.trim_matches(':').to_string())
            })
            .expect("a fingerprint");
        let public = parent.join(format!("{name}.pub.asc"));
        std::fs::write(&public, g(&["--export", "--armor", &fpr])).unwrap();
        let secret = parent.join(format!("{name}.sec.asc"));
        std::fs::write(&secret, g(&["--export-secret-keys", "--armor", &fpr])).unwrap();
        GpgHome {
            dir,
            fpr,
            public,
            secret,
        }
    }

    pub fn homedir_arg(&self) -> String {
        format!("--gpg-homedir={}", self.dir.display())
    }
}

impl Drop for GpgHome {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .arg("--homedir")
            .arg(&self.dir)
            .args(["--kill", "all"])
            .status();
    }
}

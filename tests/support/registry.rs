//! A real registry for the container tests: Debian's `docker-registry`
//! (distribution 2.8) on 127.0.0.1 on a free port, its storage in a
//! temporary directory, over plain HTTP or TLS with a self-signed
//! certificate for IP 127.0.0.1 made by `openssl req -x509`, optionally
//! with basic auth (an htpasswd file of one bcrypt entry, made by
//! python3's `crypt`, as the registry accepts only bcrypt). The process
//! is killed (by its own pid) when the guard drops. Included with `#[path]`
//! after net.rs; a missing `docker-registry` or `openssl` fails the test.

#![allow(dead_code)]

use crate::net::{free_port, require, wait_for_port, Guard};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub struct Registry {
    _guard: Guard,
    /// `127.0.0.1:PORT`
    pub addr: String,
    /// The CA (the server's own certificate) for TLS, in a directory of
    /// its own (for `--cert-dir`).
    pub cert_dir: Option<PathBuf>,
    pub dir: tempfile::TempDir,
}

fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    let openssl = require("openssl");
    let certs = dir.join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    let (cert, key) = (certs.join("ca.crt"), dir.join("key.pem"));
    let st = Command::new(openssl)
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            // An end-entity certificate (webpki refuses a CA as a server's).
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "openssl req -x509");
    (cert, key)
}

impl Registry {
    pub fn start(tls: bool) -> Registry {
        Registry::start_with(tls, None)
    }

    /// A registry that wants `user`:`password` (basic auth).
    pub fn start_with_auth(tls: bool, user: &str, password: &str) -> Registry {
        Registry::start_with(tls, Some((user, password)))
    }

    fn start_with(tls: bool, auth: Option<(&str, &str)>) -> Registry {
        let bin = require("docker-registry");
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage).unwrap();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            storage.display()
        );
        let mut auth_yaml = String::new();
        if let Some((user, password)) = auth {
            let py = require("python3");
            let o = Command::new(py)
                .args([
                    "-W",
                    "ignore",
                    "-c",
                    "import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))",
                    password,
                ])
                .output()
                .unwrap();
            let hash = String::from_utf8_lossy(&o.stdout).into_owned();
            assert!(hash.starts_with("$2"), "python3 crypt has no bcrypt: {o:?}");
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, format!("{user}:{}", hash.trim())).unwrap();
            // Top level: after the http block (and its tls), below.
            auth_yaml = format!(
                "auth:\n  htpasswd:\n    realm: oxtree-test\n    path: {}\n",
                htpasswd.display()
            );
        }
        let mut cert_dir = None;
        if tls {
            let (cert, key) = self_signed(dir.path());
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            ));
            cert_dir = Some(cert.parent().unwrap().to_path_buf());
        }
        config.push_str(&auth_yaml);
        let cfg = dir.path().join("config.yml");
        std::fs::write(&cfg, config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new(bin)
            .arg("serve")
            .arg(&cfg)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting docker-registry");
        let guard = Guard(child);
        wait_for_port(port);
        Registry {
            _guard: guard,
            addr: format!("127.0.0.1:{port}"),
            cert_dir,
            dir,
        }
    }

    /// The registry's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

/// The successful blob GETs of repository `repo` in a piece of the
/// registry's access log: (digest, bytes sent), as the registry counted them.
pub fn blob_gets(log: &str, repo: &str) -> Vec<(String, u64)> {
    let needle = format!("\"GET /v2/{repo}/blobs/");
    log.lines()
        .filter_map(|l| {
            let rest = &l[l.find(&needle)? + needle.len()..];
            let (digest, after) = rest.split_once(' ')?;
            // `HTTP/1.1" 200 SIZE "…`
            let mut w = after.split_whitespace().skip(1);
            let status = w.next()?;
            let size = w.next()?.parse().ok()?;
            (status == "200").then(|| (digest.to_string(), size))
        })
        .collect()
}

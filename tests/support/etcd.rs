//! A real etcd (Debian's `etcd-server`) for tests: one member on
//! 127.0.0.1 on free ports with a private data directory, stopped by its
//! own pid and restartable on the same ports and data; `etcdctl` against
//! it; and `oxtree fleetlock serve` processes with a config and a log.
//! Included with `#[path]` (after support/net.rs as `net`).

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::net::{free_port, require, wait_for_child_port, wait_for_port};

pub struct Etcd {
    child: Option<Child>,
    dir: PathBuf,
    pub client_port: u16,
    peer_port: u16,
}

impl Etcd {
    pub fn start(dir: &Path) -> Etcd {
        let mut e = Etcd {
            child: None,
            dir: dir.to_owned(),
            client_port: free_port(),
            peer_port: free_port(),
        };
        e.spawn();
        e
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    fn spawn(&mut self) {
        // Ports come from `free_port`, so another test may bind one before
        // etcd does: a first start that dies moves to fresh ports (a
        // restart keeps its ports, its clients know them).
        let first = self.child.is_none() && !self.dir.join("data").exists();
        for attempt in 1.. {
            let mut child = self.launch();
            match wait_for_child_port(&mut child, self.client_port) {
                Ok(()) => {
                    self.child = Some(child);
                    break;
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let log =
                        std::fs::read_to_string(self.dir.join("etcd.log")).unwrap_or_default();
                    let taken = log.contains("address already in use");
                    assert!(first && taken && attempt < 4, "etcd {e}; its log:\n{log}");
                    let _ = std::fs::remove_dir_all(self.dir.join("data"));
                    self.client_port = free_port();
                    self.peer_port = free_port();
                }
            }
        }
        // Ready when a write goes through.
        let t = Instant::now();
        loop {
            let o = self.etcdctl_output(&["put", "oxtree-test/ready", "1"]);
            if o.status.success() {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "etcd did not become ready: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn launch(&self) -> Child {
        let bin = require("etcd");
        let (c, p) = (self.client_port, self.peer_port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("etcd.log"))
            .unwrap();
        Command::new(bin)
            .args([
                "--name=t",
                &format!("--data-dir={}", self.dir.join("data").display()),
                &format!("--listen-client-urls=http://127.0.0.1:{c}"),
                &format!("--advertise-client-urls=http://127.0.0.1:{c}"),
                &format!("--listen-peer-urls=http://127.0.0.1:{p}"),
                &format!("--initial-advertise-peer-urls=http://127.0.0.1:{p}"),
                &format!("--initial-cluster=t=http://127.0.0.1:{p}"),
                "--initial-cluster-state=new",
                "--log-level=warn",
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting etcd")
    }

    /// Kills this etcd (its own pid) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same ports and data.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "etcd is running");
        self.spawn();
    }

    fn etcdctl_output(&self, args: &[&str]) -> std::process::Output {
        Command::new(require("etcdctl"))
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.endpoint()))
            .arg("--command-timeout=5s")
            .args(args)
            .output()
            .expect("running etcdctl")
    }

    /// `etcdctl ARGS`, asserting success; its stdout.
    #[track_caller]
    pub fn etcdctl(&self, args: &[&str]) -> String {
        let o = self.etcdctl_output(args);
        assert!(
            o.status.success(),
            "etcdctl {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    /// `etcdctl get -w json ARGS` parsed.
    pub fn get_json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = vec!["get", "-w", "json"];
        a.extend(args);
        serde_json::from_str(&self.etcdctl(&a)).unwrap()
    }

    /// The cluster's current revision.
    pub fn revision(&self) -> i64 {
        self.get_json(&["oxtree-test/none"])["header"]["revision"]
            .as_i64()
            .unwrap()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Decoded `kvs` of an `etcdctl get -w json` answer: (key, value, lease).
pub fn kvs(v: &serde_json::Value) -> Vec<(String, String, i64)> {
    use base64_lite::decode;
    v["kvs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|kv| {
            (
                String::from_utf8(decode(kv["key"].as_str().unwrap())).unwrap(),
                String::from_utf8(decode(kv["value"].as_str().unwrap_or(""))).unwrap(),
                kv["lease"].as_i64().unwrap_or(0),
            )
        })
        .collect()
}

/// etcdctl's JSON has base64 keys and values; a decoder in a few lines
/// spares the tests a dependency.
mod base64_lite {
    pub fn decode(s: &str) -> Vec<u8> {
        let val = |c: u8| -> u32 {
            match c {
                b'A'..=b'Z' => (c - b'A') as u32,
                b'a'..=b'z' => (c - b'a' + 26) as u32,
                b'0'..=b'9' => (c - b'0' + 52) as u32,
                b'+' => 62,
                b'/' => 63,
                _ => panic!("bad base64 {c}"),
            }
        };
        let bytes: Vec<u8> = s.bytes().filter(|&c| c != b'=').collect();
        let mut out = vec![];
        for chunk in bytes.chunks(4) {
            let mut n = 0u32;
            for (i, &c) in chunk.iter().enumerate() {
                n |= val(c) << (18 - 6 * i);
            }
            let k = chunk.len() * 6 / 8;
            out.extend_from_slice(&n.to_be_bytes()[1..1 + k]);
        }
        out
    }
}

/// An `oxtree fleetlock serve` process.
pub struct LockServer {
    child: Option<Child>,
    pub config: PathBuf,
    pub log: PathBuf,
    pub port: u16,
    pub status_port: u16,
    pub admin_port: u16,
}

impl LockServer {
    /// Writes `config` (with `@PORT@`, `@STATUS@`, `@ADMIN@` and `@ETCD@`
    /// filled in) to `dir/name.toml` and starts a server on it.
    pub fn start(dir: &Path, name: &str, etcd: &Etcd, config: &str) -> LockServer {
        let (port, status_port, admin_port) = (free_port(), free_port(), free_port());
        let path = dir.join(format!("{name}.toml"));
        let text = config
            .replace("@PORT@", &port.to_string())
            .replace("@STATUS@", &status_port.to_string())
            .replace("@ADMIN@", &admin_port.to_string())
            .replace("@ETCD@", &etcd.endpoint());
        std::fs::write(&path, text).unwrap();
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_oxtree"))
            .args(["fleetlock", "serve", "--json-log"])
            .arg(format!("--config={}", path.display()))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("starting oxtree fleetlock serve");
        wait_for_port(port);
        LockServer {
            child: Some(child),
            config: path,
            log,
            port,
            status_port,
            admin_port,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    pub fn admin_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.admin_port)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGHUP to this server (its own pid).
    pub fn hup(&self) {
        let pid = self.child.as_ref().unwrap().id();
        let st = Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .unwrap();
        assert!(st.success());
    }

    /// Rewrites the config (same placeholders) and sends SIGHUP; waits for
    /// the reload to be logged.
    pub fn reload(&self, etcd: &Etcd, config: &str) {
        let text = config
            .replace("@PORT@", &self.port.to_string())
            .replace("@STATUS@", &self.status_port.to_string())
            .replace("@ADMIN@", &self.admin_port.to_string())
            .replace("@ETCD@", &etcd.endpoint());
        std::fs::write(&self.config, text).unwrap();
        let before = self.log_text().matches("\"reloaded\"").count();
        self.hup();
        let t = Instant::now();
        while self.log_text().matches("\"reloaded\"").count() == before {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "no reload logged:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for LockServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One raw HTTP/1.1 request to 127.0.0.1:`port`: (status, body). Raw, so
/// tests can send what no well-behaved client would.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    // A server may answer and close before reading a huge body: write from
    // another thread, ignoring write errors, while this one reads what it
    // said (before a reset could drop it).
    let mut w = s.try_clone().unwrap();
    let mut all = req.into_bytes();
    all.extend_from_slice(body);
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(&all);
    });
    let mut out = vec![];
    let _ = s.read_to_end(&mut out);
    let _ = writer.join();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|x| x.1)
        .unwrap_or("")
        .to_owned();
    (status, body)
}

/// A FleetLock request body.
pub fn body(id: &str, group: &str) -> String {
    serde_json::json!({"client_params": {"id": id, "group": group}}).to_string()
}

/// POST a FleetLock request with the protocol header: (status, body).
pub fn fleetlock(port: u16, path: &str, body: &str) -> (u16, String) {
    http(
        port,
        "POST",
        path,
        &[("fleet-lock-protocol", "true")],
        body.as_bytes(),
    )
}

//! Loopback HTTP plumbing shared by the transport and signature tests: a
//! child-process guard, free ports, and python's http.server as a real
//! static server. Included with `#[path]` by the test files that need it.

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A binary from the system, or a test failure saying what to install.
pub fn require(bin: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/local/bin", "/bin", "/usr/sbin"] {
        let p = Path::new(dir).join(bin);
        if p.is_file() {
            return p;
        }
    }
    panic!("`{bin}` is required by these tests but was not found; scripts/test.sh installs it");
}

/// A child process killed (by its own pid) when dropped.
pub struct Guard(pub Child);
impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn wait_for_port(port: u16) {
    let t = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "server on {port} did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits for `child` to listen on `port`; `Err` with its exit status when
/// it dies first (a port taken between `free_port` and its bind, say), so
/// the caller can show its log or retry instead of waiting out a timeout.
pub fn wait_for_child_port(child: &mut Child, port: u16) -> Result<(), String> {
    let t = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(st) = child.try_wait().unwrap() {
            return Err(format!("exited ({st}) before listening on {port}"));
        }
        if t.elapsed() > Duration::from_secs(60) {
            return Err(format!("not listening on {port} after 60 s"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// python3 -m http.server serving `dir` on a free loopback port.
pub fn python_server(dir: &Path) -> (Guard, String) {
    serve_dir(dir, Stdio::null())
}

/// The same, with the request log written to `log`.
pub fn logging_server(dir: &Path, log: &Path) -> (Guard, String) {
    serve_dir(dir, std::fs::File::create(log).unwrap().into())
}

fn serve_dir(dir: &Path, stderr: Stdio) -> (Guard, String) {
    let py = require("python3");
    let port = free_port();
    let child = Command::new(py)
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
            "--directory",
        ])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("starting python3 -m http.server");
    let g = Guard(child);
    wait_for_port(port);
    (g, format!("http://127.0.0.1:{port}/"))
}

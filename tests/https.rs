//! Pulls over TLS from a real nginx on 127.0.0.1 that offers HTTP/2: the
//! pull negotiates HTTP/2 (ALPN) and fetches every request over it, the
//! remote's `http2=false` keeps it on HTTP/1.1, the remote's `tls-ca-path`
//! is what makes the server's certificate trusted, and an untrusted
//! certificate fails the pull with a clear error and moves no ref. The
//! certificates are made by openssl in the test. nginx and openssl are
//! required: a missing one fails the test.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[path = "support/net.rs"]
mod net;
use net::{free_port, require, wait_for_port, Guard};
#[path = "support/cli.rs"]
mod cli;
use cli::{fails, ok, oxtree};

fn openssl(dir: &Path, args: &[&str]) {
    let o = Command::new(require("openssl"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A CA, and a server certificate for 127.0.0.1 signed by it.
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
    let mut ca = vec!["req", "-x509", "-nodes", "-days", "2"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-subj",
        "/CN=oxtree test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ]);
    openssl(dir, &ca);
    let mut csr = vec!["req", "-nodes"];
    csr.extend(ec);
    csr.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    openssl(dir, &csr);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n\
         basicConstraints=critical,CA:FALSE\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            "server.pem",
            "-extfile",
            "ext.cnf",
        ],
    );
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

/// nginx serving `root` over TLS with HTTP/2 on a free loopback port; its
/// access log gives the protocol of every request.
fn nginx(work: &Path, root: &Path, cert: &Path, key: &Path) -> (Guard, String, PathBuf) {
    let port = free_port();
    let log = work.join("access.log");
    for d in ["logs", "tmp"] {
        std::fs::create_dir_all(work.join(d)).unwrap();
    }
    let conf = format!(
        "daemon off;\nmaster_process off;\nuser root;\npid {w}/nginx.pid;\n\
         error_log {w}/logs/error.log;\nevents {{ worker_connections 64; }}\n\
         http {{\n  log_format p '$server_protocol $request_uri $status';\n  \
         access_log {log} p;\n  client_body_temp_path {w}/tmp;\n  \
         proxy_temp_path {w}/tmp;\n  fastcgi_temp_path {w}/tmp;\n  \
         uwsgi_temp_path {w}/tmp;\n  scgi_temp_path {w}/tmp;\n  \
         server {{\n    listen 127.0.0.1:{port} ssl http2;\n    \
         ssl_certificate {cert};\n    ssl_certificate_key {key};\n    \
         root {root};\n  }}\n}}\n",
        w = work.display(),
        log = log.display(),
        cert = cert.display(),
        key = key.display(),
        root = root.display(),
    );
    let conf_path = work.join("nginx.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let child = Command::new(require("nginx"))
        .arg("-p")
        .arg(work)
        .arg("-c")
        .arg(&conf_path)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let guard = Guard(child);
    wait_for_port(port);
    (guard, format!("https://127.0.0.1:{port}/"), log)
}

fn protocols(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .map(|l| l.split(' ').next().unwrap_or("").to_string())
        .collect()
}

#[test]
fn pull_over_tls_uses_http2() {
    let ox = oxtree();
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let src = t.join("src");
    ok(&ox, &src, &["init", "--mode=archive"]);
    let tree = t.join("tree");
    for d in 0..4 {
        std::fs::create_dir_all(tree.join(format!("d{d}"))).unwrap();
        for f in 0..10 {
            let body = format!("{d}/{f}\n").repeat(100 * (f + 1));
            std::fs::write(tree.join(format!("d{d}/f{f}")), body).unwrap();
        }
    }
    let tree_arg = format!("--tree=dir={}", tree.display());
    let c = ok(&ox, &src, &["commit", "-b", "main", &tree_arg]);
    let c = c.trim();
    ok(&ox, &src, &["summary", "-u"]);
    let certs = t.join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    let (ca, cert, key) = certificates(&certs);
    let work = t.join("nginx");
    let (_nginx, url, log) = nginx(&work, &src, &cert, &key);
    let ca_set = format!("--set=tls-ca-path={}", ca.display());

    // Not trusted: a clear TLS error, nothing pulled.
    let dst = t.join("dst");
    ok(&ox, &dst, &["init", "--mode=bare-user"]);
    ok(
        &ox,
        &dst,
        &["remote", "add", "--no-gpg-verify", "untrusted", &url],
    );
    let e = fails(&ox, &dst, &["pull", "untrusted", "main"]);
    assert!(e.to_lowercase().contains("certificate"), "{e}");
    assert!(fails(&ox, &dst, &["rev-parse", "untrusted:main"]).contains("main"));

    // Trusted through tls-ca-path: every request over HTTP/2.
    ok(
        &ox,
        &dst,
        &["remote", "add", "--no-gpg-verify", &ca_set, "o", &url],
    );
    let before = protocols(&log).len();
    ok(&ox, &dst, &["pull", "o", "main"]);
    let seen = protocols(&log)[before..].to_vec();
    assert!(seen.len() > 40, "{seen:?}");
    assert!(seen.iter().all(|p| p == "HTTP/2.0"), "{seen:?}");
    assert_eq!(ok(&ox, &dst, &["rev-parse", "o:main"]).trim(), c);
    ok(&ox, &dst, &["fsck"]);
    ok(require("ostree"), &dst, &["fsck"]);

    // http2=false: the same pull over HTTP/1.1.
    let dst2 = t.join("dst2");
    ok(&ox, &dst2, &["init", "--mode=archive"]);
    let args = [
        "remote",
        "add",
        "--no-gpg-verify",
        &ca_set,
        "--set=http2=false",
    ];
    ok(&ox, &dst2, &[&args[..], &["o", &url]].concat());
    let before = protocols(&log).len();
    ok(&ox, &dst2, &["pull", "o", "main"]);
    let seen = protocols(&log)[before..].to_vec();
    assert!(seen.len() > 40, "{seen:?}");
    assert!(seen.iter().all(|p| p == "HTTP/1.1"), "{seen:?}");
    assert_eq!(ok(&ox, &dst2, &["rev-parse", "o:main"]).trim(), c);
}

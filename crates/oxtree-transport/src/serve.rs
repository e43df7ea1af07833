//! A small read-only static HTTP server for a repository directory, enough
//! for `ostree pull` / `oxtree pull` (GET and HEAD of plain files).
//!
//! Built on hyper 1 (already in the dependency tree through reqwest, so it
//! costs no new stack): HTTP/1.1 with keep-alive, one task per connection,
//! many connections at once, bodies streamed with a Content-Length. Paths
//! are checked (no `..`, `.`, empty components, NUL) and opened relative to
//! the repository's directory fd with `openat2(RESOLVE_BENEATH)`, so no
//! symlink can lead outside the repository (kernels without openat2 get a
//! component-by-component walk that follows no symlinks at all). Only
//! regular files are served; directories and everything else are 404.

use crate::error::{Result, TransportError};
use bytes::Bytes;
use futures_util::TryStreamExt;
use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use rustix::fd::OwnedFd;
use rustix::fs::{self, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

type Body = BoxBody<Bytes, std::io::Error>;

/// Files up to this size are read whole and sent in one piece.
const SMALL_FILE: u64 = 256 << 10;

#[derive(Debug)]
pub struct Server {
    root: Arc<OwnedFd>,
    listener: std::net::TcpListener,
}

impl Server {
    /// Bind `addr` (port 0 picks a free port) to serve `dir`.
    pub fn bind(dir: &Path, addr: SocketAddr) -> Result<Server> {
        let root = oxtree_repo::fsutil::open_dir(dir)
            .map_err(|e| TransportError::io(format!("opening {}", dir.display()), e))?;
        let listener = std::net::TcpListener::bind(addr)
            .map_err(|e| TransportError::io(format!("binding {addr}"), e))?;
        Ok(Server {
            root: Arc::new(root),
            listener,
        })
    }

    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.listener
            .local_addr()
            .map_err(|e| TransportError::io("reading the listening address", e))
    }

    /// Serve until the process ends (or accepting fails).
    pub fn run(self) -> Result<()> {
        let rt = crate::fetch::runtime()?;
        rt.block_on(async move {
            self.listener
                .set_nonblocking(true)
                .map_err(|e| TransportError::io("listener", e))?;
            let listener = tokio::net::TcpListener::from_std(self.listener)
                .map_err(|e| TransportError::io("listener", e))?;
            loop {
                let (stream, _) = match listener.accept().await {
                    Ok(s) => s,
                    // Out of fds and the like: wait and keep serving.
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // Headers and body go out as separate writes; without
                // TCP_NODELAY each small response can wait for the
                // client's delayed ACK (40 ms on Linux).
                let _ = stream.set_nodelay(true);
                let root = self.root.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let root = root.clone();
                        async move { Ok::<_, std::convert::Infallible>(handle(&root, req)) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .timer(TokioTimer::new())
                        .header_read_timeout(Duration::from_secs(60))
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        })
    }
}

fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

fn status(code: StatusCode) -> Response<Body> {
    let mut r = Response::new(empty());
    *r.status_mut() = code;
    r.headers_mut().insert(
        hyper::header::CONTENT_LENGTH,
        hyper::header::HeaderValue::from(0),
    );
    r
}

fn handle(root: &OwnedFd, req: Request<Incoming>) -> Response<Body> {
    let head = match *req.method() {
        Method::GET => false,
        Method::HEAD => true,
        _ => {
            let mut r = status(StatusCode::METHOD_NOT_ALLOWED);
            r.headers_mut().insert(
                hyper::header::ALLOW,
                hyper::header::HeaderValue::from_static("GET, HEAD"),
            );
            return r;
        }
    };
    let Some(rel) = request_path(req.uri().path()) else {
        return status(StatusCode::NOT_FOUND);
    };
    let fd = match open_beneath(root, &rel) {
        Ok(fd) => fd,
        Err(Errno::NOENT) | Err(Errno::NOTDIR) | Err(Errno::LOOP) | Err(Errno::XDEV) => {
            return status(StatusCode::NOT_FOUND)
        }
        Err(Errno::ACCESS) | Err(Errno::PERM) => return status(StatusCode::FORBIDDEN),
        Err(_) => return status(StatusCode::INTERNAL_SERVER_ERROR),
    };
    let st = match fs::fstat(&fd) {
        Ok(st) => st,
        Err(_) => return status(StatusCode::INTERNAL_SERVER_ERROR),
    };
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return status(StatusCode::NOT_FOUND);
    }
    let mut len = st.st_size as u64;
    let body = if head {
        empty()
    } else if len <= SMALL_FILE {
        // Most objects are a few KiB: one read here costs far less than
        // tokio's file reads, which hop to a blocking thread and back for
        // every chunk (and for the end of file).
        let mut data = Vec::with_capacity(len as usize);
        if std::fs::File::from(fd).read_to_end(&mut data).is_err() {
            return status(StatusCode::INTERNAL_SERVER_ERROR);
        }
        len = data.len() as u64;
        Full::new(Bytes::from(data))
            .map_err(|never| match never {})
            .boxed()
    } else {
        let file = tokio::fs::File::from_std(std::fs::File::from(fd));
        let stream = tokio_util::io::ReaderStream::with_capacity(file, 64 << 10);
        StreamBody::new(stream.map_ok(Frame::data)).boxed()
    };
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(
        hyper::header::CONTENT_LENGTH,
        hyper::header::HeaderValue::from(len),
    );
    h.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/octet-stream"),
    );
    r
}

/// The repository-relative path of a request, or None when it is not a
/// plain relative path below the repository.
pub fn request_path(uri_path: &str) -> Option<String> {
    let decoded = percent_decode(uri_path)?;
    let rel = decoded.strip_prefix('/')?;
    if rel.is_empty()
        || rel
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == ".." || c.contains('\0'))
    {
        return None;
    }
    Some(rel.to_string())
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn open_beneath(root: &OwnedFd, rel: &str) -> std::result::Result<OwnedFd, Errno> {
    let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY;
    match fs::openat2(
        root,
        rel,
        flags,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
    ) {
        Err(Errno::NOSYS) => {}
        other => return other,
    }
    // No openat2: walk the components, following no symlink at all.
    let comps: Vec<&str> = rel.split('/').collect();
    let (last, dirs) = comps.split_last().ok_or(Errno::NOENT)?;
    let mut cur: Option<OwnedFd> = None;
    for d in dirs {
        let base = cur.as_ref().unwrap_or(root);
        let next = fs::openat(
            base,
            *d,
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::DIRECTORY | OFlags::NOFOLLOW,
            Mode::empty(),
        )?;
        cur = Some(next);
    }
    let base = cur.as_ref().unwrap_or(root);
    fs::openat(base, *last, flags | OFlags::NOFOLLOW, Mode::empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(request_path("/config").as_deref(), Some("config"));
        assert_eq!(
            request_path("/objects/ab/cd.filez").as_deref(),
            Some("objects/ab/cd.filez")
        );
        for bad in [
            "/",
            "",
            "config",
            "/../x",
            "/a/../b",
            "/a//b",
            "/./a",
            "/a/%2e%2e/b",
            "/a%00b",
            "/%zz",
        ] {
            assert_eq!(request_path(bad), None, "{bad}");
        }
    }
}

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
//! One byte range per request is honoured (`Range: bytes=A-B`, `A-`,
//! `-N`: 206, or 416 when it lies beyond the file), as ostree's
//! trivial-httpd does, for resumed and split fetches; a request for
//! several ranges gets the whole file.

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
    let size = st.st_size as u64;
    let range = req
        .headers()
        .get(hyper::header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map_or(ByteRange::Whole, |v| parse_range(v, size));
    let (offset, mut len) = match range {
        ByteRange::Whole => (0, size),
        ByteRange::Part(first, last) => (first, last - first + 1),
        ByteRange::Unsatisfiable => {
            let mut r = status(StatusCode::RANGE_NOT_SATISFIABLE);
            if let Ok(v) = hyper::header::HeaderValue::from_str(&format!("bytes */{size}")) {
                r.headers_mut().insert(hyper::header::CONTENT_RANGE, v);
            }
            return r;
        }
    };
    let body = if head {
        empty()
    } else {
        // The file, or the range: from its offset, at most its length.
        let mut f = std::fs::File::from(fd);
        if offset > 0 && std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(offset)).is_err() {
            return status(StatusCode::INTERNAL_SERVER_ERROR);
        }
        if len <= SMALL_FILE {
            // Most objects are a few KiB: one read here costs far less
            // than tokio's file reads, which hop to a blocking thread and
            // back for every chunk (and for the end of file).
            let mut data = Vec::with_capacity(len as usize);
            if f.take(len).read_to_end(&mut data).is_err() {
                return status(StatusCode::INTERNAL_SERVER_ERROR);
            }
            len = data.len() as u64;
            Full::new(Bytes::from(data))
                .map_err(|never| match never {})
                .boxed()
        } else {
            let file = tokio::io::AsyncReadExt::take(tokio::fs::File::from_std(f), len);
            let stream = tokio_util::io::ReaderStream::with_capacity(file, 64 << 10);
            StreamBody::new(stream.map_ok(Frame::data)).boxed()
        }
    };
    let mut r = Response::new(body);
    if let ByteRange::Part(first, _) = range {
        *r.status_mut() = StatusCode::PARTIAL_CONTENT;
        let last = first + len.saturating_sub(1);
        if let Ok(v) = hyper::header::HeaderValue::from_str(&format!("bytes {first}-{last}/{size}"))
        {
            r.headers_mut().insert(hyper::header::CONTENT_RANGE, v);
        }
    }
    let h = r.headers_mut();
    h.insert(
        hyper::header::ACCEPT_RANGES,
        hyper::header::HeaderValue::from_static("bytes"),
    );
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

/// What a `Range` header asks of a file of some size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteRange {
    /// No usable range (absent, malformed, several ranges): the whole file.
    Whole,
    /// Bytes `first..=last`, within the file.
    Part(u64, u64),
    /// A well-formed range that lies wholly beyond the file (416).
    Unsatisfiable,
}

/// Parse `bytes=A-B`, `bytes=A-` or `bytes=-N` against a file of `size`
/// bytes (RFC 9110 14.1.2): a last position past the end is clipped to
/// it; a first position at or past the end is unsatisfiable.
pub fn parse_range(header: &str, size: u64) -> ByteRange {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return ByteRange::Whole;
    };
    if spec.contains(',') {
        return ByteRange::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return ByteRange::Whole;
    };
    let num = |t: &str| -> Option<u64> {
        (!t.is_empty() && t.len() <= 19 && t.bytes().all(|c| c.is_ascii_digit()))
            .then(|| t.parse().ok())
            .flatten()
    };
    match (a.trim(), b.trim()) {
        ("", n) => match num(n) {
            None => ByteRange::Whole,
            Some(0) => ByteRange::Unsatisfiable,
            Some(_) if size == 0 => ByteRange::Unsatisfiable,
            Some(n) => ByteRange::Part(size.saturating_sub(n), size - 1),
        },
        (a, b) => {
            let Some(first) = num(a) else {
                return ByteRange::Whole;
            };
            let last = match b {
                "" => u64::MAX,
                b => match num(b) {
                    Some(l) if l >= first => l,
                    _ => return ByteRange::Whole,
                },
            };
            if first >= size {
                ByteRange::Unsatisfiable
            } else {
                ByteRange::Part(first, last.min(size - 1))
            }
        }
    }
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
    fn ranges() {
        use ByteRange::*;
        for (h, want) in [
            ("bytes=0-9", Part(0, 9)),
            ("bytes=10-", Part(10, 99)),
            ("bytes=90-200", Part(90, 99)),
            ("bytes=-10", Part(90, 99)),
            ("bytes=-1000", Part(0, 99)),
            ("bytes=100-", Unsatisfiable),
            ("bytes=-0", Unsatisfiable),
            ("bytes=5-4", Whole),
            ("bytes=0-1,5-6", Whole),
            ("bytes=x-", Whole),
            ("items=0-1", Whole),
            ("bytes=+1-2", Whole),
            ("bytes=99999999999999999999-", Whole),
        ] {
            assert_eq!(parse_range(h, 100), want, "{h}");
        }
        assert_eq!(parse_range("bytes=0-", 0), Unsatisfiable);
        assert_eq!(parse_range("bytes=-5", 0), Unsatisfiable);
    }

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

//! HTTP fetching for static ostree servers.
//!
//! Built on `reqwest` (hyper + tokio + rustls with the ring provider):
//! a pooled async client keeps connections alive and negotiates HTTP/2 by
//! ALPN where a TLS server offers it, so one connection can carry all the
//! requests a pull keeps in flight. A blocking client such as `ureq` would
//! need a thread per in-flight request and has no HTTP/2. Every request gets
//! retries with exponential back-off for connection errors, timeouts, 5xx,
//! 408 and 429 (never for 404), a connect timeout, a stall guard (no bytes
//! for `stall_timeout` aborts the attempt) and a hard body-size limit that is
//! checked before and while reading. Large bodies spill to an unnamed temp
//! file instead of memory. `file://` URLs are read from the local disk.

use crate::error::{Result, TransportError};
use std::io::{Read, Seek, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Bodies larger than this go to a temp file when a spill dir is given.
const SPILL_THRESHOLD: usize = 1 << 20;

#[derive(Clone, Debug)]
pub struct FetchOptions {
    /// Retries after the first attempt (ostree's n-network-retries is 5).
    pub retries: u32,
    pub connect_timeout: Duration,
    /// Abort an attempt when no bytes arrive for this long.
    pub stall_timeout: Duration,
    /// First back-off delay; doubles per retry, capped at 5 s.
    pub backoff: Duration,
    /// Accept any TLS certificate (`tls-permissive`).
    pub tls_permissive: bool,
    /// Extra PEM CA bundle (`tls-ca-path`).
    pub tls_ca_pem: Option<Vec<u8>>,
    /// Explicit proxy (`proxy`); environment proxies are not used.
    pub proxy: Option<String>,
    /// Allow HTTP/2 (negotiated by ALPN over TLS; plain http:// stays
    /// HTTP/1.1 with keep-alive, as with ostree's libcurl). `http2=false`
    /// forces HTTP/1.1 everywhere.
    pub http2: bool,
    /// Extra request headers (`pull --http-header K=V`).
    pub headers: Vec<(String, String)>,
    /// Added after the User-Agent's `libostree/VERSION`
    /// (`--append-user-agent`).
    pub append_user_agent: Option<String>,
}

/// The ostree release whose command line and formats oxtree follows;
/// `oxtree --version` reports it as libostree's version, and requests
/// carry it in the User-Agent (`libostree/VERSION`) as ostree's do, for
/// servers and scripts that check it.
pub const OSTREE_COMPAT_VERSION: &str = "2022.7";

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            retries: 5,
            connect_timeout: Duration::from_secs(30),
            stall_timeout: Duration::from_secs(30),
            backoff: Duration::from_millis(200),
            tls_permissive: false,
            tls_ca_pem: None,
            proxy: None,
            http2: true,
            headers: Vec::new(),
            append_user_agent: None,
        }
    }
}

/// A fetched body.
pub enum Body {
    Mem(Vec<u8>),
    /// Spilled to an unnamed temp file, rewound to the start.
    File(std::fs::File),
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Body::Mem(b) => write!(f, "Body::Mem({} bytes)", b.len()),
            Body::File(file) => f.debug_tuple("Body::File").field(file).finish(),
        }
    }
}

impl Body {
    pub fn into_reader(self) -> Box<dyn Read + Send> {
        match self {
            Body::Mem(v) => Box::new(std::io::Cursor::new(v)),
            Body::File(f) => Box::new(std::io::BufReader::with_capacity(128 << 10, f)),
        }
    }

    pub fn into_vec(self) -> std::io::Result<Vec<u8>> {
        match self {
            Body::Mem(v) => Ok(v),
            Body::File(mut f) => {
                let mut v = Vec::new();
                f.read_to_end(&mut v)?;
                Ok(v)
            }
        }
    }
}

/// A cheap-to-clone HTTP client plus a byte counter for progress.
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    opts: FetchOptions,
    bytes: Arc<AtomicU64>,
    /// The server closes the connection after each response (HTTP/1.0,
    /// `Connection: close`): see [`Fetcher::parallelism`].
    closing: Arc<AtomicBool>,
    /// The server answered a range request with something else: no more
    /// split fetches ([`Fetcher::get_split`]).
    no_ranges: Arc<AtomicBool>,
}

/// Requests in flight at once against a server that closes every
/// connection: each request is then a new connection, and simple servers
/// (python's http.server listens with a backlog of 5) drop connection
/// attempts beyond their accept queue, which costs the client a one-second
/// SYN retransmit each.
const CLOSING_SERVER_PARALLELISM: usize = 4;

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher")
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

enum Attempt {
    Retry(String),
    Fatal(TransportError),
}

impl Fetcher {
    pub fn new(opts: FetchOptions) -> Result<Fetcher> {
        // reqwest is built without a bundled crypto provider; use ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let extra = match &opts.tls_ca_pem {
            Some(pem) => reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| TransportError::Config(format!("tls-ca-path: {e}")))?,
            None => Vec::new(),
        };
        let client = match Self::builder(&opts)?.tls_certs_merge(extra.clone()).build() {
            Ok(c) => c,
            // The platform verifier refuses to start on a system without
            // any CA certificate (a minimal image lacking ca-certificates):
            // plain http must still work there, and https trusts only
            // tls-ca-path.
            Err(e) if !opts.tls_permissive => Self::builder(&opts)?
                .tls_certs_only(extra)
                .build()
                .map_err(|_| {
                TransportError::Config(format!("HTTP client: {}", error_chain(&e)))
            })?,
            Err(e) => return Err(TransportError::Config(format!("HTTP client: {e}"))),
        };
        Ok(Fetcher {
            client,
            opts,
            bytes: Arc::new(AtomicU64::new(0)),
            closing: Arc::new(AtomicBool::new(false)),
            no_ranges: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Everything of the client but its trusted roots.
    fn builder(opts: &FetchOptions) -> Result<reqwest::ClientBuilder> {
        let mut ua = format!("libostree/{OSTREE_COMPAT_VERSION}");
        if let Some(a) = &opts.append_user_agent {
            ua.push(' ');
            ua.push_str(a);
        }
        let mut headers = reqwest::header::HeaderMap::new();
        for (k, v) in &opts.headers {
            let name = reqwest::header::HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| TransportError::Config(format!("invalid HTTP header name '{k}'")))?;
            let value = reqwest::header::HeaderValue::from_str(v).map_err(|_| {
                TransportError::Config(format!("invalid HTTP header value for '{k}'"))
            })?;
            headers.append(name, value);
        }
        let mut b = reqwest::Client::builder()
            .user_agent(ua)
            .default_headers(headers)
            .connect_timeout(opts.connect_timeout)
            .read_timeout(opts.stall_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(32)
            .no_proxy();
        if let Some(p) = &opts.proxy {
            let proxy = reqwest::Proxy::all(p)
                .map_err(|e| TransportError::Config(format!("proxy '{p}': {e}")))?;
            b = b.proxy(proxy);
        }
        if !opts.http2 {
            b = b.http1_only();
        }
        if opts.tls_permissive {
            b = b.tls_danger_accept_invalid_certs(true);
        }
        Ok(b)
    }

    /// How many requests to keep in flight when `want` are wanted: fewer
    /// once the server turned out to close every connection.
    pub fn parallelism(&self, want: usize) -> usize {
        if self.closing.load(Ordering::Relaxed) {
            want.min(CLOSING_SERVER_PARALLELISM)
        } else {
            want
        }
    }

    /// Bytes received so far (all requests, all attempts).
    pub fn bytes_received(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// GET `url` with retries. `Ok(None)` on 404/410. Bodies over `limit`
    /// bytes are an error; with `spill` set, bodies over 1 MiB go to an
    /// unnamed temp file in that directory.
    pub async fn get(&self, url: &str, limit: u64, spill: Option<PathBuf>) -> Result<Option<Body>> {
        if let Some(path) = url.strip_prefix("file://") {
            return self.get_file(url, path, limit);
        }
        let mut delay = self.opts.backoff;
        let mut attempt = 0;
        let mut part = Partial::default();
        loop {
            match self.get_once(url, limit, spill.as_ref(), &mut part).await {
                Ok(b) => return Ok(b),
                Err(Attempt::Fatal(e)) => return Err(e),
                Err(Attempt::Retry(reason)) => {
                    if attempt >= self.opts.retries {
                        let tries = attempt + 1;
                        return Err(TransportError::Http {
                            url: url.to_string(),
                            reason: format!("{reason} (gave up after {tries} attempts)"),
                        });
                    }
                    attempt += 1;
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    fn get_file(&self, url: &str, path: &str, limit: u64) -> Result<Option<Body>> {
        let f = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(TransportError::io(format!("reading {url}"), e)),
        };
        let mut v = Vec::new();
        f.take(limit.saturating_add(1))
            .read_to_end(&mut v)
            .map_err(|e| TransportError::io(format!("reading {url}"), e))?;
        if v.len() as u64 > limit {
            return Err(TransportError::TooLarge {
                url: url.to_string(),
                limit,
            });
        }
        self.bytes.fetch_add(v.len() as u64, Ordering::Relaxed);
        Ok(Some(Body::Mem(v)))
    }

    async fn get_once(
        &self,
        url: &str,
        limit: u64,
        spill: Option<&PathBuf>,
        part: &mut Partial,
    ) -> std::result::Result<Option<Body>, Attempt> {
        let fatal = |reason: String| {
            Attempt::Fatal(TransportError::Http {
                url: url.to_string(),
                reason,
            })
        };
        // What an earlier attempt received is kept: ask for the rest only.
        let mut req = self.client.get(url);
        if part.total > 0 {
            req = req.header(reqwest::header::RANGE, format!("bytes={}-", part.total));
        }
        let mut resp = match req.send().await {
            Ok(r) => r,
            Err(e) if e.is_builder() => return Err(fatal(error_chain(&e))),
            Err(e) => return Err(Attempt::Retry(error_chain(&e))),
        };
        let status = resp.status();
        let closes = resp.version() == reqwest::Version::HTTP_10
            || resp
                .headers()
                .get(reqwest::header::CONNECTION)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        if closes {
            self.closing.store(true, Ordering::Relaxed);
        }
        if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::GONE {
            return Ok(None);
        }
        if status.is_server_error()
            || status == reqwest::StatusCode::REQUEST_TIMEOUT
            || status == reqwest::StatusCode::TOO_MANY_REQUESTS
        {
            return Err(Attempt::Retry(format!("server returned {status}")));
        }
        if status == reqwest::StatusCode::RANGE_NOT_SATISFIABLE && part.total > 0 {
            // The server has no more than we hold (or changed): start over.
            part.reset();
            return Err(Attempt::Retry(format!("server returned {status}")));
        }
        if !status.is_success() {
            return Err(fatal(format!("server returned {status}")));
        }
        // A 206 continues where we stopped (its Content-Range must say
        // so); anything else is the whole body again.
        let resumed = status == reqwest::StatusCode::PARTIAL_CONTENT
            && part.total > 0
            && content_range(&resp).map(|(first, _)| first) == Some(part.total);
        if !resumed {
            part.reset();
        }
        let announced = resp.content_length().map(|n| n + part.total);
        if announced.is_some_and(|n| n > limit) {
            return Err(Attempt::Fatal(TransportError::TooLarge {
                url: url.to_string(),
                limit,
            }));
        }
        if part.total == 0 {
            let cap = announced.unwrap_or(0).min(SPILL_THRESHOLD as u64) as usize;
            part.mem.reserve(cap);
        }
        loop {
            let chunk = match tokio::time::timeout(self.opts.stall_timeout, resp.chunk()).await {
                Err(_) => {
                    return Err(Attempt::Retry(format!(
                        "no data for {} s",
                        self.opts.stall_timeout.as_secs()
                    )))
                }
                Ok(Err(e)) => {
                    // The connection ended (or broke) mid-body: say so in
                    // the words ostree's fetcher uses (scripts match them).
                    // What arrived is kept for the next attempt.
                    let got = match announced {
                        Some(n) => format!(" ({} of {n} bytes)", part.total),
                        None => format!(" ({} bytes)", part.total),
                    };
                    return Err(Attempt::Retry(format!(
                        "Transferred a partial file{got}: {}",
                        error_chain(&e)
                    )));
                }
                Ok(Ok(None)) => break,
                Ok(Ok(Some(c))) => c,
            };
            part.total += chunk.len() as u64;
            self.bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            if part.total > limit {
                return Err(Attempt::Fatal(TransportError::TooLarge {
                    url: url.to_string(),
                    limit,
                }));
            }
            if let Some(f) = part.file.as_mut() {
                f.write_all(&chunk)
                    .map_err(|e| Attempt::Fatal(TransportError::io("writing a temp file", e)))?;
                continue;
            }
            part.mem.extend_from_slice(&chunk);
            if part.mem.len() > SPILL_THRESHOLD {
                if let Some(dir) = spill {
                    let mut f = tempfile::tempfile_in(dir).map_err(|e| {
                        Attempt::Fatal(TransportError::io("creating a temp file", e))
                    })?;
                    f.write_all(&part.mem).map_err(|e| {
                        Attempt::Fatal(TransportError::io("writing a temp file", e))
                    })?;
                    part.mem = Vec::new();
                    part.file = Some(f);
                }
            }
        }
        if let Some(n) = announced {
            if n != part.total {
                return Err(Attempt::Retry(format!(
                    "Transferred a partial file ({} of {n} bytes)",
                    part.total
                )));
            }
        }
        match part.file.take() {
            Some(mut f) => {
                f.rewind()
                    .map_err(|e| Attempt::Fatal(TransportError::io("rewinding a temp file", e)))?;
                Ok(Some(Body::File(f)))
            }
            None => Ok(Some(Body::Mem(std::mem::take(&mut part.mem)))),
        }
    }
}

/// Smallest piece [`Fetcher::get_split`] cuts a body into.
const SPLIT_MIN_PIECE: u64 = 256 << 10;
/// Most pieces one body is cut into.
pub const SPLIT_MAX_PIECES: usize = 8;

/// One range request's answer.
enum RangeReply {
    Piece(Vec<u8>),
    NotFound,
    /// The server answered with the whole body (it ignores Range) or with
    /// another range: fetch the body in one piece.
    NoRanges,
}

impl Fetcher {
    /// GET a body whose size is known (a static delta part: the
    /// superblock gives it) as up to `pieces` byte ranges fetched at once,
    /// each on its own connection, assembled in order. On a link with
    /// latency and loss one TCP connection crawls through slow start and
    /// halves its window at every loss; several share the work and the
    /// losses. Bodies too small to split, `file://` URLs, servers that
    /// close every connection, and servers that ignore Range fall back to
    /// [`Fetcher::get`]. Whatever is assembled is verified by the caller
    /// (a part hashes to its checksum).
    pub async fn get_split(
        &self,
        url: &str,
        size: u64,
        pieces: usize,
        limit: u64,
        spill: Option<PathBuf>,
    ) -> Result<Option<Body>> {
        let pieces = (size / SPLIT_MIN_PIECE).min(pieces.min(SPLIT_MAX_PIECES) as u64);
        if pieces < 2
            || size > limit
            || url.starts_with("file://")
            || self.closing.load(Ordering::Relaxed)
            || self.no_ranges.load(Ordering::Relaxed)
        {
            return self.get(url, limit, spill).await;
        }
        let step = size.div_ceil(pieces);
        // A big body goes straight to a temp file, each piece written at
        // its offset: memory stays at a chunk per piece.
        let sink = match &spill {
            Some(dir) if size as usize > SPILL_THRESHOLD => {
                Some(Arc::new(tempfile::tempfile_in(dir).map_err(|e| {
                    TransportError::io("creating a temp file", e)
                })?))
            }
            _ => None,
        };
        let mut set = tokio::task::JoinSet::new();
        for i in 0..pieces {
            let start = i * step;
            let end = (start + step).min(size) - 1;
            let (f, u, sink) = (self.clone(), url.to_string(), sink.clone());
            set.spawn(async move { (i as usize, f.get_range(&u, start, end, size, sink).await) });
        }
        let mut got: Vec<Option<Vec<u8>>> = vec![None; pieces as usize];
        while let Some(done) = set.join_next().await {
            let (i, r) = done.map_err(|e| TransportError::Http {
                url: url.to_string(),
                reason: format!("a range request ended: {e}"),
            })?;
            match r? {
                RangeReply::Piece(v) => got[i] = Some(v),
                RangeReply::NotFound => return Ok(None),
                RangeReply::NoRanges => {
                    set.abort_all();
                    self.no_ranges.store(true, Ordering::Relaxed);
                    return self.get(url, limit, spill).await;
                }
            }
        }
        drop(set);
        if let Some(sink) = sink {
            let mut f = Arc::try_unwrap(sink).map_err(|_| TransportError::Http {
                url: url.to_string(),
                reason: "a range request still holds the temp file".into(),
            })?;
            f.rewind()
                .map_err(|e| TransportError::io("rewinding a temp file", e))?;
            return Ok(Some(Body::File(f)));
        }
        let parts = got.into_iter().flatten();
        let mut v = Vec::with_capacity(size as usize);
        for p in parts {
            v.extend_from_slice(&p);
        }
        Ok(Some(Body::Mem(v)))
    }

    /// Bytes `start..=end` of a body of `total` bytes, with the retries
    /// and stall guard of [`Fetcher::get`]; a retry asks only for what is
    /// still missing. With `sink`, the bytes are written there at their
    /// offset and the piece returned is empty.
    async fn get_range(
        &self,
        url: &str,
        start: u64,
        end: u64,
        total: u64,
        sink: Option<Arc<std::fs::File>>,
    ) -> Result<RangeReply> {
        use std::os::unix::fs::FileExt;
        let want = (end - start + 1) as usize;
        let mut buf: Vec<u8> = Vec::with_capacity(if sink.is_some() { 0 } else { want });
        // Bytes of this range received so far.
        let mut have = 0usize;
        let mut delay = self.opts.backoff;
        let mut attempt = 0;
        let http = |reason: String| TransportError::Http {
            url: url.to_string(),
            reason,
        };
        loop {
            let from = start + have as u64;
            let req = self
                .client
                .get(url)
                .header(reqwest::header::RANGE, format!("bytes={from}-{end}"));
            let reason = match req.send().await {
                Err(e) if e.is_builder() => return Err(http(error_chain(&e))),
                Err(e) => error_chain(&e),
                Ok(mut resp) => {
                    let status = resp.status();
                    if status == reqwest::StatusCode::NOT_FOUND
                        || status == reqwest::StatusCode::GONE
                    {
                        return Ok(RangeReply::NotFound);
                    }
                    if status.is_success() && status != reqwest::StatusCode::PARTIAL_CONTENT {
                        return Ok(RangeReply::NoRanges);
                    }
                    if status == reqwest::StatusCode::PARTIAL_CONTENT {
                        let (first, size) = content_range(&resp).unwrap_or((u64::MAX, None));
                        if first != from {
                            return Ok(RangeReply::NoRanges);
                        }
                        if size.is_some_and(|n| n != total) {
                            return Err(http(format!(
                                "the server has {} bytes, the superblock says {total}",
                                size.unwrap_or(0)
                            )));
                        }
                        loop {
                            match tokio::time::timeout(self.opts.stall_timeout, resp.chunk()).await
                            {
                                Err(_) => {
                                    break format!(
                                        "no data for {} s",
                                        self.opts.stall_timeout.as_secs()
                                    )
                                }
                                Ok(Err(e)) => {
                                    break format!(
                                        "Transferred a partial file ({} of {want} bytes): {}",
                                        have,
                                        error_chain(&e)
                                    )
                                }
                                Ok(Ok(None)) if have == want => return Ok(RangeReply::Piece(buf)),
                                Ok(Ok(None)) => {
                                    break format!(
                                        "Transferred a partial file ({have} of {want} bytes)"
                                    )
                                }
                                Ok(Ok(Some(c))) => {
                                    self.bytes.fetch_add(c.len() as u64, Ordering::Relaxed);
                                    if have + c.len() > want {
                                        return Err(http(format!(
                                            "the server sent more than the {want} bytes of range {from}-{end}"
                                        )));
                                    }
                                    match &sink {
                                        Some(f) => {
                                            f.write_all_at(&c, start + have as u64).map_err(
                                                |e| TransportError::io("writing a temp file", e),
                                            )?
                                        }
                                        None => buf.extend_from_slice(&c),
                                    }
                                    have += c.len();
                                }
                            }
                        }
                    } else if status.is_server_error()
                        || status == reqwest::StatusCode::REQUEST_TIMEOUT
                        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
                    {
                        format!("server returned {status}")
                    } else {
                        return Err(http(format!("server returned {status}")));
                    }
                }
            };
            if attempt >= self.opts.retries {
                return Err(http(format!(
                    "{reason} (gave up after {} attempts)",
                    attempt + 1
                )));
            }
            attempt += 1;
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }
}

/// `Content-Range: bytes A-B/N`: A, and N unless it is `*`.
fn content_range(resp: &reqwest::Response) -> Option<(u64, Option<u64>)> {
    let v = resp
        .headers()
        .get(reqwest::header::CONTENT_RANGE)?
        .to_str()
        .ok()?;
    let range = v.strip_prefix("bytes ")?;
    let (span, size) = range.split_once('/')?;
    let first = span.split('-').next()?.trim().parse().ok()?;
    Some((first, size.trim().parse().ok()))
}

/// What the attempts at one GET have received so far: a later attempt
/// asks for the rest with a Range request. Whatever is assembled is
/// verified by the caller (objects hash to their names), so a server that
/// answers a range with other bytes is caught there.
#[derive(Default)]
struct Partial {
    mem: Vec<u8>,
    file: Option<std::fs::File>,
    total: u64,
}

impl Partial {
    fn reset(&mut self) {
        self.mem.clear();
        self.file = None;
        self.total = 0;
    }
}

/// A reqwest error with its sources ("error sending request: connection
/// refused").
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    oxtree_io::Chain(e).to_string()
}

/// Join a base URL and a repository-relative path.
pub fn join_url(base: &str, rel: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        rel.trim_start_matches('/')
    )
}

/// A multi-threaded runtime for the blocking entry points.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("oxtree-fetch")
        .build()
        .map_err(|e| TransportError::io("starting the async runtime", e))
}

/// The pull client's runtime: one thread runs the fetches and the object
/// imports. The kernel keeps receiving into the sockets while an object is
/// written, and no wake-up crosses threads per finished fetch; with worker
/// threads, the futex and epoll traffic cost more than the overlap won.
pub fn client_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| TransportError::io("starting the async runtime", e))
}

/// Fetch one small file synchronously (config, summary, a ref).
pub fn get_blocking(fetcher: &Fetcher, url: &str, limit: u64) -> Result<Option<Vec<u8>>> {
    let rt = runtime()?;
    let body = rt.block_on(fetcher.get(url, limit, None))?;
    body.map(|b| b.into_vec())
        .transpose()
        .map_err(|e| TransportError::io(format!("reading {url}"), e))
}

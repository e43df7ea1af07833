//! Metalink (version 3) documents: where a remote's `summary` can be
//! fetched from, with its size and SHA-256/SHA-512 digest.
//!
//! A remote added as `metalink=URL` (ostree stores that as the remote's
//! `metalink` option, with no `url`) gets its summary through such a
//! document: the `<file name="summary">` entry lists `<url>`s, tried in
//! document order; the first whose body has the listed size and digest
//! wins, and the directory of that URL becomes the remote's base URL for
//! everything else (config, objects, deltas), as ostree does.
//!
//! [`parse`] only reads the document (no I/O, fuzzed in
//! `fuzz/fuzz_targets/metalink.rs`); [`fetch`] fetches it and tries its
//! targets. Unknown elements anywhere are skipped with all they contain.
//! Error texts follow ostree's (scripts match them).

use crate::error::{Result, TransportError};
use crate::fetch::Fetcher;
use quick_xml::events::{BytesStart, Event};
use sha2::Digest;
use thiserror::Error;

/// Largest metalink document accepted.
pub const MAX_METALINK_SIZE: u64 = 1 << 20;
/// Elements nested deeper than this are refused (untrusted input).
const MAX_DEPTH: usize = 256;
/// More `<url>`s than this in one `<file>` are ignored.
const MAX_URLS: usize = 1024;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum MetalinkError {
    /// Not well-formed XML (the text says where).
    #[error("{0}")]
    Xml(String),
    #[error("No <file> element found")]
    NoFileElement,
    /// The document lists other files only.
    #[error("No <file name='{0}'> found")]
    FileNotListed(String),
    #[error("No <size> element found or it is zero")]
    NoSize,
    #[error("No <verification> element with known <hash type=> found")]
    NoKnownHash,
    #[error("No <verification> hash for sha256 or sha512 found")]
    NoHash,
    #[error("Invalid hash digest for {0}")]
    InvalidDigest(&'static str),
    #[error("No <url method='http'> elements found")]
    NoUrls,
    #[error("Expected size is {expected} bytes but content is {actual} bytes")]
    SizeMismatch { expected: u64, actual: u64 },
    #[error("Expected checksum is {expected} but actual is {actual}")]
    ChecksumMismatch { expected: String, actual: String },
}

/// The entry of one file in a metalink document, checked as far as the
/// document alone allows: a non-zero size, a well-formed SHA-256 or SHA-512
/// digest and at least one http(s) URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetalinkFile {
    pub size: u64,
    /// Lower-case hex digests.
    pub sha256: Option<String>,
    pub sha512: Option<String>,
    /// http(s) URLs, in document order.
    pub urls: Vec<String>,
}

impl MetalinkFile {
    /// Whether `data` is the file this entry describes: its size, then its
    /// SHA-512 digest when listed, else its SHA-256 one.
    pub fn check(&self, data: &[u8]) -> std::result::Result<(), MetalinkError> {
        if data.len() as u64 != self.size {
            return Err(MetalinkError::SizeMismatch {
                expected: self.size,
                actual: data.len() as u64,
            });
        }
        let (expected, actual) = match (&self.sha512, &self.sha256) {
            (Some(e), _) => (e, hex::encode(sha2::Sha512::digest(data))),
            (None, Some(e)) => (e, hex::encode(sha2::Sha256::digest(data))),
            (None, None) => return Err(MetalinkError::NoHash),
        };
        if *expected != actual {
            return Err(MetalinkError::ChecksumMismatch {
                expected: expected.clone(),
                actual,
            });
        }
        Ok(())
    }
}

/// Where the parser is: the elements it understands, or inside an
/// unknown one (skipped with everything in it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Initial,
    Metalink,
    Files,
    File,
    Size,
    Verification,
    Hash,
    Resources,
    Url,
}

#[derive(Default)]
struct Found {
    any_file: bool,
    our_file: bool,
    size: u64,
    known_hash: bool,
    sha256: Option<String>,
    sha512: Option<String>,
    urls: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum HashKind {
    Sha256,
    Sha512,
    Other,
}

struct Parser<'a> {
    requested: &'a str,
    state: State,
    /// Inside an unknown element: how deep, and the state to return to.
    skip: Option<(usize, State)>,
    hash: HashKind,
    text: String,
    found: Found,
}

fn attr(e: &BytesStart<'_>, name: &str) -> std::result::Result<Option<String>, MetalinkError> {
    for a in e.attributes() {
        let a = a.map_err(|err| MetalinkError::Xml(err.to_string()))?;
        if a.key.as_ref() == name {
            let v = a
                .normalized_value(quick_xml::XmlVersion::Explicit1_0)
                .map_err(|err| MetalinkError::Xml(err.to_string()))?;
            return Ok(Some(v.into_owned()));
        }
    }
    Ok(None)
}

fn required(e: &BytesStart<'_>, name: &str) -> std::result::Result<String, MetalinkError> {
    attr(e, name)?.ok_or_else(|| {
        MetalinkError::Xml(format!(
            "Element '{}' requires attribute '{name}'",
            e.name().as_ref()
        ))
    })
}

impl Parser<'_> {
    fn enter_unknown(&mut self) {
        self.skip = Some((0, self.state));
    }

    fn start(&mut self, e: &BytesStart<'_>) -> std::result::Result<(), MetalinkError> {
        if let Some((depth, prev)) = self.skip {
            self.skip = Some((depth + 1, prev));
            return Ok(());
        }
        let name = e.name();
        let name = name.as_ref();
        self.text.clear();
        self.state = match (self.state, name) {
            (State::Initial, "metalink") => State::Metalink,
            (State::Metalink, "files") => State::Files,
            // Once our file gave URLs, further entries are not read.
            (State::Files, _) if !self.found.urls.is_empty() => {
                self.enter_unknown();
                return Ok(());
            }
            (State::Files, "file") => {
                let file_name = required(e, "name")?;
                self.found.any_file = true;
                if file_name != self.requested {
                    self.enter_unknown();
                    return Ok(());
                }
                self.found.our_file = true;
                State::File
            }
            (State::File, "size") => State::Size,
            (State::File, "verification") => State::Verification,
            (State::File, "resources") => State::Resources,
            (State::Verification, "hash") => {
                self.hash = match required(e, "type")?.as_str() {
                    "sha256" => HashKind::Sha256,
                    "sha512" => HashKind::Sha512,
                    _ => HashKind::Other,
                };
                if self.hash != HashKind::Other {
                    self.found.known_hash = true;
                }
                State::Hash
            }
            (State::Resources, _) => {
                // The size and a digest must come before the resources.
                if self.found.size == 0 {
                    return Err(MetalinkError::NoSize);
                }
                if !self.found.known_hash {
                    return Err(MetalinkError::NoKnownHash);
                }
                if name != "url" {
                    self.enter_unknown();
                    return Ok(());
                }
                let protocol = required(e, "protocol")?;
                if !matches!(protocol.as_str(), "http" | "https") {
                    self.enter_unknown();
                    return Ok(());
                }
                State::Url
            }
            _ => {
                self.enter_unknown();
                return Ok(());
            }
        };
        Ok(())
    }

    fn end(&mut self) {
        if let Some((depth, prev)) = self.skip {
            self.skip = match depth {
                0 => {
                    self.state = prev;
                    None
                }
                d => Some((d - 1, prev)),
            };
            return;
        }
        let text = std::mem::take(&mut self.text);
        let text = text.trim();
        self.state = match self.state {
            State::Initial => State::Initial,
            State::Metalink => State::Initial,
            State::Files => State::Metalink,
            State::File => State::Files,
            State::Size => {
                // Like strtoull: leading digits, 0 when there are none.
                let digits: String = text.chars().take_while(char::is_ascii_digit).collect();
                self.found.size = digits.parse().unwrap_or(0);
                State::File
            }
            State::Verification | State::Resources => State::File,
            State::Hash => {
                match self.hash {
                    HashKind::Sha256 => self.found.sha256 = Some(text.to_string()),
                    HashKind::Sha512 => self.found.sha512 = Some(text.to_string()),
                    HashKind::Other => {}
                }
                State::Verification
            }
            State::Url => {
                let ok = text.starts_with("http://") || text.starts_with("https://");
                if ok && self.found.urls.len() < MAX_URLS {
                    self.found.urls.push(text.to_string());
                }
                State::Resources
            }
        };
    }

    fn text(&mut self, t: &str) {
        if self.skip.is_none() && matches!(self.state, State::Size | State::Hash | State::Url) {
            // Bounded: no value we read is longer than a URL.
            if self.text.len() + t.len() <= 64 << 10 {
                self.text.push_str(t);
            }
        }
    }
}

fn valid_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// An entity reference in text: the five XML ones and character
/// references; anything else is an error (no DTDs here).
fn resolve_entity(r: &quick_xml::events::BytesRef<'_>) -> std::result::Result<char, MetalinkError> {
    if let Some(c) = r
        .resolve_char_ref()
        .map_err(|e| MetalinkError::Xml(e.to_string()))?
    {
        return Ok(c);
    }
    match r.as_ref() {
        "lt" => Ok('<'),
        "gt" => Ok('>'),
        "amp" => Ok('&'),
        "quot" => Ok('"'),
        "apos" => Ok('\''),
        other => Err(MetalinkError::Xml(format!("Entity '{other}' is not known"))),
    }
}

/// Read a metalink document and the entry of file `requested` in it.
pub fn parse(xml: &[u8], requested: &str) -> std::result::Result<MetalinkFile, MetalinkError> {
    let mut reader = quick_xml::Reader::from_reader(xml);
    reader.config_mut().check_end_names = true;
    let mut p = Parser {
        requested,
        state: State::Initial,
        skip: None,
        hash: HashKind::Other,
        text: String::new(),
        found: Found::default(),
    };
    let mut depth = 0usize;
    let mut seen_root = false;
    loop {
        let pos = reader.buffer_position();
        let ev = reader.read_event().map_err(|e| {
            MetalinkError::Xml(format!("Error on byte {}: {e}", reader.error_position()))
        })?;
        match ev {
            Event::Start(e) => {
                if depth == 0 && seen_root {
                    return Err(MetalinkError::Xml(format!(
                        "Error on byte {pos}: a second top-level element"
                    )));
                }
                seen_root = true;
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(MetalinkError::Xml("Elements nested too deeply".into()));
                }
                p.start(&e)?;
            }
            Event::Empty(e) => {
                if depth == 0 && seen_root {
                    return Err(MetalinkError::Xml(format!(
                        "Error on byte {pos}: a second top-level element"
                    )));
                }
                seen_root = true;
                p.start(&e)?;
                p.end();
            }
            Event::End(_) => {
                depth -= 1;
                p.end();
            }
            Event::Text(t) => {
                let s = t.xml10_content();
                if depth == 0 && !s.trim().is_empty() {
                    return Err(MetalinkError::Xml(if seen_root {
                        format!("Error on byte {pos}: text after the document element")
                    } else {
                        // GLib's words, which scripts match.
                        "Document must begin with an element (e.g. <book>)".into()
                    }));
                }
                p.text(&s);
            }
            Event::CData(t) => {
                if depth == 0 {
                    return Err(MetalinkError::Xml(
                        "Document must begin with an element (e.g. <book>)".into(),
                    ));
                }
                p.text(&t.xml10_content());
            }
            Event::GeneralRef(r) => {
                if depth == 0 {
                    return Err(MetalinkError::Xml(
                        "Document must begin with an element (e.g. <book>)".into(),
                    ));
                }
                let c = resolve_entity(&r)?;
                p.text(c.encode_utf8(&mut [0; 4]));
            }
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
            Event::Eof => break,
        }
    }
    if !seen_root {
        return Err(MetalinkError::Xml(
            "Document was empty or contained only whitespace".into(),
        ));
    }
    if depth != 0 {
        return Err(MetalinkError::Xml(
            "Document ended unexpectedly with elements still open".into(),
        ));
    }
    let f = p.found;
    if !f.any_file {
        return Err(MetalinkError::NoFileElement);
    }
    if !f.our_file {
        return Err(MetalinkError::FileNotListed(requested.to_string()));
    }
    if f.sha256.is_none() && f.sha512.is_none() {
        return Err(MetalinkError::NoHash);
    }
    if f.sha256.as_deref().is_some_and(|h| !valid_hex(h, 64)) {
        return Err(MetalinkError::InvalidDigest("sha256"));
    }
    if f.sha512.as_deref().is_some_and(|h| !valid_hex(h, 128)) {
        return Err(MetalinkError::InvalidDigest("sha512"));
    }
    if f.urls.is_empty() {
        return Err(MetalinkError::NoUrls);
    }
    Ok(MetalinkFile {
        size: f.size,
        sha256: f.sha256,
        sha512: f.sha512,
        urls: f.urls,
    })
}

/// What [`fetch`] found: the URL that served the file and its bytes.
#[derive(Clone, Debug)]
pub struct MetalinkTarget {
    pub url: String,
    pub data: Vec<u8>,
}

impl MetalinkTarget {
    /// The directory of the target URL: the base URL of the repository
    /// the file belongs to (`http://h/repo/summary` → `http://h/repo`).
    pub fn base_url(&self) -> String {
        let u = self.url.split(['?', '#']).next().unwrap_or(&self.url);
        match u.rfind('/') {
            Some(i) if i > u.find("://").map_or(0, |s| s + 2) => u[..i].to_string(),
            _ => u.to_string(),
        }
    }
}

/// Fetch the metalink document at `url` and then file `requested`
/// (at most `limit` bytes) from the first of its URLs that serves it
/// with the listed size and digest.
pub async fn fetch(
    fetcher: &Fetcher,
    url: &str,
    requested: &str,
    limit: u64,
) -> Result<MetalinkTarget> {
    let err = |source: MetalinkError| TransportError::Metalink {
        url: url.to_string(),
        source,
    };
    let doc = fetcher
        .get(url, MAX_METALINK_SIZE, None)
        .await?
        .ok_or_else(|| TransportError::NotFound {
            url: url.to_string(),
        })?
        .into_vec()
        .map_err(|e| TransportError::io(format!("reading {url}"), e))?;
    let file = parse(&doc, requested).map_err(err)?;
    let mut last = String::new();
    for target in &file.urls {
        let got = match fetcher.get(target, limit, None).await {
            Ok(Some(b)) => b
                .into_vec()
                .map_err(|e| TransportError::io(format!("reading {target}"), e)),
            Ok(None) => Err(TransportError::NotFound {
                url: target.clone(),
            }),
            Err(e) => Err(e),
        };
        match got.and_then(|data| match file.check(&data) {
            Ok(()) => Ok(data),
            Err(e) => Err(err(e)),
        }) {
            Ok(data) => {
                return Ok(MetalinkTarget {
                    url: target.clone(),
                    data,
                })
            }
            Err(TransportError::Metalink { source, .. }) => last = source.to_string(),
            Err(e) => last = e.to_string(),
        }
    }
    Err(TransportError::MetalinkExhausted {
        url: url.to_string(),
        count: file.urls.len(),
        last,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA256: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    fn doc(file: &str) -> String {
        format!(
            "<?xml version=\"1.0\"?>\n<metalink version=\"3.0\" xmlns=\"http://www.metalinker.org/\">\
             <files>{file}</files></metalink>"
        )
    }

    fn summary_entry(extra: &str) -> String {
        format!(
            "<file name=\"summary\"><size>5</size><verification>\
             <hash type=\"md5\">x</hash><hash type=\"sha256\">{SHA256}</hash></verification>\
             <resources><url protocol=\"ftp\" type=\"ftp\">ftp://a/summary</url>\
             <url protocol=\"http\" type=\"http\" preference=\"100\">http://h/r/summary</url>\
             {extra}</resources></file>"
        )
    }

    #[test]
    fn parses_and_checks() {
        let f = parse(doc(&summary_entry("")).as_bytes(), "summary").unwrap();
        assert_eq!(f.size, 5);
        assert_eq!(f.urls, vec!["http://h/r/summary"]);
        assert!(f.check(b"hello").is_ok());
        assert_eq!(
            f.check(b"hell"),
            Err(MetalinkError::SizeMismatch {
                expected: 5,
                actual: 4
            })
        );
        assert!(matches!(
            f.check(b"jello"),
            Err(MetalinkError::ChecksumMismatch { .. })
        ));
        let t = MetalinkTarget {
            url: "http://h/r/summary".into(),
            data: Vec::new(),
        };
        assert_eq!(t.base_url(), "http://h/r");
    }

    #[test]
    fn refuses_bad_documents() {
        let e = |xml: &str| parse(xml.as_bytes(), "summary").unwrap_err();
        assert!(e("bacon\n")
            .to_string()
            .contains("Document must begin with an element"));
        assert_eq!(e(&doc("")), MetalinkError::NoFileElement);
        assert_eq!(
            e(&doc("<file name=\"other\"/>")),
            MetalinkError::FileNotListed("summary".into())
        );
        assert_eq!(
            e(&doc(&summary_entry("").replace("sha256", "md5"))),
            MetalinkError::NoKnownHash
        );
        assert_eq!(
            e(&doc(&summary_entry("").replace(SHA256, "bacon"))),
            MetalinkError::InvalidDigest("sha256")
        );
        assert_eq!(
            e(&doc(&summary_entry("").replace("<size>5", "<size>0"))),
            MetalinkError::NoSize
        );
        assert!(matches!(e("<metalink><files>"), MetalinkError::Xml(_)));
        assert!(matches!(e("<a></b>"), MetalinkError::Xml(_)));
    }

    #[test]
    fn skips_unknown_elements() {
        let x = doc(&format!(
            "<deep><er><x>text</x></er></deep>{}",
            summary_entry("<mirror>ignored<url protocol=\"http\">http://no/</url></mirror>")
        ));
        let f = parse(x.as_bytes(), "summary").unwrap();
        assert_eq!(f.urls, vec!["http://h/r/summary"]);
    }
}

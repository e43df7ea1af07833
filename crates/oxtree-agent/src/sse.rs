//! Server-Sent Events parsing for the client: bytes in, complete events
//! out (`id`, `event`, `data` fields; comments and `retry` ignored).
//! Written here because the format is a few lines of the HTML spec and
//! the client needs no more; bounded so that a hostile server cannot make
//! it buffer without end.

/// Most bytes one event may span.
const MAX_EVENT: usize = 1 << 20;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SseEvent {
    pub id: Option<String>,
    /// `message` when the server named none.
    pub event: String,
    pub data: String,
}

#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
    cur: SseEvent,
    has_data: bool,
}

impl SseParser {
    /// Feed bytes; returns the events they completed.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(nl) = self.buf.iter().position(|&b| b == b'\n') {
            let mut line: Vec<u8> = self.buf.drain(..=nl).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let line = String::from_utf8_lossy(&line).into_owned();
            if line.is_empty() {
                if self.has_data {
                    let mut e = std::mem::take(&mut self.cur);
                    if e.event.is_empty() {
                        e.event = "message".into();
                    }
                    out.push(e);
                } else {
                    self.cur = SseEvent::default();
                }
                self.has_data = false;
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line.as_str(), ""),
            };
            match field {
                "id" => self.cur.id = Some(value.to_string()),
                "event" => self.cur.event = value.to_string(),
                "data" => {
                    if self.has_data {
                        self.cur.data.push('\n');
                    }
                    self.cur.data.push_str(value);
                    self.has_data = true;
                }
                _ => {}
            }
            if self.cur.data.len() > MAX_EVENT {
                self.cur = SseEvent::default();
                self.has_data = false;
            }
        }
        if self.buf.len() > MAX_EVENT {
            self.buf.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_split_events() {
        let mut p = SseParser::default();
        assert!(p.feed(b": keep-alive\n\nid: 1\nevent: st").is_empty());
        let e = p.feed(b"ate\ndata: {\"a\":1}\n\ndata: x\ndata: y\r\n\n");
        assert_eq!(
            e,
            vec![
                SseEvent {
                    id: Some("1".into()),
                    event: "state".into(),
                    data: "{\"a\":1}".into()
                },
                SseEvent {
                    id: None,
                    event: "message".into(),
                    data: "x\ny".into()
                }
            ]
        );
    }
}

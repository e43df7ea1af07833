//! `GET /v1/host` for many clients at once: status reads are coalesced.
//! One read runs at a time; a request is answered by the first read that
//! *started after it arrived* (so it never sees state older than itself),
//! which a burst of concurrent requests shares. The JSON is serialized
//! once per read. This bounds the blocking threads to one and the work to
//! about one read per burst, whatever the number of clients.

use axum::body::Bytes;
use std::sync::Mutex;
use std::time::Instant;

type Read = std::result::Result<Bytes, (String, String)>;

#[derive(Debug, Default)]
pub struct StatusReads {
    /// Held while a read runs.
    turn: tokio::sync::Mutex<()>,
    /// The last read: when it started, and its JSON or (kind, message).
    last: Mutex<Option<(Instant, Read)>>,
}

impl StatusReads {
    /// The host status as JSON, read no earlier than this call.
    pub async fn get(&self, cx: oxtree_host::Context) -> Read {
        let arrived = Instant::now();
        let _turn = self.turn.lock().await;
        if let Some((started, r)) = &*self.last.lock().unwrap() {
            if *started >= arrived {
                return r.clone();
            }
        }
        let started = Instant::now();
        let r = match tokio::task::spawn_blocking(move || oxtree_host::status(&cx)).await {
            Ok(Ok(h)) => serde_json::to_vec(&h)
                .map(Bytes::from)
                .map_err(|e| ("failed".to_string(), e.to_string())),
            Ok(Err(e)) => Err((e.kind().to_string(), oxtree_io::Chain(&e).to_string())),
            Err(e) => Err(("failed".to_string(), e.to_string())),
        };
        *self.last.lock().unwrap() = Some((started, r.clone()));
        r
    }
}

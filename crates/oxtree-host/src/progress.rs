//! One progress and cancel model for every long operation: the library
//! reports [`Event`]s to a [`Reporter`] (the CLI draws them, an agent
//! streams them as JSON) and checks a [`Cancel`] token.

use crate::error::{HostError, Result};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Something that happened during an operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Event {
    /// A line for a human ("Fetching debian/main from origin...").
    Message { text: String },
    /// A pull of `refspec` from `remote` starts.
    PullStarted { remote: String, refspec: String },
    /// Pull counters, after each object.
    Pull(PullProgress),
    /// A pull ended (successfully).
    PullDone(PullProgress),
    /// A step of a layering build; `text` is compose's description.
    Layering { step: LayerStep, text: String },
    /// Checking out and deploying (or staging) `rev` (a checksum, or the
    /// refspec `deploy` was given).
    Deploying { rev: String, staged: bool },
    /// The operation finished.
    Done,
}

/// Pull counters (see `oxtree_transport::PullProgress`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PullProgress {
    /// Objects requested from the server so far (grows as trees arrive).
    pub requested: u64,
    /// Objects fetched and verified.
    pub fetched: u64,
    /// Metadata objects found locally instead.
    pub scanned_local: u64,
    /// Bytes received.
    pub bytes: u64,
    /// Uncompressed bytes of content objects written.
    pub content_bytes: u64,
}

impl From<&oxtree_transport::PullProgress> for PullProgress {
    fn from(p: &oxtree_transport::PullProgress) -> Self {
        PullProgress {
            requested: p.requested,
            fetched: p.fetched,
            scanned_local: p.scanned_local,
            bytes: p.bytes,
            content_bytes: p.content_bytes,
        }
    }
}

/// The steps of a layering build.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LayerStep {
    Checkout,
    AptUpdate,
    Resolve,
    Install,
    Commit,
}

impl From<&oxtree_compose::layer::Step> for LayerStep {
    fn from(s: &oxtree_compose::layer::Step) -> Self {
        use oxtree_compose::layer::Step;
        match s {
            Step::Checkout => LayerStep::Checkout,
            Step::AptUpdate => LayerStep::AptUpdate,
            Step::Resolve => LayerStep::Resolve,
            Step::Install => LayerStep::Install,
            Step::Commit => LayerStep::Commit,
        }
    }
}

/// Receives the events of an operation (called on the operation's
/// thread; keep it quick).
pub trait Reporter: Send + Sync {
    fn report(&self, e: Event);
}

/// Drops every event.
#[derive(Clone, Copy, Debug, Default)]
pub struct NullReporter;

impl Reporter for NullReporter {
    fn report(&self, _: Event) {}
}

impl<F: Fn(Event) + Send + Sync> Reporter for F {
    fn report(&self, e: Event) {
        self(e)
    }
}

/// A cancel token shared between the operation and whoever may cancel it
/// (another thread, a signal handler, an API call).
#[derive(Clone, Debug, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Ask the operation to stop at its next check.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// `Err(Cancelled)` once cancelled.
    pub fn check(&self) -> Result<()> {
        if self.is_cancelled() {
            Err(HostError::Cancelled)
        } else {
            Ok(())
        }
    }

    /// The flag itself (for `oxtree_transport::PullOptions::cancel`).
    pub fn flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_is_shared() {
        let c = Cancel::new();
        let d = c.clone();
        assert!(c.check().is_ok());
        d.cancel();
        assert!(matches!(c.check(), Err(HostError::Cancelled)));
        assert!(c.flag().load(Ordering::Relaxed));
    }

    #[test]
    fn events_serialize_tagged() {
        let e = Event::Pull(PullProgress {
            requested: 3,
            fetched: 2,
            ..Default::default()
        });
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["type"], "pull");
        assert_eq!(v["fetched"], 2);
        let m = serde_json::to_value(Event::Message { text: "x".into() }).unwrap();
        assert_eq!(m, serde_json::json!({"type": "message", "text": "x"}));
    }
}

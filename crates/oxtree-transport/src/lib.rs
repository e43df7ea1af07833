//! Transport: moving commits between repositories over the network.
//! The summary file, remotes in the repo config, an HTTP fetcher, pull from
//! an `archive` repo served over HTTP, a read-only static server, and
//! commit/summary signatures (ed25519 and OpenPGP) checked while pulling.
//!
//! Library code never prints: long operations report through callbacks.

pub mod cookies;
pub mod error;
pub mod fetch;
pub mod finder;
pub mod gpg;
pub mod metalink;
pub mod mirrors;
pub mod pull;
pub mod remote;
pub mod serve;
pub mod sign;
pub mod signapi;
pub mod summary;
pub mod summary_cache;
pub mod usb;
pub mod verify;

pub use error::{Result, TransportError};
pub use fetch::{FetchOptions, Fetcher};
pub use pull::{pull, DeltaStats, PullOptions, PullProgress, PullResult};
pub use remote::Remote;
pub use summary::{Summary, SummaryRef};

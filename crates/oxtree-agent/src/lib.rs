//! oxtreed, the host agent: `oxtree_host`'s transactions served as a
//! REST+JSON API under `/v1`, on a unix socket (authorised by peer
//! credentials) and optionally on TCP with TLS (client certificates or
//! bearer tokens).
//!
//! - [`router`]: the routes, authentication and error bodies;
//! - [`ops`]: every mutation is an operation, queued FIFO, run one at a
//!   time, cancellable, with numbered events streamed as Server-Sent
//!   Events;
//! - [`request`]: parsing and checking of request bodies;
//! - [`auth`]: peers, tokens, TLS; [`audit`]: the audit log;
//! - [`server`]: the listeners; [`client`]: the CLI's side (`--host`);
//! - [`system`]: systemd units, a unit's journal and networkd links
//!   (`oxtree_system`), answered directly and audited;
//! - [`status`]: coalesced status reads for `GET /v1/host`;
//! - [`openapi`]: `GET /v1/openapi.json`.
//!
//! The library never prints.

pub mod audit;
pub mod auth;
pub mod client;
mod error;
pub mod openapi;
pub mod ops;
pub mod request;
pub mod router;
pub mod server;
pub mod sse;
pub mod status;
pub mod system;

pub use error::{AgentError, Result};

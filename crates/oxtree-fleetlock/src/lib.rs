//! FleetLock, the reboot-coordination protocol of Zincati and airlock:
//! the wire format ([`protocol`]), a client ([`client`]), and a lock server
//! ([`server`]) whose per-group semaphores live in etcd ([`store`]), with
//! holder leases, an admin API, Prometheus metrics ([`metrics`]), live
//! slot changes ([`config`]) and canary rollouts ([`rollout`]).
//! docs/FLEETLOCK.md describes the protocol, the keys and the design.

#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "server")]
pub mod config;
#[cfg(feature = "server")]
pub mod metrics;
pub mod protocol;
pub mod rollout;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "server")]
pub mod store;

#[cfg(feature = "client")]
pub use client::{AdminClient, Client, ClientError};
pub use protocol::{ClientParams, RolledBack, Rollout};

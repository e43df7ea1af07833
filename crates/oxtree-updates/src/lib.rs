//! Automatic updates, Zincati's role, over `oxtree-host`'s transactions
//! and the FleetLock client:
//!
//! - [`config`]: TOML drop-ins in `usr/lib`, `run` and `etc`
//!   `oxtree/updates.d/*.toml` with Zincati's key names; strategies that
//!   compose (a maintenance window AND a FleetLock slot);
//! - [`identity`]: the node id, an app-specific id of the machine-id;
//! - [`Updater`]: the loop (check, stage, window, lock, reboot; after the
//!   boot: steady state, or keep the slot after an automatic rollback).
//!
//! The library never prints: steps go to an observer and into the state
//! file; host transactions report to the [`oxtree_host::Context`]'s
//! reporter and honour its cancel token. docs/UPDATES.md describes it.

pub mod config;
mod error;
pub mod identity;
mod updater;

pub use config::{Config, Strategy, Window};
pub use error::{Result, UpdatesError};
pub use updater::{
    Last, Pending, RollbackRecord, State, Status, Step, StepObserver, Target, Updater,
};

use std::path::Path;

/// The config under `root` and the node id (`[identity] node_id`, else
/// derived from `root/etc/machine-id`).
pub fn load(root: &Path) -> Result<(Config, String)> {
    let cfg = config::load(root)?;
    let id = match &cfg.node_id {
        Some(n) => n.clone(),
        None => identity::node_id(root)?,
    };
    Ok((cfg, id))
}

/// Where `oxtree updates` and `oxtreed` keep the loop's state.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/oxtree/updates";

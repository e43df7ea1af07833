//! The etcd-backed semaphores: one per reboot group, changed only by
//! compare-and-swap transactions so that any number of server replicas on
//! one etcd cluster never grant more than the slots.
//!
//! Keys (PREFIX is `[etcd3] key_prefix`):
//! - `PREFIX/v1/groups/GROUP/semaphore`: airlock's value shape,
//!   `{"total_slots":N,"holders":[sorted ids]}`. Every grant and release
//!   rewrites it, guarded on its mod revision: this key is the one all
//!   replicas serialise on.
//! - `PREFIX/v1/groups/GROUP/holders/ID` (ID percent-escaped): one per
//!   holder, a [`Holder`] record attached to an etcd lease of `lease_ttl`,
//!   so a holder that never comes back frees its slot when the lease
//!   expires. A holder that reported a rollback is re-written without a
//!   lease: it keeps its slot until an operator releases it.
//! - `PREFIX/v1/rollout`: the [`RolloutState`] of canary rollouts.
//!
//! The holder keys are the truth about who holds a slot; the semaphore's
//! `holders` list is rewritten from them on every change. An expired lease
//! only deletes a holder key, which can only free a slot, never grant one.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, GetOptions, PutOptions, Txn, TxnOp, TxnOpResponse,
};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::{Deserialize, Serialize};

use crate::protocol::{RolledBack, Rollout};
use crate::rollout::{GateError, RolloutState};

/// Everything but `A-Za-z0-9._-` is escaped in holder key names.
const KEY_ESCAPE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'.').remove(b'_').remove(b'-');

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("all {slots} slots of group {group:?} are locked ({holders} holders)")]
    Full {
        group: String,
        slots: u64,
        holders: usize,
    },
    #[error(transparent)]
    Gate(#[from] GateError),
    #[error("too much contention on group {0:?}; retry")]
    Contention(String),
    #[error("etcd")]
    Etcd(#[from] etcd_client::Error),
    #[error("etcd did not answer within {0:?}")]
    Timeout(Duration),
    #[error("corrupt record in etcd at {key}: {msg}")]
    Corrupt { key: String, msg: String },
}

/// The semaphore value, in airlock's shape.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Semaphore {
    pub total_slots: u64,
    pub holders: Vec<String>,
}

/// One holder's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub id: String,
    pub group: String,
    /// Unix seconds when the slot was granted.
    pub since: u64,
    /// The version the holder reboots into, if it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Set when the holder reported a rollback: it keeps its slot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolled_back: Option<RolledBack>,
}

/// A holder as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HolderInfo {
    #[serde(flatten)]
    pub holder: Holder,
    /// Seconds left on its lease; `None` when it has none (pinned after a
    /// rollback) or etcd did not say.
    pub lease_ttl_left: Option<i64>,
}

/// What a lock request ended in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockOutcome {
    Granted,
    /// The node already held a slot; its lease was renewed.
    AlreadyHeld,
}

/// What an unlock request ended in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnlockOutcome {
    Released,
    NotHeld,
    /// A rollback was reported: the node keeps its slot.
    KeptAfterRollback,
}

/// The group's policy for one request, from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct GroupPolicy {
    pub slots: u64,
    pub canary: bool,
    /// Some group is a canary group, so non-canary groups are gated.
    pub gated: bool,
    pub lease_ttl: Duration,
    pub min_steady: u64,
}

/// A connection to etcd and the key layout.
#[derive(Clone)]
pub struct Store {
    client: Client,
    prefix: String,
    timeout: Duration,
    /// One queue per group inside this process: requests a replica gets
    /// for the same group take turns instead of racing each other's
    /// compare-and-swap (which only has to arbitrate between replicas).
    turns: Arc<std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

struct Snapshot {
    sem_rev: Option<i64>,
    holders: BTreeMap<String, (Holder, i64)>, // id -> (record, lease)
    rollout: RolloutState,
    rollout_rev: Option<i64>,
}

fn guard(key: &str, rev: Option<i64>) -> Compare {
    match rev {
        Some(r) => Compare::mod_revision(key, CompareOp::Equal, r),
        None => Compare::version(key, CompareOp::Equal, 0),
    }
}

impl Store {
    /// Connects lazily: the server starts while etcd is down, and requests
    /// fail (503) until it answers.
    pub async fn connect(
        endpoints: &[String],
        prefix: &str,
        timeout: Duration,
    ) -> Result<Store, StoreError> {
        let opts = ConnectOptions::new()
            .with_timeout(timeout)
            .with_connect_timeout(timeout.min(Duration::from_secs(2)))
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5));
        let client = Client::connect(endpoints, Some(opts)).await?;
        Ok(Store {
            client,
            prefix: prefix.to_owned(),
            timeout,
            turns: Arc::default(),
        })
    }

    /// Waits (up to the transaction timeout) for this process's turn on
    /// `group`; too long a queue is contention, not an etcd failure.
    async fn wait_turn(&self, group: &str) -> Result<tokio::sync::OwnedMutexGuard<()>, StoreError> {
        let turn = self
            .turns
            .lock()
            .expect("turns lock")
            .entry(group.to_owned())
            .or_default()
            .clone();
        tokio::time::timeout(self.timeout, turn.lock_owned())
            .await
            .map_err(|_| StoreError::Contention(group.to_owned()))
    }

    fn sem_key(&self, group: &str) -> String {
        format!("{}/v1/groups/{group}/semaphore", self.prefix)
    }
    fn holders_prefix(&self, group: &str) -> String {
        format!("{}/v1/groups/{group}/holders/", self.prefix)
    }
    fn holder_key(&self, group: &str, id: &str) -> String {
        format!(
            "{}{}",
            self.holders_prefix(group),
            utf8_percent_encode(id, KEY_ESCAPE)
        )
    }
    fn rollout_key(&self) -> String {
        format!("{}/v1/rollout", self.prefix)
    }

    /// Runs `f` within the transaction timeout.
    async fn timed<T>(
        &self,
        f: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(self.timeout, f)
            .await
            .map_err(|_| StoreError::Timeout(self.timeout))?
    }

    /// The group's semaphore, holders and the rollout, at one revision.
    async fn snapshot(&self, group: &str) -> Result<Snapshot, StoreError> {
        let (sem_key, hp, rk) = (
            self.sem_key(group),
            self.holders_prefix(group),
            self.rollout_key(),
        );
        let txn = Txn::new().and_then(vec![
            TxnOp::get(sem_key.clone(), None),
            TxnOp::get(hp.clone(), Some(GetOptions::new().with_prefix())),
            TxnOp::get(rk.clone(), None),
        ]);
        let resp = self.client.clone().txn(txn).await?;
        let mut gets = resp.op_responses().into_iter().map(|r| match r {
            TxnOpResponse::Get(g) => g,
            _ => unreachable!("a read-only transaction answers with reads"),
        });
        let (Some(sem), Some(hs), Some(ro)) = (gets.next(), gets.next(), gets.next()) else {
            return Err(StoreError::Corrupt {
                key: sem_key,
                msg: "short transaction answer".into(),
            });
        };
        let sem_rev = sem.kvs().first().map(|kv| kv.mod_revision());
        let mut holders = BTreeMap::new();
        for kv in hs.kvs() {
            let key = String::from_utf8_lossy(kv.key()).into_owned();
            let h: Holder =
                serde_json::from_slice(kv.value()).map_err(|e| StoreError::Corrupt {
                    key: key.clone(),
                    msg: e.to_string(),
                })?;
            holders.insert(h.id.clone(), (h, kv.lease()));
        }
        let (rollout, rollout_rev) = match ro.kvs().first() {
            Some(kv) => (
                serde_json::from_slice(kv.value()).map_err(|e| StoreError::Corrupt {
                    key: rk.clone(),
                    msg: e.to_string(),
                })?,
                Some(kv.mod_revision()),
            ),
            None => (RolloutState::default(), None),
        };
        Ok(Snapshot {
            sem_rev,
            holders,
            rollout,
            rollout_rev,
        })
    }

    fn sem_put(&self, group: &str, slots: u64, ids: impl Iterator<Item = String>) -> TxnOp {
        let mut holders: Vec<String> = ids.collect();
        holders.sort();
        holders.dedup();
        let v = serde_json::to_vec(&Semaphore {
            total_slots: slots,
            holders,
        })
        .expect("serialising a semaphore");
        TxnOp::put(self.sem_key(group), v, None)
    }

    async fn backoff(
        &self,
        attempt: u32,
        deadline: Instant,
        group: &str,
    ) -> Result<(), StoreError> {
        if Instant::now() >= deadline {
            return Err(StoreError::Contention(group.to_owned()));
        }
        // Jittered exponential backoff (no RNG needed: the clock's low bits).
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let cap = 2u64 << attempt.min(6);
        tokio::time::sleep(Duration::from_millis(1 + u64::from(nanos) % cap)).await;
        Ok(())
    }

    /// RecursiveLock: take a slot in `group` for `id`, or renew it.
    pub async fn lock(
        &self,
        group: &str,
        id: &str,
        rollout: Option<&Rollout>,
        policy: GroupPolicy,
    ) -> Result<LockOutcome, StoreError> {
        let _turn = self.wait_turn(group).await?;
        self.timed(async { self.lock_inner(group, id, rollout, policy).await })
            .await
    }

    async fn lock_inner(
        &self,
        group: &str,
        id: &str,
        rollout: Option<&Rollout>,
        policy: GroupPolicy,
    ) -> Result<LockOutcome, StoreError> {
        let version = rollout.and_then(|r| r.version.as_deref());
        let deadline = Instant::now() + self.timeout;
        let mut client = self.client.clone();
        // One lease per request, granted once it is needed and kept across
        // compare-and-swap retries; revoked if the request ends without it.
        let mut lease: Option<i64> = None;
        let r = self
            .lock_attempts(group, id, version, policy, deadline, &mut lease)
            .await;
        if !matches!(r, Ok(LockOutcome::Granted)) {
            if let Some(l) = lease {
                let _ = client.lease_revoke(l).await;
            }
        }
        r
    }

    async fn lock_attempts(
        &self,
        group: &str,
        id: &str,
        version: Option<&str>,
        policy: GroupPolicy,
        deadline: Instant,
        lease_slot: &mut Option<i64>,
    ) -> Result<LockOutcome, StoreError> {
        let mut client = self.client.clone();
        let rk = self.rollout_key();
        for attempt in 0.. {
            let snap = self.snapshot(group).await?;
            let mut ro = snap.rollout.clone();
            let ro_changed =
                policy.canary && version.is_some_and(|v| ro.canary_locked(group, id, v, now()));
            if let Some((_, lease)) = snap.holders.get(id) {
                if *lease != 0 {
                    let (mut keeper, mut stream) = client.lease_keep_alive(*lease).await?;
                    keeper.keep_alive().await?;
                    let _ = stream.message().await?;
                }
                if ro_changed {
                    let txn = Txn::new()
                        .when(vec![guard(&rk, snap.rollout_rev)])
                        .and_then(vec![TxnOp::put(
                            rk.clone(),
                            serde_json::to_vec(&ro).expect("serialising rollout"),
                            None,
                        )]);
                    if !client.txn(txn).await?.succeeded() {
                        self.backoff(attempt, deadline, group).await?;
                        continue;
                    }
                }
                return Ok(LockOutcome::AlreadyHeld);
            }
            if !policy.canary && policy.gated {
                snap.rollout.gate(version)?;
            }
            if snap.holders.len() as u64 >= policy.slots {
                return Err(StoreError::Full {
                    group: group.to_owned(),
                    slots: policy.slots,
                    holders: snap.holders.len(),
                });
            }
            let lease = match *lease_slot {
                Some(l) => l,
                None => {
                    let l = client
                        .lease_grant(policy.lease_ttl.as_secs() as i64, None)
                        .await?
                        .id();
                    *lease_slot = Some(l);
                    l
                }
            };
            let rec = Holder {
                id: id.to_owned(),
                group: group.to_owned(),
                since: now(),
                version: version.map(str::to_owned),
                rolled_back: None,
            };
            let mut compares = vec![guard(&self.sem_key(group), snap.sem_rev)];
            let mut ops = vec![
                self.sem_put(
                    group,
                    policy.slots,
                    snap.holders.keys().cloned().chain([id.to_owned()]),
                ),
                TxnOp::put(
                    self.holder_key(group, id),
                    serde_json::to_vec(&rec).expect("serialising a holder"),
                    Some(PutOptions::new().with_lease(lease)),
                ),
            ];
            // The gate's (or the canary's) view of the rollout must still
            // hold when the grant is written.
            if policy.gated || ro_changed {
                compares.push(guard(&rk, snap.rollout_rev));
            }
            if ro_changed {
                ops.push(TxnOp::put(
                    rk.clone(),
                    serde_json::to_vec(&ro).expect("serialising rollout"),
                    None,
                ));
            }
            let txn = Txn::new().when(compares).and_then(ops);
            if client.txn(txn).await?.succeeded() {
                return Ok(LockOutcome::Granted);
            }
            self.backoff(attempt, deadline, group).await?;
        }
        unreachable!()
    }

    /// UnlockIfHeld, with oxtree's rollout report: a node that rolled back
    /// keeps its slot, and a canary's report moves the rollout.
    pub async fn unlock(
        &self,
        group: &str,
        id: &str,
        rollout: Option<&Rollout>,
        policy: GroupPolicy,
    ) -> Result<UnlockOutcome, StoreError> {
        let _turn = self.wait_turn(group).await?;
        self.timed(async { self.unlock_inner(group, id, rollout, policy).await })
            .await
    }

    async fn unlock_inner(
        &self,
        group: &str,
        id: &str,
        rollout: Option<&Rollout>,
        policy: GroupPolicy,
    ) -> Result<UnlockOutcome, StoreError> {
        let version = rollout.and_then(|r| r.version.as_deref());
        let rolled_back = rollout.and_then(|r| r.rolled_back.as_ref());
        let deadline = Instant::now() + self.timeout;
        let mut client = self.client.clone();
        let rk = self.rollout_key();
        for attempt in 0.. {
            let snap = self.snapshot(group).await?;
            let mut ro = snap.rollout.clone();
            let ro_changed = policy.canary
                && match (rolled_back, version) {
                    (Some(rb), _) => ro.canary_rolled_back(group, id, &rb.from, &rb.reason, now()),
                    (None, Some(v)) => ro.canary_steady(group, id, v, policy.min_steady, now()),
                    (None, None) => false,
                };
            let mut compares = vec![];
            let mut ops = vec![];
            let held = snap.holders.get(id);
            let outcome = match (held, rolled_back) {
                (None, _) => UnlockOutcome::NotHeld,
                (Some((h, _)), Some(rb)) => {
                    // Pinned: the same record, no lease, and why.
                    let rec = Holder {
                        rolled_back: Some(rb.clone()),
                        ..h.clone()
                    };
                    compares.push(guard(&self.sem_key(group), snap.sem_rev));
                    ops.push(self.sem_put(group, policy.slots, snap.holders.keys().cloned()));
                    ops.push(TxnOp::put(
                        self.holder_key(group, id),
                        serde_json::to_vec(&rec).expect("serialising a holder"),
                        None,
                    ));
                    UnlockOutcome::KeptAfterRollback
                }
                (Some(_), None) => {
                    compares.push(guard(&self.sem_key(group), snap.sem_rev));
                    ops.push(self.sem_put(
                        group,
                        policy.slots,
                        snap.holders.keys().filter(|k| *k != id).cloned(),
                    ));
                    ops.push(TxnOp::delete(self.holder_key(group, id), None));
                    UnlockOutcome::Released
                }
            };
            if ro_changed {
                compares.push(guard(&rk, snap.rollout_rev));
                ops.push(TxnOp::put(
                    rk.clone(),
                    serde_json::to_vec(&ro).expect("serialising rollout"),
                    None,
                ));
            }
            if ops.is_empty() {
                return Ok(outcome);
            }
            if client
                .txn(Txn::new().when(compares).and_then(ops))
                .await?
                .succeeded()
            {
                if let Some((_, lease)) = held {
                    if *lease != 0 {
                        // The key is gone or re-written without it.
                        let _ = client.lease_revoke(*lease).await;
                    }
                }
                return Ok(outcome);
            }
            self.backoff(attempt, deadline, group).await?;
        }
        unreachable!()
    }

    /// Admin: release `id`'s slot in `group` whatever its state.
    pub async fn force_release(
        &self,
        group: &str,
        id: &str,
        slots: u64,
    ) -> Result<bool, StoreError> {
        let _turn = self.wait_turn(group).await?;
        self.timed(async {
            let deadline = Instant::now() + self.timeout;
            let mut client = self.client.clone();
            for attempt in 0.. {
                let snap = self.snapshot(group).await?;
                let Some((_, lease)) = snap.holders.get(id) else {
                    return Ok(false);
                };
                let txn = Txn::new()
                    .when(vec![guard(&self.sem_key(group), snap.sem_rev)])
                    .and_then(vec![
                        self.sem_put(
                            group,
                            slots,
                            snap.holders.keys().filter(|k| *k != id).cloned(),
                        ),
                        TxnOp::delete(self.holder_key(group, id), None),
                    ]);
                if client.txn(txn).await?.succeeded() {
                    if *lease != 0 {
                        let _ = client.lease_revoke(*lease).await;
                    }
                    return Ok(true);
                }
                self.backoff(attempt, deadline, group).await?;
            }
            unreachable!()
        })
        .await
    }

    /// Admin: the holders of `group`, with their leases' time left.
    pub async fn holders(&self, group: &str) -> Result<Vec<HolderInfo>, StoreError> {
        self.timed(async {
            let snap = self.snapshot(group).await?;
            let mut client = self.client.clone();
            let mut out = vec![];
            for (_, (h, lease)) in snap.holders {
                let lease_ttl_left = if lease == 0 {
                    None
                } else {
                    client
                        .lease_time_to_live(lease, None)
                        .await
                        .ok()
                        .map(|r| r.ttl())
                        .filter(|t| *t >= 0)
                };
                out.push(HolderInfo {
                    holder: h,
                    lease_ttl_left,
                });
            }
            Ok(out)
        })
        .await
    }

    /// How many holders `group` has now (for metrics).
    pub async fn holder_count(&self, group: &str) -> Result<usize, StoreError> {
        self.timed(async {
            let r = self
                .client
                .clone()
                .get(
                    self.holders_prefix(group),
                    Some(GetOptions::new().with_prefix().with_count_only()),
                )
                .await?;
            Ok(r.count() as usize)
        })
        .await
    }

    /// The canary rollout record.
    pub async fn rollout(&self) -> Result<RolloutState, StoreError> {
        self.timed(async {
            let rk = self.rollout_key();
            let r = self.client.clone().get(rk.clone(), None).await?;
            match r.kvs().first() {
                Some(kv) => serde_json::from_slice(kv.value()).map_err(|e| StoreError::Corrupt {
                    key: rk,
                    msg: e.to_string(),
                }),
                None => Ok(RolloutState::default()),
            }
        })
        .await
    }

    /// Admin: lift a halt (the halted version still has to pass the
    /// canaries). Returns whether there was one.
    pub async fn resume(&self) -> Result<bool, StoreError> {
        self.timed(async {
            let rk = self.rollout_key();
            let deadline = Instant::now() + self.timeout;
            let mut client = self.client.clone();
            for attempt in 0.. {
                let r = client.get(rk.clone(), None).await?;
                let Some(kv) = r.kvs().first() else {
                    return Ok(false);
                };
                let mut ro: RolloutState =
                    serde_json::from_slice(kv.value()).map_err(|e| StoreError::Corrupt {
                        key: rk.clone(),
                        msg: e.to_string(),
                    })?;
                if ro.halted.take().is_none() {
                    return Ok(false);
                }
                let txn = Txn::new()
                    .when(vec![guard(&rk, Some(kv.mod_revision()))])
                    .and_then(vec![TxnOp::put(
                        rk.clone(),
                        serde_json::to_vec(&ro).expect("serialising rollout"),
                        None,
                    )]);
                if client.txn(txn).await?.succeeded() {
                    return Ok(true);
                }
                self.backoff(attempt, deadline, "rollout").await?;
            }
            unreachable!()
        })
        .await
    }
}

/// The id a holder key names (for tools reading etcd directly).
pub fn id_from_key(key: &str) -> Option<String> {
    let last = key.rsplit('/').next()?;
    percent_decode_str(last)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

//! Canary rollouts: the fleet-wide state (which version the canaries are
//! trying, which canaries reached steady state on it, which versions
//! passed, and whether a canary's rollback halted everything) and the pure
//! rules that read and change it. The store keeps it in one etcd key and
//! changes it in the same compare-and-swap transaction as a semaphore, so
//! replicas always agree. See docs/FLEETLOCK.md, "Canary rollouts".

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How many passed versions are remembered.
const MAX_PASSED: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CanaryState {
    /// Holds a slot to reboot into the target.
    Locked,
    /// Reported steady state on the target.
    Steady,
    /// Reported a rollback from the target.
    RolledBack,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CanaryNode {
    pub group: String,
    pub state: CanaryState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Unix seconds of the last change.
    pub at: u64,
}

/// Why the rollout stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Halt {
    pub group: String,
    pub id: String,
    /// The version the canary rolled back from.
    pub version: String,
    pub reason: String,
    pub at: u64,
}

impl Halt {
    pub fn describe(&self) -> String {
        format!(
            "rollout halted: canary {:?} in group {:?} rolled back from version {:?}: {}",
            self.id, self.group, self.version, self.reason
        )
    }
}

/// The whole rollout record, as stored in etcd and shown by the admin API.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutState {
    /// The version the canaries are trying (the newest a canary locked for).
    #[serde(default)]
    pub target: Option<String>,
    /// Canary nodes seen for `target`, by id.
    #[serde(default)]
    pub canaries: BTreeMap<String, CanaryNode>,
    /// Versions that enough canaries reached steady state on, oldest first.
    #[serde(default)]
    pub passed: Vec<String>,
    #[serde(default)]
    pub halted: Option<Halt>,
}

/// Why a non-canary node may not lock yet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GateError {
    #[error("{0}")]
    Halted(String),
    #[error("{0}")]
    CanaryPending(String),
}

impl RolloutState {
    /// A canary takes (or renews) its slot to reboot into `version`. A new
    /// version starts a new rollout and lifts a halt on an older one.
    /// Returns whether anything changed.
    pub fn canary_locked(&mut self, group: &str, id: &str, version: &str, now: u64) -> bool {
        let before = self.clone();
        if self.target.as_deref() != Some(version) {
            self.target = Some(version.to_owned());
            self.canaries.clear();
            if self.halted.as_ref().is_some_and(|h| h.version != version) {
                self.halted = None;
            }
        }
        if !matches!(self.canaries.get(id), Some(n) if n.state == CanaryState::Locked) {
            self.canaries.insert(
                id.to_owned(),
                CanaryNode {
                    group: group.to_owned(),
                    state: CanaryState::Locked,
                    reason: None,
                    at: now,
                },
            );
        }
        *self != before
    }

    /// A canary reports steady state on `version`. When `min_steady`
    /// canaries are steady on the target, the target has passed.
    pub fn canary_steady(
        &mut self,
        group: &str,
        id: &str,
        version: &str,
        min_steady: u64,
        now: u64,
    ) -> bool {
        if self.target.as_deref() != Some(version) {
            return false;
        }
        let before = self.clone();
        self.canaries.insert(
            id.to_owned(),
            CanaryNode {
                group: group.to_owned(),
                state: CanaryState::Steady,
                reason: None,
                at: now,
            },
        );
        let steady = self
            .canaries
            .values()
            .filter(|n| n.state == CanaryState::Steady)
            .count() as u64;
        if steady >= min_steady
            && self.halted.is_none()
            && !self.passed.iter().any(|v| v == version)
        {
            self.passed.push(version.to_owned());
            if self.passed.len() > MAX_PASSED {
                self.passed.remove(0);
            }
        }
        *self != before
    }

    /// A canary reports that it rolled back from `from`: the rollout halts.
    pub fn canary_rolled_back(
        &mut self,
        group: &str,
        id: &str,
        from: &str,
        reason: &str,
        now: u64,
    ) -> bool {
        let before = self.clone();
        if self.target.as_deref() == Some(from) {
            self.canaries.insert(
                id.to_owned(),
                CanaryNode {
                    group: group.to_owned(),
                    state: CanaryState::RolledBack,
                    reason: Some(reason.to_owned()),
                    at: now,
                },
            );
        }
        self.passed.retain(|v| v != from);
        self.halted = Some(Halt {
            group: group.to_owned(),
            id: id.to_owned(),
            version: from.to_owned(),
            reason: reason.to_owned(),
            at: now,
        });
        *self != before
    }

    /// May a node of a non-canary group reboot into `version` (or, for a
    /// plain FleetLock client that does not say, into the current target)?
    pub fn gate(&self, version: Option<&str>) -> Result<(), GateError> {
        if let Some(h) = &self.halted {
            return Err(GateError::Halted(h.describe()));
        }
        let Some(v) = version.or(self.target.as_deref()) else {
            // No canary has started a rollout: nothing to wait for.
            return Ok(());
        };
        if self.passed.iter().any(|p| p == v) {
            return Ok(());
        }
        let steady = self
            .canaries
            .values()
            .filter(|n| n.state == CanaryState::Steady)
            .count();
        Err(GateError::CanaryPending(
            if self.target.as_deref() == Some(v) {
                format!("version {v:?} is still in the canary groups ({steady} canaries steady on it so far)")
            } else {
                format!("version {v:?} has not been through the canary groups yet")
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canary_then_fleet() {
        let mut s = RolloutState::default();
        assert_eq!(s.gate(None), Ok(()));
        assert!(s.canary_locked("canary", "c1", "2", 1));
        assert!(matches!(
            s.gate(Some("2")),
            Err(GateError::CanaryPending(_))
        ));
        assert!(matches!(s.gate(None), Err(GateError::CanaryPending(_))));
        assert!(s.canary_steady("canary", "c1", "2", 1, 2));
        assert_eq!(s.gate(Some("2")), Ok(()));
        assert_eq!(s.gate(None), Ok(()));
        assert!(matches!(
            s.gate(Some("3")),
            Err(GateError::CanaryPending(_))
        ));
    }

    #[test]
    fn rollback_halts_until_new_version() {
        let mut s = RolloutState::default();
        s.canary_locked("canary", "c1", "2", 1);
        s.canary_rolled_back("canary", "c1", "2", "health check failed", 2);
        let Err(GateError::Halted(why)) = s.gate(Some("2")) else {
            panic!()
        };
        assert!(why.contains("health check failed"), "{why}");
        // Steady on the old version does not pass anything.
        assert!(!s.canary_steady("canary", "c1", "1", 1, 3));
        assert!(s.gate(None).is_err());
        // A fixed release starts a new rollout.
        s.canary_locked("canary", "c1", "3", 4);
        assert_eq!(s.halted, None);
        s.canary_steady("canary", "c1", "3", 1, 5);
        assert_eq!(s.gate(Some("3")), Ok(()));
        assert!(s.gate(Some("2")).is_err());
    }

    #[test]
    fn min_steady() {
        let mut s = RolloutState::default();
        s.canary_locked("canary", "a", "2", 1);
        s.canary_steady("canary", "a", "2", 2, 1);
        assert!(s.gate(Some("2")).is_err());
        s.canary_locked("canary", "b", "2", 1);
        s.canary_steady("canary", "b", "2", 2, 1);
        assert_eq!(s.gate(Some("2")), Ok(()));
    }
}

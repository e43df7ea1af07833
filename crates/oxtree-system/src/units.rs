//! systemd units through systemd's D-Bus API (`org.freedesktop.systemd1`):
//! the loaded units, one unit's status, and start/stop/restart (waiting
//! for the job to finish) and enable/disable (followed by a daemon
//! reload, as `systemctl enable` does).

use crate::bus;
use crate::error::{Result, SystemError};
use crate::names::{check_unit_name, is_template};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use zbus::blocking::Connection;
use zbus::zvariant::OwnedObjectPath;

const SYSTEMD: &str = "systemd (org.freedesktop.systemd1)";

/// One row of `ListUnits`: (name, description, load, active, sub,
/// following, path, job id, job type, job path).
type UnitRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    OwnedObjectPath,
    u32,
    String,
    OwnedObjectPath,
);

/// A unit-file change: (`symlink`|`unlink`, file, destination).
type FileChange = (String, String, String);

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Manager",
    default_service = "org.freedesktop.systemd1",
    default_path = "/org/freedesktop/systemd1",
    gen_async = false,
    blocking_name = "ManagerProxy"
)]
trait Manager {
    fn list_units(&self) -> zbus::Result<Vec<UnitRow>>;
    fn load_unit(&self, name: &str) -> zbus::Result<OwnedObjectPath>;
    fn start_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn stop_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn restart_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn enable_unit_files(
        &self,
        files: &[&str],
        runtime: bool,
        force: bool,
    ) -> zbus::Result<(bool, Vec<FileChange>)>;
    fn disable_unit_files(&self, files: &[&str], runtime: bool) -> zbus::Result<Vec<FileChange>>;
    fn get_unit_file_state(&self, file: &str) -> zbus::Result<String>;
    fn reload(&self) -> zbus::Result<()>;
}

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Unit",
    default_service = "org.freedesktop.systemd1",
    gen_async = false,
    blocking_name = "UnitProxy"
)]
trait Unit {
    #[zbus(property)]
    fn id(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn description(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn load_state(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn active_state(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn sub_state(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn unit_file_state(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn fragment_path(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn active_enter_timestamp(&self) -> zbus::Result<u64>;
    #[zbus(property)]
    fn job(&self) -> zbus::Result<(u32, OwnedObjectPath)>;
}

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Service",
    default_service = "org.freedesktop.systemd1",
    gen_async = false,
    blocking_name = "ServiceProxy"
)]
trait Service {
    #[zbus(property, name = "MainPID")]
    fn main_pid(&self) -> zbus::Result<u32>;
    #[zbus(property)]
    fn result(&self) -> zbus::Result<String>;
}

/// A loaded unit, as `systemctl list-units` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnitSummary {
    pub name: String,
    pub description: String,
    pub load_state: String,
    pub active_state: String,
    pub sub_state: String,
}

/// One unit, as `systemctl status` sums it up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnitStatus {
    pub name: String,
    pub description: String,
    pub load_state: String,
    pub active_state: String,
    pub sub_state: String,
    /// enabled, disabled, static, masked, ... (empty for units without a
    /// unit file, e.g. devices).
    pub unit_file_state: String,
    pub fragment_path: String,
    /// When the unit last became active (RFC 3339), if ever.
    pub active_since: Option<String>,
    /// Services only.
    pub main_pid: Option<u32>,
    /// Services only: the result of the last run (`success`,
    /// `exit-code`, ...).
    pub result: Option<String>,
}

/// What can be done to a unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnitAction {
    Start,
    Stop,
    Restart,
    Enable,
    Disable,
}

impl UnitAction {
    pub const ALL: [UnitAction; 5] = [
        UnitAction::Start,
        UnitAction::Stop,
        UnitAction::Restart,
        UnitAction::Enable,
        UnitAction::Disable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            UnitAction::Start => "start",
            UnitAction::Stop => "stop",
            UnitAction::Restart => "restart",
            UnitAction::Enable => "enable",
            UnitAction::Disable => "disable",
        }
    }

    pub fn parse(s: &str) -> Option<UnitAction> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// A symlink `enable`/`disable` made or removed: (`symlink`|`unlink`,
/// file, destination).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnitFileChange {
    pub change: String,
    pub file: String,
    pub destination: String,
}

/// The unit after an action, and the unit-file changes it made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionOutcome {
    pub action: UnitAction,
    /// None for a template, which has no state of its own.
    pub unit: Option<UnitStatus>,
    pub changes: Vec<UnitFileChange>,
}

/// systemd on the system bus.
#[derive(Debug)]
pub struct Systemd {
    /// Connected on first use, so that a bad name is refused before the
    /// bus is needed.
    conn: std::sync::OnceLock<Connection>,
}

fn micros_to_rfc3339(us: u64) -> Option<String> {
    if us == 0 {
        return None;
    }
    let secs = i64::try_from(us / 1_000_000).ok()?;
    let nanos = u32::try_from((us % 1_000_000) * 1000).ok()?;
    chrono::DateTime::from_timestamp(secs, nanos)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

impl Systemd {
    pub fn system() -> Result<Systemd> {
        Ok(Systemd {
            conn: std::sync::OnceLock::new(),
        })
    }

    fn conn(&self) -> Result<&Connection> {
        if let Some(c) = self.conn.get() {
            return Ok(c);
        }
        let c = bus::system(SYSTEMD)?;
        Ok(self.conn.get_or_init(|| c))
    }

    fn manager(&self) -> Result<ManagerProxy<'_>> {
        ManagerProxy::new(self.conn()?).map_err(|e| bus::map(e, SYSTEMD, ""))
    }

    fn unit_at(&self, path: OwnedObjectPath, name: &str) -> Result<UnitProxy<'_>> {
        UnitProxy::builder(self.conn()?)
            .path(path)
            .and_then(|b| b.cache_properties(zbus::proxy::CacheProperties::No).build())
            .map_err(|e| bus::map(e, SYSTEMD, name))
    }

    /// The loaded units, sorted by name; with `kind` (`service`, `timer`,
    /// ...) only those of that type.
    pub fn list(&self, kind: Option<&str>) -> Result<Vec<UnitSummary>> {
        if let Some(k) = kind {
            if !crate::names::UNIT_TYPES.contains(&k) {
                return Err(SystemError::BadRequest(format!(
                    "unknown unit type {:?}",
                    k.chars().take(32).collect::<String>()
                )));
            }
        }
        let rows = self
            .manager()?
            .list_units()
            .map_err(|e| bus::map(e, SYSTEMD, ""))?;
        let mut out: Vec<UnitSummary> = rows
            .into_iter()
            .filter(|r| kind.is_none_or(|k| r.0.rsplit_once('.').is_some_and(|(_, t)| t == k)))
            .map(|r| UnitSummary {
                name: r.0,
                description: r.1,
                load_state: r.2,
                active_state: r.3,
                sub_state: r.4,
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// One unit's status; a unit systemd cannot find is `NoSuchUnit`.
    pub fn status(&self, name: &str) -> Result<UnitStatus> {
        check_unit_name(name)?;
        if is_template(name) {
            return Err(SystemError::BadRequest(format!(
                "{name} is a template: name an instance (NAME@INSTANCE.TYPE)"
            )));
        }
        let m = bus::map;
        let path = self
            .manager()?
            .load_unit(name)
            .map_err(|e| m(e, SYSTEMD, name))?;
        let (main_pid, result) = if name.ends_with(".service") {
            let s = ServiceProxy::builder(self.conn()?)
                .path(path.clone())
                .and_then(|b| b.cache_properties(zbus::proxy::CacheProperties::No).build())
                .map_err(|e| m(e, SYSTEMD, name))?;
            (s.main_pid().ok().filter(|p| *p != 0), s.result().ok())
        } else {
            (None, None)
        };
        let u = self.unit_at(path, name)?;
        let p = |r: zbus::Result<String>| r.map_err(|e| m(e, SYSTEMD, name));
        let load_state = p(u.load_state())?;
        if load_state == "not-found" {
            return Err(SystemError::NoSuchUnit(name.to_string()));
        }
        Ok(UnitStatus {
            name: p(u.id())?,
            description: p(u.description())?,
            load_state,
            active_state: p(u.active_state())?,
            sub_state: p(u.sub_state())?,
            unit_file_state: p(u.unit_file_state())?,
            fragment_path: p(u.fragment_path())?,
            active_since: u.active_enter_timestamp().ok().and_then(micros_to_rfc3339),
            main_pid,
            result,
        })
    }

    /// Do `action` to `name`. Start, stop and restart queue a job
    /// (`replace` mode, as systemctl does) and wait up to `timeout` for
    /// it to finish; a unit that ends up `failed` after a start or
    /// restart is `JobFailed`. Enable and disable change the unit-file
    /// symlinks and reload systemd.
    pub fn act(&self, name: &str, action: UnitAction, timeout: Duration) -> Result<ActionOutcome> {
        check_unit_name(name)?;
        let m = self.manager()?;
        let map = |e| bus::map(e, SYSTEMD, name);
        let mut changes = Vec::new();
        match action {
            UnitAction::Start | UnitAction::Stop | UnitAction::Restart => {
                if is_template(name) {
                    return Err(SystemError::BadRequest(format!(
                        "{name} is a template: name an instance (NAME@INSTANCE.TYPE)"
                    )));
                }
                match action {
                    UnitAction::Start => m.start_unit(name, "replace"),
                    UnitAction::Stop => m.stop_unit(name, "replace"),
                    _ => m.restart_unit(name, "replace"),
                }
                .map_err(map)?;
                self.wait_for_job(name, action, timeout)?;
            }
            UnitAction::Enable => {
                let (_, c) = m.enable_unit_files(&[name], false, false).map_err(map)?;
                changes = c;
                m.reload().map_err(map)?;
            }
            UnitAction::Disable => {
                changes = m.disable_unit_files(&[name], false).map_err(map)?;
                m.reload().map_err(map)?;
            }
        }
        let unit = if is_template(name) {
            None
        } else {
            Some(self.status(name)?)
        };
        if let Some(u) = &unit {
            if matches!(action, UnitAction::Start | UnitAction::Restart)
                && u.active_state == "failed"
            {
                return Err(SystemError::JobFailed {
                    unit: name.to_string(),
                    action: action.as_str().to_string(),
                    state: u.active_state.clone(),
                    result: u.result.clone().unwrap_or_else(|| "unknown".into()),
                });
            }
        }
        Ok(ActionOutcome {
            action,
            unit,
            changes: changes
                .into_iter()
                .map(|(change, file, destination)| UnitFileChange {
                    change,
                    file,
                    destination,
                })
                .collect(),
        })
    }

    /// Poll the unit's `Job` property until no job is pending.
    fn wait_for_job(&self, name: &str, action: UnitAction, timeout: Duration) -> Result<()> {
        let path = self
            .manager()?
            .load_unit(name)
            .map_err(|e| bus::map(e, SYSTEMD, name))?;
        let u = self.unit_at(path, name)?;
        let start = Instant::now();
        loop {
            let (id, _) = u.job().map_err(|e| bus::map(e, SYSTEMD, name))?;
            if id == 0 {
                return Ok(());
            }
            if start.elapsed() >= timeout {
                return Err(SystemError::Timeout {
                    unit: name.to_string(),
                    action: action.as_str().to_string(),
                    secs: timeout.as_secs(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_round_trip() {
        for a in UnitAction::ALL {
            assert_eq!(UnitAction::parse(a.as_str()), Some(a));
        }
        assert_eq!(UnitAction::parse("kill"), None);
    }

    #[test]
    fn timestamps() {
        assert_eq!(micros_to_rfc3339(0), None);
        assert_eq!(
            micros_to_rfc3339(1_700_000_000_500_000).as_deref(),
            Some("2023-11-14T22:13:20Z")
        );
    }

    /// Without a system bus (as in this build's sandbox) the error says
    /// so, as `Unavailable`; with one, the list is sorted.
    #[test]
    fn no_bus_is_unavailable() {
        match Systemd::system().and_then(|s| s.list(None)) {
            Err(SystemError::Unavailable { .. }) => {}
            Err(e) => panic!("{e}"),
            Ok(l) => assert!(l.windows(2).all(|w| w[0].name <= w[1].name)),
        }
    }
}

//! The update configuration: TOML drop-ins in `usr/lib`, `run` and `etc`
//! `oxtree/updates.d/*.toml` under a root, with Zincati's key names.
//!
//! - A file name in `etc` overrides the same name in `run`, which
//!   overrides `usr/lib` (systemd's precedence); an empty file or a
//!   symlink to `/dev/null` masks the name.
//! - The remaining files are read in file-name order; a key set in a later
//!   file overrides an earlier one, and maintenance windows accumulate.
//! - Unknown keys are errors, so typos show.
//!
//! Unlike Zincati, the strategies compose: `periodic` with a
//! `[updates.fleet_lock] base_url` also takes the lock, and `fleet_lock`
//! with windows also waits for a window. `immediate` waits for nothing.

use crate::error::{Result, UpdatesError};
use chrono::{DateTime, Datelike, Duration as ChronoDuration, Timelike, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The drop-in directories, relative to the root, lowest precedence first.
pub const CONFIG_DIRS: [&str; 3] = [
    "usr/lib/oxtree/updates.d",
    "run/oxtree/updates.d",
    "etc/oxtree/updates.d",
];

/// The default check interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(300);

const MINUTES_PER_DAY: i64 = 24 * 60;
const MINUTES_PER_WEEK: i64 = 7 * MINUTES_PER_DAY;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Reboot as soon as an update is staged (Zincati's default).
    #[default]
    Immediate,
    /// Reboot only inside a maintenance window.
    Periodic,
    /// Reboot only while holding a FleetLock slot.
    FleetLock,
}

impl Strategy {
    fn parse(s: &str) -> Option<Strategy> {
        match s {
            "immediate" => Some(Strategy::Immediate),
            "periodic" => Some(Strategy::Periodic),
            "fleet_lock" => Some(Strategy::FleetLock),
            _ => None,
        }
    }
}

/// `[updates.fleet_lock]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FleetLockConfig {
    pub base_url: String,
    /// oxtree: report an automatic rollback with `steady-state` and the
    /// `rollout` extension. Only for oxtree's server, which then keeps the
    /// slot and halts a canary rollout; airlock would release the slot.
    /// When false a rolled-back node never calls `steady-state`.
    pub report_rollback: bool,
    /// oxtree: the HTTP timeout of one request.
    pub timeout: Duration,
}

/// One maintenance window (`[[updates.periodic.window]]`), in UTC.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Window {
    /// Weekdays, 0 = Monday.
    pub days: Vec<u32>,
    /// Minutes after midnight.
    pub start_minute: u32,
    pub length_minutes: u32,
}

const DAY_NAMES: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

fn parse_day(s: &str) -> Option<u32> {
    let l = s.to_ascii_lowercase();
    DAY_NAMES
        .iter()
        .position(|d| *d == l || (l.len() == 3 && d.starts_with(&l)))
        .map(|i| i as u32)
}

fn parse_hhmm(s: &str) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

fn week_minute(t: DateTime<Utc>) -> i64 {
    t.weekday().num_days_from_monday() as i64 * MINUTES_PER_DAY
        + t.hour() as i64 * 60
        + t.minute() as i64
}

impl Window {
    /// The window's starts, in minutes since Monday 00:00.
    fn starts(&self) -> impl Iterator<Item = i64> + '_ {
        self.days
            .iter()
            .map(|d| *d as i64 * MINUTES_PER_DAY + self.start_minute as i64)
    }

    /// `t` is inside the window (a window may run past midnight and past
    /// Sunday into Monday).
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        let now = week_minute(t);
        self.starts()
            .any(|s| (now - s).rem_euclid(MINUTES_PER_WEEK) < self.length_minutes as i64)
    }

    /// The next start at or after `t` (to the minute), `t` itself when
    /// inside.
    pub fn next_start(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        if self.contains(t) {
            return t;
        }
        let now = week_minute(t);
        let wait = self
            .starts()
            .map(|s| (s - now).rem_euclid(MINUTES_PER_WEEK))
            .min()
            .unwrap_or(0);
        let t0 = t
            .with_second(0)
            .and_then(|x| x.with_nanosecond(0))
            .unwrap_or(t);
        t0 + ChronoDuration::minutes(wait)
    }
}

/// Whether `t` is in any of `windows`, and if not when the next one opens.
pub fn window_state(windows: &[Window], t: DateTime<Utc>) -> Result<(), DateTime<Utc>> {
    if windows.is_empty() || windows.iter().any(|w| w.contains(t)) {
        return Ok(());
    }
    Err(windows.iter().map(|w| w.next_start(t)).min().unwrap_or(t))
}

/// The merged configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Config {
    /// `[updates] enabled` (default false: nothing reboots unless asked).
    pub enabled: bool,
    pub strategy: Strategy,
    /// `[identity] group` (default `default`).
    pub group: String,
    /// oxtree: `[identity] node_id`, instead of the one derived from the
    /// machine-id.
    pub node_id: Option<String>,
    /// oxtree: `[updates] interval_secs`, between checks of the remote.
    pub interval: Duration,
    /// oxtree: `[updates] reboot_command`, run with `sh -c`.
    pub reboot_command: Option<String>,
    pub fleet_lock: Option<FleetLockConfig>,
    /// Every `[[updates.periodic.window]]` of every file.
    pub windows: Vec<Window>,
    /// The files read, in order.
    pub sources: Vec<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            enabled: false,
            strategy: Strategy::Immediate,
            group: "default".into(),
            node_id: None,
            interval: DEFAULT_INTERVAL,
            reboot_command: None,
            fleet_lock: None,
            windows: Vec::new(),
            sources: Vec::new(),
        }
    }
}

impl Config {
    /// The lock gate applies (a strategy other than `immediate` with a
    /// FleetLock server configured).
    pub fn uses_lock(&self) -> bool {
        self.strategy != Strategy::Immediate && self.fleet_lock.is_some()
    }

    /// The window gate applies.
    pub fn uses_windows(&self) -> bool {
        self.strategy != Strategy::Immediate && !self.windows.is_empty()
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFile {
    identity: Option<RawIdentity>,
    updates: Option<RawUpdates>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawIdentity {
    group: Option<String>,
    node_id: Option<String>,
    /// Zincati's; accepted and unused (no Cincinnati graph here).
    #[allow(dead_code)]
    rollout_wariness: Option<f64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawUpdates {
    enabled: Option<bool>,
    strategy: Option<String>,
    interval_secs: Option<u64>,
    reboot_command: Option<String>,
    fleet_lock: Option<RawFleetLock>,
    periodic: Option<RawPeriodic>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFleetLock {
    base_url: Option<String>,
    report_rollback: Option<bool>,
    timeout_secs: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPeriodic {
    time_zone: Option<String>,
    #[serde(default)]
    window: Vec<RawWindow>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWindow {
    days: Vec<String>,
    start_time: String,
    length_minutes: u32,
}

/// The drop-in files under `root`, after overriding and masking, in the
/// order they apply.
pub fn dropins(root: &Path) -> Result<Vec<PathBuf>> {
    let mut by_name: BTreeMap<String, PathBuf> = BTreeMap::new();
    for d in CONFIG_DIRS {
        let dir = root.join(d);
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(UpdatesError::io(&dir, e)),
        };
        for e in rd {
            let e = e.map_err(|e| UpdatesError::io(&dir, e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !name.ends_with(".toml") {
                continue;
            }
            by_name.insert(name, e.path());
        }
    }
    Ok(by_name
        .into_values()
        .filter(|p| {
            let masked = std::fs::read_link(p).is_ok_and(|t| t == Path::new("/dev/null"));
            let empty = std::fs::metadata(p).map(|m| m.len() == 0).unwrap_or(true);
            !masked && !empty
        })
        .collect())
}

/// Read and merge the drop-ins under `root`.
pub fn load(root: &Path) -> Result<Config> {
    let mut files = Vec::new();
    for p in dropins(root)? {
        let text = std::fs::read_to_string(&p).map_err(|e| UpdatesError::io(&p, e))?;
        files.push((p, text));
    }
    merge(files)
}

fn bad(p: &Path, msg: impl Into<String>) -> UpdatesError {
    UpdatesError::Config {
        path: p.display().to_string(),
        msg: msg.into(),
    }
}

/// Merge parsed drop-ins (path, text), in order.
pub fn merge(files: Vec<(PathBuf, String)>) -> Result<Config> {
    let mut c = Config::default();
    let mut base_url: Option<String> = None;
    let mut report_rollback = false;
    let mut timeout = Duration::from_secs(30);
    let mut strategy_from: Option<PathBuf> = None;
    for (p, text) in files {
        let raw: RawFile = toml::from_str(&text).map_err(|e| bad(&p, e.to_string()))?;
        if let Some(i) = raw.identity {
            if let Some(g) = i.group {
                if !valid_group(&g) {
                    return Err(bad(
                        &p,
                        format!("[identity] group {g:?}: must match ^[a-zA-Z0-9.-]+$ (at most 64 bytes)"),
                    ));
                }
                c.group = g;
            }
            if let Some(n) = i.node_id {
                if n.is_empty() || n.len() > 256 || n.chars().any(char::is_control) {
                    return Err(bad(
                        &p,
                        "[identity] node_id: 1-256 bytes, no control characters",
                    ));
                }
                c.node_id = Some(n);
            }
        }
        let Some(u) = raw.updates else {
            c.sources.push(p);
            continue;
        };
        if let Some(e) = u.enabled {
            c.enabled = e;
        }
        if let Some(s) = u.strategy {
            c.strategy = Strategy::parse(&s).ok_or_else(|| {
                bad(
                    &p,
                    format!("[updates] strategy {s:?}: expected \"immediate\", \"periodic\" or \"fleet_lock\""),
                )
            })?;
            strategy_from = Some(p.clone());
        }
        if let Some(i) = u.interval_secs {
            if i == 0 {
                return Err(bad(&p, "[updates] interval_secs must be at least 1"));
            }
            c.interval = Duration::from_secs(i);
        }
        if let Some(r) = u.reboot_command {
            c.reboot_command = Some(r).filter(|r| !r.trim().is_empty());
        }
        if let Some(f) = u.fleet_lock {
            if let Some(b) = f.base_url {
                if !(b.starts_with("http://") || b.starts_with("https://")) {
                    return Err(bad(
                        &p,
                        format!("[updates.fleet_lock] base_url {b:?}: must be http:// or https://"),
                    ));
                }
                base_url = Some(b);
            }
            if let Some(r) = f.report_rollback {
                report_rollback = r;
            }
            if let Some(t) = f.timeout_secs {
                if t == 0 {
                    return Err(bad(
                        &p,
                        "[updates.fleet_lock] timeout_secs must be at least 1",
                    ));
                }
                timeout = Duration::from_secs(t);
            }
        }
        if let Some(per) = u.periodic {
            if let Some(tz) = per.time_zone {
                if tz != "UTC" {
                    return Err(bad(
                        &p,
                        format!("[updates.periodic] time_zone {tz:?}: only \"UTC\" is supported"),
                    ));
                }
            }
            for (i, w) in per.window.into_iter().enumerate() {
                let what = format!("[[updates.periodic.window]] #{}", i + 1);
                if w.days.is_empty() {
                    return Err(bad(&p, format!("{what}: days is empty")));
                }
                let mut days = Vec::new();
                for d in &w.days {
                    let n = parse_day(d).ok_or_else(|| {
                        bad(
                            &p,
                            format!("{what}: day {d:?}: expected Mon..Sun or Monday..Sunday"),
                        )
                    })?;
                    if !days.contains(&n) {
                        days.push(n);
                    }
                }
                days.sort_unstable();
                let start_minute = parse_hhmm(&w.start_time).ok_or_else(|| {
                    bad(
                        &p,
                        format!(
                            "{what}: start_time {:?}: expected HH:MM (UTC)",
                            w.start_time
                        ),
                    )
                })?;
                if w.length_minutes == 0 || w.length_minutes as i64 > MINUTES_PER_WEEK {
                    return Err(bad(
                        &p,
                        format!("{what}: length_minutes must be 1..={MINUTES_PER_WEEK}"),
                    ));
                }
                c.windows.push(Window {
                    days,
                    start_minute,
                    length_minutes: w.length_minutes,
                });
            }
        }
        c.sources.push(p);
    }
    c.fleet_lock = base_url.map(|base_url| FleetLockConfig {
        base_url,
        report_rollback,
        timeout,
    });
    let from = || strategy_from.clone().unwrap_or_default();
    match c.strategy {
        Strategy::FleetLock if c.fleet_lock.is_none() => Err(bad(
            &from(),
            "strategy \"fleet_lock\" needs [updates.fleet_lock] base_url",
        )),
        Strategy::Periodic if c.windows.is_empty() => Err(bad(
            &from(),
            "strategy \"periodic\" needs at least one [[updates.periodic.window]]",
        )),
        _ => Ok(c),
    }
}

/// FleetLock's group syntax.
pub fn valid_group(g: &str) -> bool {
    !g.is_empty()
        && g.len() <= 64
        && g.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn m(files: &[(&str, &str)]) -> Result<Config> {
        merge(
            files
                .iter()
                .map(|(n, t)| (PathBuf::from(n), t.to_string()))
                .collect(),
        )
    }

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    #[test]
    fn defaults_and_merge_order() {
        let c = m(&[]).unwrap();
        assert!(!c.enabled);
        assert_eq!(c.strategy, Strategy::Immediate);
        assert_eq!(c.group, "default");
        let c = m(&[
            ("10-base.toml", "[updates]\nenabled = true\nstrategy = \"fleet_lock\"\n[updates.fleet_lock]\nbase_url = \"http://a/\"\n"),
            ("20-site.toml", "[identity]\ngroup = \"workers\"\n[updates.fleet_lock]\nbase_url = \"http://b/\"\nreport_rollback = true\n"),
            ("30-off.toml", "[updates]\nenabled = false\ninterval_secs = 7\n"),
        ])
        .unwrap();
        assert!(!c.enabled);
        assert_eq!(c.strategy, Strategy::FleetLock);
        assert_eq!(c.group, "workers");
        assert_eq!(c.interval, Duration::from_secs(7));
        let f = c.fleet_lock.as_ref().unwrap();
        assert_eq!(f.base_url, "http://b/");
        assert!(f.report_rollback);
        assert!(c.uses_lock() && !c.uses_windows());
    }

    #[test]
    fn windows_accumulate_and_compose_with_the_lock() {
        let c = m(&[
            ("a.toml", "[updates]\nstrategy = \"periodic\"\n[[updates.periodic.window]]\ndays = [\"Sat\", \"sunday\"]\nstart_time = \"23:30\"\nlength_minutes = 60\n"),
            ("b.toml", "[updates.fleet_lock]\nbase_url = \"http://x\"\n[updates.periodic]\ntime_zone = \"UTC\"\n[[updates.periodic.window]]\ndays = [\"Wed\"]\nstart_time = \"4:00\"\nlength_minutes = 30\n"),
        ])
        .unwrap();
        assert_eq!(c.windows.len(), 2);
        assert_eq!(c.windows[0].days, vec![5, 6]);
        assert_eq!(c.windows[1].start_minute, 240);
        assert!(c.uses_lock() && c.uses_windows());
    }

    #[test]
    fn bad_config_is_named() {
        for (text, want) in [
            ("[updates]\nstrategy = \"later\"\n", "strategy \"later\""),
            ("[updates]\nstratgy = \"immediate\"\n", "unknown field"),
            ("[updates]\nstrategy = \"fleet_lock\"\n", "needs [updates.fleet_lock] base_url"),
            ("[updates]\nstrategy = \"periodic\"\n", "needs at least one"),
            ("[identity]\ngroup = \"a/b\"\n", "[identity] group"),
            ("[updates.fleet_lock]\nbase_url = \"ftp://x\"\n", "must be http"),
            ("[[updates.periodic.window]]\ndays = [\"Caturday\"]\nstart_time = \"1:00\"\nlength_minutes = 5\n", "day \"Caturday\""),
            ("[[updates.periodic.window]]\ndays = [\"Mon\"]\nstart_time = \"24:00\"\nlength_minutes = 5\n", "start_time \"24:00\""),
            ("[[updates.periodic.window]]\ndays = [\"Mon\"]\nstart_time = \"1:00\"\nlength_minutes = 0\n", "length_minutes"),
            ("[updates.periodic]\ntime_zone = \"Europe/Paris\"\n", "only \"UTC\""),
            ("[updates\n", "x.toml"),
        ] {
            let e = m(&[("x.toml", text)]).unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
            assert!(e.starts_with("x.toml"), "{e}");
        }
    }

    #[test]
    fn window_arithmetic() {
        // 2026-12-05 is a Saturday.
        let w = Window {
            days: vec![5],
            start_minute: 23 * 60 + 30,
            length_minutes: 60,
        };
        assert!(!w.contains(at(2026, 12, 5, 23, 29)));
        assert!(w.contains(at(2026, 12, 5, 23, 30)));
        // Past midnight into Sunday.
        assert!(w.contains(at(2026, 12, 6, 0, 29)));
        assert!(!w.contains(at(2026, 12, 6, 0, 30)));
        assert_eq!(
            w.next_start(at(2026, 12, 6, 0, 30)),
            at(2026, 12, 12, 23, 30)
        );
        assert_eq!(
            w.next_start(at(2026, 12, 3, 17, 0)),
            at(2026, 12, 5, 23, 30)
        );
        // Sunday into Monday wraps the week.
        let s = Window {
            days: vec![6],
            start_minute: 23 * 60,
            length_minutes: 120,
        };
        assert!(s.contains(at(2026, 12, 7, 0, 59)));
        assert!(!s.contains(at(2026, 12, 7, 1, 0)));
        assert_eq!(window_state(&[], at(2026, 12, 7, 1, 0)), Ok(()));
        assert_eq!(
            window_state(&[w.clone(), s.clone()], at(2026, 12, 7, 1, 0)),
            Err(at(2026, 12, 12, 23, 30))
        );
        assert_eq!(window_state(&[w, s], at(2026, 12, 6, 23, 5)), Ok(()));
        // A whole week is always open.
        let all = Window {
            days: vec![0],
            start_minute: 0,
            length_minutes: 7 * 24 * 60,
        };
        assert!(all.contains(at(2026, 12, 6, 23, 59)));
    }

    #[test]
    fn dropins_override_and_mask() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        for (dir, name, text) in [
            ("usr/lib", "10-a.toml", "[updates]\nenabled = true\n"),
            ("usr/lib", "20-b.toml", "[identity]\ngroup = \"usr\"\n"),
            ("etc", "20-b.toml", "[identity]\ngroup = \"etc\"\n"),
            ("run", "20-b.toml", "[identity]\ngroup = \"run\"\n"),
            ("usr/lib", "30-c.toml", "[updates]\ninterval_secs = 9\n"),
            ("etc", "30-c.toml", ""),
            ("etc", "40-d.conf", "not toml"),
        ] {
            let p = r.join(dir).join("oxtree/updates.d");
            std::fs::create_dir_all(&p).unwrap();
            std::fs::write(p.join(name), text).unwrap();
        }
        let c = load(r).unwrap();
        assert!(c.enabled);
        assert_eq!(c.group, "etc");
        assert_eq!(c.interval, DEFAULT_INTERVAL);
        assert_eq!(c.sources.len(), 2);
    }
}

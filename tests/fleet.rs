//! A fleet of five hosts updating itself through `oxtree updates run`
//! (the loop `oxtreed --updates` runs), coordinated by `oxtree fleetlock
//! serve` on a real etcd (Debian's etcd-server) with one slot per group:
//!
//! - each host is a sysroot on its own loop-mounted ext4 image (inside one
//!   private mount namespace), deployed from a release repository that
//!   `oxtree serve` publishes on 127.0.0.1, with its own config root
//!   (drop-in and machine-id) and state directory;
//! - "reboot" is the reboot command of the host's config, a script that
//!   logs the reboot and then does what a boot does to a sysroot that is
//!   not `/`: it finalizes the staged deployment (so it becomes the
//!   default, which the loop then treats as running), runs the new
//!   deployment's health checks (`usr/lib/oxtree/health.d`), and when one
//!   fails leaves what GRUB's boot counting and `oxtree admin
//!   boot-complete` leave after the tries are used up: the previous
//!   deployment the default again (`admin rollback`) and
//!   `boot/oxtree/auto-rollback.json` naming the failed one and the check;
//! - host 0 is in the `canary` group (`canary = true` on the server), the
//!   others in `default`.
//!
//! Release 2 rolls out while the test kill -9s a lock holder (its lease
//! frees the slot after the TTL) and stops etcd (nothing reboots without
//! a lock; the rollout resumes when etcd returns); every host ends on 2.
//! Release 3 ships a failing health check: the canary rolls back, keeps
//! its slot, the rollout halts (the admin API says why) and no other host
//! reboots. At no etcd revision do two hosts hold a slot.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "support/cli.rs"]
mod cli;
#[path = "support/etcd.rs"]
mod etcd;
#[path = "support/net.rs"]
mod net;
#[path = "support/ns.rs"]
mod ns;

use cli::{ox, sh, OX};
use etcd::{kvs, Etcd, LockServer};
use net::{free_port, wait_for_port, Guard};

const HOSTS: usize = 5;
const TTL: u64 = 4;

fn server_config() -> String {
    format!(
        r#"
[service]
address = "127.0.0.1"
port = @PORT@
[status]
address = "127.0.0.1"
port = @STATUS@
[admin]
address = "127.0.0.1"
port = @ADMIN@
[etcd3]
endpoints = ["@ETCD@"]
transaction_timeout_ms = 1500
[lock]
default_group_name = "default"
default_slots = 1
lease_ttl_secs = {TTL}
[[lock.groups]]
name = "canary"
slots = 1
canary = true
[canary]
min_steady = 1
"#
    )
}

/// Commit the tree `d/tree` as VERSION to the release repository.
fn publish(d: &Path, version: &str, date: &str) {
    ox(&[
        &format!("--repo={}", d.join("release").display()),
        "commit",
        "-b",
        "fakeos/main",
        &format!("--timestamp={date}"),
        &format!("--add-metadata-string=version={version}"),
        &d.join("tree").display().to_string(),
    ]);
}

/// The setup inside the mount namespace: five sysroots deployed from the
/// release, one update loop each; then it restarts loops on request
/// (`restart-hN`) until `stop` appears, and stops them (SIGTERM).
fn namespace_script(d: &Path, port: u16) -> String {
    format!(
        r#"
set -u
OX={OX}; D={d}; PORT={port}
{loop_mount}
start_loop() {{
  H=$D/h$1
  $OX updates run --json --sysroot=$H/mnt --run-dir=$H/run --config-root=$H/cfg --state-dir=$H/state >>$H/loop.log 2>&1 &
  echo $! > $H/pid
}}
for n in $(seq 0 {last}); do
  H=$D/h$n; S=$H/mnt; R=$H/run
  mkdir -p $R $H/state
  loop_mount $S 96M
  $OX admin init-fs $S >/dev/null && $OX admin os-init --sysroot=$S fakeos >/dev/null || exit 93
  $OX --repo=$S/ostree/repo remote add --no-gpg-verify origin http://127.0.0.1:$PORT/ || exit 95
  $OX --repo=$S/ostree/repo pull origin fakeos/main >/dev/null || exit 96
  $OX admin deploy --sysroot=$S --run-dir=$R --os=fakeos origin:fakeos/main >/dev/null || exit 97
done
for n in $(seq 0 {last}); do start_loop $n; done
touch $D/ready
while [ ! -e $D/stop ]; do
  for n in $(seq 0 {last}); do
    if [ -e $D/restart-h$n ]; then rm $D/restart-h$n; start_loop $n; fi
  done
  sleep 0.1
done
for n in $(seq 0 {last}); do kill $(cat $D/h$n/pid) 2>/dev/null; done
wait
"#,
        d = d.display(),
        last = HOSTS - 1,
        loop_mount = ns::LOOP_MOUNT_SH,
    )
}

/// The reboot command (see the file's header). `$1` is the host number.
fn reboot_script(d: &Path) -> String {
    format!(
        r#"
set -u
OX={OX}; D={d}; n=$1; H=$D/h$n; S=$H/mnt; R=$H/run
t0=$(date +%s%N)
trap 'echo "h$n $(( ($(date +%s%N) - t0) / 1000000 ))" >> $D/boots' EXIT
echo "reboot h$n" >> $D/events
# The test holds this host here to kill it while it holds the lock.
if [ -e $D/hold-h$n ]; then
  echo $$ > $D/held-h$n
  while [ -e $D/hold-h$n ]; do sleep 0.1; done
  exit 1
fi
$OX admin finalize-staged --sysroot=$S --run-dir=$R >/dev/null || exit 1
st=$($OX admin status --json --sysroot=$S --run-dir=$R) || exit 1
# printf, not dash's echo, which would turn the JSON's "\n" into newlines.
dep=$(printf "%s\n" "$st" | python3 -c 'import json,sys; r=[x for x in json.load(sys.stdin)["deployments"] if x["index"]==0][0]; print("ostree/deploy/%s/deploy/%s.%d" % (r["osname"], r["checksum"], r["serial"]))')
failed=""
for c in $S/$dep/usr/lib/oxtree/health.d/*; do
  [ -x "$c" ] || continue
  "$c" >/dev/null 2>&1 || failed="${{failed:+$failed, }}$(basename $c)"
done
[ -z "$failed" ] && exit 0
# The boot loader's fallback after the tries, and boot-complete's record.
printf "%s\n" "$st" | python3 -c '
import json, sys, time
rows = {{r["index"]: r for r in json.load(sys.stdin)["deployments"]}}
f, ok = rows[0], rows[1]
ident = lambda r: {{"stateroot": r["osname"], "checksum": r["checksum"], "deploySerial": r["serial"]}}
print(json.dumps({{"failed": ident(f), "failedVersion": f["version"], "restored": ident(ok), "tries": 3,
  "reason": "health check %s failed (3 of 3 boots); the boot loader fell back to the previous deployment" % sys.argv[1],
  "healthFailures": [], "time": int(time.time())}}))' "$failed" > $D/h$n/auto-rollback.json || exit 1
$OX admin rollback --sysroot=$S --run-dir=$R >/dev/null || exit 1
mkdir -p $S/boot/oxtree && mv $D/h$n/auto-rollback.json $S/boot/oxtree/auto-rollback.json
"#,
        d = d.display()
    )
}

fn host_config(d: &Path, n: usize, lock_url: &str) -> String {
    let group = if n == 0 { "canary" } else { "default" };
    format!(
        r#"
[identity]
group = "{group}"
[updates]
enabled = true
strategy = "fleet_lock"
interval_secs = 1
reboot_command = "sh {d}/reboot.sh {n}"
[updates.fleet_lock]
base_url = "{lock_url}"
report_rollback = true
timeout_secs = 5
"#,
        d = d.display()
    )
}

struct Fleet {
    d: PathBuf,
    ns: Option<Child>,
}

impl Fleet {
    fn status(&self, n: usize) -> serde_json::Value {
        let h = self.d.join(format!("h{n}"));
        let out = ox(&[
            "updates",
            "status",
            "--json",
            &format!("--config-root={}", h.join("cfg").display()),
            &format!("--state-dir={}", h.join("state").display()),
        ]);
        serde_json::from_str(&out).unwrap()
    }

    fn last_step(&self, n: usize) -> serde_json::Value {
        self.status(n)["state"]["last"].clone()
    }

    /// The version host `n` reported in steady state.
    fn steady(&self, n: usize) -> Option<String> {
        self.status(n)["state"]["steady"]["version"]
            .as_str()
            .map(str::to_owned)
    }

    fn events(&self) -> Vec<String> {
        std::fs::read_to_string(self.d.join("events"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn pid(&self, n: usize) -> String {
        std::fs::read_to_string(self.d.join(format!("h{n}/pid")))
            .unwrap()
            .trim()
            .to_owned()
    }

    fn logs(&self) -> String {
        (0..HOSTS)
            .map(|n| {
                format!(
                    "--- h{n}\n{}",
                    std::fs::read_to_string(self.d.join(format!("h{n}/loop.log")))
                        .unwrap_or_default()
                )
            })
            .collect()
    }

    #[track_caller]
    fn wait(&self, what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
        let t = Instant::now();
        while !f() {
            assert!(
                t.elapsed() < limit,
                "timed out waiting for {what}\nevents: {:?}\n{}",
                self.events(),
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        let _ = std::fs::write(self.d.join("stop"), "");
        if let Some(mut c) = self.ns.take() {
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(30) {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Holder keys at every etcd revision in `from..=to`: never more than one
/// in the whole fleet.
fn check_history(etcd: &Etcd, from: i64, to: i64) -> usize {
    let mut checked = 0;
    for rev in from..=to {
        let v = etcd.get_json(&[
            "--prefix",
            "oxtree.fleetlock/v1/groups/",
            &format!("--rev={rev}"),
        ]);
        let holders: Vec<String> = kvs(&v)
            .into_iter()
            .filter(|(k, _, _)| k.contains("/holders/"))
            .map(|(k, _, _)| k)
            .collect();
        assert!(holders.len() <= 1, "revision {rev}: {holders:?}");
        checked += 1;
    }
    checked
}

/// A running fleet; dropped in field order: the loops first, etcd and the
/// scratch directory last.
struct Setup {
    fleet: Fleet,
    _serve: Guard,
    srv: LockServer,
    etcd: Etcd,
    ids: Vec<String>,
    start_rev: i64,
    setup: Duration,
    _scratch: tempfile::TempDir,
}

/// Etcd, the lock server, release 1 served on 127.0.0.1, five hosts
/// deployed from it with their loops running and idle.
fn start_fleet() -> Setup {
    for b in [
        "unshare",
        "mkfs.ext4",
        "mount",
        "umount",
        "python3",
        "etcd",
        "etcdctl",
    ] {
        ns::require(b);
    }
    let t0 = Instant::now();
    let scratch = tempfile::Builder::new()
        .prefix("oxtree-fleet")
        .tempdir_in("/var/tmp")
        .unwrap();
    let d = scratch.path().to_path_buf();

    let etcd = Etcd::start(&d);
    let srv = LockServer::start(&d, "lock", &etcd, &server_config());
    let start_rev = etcd.revision();

    // The release: version 1 of the fake OS, served on 127.0.0.1.
    sh(&format!(
        "set -e; {fake}\nfake_tree {d}/tree; {OX} init --repo={d}/release --mode=archive >/dev/null",
        fake = ns::FAKE_TREE_SH,
        d = d.display()
    ));
    publish(&d, "1", "2026-01-01");
    let port = free_port();
    let serve = Guard(
        Command::new(OX)
            .args([
                &format!("--repo={}", d.join("release").display()),
                "serve",
                &format!("--port={port}"),
            ])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_port(port);

    std::fs::write(d.join("reboot.sh"), reboot_script(&d)).unwrap();
    for n in 0..HOSTS {
        let cfg = d.join(format!("h{n}/cfg"));
        std::fs::create_dir_all(cfg.join("etc/oxtree/updates.d")).unwrap();
        std::fs::write(
            cfg.join("etc/oxtree/updates.d/50-fleet.toml"),
            host_config(&d, n, &srv.url()),
        )
        .unwrap();
        std::fs::write(cfg.join("etc/machine-id"), format!("{n:032x}\n")).unwrap();
    }
    let ns_child = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(namespace_script(&d, port))
        .stdout(std::fs::File::create(d.join("ns.log")).unwrap())
        .stderr(Stdio::from(
            std::fs::File::create(d.join("ns.err")).unwrap(),
        ))
        .spawn()
        .unwrap();
    let mut fleet = Fleet {
        d: d.clone(),
        ns: Some(ns_child),
    };
    let t = Instant::now();
    while !d.join("ready").exists() {
        if let Some(Ok(Some(st))) = fleet.ns.as_mut().map(|c| c.try_wait()) {
            panic!(
                "namespace script ended: {st}: {}",
                std::fs::read_to_string(d.join("ns.err")).unwrap_or_default()
            );
        }
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "the fleet did not start"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let ids: Vec<String> = (0..HOSTS)
        .map(|n| fleet.status(n)["nodeId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids[0].len(), 32, "machine-id derived: {ids:?}");
    // Every loop reports steady state on 1 at start-up and finds nothing.
    fleet.wait("steady state on 1", Duration::from_secs(60), || {
        (0..HOSTS).all(|n| fleet.last_step(n)["step"] == "no-update")
    });
    Setup {
        fleet,
        _serve: serve,
        srv,
        etcd,
        ids,
        start_rev,
        setup: t0.elapsed(),
        _scratch: scratch,
    }
}

#[test]
fn five_hosts_roll_out_one_at_a_time() {
    let t0 = Instant::now();
    // Not destructured: the fields drop in order (the loops first).
    let mut s = start_fleet();
    let d = s.fleet.d.clone();
    let (fleet, srv, ids) = (&s.fleet, &s.srv, s.ids.clone());

    // Release 2; host 2 will hang in its reboot while holding its slot.
    std::fs::write(d.join("hold-h2"), "").unwrap();
    let t_rollout = Instant::now();
    publish(&d, "2", "2026-02-01");
    fleet.wait("the canary on 2", Duration::from_secs(60), || {
        fleet.steady(0).as_deref() == Some("2")
    });
    fleet.wait("host 2 holding the lock", Duration::from_secs(90), || {
        d.join("held-h2").exists()
    });
    // kill -9 the holder's loop (the process this test started through
    // the namespace script), then let its hanging reboot end.
    sh(&format!("kill -9 {}", fleet.pid(2)));
    let killed = Instant::now();
    std::fs::remove_file(d.join("hold-h2")).unwrap();
    let admin_holders = |group: &str| holders_of(srv, group);
    assert_eq!(admin_holders("default"), vec![ids[2].clone()]);
    fleet.wait(
        "the lease to free host 2's slot",
        Duration::from_secs(TTL + 6),
        || !admin_holders("default").contains(&ids[2]),
    );
    let freed = killed.elapsed();
    assert!(
        freed >= Duration::from_secs(TTL - 2),
        "freed after {freed:?}"
    );

    // etcd goes away mid-rollout: no host reboots without a lock.
    let before = fleet.events().len();
    s.etcd.stop();
    std::fs::write(d.join("restart-h2"), "").unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let at_stop = fleet.events().len();
    std::thread::sleep(Duration::from_secs(4));
    let during = fleet.events()[at_stop..].to_vec();
    // At most the host that held the slot when etcd stopped reboots; no
    // new grant can happen.
    assert!(
        during.is_empty() && at_stop - before <= 1,
        "reboots while etcd was down: {:?}",
        &fleet.events()[before..]
    );
    // Host 2 (restarted meanwhile) at least is told why it waits.
    let steps: Vec<serde_json::Value> = (1..HOSTS).map(|n| fleet.last_step(n)).collect();
    assert!(
        steps.iter().any(|s| s["kind"] == "etcd_unavailable"),
        "{steps:?}"
    );
    s.etcd.restart();
    fleet.wait("every host on 2", Duration::from_secs(120), || {
        (0..HOSTS).all(|n| fleet.steady(n).as_deref() == Some("2"))
    });
    let rollout = t_rollout.elapsed();
    let reboots2 = fleet.events().len();

    // Release 3 fails its health check on the canary: the rollout halts.
    sh(&format!(
        "mkdir -p {t}/usr/lib/oxtree/health.d && printf '#!/bin/sh\\necho web down; exit 1\\n' > {t}/usr/lib/oxtree/health.d/web && chmod 755 {t}/usr/lib/oxtree/health.d/web",
        t = d.join("tree").display()
    ));
    publish(&d, "3", "2026-03-01");
    fleet.wait("the canary to roll back", Duration::from_secs(60), || {
        fleet.last_step(0)["step"] == "rolled-back"
            || fleet.status(0)["state"]["rolledBack"].is_object()
    });
    let rb = fleet.status(0)["state"]["rolledBack"].clone();
    assert_eq!(rb["failed"]["version"], "3", "{rb}");
    assert!(
        rb["reason"]
            .as_str()
            .unwrap()
            .contains("health check web failed"),
        "{rb}"
    );
    let rollout_v = admin(srv, &["rollout"]);
    assert!(!rollout_v["halted"].is_null(), "{rollout_v}");
    assert!(
        rollout_v["why"]
            .as_str()
            .unwrap_or_default()
            .contains("health check web"),
        "{rollout_v}"
    );
    // The canary keeps its slot; nobody else reboots into 3.
    assert_eq!(admin_holders("canary"), vec![ids[0].clone()]);
    std::thread::sleep(Duration::from_secs(4));
    let after = fleet.events()[reboots2..].to_vec();
    assert_eq!(after, vec!["reboot h0".to_string()], "{}", fleet.logs());
    for n in 1..HOSTS {
        let s = fleet.last_step(n);
        assert_eq!(s["step"], "waiting-for-lock", "h{n}: {s}");
        assert_eq!(s["kind"], "rollout_halted", "h{n}: {s}");
        assert_eq!(fleet.steady(n).as_deref(), Some("2"));
    }
    // The canary runs 2 again, and does not try 3 again.
    assert_eq!(fleet.last_step(0)["step"], "skipped", "{}", fleet.logs());

    let end_rev = s.etcd.revision();
    let revs = check_history(&s.etcd, s.start_rev, end_rev);
    eprintln!(
        "fleet: setup {:.1}s, rollout of 2 to {HOSTS} hosts {:.1}s (with a {TTL}s lease expiry and a 6s etcd outage), {revs} etcd revisions checked, total {:.1}s",
        s.setup.as_secs_f64(),
        rollout.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
}

/// The time a clean rollout of release 2 to the five hosts takes, and how
/// much of it the "reboots" (the reboot script) took: bench/fleet.sh.
#[test]
#[ignore = "a benchmark: bench/fleet.sh runs it"]
fn rollout_time() {
    let s = start_fleet();
    let (fleet, setup) = (&s.fleet, s.setup);
    let d = fleet.d.clone();
    let t = Instant::now();
    publish(&d, "2", "2026-02-01");
    fleet.wait("every host on 2", Duration::from_secs(120), || {
        (0..HOSTS).all(|n| fleet.steady(n).as_deref() == Some("2"))
    });
    let total = t.elapsed();
    let boots: u64 = std::fs::read_to_string(d.join("boots"))
        .unwrap()
        .lines()
        .map(|l| l.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap())
        .sum();
    let reboots = Duration::from_millis(boots);
    println!(
        "fleet-rollout hosts={HOSTS} interval_secs=1 setup_s={:.2} rollout_s={:.2} reboots_s={:.2} beyond_reboots_s={:.2}",
        setup.as_secs_f64(),
        total.as_secs_f64(),
        reboots.as_secs_f64(),
        (total - reboots).as_secs_f64()
    );
}

/// Holder ids of `group`, from the server's admin API.
fn holders_of(srv: &LockServer, group: &str) -> Vec<String> {
    let v = admin(srv, &["groups"]);
    let g = v
        .as_array()
        .or_else(|| v["groups"].as_array())
        .into_iter()
        .flatten()
        .find(|g| g["name"] == group)
        .cloned()
        .unwrap_or_default();
    g["holders"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| h["id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn admin(srv: &LockServer, args: &[&str]) -> serde_json::Value {
    let url = srv.admin_url();
    let mut a = vec!["fleetlock", "admin", "--json", "--url", &url];
    a.extend(args);
    serde_json::from_str(&ox(&a)).unwrap()
}

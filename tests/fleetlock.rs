//! `oxtree fleetlock` against a real etcd (Debian's etcd-server) on
//! 127.0.0.1: the FleetLock protocol round trip through the CLI client,
//! two servers on one etcd never granting more than the slots under 200
//! concurrent attempts (checked at every etcd revision), a vanished
//! holder's lease freeing its slot, etcd going away and coming back, a
//! slots change applied by SIGHUP, bad input refused with a clear 4xx and
//! no etcd write, and a canary rollout halted by a rollback. etcd and
//! etcdctl are required: a missing one fails the test.

use std::process::Output;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

#[path = "support/etcd.rs"]
mod etcd;
#[path = "support/net.rs"]
mod net;
use etcd::{body, fleetlock, http, kvs, Etcd, LockServer};

const PRE: &str = "/v1/pre-reboot";
const STEADY: &str = "/v1/steady-state";

fn config(slots: u64, extra: &str) -> String {
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
transaction_timeout_ms = 3000
[lock]
default_group_name = "default"
default_slots = {slots}
{extra}
"#
    )
}

fn cli(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_oxtree"))
        .arg("fleetlock")
        .args(args)
        .output()
        .unwrap()
}

/// `oxtree fleetlock pre-reboot|steady-state --json …`: (success, JSON).
fn call(verb: &str, url: &str, id: &str, group: &str, extra: &[&str]) -> (bool, serde_json::Value) {
    let mut a = vec![verb, "--json", "--url", url, "--id", id, "--group", group];
    a.extend(extra);
    let o = cli(&a);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|_| {
        panic!(
            "{a:?}: no JSON on stdout: {}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    });
    assert_eq!(o.status.success(), v["ok"] == true, "{a:?}: {v}");
    (o.status.success(), v)
}

fn admin(url: &str, args: &[&str]) -> serde_json::Value {
    let mut a = vec!["admin", "--json", "--url", url];
    a.extend(args);
    let o = cli(&a);
    assert!(
        o.status.success(),
        "{a:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

fn holders(etcd: &Etcd, group: &str) -> Vec<String> {
    let v = etcd.get_json(&[
        "--prefix",
        &format!("oxtree.fleetlock/v1/groups/{group}/holders/"),
    ]);
    let mut ids: Vec<String> = kvs(&v)
        .into_iter()
        .map(|(_, v, _)| {
            serde_json::from_str::<serde_json::Value>(&v).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    ids.sort();
    ids
}

fn semaphore(etcd: &Etcd, group: &str) -> serde_json::Value {
    let v = etcd.get_json(&[&format!("oxtree.fleetlock/v1/groups/{group}/semaphore")]);
    let kv = kvs(&v);
    assert_eq!(kv.len(), 1, "{v}");
    serde_json::from_str(&kv[0].1).unwrap()
}

#[test]
fn protocol_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let etcd = Etcd::start(tmp.path());
    let extra = "[[lock.groups]]\nname = \"workers\"\nslots = 2\n";
    let srv = LockServer::start(tmp.path(), "s", &etcd, &config(1, extra));
    let url = srv.url();

    assert!(call("pre-reboot", &url, "node-a", "default", &[]).0);
    // Recursive: the holder may ask again.
    assert!(call("pre-reboot", &url, "node-a", "default", &[]).0);
    let (ok, v) = call("pre-reboot", &url, "node-b", "default", &[]);
    assert!(!ok);
    assert_eq!(v["status"], 409);
    assert_eq!(v["kind"], "failed_lock_semaphore_full");
    assert!(v["value"].as_str().unwrap().contains("1 slots"), "{v}");
    // Groups are separate semaphores.
    assert!(call("pre-reboot", &url, "node-b", "workers", &[]).0);

    // etcd holds airlock's semaphore shape and one leased key per holder.
    assert_eq!(
        semaphore(&etcd, "default"),
        serde_json::json!({"total_slots": 1, "holders": ["node-a"]})
    );
    assert_eq!(holders(&etcd, "default"), ["node-a"]);
    let hk = etcd.get_json(&["oxtree.fleetlock/v1/groups/default/holders/node-a"]);
    assert_ne!(kvs(&hk)[0].2, 0, "the holder key has a lease");

    // The admin API lists holders with their lease.
    let groups = admin(&srv.admin_url(), &["groups"]);
    let def = groups
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "default")
        .unwrap();
    assert_eq!(def["slots"], 1);
    assert_eq!(def["holders"][0]["id"], "node-a");
    assert!(def["holders"][0]["lease_ttl_left"].as_i64().unwrap() > 3000);

    assert!(call("steady-state", &url, "node-a", "default", &[]).0);
    // UnlockIfHeld: again is fine.
    assert!(call("steady-state", &url, "node-a", "default", &[]).0);
    assert!(holders(&etcd, "default").is_empty());
    assert!(call("pre-reboot", &url, "node-b", "default", &[]).0);

    // Admin force-release frees the slot at once.
    let r = admin(&srv.admin_url(), &["release", "default", "node-b"]);
    assert_eq!(r["released"], true);
    assert!(holders(&etcd, "default").is_empty());
    let o = cli(&[
        "admin",
        "--url",
        &srv.admin_url(),
        "release",
        "default",
        "node-b",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("not_held"));

    // The exact wire format, as Zincati sends it, without our client.
    let (st, b) = fleetlock(
        srv.port,
        PRE,
        &body("c988d2509fdf5cdcbed39037c56406fb", "default"),
    );
    assert_eq!((st, b.as_str()), (200, ""));

    // Metrics: requests by result, the fleet's holders per group.
    let (st, m) = http(srv.status_port, "GET", "/metrics", &[], b"");
    assert_eq!(st, 200);
    assert!(
        m.contains(r#"fleetlock_requests_total{endpoint="pre-reboot",result="failed_lock_semaphore_full"} 1"#),
        "{m}"
    );
    assert!(
        m.contains(r#"fleetlock_group_holders{group="default"} 1"#),
        "{m}"
    );
    assert!(
        m.contains(r#"fleetlock_group_slots{group="workers"} 2"#),
        "{m}"
    );
    assert!(m.contains("fleetlock_lock_grant_seconds_count 4"), "{m}");
    assert!(m.contains("fleetlock_etcd_up 1"), "{m}");
}

#[test]
fn two_servers_never_overgrant() {
    const SLOTS: usize = 3;
    const ATTEMPTS: usize = 200;
    let tmp = tempfile::tempdir().unwrap();
    let etcd = Etcd::start(tmp.path());
    let cfg = config(SLOTS as u64, "").replace(
        "transaction_timeout_ms = 3000",
        "transaction_timeout_ms = 20000",
    );
    let a = LockServer::start(tmp.path(), "a", &etcd, &cfg);
    let b = LockServer::start(tmp.path(), "b", &etcd, &cfg);
    let start_rev = etcd.revision();

    let barrier = Arc::new(Barrier::new(ATTEMPTS));
    let threads: Vec<_> = (0..ATTEMPTS)
        .map(|i| {
            let port = if i % 2 == 0 { a.port } else { b.port };
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let (st, b) = fleetlock(port, PRE, &body(&format!("node-{i:03}"), "default"));
                (i, st, b)
            })
        })
        .collect();
    let results: Vec<(usize, u16, String)> =
        threads.into_iter().map(|t| t.join().unwrap()).collect();
    let granted: Vec<String> = results
        .iter()
        .filter(|r| r.1 == 200)
        .map(|r| format!("node-{:03}", r.0))
        .collect();
    for (i, st, b) in &results {
        assert!(
            *st == 200
                || b.contains("failed_lock_semaphore_full")
                || b.contains("failed_lock_contention"),
            "node-{i:03}: {st} {b}"
        );
    }
    assert_eq!(granted.len(), SLOTS, "granted: {granted:?}");
    let mut g = granted.clone();
    g.sort();
    assert_eq!(holders(&etcd, "default"), g);

    // etcd's history: at no revision did the group have more than SLOTS
    // holders, by the semaphore or by the holder keys.
    let end_rev = etcd.revision();
    for rev in start_rev..=end_rev {
        let v = etcd.get_json(&[
            "--prefix",
            "oxtree.fleetlock/v1/groups/default/",
            &format!("--rev={rev}"),
        ]);
        let mut holder_keys = 0;
        for (k, val, _) in kvs(&v) {
            if k.ends_with("/semaphore") {
                let s: serde_json::Value = serde_json::from_str(&val).unwrap();
                assert!(
                    s["holders"].as_array().unwrap().len() <= SLOTS,
                    "rev {rev}: {s}"
                );
            } else {
                holder_keys += 1;
            }
        }
        assert!(holder_keys <= SLOTS, "rev {rev}: {holder_keys} holders");
    }

    // One release, then exactly one of many more gets the freed slot.
    assert_eq!(
        fleetlock(b.port, STEADY, &body(&granted[0], "default")).0,
        200
    );
    let barrier = Arc::new(Barrier::new(20));
    let threads: Vec<_> = (0..20)
        .map(|i| {
            let port = if i % 2 == 0 { a.port } else { b.port };
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                fleetlock(port, PRE, &body(&format!("late-{i}"), "default")).0
            })
        })
        .collect();
    let ok = threads
        .into_iter()
        .map(|t| t.join().unwrap())
        .filter(|s| *s == 200)
        .count();
    assert_eq!(ok, 1);
    assert_eq!(holders(&etcd, "default").len(), SLOTS);
}

#[test]
fn lease_expiry_frees_a_vanished_holders_slot() {
    let tmp = tempfile::tempdir().unwrap();
    let etcd = Etcd::start(tmp.path());
    let cfg = config(1, "").replace("[lock]\n", "[lock]\nlease_ttl_secs = 3\n");
    let srv = LockServer::start(tmp.path(), "s", &etcd, &cfg);
    // The holder takes its slot and is never heard of again (killed).
    assert_eq!(fleetlock(srv.port, PRE, &body("doomed", "default")).0, 200);
    let t = Instant::now();
    let (st, b) = fleetlock(srv.port, PRE, &body("waiting", "default"));
    assert_eq!(st, 409, "{b}");
    loop {
        let (st, b) = fleetlock(srv.port, PRE, &body("waiting", "default"));
        if st == 200 {
            break;
        }
        assert!(b.contains("failed_lock_semaphore_full"), "{b}");
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the lease never expired"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_secs(2),
        "freed after {waited:?}, before the TTL"
    );
    assert_eq!(holders(&etcd, "default"), ["waiting"]);
    assert_eq!(
        semaphore(&etcd, "default")["holders"],
        serde_json::json!(["waiting"])
    );
}

#[test]
fn etcd_outage_grants_nothing_and_recovers() {
    let tmp = tempfile::tempdir().unwrap();
    let mut etcd = Etcd::start(tmp.path());
    let cfg = config(2, "").replace(
        "transaction_timeout_ms = 3000",
        "transaction_timeout_ms = 1500",
    );
    let srv = LockServer::start(tmp.path(), "s", &etcd, &cfg);
    assert_eq!(fleetlock(srv.port, PRE, &body("a", "default")).0, 200);

    etcd.stop();
    let t = Instant::now();
    let (st, b) = fleetlock(srv.port, PRE, &body("b", "default"));
    assert_eq!(st, 503, "{b}");
    assert!(b.contains("etcd_unavailable"), "{b}");
    assert!(t.elapsed() < Duration::from_secs(10));
    // The CLI client fails too, with the server's reason.
    let (ok, v) = call("pre-reboot", &srv.url(), "b", "default", &[]);
    assert!(!ok);
    assert_eq!(v["kind"], "etcd_unavailable");
    let (st, _) = http(srv.status_port, "GET", "/-/healthy", &[], b"");
    assert_eq!(st, 503);
    // A server started while etcd is down comes up and refuses too.
    let late = LockServer::start(tmp.path(), "late", &etcd, &cfg);
    let (st, b) = fleetlock(late.port, PRE, &body("c", "default"));
    assert_eq!(st, 503, "{b}");

    etcd.restart();
    // Nothing was granted while etcd was away.
    assert_eq!(holders(&etcd, "default"), ["a"]);
    // Both servers reconnect by themselves.
    for (port, id) in [(srv.port, "b"), (late.port, "a")] {
        let t = Instant::now();
        loop {
            let (st, b) = fleetlock(port, PRE, &body(id, "default"));
            if st == 200 {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "no recovery: {st} {b}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    assert_eq!(holders(&etcd, "default"), ["a", "b"]);
}

#[test]
fn slots_change_takes_effect_on_reload() {
    let tmp = tempfile::tempdir().unwrap();
    let etcd = Etcd::start(tmp.path());
    let srv = LockServer::start(tmp.path(), "s", &etcd, &config(1, ""));
    assert_eq!(fleetlock(srv.port, PRE, &body("a", "default")).0, 200);
    assert_eq!(fleetlock(srv.port, PRE, &body("b", "default")).0, 409);

    srv.reload(&etcd, &config(2, ""));
    assert_eq!(fleetlock(srv.port, PRE, &body("b", "default")).0, 200);
    assert_eq!(fleetlock(srv.port, PRE, &body("c", "default")).0, 409);
    assert_eq!(semaphore(&etcd, "default")["total_slots"], 2);

    // Fewer slots than holders: nobody new until enough have left.
    srv.reload(&etcd, &config(1, ""));
    assert_eq!(fleetlock(srv.port, STEADY, &body("a", "default")).0, 200);
    assert_eq!(fleetlock(srv.port, PRE, &body("c", "default")).0, 409);
    assert_eq!(semaphore(&etcd, "default")["total_slots"], 1);
    assert_eq!(fleetlock(srv.port, STEADY, &body("b", "default")).0, 200);
    assert_eq!(fleetlock(srv.port, PRE, &body("c", "default")).0, 200);

    // A broken config is refused and the old one kept.
    std::fs::write(&srv.config, "[lock\n").unwrap();
    srv.hup();
    let t = Instant::now();
    while !srv.log_text().contains("reload_failed") {
        assert!(t.elapsed() < Duration::from_secs(10), "{}", srv.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(fleetlock(srv.port, PRE, &body("d", "default")).0, 409);
}

/// method, path, headers, body, expected status and error kind.
type Case<'a> = (
    &'a str,
    &'a str,
    Vec<(&'a str, &'a str)>,
    Vec<u8>,
    u16,
    &'a str,
);

#[test]
fn bad_input_gets_a_clear_4xx_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let etcd = Etcd::start(tmp.path());
    let token = tmp.path().join("token");
    std::fs::write(&token, "s3cret\n").unwrap();
    let cfg = config(1, "").replace(
        "[admin]\n",
        &format!("[admin]\ntoken_file = \"{}\"\n", token.display()),
    );
    let srv = LockServer::start(tmp.path(), "s", &etcd, &cfg);
    let p = srv.port;
    // Something to protect.
    assert_eq!(fleetlock(p, PRE, &body("holder", "default")).0, 200);
    let rev = etcd.revision();

    let hdr = [("fleet-lock-protocol", "true")];
    let huge = vec![b'x'; 1 << 20];
    let long_group = "g".repeat(65);
    let cases: Vec<Case> = vec![
        ("POST", PRE, vec![], body("x", "default").into_bytes(), 400, "invalid_client_identity"),
        ("POST", PRE, vec![("fleet-lock-protocol", "false")], body("x", "default").into_bytes(), 400, "invalid_client_identity"),
        ("POST", PRE, hdr.to_vec(), b"{\"client_params\":".to_vec(), 400, "invalid_client_identity"),
        ("POST", PRE, hdr.to_vec(), b"".to_vec(), 400, "invalid_client_identity"),
        ("POST", PRE, hdr.to_vec(), b"[1,2]".to_vec(), 400, "invalid_client_identity"),
        ("POST", PRE, hdr.to_vec(), br#"{"client_params":{"group":"default"}}"#.to_vec(), 400, "invalid_client_identity"),
        ("POST", STEADY, hdr.to_vec(), body("", "default").into_bytes(), 400, "invalid_client_identity"),
        ("POST", STEADY, hdr.to_vec(), body("holder", "../default").into_bytes(), 400, "invalid_client_identity"),
        ("POST", STEADY, hdr.to_vec(), body("holder", "default/x").into_bytes(), 400, "invalid_client_identity"),
        ("POST", PRE, hdr.to_vec(), body("x", "déf").into_bytes(), 400, "invalid_client_identity"),
        ("POST", PRE, hdr.to_vec(), body("x", &long_group).into_bytes(), 400, "invalid_client_identity"),
        ("POST", STEADY, hdr.to_vec(), body("holder", "nosuchgroup").into_bytes(), 400, "unknown_group"),
        ("POST", PRE, hdr.to_vec(), huge.clone(), 413, "request_too_large"),
        ("POST", STEADY, hdr.to_vec(), br#"{"client_params":{"id":"holder","group":"default"},"rollout":{"version":""}}"#.to_vec(), 400, "invalid_rollout"),
        ("POST", PRE, hdr.to_vec(), br#"{"client_params":{"id":"x","group":"default"},"rollout":{"rolled_back":{"from":"2","reason":"r"}}}"#.to_vec(), 400, "invalid_rollout"),
        ("GET", PRE, hdr.to_vec(), vec![], 405, "method_not_allowed"),
        ("POST", "/v1/../v1/pre-reboot", hdr.to_vec(), body("x", "default").into_bytes(), 404, "not_found"),
        ("POST", "/v2/pre-reboot", hdr.to_vec(), body("x", "default").into_bytes(), 404, "not_found"),
    ];
    for (method, path, headers, b, status, kind) in &cases {
        let (st, resp) = http(p, method, path, headers, b);
        let what = format!(
            "{method} {path} {:?}",
            String::from_utf8_lossy(&b[..b.len().min(80)])
        );
        assert_eq!(st, *status, "{what}: {resp}");
        let e: serde_json::Value =
            serde_json::from_str(&resp).unwrap_or_else(|_| panic!("{what}: not JSON: {resp}"));
        assert_eq!(e["kind"], *kind, "{what}: {resp}");
        assert!(!e["value"].as_str().unwrap().is_empty(), "{what}");
    }

    // The admin API wants its token; bad names are refused.
    let (st, r) = http(srv.admin_port, "GET", "/v1/groups", &[], b"");
    assert_eq!(st, 401, "{r}");
    let (st, _) = http(
        srv.admin_port,
        "DELETE",
        "/v1/groups/default/holders/holder",
        &[("Authorization", "Bearer wrong")],
        b"",
    );
    assert_eq!(st, 401);
    let auth = [("Authorization", "Bearer s3cret")];
    let (st, r) = http(
        srv.admin_port,
        "DELETE",
        "/v1/groups/..%2Fdefault/holders/holder",
        &auth,
        b"",
    );
    assert_eq!(st, 404, "{r}");
    let (st, r) = http(
        srv.admin_port,
        "DELETE",
        "/v1/groups/default/holders/..%2Fholder",
        &auth,
        b"",
    );
    assert_eq!(st, 404, "{r}");
    assert!(r.contains("not_held"), "{r}");

    // Nothing was written to etcd, and the holder still holds.
    assert_eq!(etcd.revision(), rev);
    assert_eq!(holders(&etcd, "default"), ["holder"]);
    let (st, r) = http(srv.admin_port, "GET", "/v1/groups/default", &auth, b"");
    assert_eq!(st, 200, "{r}");
}

#[test]
fn canary_rollback_halts_the_rollout() {
    let tmp = tempfile::tempdir().unwrap();
    let etcd = Etcd::start(tmp.path());
    let extra = "[[lock.groups]]\nname = \"canary\"\nslots = 1\ncanary = true\n\
                 [[lock.groups]]\nname = \"workers\"\nslots = 2\n";
    let srv = LockServer::start(tmp.path(), "s", &etcd, &config(1, extra));
    let url = srv.url();
    let v = |ver: &'static str| ["--update-version", ver];

    // Before any canary moved, plain FleetLock clients lock as usual.
    assert!(call("pre-reboot", &url, "w1", "workers", &[]).0);
    assert!(call("steady-state", &url, "w1", "workers", &[]).0);

    // Version 2: the canary goes first; the fleet waits for it.
    assert!(call("pre-reboot", &url, "c1", "canary", &v("2")).0);
    let (ok, e) = call("pre-reboot", &url, "w1", "workers", &v("2"));
    assert!(!ok);
    assert_eq!(e["kind"], "canary_pending", "{e}");
    // A plain client (no version) waits for the current canary version too.
    assert_eq!(
        call("pre-reboot", &url, "w2", "workers", &[]).1["kind"],
        "canary_pending"
    );
    // A version no canary tried is refused as well.
    assert_eq!(
        call("pre-reboot", &url, "w1", "workers", &v("9")).1["kind"],
        "canary_pending"
    );
    assert!(call("steady-state", &url, "c1", "canary", &v("2")).0);
    assert!(call("pre-reboot", &url, "w1", "workers", &v("2")).0);
    assert!(call("steady-state", &url, "w1", "workers", &v("2")).0);

    // Version 3: the canary rolls back; the rollout halts and says why.
    assert!(call("pre-reboot", &url, "c1", "canary", &v("3")).0);
    let why = "health check nginx.service failed";
    let (ok, _) = call(
        "steady-state",
        &url,
        "c1",
        "canary",
        &[
            "--update-version",
            "2",
            "--rolled-back-from",
            "3",
            "--reason",
            why,
        ],
    );
    assert!(ok);
    for args in [&v("3")[..], &[]] {
        let (ok, e) = call("pre-reboot", &url, "w2", "workers", args);
        assert!(!ok);
        assert_eq!(e["kind"], "rollout_halted", "{e}");
        assert!(e["value"].as_str().unwrap().contains(why), "{e}");
        assert_eq!(e["status"], 409);
    }
    let r = admin(&srv.admin_url(), &["rollout"]);
    assert_eq!(r["target"], "3");
    assert_eq!(r["halted"]["id"], "c1");
    assert!(r["why"].as_str().unwrap().contains(why), "{r}");
    assert_eq!(r["canaries"]["c1"]["state"], "rolled_back");
    assert_eq!(r["passed"], serde_json::json!(["2"]));
    // The operator's text view says the same.
    let o = cli(&["admin", "--url", &srv.admin_url(), "rollout"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success());
    assert!(
        text.contains("target: 3") && text.contains("rollout halted"),
        "{text}"
    );
    assert!(text.contains(why), "{text}");
    let o = cli(&["admin", "--url", &srv.admin_url(), "groups"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("canary (canary): 1/1 slots taken"), "{text}");
    assert!(text.contains("(no lease) rolled back from"), "{text}");
    // The canary that rolled back keeps its slot, without a lease.
    let groups = admin(&srv.admin_url(), &["groups"]);
    let c = groups
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "canary")
        .unwrap();
    assert_eq!(c["holders"][0]["id"], "c1");
    assert_eq!(c["holders"][0]["rolled_back"]["reason"], why);
    assert!(c["holders"][0]["lease_ttl_left"].is_null());
    assert_eq!(
        call("pre-reboot", &url, "c2", "canary", &v("3")).1["kind"],
        "failed_lock_semaphore_full"
    );
    let (_, m) = http(srv.status_port, "GET", "/metrics", &[], b"");
    assert!(m.contains("fleetlock_rollout_halted 1"), "{m}");
    // The halt is in etcd, so every replica enforces it.
    let other = LockServer::start(tmp.path(), "other", &etcd, &config(1, extra));
    assert_eq!(
        call("pre-reboot", &other.url(), "w3", "workers", &v("3")).1["kind"],
        "rollout_halted"
    );

    // A fixed release goes through the canary again and then the fleet.
    assert!(call("pre-reboot", &url, "c1", "canary", &v("4")).0);
    assert!(call("steady-state", &url, "c1", "canary", &v("4")).0);
    assert!(call("pre-reboot", &url, "w2", "workers", &v("4")).0);
    let r = admin(&srv.admin_url(), &["rollout"]);
    assert!(r["halted"].is_null(), "{r}");
    assert_eq!(r["passed"], serde_json::json!(["2", "4"]));
}

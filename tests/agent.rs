//! The host agent (`oxtree agent`, oxtreed) against a loop-mounted
//! sysroot: status and an upgrade with its progress stream over the unix
//! socket, the remote CLI (`--host`), a pull cancelled midway with a
//! second operation queued behind it, 401/403 for bad credentials (bearer
//! tokens and TLS client certificates made with the openssl CLI), bad
//! input that gets a 4xx and changes nothing, and `install`/`uninstall`
//! of a real Debian package through the agent.
//!
//! Each agent runs in its own private mount namespace (`unshare -m`)
//! where the sysroot image is mounted (tests/support/sysroot.rs); the
//! test talks to it through its socket in the scratch directory and
//! looks inside with `nsenter`. The OS commits come from an archive
//! repository served on 127.0.0.1 by python's http.server, which can be
//! made slow per object.

#[path = "support/cli.rs"]
mod cli;
#[path = "support/fixture.rs"]
mod fixture;
#[path = "support/host_base.rs"]
mod host_base;
#[path = "support/layer_bases.rs"]
mod layer_bases;
#[path = "support/net.rs"]
mod net;
#[path = "support/ns.rs"]
mod ns;
#[path = "support/sysroot.rs"]
mod sysroot;

use net::{free_port, wait_for_port, Guard};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use cli::OX;

/// The fake OS 1.0 committed to the remote and deployed from it.
const FAKEOS_SETUP: &str = r#"
$OX init --repo=$REPO --mode=archive >/dev/null || exit 94
commit 1.0 2024-01-01
$OX --repo=$S/ostree/repo remote add --no-gpg-verify origin http://127.0.0.1:$PORT/ || exit 95
$OX --repo=$S/ostree/repo pull origin fakeos/main >/dev/null || exit 96
$OX admin deploy --sysroot=$S --run-dir=$R --os=fakeos origin:fakeos/main >/dev/null || exit 97
"#;

/// A static server whose object requests sleep for the seconds written
/// in the file `argv[3]`, when it exists.
const SLOW_SERVER_PY: &str = r#"
import functools, http.server, os, sys, time
root, port, flag = sys.argv[1], int(sys.argv[2]), sys.argv[3]
class H(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        if '/objects/' in self.path and os.path.exists(flag):
            time.sleep(float(open(flag).read().strip() or '0.2'))
        super().do_GET()
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(('127.0.0.1', port), functools.partial(H, directory=root)).serve_forever()
"#;

struct Agent {
    // Field order: the agent dies before the server and the directory.
    _agent: Guard,
    _http: Guard,
    dir: tempfile::TempDir,
    sock: PathBuf,
    pid: u32,
    /// The address of the TLS listener, when started with one.
    tls_port: Option<u16>,
}

impl Agent {
    /// A sysroot with `fakeos` 1.0 deployed from the remote `origin`,
    /// and an agent on it started with `extra` options.
    fn start(extra: &str, tls_port: Option<u16>) -> Agent {
        Agent::start_with(extra, tls_port, "", FAKEOS_SETUP)
    }

    /// An agent on a sysroot that `setup` (shell, after `vars` and the
    /// sysroot prelude; `$PORT` is the remote server's port) prepared.
    fn start_with(extra: &str, tls_port: Option<u16>, vars: &str, setup: &str) -> Agent {
        let dir = sysroot::scratch("oxtree-agent-", &["python3", "nsenter"]);
        let d = dir.path();
        std::fs::create_dir_all(d.join("remote")).unwrap();
        std::fs::write(d.join("slow.py"), SLOW_SERVER_PY).unwrap();
        let port = free_port();
        let http = Guard(
            Command::new(net::require("python3"))
                .arg(d.join("slow.py"))
                .arg(d.join("remote"))
                .arg(port.to_string())
                .arg(d.join("slow"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        wait_for_port(port);
        let dd = d.display();
        let script = format!(
            r#"REPO={dd}/remote; PORT={port}
{vars}
{prelude}
{setup}
exec $OX agent --sysroot=$S --run-dir=$R --socket=$D/sock --audit-log=$D/audit.log --reboot-command="touch $D/rebooted" {extra} 2>$D/agent.err
"#,
            prelude = sysroot::prelude(d)
        );
        let mut child = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", &script])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let stdout = child.stdout.take().unwrap();
        let mut agent = Guard(child);
        let mut line = String::new();
        let mut r = BufReader::new(stdout);
        let ok = r.read_line(&mut line).is_ok() && line.starts_with("oxtreed listening on");
        if !ok {
            let _ = agent.0.kill();
            let mut err = String::new();
            let _ = agent.0.stderr.take().unwrap().read_to_string(&mut err);
            let aerr = std::fs::read_to_string(d.join("agent.err")).unwrap_or_default();
            panic!("the agent did not start: {line}\n{err}\n{aerr}");
        }
        // Keep draining stdout so the agent never blocks on it.
        std::thread::spawn(move || std::io::copy(&mut r, &mut std::io::sink()));
        Agent {
            _agent: agent,
            _http: http,
            sock: d.join("sock"),
            dir,
            pid,
            tls_port,
        }
    }

    fn d(&self) -> &Path {
        self.dir.path()
    }

    /// One request over the socket (HTTP/1.0: the response ends with the
    /// connection, never chunked): status and body.
    fn http(&self, method: &str, path: &str, body: &[u8]) -> (u16, String) {
        http_unix(&self.sock, method, path, body)
    }

    fn json(&self, method: &str, path: &str, body: &str) -> (u16, Value) {
        let (st, b) = self.http(method, path, body.as_bytes());
        let v = serde_json::from_str(&b).unwrap_or_else(|e| panic!("{method} {path}: {e}: {b}"));
        (st, v)
    }

    fn host(&self) -> Value {
        let (st, v) = self.json("GET", "/v1/host", "");
        assert_eq!(st, 200, "{v}");
        v
    }

    /// Queue an operation; its id.
    fn submit(&self, kind: &str, body: &str) -> String {
        let (st, v) = self.json("POST", &format!("/v1/host/{kind}"), body);
        assert_eq!(st, 202, "{v}");
        assert_eq!(v["kind"], kind);
        v["id"].as_str().unwrap().to_string()
    }

    fn op(&self, id: &str) -> Value {
        let (st, v) = self.json("GET", &format!("/v1/operations/{id}"), "");
        assert_eq!(st, 200, "{v}");
        v
    }

    /// Read operation `id`'s event stream from `after`, calling `each`
    /// with (id, event name, data) until it returns false or the stream
    /// ends; returns the events seen.
    fn events(
        &self,
        id: &str,
        after: u64,
        mut each: impl FnMut(Option<u64>, &str, &Value) -> bool,
    ) -> Vec<(Option<u64>, String, Value)> {
        let mut s = UnixStream::connect(&self.sock).unwrap();
        write!(
            s,
            "GET /v1/operations/{id}/events HTTP/1.0\r\nHost: x\r\nLast-Event-ID: {after}\r\n\r\n"
        )
        .unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut r = BufReader::new(s);
        let mut line = String::new();
        r.read_line(&mut line)
            .unwrap_or_else(|e| panic!("reading the events of operation {id}: {e}"));
        assert!(line.contains(" 200 "), "{line}");
        loop {
            line.clear();
            r.read_line(&mut line).unwrap();
            if line.trim().is_empty() {
                break;
            }
        }
        let mut out = Vec::new();
        let (mut eid, mut ev, mut data) = (None, String::new(), String::new());
        loop {
            line.clear();
            if r.read_line(&mut line).unwrap() == 0 {
                return out;
            }
            let l = line.trim_end_matches(['\r', '\n']);
            if let Some(v) = l.strip_prefix("id: ") {
                eid = v.parse().ok();
            } else if let Some(v) = l.strip_prefix("event: ") {
                ev = v.to_string();
            } else if let Some(v) = l.strip_prefix("data: ") {
                data = v.to_string();
            } else if l.is_empty() && !data.is_empty() {
                let v: Value = serde_json::from_str(&data).unwrap();
                let go = each(eid, &ev, &v);
                out.push((eid.take(), std::mem::take(&mut ev), v));
                data.clear();
                if !go {
                    return out;
                }
            }
        }
    }

    /// Follow operation `id` to its end; the finished operation.
    fn wait(&self, id: &str) -> Value {
        let evs = self.events(id, 0, |_, _, _| true);
        let (_, ev, v) = evs.last().expect("no events");
        assert_eq!(ev, "end", "{evs:?}");
        v.clone()
    }

    /// `oxtree` inside the agent's mount namespace.
    fn inside(&self, args: &[&str]) -> Output {
        Command::new("nsenter")
            .arg("-t")
            .arg(self.pid.to_string())
            .arg("-m")
            .arg("--")
            .arg(OX)
            .args(args)
            .output()
            .unwrap()
    }

    fn sysroot_args(&self) -> [String; 2] {
        let d = self.d().display();
        [format!("--sysroot={d}/mnt"), format!("--run-dir={d}/run")]
    }

    /// The CLI through the agent.
    fn cli(&self, args: &[&str]) -> Output {
        Command::new(OX)
            .arg(format!("--host=unix://{}", self.sock.display()))
            .args(args)
            .output()
            .unwrap()
    }

    /// Commit the tree `tree` to the remote as `version`.
    fn commit(&self, tree: &Path, version: &str, date: &str) {
        let o = Command::new(OX)
            .arg(format!("--repo={}/remote", self.d().display()))
            .args(["commit", "-b", "fakeos/main"])
            .arg(format!("--timestamp={date}"))
            .arg(format!("--add-metadata-string=version={version}"))
            .arg(tree)
            .output()
            .unwrap();
        assert!(o.status.success(), "{o:?}");
    }

    fn audit(&self) -> Vec<Value> {
        std::fs::read_to_string(self.d().join("audit.log"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn http_unix(sock: &Path, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let mut s = UnixStream::connect(sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.0\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    // The agent may answer (413) before reading a huge body and close.
    let _ = s.write_all(head.as_bytes()).and_then(|_| s.write_all(body));
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    parse_response(&String::from_utf8_lossy(&resp))
}

fn parse_response(text: &str) -> (u16, String) {
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP response: {text:?}"));
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, body.to_string())
}

fn versions(h: &Value) -> Vec<String> {
    h["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["version"].as_str().unwrap_or("?").to_string())
        .collect()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn status_upgrade_progress_and_remote_cli() {
    let a = Agent::start("", None);
    let h = a.host();
    assert_eq!(h["kind"], "Host", "{h}");
    assert_eq!(h["spec"]["refspec"], "origin:fakeos/main", "{h}");
    assert_eq!(versions(&h), ["1.0"]);

    // Nothing new: an upgrade is queued, runs, and says so.
    let id = a.submit("upgrade", "");
    let end = a.wait(&id);
    assert_eq!(end["state"], "succeeded", "{end}");
    assert_eq!(end["result"]["outcome"], "no-change", "{end}");

    // A new commit: upgrade over the socket, following its events.
    a.commit(&a.d().join("tree"), "2.0", "2024-02-01");
    let id = a.submit("upgrade", r#"{"mode":"check"}"#);
    assert_eq!(a.wait(&id)["result"]["outcome"], "update-available");
    assert_eq!(versions(&a.host()), ["1.0"], "check deploys nothing");
    std::fs::write(a.d().join("tree/usr/bin/new-tool"), "#!/bin/sh\n").unwrap();
    a.commit(&a.d().join("tree"), "2.1", "2024-02-02");
    let id = a.submit("upgrade", r#"{"mode":"stage"}"#);
    let evs = a.events(&id, 0, |_, _, _| true);
    let names: Vec<&str> = evs.iter().map(|(_, e, _)| e.as_str()).collect();
    let ids: Vec<u64> = evs.iter().filter_map(|(i, _, _)| *i).collect();
    assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>(), "{names:?}");
    for want in [
        "state",
        "pull-started",
        "pull-done",
        "deploying",
        "done",
        "end",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    let states: Vec<&str> = evs
        .iter()
        .filter(|(_, e, _)| e == "state")
        .map(|(_, _, v)| v["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["queued", "running", "succeeded"]);
    let done = &evs.iter().find(|(_, e, _)| e == "pull-done").unwrap().2;
    assert!(done["fetched"].as_u64().unwrap() >= 2, "{done}");
    let end = &evs.last().unwrap().2;
    assert_eq!(end["result"]["outcome"], "staged", "{end}");
    // Resuming after event 3 replays from 4 on.
    let again = a.events(&id, 3, |_, _, _| true);
    assert_eq!(again[0].0, Some(4));
    assert_eq!(again.len(), evs.len() - 3);
    let h = a.host();
    assert_eq!(h["status"]["staged"]["version"], "2.1", "{h}");

    // The remote CLI: the same status as a local run inside the
    // namespace, and upgrade/rollback with their progress lines.
    let [sr, rd] = a.sysroot_args();
    let local = a.inside(&["admin", "status", &sr, &rd]);
    let remote = a.cli(&["admin", "status"]);
    assert!(remote.status.success(), "{remote:?}");
    assert_eq!(stdout(&remote), stdout(&local));
    let j = a.cli(&["admin", "status", "--json"]);
    let j: Value = serde_json::from_slice(&j.stdout).unwrap();
    assert_eq!(j, a.host());

    std::fs::write(a.d().join("tree/usr/bin/newer-tool"), "#!/bin/sh\n").unwrap();
    a.commit(&a.d().join("tree"), "3.0", "2024-03-01");
    // `--check`, through the agent and locally: fetched, not deployed.
    let o = a.cli(&["admin", "upgrade", "--check"]);
    assert!(stdout(&o).starts_with("Update available: "), "{o:?}");
    let o = a.inside(&["admin", "upgrade", "--check", &sr, &rd]);
    assert!(stdout(&o).starts_with("Update available: "), "{o:?}");
    assert_eq!(a.host()["status"]["staged"]["version"], "2.1");
    let o = a.cli(&["admin", "upgrade"]);
    assert!(o.status.success(), "{o:?}");
    assert!(
        stderr(&o).contains("Pulled origin:fakeos/main: "),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).contains("is the new default"), "{}", stdout(&o));
    assert_eq!(versions(&a.host())[0], "3.0");
    let o = a.cli(&["admin", "upgrade"]);
    assert_eq!(stdout(&o), "No update available.\n", "{o:?}");
    let o = a.cli(&["admin", "rollback"]);
    assert!(o.status.success(), "{o:?}");
    assert!(stdout(&o).contains("is now the default"), "{o:?}");
    // ostree agrees with what the agent did.
    let ost = Command::new("nsenter")
        .args([
            "-t",
            &a.pid.to_string(),
            "-m",
            "--",
            "ostree",
            "admin",
            "status",
            &sr,
        ])
        .output()
        .unwrap();
    assert!(ost.status.success(), "{ost:?}");
    let local = a.inside(&["admin", "status", &sr, &rd]);
    assert_eq!(stdout(&local), stdout(&ost));
    let o = a.cli(&["admin", "cleanup"]);
    assert!(o.status.success(), "{o:?}");
    // Kernel arguments, through the API and the CLI.
    let (st, v) = a.json("POST", "/v1/host/kargs", r#"{"append":["quiet", "x y"]}"#);
    assert_eq!(st, 400, "{v}");
    let id = a.submit("kargs", r#"{"append":["quiet","console=ttyS0,115200"]}"#);
    assert_eq!(a.wait(&id)["state"], "succeeded");
    let o = a.cli(&["admin", "kargs", "edit-in-place", "--delete=quiet"]);
    assert!(o.status.success(), "{o:?}");
    assert!(stdout(&o).contains("Kernel arguments updated"), "{o:?}");
    let kargs = |a: &Agent| {
        let h = a.host();
        let e = h["status"]["otherDeployments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["index"] == 0)
            .cloned()
            .unwrap();
        e["kargs"].as_str().unwrap().to_string()
    };
    let k = kargs(&a);
    assert!(
        k.contains("console=ttyS0,115200") && !k.contains("quiet"),
        "{k}"
    );
    let ost = Command::new("nsenter")
        .args([
            "-t",
            &a.pid.to_string(),
            "-m",
            "--",
            "ostree",
            "admin",
            "status",
            &sr,
        ])
        .output()
        .unwrap();
    assert!(ost.status.success(), "{ost:?}");

    // Every mutation is in the audit log: who, what, result.
    let audit = a.audit();
    let ends: Vec<(&str, &str)> = audit
        .iter()
        .filter(|l| l["result"] != "accepted")
        .map(|l| (l["action"].as_str().unwrap(), l["result"].as_str().unwrap()))
        .collect();
    assert_eq!(
        ends,
        [
            ("upgrade", "succeeded"),
            ("upgrade", "succeeded"),
            ("upgrade", "succeeded"),
            ("upgrade", "succeeded"),
            ("upgrade", "succeeded"),
            ("upgrade", "succeeded"),
            ("rollback", "succeeded"),
            ("cleanup", "succeeded"),
            (
                "POST /v1/host/kargs",
                "rejected: invalid kernel argument \"x y\""
            ),
            ("kargs", "succeeded"),
            ("kargs", "succeeded")
        ],
        "{audit:?}"
    );
    assert!(audit.iter().all(|l| l["who"] == "uid:0"), "{audit:?}");
    assert_eq!(
        audit.iter().find(|l| l["result"] == "succeeded").unwrap()["detail"]["outcome"]["outcome"],
        "no-change"
    );

    // pin, set-default and undeploy through the agent, with the words of a
    // local run; a bad index fails and changes nothing.
    let before = versions(&a.host());
    assert!(before.len() >= 2, "{before:?}");
    let o = a.cli(&["admin", "pin", "1"]);
    assert_eq!(stdout(&o), "Deployment 1 is now pinned\n", "{o:?}");
    let o = a.cli(&["admin", "pin", "1"]);
    assert_eq!(stdout(&o), "Deployment 1 is already pinned\n", "{o:?}");
    assert!(
        stdout(&a.inside(&["admin", "status", &sr, &rd])).contains("Pinned: yes"),
        "pin did not stick"
    );
    let o = a.cli(&["admin", "pin", "--unpin", "1", "9"]);
    assert!(!o.status.success(), "{o:?}");
    assert!(stderr(&o).contains("9"), "{o:?}");
    assert!(
        stdout(&a.inside(&["admin", "status", &sr, &rd])).contains("Pinned: yes"),
        "a refused unpin changed a deployment"
    );
    let o = a.cli(&["admin", "pin", "--unpin", "1"]);
    assert_eq!(stdout(&o), "Deployment 1 is now unpinned\n", "{o:?}");
    let o = a.cli(&["admin", "set-default", "1"]);
    assert!(stdout(&o).contains("is now the default"), "{o:?}");
    let after = versions(&a.host());
    assert_eq!((&after[0], &after[1]), (&before[1], &before[0]));
    let o = a.cli(&["admin", "undeploy", "1"]);
    assert!(stdout(&o).contains("Deleted deployment"), "{o:?}");
    assert_eq!(versions(&a.host()).len(), before.len() - 1);
    assert_eq!(versions(&a.host())[0], before[1]);

    // upgrade --pull-only, then --deploy-only with the remote gone: the
    // first fetches and deploys nothing, the second needs no network.
    std::fs::write(a.d().join("tree/usr/bin/pulled-tool"), "#!/bin/sh\n").unwrap();
    a.commit(&a.d().join("tree"), "4.0", "2024-04-01");
    let n = versions(&a.host()).len();
    let o = a.cli(&["admin", "upgrade", "--pull-only"]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(versions(&a.host()).len(), n, "--pull-only deployed");
    std::fs::rename(a.d().join("remote"), a.d().join("remote.away")).unwrap();
    let o = a.cli(&["admin", "upgrade", "--deploy-only"]);
    std::fs::rename(a.d().join("remote.away"), a.d().join("remote")).unwrap();
    assert!(o.status.success(), "{o:?}");
    assert!(stdout(&o).contains("is the new default"), "{o:?}");
    assert_eq!(versions(&a.host())[0], "4.0");
    let o = a.cli(&["admin", "upgrade", "--pull-only", "--deploy-only"]);
    assert!(!o.status.success(), "{o:?}");

    // deploy with its options: kernel argument edits, --retain and an
    // origin file read on the client's side.
    let n = versions(&a.host()).len();
    std::fs::write(
        a.d().join("client.origin"),
        "[origin]\nrefspec=origin:fakeos/main\n\n[oxtree-test]\nfrom=client\n",
    )
    .unwrap();
    let origin_file = format!("--origin-file={}/client.origin", a.d().display());
    let o = a.cli(&[
        "admin",
        "deploy",
        "--retain",
        "--karg-append=oxtree.test=1",
        &origin_file,
        "origin:fakeos/main",
    ]);
    assert!(o.status.success(), "{o:?}");
    let h = a.host();
    assert_eq!(versions(&h).len(), n + 1, "--retain kept nothing: {h}");
    assert!(kargs(&a).contains("oxtree.test=1"), "{h}");
    let origin = h["deployments"][0]["origin"].as_str().unwrap_or("");
    assert!(origin.contains("from=client"), "{h}");
    let o = a.cli(&[
        "admin",
        "deploy",
        "--karg-append=bad arg",
        "origin:fakeos/main",
    ]);
    assert!(stderr(&o).contains("invalid kernel argument"), "{o:?}");
    assert_eq!(versions(&a.host()).len(), n + 1);

    // set-origin: a new remote with its options, followed by the default
    // deployment; a name that would break out of its config section is
    // refused with the repo config unchanged.
    let repo = format!("--repo={}/mnt/ostree/repo", a.d().display());
    let url = stdout(&a.inside(&[&repo, "remote", "show-url", "origin"]));
    let config = |a: &Agent| {
        stdout(
            &Command::new("nsenter")
                .args(["-t", &a.pid.to_string(), "-m", "--", "cat"])
                .arg(format!("{}/mnt/ostree/repo/config", a.d().display()))
                .output()
                .unwrap(),
        )
    };
    let before = config(&a);
    let o = a.cli(&["admin", "set-origin", "bad\"]x", url.trim(), "fakeos/main"]);
    assert!(!o.status.success(), "{o:?}");
    assert!(stderr(&o).contains("invalid remote name"), "{o:?}");
    assert_eq!(
        config(&a),
        before,
        "a refused set-origin changed the config"
    );
    let o = a.cli(&[
        "admin",
        "set-origin",
        "--set=gpg-verify=false",
        "mirror",
        url.trim(),
    ]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(a.host()["spec"]["refspec"], "mirror:fakeos/main");
    let o = a.inside(&[&repo, "config", "get", "remote \"mirror\".gpg-verify"]);
    assert_eq!(stdout(&o).trim(), "false", "{o:?}");
    let o = a.cli(&["admin", "upgrade"]);
    assert_eq!(stdout(&o), "No update available.\n", "{o:?}");

    // unlock: a writable /usr on the default deployment, in the agent's
    // namespace; a second unlock is refused.
    let o = a.cli(&["admin", "unlock"]);
    assert!(o.status.success(), "{o:?}");
    assert!(stdout(&o).starts_with("Development mode enabled."), "{o:?}");
    let st = stdout(&a.inside(&["admin", "status", &sr, &rd]));
    assert!(st.contains("Unlocked: transient"), "{st}");
    let o = a.cli(&["admin", "unlock"]);
    assert!(stderr(&o).contains("already in unlocked state"), "{o:?}");

    // config-diff and os-init: the same words as a local run.
    let h = a.host();
    let etc = format!(
        "{}/mnt/ostree/deploy/fakeos/deploy/{}.{}/etc",
        a.d().display(),
        h["deployments"][0]["checksum"].as_str().unwrap(),
        h["deployments"][0]["serial"]
    );
    let sh = |cmd: &str| {
        let st = Command::new("nsenter")
            .args(["-t", &a.pid.to_string(), "-m", "--", "sh", "-c", cmd])
            .status()
            .unwrap();
        assert!(st.success(), "{cmd}");
    };
    sh(&format!("echo local > {etc}/added-by-test"));
    let remote = a.cli(&["admin", "config-diff"]);
    assert!(remote.status.success(), "{remote:?}");
    assert!(
        stdout(&remote).contains("A    added-by-test\n"),
        "{remote:?}"
    );
    let local = a.inside(&["admin", "config-diff", &sr, &rd]);
    assert_eq!(stdout(&remote), stdout(&local));
    let o = a.cli(&["admin", "config-diff", "--os=nosuchos"]);
    assert!(!o.status.success(), "{o:?}");
    let o = a.cli(&["admin", "os-init", "second"]);
    assert_eq!(
        stdout(&o),
        "ostree/deploy/second initialized as OSTree root\n",
        "{o:?}"
    );
    let o = a.cli(&["admin", "os-init", "../escape"]);
    assert!(stderr(&o).contains("invalid stateroot name"), "{o:?}");
    // Two stateroots now: which one is the caller's to say (a 400).
    let o = a.cli(&["admin", "config-diff"]);
    assert!(stderr(&o).contains("pass --os (400 bad-request)"), "{o:?}");
    let o = a.cli(&["admin", "config-diff", "--os=fakeos"]);
    assert_eq!(stdout(&o), stdout(&local), "{o:?}");

    let audit = a.audit();
    for kind in [
        "pin",
        "set-default",
        "undeploy",
        "set-origin",
        "unlock",
        "os-init",
    ] {
        assert!(
            audit
                .iter()
                .any(|l| l["action"] == kind && l["result"] == "succeeded"),
            "{kind} not audited: {audit:?}"
        );
    }
}

/// A tree with `n` more files than `base`, to make a pull take a while.
fn big_tree(base: &Path, to: &Path, n: usize) {
    let st = Command::new("cp")
        .arg("-a")
        .arg(base)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success());
    let dir = to.join("usr/share/big");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..n {
        std::fs::write(dir.join(format!("f{i}")), format!("content {i}\n")).unwrap();
    }
}

#[test]
fn cancel_mid_pull_with_a_queued_operation() {
    let a = Agent::start("", None);
    let d = a.d().to_path_buf();
    let [sr, _] = a.sysroot_args();
    let repo = format!("--repo={}/ostree/repo", sr.trim_start_matches("--sysroot="));
    let rev = |a: &Agent| stdout(&a.inside(&[&repo, "rev-parse", "origin:fakeos/main"]));
    let before_ref = rev(&a);
    let before = a.host();
    big_tree(&d.join("tree"), &d.join("big"), 200);
    a.commit(&d.join("big"), "2.0", "2024-02-01");
    std::fs::write(d.join("slow"), "0.3").unwrap();

    let first = a.submit("upgrade", "");
    // Queued behind it: one that will run, and one cancelled before it
    // ever starts.
    let second = a.submit("cleanup", "");
    let third = a.submit("rollback", "");
    // Wait until the pull is under way (its first counters).
    let seen = a.events(&first, 0, |_, e, _| e != "pull");
    assert_eq!(seen.last().unwrap().1, "pull", "{seen:?}");
    assert_eq!(a.op(&first)["state"], "running");
    assert_eq!(a.op(&second)["state"], "queued");
    let (st, v) = a.json("POST", &format!("/v1/operations/{third}/cancel"), "");
    assert_eq!(st, 202, "{v}");
    assert_eq!(v["state"], "cancelled");
    let (st, v) = a.json("DELETE", &format!("/v1/operations/{first}"), "");
    assert_eq!(st, 202, "{v}");
    assert_eq!(v["cancelRequested"], true);

    let t = Instant::now();
    let end = a.wait(&first);
    assert_eq!(end["state"], "cancelled", "{end}");
    assert_eq!(end["error"]["kind"], "cancelled", "{end}");
    // It stopped mid-pull: far sooner than 200 objects at 0.3 s each
    // would take even with the fetcher's parallelism.
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    let end = a.wait(&second);
    assert_eq!(end["state"], "succeeded", "{end}");
    let third_op = a.op(&third);
    assert_eq!(third_op["state"], "cancelled");
    assert!(third_op.get("started").is_none(), "{third_op}");
    // A second cancel of a finished operation is a conflict.
    let (st, _) = a.json("DELETE", &format!("/v1/operations/{first}"), "");
    assert_eq!(st, 409);

    // Nothing partial: the same deployments, the ref where it was.
    assert_eq!(a.host()["deployments"], before["deployments"]);
    assert_eq!(rev(&a), before_ref);
    assert!(!d.join("rebooted").exists());

    // Fast again: the upgrade completes from where the pull stopped.
    std::fs::remove_file(d.join("slow")).unwrap();
    let id = a.submit("upgrade", "");
    let end = a.wait(&id);
    assert_eq!(end["result"]["outcome"], "deployed", "{end}");
    assert_eq!(versions(&a.host()), ["2.0", "1.0"]);
    assert_ne!(rev(&a), before_ref);
    let [sr, rd] = a.sysroot_args();
    let fsck = a.inside(&[&repo, "fsck"]);
    assert!(fsck.status.success(), "{fsck:?}");
    let _ = (sr, rd);

    // SIGTERM mid-pull: the agent cancels the operation, audits it, and
    // exits promptly.
    big_tree(&d.join("big"), &d.join("bigger"), 400);
    a.commit(&d.join("bigger"), "3.0", "2024-03-01");
    std::fs::write(d.join("slow"), "0.3").unwrap();
    let id = a.submit("upgrade", "");
    let seen = a.events(&id, 0, |_, e, _| e != "pull");
    assert_eq!(seen.last().unwrap().1, "pull", "{seen:?}");
    let st = Command::new("kill")
        .args(["-TERM", &a.pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let mut a = a;
    let t = Instant::now();
    let code = loop {
        if let Some(c) = a._agent.0.try_wait().unwrap() {
            break c;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the agent did not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(code.success(), "{code:?}");
    assert!(!a.sock.exists(), "the socket was not removed");
    let last = a.audit().pop().unwrap();
    assert_eq!(last["action"], "upgrade", "{last}");
    assert_eq!(last["detail"]["operation"], id.as_str(), "{last}");
    assert!(
        last["result"].as_str().unwrap().starts_with("cancelled"),
        "{last}"
    );
}

/// The openssl CLI makes a CA, a server certificate for 127.0.0.1, a
/// client certificate from the CA and one from nowhere.
fn make_certs(d: &Path) {
    let script = r#"
set -e
cd "$1"
ossl() { openssl "$@" 2>/dev/null; }
ec="-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
ossl req -x509 $ec -keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > srv.ext
printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n' > cli.ext
ossl req $ec -keyout srv.key -out srv.csr -subj /CN=127.0.0.1
ossl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 -extfile srv.ext
ossl req $ec -keyout cli.key -out cli.csr -subj /CN=ops
ossl x509 -req -in cli.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out cli.pem -days 2 -extfile cli.ext
ossl req -x509 $ec -keyout rogue.key -out rogue.pem -days 2 -subj /CN=ops
"#;
    let st = Command::new("sh")
        .args(["-c", script, "sh"])
        .arg(d)
        .status()
        .unwrap();
    assert!(st.success(), "openssl failed");
}

const ADMIN_TOKEN: &str = "opsops-0123456789abcdef";
const READ_TOKEN: &str = "viewer-fedcba9876543210";

#[test]
fn credentials_401_403_and_bad_input_4xx() {
    for b in ["openssl", "curl", "setpriv"] {
        ns::require(b);
    }
    let certs = tempfile::tempdir().unwrap();
    let c = certs.path();
    make_certs(c);
    let tokens = c.join("tokens");
    std::fs::write(
        &tokens,
        format!("# name secret role\nops {ADMIN_TOKEN}\nviewer {READ_TOKEN} read\n"),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(0o644)).unwrap();
    // A tokens file others may read is refused (started as `oxtreed`,
    // the name the binary also answers to).
    let sock = c.join("refused.sock");
    std::os::unix::fs::symlink(OX, c.join("oxtreed")).unwrap();
    let o = Command::new(c.join("oxtreed"))
        .arg("--listen=127.0.0.1:1")
        .arg(format!("--socket={}", sock.display()))
        .arg(format!("--audit-log={}/audit", c.display()))
        .arg(format!("--tls-cert={}/srv.pem", c.display()))
        .arg(format!("--tls-key={}/srv.key", c.display()))
        .arg(format!("--tokens={}", tokens.display()))
        .output()
        .unwrap();
    assert!(!o.status.success(), "{o:?}");
    assert!(stderr(&o).contains("chmod 600"), "{}", stderr(&o));
    std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(0o600)).unwrap();

    let port = free_port();
    let cd = c.display();
    let a = Agent::start(
        &format!(
            "--group=4242 --listen=127.0.0.1:{port} --tls-cert={cd}/srv.pem --tls-key={cd}/srv.key --client-ca={cd}/ca.pem --tokens={}",
            tokens.display()
        ),
        Some(port),
    );
    let before = a.host();
    let url = |p: &str| format!("https://127.0.0.1:{}{p}", a.tls_port.unwrap());
    // curl's HTTP status ("000": no HTTP exchange at all).
    let curl = |extra: &[&str], method: &str, path: &str| -> String {
        let o = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", method])
            .arg("--cacert")
            .arg(format!("{cd}/ca.pem"))
            .args(extra)
            .arg(url(path))
            .output()
            .unwrap();
        stdout(&o)
    };
    let bearer = |t: &str| format!("Authorization: Bearer {t}");
    let (adm, rd, bad) = (
        bearer(ADMIN_TOKEN),
        bearer(READ_TOKEN),
        bearer("nope-0123456789abcdef"),
    );
    assert_eq!(curl(&[], "GET", "/v1/host"), "401");
    assert_eq!(curl(&[], "POST", "/v1/host/upgrade"), "401");
    assert_eq!(curl(&["-H", &bad], "GET", "/v1/host"), "401");
    assert_eq!(curl(&["-H", &bad], "POST", "/v1/host/rollback"), "401");
    assert_eq!(curl(&["-H", &rd], "GET", "/v1/host"), "200");
    assert_eq!(curl(&["-H", &rd], "POST", "/v1/host/rollback"), "403");
    assert_eq!(curl(&["-H", &rd], "DELETE", "/v1/operations/1"), "403");
    assert_eq!(curl(&["-H", &adm], "GET", "/v1/host"), "200");
    let cert = [
        "--cert".to_string(),
        format!("{cd}/cli.pem"),
        "--key".to_string(),
        format!("{cd}/cli.key"),
    ];
    let cert: Vec<&str> = cert.iter().map(String::as_str).collect();
    assert_eq!(curl(&cert, "GET", "/v1/operations"), "200");
    let rogue = [
        "--cert".to_string(),
        format!("{cd}/rogue.pem"),
        "--key".to_string(),
        format!("{cd}/rogue.key"),
    ];
    let rogue: Vec<&str> = rogue.iter().map(String::as_str).collect();
    assert_eq!(curl(&rogue, "GET", "/v1/host"), "000");
    assert_eq!(curl(&rogue, "POST", "/v1/host/rollback"), "000");
    // Not root and not in the group on the socket: 403.
    std::fs::set_permissions(a.d(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let as_user = |ids: &[&str], method: &str, path: &str| {
        let o = Command::new("setpriv")
            .arg("--reuid=65534")
            .args(ids)
            .args(["curl", "-s"])
            .args([
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-X",
                method,
                "--unix-socket",
            ])
            .arg(&a.sock)
            .arg(format!("http://x{path}"))
            .output()
            .unwrap();
        stdout(&o)
    };
    let nobody = ["--regid=65534", "--clear-groups"];
    assert_eq!(as_user(&nobody, "GET", "/v1/host"), "403");
    assert_eq!(as_user(&nobody, "POST", "/v1/host/rollback"), "403");
    // In the agent's group (primary or supplementary): allowed.
    let primary = ["--regid=4242", "--clear-groups"];
    assert_eq!(as_user(&primary, "GET", "/v1/host"), "200");
    let supplementary = ["--regid=65534", "--groups=4242"];
    assert_eq!(as_user(&supplementary, "GET", "/v1/operations"), "200");
    // The remote CLI over TLS with a token.
    let o = Command::new(OX)
        .arg(format!("--host=https://127.0.0.1:{port}"))
        .args(["admin", "status"])
        .env("OXTREE_AGENT_CA", c.join("ca.pem"))
        .env("OXTREE_AGENT_TOKEN", ADMIN_TOKEN)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    assert!(stdout(&o).contains("Version: 1.0"), "{}", stdout(&o));
    let o = Command::new(OX)
        .arg(format!("--host=https://127.0.0.1:{port}"))
        .args(["admin", "rollback"])
        .env("OXTREE_AGENT_CA", c.join("ca.pem"))
        .env("OXTREE_AGENT_TOKEN", READ_TOKEN)
        .output()
        .unwrap();
    assert!(!o.status.success(), "{o:?}");
    assert!(stderr(&o).contains("403"), "{}", stderr(&o));

    // Bad input on the socket: a 4xx each.
    let big = vec![b' '; 1 << 20];
    let cases: &[(&str, &str, &[u8], u16)] = &[
        ("POST", "/v1/host/upgrade", b"{bad", 400),
        ("POST", "/v1/host/upgrade", br#"{"mode":"sideways"}"#, 400),
        (
            "POST",
            "/v1/host/upgrade",
            br#"{"mode":"stage","extra":1}"#,
            400,
        ),
        (
            "POST",
            "/v1/host/upgrade",
            br#"{"overrideCommit":"../../x"}"#,
            400,
        ),
        ("POST", "/v1/host/upgrade", &big, 413),
        (
            "POST",
            "/v1/host/packages",
            br#"{"install":["../../etc/passwd"]}"#,
            400,
        ),
        (
            "POST",
            "/v1/host/packages",
            br#"{"install":["nano:../../../x"]}"#,
            400,
        ),
        (
            "POST",
            "/v1/host/packages",
            br#"{"install":["-oAPT::Get=x"]}"#,
            400,
        ),
        (
            "POST",
            "/v1/host/packages",
            br#"{"install":["nano"],"uninstall":["vim"]}"#,
            400,
        ),
        ("POST", "/v1/host/packages", br#"{"install":"nano"}"#, 400),
        (
            "POST",
            "/v1/host/switch",
            br#"{"refspec":"origin:../../../etc"}"#,
            400,
        ),
        (
            "POST",
            "/v1/host/switch",
            br#"{"refspec":"/etc/passwd"}"#,
            400,
        ),
        (
            "POST",
            "/v1/host/deploy",
            br#"{"rev":"fakeos/main","os":"../../etc"}"#,
            400,
        ),
        ("POST", "/v1/host/deploy", br#"{}"#, 400),
        ("POST", "/v1/host/cleanup", br#"[]"#, 400),
        ("POST", "/v1/host/..%2F..%2Fetc", b"{}", 404),
        ("POST", "/v1/host/nuke", b"{}", 404),
        ("GET", "/v1/operations/..%2F..%2Fetc%2Fpasswd", b"", 404),
        ("GET", "/v1/operations/99999999999999999999999", b"", 404),
        ("GET", "/v1/operations/-1/events", b"", 404),
        ("DELETE", "/v1/operations/7", b"", 404),
        ("GET", "/etc/passwd", b"", 404),
        ("PUT", "/v1/host", b"{}", 405),
    ];
    for (m, p, body, want) in cases {
        let (st, b) = a.http(m, p, body);
        assert_eq!(st, *want, "{m} {p}: {b}");
        if *want != 405 {
            let v: Value = serde_json::from_str(&b).unwrap_or_else(|e| panic!("{m} {p}: {e}: {b}"));
            assert!(v["error"]["message"].is_string(), "{v}");
        }
    }
    // A bad package name through the CLI is refused the same way.
    let o = a.cli(&["install", "../evil"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("invalid package name"),
        "{}",
        stderr(&o)
    );

    // Nothing changed: no operation, the same host, no reboot.
    let (_, ops) = a.json("GET", "/v1/operations", "");
    assert_eq!(ops["operations"], Value::Array(vec![]), "{ops}");
    assert_eq!(a.host(), before);
    assert!(!a.d().join("rebooted").exists());
    // The refusals are audited; nothing was accepted.
    let audit = a.audit();
    assert!(audit.iter().all(|l| l["result"] != "accepted"), "{audit:?}");
    let results: Vec<&str> = audit
        .iter()
        .map(|l| l["result"].as_str().unwrap())
        .collect();
    assert!(results.contains(&"denied: 401"), "{results:?}");
    assert!(results.contains(&"denied: 403"), "{results:?}");
    assert!(results.contains(&"denied: read-only"), "{results:?}");
    assert!(
        results.iter().any(|r| r.starts_with("rejected: ")),
        "{results:?}"
    );

    // And an admin token does get through (a mutation that is allowed).
    assert_eq!(curl(&["-H", &adm], "POST", "/v1/host/cleanup"), "202");
    let (_, ops) = a.json("GET", "/v1/operations", "");
    let op = &ops["operations"][0];
    assert_eq!(op["createdBy"], "token:ops", "{op}");
    assert_eq!(curl(&cert, "POST", "/v1/host/cleanup"), "202");
    let (_, ops) = a.json("GET", "/v1/operations", "");
    let by = ops["operations"][1]["createdBy"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(by.starts_with("cert:sha256:"), "{by}");
}

#[test]
fn install_and_uninstall_through_the_agent() {
    for b in ["mmdebstrap", "bwrap"] {
        ns::require(b);
    }
    let bases = layer_bases::bases(OX);
    let a = Agent::start_with(
        "",
        None,
        "IMG_SIZE=6G; OSNAME=debian",
        &format!(
            r#"
$OX --repo=$S/ostree/repo pull-local {bases} {main} >/dev/null || exit 94
$OX admin deploy --sysroot=$S --os=debian {main} >/dev/null || exit 95
"#,
            main = layer_bases::MAIN
        ),
    );
    let before = a.host();
    let root0 = |a: &Agent| {
        let h = a.host();
        let d = &h["deployments"][0];
        format!(
            "{}/mnt/ostree/deploy/debian/deploy/{}.{}",
            a.d().display(),
            d["checksum"].as_str().unwrap(),
            d["serial"]
        )
    };
    let has_nano = |a: &Agent| {
        Command::new("nsenter")
            .args(["-t", &a.pid.to_string(), "-m", "--", "test", "-x"])
            .arg(format!("{}/usr/bin/nano", root0(a)))
            .status()
            .unwrap()
            .success()
    };
    assert!(!has_nano(&a));
    // A package apt does not know: a bad request, nothing deployed.
    let o = a.cli(&["install", "no-such-package-oxtree"]);
    assert!(!o.status.success(), "{o:?}");
    assert!(
        stderr(&o).contains("Unable to locate package"),
        "{}",
        stderr(&o)
    );
    assert_eq!(a.host()["deployments"], before["deployments"]);

    let o = a.cli(&["install", "nano"]);
    assert!(o.status.success(), "{o:?}");
    let out = stdout(&o);
    assert!(out.contains("Added: nano"), "{out}");
    assert!(out.contains("is the new default"), "{out}");
    assert!(has_nano(&a));
    let h = a.host();
    assert_eq!(
        h["spec"]["layeredPackages"],
        serde_json::json!(["nano"]),
        "{h}"
    );

    let o = a.cli(&["uninstall", "nano"]);
    assert!(o.status.success(), "{o:?}");
    assert!(stdout(&o).contains("is the new default"), "{o:?}");
    assert!(!has_nano(&a));
    let h = a.host();
    assert_eq!(h["spec"]["layeredPackages"], serde_json::json!([]), "{h}");

    // --dry-run through the agent: apt's answer, nothing deployed.
    let o = a.cli(&["install", "--dry-run", "nano"]);
    assert!(o.status.success(), "{o:?}");
    let out = stdout(&o);
    assert!(out.contains("Would install: nano "), "{out}");
    assert!(out.ends_with("Dry run: nothing changed\n"), "{out}");
    assert_eq!(a.host()["deployments"], h["deployments"]);

    // override remove / reset through the agent.
    let has_less = |a: &Agent| {
        Command::new("nsenter")
            .args(["-t", &a.pid.to_string(), "-m", "--", "test", "-x"])
            .arg(format!("{}/usr/bin/less", root0(a)))
            .status()
            .unwrap()
            .success()
    };
    assert!(has_less(&a));
    let o = a.cli(&["override", "remove", "less"]);
    assert!(o.status.success(), "{o:?}");
    assert!(stdout(&o).contains("Removed: less"), "{o:?}");
    assert!(!has_less(&a));
    assert_eq!(
        a.host()["spec"]["removedBasePackages"],
        serde_json::json!(["less"])
    );
    let o = a.cli(&["override", "reset", "--all"]);
    assert!(o.status.success(), "{o:?}");
    assert!(has_less(&a));
    assert_eq!(
        a.host()["spec"]["removedBasePackages"],
        serde_json::json!([])
    );
    let kinds: Vec<String> = a
        .audit()
        .iter()
        .filter(|l| l["result"] != "accepted")
        .map(|l| {
            format!(
                "{} {}",
                l["action"].as_str().unwrap(),
                l["result"].as_str().unwrap().split(':').next().unwrap()
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "packages bad-request",
            "packages succeeded",
            "packages succeeded",
            "packages succeeded",
            "packages succeeded",
            "packages succeeded"
        ]
    );
}

/// `oxtreed --updates`: the update loop's config and state at
/// `GET /v1/updates`, the same JSON as `oxtree updates status --json`
/// (404 without `--updates`); a bad config stops the agent at start-up
/// and names the file.
#[test]
fn updates_status_through_the_agent() {
    let conf =
        "[identity]\\ngroup = \"workers\"\\nnode_id = \"web-3\"\\n[updates]\\nenabled = false\\n";
    let setup = format!(
        "{FAKEOS_SETUP}\nmkdir -p $D/cfg/etc/oxtree/updates.d && printf '{conf}' > $D/cfg/etc/oxtree/updates.d/50-test.toml"
    );
    let a = Agent::start_with(
        "--updates --updates-config-root=$D/cfg --updates-state-dir=$D/ustate",
        None,
        "",
        &setup,
    );
    let (st, v) = a.json("GET", "/v1/updates", "");
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["enabled"], false, "{v}");
    assert_eq!(v["group"], "workers", "{v}");
    assert_eq!(v["nodeId"], "web-3", "{v}");
    let d = a.d();
    let o = Command::new(OX)
        .args(["updates", "status", "--json"])
        .arg(format!("--config-root={}/cfg", d.display()))
        .arg(format!("--state-dir={}/ustate", d.display()))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let cli: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(cli, v);

    let plain = Agent::start("", None);
    assert_eq!(plain.http("GET", "/v1/updates", b"").0, 404);

    // A bad config: the agent exits at once with the file named.
    let bad = d.join("bad");
    std::fs::create_dir_all(bad.join("etc/oxtree/updates.d")).unwrap();
    std::fs::write(
        bad.join("etc/oxtree/updates.d/10-bad.toml"),
        "[updates]\nstrategy = \"sometimes\"\n",
    )
    .unwrap();
    let mut child = Command::new(OX)
        .arg("agent")
        .arg(format!("--sysroot={}", d.display()))
        .arg(format!("--run-dir={}", d.display()))
        .arg(format!("--socket={}/bad.sock", d.display()))
        .arg(format!("--audit-log={}/bad-audit.log", d.display()))
        .arg("--updates")
        .arg(format!("--updates-config-root={}", bad.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("the agent started with a bad update config");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = child.wait_with_output().unwrap();
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("10-bad.toml"), "{err}");
}

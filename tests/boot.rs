//! The host's whole life in a real VM (issue #11): the example container
//! host (examples/host.toml, composed once and shared with
//! tests/compose.rs: tests/support/host_base.rs) with this build's oxtree,
//! `to-disk`, booted with OVMF and with SeaBIOS; then, in the guest: the
//! booted deployment, a read-only /usr, /var and /etc changes, podman and
//! a Quadlet container, `oxtree install nano`; `admin upgrade --reboot` over
//! HTTP from the test's own server, `admin rollback --reboot`, a staged
//! upgrade finalized at shutdown; an update whose health check fails and
//! one that cannot boot at all, both rolled back by the boot loader and
//! made permanent with no command typed; and power cuts during an upgrade
//! and during finalization, after which the guest boots a whole deployment
//! and fsck is clean. Then the OS as an OCI image (issue #14): the guest
//! switches to it from the test's registry and boots it, upgrades by the
//! static delta published beside the next image, and podman runs it. It
//! also checks the network rule: the guest reaches the test's own server
//! (and registry) through the guestfwd and nothing else.
//!
//! One VM for everything: a boot under TCG costs about a minute.

#[path = "support/apt_repo.rs"]
mod apt_repo;
#[path = "support/cli.rs"]
mod cli;
#[path = "support/fixture.rs"]
mod fixture;
#[path = "support/host_base.rs"]
mod host_base;
#[path = "support/net.rs"]
mod net;
#[path = "support/registry.rs"]
mod registry;
#[path = "support/vm.rs"]
mod vm;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use host_base::REF;
/// Boots a new deployment gets before the fallback (to-disk --boot-tries).
const TRIES: u32 = 2;

fn oxtree() -> &'static str {
    env!("CARGO_BIN_EXE_oxtree")
}

use cli::ox as run;

/// A child process of this test, killed by its own pid on drop.
struct Guard(Child);
impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `oxtree serve` for `repo` on a free port of 127.0.0.1.
fn serve(repo: &Path) -> (Guard, u16) {
    let port = vm::free_port();
    let child = Command::new(oxtree())
        .arg("--repo")
        .arg(repo)
        .args(["serve", "--port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let g = Guard(child);
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t.elapsed() < Duration::from_secs(20), "serve did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    (g, port)
}

/// A new commit on REF: `from` plus `files` (path, content, mode), with
/// version `version`. Returns its checksum.
fn derive(repo: &Path, from: &str, version: &str, files: &[(&str, &str, u32)]) -> String {
    use std::os::unix::fs::PermissionsExt;
    let t = tempfile::tempdir().unwrap();
    let marker = format!("{version}\n");
    let all =
        files
            .iter()
            .copied()
            .chain([("usr/share/oxtree-test/version", marker.as_str(), 0o644)]);
    for (p, text, mode) in all {
        let f = t.path().join(p);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(&f, text).unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let out = run(&[
        "--repo",
        repo.to_str().unwrap(),
        "commit",
        "-b",
        REF,
        // Every release is bootable (an image of it must say so).
        "--bootable",
        &format!("--tree=ref={from}"),
        &format!("--tree=dir={}", t.path().display()),
        &format!("--add-metadata-string=version={version}"),
        "-s",
        &format!("test version {version}"),
    ]);
    out.trim().lines().last().unwrap().to_string()
}

/// The booted deployment's checksum and version, from `admin status --json`.
fn booted(v: &vm::Vm) -> (String, String) {
    let j: serde_json::Value = serde_json::from_str(&v.ok("oxtree admin status --json")).unwrap();
    let b = &j["status"]["booted"];
    (
        b["checksum"].as_str().unwrap_or_default().to_string(),
        b["version"].as_str().unwrap_or_default().to_string(),
    )
}

/// Wait (through any number of reboots) until `check` holds in the guest.
fn wait_for(v: &vm::Vm, what: &str, timeout: Duration, check: &str) {
    let t = Instant::now();
    loop {
        let left = timeout.saturating_sub(t.elapsed());
        assert!(
            !left.is_zero(),
            "{what}: not within {timeout:?}\n{}",
            v.diagnostics()
        );
        // A qemu that crashed (not the guest) is started again, as after
        // a power cut: else this would wait the whole timeout on nothing.
        v.revive_if_qemu_crashed();
        let o = v.ssh_timeout(check, Duration::from_secs(60));
        if o.success() {
            eprintln!("[boot] {what} after {:.0?}", t.elapsed());
            return;
        }
        std::thread::sleep(Duration::from_secs(5));
    }
}

/// The guest is on a whole deployment: the version file of its /usr is
/// the version of the deployment `admin status` says is booted, the
/// repository passes fsck, and the boot was blessed.
#[track_caller]
fn assert_whole(v: &vm::Vm, what: &str) -> String {
    let (_, version) = booted(v);
    let on_disk = v.ok("cat /usr/share/oxtree-test/version 2>/dev/null || echo 1");
    assert_eq!(on_disk.trim(), version, "{what}: /usr and status disagree");
    v.ok("oxtree --repo=/ostree/repo fsck");
    version
}

/// A one-binary root file system as a tar (made once per `dir`).
fn podman_image(dir: &Path) -> PathBuf {
    let tar = dir.join("tiny.tar");
    if tar.exists() {
        return tar;
    }
    let root = dir.join("tiny");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", root.join("bin/busybox"))
        .expect("/bin/busybox (package busybox-static)");
    std::os::unix::fs::symlink("busybox", root.join("bin/sh")).unwrap();
    let st = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    tar
}

fn copy_in(v: &vm::Vm, file: &Path, dest: &str) {
    let mut c = v.ssh_command(&format!("cat > {dest}"), Duration::from_secs(300));
    c.stdin(std::fs::File::open(file).unwrap());
    let out = c.output().unwrap();
    assert!(out.status.success(), "copying {} in", file.display());
}

/// A container bound to the OS image (v2 on): its Quadlet file, linked
/// from /usr/lib/bootc/bound-images.d, names an image in the test's
/// registry; oxtree pulls it into /sysroot/ostree/bootc/storage during the
/// upgrade, and containers-storage reads that store as an additional one.
const BOUND_QUADLET: &str = "[Unit]\nDescription=A container bound to the OS image\n\n[Container]\nImage=10.0.2.101:5000/bound:1\nExec=/bin/busybox sleep 1000000\n\n[Install]\nWantedBy=multi-user.target\n";
const BOUND_STORAGE_CONF: &str = "[storage]\ndriver = \"overlay\"\nrunroot = \"/run/containers/storage\"\ngraphroot = \"/var/lib/containers/storage\"\n\n[storage.options]\nadditionalimagestores = [\"/sysroot/ostree/bootc/storage\"]\n";

/// Push `tar` (a root file system) to `reg` as `NAME`, from a private
/// podman storage under `dir`.
fn push_image(dir: &Path, tar: &Path, reg: &registry::Registry, name: &str) {
    let pm = dir.join("podman");
    let image = format!("{}/{name}", reg.addr);
    for args in [
        vec!["import", "-q", tar.to_str().unwrap(), image.as_str()],
        vec!["push", "-q", "--tls-verify=false", image.as_str()],
    ] {
        let o = Command::new("podman")
            .arg(format!("--root={}", pm.join("root").display()))
            .arg(format!("--runroot={}", pm.join("run").display()))
            .args(["--storage-driver=overlay", "--events-backend=file"])
            .args(&args)
            .output()
            .expect("podman");
        assert!(o.status.success(), "podman {args:?}: {o:?}");
    }
}

const QUADLET: &str = "[Unit]\nDescription=A container bound to the host\n\n[Container]\nImage=localhost/tiny:1\nExec=/bin/busybox sleep 1000000\n\n[Install]\nWantedBy=multi-user.target\n";

const PROBE_UNIT: &str = "[Unit]\nDescription=oxtree agent probe\n\n[Service]\nExecStart=/bin/sh -c \"echo probe-started-$$$$; exec sleep infinity\"\n\n[Install]\nWantedBy=multi-user.target\n";

/// Parse the JSON a guest command printed.
#[track_caller]
fn guest_json(v: &vm::Vm, cmd: &str) -> serde_json::Value {
    let out = v.ok(cmd);
    serde_json::from_str(&out).unwrap_or_else(|e| {
        panic!(
            "{cmd}: {e}
{out}"
        )
    })
}

/// The agent's host management (issue 13, PMD's part) against the
/// guest's real systemd and systemd-networkd, through the agent's socket
/// with the remote CLI: a unit started, enabled, restarted, read in the
/// journal, disabled and stopped; a static address, gateway and DNS set
/// on a dummy link and taken away again; bad names refused with nothing
/// changed; each mutation in the audit log.
fn agent_manages_units_and_network(v: &vm::Vm) {
    let t = Instant::now();
    let h = "oxtree --host=unix:///run/oxtree/oxtreed.sock";
    wait_for(
        v,
        "oxtreed active",
        Duration::from_secs(120),
        "systemctl is-active oxtreed.service && test -S /run/oxtree/oxtreed.sock",
    );
    let unit = "oxtree-probe.service";
    v.ok(&format!(
        "printf '%s' '{PROBE_UNIT}' > /etc/systemd/system/{unit} && systemctl daemon-reload"
    ));
    let s = guest_json(v, &format!("{h} units status {unit} --json"));
    assert_eq!(s["activeState"], "inactive", "{s}");
    assert_eq!(s["unitFileState"], "disabled", "{s}");

    let started = guest_json(v, &format!("{h} units start {unit} --json"));
    assert_eq!(started["unit"]["activeState"], "active", "{started}");
    let pid1 = started["unit"]["mainPid"].as_u64().expect("a main pid");
    assert_eq!(
        v.ok(&format!("systemctl is-active {unit}")).trim(),
        "active"
    );

    let enabled = guest_json(v, &format!("{h} units enable {unit} --json"));
    assert_eq!(enabled["changes"][0]["change"], "symlink", "{enabled}");
    v.ok(&format!(
        "test -L /etc/systemd/system/multi-user.target.wants/{unit}"
    ));

    let restarted = guest_json(v, &format!("{h} units restart {unit} --json"));
    let pid2 = restarted["unit"]["mainPid"].as_u64().expect("a main pid");
    assert_ne!(pid1, pid2, "restart kept the same process");
    // Both runs in the journal, with their pids.
    let mut lines = Vec::new();
    for _ in 0..20 {
        let j = guest_json(v, &format!("{h} journal {unit} -n 50 --json"));
        lines = j["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["message"].as_str().unwrap_or("").to_string())
            .collect();
        if lines
            .iter()
            .filter(|l| l.starts_with("probe-started-"))
            .count()
            >= 2
        {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    for pid in [pid1, pid2] {
        assert!(
            lines.iter().any(|l| *l == format!("probe-started-{pid}")),
            "pid {pid} not in the journal: {lines:?}"
        );
    }
    let listed = guest_json(v, &format!("{h} units list --type=service --json"));
    let names: Vec<&str> = listed["units"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["activeState"] == "active")
        .filter_map(|u| u["name"].as_str())
        .collect();
    for n in ["oxtreed.service", "ssh.service", unit] {
        assert!(
            names.contains(&n),
            "{n} not among the active services: {names:?}"
        );
    }

    let disabled = guest_json(v, &format!("{h} units disable {unit} --json"));
    assert_eq!(disabled["changes"][0]["change"], "unlink", "{disabled}");
    v.ok(&format!(
        "! test -e /etc/systemd/system/multi-user.target.wants/{unit}"
    ));
    let stopped = guest_json(v, &format!("{h} units stop {unit} --json"));
    assert_eq!(stopped["unit"]["activeState"], "inactive", "{stopped}");

    // Bad input: refused by the agent, nothing started.
    for (cmd, says) in [
        (
            format!("{h} units start ../../etc/passwd"),
            "invalid unit name",
        ),
        (
            format!("{h} units start 'x.service;reboot'"),
            "invalid unit name",
        ),
        (
            format!("{h} units status no-such-oxtree.service"),
            "no such unit",
        ),
        (format!("{h} units kill {unit}"), "Unknown command 'kill'"),
        (format!("{h} journal {unit} -n 0"), "lines must be"),
    ] {
        let o = v.ssh(&cmd);
        assert!(
            !o.success() && o.stderr.contains(says),
            "{cmd}: expected an error saying {says:?}: {o:?}"
        );
    }
    assert_eq!(
        v.ssh(&format!("systemctl is-active {unit}")).stdout.trim(),
        "inactive"
    );

    // Network: a dummy link, so the guest's own link (and ssh) is untouched.
    v.ok("ip link add oxdummy0 type dummy && ip link set oxdummy0 up");
    let set = guest_json(
        v,
        &format!("{h} network set oxdummy0 --address 192.0.2.10/24 --address 2001:db8::10/64 --gateway 192.0.2.1 --dns 192.0.2.53 --json"),
    );
    assert_eq!(set["name"], "oxdummy0", "{set}");
    let file = "/etc/systemd/network/10-oxtree-oxdummy0.network";
    let text = v.ok(&format!("cat {file}"));
    assert!(
        text.contains("Name=oxdummy0")
            && text.contains("Address=192.0.2.10/24")
            && text.contains("Gateway=192.0.2.1")
            && text.contains("DNS=192.0.2.53"),
        "{text}"
    );
    // networkd applies it: the kernel has the addresses and the route.
    wait_for(
        v,
        "networkd applied the static address",
        Duration::from_secs(60),
        "ip -o addr show dev oxdummy0 | grep -q 192.0.2.10/24 && ip -o addr show dev oxdummy0 | grep -q 2001:db8::10/64 && ip route show dev oxdummy0 | grep -q 'default via 192.0.2.1'",
    );
    let links = guest_json(v, &format!("{h} network list --json"));
    let l = links["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "oxdummy0")
        .cloned()
        .expect("oxdummy0 listed");
    assert_eq!(l["networkFile"], file, "{l}");
    assert!(
        l["addresses"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["address"] == "192.0.2.10" && a["prefixLength"] == 24),
        "{l}"
    );
    for (cmd, says) in [
        (
            format!("{h} network set ../etc --address 192.0.2.11/24"),
            "invalid link name",
        ),
        (
            format!("{h} network set oxdummy0 --address 192.0.2.11"),
            "invalid address",
        ),
        (
            format!(
                "{h} network set oxdummy0 --address 192.0.2.11/24 --dns '1.1.1.1\nDNS=9.9.9.9'"
            ),
            "invalid DNS server",
        ),
        (
            format!("{h} network set no-such-link0 --address 192.0.2.11/24"),
            "no such network link",
        ),
    ] {
        let o = v.ssh(&cmd);
        assert!(
            !o.success() && o.stderr.contains(says),
            "{cmd}: expected an error saying {says:?}: {o:?}"
        );
    }
    assert_eq!(
        v.ok(&format!("cat {file}")),
        text,
        "a refused request changed the file"
    );
    v.ok("! ls /etc/systemd/network | grep -v -e '^10-oxtree-oxdummy0.network$' -e '^20-wired.network$'");

    v.ok(&format!("{h} network unset oxdummy0"));
    v.ok(&format!("! test -e {file}"));
    wait_for(
        v,
        "networkd dropped the static address",
        Duration::from_secs(60),
        "! ip -o addr show dev oxdummy0 | grep -q 192.0.2.10",
    );
    let o = v.ssh(&format!("{h} network unset oxdummy0"));
    assert!(
        !o.success() && o.stderr.contains("no static configuration"),
        "{o:?}"
    );
    v.ok("ip link del oxdummy0");

    // The audit log has each mutation, with who asked and the result.
    let audit = v.ok("cat /var/log/oxtree/audit.log");
    for needle in [
        "\"action\":\"unit start\"",
        "\"action\":\"unit enable\"",
        "\"action\":\"network set\"",
        "\"action\":\"network unset\"",
    ] {
        assert!(audit.contains(needle), "{needle} not audited:\n{audit}");
    }
    assert!(audit.contains("\"who\":\"uid:0\""), "{audit}");
    eprintln!(
        "[boot] agent units/journal/network took {:.0?}",
        t.elapsed()
    );
}

#[test]
fn host_lifecycle() {
    if !vm::available() {
        return;
    }
    let t0 = Instant::now();
    let work = tempfile::tempdir().unwrap();
    // The test's own repository: the shared composed base (hardlinks),
    // with this build's oxtree committed on top as v1.
    let repo = work.path().join("repo");
    let v1 = host_base::with_current_oxtree(&repo, "1");
    let r = repo.to_str().unwrap();
    eprintln!("[boot] base {v1} ready after {:.0?}", t0.elapsed());

    let disk = work.path().join("host.qcow2");
    let t = Instant::now();
    run(&[
        "--repo",
        r,
        "to-disk",
        "--ref",
        REF,
        "--os",
        "debian",
        "--size=6G",
        &format!("--boot-tries={TRIES}"),
        &format!("--remote-url=http://{}", vm::GUEST_SERVER),
        "--root-ssh-authorized-keys",
        vm::public_key().to_str().unwrap(),
        disk.to_str().unwrap(),
    ]);
    eprintln!("[boot] to-disk took {:.1?}", t.elapsed());
    let (_server, port) = serve(&repo);
    let reg = registry::Registry::start(false);
    push_image(work.path(), &podman_image(work.path()), &reg, "bound:1");
    let reg_port: u16 = reg.addr.rsplit(':').next().unwrap().parse().unwrap();

    // 1. UEFI (OVMF): the image boots into its deployment.
    let mut cfg = vm::Config::new(&disk, "qcow2");
    cfg.firmware = vm::Firmware::Uefi;
    cfg.guestfwd_port = Some(port);
    cfg.guestfwd_registry = Some(reg_port);
    // Power cuts must lose only what the guest had not made durable.
    cfg.cache = "writeback";
    let uefi = vm::Vm::start(cfg.clone());
    uefi.wait_ssh(vm::BOOT_TIMEOUT);
    assert_eq!(booted(&uefi).0, v1);
    assert!(uefi
        .ok("test -d /sys/firmware/efi && echo efi")
        .contains("efi"));
    uefi.shutdown_timeout(Duration::from_secs(300));
    drop(uefi);

    // 2. SeaBIOS from here on.
    cfg.firmware = vm::Firmware::Bios;
    let v = vm::Vm::start(cfg);
    v.wait_ssh(vm::BOOT_TIMEOUT);
    let status = v.ok("oxtree admin status");
    assert!(
        status.starts_with(&format!("* debian {v1}.0")),
        "booted deployment not marked:\n{status}"
    );
    v.ok("test -e /run/ostree-booted");
    // The network rule: the guest reaches the test's own server through
    // the guestfwd, and nothing else: not the host's address for that
    // server, not the outside world.
    let got = v.ok(&format!(
        "timeout 20 bash -c 'exec 3<>/dev/tcp/{}/80 && printf \"GET /config HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n\" >&3 && cat <&3'",
        vm::GUEST_SERVER
    ));
    assert!(
        got.contains("[core]"),
        "the repo's config through the guestfwd: {got}"
    );
    for (host, p) in [("10.0.2.2", port), ("1.1.1.1", port), ("1.1.1.1", 80)] {
        let o = v.ssh(&format!("timeout 8 bash -c 'exec 3<>/dev/tcp/{host}/{p}'"));
        assert!(!o.success(), "guest reached {host}:{p}: {o:?}");
    }
    let o = v.ssh("touch /usr/oxtree-test");
    assert!(
        !o.success() && o.stderr.contains("Read-only"),
        "/usr is writable: {o:?}"
    );
    v.ok("findmnt -n /sysroot && findmnt -n /var && test -L /boot/loader");
    agent_manages_units_and_network(&v);
    v.ok("echo kept > /var/oxtree-test && echo '# oxtree-test edit' >> /etc/issue");
    // podman with an image loaded locally (no registry: no network).
    copy_in(&v, &podman_image(work.path()), "/var/tmp/tiny.tar");
    v.ok("podman import /var/tmp/tiny.tar localhost/tiny:1");
    let hello = v.ok("podman run --rm localhost/tiny:1 /bin/busybox echo hello-from-a-container");
    assert!(hello.contains("hello-from-a-container"), "{hello}");
    // A container bound to systemd through Quadlet.
    v.ok(&format!(
        "mkdir -p /etc/containers/systemd && printf '%s' '{QUADLET}' > /etc/containers/systemd/tiny.container && systemctl daemon-reload && systemctl start tiny.service"
    ));
    wait_for(
        &v,
        "tiny.service active",
        Duration::from_secs(300),
        "systemctl is-active tiny.service",
    );

    // 3. Upgrade over HTTP to v2, with --reboot. v2 binds a container:
    // the upgrade pulls its image from the test's registry before the
    // deployment is written, and the new boot runs it.
    let v2 = derive(
        &repo,
        &v1,
        "2",
        &[
            (
                "usr/share/containers/systemd/bound.container",
                BOUND_QUADLET,
                0o644,
            ),
            (
                "usr/lib/bootc/bound-images.d/bound.container",
                BOUND_QUADLET,
                0o644,
            ),
            ("usr/etc/containers/storage.conf", BOUND_STORAGE_CONF, 0o644),
        ],
    );
    v.ok(&format!(
        "oxtree --repo=/sysroot/ostree/repo config set 'registry \"{}\".insecure' true",
        vm::GUEST_REGISTRY
    ));
    v.reboot_with("oxtree admin upgrade --reboot");
    assert_eq!(booted(&v), (v2.clone(), "2".into()));
    let bound = v.ok(
        "podman --root=/sysroot/ostree/bootc/storage images --format '{{.Repository}}:{{.Tag}}'",
    );
    assert!(
        bound.contains(&format!("{}/bound:1", vm::GUEST_REGISTRY)),
        "the bound image is not in the sysroot's store: {bound}"
    );
    wait_for(
        &v,
        "the bound container runs after the upgrade",
        Duration::from_secs(300),
        "systemctl is-active bound.service",
    );
    assert_eq!(v.ok("cat /var/oxtree-test").trim(), "kept");
    assert!(v.ok("cat /etc/issue").contains("# oxtree-test edit"));
    wait_for(
        &v,
        "tiny.service after the upgrade",
        Duration::from_secs(300),
        "systemctl is-active tiny.service",
    );
    wait_for(&v, "v2 blessed", Duration::from_secs(300), "systemctl is-active oxtree-boot-complete.service && ! grep -q oxtree_tries /boot/grub/grubenv");
    assert_eq!(assert_whole(&v, "after upgrade"), "2");

    // Rollback, with --reboot: v1 again.
    v.reboot_with("oxtree admin rollback --reboot");
    assert_eq!(booted(&v).0, v1);
    assert_eq!(v.ok("cat /var/oxtree-test").trim(), "kept");

    // A staged upgrade, finalized at shutdown by the shipped unit.
    let staged = v.ok("oxtree admin upgrade --stage");
    assert!(staged.contains("Staged"), "{staged}");
    v.ok("test -e /run/ostree/staged-deployment && systemctl is-active oxtree-finalize-staged.service");
    v.reboot_and_wait();
    assert_eq!(booted(&v).1, "2");
    assert!(v.ok("cat /etc/issue").contains("# oxtree-test edit"));
    wait_for(
        &v,
        "staged v2 blessed",
        Duration::from_secs(300),
        "! grep -q oxtree_tries /boot/grub/grubenv",
    );
    let v2_booted = booted(&v).0;

    // 5a. v3 fails its health check: back on v2 by itself.
    let v3 = derive(
        &repo,
        &v2,
        "3",
        &[(
            "usr/lib/oxtree/health.d/50-broken",
            "#!/bin/sh\necho 'v3 is broken on purpose' >&2\nexit 1\n",
            0o755,
        )],
    );
    v.ok("nohup sh -c 'sleep 1; oxtree admin upgrade --reboot' > /var/tmp/upgrade.log 2>&1 &");
    let gone = Instant::now();
    let check = format!(
        "grep -q {v3} /boot/oxtree/auto-rollback.json && oxtree admin status --json | tr -d ' \\n' | grep -q '\"booted\":{{[^}}]*\"checksum\":\"{v2_booted}\"'"
    );
    wait_for(
        &v,
        "automatic rollback from v3",
        vm::BOOT_TIMEOUT * (TRIES + 2),
        &check,
    );
    eprintln!("[boot] v3 rolled back after {:.0?}", gone.elapsed());
    let status = v.ok("oxtree admin status");
    assert!(
        status.contains("AutomaticRollback:") && status.contains("health check 50-broken failed"),
        "{status}"
    );
    let j: serde_json::Value = serde_json::from_str(&v.ok("oxtree admin status --json")).unwrap();
    assert_eq!(
        j["status"]["automaticRollback"]["failed"]["checksum"],
        v3.as_str()
    );
    assert_eq!(assert_whole(&v, "after the v3 rollback"), "2");

    // 5b. v4 cannot boot at all (init exits at once: kernel panic).
    let v4 = derive(
        &repo,
        &v2,
        "4",
        &[("usr/lib/systemd/systemd", "#!/bin/sh\nexit 1\n", 0o755)],
    );
    v.ok("nohup sh -c 'sleep 1; oxtree admin upgrade --reboot' > /var/tmp/upgrade.log 2>&1 &");
    let check = format!("grep -q {v4} /boot/oxtree/auto-rollback.json");
    wait_for(
        &v,
        "automatic rollback from v4",
        vm::BOOT_TIMEOUT * (TRIES + 2),
        &check,
    );
    let status = v.ok("oxtree admin status");
    assert!(
        status.contains("never reached boot-complete.target"),
        "{status}"
    );
    assert_eq!(assert_whole(&v, "after the v4 rollback"), "2");

    // 6. Power cuts: during an upgrade, and during finalization at shutdown.
    derive(&repo, &v2, "5", &[]);
    for (i, secs) in [4u64, 15].into_iter().enumerate() {
        v.ok("nohup oxtree admin upgrade > /var/tmp/upgrade.log 2>&1 &");
        std::thread::sleep(Duration::from_secs(secs));
        v.power_cut();
        v.restart();
        v.wait_ssh(vm::BOOT_TIMEOUT);
        let ver = assert_whole(&v, &format!("power cut {i} during upgrade"));
        assert!(ver == "2" || ver == "5", "booted version {ver}");
        // Whatever was interrupted, a new upgrade completes.
        v.ok("oxtree admin cleanup");
    }
    for secs in [2u64, 8] {
        v.ok("oxtree admin upgrade --stage || true");
        v.ssh("systemctl reboot");
        std::thread::sleep(Duration::from_secs(secs));
        v.power_cut();
        v.restart();
        v.wait_ssh(vm::BOOT_TIMEOUT);
        let ver = assert_whole(&v, "power cut during finalization");
        assert!(ver == "2" || ver == "5", "booted version {ver}");
    }
    // 4. Package layering in the guest: nano from the test's own apt
    //    repository, there after a reboot and after the next upgrade.
    apt_repo::with_nano(&repo.join("apt"));
    v.ok(&format!(
        "rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*; echo 'deb [trusted=yes] http://{}/apt trixie main' > /etc/apt/sources.list.d/oxtree-test.list",
        vm::GUEST_SERVER
    ));
    let t = Instant::now();
    let layered = v.ok("oxtree install nano");
    eprintln!("[boot] install nano took {:.0?}", t.elapsed());
    assert!(layered.contains("Added: nano"), "{layered}");
    v.reboot_and_wait();
    v.ok("nano --version");
    assert!(v
        .ok("oxtree admin status")
        .contains("LayeredPackages: nano"));
    let v6 = derive(&repo, &v2, "6", &[]);
    v.reboot_with("oxtree admin upgrade --reboot");
    let status = v.ok("oxtree admin status");
    assert!(status.contains(&format!("BaseCommit: {v6}")), "{status}");
    v.ok("nano --version");
    assert_eq!(v.ok("cat /var/oxtree-test").trim(), "kept");

    // 7. The OS from a registry (issue 14): v7 encapsulated as an OCI
    //    image and pushed to the test's registry; the guest switches to
    //    the image (layered packages are not carried onto an image origin,
    //    so nano goes first) and boots it.
    let v7 = derive(&repo, &v2, "7", &[]);
    let t = Instant::now();
    run(&[
        "--repo",
        r,
        "container",
        "encapsulate",
        "--insecure",
        "-q",
        REF,
        &format!("docker://{}/host:7", reg.addr),
    ]);
    eprintln!("[boot] encapsulate and push took {:.0?}", t.elapsed());
    v.ok("oxtree uninstall nano");
    let log_at = reg.log().len();
    let image = format!("ostree-unverified-registry:{}/host:7", vm::GUEST_REGISTRY);
    let t = Instant::now();
    v.reboot_with(&format!("oxtree admin switch --reboot {image}"));
    eprintln!(
        "[boot] switch to the image and reboot took {:.0?}",
        t.elapsed()
    );
    assert_eq!(booted(&v), (v7.clone(), "7".into()));
    let status = v.ok("oxtree admin status");
    assert!(
        status.contains(&format!("origin image: {image}")),
        "{status}"
    );
    let gets = registry::blob_gets(&reg.log()[log_at..], "host");
    let bytes: u64 = gets.iter().map(|(_, n)| n).sum();
    eprintln!(
        "[boot] the guest fetched {} blobs, {bytes} bytes (registry log)",
        gets.len()
    );
    assert!(gets.len() > 2, "no layers fetched: {}", reg.log());
    assert!(!v.ssh("command -v nano").success(), "nano is still there");
    assert_eq!(v.ok("cat /var/oxtree-test").trim(), "kept");
    assert!(v.ok("cat /etc/issue").contains("# oxtree-test edit"));
    wait_for(
        &v,
        "the image blessed",
        Duration::from_secs(300),
        "systemctl is-active oxtree-boot-complete.service && ! grep -q oxtree_tries /boot/grub/grubenv",
    );
    assert_eq!(assert_whole(&v, "booted from the registry"), "7");

    // 8. An upgrade from the registry with a static delta beside the
    //    image: the guest fetches the delta, not the changed layers.
    let v8 = derive(
        &repo,
        &v7,
        "8",
        &[("usr/share/oxtree-test/eight", "8\n", 0o644)],
    );
    let pushed = run(&[
        "--repo",
        r,
        "container",
        "encapsulate",
        "--insecure",
        "-q",
        "--json",
        &format!("--delta-from={v7}"),
        REF,
        &format!("docker://{}/host:7", reg.addr),
    ]);
    let pushed: serde_json::Value = serde_json::from_str(&pushed).unwrap();
    let log_at = reg.log().len();
    v.reboot_with("oxtree admin upgrade --reboot");
    assert_eq!(booted(&v), (v8.clone(), "8".into()));
    let gets = registry::blob_gets(&reg.log()[log_at..], "host");
    let bytes: u64 = gets.iter().map(|(_, n)| n).sum();
    eprintln!(
        "[boot] the upgrade fetched {} blobs, {bytes} bytes (registry log)",
        gets.len()
    );
    let layers: Vec<&str> = pushed["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap())
        .collect();
    assert!(
        gets.iter().all(|(d, _)| !layers.contains(&d.as_str())),
        "a layer was fetched: {gets:?}"
    );
    assert!(
        bytes <= pushed["deltas"][0]["size"].as_u64().unwrap() + 64 * 1024,
        "{gets:?}\n{pushed}"
    );
    assert_eq!(v.ok("cat /usr/share/oxtree-test/eight").trim(), "8");
    assert_eq!(
        assert_whole(&v, "upgraded by a delta from the registry"),
        "8"
    );

    // The OS image is an ordinary container image too: podman in the
    // guest pulls and runs it (containers cannot start on the test host).
    let t = Instant::now();
    let os_release = v.ok(&format!(
        "podman run --rm --tls-verify=false {}/host:7 cat /usr/lib/os-release /usr/share/oxtree-test/version",
        vm::GUEST_REGISTRY
    ));
    eprintln!(
        "[boot] podman pulled and ran the OS image in {:.0?}",
        t.elapsed()
    );
    assert!(
        os_release.contains("ID=debian") && os_release.trim_end().ends_with('8'),
        "{os_release}"
    );
    v.ok("podman rmi -a -f >/dev/null");

    v.shutdown_timeout(Duration::from_secs(300));
    eprintln!("[boot] host_lifecycle took {:.0?}", t0.elapsed());
}

//! Booting a disk image in qemu for the tests, and driving the guest over
//! ssh. Included with `#[path = "support/vm.rs"] mod vm;`.
//!
//! ```ignore
//! if !vm::available() { return; }              // fails instead under CI=true
//! let mut cfg = vm::Config::new(&disk, "qcow2"); // firmware, direct boot, guestfwd: fields
//! let vm = vm::Vm::start(cfg);
//! vm.wait_ssh(vm::BOOT_TIMEOUT);
//! let kernel = vm.ok("uname -r");
//! vm.reboot_and_wait();   // boot id must change
//! vm.power_cut();         // SIGKILL to our qemu
//! vm.restart();
//! vm.shutdown();          // ACPI power button over QMP, waits for qemu to exit
//! ```
//!
//! - Acceleration: TCG (`-accel tcg,thread=multi -cpu max`), because guest
//!   kernels hang right after decompression under this machine's (nested)
//!   KVM. `OXTREE_VM_ACCEL=kvm` switches to KVM where it works.
//! - Firmware: SeaBIOS (qemu's default) or OVMF (UEFI; read-only code and a
//!   private writable copy of the variable store), or a direct kernel boot
//!   (`-kernel -initrd -append`) for a baseline.
//! - Network, strictly: `-netdev user,restrict=on` — the guest can reach
//!   nothing but what the test forwards: ssh from the host through
//!   `hostfwd=tcp:127.0.0.1:PORT-:22`, and optionally guest
//!   `10.0.2.100:80` to a server of the test's on the host's
//!   `127.0.0.1:PORT` through a `guestfwd` (a small relay per connection).
//! - ssh: a fresh ed25519 key pair per test process ([`public_key`]); the
//!   image builder puts the public key in root's authorized_keys. qemu also
//!   hands it to the guest as fw_cfg `opt/oxtree/authorized_keys` (an image
//!   may copy it from `/sys/firmware/qemu_fw_cfg`, as the stock test image
//!   does).
//! - Serial console: appended to `serial.log` in the VM's directory across
//!   restarts; failures print its tail.
//! - Power: `shutdown` presses the ACPI power button through QMP;
//!   `power_cut` kills (SIGKILL) the qemu process this harness started,
//!   and only that one. Dropping the `Vm` does the same.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Boots under TCG take 20-90 s; this leaves room for a loaded CI machine.
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(600);
/// Default for one command in the guest.
pub const CMD_TIMEOUT: Duration = Duration::from_secs(600);
/// Guest address a test's host server is reachable at (port 80).
pub const GUEST_SERVER: &str = "10.0.2.100";
/// Where the guest reaches the test's registry (`guestfwd_registry`).
pub const GUEST_REGISTRY: &str = "10.0.2.101:5000";

pub const QEMU: &str = "qemu-system-x86_64";
pub const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
pub const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";

/// Whether VM tests can run: qemu, ssh and ssh-keygen are installed. When
/// they are not: under `CI=true` this panics (a VM test must fail, never
/// skip silently in CI); elsewhere it says so on stderr and returns false.
pub fn available() -> bool {
    let missing: Vec<&str> = [QEMU, "qemu-img", "ssh", "ssh-keygen", "python3", "timeout"]
        .into_iter()
        .filter(|b| !on_path(b))
        .collect();
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "VM test needs {} (scripts/test.sh installs them)",
        missing.join(", ")
    );
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("{msg}");
    }
    eprintln!("SKIPPED: {msg}");
    false
}

fn on_path(bin: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {bin} >/dev/null"))
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// The key pair of this test process: (private key, public key). Made
/// once, in /tmp/oxtree-vm-key-PID (leftovers of dead processes are
/// removed).
pub fn keypair() -> &'static (PathBuf, PathBuf) {
    static KEY: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    KEY.get_or_init(|| {
        const PREFIX: &str = "oxtree-vm-key-";
        for e in std::fs::read_dir("/tmp").unwrap().filter_map(|e| e.ok()) {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix(PREFIX) {
                if !Path::new(&format!("/proc/{pid}")).exists() {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let dir = PathBuf::from(format!("/tmp/{PREFIX}{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let key = dir.join("id_ed25519");
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "oxtree-test", "-f"])
            .arg(&key)
            .output()
            .expect("ssh-keygen");
        assert!(
            out.status.success(),
            "ssh-keygen: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        (key.clone(), key.with_extension("pub"))
    })
}

/// The public key to put into root's authorized_keys of an image.
pub fn public_key() -> &'static Path {
    &keypair().1
}

/// A qcow2 overlay at `path` over `base` (format `base_format`), so a
/// cached image stays pristine while a VM writes to it.
pub fn overlay(base: &Path, base_format: &str, path: &Path) {
    let out = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-F", base_format, "-b"])
        .arg(base)
        .arg(path)
        .output()
        .expect("qemu-img");
    assert!(
        out.status.success(),
        "qemu-img create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Firmware {
    /// SeaBIOS, qemu's default.
    Bios,
    /// OVMF, with a private copy of the variable store.
    Uefi,
}

#[derive(Clone, Debug)]
pub struct DirectBoot {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub append: String,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub disk: PathBuf,
    /// "qcow2" or "raw".
    pub format: String,
    pub firmware: Firmware,
    /// `-kernel -initrd -append` instead of the disk's bootloader.
    pub direct: Option<DirectBoot>,
    pub mem_mb: u32,
    pub smp: u32,
    /// Guest `10.0.2.100:80` connects to the host's `127.0.0.1:PORT`.
    pub guestfwd_port: Option<u16>,
    /// Guest [`GUEST_REGISTRY`] connects to the host's `127.0.0.1:PORT`
    /// (a registry of the test's own).
    pub guestfwd_registry: Option<u16>,
    /// qemu's disk cache mode: `unsafe` (fast; guest flushes ignored) by
    /// default; `writeback` honours the guest's flushes, so a power cut
    /// loses exactly what the guest had not made durable.
    pub cache: &'static str,
    /// Anything else for qemu's command line.
    pub extra_args: Vec<String>,
}

impl Config {
    pub fn new(disk: &Path, format: &str) -> Config {
        Config {
            disk: disk.to_path_buf(),
            format: format.to_string(),
            firmware: Firmware::Bios,
            direct: None,
            mem_mb: 2048,
            smp: 2,
            guestfwd_port: None,
            guestfwd_registry: None,
            cache: "unsafe",
            extra_args: Vec::new(),
        }
    }
}

/// Output of a command in the guest.
#[derive(Debug)]
pub struct Out {
    /// Exit status; 255 when ssh itself failed, 124 on timeout.
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn success(&self) -> bool {
        self.status == 0
    }
}

/// The guestfwd relay: stdin/stdout (the guest's connection) to
/// 127.0.0.1:PORT, passing on half-closes, and exiting when the server
/// closes (so the guest sees the end of the response; `nc` would wait for
/// the guest to close first).
const RELAY_PY: &str = r#"
import os, select, socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
fds = [0, s]
while True:
    r, _, _ = select.select(fds, [], [])
    if 0 in r:
        b = os.read(0, 65536)
        if b:
            s.sendall(b)
        else:
            s.shutdown(socket.SHUT_WR)
            fds.remove(0)
    if s in r:
        b = s.recv(65536)
        if not b:
            break
        while b:
            b = b[os.write(1, b):]
"#;

pub struct Vm {
    pub cfg: Config,
    pub dir: tempfile::TempDir,
    pub ssh_port: u16,
    pub serial_log: PathBuf,
    child: Mutex<Option<Child>>,
    /// Serial log offset after which `wait_serial` looks.
    serial_mark: Mutex<usize>,
    started: Mutex<Instant>,
    /// Times qemu crashed and was started again.
    revived: Mutex<u32>,
}

impl Vm {
    /// A VM (not started yet): its own directory, ssh port and serial log.
    pub fn new(cfg: Config) -> Vm {
        assert!(cfg.disk.exists(), "no disk image {}", cfg.disk.display());
        keypair();
        let dir = tempfile::Builder::new()
            .prefix("oxtree-vm-")
            .tempdir_in("/tmp")
            .unwrap();
        if cfg.firmware == Firmware::Uefi {
            std::fs::copy(OVMF_VARS, dir.path().join("OVMF_VARS.fd"))
                .unwrap_or_else(|e| panic!("{OVMF_VARS}: {e} (package ovmf)"));
        }
        std::fs::write(dir.path().join("relay.py"), RELAY_PY).unwrap();
        let serial_log = dir.path().join("serial.log");
        Vm {
            cfg,
            ssh_port: free_port(),
            serial_log,
            dir,
            child: Mutex::new(None),
            serial_mark: Mutex::new(0),
            started: Mutex::new(Instant::now()),
            revived: Mutex::new(0),
        }
    }

    /// `new` and `restart`.
    pub fn start(cfg: Config) -> Vm {
        let vm = Vm::new(cfg);
        vm.restart();
        vm
    }

    /// The qemu command line.
    pub fn command(&self) -> Command {
        let c = &self.cfg;
        let d = self.dir.path();
        let mut q = Command::new(QEMU);
        let accel = std::env::var("OXTREE_VM_ACCEL").unwrap_or_else(|_| "tcg".into());
        if accel == "kvm" {
            q.args(["-accel", "kvm", "-cpu", "host"]);
        } else {
            q.args(["-accel", "tcg,thread=multi", "-cpu", "max"]);
        }
        q.args(["-smp", &c.smp.to_string(), "-m", &c.mem_mb.to_string()]);
        q.args(["-display", "none", "-vga", "none", "-nodefaults"]);
        q.arg("-chardev").arg(format!(
            "file,id=ser0,path={},append=on",
            self.serial_log.display()
        ));
        q.args(["-serial", "chardev:ser0"]);
        q.arg("-qmp").arg(format!(
            "unix:{},server=on,wait=off",
            self.qmp_path().display()
        ));
        q.arg("-drive").arg(format!(
            "file={},if=virtio,format={},cache={}",
            c.disk.display(),
            c.format,
            c.cache
        ));
        if c.firmware == Firmware::Uefi {
            q.arg("-drive").arg(format!(
                "if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}"
            ));
            q.arg("-drive").arg(format!(
                "if=pflash,format=raw,unit=1,file={}",
                d.join("OVMF_VARS.fd").display()
            ));
        }
        if let Some(b) = &c.direct {
            q.arg("-kernel").arg(&b.kernel);
            q.arg("-initrd").arg(&b.initrd);
            q.arg("-append").arg(&b.append);
        }
        // restrict=on: no packet leaves except through the forwards below.
        let mut net = format!(
            "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:{}-:22",
            self.ssh_port
        );
        if let Some(p) = c.guestfwd_port {
            // A `tcp:` chardev would connect once, at qemu start, and carry
            // a single connection; `cmd:` runs the relay per guest
            // connection (its stdin/stdout are the guest's socket).
            net += &format!(
                ",guestfwd=tcp:{GUEST_SERVER}:80-cmd:/usr/bin/python3 {} {p}",
                d.join("relay.py").display()
            );
        }
        if let Some(p) = c.guestfwd_registry {
            net += &format!(
                ",guestfwd=tcp:{GUEST_REGISTRY}-cmd:/usr/bin/python3 {} {p}",
                d.join("relay.py").display()
            );
        }
        q.arg("-netdev").arg(net);
        q.args(["-device", "virtio-net-pci,netdev=n0"]);
        q.args(["-device", "virtio-rng-pci"]);
        q.arg("-fw_cfg").arg(format!(
            "name=opt/oxtree/authorized_keys,file={}",
            public_key().display()
        ));
        q.args(&c.extra_args);
        q
    }

    fn qmp_path(&self) -> PathBuf {
        self.dir.path().join("qmp.sock")
    }

    /// Start qemu (again, on the same disk). Panics if it is running.
    pub fn restart(&self) {
        let mut child = self.child.lock().unwrap();
        assert!(child.is_none(), "VM already running");
        let _ = std::fs::remove_file(self.qmp_path());
        *self.serial_mark.lock().unwrap() = self.serial().len();
        let log = std::fs::File::create(self.dir.path().join("qemu.log")).unwrap();
        let mut cmd = self.command();
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        progress(&format!(
            "starting {:?}",
            cmd.get_args().collect::<Vec<_>>().join(" ".as_ref())
        ));
        // If the test process dies without dropping the Vm (killed, or a
        // signal), qemu goes with it instead of running on.
        // SAFETY: the closure only makes one async-signal-safe syscall.
        #[allow(unsafe_code)]
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                rustix::process::set_parent_process_death_signal(Some(
                    rustix::process::Signal::KILL,
                ))
                .map_err(std::io::Error::from)
            });
        }
        *self.started.lock().unwrap() = Instant::now();
        *child = Some(cmd.spawn().expect("starting qemu-system-x86_64"));
        drop(child);
        std::thread::sleep(Duration::from_millis(300));
        self.assert_running("right after start");
    }

    /// Time since qemu was last started.
    pub fn uptime(&self) -> Duration {
        self.started.lock().unwrap().elapsed()
    }

    pub fn running(&self) -> bool {
        let mut child = self.child.lock().unwrap();
        match child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(None)) => true,
            Some(_) => {
                *child = None;
                false
            }
            None => false,
        }
    }

    /// qemu itself can die under TCG: an assertion in its memory code
    /// (`iotlb_to_section`, system/physmem.c, qemu 10.0) was seen during a
    /// guest reboot. For the guest that is a power cut, which the host
    /// under test must survive anyway, so a qemu killed by a signal we did
    /// not send is started again (at most twice per VM, said loudly);
    /// a qemu that exited by itself (the guest powered off) is a failure.
    /// Returns whether qemu was restarted.
    #[track_caller]
    pub fn revive_if_qemu_crashed(&self) -> bool {
        use std::os::unix::process::ExitStatusExt;
        let mut child = self.child.lock().unwrap();
        let status = match child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(Some(st))) => st,
            _ => return false,
        };
        *child = None;
        drop(child);
        let log = std::fs::read_to_string(self.dir.path().join("qemu.log")).unwrap_or_default();
        let mut revived = self.revived.lock().unwrap();
        if status.signal().is_none() || *revived >= 2 {
            panic!(
                "qemu exited ({status}, restarted {} times before)\n{}",
                *revived,
                self.diagnostics()
            );
        }
        *revived += 1;
        drop(revived);
        progress(&format!(
            "QEMU CRASHED ({status}): {}; starting it again, as after a power cut",
            log.trim()
        ));
        self.restart();
        true
    }

    #[track_caller]
    fn assert_running(&self, what: &str) {
        self.revive_if_qemu_crashed();
        if !self.running() {
            panic!("qemu is not running ({what})\n{}", self.diagnostics());
        }
    }

    /// qemu's own output and the tail of the serial console.
    pub fn diagnostics(&self) -> String {
        let qemu = std::fs::read_to_string(self.dir.path().join("qemu.log")).unwrap_or_default();
        format!(
            "--- qemu ---\n{qemu}\n--- serial console (last 60 lines of {}) ---\n{}",
            self.serial_log.display(),
            self.serial_tail(60)
        )
    }

    /// The whole serial log (every start of this VM).
    pub fn serial(&self) -> String {
        let mut b = Vec::new();
        if let Ok(mut f) = std::fs::File::open(&self.serial_log) {
            let _ = f.read_to_end(&mut b);
        }
        String::from_utf8_lossy(&b).into_owned()
    }

    pub fn serial_tail(&self, lines: usize) -> String {
        let s = self.serial();
        let all: Vec<&str> = s.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Wait for `pattern` on the serial console, after the previous match
    /// (or after the last start); returns the time since qemu started.
    #[track_caller]
    pub fn wait_serial(&self, pattern: &str, timeout: Duration) -> Duration {
        let t = Instant::now();
        let mut last = Instant::now();
        loop {
            let s = self.serial();
            let mark = *self.serial_mark.lock().unwrap();
            if let Some(i) = s.get(mark..).and_then(|rest| rest.find(pattern)) {
                *self.serial_mark.lock().unwrap() = mark + i + pattern.len();
                let up = self.uptime();
                progress(&format!("serial: {pattern:?} after {:.1?}", up));
                return up;
            }
            self.assert_running(&format!("waiting for {pattern:?} on the serial console"));
            if t.elapsed() > timeout {
                panic!(
                    "no {pattern:?} on the serial console within {timeout:?}\n{}",
                    self.diagnostics()
                );
            }
            if last.elapsed() > Duration::from_secs(30) {
                last = Instant::now();
                progress(&format!(
                    "still waiting for {pattern:?} ({:.0?})",
                    t.elapsed()
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The ssh command for `cmd` (run by root's shell in the guest).
    pub fn ssh_command(&self, cmd: &str, timeout: Duration) -> Command {
        let mut c = Command::new("timeout");
        c.args(["-k", "5", &format!("{}", timeout.as_secs().max(1)), "ssh"]);
        c.arg("-i").arg(&keypair().0);
        c.args([
            "-p",
            &self.ssh_port.to_string(),
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "ConnectTimeout=10",
            "-o",
            "ServerAliveInterval=5",
            "-o",
            "ServerAliveCountMax=6",
            "-o",
            "LogLevel=ERROR",
            "root@127.0.0.1",
            "--",
            cmd,
        ]);
        c.stdin(Stdio::null());
        c
    }

    /// Run `cmd` in the guest (default timeout).
    pub fn ssh(&self, cmd: &str) -> Out {
        self.ssh_timeout(cmd, CMD_TIMEOUT)
    }

    pub fn ssh_timeout(&self, cmd: &str, timeout: Duration) -> Out {
        let o = self
            .ssh_command(cmd, timeout)
            .output()
            .expect("running ssh");
        Out {
            status: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Run `cmd`, which must succeed; its stdout. On failure, panics with
    /// the output and the serial console's tail.
    #[track_caller]
    pub fn ok(&self, cmd: &str) -> String {
        let o = self.ssh(cmd);
        if !o.success() {
            panic!(
                "in the guest: {cmd}\nexit status {}\n--- stdout ---\n{}\n--- stderr ---\n{}\n{}",
                o.status,
                o.stdout,
                o.stderr,
                self.diagnostics()
            );
        }
        o.stdout
    }

    /// Wait until ssh answers; returns the time since qemu started.
    #[track_caller]
    pub fn wait_ssh(&self, timeout: Duration) -> Duration {
        let t = Instant::now();
        let mut last = Instant::now();
        loop {
            self.assert_running("waiting for ssh");
            let o = self.ssh_timeout("true", Duration::from_secs(30));
            if o.success() {
                let up = self.uptime();
                progress(&format!("ssh ready {:.1?} after qemu start", up));
                return up;
            }
            if t.elapsed() > timeout {
                panic!(
                    "ssh did not answer within {timeout:?} (last: {})\n{}",
                    o.stderr.trim(),
                    self.diagnostics()
                );
            }
            if last.elapsed() > Duration::from_secs(30) {
                last = Instant::now();
                progress(&format!(
                    "waiting for ssh ({:.0?}): {}",
                    t.elapsed(),
                    o.stderr.trim()
                ));
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    /// `/proc/sys/kernel/random/boot_id` of the running guest.
    #[track_caller]
    pub fn boot_id(&self) -> String {
        self.ok("cat /proc/sys/kernel/random/boot_id")
            .trim()
            .to_string()
    }

    /// `systemctl reboot` and wait until ssh answers from a new boot (the
    /// boot id changed); returns the time from the reboot command.
    #[track_caller]
    pub fn reboot_and_wait(&self) -> Duration {
        self.reboot_with("systemctl reboot")
    }

    /// Like `reboot_and_wait`, with the command that reboots (for example
    /// `oxtree admin upgrade --reboot`); it must succeed or lose its ssh
    /// connection to the reboot.
    #[track_caller]
    pub fn reboot_with(&self, cmd: &str) -> Duration {
        let old = self.boot_id();
        let t = Instant::now();
        progress(&format!("rebooting with {cmd:?}"));
        let o = self.ssh(cmd);
        // 255: the connection went away as the guest went down.
        if !(o.success() || o.status == 255) {
            panic!(
                "{cmd} failed ({}):\n{}\n{}\n{}",
                o.status,
                o.stdout,
                o.stderr,
                self.diagnostics()
            );
        }
        loop {
            self.wait_ssh(BOOT_TIMEOUT.saturating_sub(t.elapsed()));
            let o = self.ssh_timeout(
                "cat /proc/sys/kernel/random/boot_id",
                Duration::from_secs(30),
            );
            if o.success() && o.stdout.trim() != old {
                progress(&format!("rebooted in {:.1?}", t.elapsed()));
                return t.elapsed();
            }
            if t.elapsed() > BOOT_TIMEOUT {
                panic!("no reboot within {BOOT_TIMEOUT:?}\n{}", self.diagnostics());
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    /// Hard power cut: SIGKILL to the qemu process we started. Whatever
    /// the guest had not written to the disk image is lost (the disk is
    /// opened with `Config::cache`; with `unsafe` that includes writes the
    /// guest flushed).
    pub fn power_cut(&self) {
        let mut child = self.child.lock().unwrap();
        if let Some(mut c) = child.take() {
            progress(&format!("power cut (SIGKILL to qemu pid {})", c.id()));
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Clean power-off: the ACPI power button through QMP, then wait for
    /// qemu to exit; panics if it does not within `timeout` (and kills it).
    #[track_caller]
    pub fn shutdown_timeout(&self, timeout: Duration) {
        self.assert_running("before shutdown");
        progress("system_powerdown");
        if let Err(e) = self.qmp("system_powerdown") {
            panic!("QMP system_powerdown: {e}\n{}", self.diagnostics());
        }
        let t = Instant::now();
        while self.running() {
            if t.elapsed() > timeout {
                self.power_cut();
                panic!(
                    "the guest did not power off within {timeout:?}\n{}",
                    self.diagnostics()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        progress(&format!("powered off in {:.1?}", t.elapsed()));
    }

    #[track_caller]
    pub fn shutdown(&self) {
        self.shutdown_timeout(Duration::from_secs(300));
    }

    /// Clean power-off from inside (`systemctl poweroff` over ssh), for
    /// images without a power-button handler (logind needs dbus); waits
    /// for qemu to exit.
    #[track_caller]
    pub fn poweroff(&self) {
        let o = self.ssh_timeout("systemctl poweroff", Duration::from_secs(60));
        assert!(o.success() || o.status == 255, "systemctl poweroff: {o:?}");
        let t = Instant::now();
        while self.running() {
            if t.elapsed() > Duration::from_secs(300) {
                self.power_cut();
                panic!("the guest did not power off\n{}", self.diagnostics());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        progress(&format!("powered off in {:.1?}", t.elapsed()));
    }

    /// One QMP command without arguments; its reply line.
    pub fn qmp(&self, command: &str) -> std::io::Result<String> {
        let s = UnixStream::connect(self.qmp_path())?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut r = BufReader::new(s.try_clone()?);
        let mut w = s;
        let mut line = String::new();
        r.read_line(&mut line)?; // greeting
        let mut reply = |cmd: &str| -> std::io::Result<String> {
            writeln!(w, "{{\"execute\": \"{cmd}\"}}")?;
            loop {
                let mut l = String::new();
                if r.read_line(&mut l)? == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                // Skip asynchronous events.
                if l.contains("\"return\"") || l.contains("\"error\"") {
                    return Ok(l);
                }
            }
        };
        reply("qmp_capabilities")?;
        let l = reply(command)?;
        if l.contains("\"error\"") {
            return Err(std::io::Error::other(l));
        }
        Ok(l)
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        if let Ok(mut child) = self.child.lock() {
            if let Some(mut c) = child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        if std::thread::panicking() {
            eprintln!(
                "VM directory (serial log) kept: {}",
                self.dir.path().display()
            );
            let dir = std::mem::replace(&mut self.dir, tempfile::TempDir::new().unwrap());
            let _ = dir.keep();
        }
    }
}

pub fn progress(msg: &str) {
    static T0: OnceLock<Instant> = OnceLock::new();
    let t0 = T0.get_or_init(Instant::now);
    eprintln!("[vm {:>6.1}s] {msg}", t0.elapsed().as_secs_f64());
}

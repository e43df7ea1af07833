//! The VM harness itself (tests/support/vm.rs), on a stock Debian trixie
//! minbase (tests/support/stock-minbase.sh, a cached fixture) booted with
//! a direct kernel boot: ssh in, the strict network (only the test's own
//! server through the guestfwd), a reboot, a power cut and a restart on
//! the same disk, a clean power-off; and that OVMF starts for UEFI boots.
//! Under CI=true a missing qemu fails these tests.

#[path = "support/fixture.rs"]
mod fixture;
#[path = "support/vm.rs"]
mod vm;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process killed (by its own pid) when dropped.
struct Guard(Child);
impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// python3's http.server for `dir` on a free port of 127.0.0.1.
fn http_server(dir: &Path) -> (Guard, u16) {
    let port = vm::free_port();
    let child = Command::new("python3")
        .args(["-m", "http.server", "--bind", "127.0.0.1"])
        .arg(port.to_string())
        .arg("--directory")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3");
    let g = Guard(child);
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "http.server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (g, port)
}

/// The stock image booted directly (-kernel -initrd -append), on a qcow2
/// overlay in `scratch` so the cached image stays as it was built.
fn stock_config(scratch: &Path) -> vm::Config {
    let stock = fixture::stock_minbase();
    let disk = scratch.join("stock.qcow2");
    vm::overlay(&stock.join("disk.img"), "raw", &disk);
    let mut cfg = vm::Config::new(&disk, "qcow2");
    cfg.direct = Some(vm::DirectBoot {
        kernel: stock.join("vmlinuz"),
        initrd: stock.join("initrd.img"),
        append: "root=/dev/vda1 rw console=ttyS0".into(),
    });
    cfg
}

/// An HTTP GET from the guest with bash's /dev/tcp (minbase has no curl).
fn guest_get(host: &str, path: &str) -> String {
    format!(
        "timeout 20 bash -c 'exec 3<>/dev/tcp/{host}/80 && \
         printf \"GET {path} HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n\" >&3 && cat <&3'"
    )
}

#[test]
fn stock_minbase_boot_ssh_network_reboot_power_cut_shutdown() {
    if !vm::available() {
        return;
    }
    let scratch = tempfile::Builder::new()
        .prefix("oxtree-vm-harness-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let www = scratch.path().join("www");
    std::fs::create_dir(&www).unwrap();
    std::fs::write(www.join("hello.txt"), "hello from the host\n").unwrap();
    let (_server, port) = http_server(&www);

    let mut cfg = stock_config(scratch.path());
    cfg.guestfwd_port = Some(port);
    let vm = vm::Vm::start(cfg);

    // Boot: ssh answers, and the unit after multi-user.target ran.
    let marker = vm.wait_serial("OXTREE-BOOT-READY", vm::BOOT_TIMEOUT);
    let ssh_ready = vm.wait_ssh(vm::BOOT_TIMEOUT);
    eprintln!("stock boot: ssh after {ssh_ready:.1?}, OXTREE-BOOT-READY after {marker:.1?}");
    let kernel = vm.ok("uname -r");
    assert!(kernel.trim().ends_with("-amd64"), "{kernel}");
    assert_eq!(vm.ok("hostname").trim(), "stock");
    let o = vm.ssh("exit 3");
    assert_eq!(o.status, 3, "exit status comes back: {o:?}");

    // Network: the test's server, twice (a connection each), through the
    // guestfwd; nothing else, not even the host's own address for that
    // server, nor the outside world.
    for _ in 0..2 {
        let got = vm.ok(&guest_get(vm::GUEST_SERVER, "/hello.txt"));
        assert!(got.contains("hello from the host"), "{got}");
    }
    for host in ["10.0.2.2", "1.1.1.1"] {
        let cmd = format!("timeout 8 bash -c 'exec 3<>/dev/tcp/{host}/{port}'");
        let o = vm.ssh(&cmd);
        assert!(!o.success(), "guest reached {host}:{port}: {o:?}");
    }
    let o = vm.ssh("timeout 8 bash -c 'exec 3<>/dev/tcp/1.1.1.1/80'");
    assert!(!o.success(), "guest reached 1.1.1.1:80: {o:?}");

    // A reboot from inside: a new boot id.
    let boot1 = vm.boot_id();
    let took = vm.reboot_and_wait();
    let boot2 = vm.boot_id();
    assert_ne!(boot1, boot2);
    vm.wait_serial("OXTREE-BOOT-READY", vm::BOOT_TIMEOUT);
    eprintln!("reboot to ssh: {took:.1?}");

    // A synced file survives a power cut; qemu is started again on the
    // same disk and the guest boots anew.
    vm.ok("echo before-the-cut > /var/tmp/mark && sync");
    vm.power_cut();
    assert!(!vm.running());
    vm.restart();
    vm.wait_ssh(vm::BOOT_TIMEOUT);
    let boot3 = vm.boot_id();
    assert_ne!(boot2, boot3);
    assert_eq!(vm.ok("cat /var/tmp/mark").trim(), "before-the-cut");

    // Clean power-off through QMP: qemu exits by itself.
    vm.shutdown();
    assert!(!vm.running());
    assert!(
        vm.serial().contains("reboot: Power down"),
        "no clean power-off on the console:\n{}",
        vm.serial_tail(30)
    );
}

#[test]
fn uefi_firmware_starts() {
    if !vm::available() {
        return;
    }
    let scratch = tempfile::Builder::new()
        .prefix("oxtree-vm-uefi-")
        .tempdir_in("/var/tmp")
        .unwrap();
    // An empty disk: OVMF starts, finds nothing to boot and says so.
    let disk = scratch.path().join("empty.qcow2");
    let o = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&disk)
        .arg("64M")
        .output()
        .unwrap();
    assert!(o.status.success());
    let mut cfg = vm::Config::new(&disk, "qcow2");
    cfg.firmware = vm::Firmware::Uefi;
    let vm = vm::Vm::start(cfg);
    vm.wait_serial("BdsDxe", Duration::from_secs(300));
    vm.power_cut();
}

#[test]
fn fixture_built_once_and_never_half_made() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let builds = AtomicUsize::new(0);
    // Four threads ask at once: one builds, the others wait for it.
    let dirs: Vec<_> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    fixture::cached_in(root, "f", &[b"a", b"bc"], |d| {
                        builds.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(300));
                        std::fs::write(d.join("out"), "done").unwrap();
                    })
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(builds.load(Ordering::SeqCst), 1);
    assert!(dirs.iter().all(|d| d == &dirs[0]));
    assert_eq!(
        std::fs::read_to_string(dirs[0].join("out")).unwrap(),
        "done"
    );
    // Other inputs (even the same bytes framed differently): another fixture.
    assert_ne!(fixture::key(&[b"a", b"bc"]), fixture::key(&[b"ab", b"c"]));
    // A build that fails leaves nothing; the next caller builds afresh.
    let failed = std::panic::catch_unwind(|| {
        fixture::cached_in(root, "g", &[b"x"], |d| {
            std::fs::write(d.join("half"), "").unwrap();
            panic!("build failed");
        })
    });
    assert!(failed.is_err());
    let names: Vec<_> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("g-") || n.starts_with(".g-"))
        .filter(|n| !n.ends_with(".lock"))
        .collect();
    assert!(names.is_empty(), "{names:?}");
    let g = fixture::cached_in(root, "g", &[b"x"], |d| {
        std::fs::write(d.join("out"), "second").unwrap();
    });
    assert!(!g.join("half").exists());
    assert_eq!(std::fs::read_to_string(g.join("out")).unwrap(), "second");
}

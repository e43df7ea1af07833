//! `oxtree to-disk` without booting anything: the partition table, the
//! boot loader's files, the boot entries and the hardlinked kernel, read
//! back from the image file with sfdisk, debugfs and mtools (no mount, no
//! loop device); and failures, early or late, that leave TARGET as it was.
//! The booting itself is tests/boot.rs.

#[path = "support/cli.rs"]
mod cli;
#[path = "support/ns.rs"]
mod ns;
use cli::{ok_cmd, OX};
use ns::require;
use std::path::Path;
use std::process::{Command, Output};

const ROOT_PART_START: u64 = 264192 * 512;

fn tools() {
    for t in [
        "sfdisk",
        "debugfs",
        "mdir",
        "mcopy",
        "qemu-img",
        "grub-mkimage",
    ] {
        require(t);
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A repository with `fake/main` (a tiny tree with a kernel) and
/// `fake/nokernel` (none).
fn repo(d: &Path) -> String {
    let repo = d.join("repo").display().to_string();
    let t = d.join("tree");
    std::fs::create_dir_all(t.join("usr/lib/modules/5.10.0-test")).unwrap();
    std::fs::create_dir_all(t.join("usr/etc")).unwrap();
    std::fs::write(
        t.join("usr/lib/modules/5.10.0-test/vmlinuz"),
        "kernel-bytes\n",
    )
    .unwrap();
    std::fs::write(
        t.join("usr/lib/modules/5.10.0-test/initramfs.img"),
        "initramfs-bytes\n",
    )
    .unwrap();
    std::fs::write(t.join("usr/etc/os-release"), "NAME=Fake\n").unwrap();
    let nk = d.join("nokernel");
    std::fs::create_dir_all(nk.join("usr/etc")).unwrap();
    std::fs::write(nk.join("usr/etc/os-release"), "NAME=Fake\n").unwrap();
    ok_cmd(Command::new(OX).args(["--repo", &repo, "init", "--mode=archive"]));
    for (branch, tree) in [("fake/main", &t), ("fake/nokernel", &nk)] {
        ok_cmd(
            Command::new(OX)
                .args(["--repo", &repo, "commit", "-b", branch])
                .arg(tree),
        );
    }
    repo
}

/// `debugfs -R REQUEST` on the root partition of `img`.
fn debugfs(img: &Path, request: &str) -> String {
    ok_cmd(
        Command::new("debugfs")
            .args(["-R", request])
            .arg(format!("{}?offset={ROOT_PART_START}", img.display())),
    )
}

#[test]
fn gpt_bootloaders_entries_and_hardlinked_kernel() {
    tools();
    let d = tempfile::tempdir_in("/var/tmp").unwrap();
    let repo = repo(d.path());
    let img = d.path().join("disk.img");
    let json = ok_cmd(
        Command::new(OX)
            .args([
                "--repo",
                &repo,
                "to-disk",
                "--ref",
                "fake/main",
                "--os",
                "fake",
                "--size",
                "2G",
                "--karg",
                "console=ttyS0",
                "--json",
            ])
            .arg(&img),
    );
    let j: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(j["bios"], true);
    assert_eq!(j["uefi"], true);
    assert_eq!(j["stateroot"], "fake");
    let uuid = j["root-uuid"].as_str().unwrap().to_string();
    assert_eq!(std::fs::metadata(&img).unwrap().len(), 2 << 30);

    // GPT: BIOS boot, ESP, root (Linux filesystem), in that order.
    let t: serde_json::Value =
        serde_json::from_str(&ok_cmd(Command::new("sfdisk").arg("--json").arg(&img))).unwrap();
    let parts = t["partitiontable"]["partitions"].as_array().unwrap();
    assert_eq!(t["partitiontable"]["label"], "gpt");
    let types: Vec<&str> = parts.iter().map(|p| p["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "21686148-6449-6E6F-744E-656564454649",
            "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
            "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
        ]
    );
    assert_eq!(parts[2]["start"].as_u64().unwrap() * 512, ROOT_PART_START);

    // BIOS: boot code in the protective MBR, the core image in partition 1.
    let bytes = std::fs::read(&img).unwrap_or_default();
    assert_eq!(&bytes[510..512], &[0x55, 0xaa]);
    assert!(bytes[..440].iter().any(|&b| b != 0), "no MBR boot code");
    let core = &bytes[2048 * 512..4096 * 512];
    assert!(core.iter().any(|&b| b != 0), "no core image");
    drop(bytes);

    // UEFI: the removable-media path on the ESP.
    let esp = ok_cmd(
        Command::new("mdir")
            .arg("-i")
            .arg(format!("{}@@{}", img.display(), 4096 * 512))
            .args(["-b", "::/EFI/BOOT"]),
    );
    assert!(esp.contains("BOOTX64.EFI"), "{esp}");

    // The root: static grub.cfg, one BLS entry naming root=UUID and the
    // karg, the kernel hardlinked (not copied) into /boot/ostree.
    let cfg = debugfs(&img, "cat /boot/grub/grub.cfg");
    assert!(cfg.contains("source /boot/loader/grub.cfg"), "{cfg}");
    let entry = debugfs(&img, "cat /boot/loader/entries/ostree-1-fake.conf");
    assert!(
        entry.contains(&format!("root=UUID={uuid}")) && entry.contains("console=ttyS0"),
        "{entry}"
    );
    let kernel = entry
        .lines()
        .find_map(|l| l.strip_prefix("linux "))
        .unwrap_or_else(|| panic!("no linux line: {entry}"));
    let stat = debugfs(&img, &format!("stat /boot{kernel}"));
    let links: u32 = stat
        .split("Links: ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{stat}"));
    assert!(links >= 2, "kernel copied, not hardlinked: {stat}");
    let menu = debugfs(&img, "cat /boot/loader/grub.cfg");
    assert!(menu.contains(kernel), "{menu}");
}

#[test]
fn qcow2_target() {
    tools();
    let d = tempfile::tempdir_in("/var/tmp").unwrap();
    let repo = repo(d.path());
    let img = d.path().join("disk.qcow2");
    ok_cmd(
        Command::new(OX)
            .args([
                "--repo",
                &repo,
                "to-disk",
                "--ref",
                "fake/main",
                "--size=1G",
            ])
            .arg(&img),
    );
    let info = ok_cmd(
        Command::new("qemu-img")
            .args(["info", "--output=json"])
            .arg(&img),
    );
    let j: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(j["format"], "qcow2");
    assert_eq!(j["virtual-size"], 1u64 << 30);
}

#[test]
fn failures_leave_the_target_untouched() {
    tools();
    let d = tempfile::tempdir_in("/var/tmp").unwrap();
    let repo = repo(d.path());
    let target = d.path().join("target.img");
    let before: Vec<u8> = (0..1u32 << 20).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&target, &before).unwrap();
    let listing = || {
        let mut v: Vec<String> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let files = listing();
    for (args, says) in [
        (vec!["--ref", "nope/none"], "not found"),
        (vec!["--ref", "fake/main", "--size", "100M"], "too small"),
        // Fails late: after the partition table, the filesystem and the
        // pull, when the deployment has no kernel.
        (
            vec!["--ref", "fake/nokernel", "--size", "1G"],
            "Failed to find kernel",
        ),
    ] {
        let out = Command::new(OX)
            .args(["--repo", &repo, "to-disk"])
            .args(&args)
            .arg(&target)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} succeeded");
        let msg = text(&out);
        assert!(msg.contains(says), "{args:?}: {msg}");
        assert!(
            std::fs::read(&target).unwrap() == before,
            "{args:?} changed the target"
        );
        assert_eq!(listing(), files, "{args:?} left files behind");
    }
}

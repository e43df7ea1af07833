//! A small apt repository for tests (tests/boot.rs, tests/container.rs).
//! Included with `#[path]`.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

/// An apt repository in `dir` holding trixie's nano, downloaded on the
/// host from the host's own Debian mirror, for tests whose apt may reach
/// nothing but a loopback (or VM-forwarded) server: `deb [trusted=yes]
/// URL/DIR trixie main`. (`oxtree serve` refuses `.` path components, so
/// not a flat `./` repository.)
pub fn with_nano(dir: &Path) {
    let uri = std::fs::read_to_string("/etc/apt/sources.list.d/debian.sources")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("URIs:"))
                .and_then(|u| u.split_whitespace().next().map(str::to_string))
        })
        .or_else(|| {
            std::fs::read_to_string("/etc/apt/sources.list")
                .ok()
                .and_then(|t| {
                    t.lines().find_map(|l| {
                        let f: Vec<&str> = l.split_whitespace().collect();
                        (f.len() > 2 && f[0] == "deb" && !f[1].starts_with('['))
                            .then(|| f[1].to_string())
                    })
                })
        })
        .expect("no Debian mirror in the host's apt sources");
    let state = tempfile::tempdir().unwrap();
    for d in ["lists/partial", "cache/archives/partial"] {
        std::fs::create_dir_all(state.path().join(d)).unwrap();
    }
    let list = state.path().join("sources.list");
    std::fs::write(
        &list,
        format!(
            "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] {uri} trixie main\n"
        ),
    )
    .unwrap();
    let pool = dir.join("pool");
    std::fs::create_dir_all(&pool).unwrap();
    let apt = |args: &[&str]| {
        let out = Command::new("apt-get")
            .arg(format!("-oDir::Etc::SourceList={}", list.display()))
            .arg("-oDir::Etc::SourceParts=/dev/null")
            .arg(format!(
                "-oDir::State::Lists={}",
                state.path().join("lists").display()
            ))
            .arg(format!(
                "-oDir::Cache={}",
                state.path().join("cache").display()
            ))
            .args(args)
            .current_dir(&pool)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "apt-get {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    apt(&["-qq", "update"]);
    apt(&["-qq", "download", "nano"]);
    let out = Command::new("dpkg-scanpackages")
        .args(["-m", "pool"])
        .current_dir(dir)
        .output()
        .expect("dpkg-scanpackages (dpkg-dev)");
    assert!(out.status.success());
    let packages = out.stdout;
    let bin = dir.join("dists/trixie/main/binary-amd64");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(bin.join("Packages"), &packages).unwrap();
    // An unsigned Release, which `[trusted=yes]` in the guest accepts.
    let out = Command::new("sha256sum")
        .arg(bin.join("Packages"))
        .output()
        .unwrap();
    let hash = String::from_utf8_lossy(&out.stdout)[..64].to_string();
    std::fs::write(
        dir.join("dists/trixie/Release"),
        format!(
            "Origin: oxtree-test\nLabel: oxtree-test\nSuite: trixie\nCodename: trixie\nComponents: main\nArchitectures: amd64\nDate: Thu, 01 Jan 2026 00:00:00 UTC\nSHA256:\n {hash} {} main/binary-amd64/Packages\n",
            packages.len()
        ),
    )
    .unwrap();
}

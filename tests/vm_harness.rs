//! The test fixtures' cache itself (tests/support/fixture.rs): built once
//! however many tests ask at once, and never left half made.
//!
//! The VM harness (tests/support/vm.rs) is proven by tests/boot.rs, which
//! uses every part of it on the composed host: ssh, the strict network
//! (only the test's own server through the guestfwd), reboots, power cuts
//! and restarts on the same disk, clean power-off, SeaBIOS and OVMF. The
//! stock Debian image (tests/support/stock-minbase.sh) is the baseline of
//! bench/boot-vs-stock.sh; booting it in the suite as well cost three
//! TCG boots per run and checked nothing tests/boot.rs does not.

#[path = "support/fixture.rs"]
mod fixture;

use std::time::Duration;

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

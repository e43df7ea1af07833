//! oxtree's own systemd units, shipped in every composed image that has
//! systemd: staged-deployment finalization at shutdown, the health
//! checks and boot blessing behind automatic rollback, and the host
//! agent (oxtreed). The unit files are
//! the ones in the repository's `dist/`; they are enabled through
//! vendor `.wants`/`.requires` links under `usr/lib/systemd/system`, so
//! the image needs no presets and /etc stays the admin's.

use crate::error::Result;
use crate::fsat;
use rustix::fd::BorrowedFd;

const UNIT_DIR: &str = "usr/lib/systemd/system";

/// A unit that pulls another in: (target, `wants` or `requires`).
type PulledBy = Option<(&'static str, &'static str)>;

/// (file name, contents, the unit that pulls it in and how).
const UNITS: &[(&str, &str, PulledBy)] = &[
    (
        "oxtree-finalize-staged.path",
        include_str!("../../../dist/oxtree-finalize-staged.path"),
        Some(("multi-user.target", "wants")),
    ),
    (
        "oxtree-finalize-staged.service",
        include_str!("../../../dist/oxtree-finalize-staged.service"),
        None,
    ),
    (
        "oxtree-healthcheck.service",
        include_str!("../../../dist/oxtree-healthcheck.service"),
        Some(("boot-complete.target", "requires")),
    ),
    (
        "oxtree-health-failed.service",
        include_str!("../../../dist/oxtree-health-failed.service"),
        None,
    ),
    (
        "oxtree-boot-complete.service",
        include_str!("../../../dist/oxtree-boot-complete.service"),
        Some(("multi-user.target", "wants")),
    ),
    (
        "oxtreed.service",
        include_str!("../../../dist/oxtreed.service"),
        Some(("multi-user.target", "wants")),
    ),
];

/// Install and enable the units when `root` has systemd; returns whether
/// it did.
pub fn install(root: BorrowedFd<'_>) -> Result<bool> {
    let has = |p: &str| -> Result<bool> { Ok(fsat::lstat(root, p)?.is_some()) };
    if !has("usr/lib/systemd/systemd")? && !has("lib/systemd/systemd")? {
        return Ok(false);
    }
    fsat::mkdir(root, oxtree_sysroot::boot_health::HEALTH_DIRS[0], 0o755)?;
    for (name, text, wanted) in UNITS {
        fsat::write(root, &format!("{UNIT_DIR}/{name}"), text.as_bytes())?;
        if let Some((target, kind)) = wanted {
            let dir = format!("{UNIT_DIR}/{target}.{kind}");
            fsat::symlink(root, &format!("../{name}"), &format!("{dir}/{name}"))?;
        }
    }
    Ok(true)
}

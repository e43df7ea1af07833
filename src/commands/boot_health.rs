//! `oxtree admin health-check | boot-complete | boot-failed`: the
//! userspace half of automatic rollback, run by oxtree's units on the
//! booted system (see `oxtree_sysroot::boot_health`).

use anyhow::{bail, Context, Result};
use oxtree_sysroot::boot_health::{self, BootComplete};
use oxtree_sysroot::Sysroot;
use std::path::Path;

/// `health-check`: run every check; record the first failure; fail.
pub fn health_check(sysroot: &Path, root: &Path) -> Result<()> {
    let results = boot_health::run_health_checks(root);
    if results.is_empty() {
        println!("No health checks.");
        return Ok(());
    }
    let mut failed = Vec::new();
    for r in &results {
        println!("{} {}", if r.ok { "ok  " } else { "FAIL" }, r.name);
        if !r.ok {
            for l in r.output.lines() {
                println!("     {l}");
            }
            failed.push(r);
        }
    }
    if let Some(first) = failed.first() {
        let s = Sysroot::open(sysroot).context("opening the sysroot")?;
        let names: Vec<&str> = failed.iter().map(|r| r.name.as_str()).collect();
        s.record_health_failure(&names.join(", "), &first.output)
            .context("recording the failure")?;
        bail!(
            "{} of {} health checks failed: {}",
            failed.len(),
            results.len(),
            names.join(", ")
        );
    }
    println!("All {} health checks passed.", results.len());
    Ok(())
}

/// `boot-complete`: bless the booted deployment, or make an automatic
/// rollback permanent.
pub fn boot_complete(s: &mut Sysroot) -> Result<()> {
    match s.boot_complete()? {
        BootComplete::NothingToDo => println!("No boot counting in progress."),
        BootComplete::Blessed(d) => println!("Deployment {} marked good.", d.name()),
        BootComplete::RolledBack(r) => println!(
            "Automatic rollback: deployment {} failed ({}); {} is the default again.",
            r.failed.name(),
            r.reason,
            r.restored.name()
        ),
    }
    Ok(())
}

/// `boot-failed`: the health-check unit failed; make sure the failure is
/// on record (a check killed by its timeout records nothing), then reboot
/// when asked so the boot loader counts the try.
pub fn boot_failed(s: &Sysroot, reboot: bool) -> Result<()> {
    let booted = s
        .booted_index()
        .context("not booted into a deployment of this sysroot")?;
    let d = boot_health::DeploymentId::of(s.deployment(booted)?);
    let recent = s.health_failures(&d)?.last().is_some_and(|f| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|t| t.as_secs())
            .unwrap_or(0);
        now.saturating_sub(f.time) < 600
    });
    if !recent {
        s.record_health_failure(
            "oxtree-healthcheck.service",
            "the health-check unit failed without a result (timeout or crash)",
        )?;
    }
    if reboot {
        eprintln!("Health check failed: rebooting");
        // The same hook as every --reboot: systemctl reboot, or
        // $OXTREE_REBOOT_COMMAND.
        use oxtree_host::Reboot;
        let hook: Box<dyn Reboot> = match std::env::var("OXTREE_REBOOT_COMMAND") {
            Ok(c) if !c.is_empty() => Box::new(oxtree_host::CommandReboot(c)),
            _ => Box::new(oxtree_host::SystemctlReboot),
        };
        hook.reboot().context("rebooting")?;
    }
    Ok(())
}

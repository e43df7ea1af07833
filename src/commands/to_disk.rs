//! `oxtree to-disk`: a bootable disk (or image file) from a commit, as
//! `bootc install to-disk`. The work is `oxtree_sysroot::to_disk`.

use anyhow::{bail, Context, Result};
use oxtree_sysroot::to_disk::{self, gpt::Firmware, RemoteSpec, ToDiskOptions};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// The ref (or commit checksum) to install
    #[arg(long = "ref", value_name = "REF")]
    refname: String,
    /// The stateroot (osname)
    #[arg(long, default_value = "default")]
    os: String,
    /// Kernel argument, after root=UUID=… and the image's own (repeatable)
    #[arg(long = "karg", value_name = "ARG")]
    karg: Vec<String>,
    /// Size of an image file: bytes, or with a K, M, G or T suffix
    #[arg(long, default_value = "8G", value_parser = parse_size)]
    size: u64,
    /// Boot loader setup: bios, uefi, or both (a BIOS boot partition and an ESP)
    #[arg(long, default_value = "both", value_parser = ["bios", "uefi", "both"])]
    bootloader: String,
    /// Accepted for bootc compatibility: image files always go through a
    /// loop device
    #[arg(long)]
    via_loopback: bool,
    /// Record a remote for later upgrades (the origin becomes NAME:REF)
    #[arg(long, value_name = "URL")]
    remote_url: Option<String>,
    /// The name of that remote
    #[arg(
        long,
        value_name = "NAME",
        default_value = "origin",
        requires = "remote_url"
    )]
    remote_name: String,
    /// Install this file as root's ~/.ssh/authorized_keys
    #[arg(long, value_name = "FILE")]
    root_ssh_authorized_keys: Option<PathBuf>,
    /// Boots of a new deployment before falling back to the previous one
    #[arg(long, value_name = "N")]
    boot_tries: Option<u32>,
    /// Print the result as JSON
    #[arg(long)]
    json: bool,
    /// A block device, or an image file (raw; qcow2 when it ends in .qcow2)
    target: PathBuf,
}

fn parse_size(s: &str) -> Result<u64, String> {
    let (num, mult) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m = match c.to_ascii_uppercase() {
                'K' => 1u64 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                _ => return Err(format!("unknown size suffix in {s}")),
            };
            (&s[..i], m)
        }
        _ => (s, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("not a size: {s}"))
}

pub fn run(repo: Option<PathBuf>, a: Args) -> Result<()> {
    let Some(repo) = repo else {
        bail!("to-disk needs --repo: the repository holding the commit");
    };
    let _ = a.via_loopback;
    let firmware = Firmware {
        bios: a.bootloader != "uefi",
        uefi: a.bootloader != "bios",
    };
    let o = ToDiskOptions {
        source_repo: repo,
        refname: a.refname.clone(),
        osname: a.os.clone(),
        kargs: a.karg.clone(),
        size: a.size,
        firmware,
        remote: a.remote_url.as_ref().map(|u| RemoteSpec {
            name: a.remote_name.clone(),
            url: u.clone(),
        }),
        root_ssh_authorized_keys: a.root_ssh_authorized_keys.clone(),
        boot_tries: a.boot_tries,
    };
    let t0 = std::time::Instant::now();
    let progress = |m: &str| eprintln!("{m}...");
    let r = to_disk::to_disk(&a.target, &o, &progress)
        .with_context(|| format!("installing {} to {}", a.refname, a.target.display()))?;
    if a.json {
        let v = serde_json::json!({
            "target": a.target,
            "root-uuid": r.root_uuid,
            "deployment": r.deployment.name(),
            "stateroot": r.deployment.osname,
            "checksum": r.deployment.csum,
            "bios": r.layout.bios_boot.is_some(),
            "uefi": r.layout.esp.is_some(),
            "format": if r.qcow2 { "qcow2" } else { "raw" },
            "seconds": t0.elapsed().as_secs_f64(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "Installed {} ({}) to {} in {:.1}s; root filesystem UUID {}",
            a.refname,
            r.deployment.csum,
            a.target.display(),
            t0.elapsed().as_secs_f64(),
            r.root_uuid
        );
    }
    Ok(())
}

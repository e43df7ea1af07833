//! `oxtree container encapsulate --repo=R REF IMAGE`: a commit as an OCI
//! image (ostree-ext's format, chunked by Debian package) in an OCI
//! layout, an OCI archive or a registry. Parses and renders; the work is
//! `oxtree_container`'s.

use crate::util::open_repo;
use anyhow::{anyhow, Context, Result};
use oxtree_container::{EncapsulateOptions, ImageRef, Progress, RegistryOptions};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Subcommand)]
enum Cmd {
    /// Write a commit as a bootable OCI image (ostree-ext format)
    Encapsulate(EncapsulateArgs),
}

#[derive(clap::Args)]
struct EncapsulateArgs {
    /// Add a label (config and manifest), KEY=VALUE; repeatable
    #[arg(long = "label", short = 'l', value_name = "KEY=VALUE")]
    labels: Vec<String>,
    /// The manifest (JSON) of the previous build: packages keep their layers
    #[arg(long, value_name = "FILE")]
    previous_build_manifest: Option<PathBuf>,
    /// At most this many layers (the commit layer included)
    #[arg(long, value_name = "N", default_value_t = oxtree_container::chunking::DEFAULT_MAX_LAYERS)]
    max_layers: u32,
    /// Registry over plain HTTP (or TLS without verification)
    #[arg(long)]
    insecure: bool,
    /// Extra CA certificates (*.crt, *.pem) for the registry
    #[arg(long, value_name = "DIR")]
    cert_dir: Option<PathBuf>,
    /// Registry credentials USER:PASSWORD
    #[arg(
        long,
        value_name = "USER:PASSWORD",
        env = "OXTREE_REGISTRY_CREDS",
        hide_env_values = true
    )]
    creds: Option<String>,
    /// Print the result as JSON
    #[arg(long)]
    json: bool,
    /// Print progress on stderr
    #[arg(long, short = 'q')]
    quiet: bool,
    /// The commit (ref or checksum)
    #[arg(value_name = "REF")]
    rev: String,
    /// oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker://HOST[:PORT]/NAME[:TAG]
    #[arg(value_name = "IMAGE")]
    image: String,
}

pub fn run(repo: Option<PathBuf>, a: Args) -> Result<()> {
    match a.cmd {
        Cmd::Encapsulate(a) => encapsulate(repo, a),
    }
}

fn encapsulate(repo: Option<PathBuf>, a: EncapsulateArgs) -> Result<()> {
    let repo = open_repo(repo)?;
    let dest = ImageRef::parse(&a.image)?;
    let mut labels = Vec::new();
    for l in &a.labels {
        let (k, v) = l
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| anyhow!("--label {l:?}: expected KEY=VALUE"))?;
        labels.push((k.to_string(), v.to_string()));
    }
    let previous = match &a.previous_build_manifest {
        Some(p) => {
            let b = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
            Some(
                oxtree_container::encapsulate::parse_manifest(&b)
                    .with_context(|| format!("--previous-build-manifest {}", p.display()))?,
            )
        }
        None => None,
    };
    let credentials = match &a.creds {
        Some(c) => Some(
            c.split_once(':')
                .map(|(u, p)| (u.to_string(), p.to_string()))
                .ok_or_else(|| anyhow!("--creds: expected USER:PASSWORD"))?,
        ),
        None => None,
    };
    let opts = EncapsulateOptions {
        labels,
        previous,
        max_layers: a.max_layers,
        registry: RegistryOptions {
            insecure: a.insecure,
            cert_dir: a.cert_dir.clone(),
            credentials,
        },
    };
    let quiet = a.quiet;
    let progress = |p: Progress| {
        if quiet {
            return;
        }
        match p {
            Progress::Planned {
                layers,
                objects,
                packages,
            } => eprintln!("{objects} objects, {packages} packages: {layers} layers"),
            Progress::LayerWritten {
                done,
                total,
                digest,
                size,
                description,
            } => eprintln!(
                "layer {done}/{total} {digest} {} ({description})",
                crate::output::format_size(size)
            ),
            Progress::BlobPushed {
                digest, uploaded, ..
            } => {
                if uploaded {
                    eprintln!("pushed {digest}");
                } else {
                    eprintln!("registry has {digest}");
                }
            }
        }
    };
    let cancel = AtomicBool::new(false);
    let out = oxtree_container::encapsulate(&repo, &a.rev, &dest, &opts, &progress, &cancel)?;
    if a.json {
        let layers: Vec<serde_json::Value> = out
            .layers
            .iter()
            .map(|l| {
                serde_json::json!({
                    "digest": l.digest,
                    "size": l.size,
                    "description": l.description,
                    "components": l.components,
                })
            })
            .collect();
        let v = serde_json::json!({
            "image": dest.to_string(),
            "commit": out.commit.to_hex(),
            "manifest-digest": out.manifest_digest,
            "config-digest": out.config_digest,
            "layers": layers,
            "pushed-blobs": out.pushed,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("{dest}");
        println!("Commit: {}", out.commit);
        println!("Manifest: {}", out.manifest_digest);
        println!("Layers: {}", out.layers.len());
    }
    Ok(())
}

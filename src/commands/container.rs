//! `oxtree container encapsulate --repo=R REF IMAGE`: a commit as an OCI
//! image (ostree-ext's format, chunked by Debian package) in an OCI
//! layout, an OCI archive or a registry; `oxtree container image pull
//! IMAGEREF` brings one into a repository, `image list` lists them. Parses
//! and renders; the work is `oxtree_container`'s.

use crate::util::open_repo;
use anyhow::{anyhow, bail, Context, Result};
use oxtree_container::{EncapsulateOptions, ImageRef, Progress, RegistryOptions};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set by the first Ctrl-C: the operation stops at its next check and
/// moves no ref; a second Ctrl-C kills.
static CANCEL: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    CANCEL.store(true, Ordering::Relaxed);
    // SAFETY: signal() is async-signal-safe.
    #[allow(unsafe_code)]
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_DFL);
    }
}

fn cancel_on_sigint() -> &'static AtomicBool {
    // SAFETY: the handler only stores to an atomic and resets the
    // disposition, both async-signal-safe.
    #[allow(unsafe_code)]
    unsafe {
        libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t);
    }
    &CANCEL
}

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Subcommand)]
enum Cmd {
    /// Write a commit as a bootable OCI image (ostree-ext format)
    Encapsulate(EncapsulateArgs),
    /// Images in the repository: pull, list
    Image(ImageArgs),
}

#[derive(clap::Args)]
struct ImageArgs {
    #[command(subcommand)]
    cmd: ImageCmd,
}

#[derive(clap::Subcommand)]
enum ImageCmd {
    /// Fetch an ostree-ext image into the repository (only missing layers)
    Pull(PullArgs),
    /// List the images in the repository
    List {
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    /// Pull an image into a sysroot and deploy it (the stateroot may have
    /// no deployment yet); the deployment's origin follows the image
    Deploy {
        /// The system root
        #[arg(long, default_value = "/", env = "OSTREE_SYSROOT")]
        sysroot: PathBuf,
        /// Runtime state directory
        #[arg(long, default_value = "/run")]
        run_dir: PathBuf,
        /// The stateroot (ostree's "os")
        #[arg(long, value_name = "NAME")]
        stateroot: Option<String>,
        /// ostree-unverified-registry:HOST/NAME:TAG, ostree-image-signed:docker://…,
        /// ostree-unverified-image:oci:DIR[:TAG]
        #[arg(long, value_name = "IMAGEREF")]
        imgref: String,
        /// A kernel argument; repeatable
        #[arg(long = "karg", value_name = "KARG")]
        kargs: Vec<String>,
    },
    /// Remove images (--image), the layer refs no image needs any more,
    /// and the objects no ref reaches
    Prune {
        /// An image to remove first, as `image list` names it; repeatable
        #[arg(long = "image", value_name = "IMAGEREF")]
        images: Vec<String>,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args)]
struct PullArgs {
    #[command(flatten)]
    registry: RegistryArgs,
    /// Print the result as JSON
    #[arg(long)]
    json: bool,
    /// Print no progress
    #[arg(long, short = 'q')]
    quiet: bool,
    /// A commit here that a static delta published beside the image may
    /// start from (tried before the image reference's previous commit)
    #[arg(long, value_name = "REV")]
    delta_from: Option<String>,
    /// The containers-policy.json an ostree-image-signed: reference is
    /// verified against [default: $OXTREE_CONTAINERS_POLICY, else
    /// /etc/containers/policy.json]
    #[arg(long, value_name = "PATH")]
    policy: Option<PathBuf>,
    /// ostree-unverified-registry:HOST/NAME:TAG,
    /// ostree-unverified-image:oci:DIR[:TAG] (or docker://…), or
    /// ostree-image-signed:docker://HOST/NAME:TAG (sigstore signatures
    /// checked as the policy says)
    #[arg(value_name = "IMAGEREF")]
    image: String,
}

#[derive(clap::Args)]
struct RegistryArgs {
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
}

impl RegistryArgs {
    fn options(&self) -> Result<RegistryOptions> {
        let credentials = match &self.creds {
            Some(c) => Some(
                c.split_once(':')
                    .map(|(u, p)| (u.to_string(), p.to_string()))
                    .ok_or_else(|| anyhow!("--creds: expected USER:PASSWORD"))?,
            ),
            None => None,
        };
        Ok(RegistryOptions {
            insecure: self.insecure,
            cert_dir: self.cert_dir.clone(),
            credentials,
        })
    }
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
    /// Also push a static delta from this commit (an earlier release) to
    /// the image's, as an artifact beside it: hosts upgrading from that
    /// commit fetch the delta instead of the changed layers; repeatable;
    /// docker:// destinations only
    #[arg(long, value_name = "REV")]
    delta_from: Vec<String>,
    #[command(flatten)]
    registry: RegistryArgs,
    /// Print the result as JSON
    #[arg(long)]
    json: bool,
    /// Print no progress
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
        Cmd::Image(ImageArgs {
            cmd: ImageCmd::Pull(a),
        }) => pull(repo, a),
        Cmd::Image(ImageArgs {
            cmd: ImageCmd::List { json },
        }) => list(repo, json),
        Cmd::Image(ImageArgs {
            cmd: ImageCmd::Prune { images, json },
        }) => prune(repo, &images, json),
        Cmd::Image(ImageArgs {
            cmd:
                ImageCmd::Deploy {
                    sysroot,
                    run_dir,
                    stateroot,
                    imgref,
                    kargs,
                },
        }) => {
            let cx = crate::reporter::context(&sysroot, &run_dir, false);
            let t = oxtree_host::deploy_image(&cx, &imgref, stateroot, kargs)?;
            println!("Deployed {imgref}: {}", t.applied.deployment().name());
            Ok(())
        }
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
    let opts = EncapsulateOptions {
        labels,
        previous,
        max_layers: a.max_layers,
        registry: a.registry.options()?,
    };
    let delta_from = a
        .delta_from
        .iter()
        .map(|r| {
            repo.resolve_rev(r)
                .with_context(|| format!("--delta-from {r}"))
        })
        .collect::<Result<Vec<_>>>()?;
    let registry_name = match &dest {
        ImageRef::Registry { reference } => Some(reference.clone()),
        _ if delta_from.is_empty() => None,
        _ => bail!("--delta-from: static deltas are published to registries (docker://) only"),
    };
    let progress = progress_printer(a.quiet);
    let cancel = cancel_on_sigint();
    let out = oxtree_container::encapsulate(&repo, &a.rev, &dest, &opts, &progress, cancel)?;
    let mut deltas = Vec::new();
    for from in &delta_from {
        let name = registry_name.as_deref().expect("checked above");
        let d = oxtree_container::delta::publish(
            &repo,
            from,
            &out.commit,
            name,
            (&out.manifest_digest, out.manifest_size),
            &opts.registry,
            cancel,
        )
        .with_context(|| format!("publishing the static delta from {from}"))?;
        if !a.quiet {
            eprintln!(
                "pushed static delta {} ({})",
                d.reference,
                crate::output::format_size(d.size)
            );
        }
        deltas.push(d);
    }
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
            "deltas": deltas.iter().map(|d| serde_json::json!({
                "from": d.from.to_hex(),
                "reference": d.reference,
                "manifest-digest": d.manifest_digest,
                "size": d.size,
            })).collect::<Vec<_>>(),
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

/// Progress lines on stderr (none with --quiet).
fn progress_printer(quiet: bool) -> impl Fn(Progress) + Sync {
    move |p: Progress| {
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
            Progress::DeltaApplied { tag, size } => eprintln!(
                "applied static delta {tag} ({})",
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
    }
}

fn pull(repo: Option<PathBuf>, a: PullArgs) -> Result<()> {
    let repo = open_repo(repo)?;
    let img = oxtree_container::pull::parse_ostree_imgref(&a.image)?;
    if a.policy.is_some() && img.sigverify != oxtree_container::pull::SigVerify::Policy {
        return Err(anyhow!(
            "--policy applies to ostree-image-signed: references; {} is not verified",
            a.image
        ));
    }
    let progress = progress_printer(a.quiet);
    let cancel = cancel_on_sigint();
    let req = oxtree_container::pull::PullRequirements {
        bootable: false,
        delta_from: match &a.delta_from {
            Some(r) => Some(
                repo.resolve_rev(r)
                    .with_context(|| format!("--delta-from {r}"))?,
            ),
            None => None,
        },
        policy: a.policy.clone(),
    };
    let out = oxtree_container::pull::pull_with(
        &repo,
        &img,
        &a.registry.options()?,
        &req,
        &progress,
        cancel,
    )?;
    if a.json {
        let v = serde_json::json!({
            "image": out.image,
            "ref": out.image_ref,
            "manifest-digest": out.manifest_digest,
            "commit": out.commit.to_hex(),
            "merge-commit": out.merge_commit.to_hex(),
            "layers-fetched": out.layers_fetched,
            "layers-present": out.layers_present,
            "layers-not-needed": out.layers_not_needed,
            "deploy-commit": out.deploy.to_hex(),
            "derived-layers": out.derived.layers,
            "derived-dropped": out.derived.dropped,
            "derived-kernels": out.derived.kernels,
            "static-delta": out.delta.as_ref().map(|d| serde_json::json!({
                "tag": d.tag,
                "from": d.from.to_hex(),
                "size": d.size,
            })),
            "static-delta-error": out.delta_error,
            "signature": out.verified,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("Imported: {}", out.image);
        println!("Commit: {}", out.commit);
        println!("Manifest: {}", out.manifest_digest);
        if let Some(v) = &out.verified {
            println!("Signature policy: {v}");
        }
        println!(
            "Layers: {} fetched, {} already present, {} not needed",
            out.layers_fetched, out.layers_present, out.layers_not_needed
        );
        if let Some(d) = &out.delta {
            println!(
                "Static delta: {} from {} ({})",
                d.tag,
                d.from,
                crate::output::format_size(d.size)
            );
        }
        if let Some(e) = &out.delta_error {
            println!("Static delta not used: {e}");
        }
        if out.derived.layers > 0 {
            println!(
                "Derived layers: {} applied, {} entries under /var, /run, /tmp or /boot left out",
                out.derived.layers, out.derived.dropped
            );
            println!("Deploy commit: {}", out.deploy);
        }
    }
    Ok(())
}

fn prune(repo: Option<PathBuf>, images: &[String], json: bool) -> Result<()> {
    let mut repo = open_repo(repo)?;
    let images = images
        .iter()
        .map(|i| oxtree_container::pull::parse_ostree_imgref(i))
        .collect::<Result<Vec<_>, _>>()?;
    let r = oxtree_container::prune::prune(&mut repo, &images)?;
    if json {
        let v = serde_json::json!({
            "images-removed": r.images_removed,
            "layer-refs-removed": r.layer_refs_removed,
            "objects-deleted": r.objects_deleted,
            "bytes-freed": r.bytes_freed,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "Removed {} images and {} layer refs; deleted {} objects, freed {}",
            r.images_removed,
            r.layer_refs_removed,
            r.objects_deleted,
            crate::output::format_size(r.bytes_freed)
        );
    }
    Ok(())
}

fn list(repo: Option<PathBuf>, json: bool) -> Result<()> {
    let repo = open_repo(repo)?;
    let images = oxtree_container::pull::list(&repo)?;
    if json {
        let v: Vec<serde_json::Value> = images
            .iter()
            .map(|i| {
                serde_json::json!({
                    "image": i.image,
                    "manifest-digest": i.manifest_digest,
                    "commit": i.commit.map(|c| c.to_hex()),
                    "merge-commit": i.merge_commit.to_hex(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        for i in images {
            println!("{}", i.image);
        }
    }
    Ok(())
}

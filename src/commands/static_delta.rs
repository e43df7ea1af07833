//! `oxtree static-delta list|show|delete|generate|apply-offline|verify|
//! indexes|reindex`:
//! manage static deltas, with ostree 2022.7's flags and output.

use crate::output::format_size;
use crate::util::{now, open_repo};
use anyhow::{bail, Context, Result};
use oxtree_object::static_delta::{self as sd, PartPayload, Superblock};
use oxtree_object::{Checksum, Metadata};
use oxtree_repo::static_delta::{self as rsd, GenerateOptions};
use oxtree_transport::sign::{self, Ed25519Trust, ED25519_KEY};
use oxtree_transport::signapi::{self, Verifier};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Subcommand)]
enum Cmd {
    /// List static delta files
    List,
    /// Dump information on a delta
    Show { delta: String },
    /// Remove a delta
    Delete { delta: String },
    /// Generate static delta files
    Generate(GenArgs),
    /// Apply static delta file
    ApplyOffline(ApplyArgs),
    /// Verify static delta signatures
    Verify(VerifyArgs),
    /// List static delta indexes
    Indexes,
    /// Regenerate static delta indexes
    Reindex {
        /// Only update delta index to revision REV
        #[arg(long, value_name = "REV")]
        to: Option<String>,
    },
}

#[derive(clap::Args)]
struct GenArgs {
    /// Create delta from revision REV
    #[arg(long, value_name = "REV")]
    from: Option<String>,
    /// Create delta from scratch
    #[arg(long)]
    empty: bool,
    /// Inline delta parts into main delta
    #[arg(long)]
    inline: bool,
    /// Create delta to revision REV
    #[arg(long, value_name = "REV")]
    to: Option<String>,
    /// Disable use of bsdiff
    #[arg(long)]
    disable_bsdiff: bool,
    /// Only generate if a delta does not already exist
    #[arg(short = 'n', long)]
    if_not_exists: bool,
    /// Minimum uncompressed size in megabytes for individual HTTP request
    #[arg(long, value_name = "SIZE")]
    min_fallback_size: Option<u64>,
    /// Maximum size in megabytes to consider bsdiff compression for input files
    #[arg(long, value_name = "SIZE")]
    max_bsdiff_size: Option<u64>,
    /// Maximum size of delta chunks in megabytes
    #[arg(long, value_name = "SIZE")]
    max_chunk_size: Option<u64>,
    /// Sign the delta with KEY_ID (ed25519 secret key, base64; repeatable)
    #[arg(long, value_name = "KEY_ID")]
    sign: Vec<String>,
    /// Signature type to use (defaults to 'ed25519')
    #[arg(long, default_value = "ed25519")]
    sign_type: String,
    /// Read secret keys for --sign from FILE
    #[arg(long, value_name = "FILE")]
    keys_file: Option<PathBuf>,
    /// Write the delta's superblock to FILENAME and its parts beside it,
    /// not into the repository
    #[arg(long, value_name = "FILENAME")]
    filename: Option<PathBuf>,
    /// Choose metadata endianness ('l' or 'B')
    #[arg(long, value_name = "ENDIAN", conflicts_with = "swap_endianness")]
    set_endianness: Option<String>,
    /// Swap metadata endianness from host order
    #[arg(long)]
    swap_endianness: bool,
    /// Revision (alternative to --to)
    rev: Option<String>,
}

#[derive(clap::Args)]
struct ApplyArgs {
    /// Delta directory, superblock file or delta name
    path: String,
    /// Signature type to use (defaults to 'ed25519')
    #[arg(long, default_value = "ed25519")]
    sign_type: String,
    /// Require a valid signature by a key in FILE
    #[arg(long, value_name = "FILE")]
    keys_file: Option<PathBuf>,
    /// Require a valid signature by one of these keys
    keys: Vec<String>,
}

#[derive(clap::Args)]
struct VerifyArgs {
    /// Delta name
    delta: String,
    /// Public keys (base64)
    keys: Vec<String>,
    /// Signature type to use (defaults to 'ed25519')
    #[arg(long, default_value = "ed25519")]
    sign_type: String,
    /// Read public keys from FILE
    #[arg(long, value_name = "FILE")]
    keys_file: Option<PathBuf>,
}

pub fn run(repo: Option<PathBuf>, a: Args) -> Result<()> {
    match a.cmd {
        Cmd::List => list(repo),
        Cmd::Show { delta } => show(repo, &delta),
        Cmd::Delete { delta } => {
            let r = open_repo(repo)?;
            r.static_delta_dir(&delta)
                .with_context(|| format!("Can't find delta {delta}"))?;
            r.delete_static_delta(&delta)
                .map_err(|_| anyhow::anyhow!("Can't find delta {delta}"))
        }
        Cmd::Generate(g) => generate(repo, g),
        Cmd::ApplyOffline(ap) => apply(repo, ap),
        Cmd::Verify(v) => verify(repo, v),
        Cmd::Indexes => {
            let r = open_repo(repo)?;
            let targets = oxtree_transport::summary::list_delta_indexes(&r)?;
            if targets.is_empty() {
                println!("(No static deltas indexes)");
            }
            for t in targets {
                println!("{t}");
            }
            Ok(())
        }
        Cmd::Reindex { to } => {
            let r = open_repo(repo)?;
            let to = to.map(|t| r.resolve_rev(&t)).transpose()?;
            let sync = r.fsync_enabled()?;
            oxtree_transport::summary::write_delta_indexes(&r, sync, to.as_ref())?;
            Ok(())
        }
    }
}

fn list(repo: Option<PathBuf>) -> Result<()> {
    let r = open_repo(repo)?;
    let names = r.list_static_deltas()?;
    if names.is_empty() {
        println!("(No static deltas)");
    }
    for n in names {
        println!("{n}");
    }
    Ok(())
}

fn load(r: &oxtree_repo::Repo, name: &str) -> Result<(Superblock, Option<Metadata>)> {
    // A delta name is TO or FROM-TO, each a full checksum (ostree's words).
    for rev in name.splitn(2, '-') {
        if rev.len() != 64 || !Checksum::is_hex(rev) {
            bail!("Invalid rev {rev}");
        }
    }
    let b = r
        .load_static_delta_superblock(name)
        .map_err(|_| anyhow::anyhow!("Can't find delta {name}"))?;
    Ok(rsd::parse_superblock_file(&b)?)
}

fn show(repo: Option<PathBuf>, name: &str) -> Result<()> {
    let r = open_repo(repo)?;
    let (sb, sigs) = load(&r, name)?;
    let dir = r.static_delta_dir(name)?;
    println!("Delta: {name}");
    println!("Signed: {}", if sigs.is_some() { "yes" } else { "no" });
    match &sb.from {
        Some(f) => println!("From: {f}"),
        None => println!("From <scratch>"),
    }
    println!("To: {}", sb.to);
    println!("Endianness: {}", sb.endianness.describe());
    println!("Timestamp: {}", sb.timestamp);
    println!("Number of parents: 0");
    println!("Number of fallback entries: {}", sb.fallbacks.len());
    let fsize: u64 = sb.fallbacks.iter().map(|f| f.size).sum();
    let fusize: u64 = sb.fallbacks.iter().map(|f| f.usize).sum();
    println!("Total Fallback Size: {fsize} ({})", format_size(fsize));
    println!(
        "Total Fallback Uncompressed Size: {fusize} ({})",
        format_size(fusize)
    );
    println!("Number of parts: {}", sb.parts.len());
    let (mut psize, mut pusize) = (0u64, 0u64);
    for (i, p) in sb.parts.iter().enumerate() {
        println!(
            "PartMeta{i}: nobjects={} size={} usize={}",
            p.objects.len(),
            p.size,
            p.usize
        );
        psize += p.size;
        pusize += p.usize;
        let bytes = match sb.inline_part(i) {
            Some(b) => b,
            None => std::fs::read(dir.join(i.to_string()))
                .with_context(|| format!("reading part {i}"))?,
        };
        let payload = sd::decompress_part(&bytes, sd::MAX_PART_PAYLOAD)?;
        let payload = PartPayload::decode(&payload)?;
        println!(
            "PartPayload{i}: nmodes={} nxattrs={} blobsize={} opsize={}",
            payload.modes.len(),
            payload.xattrs.len(),
            payload.data.len(),
            payload.ops.len()
        );
        let s = sd::op_stats_with(&payload.ops, &p.objects)?;
        println!(
            "PartPayloadOps{i}: openspliceclose={} open={} write={} setread={} unsetread={} close={} bspatch={}",
            s.open_splice_close, s.open, s.write, s.set_read, s.unset_read, s.close, s.bspatch
        );
    }
    println!("Total Part Size: {psize} ({})", format_size(psize));
    println!(
        "Total Part Uncompressed Size: {pusize} ({})",
        format_size(pusize)
    );
    let t = psize + fsize;
    let tu = pusize + fusize;
    println!("Total Size: {t} ({})", format_size(t));
    println!("Total Uncompressed Size: {tu} ({})", format_size(tu));
    Ok(())
}

fn mb(v: Option<u64>, default: u64) -> u64 {
    v.unwrap_or(default) * 1000 * 1000
}

fn generate(repo: Option<PathBuf>, g: GenArgs) -> Result<()> {
    let r = open_repo(repo)?;
    let to_rev = match (&g.to, &g.rev) {
        (Some(t), _) => t.clone(),
        (None, Some(t)) => t.clone(),
        (None, None) => bail!("TO revision must be specified"),
    };
    let to = r.resolve_rev(&to_rev)?;
    let from: Option<Checksum> = if g.empty {
        if g.from.is_some() {
            bail!("Cannot specify both --empty and --from=REV");
        }
        None
    } else {
        match &g.from {
            Some(f) => Some(r.resolve_rev(f)?),
            None => {
                let c = r.load_commit(&to)?;
                match c.parent {
                    Some(p) => Some(p),
                    None => bail!("Commit {to} has no parent; use --empty"),
                }
            }
        }
    };
    let name = sd::delta_name(from.as_ref(), &to);
    if g.if_not_exists && g.filename.is_none() && r.load_static_delta_superblock(&name).is_ok() {
        println!("Delta {name} already exists.");
        return Ok(());
    }
    let mut keys = g.sign.clone();
    if let Some(f) = &g.keys_file {
        keys.extend(sign::key_lines(&sign::read_key_file(f)?));
    }
    if !keys.is_empty() && g.sign_type != "ed25519" && g.sign_type != "dummy" {
        bail!(
            "Requested signature type is not implemented: '{}'",
            g.sign_type
        );
    }
    println!("Generating static delta:");
    match &from {
        Some(f) => println!("  From: {f}"),
        None => println!("  From: empty"),
    }
    println!("  To:   {to}");
    let opts = GenerateOptions {
        min_fallback_size: mb(g.min_fallback_size, 4),
        max_bsdiff_size: mb(g.max_bsdiff_size, 128),
        max_chunk_size: mb(g.max_chunk_size, 32),
        bsdiff: !g.disable_bsdiff,
        inline: g.inline,
        timestamp: now(),
        output: g.filename.clone(),
        big_endian: match g.set_endianness.as_deref() {
            Some("B") => true,
            Some("l") => false,
            Some(other) => bail!("Invalid endianness '{other}'"),
            None => cfg!(target_endian = "big") != g.swap_endianness,
        },
    };
    let report = rsd::generate(&r, from.as_ref(), &to, &opts)?;
    // ostree's statistics, on stderr (scripts grep them).
    let sbpath = match &g.filename {
        Some(f) => f.clone(),
        None => r.static_delta_dir(&name)?.join("superblock"),
    };
    if let Ok((sb, _)) = std::fs::read(&sbpath)
        .map_err(anyhow::Error::from)
        .and_then(|b| Ok(rsd::parse_superblock_file(&b)?))
    {
        let compressed: u64 = sb.parts.iter().map(|p| p.size).sum();
        let uncompressed: u64 = sb.parts.iter().map(|p| p.usize).sum();
        let loose: u64 = sb.fallbacks.iter().map(|f| f.size).sum();
        eprintln!("uncompressed={uncompressed} compressed={compressed} loose={loose}");
        eprintln!("rollsum=0 objects, 0 bytes");
        eprintln!("bsdiff={} objects", report.bsdiff);
    }
    if !keys.is_empty() {
        let sbpath = match &g.filename {
            Some(f) => f.clone(),
            None => r.static_delta_dir(&name)?.join("superblock"),
        };
        let bytes = std::fs::read(&sbpath)?;
        let mut sigs = Vec::new();
        for k in &keys {
            if g.sign_type == "dummy" {
                sigs.push(sign::dummy_sign(k));
            } else {
                let sk = sign::parse_secret_key(k)?;
                sigs.push(sign::sign_data(&sk, &bytes));
            }
        }
        let mut md = Metadata::new();
        let key = if g.sign_type == "dummy" {
            sign::DUMMY_KEY
        } else {
            ED25519_KEY
        };
        sign::set_signatures(&mut md, key, sigs);
        let signed = sd::encode_signed(&bytes, &md);
        let tmp = sbpath.with_extension("tmp");
        std::fs::write(&tmp, &signed)?;
        std::fs::rename(&tmp, &sbpath)?;
    }
    Ok(())
}

fn trust_from(keys: &[String], file: &Option<PathBuf>) -> Result<Ed25519Trust> {
    let mut trust = Ed25519Trust::new();
    for k in keys {
        trust.add_trusted(sign::parse_public_key(k)?);
    }
    if let Some(f) = file {
        trust.add_trusted_file(f)?;
    }
    Ok(trust)
}

/// The verifier of `sign_type` with the given keys (ed25519: base64
/// public keys and key files; dummy: the key texts).
fn verifier_for(sign_type: &str, keys: &[String], file: &Option<PathBuf>) -> Result<Verifier> {
    match sign_type {
        "ed25519" => Ok(Verifier::Ed25519(trust_from(keys, file)?)),
        "dummy" => {
            let mut k = keys.to_vec();
            if let Some(f) = file {
                k.extend(sign::key_lines(&sign::read_key_file(f)?));
            }
            Ok(Verifier::Dummy(k))
        }
        other => bail!("Requested signature type is not implemented: '{other}'"),
    }
}

/// Check a signed superblock's signatures with `v`, in ostree's words.
fn verify_superblock(bytes: &[u8], v: &Verifier) -> Result<()> {
    let Some((inner, sigs)) = sd::decode_signed(bytes)? else {
        bail!("no signatures in static-delta");
    };
    signapi::verify_any(std::slice::from_ref(v), &inner, &sigs)?;
    Ok(())
}

fn apply(repo: Option<PathBuf>, a: ApplyArgs) -> Result<()> {
    let r = open_repo(repo)?;
    let forced = r.config().get_bool("core", "sign-verify-deltas", false)?;
    if a.keys_file.is_some() || !a.keys.is_empty() || forced {
        if a.keys_file.is_none() && a.keys.is_empty() {
            bail!("Key is mandatory to check delta signature");
        }
        let v = verifier_for(&a.sign_type, &a.keys, &a.keys_file)?;
        let p = std::path::Path::new(&a.path);
        let sbpath = if p.is_dir() {
            p.join("superblock")
        } else if p.is_file() {
            p.to_path_buf()
        } else {
            r.static_delta_dir(&a.path)?.join("superblock")
        };
        let bytes = std::fs::read(&sbpath)?;
        verify_superblock(&bytes, &v)?;
    }
    rsd::apply_offline(&r, &a.path)?;
    Ok(())
}

fn verify(repo: Option<PathBuf>, v: VerifyArgs) -> Result<()> {
    let r = open_repo(repo)?;
    let verifier = verifier_for(&v.sign_type, &v.keys, &v.keys_file)?;
    let bytes = r
        .load_static_delta_superblock(&v.delta)
        .map_err(|_| anyhow::anyhow!("Can't find delta {}", v.delta))?;
    // As ostree: the verdict on stdout, the reason as the error.
    match verify_superblock(&bytes, &verifier) {
        Ok(()) => {
            println!("Verification OK");
            Ok(())
        }
        Err(e) => {
            println!("Verification fails");
            Err(e)
        }
    }
}

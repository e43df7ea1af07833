//! `oxtree summary -u | --view [--raw]`: regenerate or show the repository
//! summary (the ref index HTTP clients read), and sign it into
//! `summary.sig`: `--gpg-sign=KEY-ID` (OpenPGP, keys from `--gpg-homedir` or
//! `--gpg-key-file`, see gpg_sign.rs) and
//! `--sign=SECRET-KEY` (ed25519).

use crate::util::{now, open_repo};
use anyhow::{bail, Context, Result};
use oxtree_object::gvariant::from_be64;
use oxtree_object::gvariant::Value;
use oxtree_object::Metadata;
use oxtree_transport::Summary;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Update the summary
    #[arg(short = 'u', long)]
    update: bool,
    /// View the local summary file (also `-v`, as in ostree: for this
    /// command the global -v means --view)
    #[arg(long)]
    pub view: bool,
    /// With --view: print the raw variant
    #[arg(long)]
    raw: bool,
    /// With -u: add KEY=VALUE to the summary's metadata, VALUE in GVariant
    /// text ('string', true, uint64 5, @a{sv} {}…) (repeatable)
    #[arg(short = 'm', long = "add-metadata", value_name = "KEY=VALUE")]
    add_metadata: Vec<String>,
    /// GPG Key ID to sign the summary with (repeatable)
    #[arg(long = "gpg-sign", value_name = "KEY-ID")]
    gpg_sign: Vec<String>,
    #[command(flatten)]
    gpg_keys: super::gpg_sign::GpgKeyArgs,
    /// ed25519 secret key (base64) to sign the summary with (repeatable)
    #[arg(long = "sign", value_name = "KEY")]
    sign: Vec<String>,
    /// Signature type for --sign: ed25519, or dummy (ostree's test-only type)
    #[arg(long = "sign-type", default_value = "ed25519")]
    sign_type: String,
    /// Read ed25519 secret keys for signing from FILE
    #[arg(long = "keys-file", value_name = "FILE")]
    keys_file: Option<PathBuf>,
}

fn summary_bytes(repo: &oxtree_repo::Repo) -> Result<Vec<u8>> {
    std::fs::read(repo.path().join("summary"))
        .with_context(|| "reading summary (run `summary -u` first)")
}

fn sign_summary(repo: &oxtree_repo::Repo, a: &Args) -> Result<()> {
    use oxtree_transport::sign::{ED25519_KEY, GPG_KEY};
    use oxtree_transport::{sign, verify};
    let mut ed = a.sign.clone();
    if let Some(f) = &a.keys_file {
        ed.extend(sign::key_lines(&sign::read_key_file(f)?));
    }
    let gpg_wanted = !a.gpg_sign.is_empty() || a.gpg_keys.gpg_key_file.is_some();
    if ed.is_empty() && !gpg_wanted {
        return Ok(());
    }
    // ostree's test-only `dummy` type: the "signature" is the key text.
    if !ed.is_empty() && !matches!(a.sign_type.as_str(), "ed25519" | "dummy") {
        bail!(
            "Requested signature type is not implemented: '{}'",
            a.sign_type
        );
    }
    let summary = summary_bytes(repo)?;
    if gpg_wanted {
        for signer in a.gpg_keys.signers(&a.gpg_sign)? {
            verify::append_summary_signature(repo, GPG_KEY, signer.sign(&summary)?)?;
        }
    }
    for k in &ed {
        let (key, sig) = if a.sign_type == "dummy" {
            (sign::DUMMY_KEY, sign::dummy_sign(k))
        } else {
            let sk = sign::parse_secret_key(k)?;
            (ED25519_KEY, sign::sign_data(&sk, &summary))
        };
        verify::append_summary_signature(repo, key, sig)?;
    }
    Ok(())
}

pub fn run(repo: Option<PathBuf>, a: Args) -> Result<()> {
    let mut repo = open_repo(repo)?;
    let signing = !a.sign.is_empty()
        || a.keys_file.is_some()
        || !a.gpg_sign.is_empty()
        || a.gpg_keys.gpg_key_file.is_some();
    if a.update {
        let now = now();
        let mut extra = Metadata::new();
        for kv in &a.add_metadata {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("--add-metadata takes KEY=VALUE, not '{kv}'"))?;
            let v = oxtree_object::text::parse(v)
                .map_err(|e| anyhow::anyhow!("--add-metadata {k}: {e}"))?;
            extra.set(k, v);
        }
        oxtree_transport::summary::write_metadata_commit(&repo, &extra, now)?;
        oxtree_transport::summary::update_summary_with(&mut repo, now, &extra)?;
        return sign_summary(&repo, &a);
    }
    if signing {
        // Sign the existing summary (adds to summary.sig).
        return sign_summary(&repo, &a);
    }
    // As ostree, --raw alone means --view --raw.
    if a.view || (a.raw && !a.update) {
        let s = Summary::decode(&summary_bytes(&repo)?)?;
        if a.raw {
            println!("{}", render_raw(&s));
        } else {
            // ostree 2022.7 lists no signatures here (later releases
            // do); `remote summary` lists them.
            print!("{}", render(&s));
        }
        return Ok(());
    }
    bail!("no action given: use -u (update) or --view")
}

/// "LEAD N signature(s)TAIL:" and each signature described, a blank line
/// before each, as ostree prints verification results.
pub fn print_signatures(
    lead: &str,
    tail: &str,
    reports: &[oxtree_transport::gpg::SignatureReport],
) {
    let n = reports.len();
    println!(
        "{lead} {n} signature{}{tail}:",
        if n == 1 { "" } else { "s" }
    );
    for r in reports {
        println!();
        print!("{}", r.describe("  "));
    }
}

/// The summary as GVariant text (`(a(s(taya{sv}))a{sv})`), as ostree's
/// `summary --raw` prints it with GLib: values stored big-endian show as
/// stored.
fn render_raw(s: &Summary) -> String {
    use oxtree_object::text;
    let dict = |md: &Metadata| {
        let items: Vec<String> =
            md.0.iter()
                .map(|(k, v)| format!("'{k}': <{}>", text::print(v)))
                .collect();
        format!("{{{}}}", items.join(", "))
    };
    let refs: Vec<String> = s
        .refs
        .iter()
        .map(|r| {
            format!(
                "('{}', (uint64 {}, {}, {}))",
                r.name,
                r.commit_size,
                text::bytestring(&r.commit.0, true),
                dict(&r.metadata)
            )
        })
        .collect();
    format!("([{}], {})", refs.join(", "), dict(&s.metadata))
}

fn iso_date(ts: u64) -> String {
    chrono::DateTime::from_timestamp(ts as i64, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S+00").to_string())
        .unwrap_or_else(|| format!("@{ts}"))
}

fn value_text(v: &Value) -> String {
    match v {
        Value::Bool(b) => b.to_string(),
        Value::Str(s) => format!("'{}'", s.as_str()),
        Value::U64(x) => format!("uint64 {}", from_be64(*x)),
        other => format!("{other:?}"),
    }
}

fn render_meta(md: &Metadata, indent: &str, out: &mut String) {
    for (k, v) in &md.0 {
        let line = match (k.as_str(), v) {
            ("ostree.commit.timestamp", Value::U64(t)) => {
                format!("Timestamp ({k}): {}", iso_date(from_be64(*t)))
            }
            ("ostree.commit.version", Value::Str(s)) => format!("Version ({k}): {}", s.as_str()),
            ("ostree.summary.mode", Value::Str(s)) => {
                format!("Repository Mode ({k}): {}", s.as_str())
            }
            ("ostree.summary.last-modified", Value::U64(t)) => {
                format!("Last-Modified ({k}): {}", iso_date(from_be64(*t)))
            }
            ("ostree.summary.expires", Value::U64(t)) => {
                format!("Expires ({k}): {}", iso_date(from_be64(*t)))
            }
            ("ostree.summary.tombstone-commits", Value::Bool(b)) => format!(
                "Has Tombstone Commits ({k}): {}",
                if *b { "Yes" } else { "No" }
            ),
            ("ostree.summary.collection-id", Value::Str(s)) => {
                format!("Collection ID ({k}): {}", s.as_str())
            }
            ("ostree.summary.collection-map", _) => {
                format!("Collection Map ({k}): (printed above)")
            }
            (_, v @ (Value::Bool(_) | Value::Str(_) | Value::U64(_))) => {
                format!("{k}: {}", value_text(v))
            }
            (_, v) => format!("{k}: {}", oxtree_object::text::print_bare(v)),
        };
        out.push_str(indent);
        out.push_str(&line);
        out.push('\n');
    }
}

/// The `ostree summary --view` layout.
pub fn render(s: &Summary) -> String {
    let mut out = String::new();
    let mut lists = vec![(s.collection_id().map(str::to_string), s.refs.clone())];
    // A malformed map is shown as absent, as ostree's typed lookup does.
    for (id, refs) in s.collection_map().unwrap_or_default() {
        lists.push((Some(id), refs));
    }
    for (id, r) in lists
        .iter()
        .flat_map(|(id, refs)| refs.iter().map(move |r| (id, r)))
    {
        match id {
            Some(id) => out.push_str(&format!("* ({id}, {})\n", r.name)),
            None => out.push_str(&format!("* {}\n", r.name)),
        }
        out.push_str(&format!("    Latest Commit ({} bytes):\n", r.commit_size));
        out.push_str(&format!("      {}\n", r.commit));
        render_meta(&r.metadata, "    ", &mut out);
        out.push('\n');
    }
    render_meta(&s.metadata, "", &mut out);
    out
}

/// After a command that moved refs: regenerate the summary when the
/// repository's config asks for it (`core.auto-update-summary`; for
/// `commit` also `core.commit-update-summary`), unsigned, as ostree does.
pub fn auto_update(repo: Option<PathBuf>, commit: bool) -> Result<()> {
    let mut repo = open_repo(repo)?;
    let cfg = repo.config();
    let wanted = cfg.get_bool("core", "auto-update-summary", false)?
        || (commit && cfg.get_bool("core", "commit-update-summary", false)?);
    if wanted {
        oxtree_transport::summary::update_summary(&mut repo, now())?;
    }
    Ok(())
}

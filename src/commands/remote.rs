//! `oxtree remote add|delete|list|show-url|refs|summary|gpg-import|
//! gpg-list-keys`: manage remotes in the repository config, their trusted
//! GPG keys (`REPO/NAME.trustedkeys.gpg`, as ostree keeps them), and look
//! at what they publish (the summary's signature is checked when the
//! remote asks for that).

use crate::util::open_repo;
use anyhow::{anyhow, Result};
use oxtree_transport::verify::RemoteVerifier;
use oxtree_transport::{remote, FetchOptions, Remote};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Use the repository of the sysroot at PATH (its remotes go to
    /// PATH/etc/ostree/remotes.d when PATH is a deployment's root)
    #[arg(long, global = true, value_name = "PATH")]
    sysroot: Option<PathBuf>,
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Add a remote repository
    Add {
        /// Disable GPG verification
        #[arg(long)]
        no_gpg_verify: bool,
        /// Disable signature verification
        #[arg(long)]
        no_sign_verify: bool,
        /// Verify ed25519 signatures: ed25519=inline:PUBKEY or
        /// ed25519=file:/path/to/keys
        #[arg(long = "sign-verify", value_name = "KEYTYPE=[inline|file]:PUBKEY")]
        sign_verify: Vec<String>,
        /// Import GPG keys from FILE
        #[arg(long = "gpg-import", value_name = "FILE")]
        gpg_import: Option<PathBuf>,
        /// Set a config option (repeatable)
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Do nothing if the remote already exists
        #[arg(long, conflicts_with = "force")]
        if_not_exists: bool,
        /// Replace the remote if it already exists
        #[arg(long)]
        force: bool,
        /// Fetch content objects from this URL instead
        #[arg(long, value_name = "URL")]
        contenturl: Option<String>,
        /// The remote's collection ID (collection-id)
        #[arg(long, value_name = "COLLECTION-ID")]
        collection_id: Option<String>,
        /// The remote is served by another program (its URL optional)
        #[arg(long, value_name = "NAME")]
        custom_backend: Option<String>,
        name: String,
        #[arg(required_unless_present = "custom_backend")]
        url: Option<String>,
        /// Branches `pull NAME` fetches by default
        #[arg(value_name = "BRANCH")]
        branches: Vec<String>,
    },
    /// Delete a remote repository
    Delete {
        /// Do nothing if the remote does not exist
        #[arg(long)]
        if_exists: bool,
        name: String,
    },
    /// List remote repository names
    List {
        /// Show remote URLs in the list
        #[arg(short = 'u', long)]
        show_urls: bool,
    },
    /// Show the URL of a remote repository
    ShowUrl { name: String },
    /// List the refs a remote publishes (from its summary)
    Refs { name: String },
    /// Show the summary of a remote
    Summary {
        name: String,
        /// Print the raw variant
        #[arg(long)]
        raw: bool,
    },
    /// Import GPG keys
    GpgImport {
        /// Import keys from a keyring file (repeatable)
        #[arg(short = 'k', long = "keyring", value_name = "FILE")]
        keyring: Vec<PathBuf>,
        /// Import keys from standard input
        #[arg(long)]
        stdin: bool,
        name: String,
        /// Import only these keys (fingerprint or key id)
        #[arg(value_name = "KEY-ID")]
        key_ids: Vec<String>,
    },
    /// Show the GPG keys of a remote's keyring (or, with no remote, the
    /// global ones)
    GpgListKeys { name: Option<String> },
    /// Add a cookie to the remote's cookie jar
    AddCookie {
        name: String,
        domain: String,
        path: String,
        cookie_name: String,
        value: String,
    },
    /// Remove a cookie from the remote's cookie jar
    DeleteCookie {
        name: String,
        domain: String,
        path: String,
        cookie_name: String,
        /// Accepted for ostree's command line; the cookie is found by
        /// domain, path and name
        value: Option<String>,
    },
    /// Show the remote's cookies
    ListCookies { name: String },
}

fn imported(n: usize, name: &str) {
    println!(
        "Imported {n} GPG key{} to remote \"{name}\"",
        if n == 1 { "" } else { "s" }
    );
}

pub fn run(repo: Option<PathBuf>, a: Args) -> Result<()> {
    let mut repo = match &a.sysroot {
        Some(sr) => {
            let mut r = open_repo(Some(sr.join("ostree/repo")))?;
            r.set_sysroot(sr);
            r
        }
        None => open_repo(repo)?,
    };
    match a.action {
        Action::Add {
            no_gpg_verify,
            no_sign_verify,
            sign_verify,
            gpg_import,
            set,
            if_not_exists,
            force,
            contenturl,
            collection_id,
            custom_backend,
            name,
            url,
            branches,
        } => {
            let url = url.unwrap_or_default();
            let mut opts = Vec::new();
            for kv in &set {
                let (k, v) = kv
                    .split_once('=')
                    .ok_or_else(|| anyhow!("invalid --set '{kv}': expected KEY=VALUE"))?;
                opts.push((k.to_string(), v.to_string()));
            }
            if no_gpg_verify {
                opts.push(("gpg-verify".into(), "false".into()));
            }
            if no_sign_verify {
                // As ostree: no verification of any kind, GPG included.
                opts.push(("gpg-verify".into(), "false".into()));
                opts.push(("sign-verify".into(), "false".into()));
            }
            if let Some(c) = &collection_id {
                opts.push(("collection-id".into(), c.clone()));
            }
            if let Some(c) = &contenturl {
                opts.push(("contenturl".into(), c.clone()));
            }
            if let Some(b) = &custom_backend {
                opts.push(("custom-backend".into(), b.clone()));
            }
            for sv in &sign_verify {
                let (kind, spec) = sv
                    .split_once('=')
                    .ok_or_else(|| anyhow!("Failed to parse KEYTYPE=[inline|file]:DATA in {sv}"))?;
                if kind != "ed25519" && kind != "dummy" {
                    return Err(anyhow!(
                        "Requested signature type is not implemented: '{kind}'"
                    ));
                }
                let (how, v) = spec
                    .split_once(':')
                    .ok_or_else(|| anyhow!("Invalid key reference {spec}, expected inline|file"))?;
                match how {
                    "inline" => {
                        if kind == "ed25519" {
                            oxtree_transport::sign::parse_candidate_key(v)?;
                        }
                        opts.push((format!("verification-{kind}-key"), v.to_string()));
                    }
                    "file" => opts.push((format!("verification-{kind}-file"), v.to_string())),
                    _ => {
                        return Err(anyhow!(
                            "Invalid key reference {spec}, expected inline|file"
                        ))
                    }
                }
                opts.push(("sign-verify".into(), "true".into()));
            }
            // Read the keys before changing anything.
            let keys = match &gpg_import {
                Some(f) => Some(vec![oxtree_transport::sign::read_key_file(f)?]),
                None => None,
            };
            if force {
                remote::delete_remote(&mut repo, &name, true)?;
            }
            let added =
                remote::add_remote(&mut repo, &name, &url, &branches, &opts, if_not_exists)?;
            if let (Some(k), true) = (keys, added) {
                let n = oxtree_transport::verify::import_gpg_keys(&repo, &name, &k, &[])?;
                imported(n, &name);
            }
        }
        Action::Delete { if_exists, name } => {
            remote::delete_remote(&mut repo, &name, if_exists)?;
        }
        Action::List { show_urls } => {
            // One read of the config and remotes.d for the whole list.
            let mut entries = remote::remote_entries(&repo)?;
            entries.sort_by(|a, b| a.name.cmp(&b.name));
            let width = entries.iter().map(|e| e.name.len()).max().unwrap_or(0);
            for e in entries {
                let n = &e.name;
                if show_urls {
                    let url = e.remote()?.url;
                    println!("{n:<width$}  {url}");
                } else {
                    println!("{n}");
                }
            }
        }
        Action::ShowUrl { name } => {
            println!("{}", Remote::open(&repo, &name)?.require_url()?);
        }
        Action::Refs { name } => {
            let r = Remote::open(&repo, &name)?;
            // ostree reads the URL first (a metalink remote has none).
            if r.metalink.is_none() {
                r.require_url()?;
            }
            let v = RemoteVerifier::for_summary(&repo, &r)?;
            let s = oxtree_transport::pull::fetch_summary(&r, &v, &FetchOptions::default())?
                .ok_or_else(|| anyhow!("remote '{name}' publishes no summary"))?;
            for x in &s.refs {
                println!("{name}:{}", x.name);
            }
        }
        Action::Summary { name, raw } => {
            let r = Remote::open(&repo, &name)?;
            let v = RemoteVerifier::for_summary(&repo, &r)?;
            let (bytes, sig) =
                oxtree_transport::pull::fetch_summary_raw(&r, &v, &FetchOptions::default())?
                    .ok_or_else(|| anyhow!("remote '{name}' publishes no summary"))?;
            let s = oxtree_transport::Summary::decode(&bytes)?;
            if raw {
                println!("{s:?}");
            } else {
                print!("{}", super::summary::render(&s));
                // As ostree: the signatures, when the remote checks them.
                if let (Some(sig), true) = (sig, r.gpg_verify_summary) {
                    let ring = oxtree_transport::verify::remote_gpg_keyring(&repo, &r)?;
                    let reports =
                        oxtree_transport::verify::describe_summary_signatures(&ring, &bytes, &sig)?;
                    println!();
                    super::summary::print_signatures(
                        "GPG: Verification enabled, found",
                        "",
                        &reports,
                    );
                }
            }
        }
        Action::GpgImport {
            keyring,
            stdin,
            name,
            key_ids,
        } => {
            Remote::open(&repo, &name)?;
            let mut inputs = Vec::new();
            for f in &keyring {
                inputs.push(oxtree_transport::sign::read_key_file(f)?);
            }
            if stdin {
                use std::io::Read;
                let mut b = Vec::new();
                std::io::stdin()
                    .take(oxtree_transport::sign::MAX_KEY_FILE_SIZE)
                    .read_to_end(&mut b)?;
                inputs.push(b);
            }
            if keyring.is_empty() && !stdin {
                return Err(anyhow!(
                    "no keys to import: use -k FILE or --stdin (oxtree does not read GnuPG's default keyring)"
                ));
            }
            let n = oxtree_transport::verify::import_gpg_keys(&repo, &name, &inputs, &key_ids)?;
            imported(n, &name);
        }
        Action::AddCookie {
            name,
            domain,
            path,
            cookie_name,
            value,
        } => {
            Remote::open(&repo, &name)?;
            oxtree_transport::cookies::add(&repo, &name, &domain, &path, &cookie_name, &value)?;
        }
        Action::DeleteCookie {
            name,
            domain,
            path,
            cookie_name,
            value: _,
        } => {
            Remote::open(&repo, &name)?;
            oxtree_transport::cookies::delete(&repo, &name, &domain, &path, &cookie_name)?;
        }
        Action::ListCookies { name } => {
            Remote::open(&repo, &name)?;
            for c in oxtree_transport::cookies::list(&repo, &name)? {
                println!("--");
                println!("Domain: {}", c.domain);
                println!("Path: {}", c.path);
                println!("Name: {}", c.name);
                println!("Secure: {}", if c.secure { "TRUE" } else { "FALSE" });
                if let Some(t) = chrono::DateTime::from_timestamp(c.expires as i64, 0) {
                    println!("Expires: {}", t.format("%Y-%m-%d %H:%M:%S +0000"));
                }
                println!("Value: {}", c.value);
            }
        }
        Action::GpgListKeys { name } => {
            let ring = match &name {
                Some(n) => {
                    Remote::open(&repo, n)?;
                    oxtree_transport::verify::remote_own_keyring(&repo, n)?
                }
                None => oxtree_transport::verify::global_gpg_keyring()?,
            };
            for k in ring.keys() {
                print!("{}", render_key(&oxtree_transport::gpg::key_info(k)));
            }
        }
    }
    Ok(())
}

/// One key as ostree's `remote gpg-list-keys` shows it.
fn render_key(k: &oxtree_transport::gpg::KeyInfo) -> String {
    use std::fmt::Write;
    let date = |t: u64| {
        chrono::DateTime::from_timestamp(t as i64, 0)
            .map(|d| d.format("%a %b %e %H:%M:%S %Y").to_string())
            .unwrap_or_default()
    };
    let rev = |r: bool| if r { " (revoked)" } else { "" };
    let now = chrono::Utc::now().timestamp() as u64;
    let mut s = String::new();
    let _ = writeln!(s, "Key: {}{}", k.fingerprint, rev(k.revoked));
    let _ = writeln!(s, "  Created: {}", date(k.created));
    if let Some(e) = k.expires {
        let word = if e <= now { "Expired" } else { "Expires" };
        let _ = writeln!(s, "  {word}: {}", date(e));
    }
    for (uid, revoked) in &k.uids {
        let _ = writeln!(s, "  UID: {uid}{}", rev(*revoked));
        let email = uid.rsplit_once('<').and_then(|(_, e)| e.strip_suffix('>'));
        if let Some((adv, direct)) = email.and_then(oxtree_transport::gpg::wkd_urls) {
            let _ = writeln!(s, "  Advanced update URL: {adv}");
            let _ = writeln!(s, "  Direct update URL: {direct}");
        }
    }
    for sk in &k.subkeys {
        let _ = writeln!(s, "  Subkey: {}{}", sk.fingerprint, rev(sk.revoked));
        let _ = writeln!(s, "    Created: {}", date(sk.created));
        if let Some(e) = sk.expires {
            let word = if e <= now { "Expired" } else { "Expires" };
            let _ = writeln!(s, "    {word}: {}", date(e));
        }
    }
    s
}

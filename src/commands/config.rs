//! `oxtree config get|set|unset SECTION.KEY [VALUE]`.

use crate::util::open_repo;
use anyhow::{anyhow, Result};
use oxtree_repo::config::split_key;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Group (section) of the key; then KEY has no SECTION. prefix
    #[arg(long)]
    group: Option<String>,
    /// get KEY | set KEY VALUE | unset KEY (parsed by hand, as ostree does:
    /// `config -- set core.x -1` and "Too many arguments given")
    #[arg(
        value_name = "get|set|unset KEY [VALUE]",
        allow_hyphen_values = true,
        trailing_var_arg = true
    )]
    words: Vec<String>,
}

enum Action {
    Get { key: String },
    Set { key: String, value: String },
    Unset { key: String },
}

fn parse_words(w: &[String]) -> Result<Action> {
    let want = match w.first().map(String::as_str) {
        Some("get") | Some("unset") => 2,
        Some("set") => 3,
        Some(o) => anyhow::bail!("Unknown operation {o}"),
        None => anyhow::bail!("OPERATION must be specified"),
    };
    if w.len() > want {
        anyhow::bail!("Too many arguments given");
    }
    if w.len() < want {
        anyhow::bail!(
            "KEY{} must be specified",
            if want == 3 { " and VALUE" } else { "" }
        );
    }
    Ok(match w[0].as_str() {
        "get" => Action::Get { key: w[1].clone() },
        "unset" => Action::Unset { key: w[1].clone() },
        _ => Action::Set {
            key: w[1].clone(),
            value: w[2].clone(),
        },
    })
}

pub fn run(repo: Option<PathBuf>, mut a: Args) -> Result<()> {
    // `--group` may also come after the operation.
    let mut words = Vec::new();
    let mut it = std::mem::take(&mut a.words).into_iter();
    while let Some(w) = it.next() {
        if let Some(g) = w.strip_prefix("--group=") {
            a.group = Some(g.to_string());
        } else if w == "--group" {
            a.group = it.next();
        } else {
            words.push(w);
        }
    }
    let action = parse_words(&words)?;
    let mut repo = open_repo(repo)?;
    let group = a.group.clone();
    let split = |key: &str| -> Result<(String, String)> {
        match &group {
            Some(g) => Ok((g.clone(), key.to_string())),
            None => split_key(key)
                .map(|(s, k)| (s.to_string(), k.to_string()))
                .map_err(Into::into),
        }
    };
    match action {
        Action::Get { key } => {
            let (s, k) = split(&key)?;
            let (s, k) = (s.as_str(), k.as_str());
            let v = repo
                .config()
                .get(s, k)
                .ok_or_else(|| anyhow!("Key file does not have key “{k}” in group “{s}”"))?;
            println!("{v}");
        }
        Action::Set { key, value } => {
            let (s, k) = split(&key)?;
            let (s, k) = (s.as_str(), k.as_str());
            let mut c = repo.config().clone();
            c.set(s, k, &value);
            repo.write_config(c)?;
        }
        Action::Unset { key } => {
            let (s, k) = split(&key)?;
            let (s, k) = (s.as_str(), k.as_str());
            let mut c = repo.config().clone();
            c.remove_key(s, k);
            repo.write_config(c)?;
        }
    }
    Ok(())
}

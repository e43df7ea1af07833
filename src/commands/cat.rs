//! `oxtree cat REV PATH…`: file contents to stdout.

use crate::util::open_repo;
use anyhow::{bail, Context, Result};
use oxtree_repo::Node;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    rev: String,
    #[arg(required = true)]
    paths: Vec<String>,
}

pub fn run(repo: Option<PathBuf>, a: Args) -> Result<()> {
    let repo = open_repo(repo)?;
    let c = repo.load_commit(&repo.resolve_rev(&a.rev)?)?;
    let mut out = std::io::stdout().lock();
    for p in &a.paths {
        // Symlinks are followed inside the commit, as ostree's cat does.
        let mut path = p.clone();
        let mut hops = 0;
        loop {
            match repo.resolve_path((c.root_tree, c.root_meta), &path)? {
                Node::File(csum) => {
                    let mut f = repo.open_file(&csum)?;
                    if f.header.is_symlink() {
                        hops += 1;
                        if hops > MAX_SYMLINK_HOPS {
                            bail!("{p}: too many levels of symbolic links");
                        }
                        path = link_target(&path, &f.header.symlink_target);
                        continue;
                    }
                    std::io::copy(&mut f.content, &mut out)
                        .with_context(|| format!("reading {p}"))?;
                }
                // ostree's words.
                Node::Dir { .. } => bail!("{p}: Can't open directory"),
            }
            break;
        }
    }
    Ok(())
}

const MAX_SYMLINK_HOPS: usize = 40;

/// Where the symlink at `link` (a path in the commit) points, as a
/// normalized absolute path in the commit: `..` never leaves the root.
fn link_target(link: &str, target: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    if !target.starts_with('/') {
        parts.extend(link.split('/').filter(|c| !c.is_empty()));
        parts.pop();
    }
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn link_targets_stay_in_the_commit() {
        use super::link_target;
        assert_eq!(link_target("/a/b/link", "c"), "/a/b/c");
        assert_eq!(link_target("/a/b/link", "../c"), "/a/c");
        assert_eq!(link_target("/a/link", "../../../../etc/x"), "/etc/x");
        assert_eq!(link_target("/a/link", "/usr/./bin"), "/usr/bin");
    }
}

//! `oxtree ls [-R] [-C] [-d] [-X] REV [PATH…]`, in ostree's line format.

use crate::output::xattrs_text;
use crate::util::open_repo;
use anyhow::{Context, Result};
use oxtree_object::Checksum;
use oxtree_repo::{Node, Repo};
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Recurse into directories
    #[arg(short = 'R', long)]
    recursive: bool,
    /// Show object checksums
    #[arg(short = 'C', long)]
    checksum: bool,
    /// List directories themselves, not their contents
    #[arg(short = 'd', long)]
    dironly: bool,
    /// Show extended attributes
    #[arg(short = 'X', long)]
    xattrs: bool,
    /// Print NUL-terminated paths only
    #[arg(long)]
    nul_filenames_only: bool,
    rev: String,
    paths: Vec<String>,
}

struct Lister<'a> {
    repo: &'a Repo,
    a: &'a Args,
    out: std::io::BufWriter<std::io::StdoutLock<'static>>,
}

pub fn run(repo: Option<PathBuf>, a: Args) -> Result<()> {
    let repo = open_repo(repo)?;
    let csum = repo.resolve_rev(&a.rev)?;
    let c = repo.load_commit(&csum)?;
    let paths = if a.paths.is_empty() {
        vec!["/".to_string()]
    } else {
        a.paths.clone()
    };
    let mut l = Lister {
        repo: &repo,
        a: &a,
        out: std::io::BufWriter::new(std::io::stdout().lock()),
    };
    for p in &paths {
        let shown = if p.starts_with('/') {
            p.clone()
        } else {
            format!("/{p}")
        };
        let node = repo
            .resolve_path((c.root_tree, c.root_meta), p)
            .with_context(|| format!("Inspecting path '{shown}'"))?;
        l.node(&shown, node, true)?;
    }
    l.out.flush()?;
    Ok(())
}

fn join(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

impl Lister<'_> {
    fn node(&mut self, path: &str, node: Node, top: bool) -> Result<()> {
        match node {
            Node::File(c) => self.file_line(path, &c),
            Node::Dir { tree, meta } => {
                self.dir_line(path, &tree, &meta)?;
                if self.a.dironly || (!top && !self.a.recursive) {
                    return Ok(());
                }
                let t = self.repo.load_dirtree(&tree)?;
                for f in &t.files {
                    self.file_line(&join(path, &f.name), &f.checksum)?;
                }
                for d in &t.dirs {
                    let child = Node::Dir {
                        tree: d.tree,
                        meta: d.meta,
                    };
                    self.node(&join(path, &d.name), child, false)?;
                }
                Ok(())
            }
        }
    }

    fn dir_line(&mut self, path: &str, tree: &Checksum, meta: &Checksum) -> Result<()> {
        if self.a.nul_filenames_only {
            write!(self.out, "{path}\0")?;
            return Ok(());
        }
        let m = self.repo.load_dirmeta(meta)?;
        let mut s = format!("d0{:04o} {} {} {:6} ", m.mode & 0o7777, m.uid, m.gid, 0);
        if self.a.checksum {
            s += &format!("{tree} {meta} ");
        }
        if self.a.xattrs {
            s += &format!("{{ {} }} ", xattrs_text(&m.xattrs));
        }
        writeln!(self.out, "{s}{path}")?;
        Ok(())
    }

    fn file_line(&mut self, path: &str, csum: &Checksum) -> Result<()> {
        if self.a.nul_filenames_only {
            write!(self.out, "{path}\0")?;
            return Ok(());
        }
        let f = self.repo.open_file(csum)?;
        let h = &f.header;
        let t = if h.is_symlink() { 'l' } else { '-' };
        let mut s = format!(
            "{t}0{:04o} {} {} {:6} ",
            h.mode & 0o7777,
            h.uid,
            h.gid,
            f.size
        );
        if self.a.checksum {
            s += &format!("{csum} ");
        }
        if self.a.xattrs {
            s += &format!("{{ {} }} ", xattrs_text(&h.xattrs));
        }
        s += path;
        if h.is_symlink() {
            s += &format!(" -> {}", h.symlink_target);
        }
        writeln!(self.out, "{s}")?;
        Ok(())
    }
}

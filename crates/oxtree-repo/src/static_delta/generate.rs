//! `static-delta generate`: the objects `to` has that `from` lacks, the
//! old file each modified one is diffed against, and the superblock
//! written over the parts.

use super::fill::fill_parts;
use super::invalid;
use super::parts::{compress_parts, Builder, PartBuilder, PartJob};
use crate::error::{IoContext, RepoError, Result};
use crate::{fsutil, Repo};
use oxtree_object::gvariant::{Value, Variant};
use oxtree_object::static_delta::{self as sd, PartHeader, Superblock};
use oxtree_object::{Checksum, Commit, Metadata, ObjectType};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;

/// Options of `static-delta generate` (sizes in bytes).
#[derive(Clone, Debug)]
pub struct GenerateOptions {
    pub min_fallback_size: u64,
    pub max_bsdiff_size: u64,
    pub max_chunk_size: u64,
    pub bsdiff: bool,
    pub inline: bool,
    /// Timestamp to record (seconds since the epoch).
    pub timestamp: u64,
    /// `--filename`: write the superblock to this file and the parts
    /// beside it, instead of into the repository's `deltas/`.
    pub output: Option<PathBuf>,
    /// Record the superblock's numbers big-endian (`ostree.endianness`
    /// 'B', `--swap-endianness` on this little-endian host).
    pub big_endian: bool,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            min_fallback_size: 4_000_000,
            max_bsdiff_size: 128_000_000,
            max_chunk_size: 32_000_000,
            bsdiff: true,
            inline: false,
            timestamp: 0,
            output: None,
            big_endian: false,
        }
    }
}

/// What a generation produced.
#[derive(Clone, Debug, Default)]
pub struct GenerateReport {
    pub name: String,
    pub parts: usize,
    pub fallbacks: usize,
    pub bsdiff: usize,
    pub superblock_checksum: Option<Checksum>,
}

/// path → file checksum of every file in a commit's tree, except below
/// directories whose dirtree is in `skip`.
fn files_by_path(
    repo: &Repo,
    commit: &Checksum,
    skip: Option<&crate::traverse::Reachable>,
) -> Result<BTreeMap<String, Checksum>> {
    let c = repo.load_commit(commit)?;
    let mut out = BTreeMap::new();
    let mut stack = vec![(String::new(), c.root_tree)];
    while let Some((prefix, tree)) = stack.pop() {
        let t = repo.load_dirtree(&tree)?;
        for f in &t.files {
            out.insert(format!("{prefix}/{}", f.name), f.checksum);
        }
        for d in &t.dirs {
            if skip.is_some_and(|s| s.contains(&(ObjectType::DirTree, d.tree))) {
                continue;
            }
            stack.push((format!("{prefix}/{}", d.name), d.tree));
        }
    }
    Ok(out)
}

/// Generate `from → to` (or from scratch) into the repository's `deltas/`.
pub fn generate(
    repo: &Repo,
    from: Option<&Checksum>,
    to: &Checksum,
    opts: &GenerateOptions,
) -> Result<GenerateReport> {
    let to_commit_bytes = repo.load_meta_bytes(ObjectType::Commit, to)?;
    let _to_commit: Commit = repo.load_commit(to)?;
    // The two walks are independent: one per core.
    let (to_set, from_set) = rayon::join(
        || -> Result<_> {
            let mut to_set = HashSet::new();
            repo.traverse_commit(to, 0, &mut to_set)?;
            Ok(to_set)
        },
        || -> Result<_> {
            let mut from_set = HashSet::new();
            if let Some(f) = from {
                repo.traverse_commit(f, 0, &mut from_set)?;
            }
            Ok(from_set)
        },
    );
    let (to_set, from_set) = (to_set?, from_set?);
    let mut new: Vec<(ObjectType, Checksum)> = to_set
        .iter()
        .filter(|o| !from_set.contains(*o))
        .filter(|o| !(o.0 == ObjectType::Commit && o.1 == *to))
        // Detached metadata is named by its commit, not its bytes: it
        // travels in the superblock, never as a part object.
        .filter(|o| o.0 != ObjectType::CommitMeta)
        .map(|o| (o.0, o.1))
        .collect();
    new.sort_by(|a, b| (b.0.is_meta(), a.0, a.1 .0).cmp(&(a.0.is_meta(), b.0, b.1 .0)));
    let new_files: HashSet<Checksum> = new
        .iter()
        .filter(|o| o.0 == ObjectType::File)
        .map(|o| o.1)
        .collect();

    // Modified files: the old file at the same path, else the first old
    // file with the same name (bsdiff output is only kept when it pays).
    let mut modified: HashMap<Checksum, Checksum> = HashMap::new();
    if let (Some(f), true) = (from, opts.bsdiff) {
        // New files only live under directories `from` lacks, so the new
        // side's walk skips the rest (most of the tree).
        let (old, newp) = rayon::join(
            || files_by_path(repo, f, None),
            || files_by_path(repo, to, Some(&from_set)),
        );
        let (old, newp) = (old?, newp?);
        let mut by_name: HashMap<String, Vec<Checksum>> = HashMap::new();
        for (p, c) in &old {
            let base = p.rsplit('/').next().unwrap_or("").to_string();
            by_name.entry(base).or_default().push(*c);
        }
        for (p, c) in &newp {
            if !new_files.contains(c) || modified.contains_key(c) {
                continue;
            }
            let cand = old.get(p).copied().or_else(|| {
                let base = p.rsplit('/').next().unwrap_or("");
                by_name.get(base).and_then(|v| v.first().copied())
            });
            if let Some(oc) = cand {
                if oc != *c && !new_files.contains(&oc) {
                    modified.insert(*c, oc);
                }
            }
        }
    }

    let (dir, sb_name) = match &opts.output {
        Some(file) => {
            let name = file
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| invalid(format!("--filename {}: no file name", file.display())))?;
            let dir = match file.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            (dir, name.to_string())
        }
        None => {
            let dir = repo.path().join(sd::delta_dir(from, to));
            if dir.exists() {
                crate::transaction::remove_tree_at(repo.dir(), &sd::delta_dir(from, to))
                    .ctx(|| format!("removing old {}", dir.display()))?;
            }
            (dir, "superblock".to_string())
        }
    };
    std::fs::create_dir_all(&dir).ctx(|| format!("creating {}", dir.display()))?;
    let mut report = GenerateReport {
        name: sd::delta_name(from, to),
        ..Default::default()
    };
    let (send, recv) = std::sync::mpsc::sync_channel::<PartJob>(1);
    let (built, fallbacks, done) = std::thread::scope(|s| {
        let worker = s.spawn(|| compress_parts(recv, &dir, opts.inline));
        let mut b = Builder {
            opts,
            cur: PartBuilder::new(),
            headers: Vec::new(),
            send,
        };
        let filled = fill_parts(repo, &new, &modified, opts, &mut b, &mut report);
        let Builder { headers, send, .. } = b;
        drop(send);
        // The compressor's own error (a failed write) explains a failed
        // send better than the send does.
        let done = worker
            .join()
            .map_err(|_| invalid("the part compressor panicked"))??;
        let fallbacks = filled?;
        Ok::<_, RepoError>((headers, fallbacks, done))
    })?;
    let mut headers = Vec::with_capacity(built.len());
    let mut inline = Vec::new();
    let mut done = done;
    done.sort_by_key(|d| d.0);
    for ((usize, objects), (_, checksum, size, bytes)) in built.into_iter().zip(done) {
        headers.push(PartHeader {
            version: sd::PART_VERSION,
            checksum,
            size,
            usize,
            objects,
        });
        if let Some(b) = bytes {
            inline.push(b);
        }
    }

    let mut md = Metadata::new();
    let endianness = if opts.big_endian {
        sd::Endianness::Big
    } else {
        sd::Endianness::Little
    };
    let key = if opts.big_endian { b'B' } else { b'l' };
    md.set(sd::KEY_ENDIANNESS, Value::U8(key));
    let mut sb = Superblock {
        metadata: md,
        timestamp: opts.timestamp,
        from: from.copied(),
        to: *to,
        commit: Commit::decode(&to_commit_bytes)?,
        commit_bytes: to_commit_bytes,
        parts: headers,
        fallbacks,
        endianness,
    };
    for (i, p) in inline.iter().enumerate() {
        let key = sb.inline_part_key(i);
        sb.metadata.set(&key, sd::inline_part_value(p));
    }
    if let Some(detached) = repo.load_commitmeta(to)? {
        let key = sb.detached_key();
        sb.metadata.set(&key, detached.to_value());
    }
    let bytes = sb.encode();
    fsutil::write_atomic_at(
        fsutil::open_dir(&dir).ctx(|| "opening delta dir")?,
        &sb_name,
        &bytes,
        false,
    )
    .ctx(|| "writing superblock")?;
    report.parts = sb.parts.len();
    report.fallbacks = sb.fallbacks.len();
    report.superblock_checksum = Some(Checksum::of(&bytes));
    Ok(report)
}

//! Seed-corpus generator for the fuzz targets (run by `seed.sh`, not a fuzz
//! target itself).
//!
//! Usage: gen_seeds CORPUS_DIR REPO...
//!
//! Walks `objects/*/*` of each ostree repository and writes, per target,
//! `CORPUS_DIR/<target>/<name>`:
//!   dirtree        ← *.dirtree
//!   dirmeta        ← *.dirmeta
//!   commit         ← *.commit
//!   metadata       ← *.commitmeta, and the a{sv} of every commit
//!   archive_object ← *.filez
//!   archive_header ← *.filez, and its header alone
//!   file_header    ← the (uuuusa(ayay)) header of every *.filez
//! It also checks that every object the real ostree wrote decodes and
//! re-encodes to the same bytes, and exits 1 (after writing the corpus) if
//! one does not.

use oxtree_object::static_delta::Superblock;
use oxtree_object::{ArchiveHeader, Commit, DirMeta, DirTree, Metadata};
use std::fs;
use std::path::Path;

fn put(corpus: &Path, target: &str, name: &str, bytes: &[u8]) {
    let dir = corpus.join(target);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(name), bytes).unwrap();
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (corpus, repos) = args.split_first().expect("usage: gen_seeds CORPUS REPO...");
    let corpus = Path::new(corpus);
    let mut count = 0usize;
    let mut failures = 0usize;
    for repo in repos {
        let objects = Path::new(repo).join("objects");
        let mut paths: Vec<_> = fs::read_dir(&objects)
            .unwrap_or_else(|e| panic!("{}: {e}", objects.display()))
            .flat_map(|d| fs::read_dir(d.unwrap().path()).unwrap())
            .map(|e| e.unwrap().path())
            .collect();
        paths.sort();
        for path in paths {
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            let prefix = path
                .parent()
                .unwrap()
                .file_name()
                .unwrap()
                .to_str()
                .unwrap();
            let name = format!("{prefix}{}", path.file_name().unwrap().to_str().unwrap());
            let bytes = fs::read(&path).unwrap();
            let mut bad = |what: &str, e: &dyn std::fmt::Display| {
                eprintln!("gen_seeds: {}: {what}: {e}", path.display());
                failures += 1;
            };
            // What ostree wrote is normal form: oxtree must decode it and
            // re-encode the very same bytes (the checksum depends on them).
            let reencoded = match ext {
                "dirtree" => Some(DirTree::decode(&bytes).map(|v| v.encode())),
                "dirmeta" => Some(DirMeta::decode(&bytes).map(|v| v.encode())),
                "commit" => Some(Commit::decode(&bytes).map(|v| v.encode())),
                "commitmeta" => Some(Metadata::decode(&bytes).map(|v| v.encode())),
                // The header part; the deflate stream is kept as it is.
                "filez" => Some(
                    ArchiveHeader::decode(&bytes)
                        .map(|(h, off)| [h.encode(), bytes[off..].to_vec()].concat()),
                ),
                _ => None,
            };
            match reencoded {
                Some(Ok(enc)) if enc != bytes => {
                    bad(ext, &"re-encodes to different bytes");
                }
                Some(Err(e)) => bad(ext, &e),
                _ => {}
            }
            match ext {
                "dirtree" | "dirmeta" | "commit" => put(corpus, ext, &name, &bytes),
                "commitmeta" => put(corpus, "metadata", &name, &bytes),
                "filez" => {
                    put(corpus, "archive_object", &name, &bytes);
                    put(corpus, "archive_header", &name, &bytes);
                    match ArchiveHeader::read_object(&bytes) {
                        Ok((hdr, _)) => {
                            put(corpus, "file_header", &name, &hdr.encode());
                            let (_, off) = ArchiveHeader::decode(&bytes).unwrap();
                            put(
                                corpus,
                                "archive_header",
                                &format!("{name}.hdr"),
                                &bytes[..off],
                            );
                        }
                        Err(e) => bad("filez", &e),
                    }
                }
                _ => continue,
            }
            if ext == "commit" {
                match Commit::decode(&bytes) {
                    Ok(c) => put(corpus, "metadata", &name, &c.metadata.encode()),
                    Err(e) => bad("commit", &e),
                }
            }
            count += 1;
        }
    }
    for repo in repos {
        failures += delta_seeds(corpus, Path::new(repo));
    }
    // bspatch: size 5, old "hello", one control (5, 0, 0), a zero diff.
    let mut seed = 5u32.to_le_bytes().to_vec();
    seed.extend_from_slice(&5u16.to_le_bytes());
    seed.extend_from_slice(b"hello");
    for v in [5u64, 0, 0] {
        seed.extend_from_slice(&v.to_le_bytes());
    }
    seed.extend_from_slice(&[0, 0, 0, 0, 1]);
    put(corpus, "bspatch", "hello", &seed);
    eprintln!("gen_seeds: {count} objects -> {}", corpus.display());
    if failures > 0 {
        eprintln!("gen_seeds: {failures} problems with objects written by ostree");
        std::process::exit(1);
    }
}

/// Superblocks and parts of every delta in `repo/deltas/` (a part seed is
/// its object count, at most 8 of its objects, then the part file). Checks
/// that each superblock ostree wrote re-encodes to the same bytes.
fn delta_seeds(corpus: &Path, repo: &Path) -> usize {
    let mut failures = 0;
    let Ok(top) = fs::read_dir(repo.join("deltas")) else {
        return 0;
    };
    let mut dirs: Vec<_> = top
        .flat_map(|d| fs::read_dir(d.unwrap().path()).unwrap())
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    for (n, dir) in dirs.iter().enumerate() {
        let Ok(bytes) = fs::read(dir.join("superblock")) else {
            continue;
        };
        let tag = repo.file_name().and_then(|f| f.to_str()).unwrap_or("repo");
        put(corpus, "delta_superblock", &format!("{tag}-sb{n}"), &bytes);
        let sb = match Superblock::decode(&bytes) {
            Ok(sb) => sb,
            Err(e) => {
                eprintln!("gen_seeds: {}: superblock: {e}", dir.display());
                failures += 1;
                continue;
            }
        };
        if sb.encode() != bytes {
            eprintln!(
                "gen_seeds: {}: superblock re-encodes differently",
                dir.display()
            );
            failures += 1;
        }
        for (i, h) in sb.parts.iter().enumerate() {
            let part = match sb.inline_part(i) {
                Some(p) => p,
                None => match fs::read(dir.join(i.to_string())) {
                    Ok(p) => p,
                    Err(_) => continue,
                },
            };
            let k = h.objects.len().min(8);
            let mut seed = vec![k as u8];
            for (t, c) in &h.objects[..k] {
                seed.push(*t as u8);
                seed.extend_from_slice(&c.0);
            }
            seed.extend_from_slice(&part);
            put(corpus, "delta_part", &format!("{tag}-sb{n}-part{i}"), &seed);
        }
    }
    failures
}

//! Filling the parts: every new object read in order, modified files
//! bsdiff'd on worker threads within a memory budget, and all of it
//! added to the parts in the original order (so the delta does not
//! depend on scheduling); large files left as fallbacks.

use super::parts::Builder;
use super::{invalid, GenerateOptions, GenerateReport};
use crate::error::{IoContext, Result};
use crate::objects::loose_path;
use crate::Repo;
use oxtree_object::static_delta::Fallback;
use oxtree_object::{Checksum, FileHeader, ObjectType};
use rustix::fs::{self as rfs, AtFlags};
use std::collections::HashMap;

fn storage_size(repo: &Repo, kind: ObjectType, csum: &Checksum) -> Result<u64> {
    let p = loose_path(csum, kind, repo.mode());
    let st = rfs::statat(repo.objects_dir(), &p, AtFlags::SYMLINK_NOFOLLOW)
        .ctx(|| format!("stat {p}"))?;
    Ok(st.st_size as u64)
}

fn load_file(repo: &Repo, csum: &Checksum) -> Result<(FileHeader, Vec<u8>)> {
    repo.open_file(csum)?
        .read_all()
        .ctx(|| format!("reading {csum}.file"))
}

/// Memory the diffs in flight (and the objects waiting behind them) may
/// hold; one diff larger than this still runs, alone.
const DIFF_BUDGET: usize = 64 << 20;

/// What a bsdiff of `old` → `new` holds at once: both files, the 4-byte
/// suffix array of `old`, and a patch about as long as `new`.
fn diff_cost(old: usize, new: usize) -> usize {
    5 * old + 2 * new
}

/// A new object on its way into the parts, in order.
enum Item {
    Meta(ObjectType, Checksum, Vec<u8>),
    File {
        csum: Checksum,
        h: FileHeader,
        /// Shared with the diff's worker, which drops it before answering.
        content: std::sync::Arc<Vec<u8>>,
        /// The old file it is diffed against, and the diff's sequence
        /// number while it is computed.
        diff: Option<(Checksum, usize)>,
    },
}

/// A diff for a worker: (sequence number, old, new).
type DiffJob = (usize, Vec<u8>, std::sync::Arc<Vec<u8>>);
/// A worker's answer: (sequence number, the patch if it pays, or Err if
/// the diff panicked).
type DiffDone = (usize, std::result::Result<Option<Vec<u8>>, ()>);

/// The ordered queue between reading objects and adding them to parts.
struct Filler<'a, 'b, 'c> {
    b: &'a mut Builder<'b>,
    report: &'a mut GenerateReport,
    opts: &'a GenerateOptions,
    repo: &'c Repo,
    queue: std::collections::VecDeque<(Item, usize)>,
    /// Sum of the queued items' costs.
    held: usize,
    /// Answers not yet consumed, by sequence number.
    patches: HashMap<usize, Option<Vec<u8>>>,
    done_recv: std::sync::mpsc::Receiver<DiffDone>,
    fallbacks: Vec<Fallback>,
    deferred_symlinks: Vec<(Checksum, FileHeader)>,
}

impl Filler<'_, '_, '_> {
    fn push(&mut self, item: Item, cost: usize) -> Result<()> {
        self.queue.push_back((item, cost));
        self.held += cost;
        self.drain(false)
    }

    /// Wait until `cost` more fits in [`DIFF_BUDGET`] (or nothing is held).
    fn make_room(&mut self, cost: usize) -> Result<()> {
        self.drain(false)?;
        while self.held > 0 && self.held + cost > DIFF_BUDGET {
            self.wait()?;
            self.drain(false)?;
        }
        Ok(())
    }

    /// Take one answer, blocking.
    fn wait(&mut self) -> Result<()> {
        let (seq, r) = self
            .done_recv
            .recv()
            .map_err(|_| invalid("the bsdiff workers stopped"))?;
        let patch = r.map_err(|()| invalid("a bsdiff worker panicked"))?;
        self.patches.insert(seq, patch);
        Ok(())
    }

    /// Add the queue's ready prefix to the parts; with `all`, wait for
    /// answers until the queue is empty.
    fn drain(&mut self, all: bool) -> Result<()> {
        while let Ok((seq, r)) = self.done_recv.try_recv() {
            let patch = r.map_err(|()| invalid("a bsdiff worker panicked"))?;
            self.patches.insert(seq, patch);
        }
        loop {
            let ready = match self.queue.front() {
                None => return Ok(()),
                Some((
                    Item::File {
                        diff: Some((_, seq)),
                        ..
                    },
                    _,
                )) => self.patches.contains_key(seq),
                Some(_) => true,
            };
            if !ready {
                if !all {
                    return Ok(());
                }
                self.wait()?;
                continue;
            }
            let Some((item, cost)) = self.queue.pop_front() else {
                return Ok(());
            };
            self.consume(item)?;
            self.held -= cost;
        }
    }

    fn consume(&mut self, item: Item) -> Result<()> {
        let (csum, h, content, diff) = match item {
            Item::Meta(kind, csum, bytes) => return self.b.add_meta(kind, csum, &bytes),
            Item::File {
                csum,
                h,
                content,
                diff,
            } => (csum, h, content, diff),
        };
        if let Some((oc, seq)) = diff {
            if let Some(patch) = self.patches.remove(&seq).flatten() {
                self.b
                    .add_bsdiff(csum, &h, &oc, content.len() as u64, &patch)?;
                self.report.bsdiff += 1;
                return Ok(());
            }
        }
        let min = self.opts.min_fallback_size;
        if min > 0 && content.len() as u64 > min {
            self.fallbacks.push(Fallback {
                kind: ObjectType::File,
                checksum: csum,
                size: storage_size(self.repo, ObjectType::File, &csum)?,
                usize: content.len() as u64,
            });
            return Ok(());
        }
        self.b.add_content(csum, &h, &content)
    }
}

/// The raw bsdiff stream from `old` to `new` when it pays: the stream is
/// uncompressed (the part's xz squeezes the mostly-zero diff bytes), so
/// judge it by what is left.
fn diff_if_it_pays(
    old: &[u8],
    new: &[u8],
    scratch: &mut crate::bsdiff::Scratch,
) -> Option<Vec<u8>> {
    let mut patch = Vec::new();
    crate::bsdiff::diff(old, new, scratch, &mut patch);
    scratch.trim();
    let weight = patch.iter().filter(|&&x| x != 0).count();
    (weight < new.len()).then_some(patch)
}

/// Put every new object into parts (metadata, then bsdiff'd or raw
/// files, then symlinks); returns the objects left as fallbacks.
///
/// Objects are read in order on this thread; bsdiffs run on a worker per
/// core (they are most of the time) while later objects are read, within
/// [`DIFF_BUDGET`], and everything enters the parts in the original order
/// so the delta does not depend on scheduling.
pub(super) fn fill_parts(
    repo: &Repo,
    new: &[(ObjectType, Checksum)],
    modified: &HashMap<Checksum, Checksum>,
    opts: &GenerateOptions,
    b: &mut Builder<'_>,
    report: &mut GenerateReport,
) -> Result<Vec<Fallback>> {
    use std::sync::{mpsc, Arc, Mutex};
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let (job_send, job_recv) = mpsc::channel::<DiffJob>();
    let job_recv = Mutex::new(job_recv);
    let (done_send, done_recv) = mpsc::channel::<DiffDone>();
    std::thread::scope(|s| {
        for _ in 0..workers {
            let done_send = done_send.clone();
            let job_recv = &job_recv;
            s.spawn(move || {
                let mut scratch = crate::bsdiff::Scratch::default();
                loop {
                    // The lock is held only while waiting for the next job.
                    let job = job_recv.lock().map(|r| r.recv());
                    let Ok(Ok((seq, old, new))) = job else { break };
                    // A panic becomes an error: the reader waits for every
                    // answer, so a lost one would hang it.
                    let patch = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        diff_if_it_pays(&old, &new, &mut scratch)
                    }))
                    .map_err(|_| ());
                    drop((old, new));
                    if done_send.send((seq, patch)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(done_send);
        let mut f = Filler {
            b,
            report,
            opts,
            repo,
            queue: std::collections::VecDeque::new(),
            held: 0,
            patches: HashMap::new(),
            done_recv,
            fallbacks: Vec::new(),
            deferred_symlinks: Vec::new(),
        };
        let r = (|| -> Result<()> {
            let mut seq = 0;
            for (kind, csum) in new {
                if kind.is_meta() {
                    let bytes = repo.load_meta_bytes(*kind, csum)?;
                    let cost = bytes.len();
                    f.make_room(cost)?;
                    f.push(Item::Meta(*kind, *csum, bytes), cost)?;
                    continue;
                }
                let (h, content) = load_file(repo, csum)?;
                if h.is_symlink() {
                    f.deferred_symlinks.push((*csum, h));
                    continue;
                }
                if let Some(oc) = modified.get(csum) {
                    let (oh, old) = load_file(repo, oc)?;
                    let world_readable = oh.mode & 0o004 != 0;
                    if oh.is_regular()
                        && world_readable
                        && (old.len() + content.len()) as u64 <= opts.max_bsdiff_size
                        && old.len() <= crate::bsdiff::MAX_OLD_SIZE
                    {
                        let cost = diff_cost(old.len(), content.len());
                        f.make_room(cost)?;
                        let content = Arc::new(content);
                        job_send
                            .send((seq, old, Arc::clone(&content)))
                            .map_err(|_| invalid("the bsdiff workers stopped"))?;
                        f.push(
                            Item::File {
                                csum: *csum,
                                h,
                                content,
                                diff: Some((*oc, seq)),
                            },
                            cost,
                        )?;
                        seq += 1;
                        continue;
                    }
                }
                let cost = content.len();
                f.make_room(cost)?;
                f.push(
                    Item::File {
                        csum: *csum,
                        h,
                        content: Arc::new(content),
                        diff: None,
                    },
                    cost,
                )?;
            }
            f.drain(true)?;
            Ok(())
        })();
        drop(job_send);
        r?;
        for (csum, h) in std::mem::take(&mut f.deferred_symlinks) {
            f.b.add_content(csum, &h, &[])?;
        }
        f.b.flush()?;
        // A delta always has a part, even an empty one between commits of
        // one tree, as ostree writes it (its `show` and pull expect one).
        if f.b.headers.is_empty() {
            f.b.flush_part()?;
        }
        Ok(f.fallbacks)
    })
}

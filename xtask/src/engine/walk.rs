//! Expanding input patterns into files: a parallel walk that prunes excluded directories before
//! reading them and stats each file once, relative to its directory's descriptor (what git's
//! `core.preloadIndex` does for `git status`). The stats feed both the stat signature of a
//! no-op plan and the stat cache of a real hash, so no file is stat'ed twice.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};

use anyhow::Context as _;
use sha2::{Digest, Sha256};

use super::glob::{Glob, literal_prefix};

/// Entries still to visit per walk thread (estimated from the queued directories and the
/// entries per directory so far): trees of a few hundred files stay on one thread, where
/// starting and joining helpers would cost more than they save. From about a thousand files a
/// second thread pays off, as for git's `core.preloadIndex` (500 entries per thread); 250 was
/// the best of 100–1000 in `cargo xtask bench` on a 2-core machine.
const WALK_THREAD_COST: usize = 250;

/// Most threads a walk uses (git's `MAX_PARALLEL` for `core.preloadIndex`): stat-bound work
/// that blocks on the disk, or waits for a busy CPU, gains from more threads than cores.
pub const MAX_WALK_THREADS: usize = 20;

/// Directories never walked into.
const ALWAYS_PRUNED: [&str; 1] = [".git"];

const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;

/// The stat fields that say whether a file may have changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// Size in bytes.
    pub size: u64,
    /// Modification time, ns since the epoch (saturated beyond the years 1677–2262: such
    /// times are never settled, so saturation cannot make a change look like no change).
    pub mtime: i64,
    /// Status change time, ns since the epoch (no user call can set it back).
    pub ctime: i64,
    /// Inode number.
    pub ino: u64,
    /// Device number.
    pub dev: u64,
    /// `st_mode`: file type and permission bits.
    pub mode: u32,
}

impl Stat {
    /// The fields of `meta` (taken without following symlinks).
    pub fn of(meta: &std::fs::Metadata) -> Stat {
        let ns = |s: i64, n: i64| s.saturating_mul(1_000_000_000).saturating_add(n);
        Stat {
            size: meta.size(),
            mtime: ns(meta.mtime(), meta.mtime_nsec()),
            ctime: ns(meta.ctime(), meta.ctime_nsec()),
            ino: meta.ino(),
            dev: meta.dev(),
            mode: meta.mode(),
        }
    }

    /// A symbolic link (keyed by its target, never followed).
    pub fn is_symlink(&self) -> bool {
        self.mode & S_IFMT == S_IFLNK
    }

    /// A regular file.
    pub fn is_file(&self) -> bool {
        self.mode & S_IFMT == S_IFREG
    }

    /// A regular file with any execute bit.
    pub fn is_executable(&self) -> bool {
        self.is_file() && self.mode & 0o111 != 0
    }

    /// Changed strictly before `stamp` (the filesystem clock): the racy-git condition for
    /// trusting that an equal stat means equal content.
    pub fn settled(&self, stamp: i64) -> bool {
        self.mtime < stamp && self.ctime < stamp
    }
}

/// One input file: its root-relative `/` path and the stat taken when it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputFile {
    /// Root-relative, `/`-separated.
    pub path: String,
    /// Taken before any read of its content.
    pub stat: Stat,
}

/// The files input patterns name.
#[derive(Debug, Default)]
pub struct Expansion {
    /// Sorted by path, without duplicates.
    pub files: Vec<InputFile>,
    /// Indices of include patterns that matched nothing (the caller reports them).
    pub empty: Vec<usize>,
    /// Directories read (excluded directories are pruned before reading: tests count this).
    pub dirs_read: usize,
}

impl Expansion {
    /// The paths, in order.
    pub fn paths(&self) -> Vec<&str> {
        self.files.iter().map(|f| f.path.as_str()).collect()
    }
}

/// A directory to read on behalf of include pattern `pattern`.
struct Job {
    pattern: usize,
    dir: String,
}

/// What reading one directory found: files and subdirectories to walk, each sorted.
struct Listing {
    files: Vec<InputFile>,
    subdirs: Vec<String>,
}

struct Queue {
    jobs: Vec<Job>,
    /// Jobs being processed: the walk ends when none are queued and none are active.
    active: usize,
    error: Option<anyhow::Error>,
}

/// One include pattern, compiled.
struct Include<'a> {
    glob: Option<Glob<'a>>,
}

/// Expand `patterns` (root-relative paths or globs; `!` excludes; a directory means everything
/// under it) with up to `jobs` threads.
pub fn expand(root: &Path, patterns: &[&str], jobs: usize) -> anyhow::Result<Expansion> {
    expand_with(root, patterns, jobs, WALK_THREAD_COST)
}

/// [`expand`], with one more thread (up to `jobs`) per `cost` entries estimated to remain.
fn expand_with(
    root: &Path,
    patterns: &[&str],
    jobs: usize,
    cost: usize,
) -> anyhow::Result<Expansion> {
    let excludes: Vec<Glob<'_>> = patterns
        .iter()
        .filter_map(|p| p.strip_prefix('!'))
        .map(|p| Glob::new(normalize(p)))
        .collect();
    // An exclude naming the directory itself or everything under it (`dir/**`) prunes it.
    let dir_excludes: Vec<Glob<'_>> = patterns
        .iter()
        .filter_map(|p| p.strip_prefix('!'))
        .filter_map(|p| normalize(p).strip_suffix("/**"))
        .map(Glob::new)
        .collect();
    let excluded = |rel: &str| excludes.iter().any(|e| e.matches(rel));
    let pruned = |rel: &str| excluded(rel) || dir_excludes.iter().any(|e| e.matches(rel));

    let mut includes = Vec::new();
    let mut seeds = Vec::new();
    // Sorted runs of files, merged at the end: one per seed directory, one per literal file.
    let mut runs: Vec<Vec<InputFile>> = Vec::new();
    let matched: Vec<AtomicBool> = patterns.iter().map(|_| AtomicBool::new(false)).collect();
    for (i, pattern) in patterns.iter().enumerate() {
        if pattern.starts_with('!') {
            includes.push(Include { glob: None });
            continue;
        }
        let pattern = normalize(pattern);
        let literal = literal_prefix(pattern);
        let is_glob = literal != pattern;
        includes.push(Include {
            glob: is_glob.then(|| Glob::new(pattern)),
        });
        let base = if literal.is_empty() {
            root.to_path_buf()
        } else {
            root.join(&literal)
        };
        let Ok(meta) = base.symlink_metadata() else {
            continue;
        };
        if meta.is_dir() {
            seeds.push((i, literal));
        } else if !is_glob && !excluded(&literal) {
            check_kind(&literal, &Stat::of(&meta))?;
            runs.push(vec![InputFile {
                path: literal,
                stat: Stat::of(&meta),
            }]);
            matched[i].store(true, Ordering::Relaxed);
        }
    }

    let dirs_read = AtomicUsize::new(0);
    let entries_seen = AtomicUsize::new(0);
    let queue = Mutex::new(Queue {
        jobs: seeds
            .iter()
            .map(|(pattern, dir)| Job {
                pattern: *pattern,
                dir: dir.clone(),
            })
            .collect(),
        active: 0,
        error: None,
    });
    let wake = Condvar::new();
    let read_dir = |job: &Job| -> anyhow::Result<Listing> {
        let include = &includes[job.pattern];
        let abs = if job.dir.is_empty() {
            root.to_path_buf()
        } else {
            root.join(&job.dir)
        };
        let entries = std::fs::read_dir(&abs)
            .with_context(|| format!("cannot read directory `{}`", abs.display()))?;
        dirs_read.fetch_add(1, Ordering::Relaxed);
        let mut listing = Listing {
            files: Vec::new(),
            subdirs: Vec::new(),
        };
        for entry in entries {
            let entry =
                entry.with_context(|| format!("cannot read directory `{}`", abs.display()))?;
            let name = entry.file_name();
            // Inputs are keyed by UTF-8 path; other names cannot be declared either.
            let Some(name) = name.to_str() else { continue };
            let mut rel = String::with_capacity(job.dir.len() + 1 + name.len());
            if !job.dir.is_empty() {
                rel.push_str(&job.dir);
                rel.push('/');
            }
            rel.push_str(name);
            let file_type = entry
                .file_type()
                .with_context(|| format!("cannot stat `{rel}`"))?;
            if file_type.is_dir() {
                let skip = ALWAYS_PRUNED.contains(&name)
                    || pruned(&rel)
                    || include
                        .glob
                        .as_ref()
                        .is_some_and(|g| !g.may_match_under(&rel));
                if !skip {
                    listing.subdirs.push(rel);
                }
                continue;
            }
            if include.glob.as_ref().is_some_and(|g| !g.matches(&rel)) || excluded(&rel) {
                continue;
            }
            // `DirEntry::metadata` stats relative to the open directory, without following
            // a symlink: no path walk from the root per file.
            let meta = entry
                .metadata()
                .with_context(|| format!("cannot stat input `{rel}`"))?;
            let stat = Stat::of(&meta);
            check_kind(&rel, &stat)?;
            listing.files.push(InputFile { path: rel, stat });
        }
        if !listing.files.is_empty() {
            matched[job.pattern].store(true, Ordering::Relaxed);
        }
        entries_seen.fetch_add(
            listing.files.len() + listing.subdirs.len(),
            Ordering::Relaxed,
        );
        // Small sorts here, in parallel, instead of one big sort of every path at the end.
        listing.files.sort_unstable_by(|a, b| a.path.cmp(&b.path));
        listing.subdirs.sort_unstable_by(|a, b| cmp_dirs(a, b));
        Ok(listing)
    };

    // `after_job` sees the number of queued directories after each directory read.
    let worker = |after_job: &mut dyn FnMut(usize)| -> Vec<(usize, String, Listing)> {
        let mut out = Vec::new();
        loop {
            let job = {
                let mut q = queue.lock().unwrap_or_else(PoisonError::into_inner);
                loop {
                    if let Some(job) = q.jobs.pop() {
                        q.active += 1;
                        break Some(job);
                    }
                    if q.active == 0 {
                        break None;
                    }
                    q = wake.wait(q).unwrap_or_else(PoisonError::into_inner);
                }
            };
            let Some(job) = job else {
                wake.notify_all();
                return out;
            };
            let result = read_dir(&job);
            let mut q = queue.lock().unwrap_or_else(PoisonError::into_inner);
            q.active -= 1;
            let mut added = false;
            match result {
                Ok(listing) if q.error.is_none() => {
                    added = !listing.subdirs.is_empty();
                    q.jobs.extend(listing.subdirs.iter().map(|d| Job {
                        pattern: job.pattern,
                        dir: d.clone(),
                    }));
                    out.push((job.pattern, job.dir, listing));
                }
                Ok(_) => {}
                Err(e) => {
                    q.jobs.clear();
                    q.error.get_or_insert(e);
                }
            }
            // Waiters sleep until there is work or the walk is over.
            let queued = q.jobs.len();
            let idle = q.active == 0 && queued == 0;
            drop(q);
            if idle || added {
                wake.notify_all();
            }
            after_job(queued);
        }
    };
    // The calling thread starts alone; helpers join as the tree proves big enough to repay
    // them (on a busy machine each start and wake-up costs a scheduling delay).
    let jobs = jobs.max(1);
    let cost = cost.max(1);
    let mut listings: HashMap<(usize, String), Listing> = HashMap::new();
    std::thread::scope(|s| {
        let mut helpers = Vec::new();
        let mut grow = |queued: usize| {
            let done = dirs_read.load(Ordering::Relaxed).max(1);
            let remaining = queued * entries_seen.load(Ordering::Relaxed) / done;
            let wanted = jobs.min(1 + remaining / cost);
            let n = wanted.saturating_sub(1 + helpers.len()).min(queued);
            for _ in 0..n {
                helpers.push(s.spawn(|| worker(&mut |_| {})));
            }
        };
        let mine = worker(&mut grow);
        for h in helpers {
            match h.join() {
                Ok(part) => listings.extend(part.into_iter().map(|(p, d, l)| ((p, d), l))),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        listings.extend(mine.into_iter().map(|(p, d, l)| ((p, d), l)));
    });
    let queue = queue.into_inner().unwrap_or_else(PoisonError::into_inner);
    if let Some(e) = queue.error {
        return Err(e);
    }
    let total: usize = listings.values().map(|l| l.files.len()).sum();
    let one_seed = seeds.len() == 1;
    for (pattern, dir) in seeds {
        let mut run = Vec::with_capacity(if one_seed { total } else { 0 });
        emit(&mut listings, pattern, dir, &mut run);
        runs.push(run);
    }
    let files = runs.into_iter().reduce(merge_sorted).unwrap_or_default();
    let empty = patterns
        .iter()
        .enumerate()
        .filter(|(i, p)| !p.starts_with('!') && !matched[*i].load(Ordering::Relaxed))
        .map(|(i, _)| i)
        .collect();
    Ok(Expansion {
        files,
        empty,
        dirs_read: dirs_read.into_inner(),
    })
}

/// `pattern` without a leading `./` or a trailing `/`; `.` is the root (empty).
fn normalize(pattern: &str) -> &str {
    let mut p = pattern.trim_end_matches('/');
    while let Some(rest) = p.strip_prefix("./") {
        p = rest.trim_start_matches('/');
    }
    if p == "." { "" } else { p }
}

/// Directory paths in the order their contents take among sorted paths: as if each ended in
/// `/` (`a.b/…` sorts before `a/…`, which sorts before `a0/…`).
fn cmp_dirs(a: &str, b: &str) -> std::cmp::Ordering {
    let slash = std::iter::once(b'/');
    a.bytes().chain(slash.clone()).cmp(b.bytes().chain(slash))
}

/// Whether file path `file` sorts before every path under directory `dir`.
fn before_dir(file: &str, dir: &str) -> bool {
    let (f, d) = (file.as_bytes(), dir.as_bytes());
    match f.get(..d.len()) {
        Some(prefix) if prefix == d => f.get(d.len()).is_none_or(|&c| c < b'/'),
        _ => f < d,
    }
}

/// Append every file under `dir` (walked for `pattern`) to `out` in sorted path order, by
/// interleaving each directory's sorted files with its sorted subdirectories.
fn emit(
    listings: &mut HashMap<(usize, String), Listing>,
    pattern: usize,
    dir: String,
    out: &mut Vec<InputFile>,
) {
    let Some(listing) = listings.remove(&(pattern, dir)) else {
        return;
    };
    let mut files = listing.files.into_iter().peekable();
    for sub in listing.subdirs {
        while let Some(f) = files.next_if(|f| before_dir(&f.path, &sub)) {
            out.push(f);
        }
        emit(listings, pattern, sub, out);
    }
    out.extend(files);
}

/// Merge two path-sorted lists, keeping the first of equal paths.
fn merge_sorted(a: Vec<InputFile>, b: Vec<InputFile>) -> Vec<InputFile> {
    if b.is_empty() {
        return a;
    }
    if a.is_empty() {
        return b;
    }
    let mut out = Vec::with_capacity(a.len() + b.len());
    let mut a = a.into_iter().peekable();
    let mut b = b.into_iter().peekable();
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => match x.path.cmp(&y.path) {
                std::cmp::Ordering::Less => a.next(),
                std::cmp::Ordering::Greater => b.next(),
                std::cmp::Ordering::Equal => {
                    b.next();
                    a.next()
                }
            },
            (Some(_), None) => a.next(),
            (None, Some(_)) => b.next(),
            (None, None) => break,
        };
        out.extend(next);
    }
    out
}

/// Only regular files and symlinks are inputs: reading a FIFO would block, and sockets or
/// devices have no content to key.
fn check_kind(rel: &str, stat: &Stat) -> anyhow::Result<()> {
    anyhow::ensure!(
        stat.is_file() || stat.is_symlink(),
        "input `{rel}` is neither a regular file nor a symlink (mode {:o}); exclude it with `!{rel}` in the task's `inputs`",
        stat.mode
    );
    Ok(())
}

/// Sort by path and drop repeated paths (the first stat wins).
pub fn sort_dedup(files: &mut Vec<InputFile>) {
    files.sort_by(|a, b| a.path.cmp(&b.path));
    files.dedup_by(|later, kept| later.path == kept.path);
}

/// `walked` (sorted, from [`expand`]) with `extra` (any order) merged in.
pub fn merge_extra(walked: Vec<InputFile>, mut extra: Vec<InputFile>) -> Vec<InputFile> {
    sort_dedup(&mut extra);
    merge_sorted(walked, extra)
}

/// Stat `paths` (root-relative, e.g. a build context listed by a task kind) with up to `jobs`
/// threads; the result is in the order given.
pub fn stat_paths(root: &Path, paths: &[String], jobs: usize) -> anyhow::Result<Vec<InputFile>> {
    let stat_one = |rel: &String| -> anyhow::Result<InputFile> {
        let meta = root
            .join(rel)
            .symlink_metadata()
            .with_context(|| format!("cannot stat input `{rel}`"))?;
        let stat = Stat::of(&meta);
        check_kind(rel, &stat)?;
        Ok(InputFile {
            path: rel.clone(),
            stat,
        })
    };
    let chunk = paths.len().div_ceil(jobs.max(1)).max(256);
    if paths.len() <= chunk {
        return paths.iter().map(stat_one).collect();
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = paths
            .chunks(chunk)
            .map(|part| s.spawn(move || part.iter().map(stat_one).collect::<Vec<_>>()))
            .collect();
        let mut out = Vec::with_capacity(paths.len());
        for h in handles {
            match h.join() {
                Ok(part) => {
                    for f in part {
                        out.push(f?);
                    }
                }
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        Ok(out)
    })
}

/// A digest of every (path, size, mtime, ctime, inode, device, mode), in the given order, and
/// whether every file is settled before `stamp`. Equal signatures of settled files mean equal
/// inputs without reading a byte (git's index check, with its racy-timestamp rule).
pub fn stat_signature(files: &[InputFile], stamp: i64) -> (String, bool) {
    // Records go through one buffer so the hasher sees large blocks, not three small
    // updates per file.
    const FLUSH: usize = 64 * 1024;
    let mut hasher = Sha256::new();
    let mut settled = true;
    let mut buf = Vec::with_capacity(FLUSH + 4096);
    for f in files {
        let s = &f.stat;
        // The path is NUL-terminated (NUL cannot occur in it), the record has a fixed size:
        // the encoding is unambiguous.
        buf.extend_from_slice(f.path.as_bytes());
        buf.push(0);
        buf.extend_from_slice(&s.size.to_le_bytes());
        buf.extend_from_slice(&s.mtime.to_le_bytes());
        buf.extend_from_slice(&s.ctime.to_le_bytes());
        buf.extend_from_slice(&s.ino.to_le_bytes());
        buf.extend_from_slice(&s.dev.to_le_bytes());
        buf.extend_from_slice(&s.mode.to_le_bytes());
        if buf.len() >= FLUSH {
            hasher.update(&buf);
            buf.clear();
        }
        settled &= s.settled(stamp);
    }
    hasher.update(&buf);
    (hex::encode(hasher.finalize()), settled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(root: &Path, rel: &str) {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, rel).expect("write");
    }

    #[test]
    fn walk_order_is_plain_path_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        // Names around `/` (0x2F) in byte order: `-` and `.` sort before it, `0` after.
        let names = [
            "t/a-",
            "t/a.b/x",
            "t/a/x",
            "t/a/y/z",
            "t/a0",
            "t/a1/q",
            "t/b",
            "t/a.c",
            "t/a/x.d/e",
            "t/a/x-",
            "t/a/x0",
            "u/1",
        ];
        for n in names {
            touch(root, n);
        }
        // Overlapping patterns and a literal file: one sorted, duplicate-free list.
        for jobs in [1, 4] {
            let e = expand_with(root, &["t", "t/a/**", "u/1", "t/b"], jobs, 1).expect("expand");
            let mut want: Vec<&str> = names.to_vec();
            want.sort_unstable();
            assert_eq!(e.paths(), want, "jobs = {jobs}");
            assert!(e.empty.is_empty());
        }
    }

    #[test]
    fn random_trees_walk_in_sorted_order() {
        let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..8 {
            let dir = tempfile::tempdir().expect("tempdir");
            let mut made: Vec<String> = Vec::new();
            for _ in 0..200 {
                let depth = 1 + next() % 3;
                let path: Vec<String> = (0..depth)
                    .map(|_| {
                        (0..1 + next() % 2)
                            .map(|_| ['a', '.', '-', '0', 'b'][(next() % 5) as usize])
                            .collect()
                    })
                    .collect();
                let path = format!("r/{}", path.join("/"));
                // A file cannot also be a directory on the way to another file.
                let clash = made.iter().any(|m| {
                    m == &path
                        || m.starts_with(&format!("{path}/"))
                        || path.starts_with(&format!("{m}/"))
                });
                if !clash && !path.split('/').any(|c| c == "." || c == "..") {
                    touch(dir.path(), &path);
                    made.push(path);
                }
            }
            made.sort_unstable();
            for jobs in [1, 3] {
                let e = expand_with(dir.path(), &["r"], jobs, 1).expect("expand");
                assert_eq!(e.paths(), made, "round {round}, jobs {jobs}");
            }
        }
    }

    #[test]
    fn dot_prefixes_name_the_same_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        touch(dir.path(), "a/x");
        touch(dir.path(), "a/y");
        for pattern in ["a", "./a", "./a/", "a/"] {
            let e = expand(dir.path(), &[pattern, "!./a/y"], 1).expect("expand");
            assert_eq!(e.paths(), ["a/x"], "{pattern}");
        }
        let e = expand(dir.path(), &["."], 1).expect("expand");
        assert_eq!(e.paths(), ["a/x", "a/y"]);
    }

    #[test]
    fn before_dir_matches_string_order() {
        let cases = [
            ("a/x", "a/xy"),
            ("a.b", "a"),
            ("a0", "a"),
            ("a-", "a"),
            ("b", "a"),
        ];
        for (file, dir) in cases {
            assert_eq!(
                before_dir(file, dir),
                file < format!("{dir}/").as_str(),
                "{file} vs {dir}/"
            );
        }
    }
}

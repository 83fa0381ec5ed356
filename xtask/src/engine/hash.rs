//! Input files: pattern expansion with pruned walks, parallel streamed digests and a stat cache.
//!
//! The stat cache spares re-reading files whose (size, mtime, ctime, inode, device) did not
//! change. Correctness never rests on it: like git's racy-timestamp rule, an entry whose mtime is
//! not strictly older than the time the cache was written is re-hashed, and ctime (which no user
//! call can set back) catches a rewrite that restores size and mtime.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context as _;
use sha2::{Digest, Sha256};

/// Directories never walked into.
const ALWAYS_PRUNED: [&str; 1] = [".git"];

/// Buffer size for streaming file contents into the hasher.
const BUF_SIZE: usize = 64 * 1024;

/// The leading components of `pattern` that contain no wildcard (`a/b/*.rs` → `a/b`).
pub fn literal_prefix(pattern: &str) -> String {
    let mut parts = Vec::new();
    for part in pattern.split('/') {
        if part.contains(['*', '?', '[']) {
            break;
        }
        parts.push(part);
    }
    parts.join("/").trim_end_matches('/').to_string()
}

/// Whether `path` (relative, `/`-separated) matches `pattern`: `*` and `?` within a component,
/// `[abc]`/`[a-z]`/`[!a]` classes, `**` as a whole component for any number of components.
pub fn glob_match(pattern: &str, path: &str) -> bool {
    let pat: Vec<&str> = pattern.trim_end_matches('/').split('/').collect();
    let segs: Vec<&str> = path.split('/').collect();
    match_segments(&pat, &segs)
}

fn match_segments(pat: &[&str], segs: &[&str]) -> bool {
    match pat.split_first() {
        None => segs.is_empty(),
        Some((&"**", rest)) => (0..=segs.len()).any(|i| match_segments(rest, &segs[i..])),
        Some((p, rest)) => segs.split_first().is_some_and(|(s, srest)| {
            match_component(p.as_bytes(), s.as_bytes()) && match_segments(rest, srest)
        }),
    }
}

fn match_component(p: &[u8], s: &[u8]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => (0..=s.len()).any(|i| match_component(rest, &s[i..])),
        Some((b'?', rest)) => !s.is_empty() && match_component(rest, &s[1..]),
        Some((b'[', rest)) => {
            let Some(end) = rest.iter().skip(1).position(|&c| c == b']').map(|i| i + 1) else {
                return s.first() == Some(&b'[') && match_component(rest, &s[1..]);
            };
            let Some((&c, srest)) = s.split_first() else {
                return false;
            };
            let (negate, class) = match rest[..end].split_first() {
                Some((b'!' | b'^', class)) => (true, class),
                _ => (false, &rest[..end]),
            };
            let mut hit = false;
            let mut i = 0;
            while i < class.len() {
                if i + 2 < class.len() && class[i + 1] == b'-' {
                    hit |= class[i] <= c && c <= class[i + 2];
                    i += 3;
                } else {
                    hit |= class[i] == c;
                    i += 1;
                }
            }
            hit != negate && match_component(&rest[end + 1..], srest)
        }
        Some((&c, rest)) => s.first() == Some(&c) && match_component(rest, &s[1..]),
    }
}

/// Expand input patterns into the sorted set of files they name. Returns, for each include
/// pattern that matched nothing, its index (the caller turns it into a diagnostic).
pub fn expand(root: &Path, patterns: &[&str]) -> anyhow::Result<(BTreeSet<String>, Vec<usize>)> {
    let excludes: Vec<&str> = patterns
        .iter()
        .filter_map(|p| p.strip_prefix('!'))
        .collect();
    let excluded = |rel: &str| excludes.iter().any(|e| glob_match(e, rel));
    // A directory is pruned when an exclude names it or everything under it (`dir/**`).
    let pruned = |rel: &str| {
        excludes.iter().any(|e| {
            glob_match(e, rel) || e.strip_suffix("/**").is_some_and(|d| glob_match(d, rel))
        })
    };
    let mut files = BTreeSet::new();
    let mut empty = Vec::new();
    for (i, pattern) in patterns.iter().enumerate() {
        if pattern.starts_with('!') {
            continue;
        }
        let pattern = pattern.trim_end_matches('/');
        let literal = literal_prefix(pattern);
        let is_glob = literal != pattern;
        let base = if literal.is_empty() {
            root.to_path_buf()
        } else {
            root.join(&literal)
        };
        let mut matched = false;
        let meta = match base.symlink_metadata() {
            Ok(m) => m,
            Err(_) => {
                empty.push(i);
                continue;
            }
        };
        if !meta.is_dir() {
            if !is_glob && !excluded(&literal) {
                files.insert(literal);
                matched = true;
            }
        } else {
            let walker = walkdir::WalkDir::new(&base)
                .follow_links(false)
                .into_iter()
                .filter_entry(|e| {
                    if e.depth() == 0 || !e.file_type().is_dir() {
                        return true;
                    }
                    let name = e.file_name().to_string_lossy();
                    if ALWAYS_PRUNED.contains(&name.as_ref()) {
                        return false;
                    }
                    rel_path(root, e.path()).is_none_or(|rel| !pruned(&rel))
                });
            for entry in walker {
                let entry = entry.with_context(|| format!("cannot walk `{}`", base.display()))?;
                if entry.file_type().is_dir() {
                    continue;
                }
                let Some(rel) = rel_path(root, entry.path()) else {
                    continue;
                };
                if (!is_glob || glob_match(pattern, &rel)) && !excluded(&rel) {
                    files.insert(rel);
                    matched = true;
                }
            }
        }
        if !matched {
            empty.push(i);
        }
    }
    Ok((files, empty))
}

fn rel_path(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    let s = rel.to_str()?;
    Some(s.replace('\\', "/"))
}

/// A cached digest and the stat it was taken under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    size: u64,
    mtime: i128,
    ctime: i128,
    ino: u64,
    dev: u64,
    /// Content digest (hex).
    sha: String,
}

fn stat_of(meta: &std::fs::Metadata) -> (u64, i128, i128, u64, u64) {
    let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
    (
        meta.size(),
        ns(meta.mtime(), meta.mtime_nsec()),
        ns(meta.ctime(), meta.ctime_nsec()),
        meta.ino(),
        meta.dev(),
    )
}

/// Digests of file contents keyed by path, persisted between runs.
#[derive(Debug, Default)]
pub struct StatCache {
    entries: HashMap<String, CacheEntry>,
    /// When the loaded cache file was written (its mtime, ns): the racy-git reference time.
    written: Option<i128>,
    dirty: bool,
}

const CACHE_HEADER: &str = "xtask-stat-cache 1";

impl StatCache {
    /// Load the cache at `path`; missing or unreadable means empty (it is only a cache).
    pub fn load(path: &Path) -> StatCache {
        let Ok(file) = File::open(path) else {
            return StatCache::default();
        };
        let written = file.metadata().ok().map(|m| stat_of(&m).1);
        let mut lines = BufReader::new(file).lines();
        if !matches!(lines.next(), Some(Ok(h)) if h == CACHE_HEADER) {
            return StatCache::default();
        }
        let mut entries = HashMap::new();
        for line in lines.map_while(Result::ok) {
            let f: Vec<&str> = line.split('\t').collect();
            let [p, size, mtime, ctime, ino, dev, sha] = f[..] else {
                return StatCache::default();
            };
            let parsed = (|| {
                Some(CacheEntry {
                    size: size.parse().ok()?,
                    mtime: mtime.parse().ok()?,
                    ctime: ctime.parse().ok()?,
                    ino: ino.parse().ok()?,
                    dev: dev.parse().ok()?,
                    sha: sha.to_string(),
                })
            })();
            let Some(entry) = parsed else {
                return StatCache::default();
            };
            entries.insert(p.to_string(), entry);
        }
        StatCache {
            entries,
            written,
            dirty: false,
        }
    }

    /// The cached digest for `path` if its stat is unchanged and it is not racy.
    fn lookup(&self, path: &str, meta: &std::fs::Metadata) -> Option<&str> {
        let entry = self.entries.get(path)?;
        let (size, mtime, ctime, ino, dev) = stat_of(meta);
        let same = entry.size == size
            && entry.mtime == mtime
            && entry.ctime == ctime
            && entry.ino == ino
            && entry.dev == dev;
        // Racy-git rule: a file modified in the same clock tick as the cache write may have
        // changed again after we hashed it without its stat changing.
        let settled = self.written.is_some_and(|w| mtime < w && ctime < w);
        (same && settled).then_some(entry.sha.as_str())
    }

    /// Write the cache atomically if anything changed. Entries are written with the stat taken
    /// before their content was read, so a concurrent edit shows up as a stat change.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        if !self.dirty {
            return Ok(());
        }
        let dir = path.parent().context("stat cache path has no parent")?;
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create `{}`", dir.display()))?;
        let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
        let file =
            File::create(&tmp).with_context(|| format!("cannot write `{}`", tmp.display()))?;
        let mut w = BufWriter::new(file);
        writeln!(w, "{CACHE_HEADER}")?;
        for (p, e) in &self.entries {
            writeln!(
                w,
                "{p}\t{}\t{}\t{}\t{}\t{}\t{}",
                e.size, e.mtime, e.ctime, e.ino, e.dev, e.sha
            )?;
        }
        w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, path)
            .with_context(|| format!("cannot replace `{}`", path.display()))?;
        Ok(())
    }
}

/// Stat every file in parallel and fold (path, size, mtime, ctime, inode, device, mode) of
/// each into a signature. Also says whether every file is *settled*: changed strictly before
/// `stamp` (the filesystem clock at scan start), the racy-git condition for trusting the
/// signature later.
pub fn stat_signature(
    root: &Path,
    files: &[String],
    stamp: i128,
    jobs: usize,
) -> anyhow::Result<(String, bool)> {
    let next = AtomicUsize::new(0);
    let chunks: Vec<anyhow::Result<Vec<(usize, String, bool)>>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..jobs.max(1))
            .map(|_| {
                s.spawn(|| -> anyhow::Result<Vec<(usize, String, bool)>> {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(rel) = files.get(i) else { break };
                        let meta = root
                            .join(rel)
                            .symlink_metadata()
                            .with_context(|| format!("cannot stat input `{rel}`"))?;
                        let (size, mtime, ctime, ino, dev) = stat_of(&meta);
                        let line = format!(
                            "{rel}\0{size}\0{mtime}\0{ctime}\0{ino}\0{dev}\0{}\n",
                            meta.mode()
                        );
                        out.push((i, line, mtime < stamp && ctime < stamp));
                    }
                    Ok(out)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("stat worker panicked")))
            })
            .collect()
    });
    let mut lines = vec![String::new(); files.len()];
    let mut settled = true;
    for chunk in chunks {
        for (i, line, ok) in chunk? {
            lines[i] = line;
            settled &= ok;
        }
    }
    let mut hasher = Sha256::new();
    for line in &lines {
        hasher.update(line.as_bytes());
    }
    Ok((hex::encode(hasher.finalize()), settled))
}

/// The current time on the filesystem's clock (what it stamps as mtime), read back from a
/// file we just wrote in `dir`. Kernel file timestamps come from a coarse clock that may lag
/// the system clock, so comparing mtimes against `SystemTime::now()` would be unsound.
pub fn fs_now(dir: &Path) -> anyhow::Result<i128> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    let path = dir.join("clock");
    std::fs::write(&path, std::process::id().to_string())
        .with_context(|| format!("cannot write `{}`", path.display()))?;
    let meta = path
        .metadata()
        .with_context(|| format!("cannot stat `{}`", path.display()))?;
    Ok(stat_of(&meta).1)
}

/// Digest of a whole input set: every (path, file digest) in sorted order.
pub fn inputs_digest(inputs: &BTreeMap<String, FileDigest>) -> String {
    let mut hasher = Sha256::new();
    for (path, digest) in inputs {
        hasher.update(path.as_bytes());
        hasher.update(b"\0");
        hasher.update(digest.as_bytes());
        hasher.update(b"\n");
    }
    hex::encode(hasher.finalize())
}

/// The digest of one file as keyed: content SHA-256 (hex) plus `+x` when executable.
pub type FileDigest = String;

/// Digest `files` (root-relative) with `jobs` threads, using and updating `cache`.
pub fn digest_files(
    root: &Path,
    files: &[String],
    cache: &mut StatCache,
    jobs: usize,
) -> anyhow::Result<BTreeMap<String, FileDigest>> {
    let next = AtomicUsize::new(0);
    let fresh: Mutex<Vec<(String, CacheEntry)>> = Mutex::new(Vec::new());
    let cache_ref = &*cache;
    let results: Vec<anyhow::Result<Vec<(usize, FileDigest)>>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..jobs.max(1))
            .map(|_| {
                s.spawn(|| -> anyhow::Result<Vec<(usize, FileDigest)>> {
                    let mut buf = vec![0u8; BUF_SIZE];
                    let mut out = Vec::new();
                    let mut new_entries = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(rel) = files.get(i) else { break };
                        let path = root.join(rel);
                        let meta = path
                            .symlink_metadata()
                            .with_context(|| format!("cannot stat input `{rel}`"))?;
                        let exec = meta.mode() & 0o111 != 0 && !meta.file_type().is_symlink();
                        let sha = match cache_ref.lookup(rel, &meta) {
                            Some(sha) => sha.to_string(),
                            None => {
                                let sha = if meta.file_type().is_symlink() {
                                    let target = std::fs::read_link(&path)
                                        .with_context(|| format!("cannot read link `{rel}`"))?;
                                    hex::encode(Sha256::digest(format!(
                                        "symlink\0{}",
                                        target.display()
                                    )))
                                } else {
                                    hash_file(&path, &mut buf)
                                        .with_context(|| format!("cannot read input `{rel}`"))?
                                };
                                let (size, mtime, ctime, ino, dev) = stat_of(&meta);
                                new_entries.push((
                                    rel.clone(),
                                    CacheEntry {
                                        size,
                                        mtime,
                                        ctime,
                                        ino,
                                        dev,
                                        sha: sha.clone(),
                                    },
                                ));
                                sha
                            }
                        };
                        out.push((i, if exec { format!("{sha}+x") } else { sha }));
                    }
                    if !new_entries.is_empty() {
                        fresh
                            .lock()
                            .map_err(|_| anyhow::anyhow!("hash worker panicked"))?
                            .append(&mut new_entries);
                    }
                    Ok(out)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("hash worker panicked")))
            })
            .collect()
    });
    let mut digests = BTreeMap::new();
    for r in results {
        for (i, d) in r? {
            digests.insert(files[i].clone(), d);
        }
    }
    let fresh = fresh
        .into_inner()
        .map_err(|_| anyhow::anyhow!("hash worker panicked"))?;
    if !fresh.is_empty() {
        cache.dirty = true;
        cache.entries.extend(fresh);
    }
    Ok(digests)
}

fn hash_file(path: &Path, buf: &mut [u8]) -> std::io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    loop {
        let n = file.read(buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("a/**", "a/b/c"));
        assert!(glob_match("**/*.rs", "src/main.rs"));
        assert!(glob_match("**/*.rs", "main.rs"));
        assert!(!glob_match("*.rs", "src/main.rs"));
        assert!(glob_match("src/*.rs", "src/main.rs"));
        assert!(glob_match("f?o", "foo"));
        assert!(glob_match("[a-c]x", "bx"));
        assert!(!glob_match("[!a-c]x", "bx"));
        assert!(glob_match("a/**/z", "a/z"));
        assert!(glob_match("a/**/z", "a/b/c/z"));
        assert_eq!(literal_prefix("a/b/*.rs"), "a/b");
        assert_eq!(literal_prefix("**/x"), "");
    }
}

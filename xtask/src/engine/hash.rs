//! Content digests of input files: parallel, streamed, through the stat cache.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context as _;
use sha2::{Digest, Sha256};

pub use super::glob::{glob_match, literal_prefix};
pub use super::statcache::StatCache;
pub use super::walk::{Expansion, InputFile, Stat, expand, stat_paths, stat_signature};

/// Read size for large files: few syscalls, still cache-friendly.
const BUF_SIZE: usize = 128 * 1024;

/// The current time on the filesystem's clock (what it stamps as mtime), read back from a
/// file we just wrote in `dir`. Kernel file timestamps come from a coarse clock that may lag
/// the system clock, so comparing mtimes against `SystemTime::now()` would be unsound.
pub fn fs_now(dir: &Path) -> anyhow::Result<i64> {
    use std::os::unix::fs::FileExt as _;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    let path = dir.join("clock");
    // Overwrite one byte in place: truncating would make the filesystem free and reallocate
    // blocks (a journal transaction that costs milliseconds on a busy disk).
    let file = File::options()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("cannot write `{}`", path.display()))?;
    file.write_all_at(b"x", 0)
        .with_context(|| format!("cannot write `{}`", path.display()))?;
    let meta = file
        .metadata()
        .with_context(|| format!("cannot stat `{}`", path.display()))?;
    Ok(Stat::of(&meta).mtime)
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

fn file_digest(sha: &[u8; 32], executable: bool) -> FileDigest {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(66);
    for b in sha {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 15)]));
    }
    if executable {
        s.push_str("+x");
    }
    s
}

/// Digest `files` (root-relative, e.g. from a kind) with `jobs` threads, using and updating
/// `cache`: each is stat'ed first, then read only on a cache miss.
pub fn digest_files(
    root: &Path,
    files: &[String],
    cache: &mut StatCache,
    jobs: usize,
) -> anyhow::Result<BTreeMap<String, FileDigest>> {
    let mut found = stat_paths(root, files, jobs)?;
    super::walk::sort_dedup(&mut found);
    let refs: Vec<&InputFile> = found.iter().collect();
    let digests = digest_inputs(root, &refs, cache, jobs)?;
    Ok(found.into_iter().map(|f| f.path).zip(digests).collect())
}

/// Digest `files` (with the stats taken when they were found) with `jobs` threads, reading
/// only those the stat cache cannot vouch for. The result is in the order of `files`.
pub fn digest_inputs(
    root: &Path,
    files: &[&InputFile],
    cache: &mut StatCache,
    jobs: usize,
) -> anyhow::Result<Vec<FileDigest>> {
    let next = AtomicUsize::new(0);
    let fresh: Mutex<Vec<(String, Stat, [u8; 32])>> = Mutex::new(Vec::new());
    let cache_ref = &*cache;
    let work = || -> anyhow::Result<Vec<(usize, FileDigest)>> {
        let mut buf = vec![0u8; BUF_SIZE];
        let mut out = Vec::new();
        let mut new_entries = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(file) = files.get(i) else { break };
            let stat = &file.stat;
            let sha = match cache_ref.lookup(&file.path, stat) {
                Some(sha) => sha,
                None => {
                    let path = root.join(&file.path);
                    let sha = if stat.is_symlink() {
                        let target = std::fs::read_link(&path)
                            .with_context(|| format!("cannot read link `{}`", file.path))?;
                        Sha256::digest(format!("symlink\0{}", target.display())).into()
                    } else {
                        hash_file(&path, stat.size, &mut buf)
                            .with_context(|| format!("cannot read input `{}`", file.path))?
                    };
                    new_entries.push((file.path.clone(), *stat, sha));
                    sha
                }
            };
            out.push((i, file_digest(&sha, stat.is_executable())));
        }
        if !new_entries.is_empty() {
            fresh
                .lock()
                .map_err(|_| anyhow::anyhow!("hash worker panicked"))?
                .append(&mut new_entries);
        }
        Ok(out)
    };
    let jobs = jobs.clamp(1, files.len().max(1));
    let results: Vec<anyhow::Result<Vec<(usize, FileDigest)>>> = if jobs == 1 {
        vec![work()]
    } else {
        std::thread::scope(|s| {
            let workers: Vec<_> = (1..jobs).map(|_| s.spawn(work)).collect();
            let mut results = vec![work()];
            results.extend(workers.into_iter().map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("hash worker panicked")))
            }));
            results
        })
    };
    let mut digests = vec![FileDigest::new(); files.len()];
    for r in results {
        for (i, d) in r? {
            digests[i] = d;
        }
    }
    let fresh = fresh
        .into_inner()
        .map_err(|_| anyhow::anyhow!("hash worker panicked"))?;
    cache.extend(fresh);
    Ok(digests)
}

/// SHA-256 of the file's content. `size` is its stat'ed size: a small file is read in one
/// call, without the extra `read` that would only report end of file. Bytes appended after
/// the stat are not read; the append changed mtime and ctime, so the next run sees it.
fn hash_file(path: &Path, size: u64, buf: &mut [u8]) -> std::io::Result<[u8; 32]> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut total = 0u64;
    loop {
        let n = file.read(buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
        if total == size {
            break;
        }
    }
    Ok(hasher.finalize().into())
}

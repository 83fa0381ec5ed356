//! The stat cache: content digests of files keyed by path, trusted only while the file's
//! (size, mtime, ctime, inode, device) is unchanged.
//!
//! Correctness never rests on it. Like git's racy-timestamp rule, a digest is recorded only for
//! a file whose mtime and ctime are strictly older than the filesystem clock read before the
//! run stat'ed anything (its stamp): a file rewritten in the same clock tick as it was read
//! (same size, same times) would otherwise keep the old digest. Any later change gets a time at
//! or after the stamp, so it never matches a recorded stat; ctime (which no user call can set
//! back) catches a rewrite that restores size and mtime.
//!
//! On disk it is one compact binary file, sorted by path, ending in a SHA-256 of everything
//! before it: a torn or foreign file is detected and ignored, so writing it needs no fsync.

use std::io::Read as _;
use std::path::Path;

use anyhow::Context as _;
use sha2::{Digest, Sha256};

use super::walk::Stat;

// 4: entries are recorded only when settled before the run's stamp (3 checked against the
// cache file's own mtime on load, which trusts a digest read just before a same-tick rewrite).
const MAGIC: &[u8] = b"xtask-stat-cache 4\n";
const CHECKSUM: usize = 32;

/// A cached digest and the stat it was taken under.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    path: String,
    size: u64,
    mtime: i64,
    ctime: i64,
    ino: u64,
    dev: u64,
    sha: [u8; 32],
}

impl Entry {
    fn new(path: String, stat: &Stat, sha: [u8; 32]) -> Entry {
        Entry {
            path,
            size: stat.size,
            mtime: stat.mtime,
            ctime: stat.ctime,
            ino: stat.ino,
            dev: stat.dev,
            sha,
        }
    }
}

/// Digests of file contents keyed by path, persisted between runs.
#[derive(Debug)]
pub struct StatCache {
    /// Sorted by path, unique.
    entries: Vec<Entry>,
    /// The filesystem clock before this run stat'ed any file ([`super::hash::fs_now`]).
    stamp: i64,
    dirty: bool,
}

impl StatCache {
    /// An empty cache for a run whose files were all stat'ed after `stamp`.
    pub fn new(stamp: i64) -> StatCache {
        StatCache {
            entries: Vec::new(),
            stamp,
            dirty: false,
        }
    }

    /// Load the cache at `path` for a run stat'ing after `stamp`; missing, unreadable, torn or
    /// old means empty (it is only a cache).
    pub fn load(path: &Path, stamp: i64) -> StatCache {
        let mut bytes = Vec::new();
        let read = std::fs::File::open(path).and_then(|mut f| f.read_to_end(&mut bytes));
        let entries = read.ok().and_then(|_| parse(&bytes)).unwrap_or_default();
        StatCache {
            entries,
            ..StatCache::new(stamp)
        }
    }

    /// The cached digest of `path` if its stat is unchanged.
    pub fn lookup(&self, path: &str, stat: &Stat) -> Option<[u8; 32]> {
        let i = self
            .entries
            .binary_search_by(|e| e.path.as_str().cmp(path))
            .ok()?;
        let e = &self.entries[i];
        let same = e.size == stat.size
            && e.mtime == stat.mtime
            && e.ctime == stat.ctime
            && e.ino == stat.ino
            && e.dev == stat.dev;
        same.then_some(e.sha)
    }

    /// Record `sha` as the digest of `path` under `stat`, which must have been taken before
    /// the content was read (so a concurrent edit shows up as a stat change). Not recorded when
    /// the file changed at or after the stamp: it may have changed again, within the same
    /// clock tick, after it was read.
    pub fn insert(&mut self, path: &str, stat: &Stat, sha: [u8; 32]) {
        self.extend(vec![(path.to_string(), *stat, sha)]);
    }

    /// [`StatCache::insert`] for many files at once.
    pub fn extend(&mut self, fresh: Vec<(String, Stat, [u8; 32])>) {
        if fresh.is_empty() {
            return;
        }
        let mut all: Vec<Entry> = fresh
            .into_iter()
            .filter(|(_, s, _)| s.settled(self.stamp))
            .map(|(p, s, sha)| Entry::new(p, &s, sha))
            .collect();
        all.append(&mut self.entries);
        // Stable: for a repeated path the fresh entry (placed first) is kept.
        all.sort_by(|a, b| a.path.cmp(&b.path));
        all.dedup_by(|later, kept| later.path == kept.path);
        self.entries = all;
        self.dirty = true;
    }

    /// Write the cache atomically (temp file + rename) if anything changed.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        if !self.dirty {
            return Ok(());
        }
        let dir = path.parent().context("stat cache path has no parent")?;
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create `{}`", dir.display()))?;
        let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
        std::fs::write(&tmp, encode(&self.entries))
            .with_context(|| format!("cannot write `{}`", tmp.display()))?;
        std::fs::rename(&tmp, path)
            .with_context(|| format!("cannot replace `{}`", path.display()))?;
        Ok(())
    }
}

fn encode(entries: &[Entry]) -> Vec<u8> {
    let size: usize = entries.iter().map(|e| 4 + e.path.len() + 72).sum();
    let mut out = Vec::with_capacity(MAGIC.len() + 8 + size + CHECKSUM);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(entries.len() as u64).to_le_bytes());
    for e in entries {
        // Paths come from directory entries and input lists: far below 4 GiB.
        out.extend_from_slice(&(e.path.len() as u32).to_le_bytes());
        out.extend_from_slice(e.path.as_bytes());
        out.extend_from_slice(&e.size.to_le_bytes());
        out.extend_from_slice(&e.mtime.to_le_bytes());
        out.extend_from_slice(&e.ctime.to_le_bytes());
        out.extend_from_slice(&e.ino.to_le_bytes());
        out.extend_from_slice(&e.dev.to_le_bytes());
        out.extend_from_slice(&e.sha);
    }
    let sum = Sha256::digest(&out);
    out.extend_from_slice(&sum);
    out
}

/// The entries of a well-formed cache file, or `None`.
fn parse(bytes: &[u8]) -> Option<Vec<Entry>> {
    let (body, sum) = bytes.split_at_checked(bytes.len().checked_sub(CHECKSUM)?)?;
    if Sha256::digest(body).as_slice() != sum {
        return None;
    }
    let mut r = Reader(body.strip_prefix(MAGIC)?);
    let count = usize::try_from(u64::from_le_bytes(r.array()?)).ok()?;
    // Each entry takes at least 76 bytes: a count beyond that is corrupt, not a reason to
    // allocate.
    let mut entries = Vec::with_capacity(count.min(r.0.len() / 76));
    for _ in 0..count {
        let len = u32::from_le_bytes(r.array()?) as usize;
        let path = std::str::from_utf8(r.take(len)?).ok()?.to_string();
        let entry = Entry {
            path,
            size: u64::from_le_bytes(r.array()?),
            mtime: i64::from_le_bytes(r.array()?),
            ctime: i64::from_le_bytes(r.array()?),
            ino: u64::from_le_bytes(r.array()?),
            dev: u64::from_le_bytes(r.array()?),
            sha: r.array()?,
        };
        // Lookups binary-search: the order is part of the format.
        if entries.last().is_some_and(|l: &Entry| l.path >= entry.path) {
            return None;
        }
        entries.push(entry);
    }
    r.0.is_empty().then_some(entries)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = self.0.split_at_checked(n)?;
        self.0 = tail;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(n: u64) -> Stat {
        Stat {
            size: n,
            mtime: 1,
            ctime: 2,
            ino: n,
            dev: 9,
            mode: 0o100_644,
        }
    }

    #[test]
    fn round_trip_and_corruption() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("cache");
        let mut cache = StatCache::new(3);
        cache.extend(vec![
            ("b".into(), stat(2), [2; 32]),
            ("a".into(), stat(1), [1; 32]),
        ]);
        cache.insert("b", &stat(3), [3; 32]);
        // Changed at the stamp (a same-tick rewrite after the read is possible): not recorded.
        cache.insert(
            "racy",
            &Stat {
                ctime: 3,
                ..stat(4)
            },
            [4; 32],
        );
        cache.save(&path).expect("save");
        let loaded = StatCache::load(&path, 3);
        assert_eq!(loaded.entries, cache.entries);
        assert_eq!(loaded.entries.len(), 2);
        assert_eq!(loaded.lookup("b", &stat(3)), Some([3; 32]));
        assert_eq!(loaded.lookup("b", &stat(2)), None, "stat changed");
        assert_eq!(loaded.lookup("c", &stat(3)), None);
        assert_eq!(
            loaded.lookup(
                "racy",
                &Stat {
                    ctime: 3,
                    ..stat(4)
                }
            ),
            None
        );

        let mut bytes = std::fs::read(&path).expect("read");
        let mid = bytes.len() / 2;
        bytes[mid] ^= 1;
        std::fs::write(&path, &bytes).expect("write");
        assert!(StatCache::load(&path, 3).entries.is_empty(), "flipped bit");
        std::fs::write(&path, &bytes[..mid]).expect("write");
        assert!(StatCache::load(&path, 3).entries.is_empty(), "torn file");
    }
}

//! Watching the project for changes: file-system notifications (`notify`: inotify, FSEvents,
//! ...), debounced (`notify-debouncer-mini`) so that an editor's save, several writes and
//! renames, arrives as one batch of paths. What is watched follows the inputs it is given: the
//! top-level directories that hold them (recursively) and the root itself (its own files, and
//! new directories). Some directories are never watched nor reported: the pipeline's own
//! output (`target/`, the state directory) and `.git/`. The system also reports opens and reads
//! (planning and building read every input), so whether a reported file changed is decided by
//! its stat ([`Stamps`]), as git's index does.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use notify::{RecommendedWatcher, RecursiveMode};
use notify_debouncer_mini::{DebounceEventResult, Debouncer, new_debouncer};

use crate::engine::walk::Stat;

/// How often a wait looks at the cancel flag.
const POLL: Duration = Duration::from_millis(100);

/// What changed since the last look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changes {
    /// These root-relative paths (`/` separators) were written, created, removed or renamed.
    Paths(BTreeSet<String>),
    /// Notifications were lost (the kernel's queue overflowed): anything may have changed.
    Unknown(String),
}

/// A debounced watch of a project root.
pub struct Watcher {
    root: PathBuf,
    ignored: Vec<PathBuf>,
    debouncer: Debouncer<RecommendedWatcher>,
    rx: mpsc::Receiver<DebounceEventResult>,
    watched: BTreeSet<PathBuf>,
}

impl Watcher {
    /// A watch of `root` (nothing under it yet but the root's own entries) whose bursts of
    /// changes end after `quiet` without one; nothing under `ignored` is ever watched or
    /// reported.
    pub fn new(root: &Path, ignored: &[PathBuf], quiet: Duration) -> Result<Watcher> {
        let root = std::fs::canonicalize(root)
            .with_context(|| format!("resolving the project root {}", root.display()))?;
        let ignored = ignored
            .iter()
            .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
            .collect();
        let (tx, rx) = mpsc::channel();
        let mut debouncer = new_debouncer(quiet, tx)
            .context("cannot watch files: the system's file notifications are unavailable")?;
        debouncer
            .watcher()
            .watch(&root, RecursiveMode::NonRecursive)
            .with_context(|| format!("cannot watch {}", root.display()))?;
        Ok(Watcher {
            root,
            ignored,
            debouncer,
            rx,
            watched: BTreeSet::new(),
        })
    }

    /// Also watches, recursively, every top-level directory holding one of `inputs`
    /// (root-relative paths). Directories watched before stay watched.
    pub fn cover(&mut self, inputs: &BTreeSet<String>) -> Result<()> {
        let tops: BTreeSet<PathBuf> = inputs
            .iter()
            .filter_map(|p| {
                let mut parts = Path::new(p).components();
                let first = parts.next()?;
                // A file directly in the root is seen by the root's own watch.
                parts.next()?;
                match first {
                    Component::Normal(dir) => Some(self.root.join(dir)),
                    _ => None,
                }
            })
            .collect();
        for dir in tops {
            if self.watched.contains(&dir) || self.is_ignored(&dir) || !dir.is_dir() {
                continue;
            }
            self.debouncer
                .watcher()
                .watch(&dir, RecursiveMode::Recursive)
                .with_context(|| {
                    format!(
                        "cannot watch {} (on Linux, raise fs.inotify.max_user_watches)",
                        dir.display()
                    )
                })?;
            self.watched.insert(dir);
        }
        Ok(())
    }

    /// Waits for the next burst of changes and returns it with every burst already waiting;
    /// `None` once `cancel` is set.
    pub fn next(&self, cancel: &AtomicBool) -> Result<Option<Changes>> {
        loop {
            if cancel.load(Ordering::SeqCst) {
                return Ok(None);
            }
            match self.rx.recv_timeout(POLL) {
                Ok(first) => {
                    let mut changes = self.changes(first);
                    while let Ok(more) = self.rx.try_recv() {
                        changes = merge(changes, self.changes(more));
                    }
                    if matches!(&changes, Changes::Paths(p) if p.is_empty()) {
                        continue;
                    }
                    return Ok(Some(changes));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    anyhow::bail!("the file watcher stopped");
                }
            }
        }
    }

    fn changes(&self, result: DebounceEventResult) -> Changes {
        match result {
            Ok(events) => Changes::Paths(
                events
                    .into_iter()
                    .filter_map(|e| self.relative(&e.path))
                    .collect(),
            ),
            Err(e) => Changes::Unknown(e.to_string()),
        }
    }

    /// `path` relative to the root with `/` separators, unless it is ignored or outside.
    fn relative(&self, path: &Path) -> Option<String> {
        if self.is_ignored(path) {
            return None;
        }
        let rel = path.strip_prefix(&self.root).ok()?;
        let parts: Vec<&str> = rel
            .components()
            .map(|c| match c {
                Component::Normal(s) => s.to_str(),
                _ => None,
            })
            .collect::<Option<_>>()?;
        (!parts.is_empty()).then(|| parts.join("/"))
    }

    fn is_ignored(&self, path: &Path) -> bool {
        self.ignored.iter().any(|i| path.starts_with(i))
    }
}

/// The stat of each file when last looked at (`None`: absent). A file reported by a
/// notification changed only if its stat differs: reading it changes nothing, writing it
/// changes its mtime and ctime, replacing it its inode.
#[derive(Debug, Default)]
pub struct Stamps(BTreeMap<String, Option<Stat>>);

impl Stamps {
    /// The stats of `paths` (root-relative) now.
    pub fn of<'a>(root: &Path, paths: impl IntoIterator<Item = &'a String>) -> Stamps {
        Stamps(
            paths
                .into_iter()
                .map(|p| (p.clone(), stat(root, p)))
                .collect(),
        )
    }

    /// Those of `paths` whose stat differs from the last one seen (a path never seen counts
    /// as changed), remembering the new stats.
    pub fn changed(&mut self, root: &Path, paths: Vec<String>) -> Vec<String> {
        paths
            .into_iter()
            .filter(|p| {
                let now = stat(root, p);
                self.0.insert(p.clone(), now) != Some(now)
            })
            .collect()
    }
}

fn stat(root: &Path, rel: &str) -> Option<Stat> {
    std::fs::symlink_metadata(root.join(rel))
        .ok()
        .map(|m| Stat::of(&m))
}

fn merge(a: Changes, b: Changes) -> Changes {
    match (a, b) {
        (Changes::Paths(mut a), Changes::Paths(b)) => {
            a.extend(b);
            Changes::Paths(a)
        }
        (u @ Changes::Unknown(_), _) | (_, u @ Changes::Unknown(_)) => u,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn wait(w: &Watcher) -> BTreeSet<String> {
        let cancel = AtomicBool::new(false);
        match w.next(&cancel).unwrap().unwrap() {
            Changes::Paths(p) => p,
            Changes::Unknown(e) => panic!("lost notifications: {e}"),
        }
    }

    #[test]
    fn a_burst_arrives_as_one_batch_without_ignored_paths() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("src/deep")).unwrap();
        std::fs::create_dir_all(root.join("target/xtask")).unwrap();
        std::fs::write(root.join("src/deep/a.rs"), "a").unwrap();
        let mut w = Watcher::new(root, &[root.join("target")], Duration::from_millis(200)).unwrap();
        w.cover(&BTreeSet::from([
            "src/deep/a.rs".to_owned(),
            "top.toml".to_owned(),
        ]))
        .unwrap();
        assert_eq!(w.watched.len(), 1);
        // An editor's save: a temporary file renamed over the original, plus a top-level file.
        std::fs::write(root.join("src/deep/.a.rs.tmp"), "b").unwrap();
        std::fs::rename(root.join("src/deep/.a.rs.tmp"), root.join("src/deep/a.rs")).unwrap();
        std::fs::write(root.join("top.toml"), "t").unwrap();
        std::fs::write(root.join("target/xtask/state.json"), "{}").unwrap();
        let mut seen = wait(&w);
        // Batches of one burst may straddle a debounce tick: collect until both are seen.
        while !(seen.contains("src/deep/a.rs") && seen.contains("top.toml")) {
            seen.extend(wait(&w));
        }
        assert!(seen.iter().all(|p| !p.starts_with("target")), "{seen:?}");
        assert!(seen.contains("src/deep/.a.rs.tmp"), "{seen:?}");
    }

    #[test]
    fn a_read_is_no_change_a_write_a_removal_and_a_new_file_are() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("a"), "1").unwrap();
        std::fs::write(root.join("b"), "1").unwrap();
        let mut stamps = Stamps::of(root, &["a".to_owned(), "b".to_owned()]);
        let _ = std::fs::read(root.join("a")).unwrap();
        assert!(
            stamps
                .changed(root, vec!["a".into(), "b".into()])
                .is_empty()
        );
        std::fs::write(root.join("a"), "22").unwrap();
        std::fs::remove_file(root.join("b")).unwrap();
        std::fs::write(root.join("c"), "new").unwrap();
        assert_eq!(
            stamps.changed(root, vec!["a".into(), "b".into(), "c".into()]),
            ["a", "b", "c"]
        );
        assert!(
            stamps
                .changed(root, vec!["a".into(), "b".into(), "c".into()])
                .is_empty()
        );
    }

    #[test]
    fn cancel_ends_the_wait() {
        let dir = tempfile::tempdir().unwrap();
        let w = Watcher::new(dir.path(), &[], Duration::from_millis(50)).unwrap();
        assert_eq!(w.next(&AtomicBool::new(true)).unwrap(), None);
    }
}

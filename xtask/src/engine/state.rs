//! Recorded results under `target/xtask/<target-id>/`: atomic writes and the target's lock.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use super::task::Outputs;
use crate::error::Error;

/// Bumped when the state layout changes; older state is discarded with a notice.
pub const STATE_VERSION: u32 = 2;

const STATE_FILE: &str = "state.json";
const LOCK_FILE: &str = "lock";

/// What a successful run of a task recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The key it ran under.
    pub key: String,
    /// Digest of its canonical declaration.
    pub declaration: String,
    /// Engine key version.
    pub engine: u32,
    /// Digest of the input set (per-file digests are in `inputs/<task>.json`, read only to
    /// explain a change, so a no-op plan never loads them).
    pub inputs: String,
    /// Stat signature of the input set, when every file was settled (racy-git rule): equal
    /// signature means equal inputs without reading a byte.
    pub stat_sig: Option<String>,
    /// Dependency name → key.
    pub deps: BTreeMap<String, String>,
    /// Kind material name → digest of its value (values may be sensitive; only digests are kept).
    pub material: BTreeMap<String, String>,
    /// What the task produced.
    pub outputs: Outputs,
    /// Seconds since the Unix epoch.
    pub recorded_at: u64,
}

/// Every recorded task of one target.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// [`STATE_VERSION`].
    pub version: u32,
    /// Task name → its last successful run.
    pub tasks: BTreeMap<String, Record>,
}

impl State {
    /// Load the state in `dir`; missing is empty, corrupt or old is discarded with a notice.
    pub fn load(dir: &Path) -> State {
        let path = dir.join(STATE_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return State::empty(),
            Err(e) => {
                eprintln!(
                    "notice: cannot read `{}` ({e}); every task will run",
                    path.display()
                );
                return State::empty();
            }
        };
        #[derive(Deserialize)]
        struct Version {
            version: u32,
        }
        match serde_json::from_str::<Version>(&text) {
            Ok(Version { version }) if version != STATE_VERSION => {
                eprintln!(
                    "notice: discarding `{}` written by another xtask version ({version}, now {STATE_VERSION}); every task will run",
                    path.display()
                );
                return State::empty();
            }
            _ => {}
        }
        match serde_json::from_str::<State>(&text) {
            Ok(state) => state,
            Err(e) => {
                eprintln!(
                    "notice: discarding corrupt `{}` ({e}); every task will run",
                    path.display()
                );
                State::empty()
            }
        }
    }

    fn empty() -> State {
        State {
            version: STATE_VERSION,
            tasks: BTreeMap::new(),
        }
    }

    /// Write the state atomically (temp file in the same directory, fsync, rename).
    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create `{}`", dir.display()))?;
        let path = dir.join(STATE_FILE);
        let tmp = dir.join(format!("{STATE_FILE}.tmp.{}", std::process::id()));
        let json = serde_json::to_vec(self).context("serializing state")?;
        write_synced(&tmp, &json)?;
        std::fs::rename(&tmp, &path)
            .with_context(|| format!("cannot replace `{}`", path.display()))?;
        Ok(())
    }
}

/// Record the per-file digests of `task`'s inputs (atomically), to explain later changes.
pub fn save_inputs(
    dir: &Path,
    task: &str,
    inputs: &BTreeMap<String, String>,
) -> anyhow::Result<()> {
    let dir = dir.join("inputs");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    let path = dir.join(format!("{task}.json"));
    let tmp = dir.join(format!("{task}.json.tmp.{}", std::process::id()));
    write_synced(
        &tmp,
        &serde_json::to_vec(inputs).context("serializing inputs")?,
    )?;
    std::fs::rename(&tmp, &path).with_context(|| format!("cannot replace `{}`", path.display()))?;
    Ok(())
}

/// The per-file digests recorded for `task`, if readable.
pub fn load_inputs(dir: &Path, task: &str) -> Option<BTreeMap<String, String>> {
    let text = std::fs::read(dir.join("inputs").join(format!("{task}.json"))).ok()?;
    serde_json::from_slice(&text).ok()
}

fn write_synced(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut f = File::create(path).with_context(|| format!("cannot write `{}`", path.display()))?;
    f.write_all(data)
        .with_context(|| format!("cannot write `{}`", path.display()))?;
    f.sync_all()
        .with_context(|| format!("cannot sync `{}`", path.display()))?;
    Ok(())
}

/// Forget every recorded result of the target whose state lives in `dir`.
pub fn forget(dir: &Path) -> anyhow::Result<bool> {
    let path = dir.join(STATE_FILE);
    let _ = std::fs::remove_dir_all(dir.join("inputs"));
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("cannot remove `{}`", path.display())),
    }
}

/// An exclusive lock on one target, released when dropped (also by the OS if we crash).
#[derive(Debug)]
pub struct Lock {
    _file: File,
    /// The lock file.
    pub path: PathBuf,
}

impl Lock {
    /// Take the lock of the target whose state lives in `dir`: wait with a message, or fail
    /// with [`Error::Locked`] when `no_wait`.
    pub fn acquire(dir: &Path, target: &str, no_wait: bool) -> anyhow::Result<Lock> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create `{}`", dir.display()))?;
        let path = dir.join(LOCK_FILE);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open lock `{}`", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                if no_wait {
                    return Err(Error::Locked {
                        target: target.to_string(),
                        lock: path,
                    }
                    .into());
                }
                eprintln!(
                    "waiting for another xtask run on target `{target}` to finish (lock `{}`)",
                    path.display()
                );
                file.lock()
                    .with_context(|| format!("cannot lock `{}`", path.display()))?;
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock `{}`", path.display()));
            }
        }
        Ok(Lock { _file: file, path })
    }
}

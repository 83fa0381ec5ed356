//! The engine: declaration → validated graph → hashes → plan → execution → events.
//!
//! It knows nothing of what is built on it: the kinds come in a [`Registry`], what the tasks act
//! on is any [`Target`], events go to the [`EventSink`] the caller passes, and Ctrl-C reaches it
//! only as the [`Session::cancel`] flag that the caller sets.

pub mod decl;
pub mod events;
pub mod exec;
pub mod glob;
pub mod graph;
pub mod hash;
pub mod inputs;
pub mod key;
pub mod plan;
pub mod statcache;
pub mod state;
pub mod task;
pub mod walk;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context as _;

use crate::error::{Diagnostic, Error};

pub use events::{Event, EventSink};
pub use exec::{RunOptions, RunReport, run_tasks};
pub use graph::Graph;
pub use inputs::input_paths;
pub use plan::{Decision, Locked, Plan, PlannedTask, plan_locked, plan_tasks};
pub use task::{CheckCx, KeyCx, LoadCx, Outputs, Registry, RunCx, Target, Task, TaskKind};

/// The engine's run-wide values (safe to share across threads).
#[derive(Debug)]
pub struct Session {
    /// The project root; every relative path is relative to it.
    pub root: PathBuf,
    /// How many tasks may run at once.
    pub jobs: usize,
    /// Fail at once instead of waiting when another run holds the target's lock.
    pub no_wait: bool,
    /// Ask tasks to re-resolve what their keys read from outside the tree (a kind decides
    /// what that is: `docker-image` pulls its base images) instead of using what is at hand.
    pub refresh: bool,
    /// Set on Ctrl-C (by the caller); running children are terminated and no new task starts.
    pub cancel: Arc<AtomicBool>,
    /// Run-wide parameters the caller sets by name (the build profile); kinds that read one
    /// key on it, so a different value never reuses a result made with another.
    pub params: BTreeMap<String, String>,
}

impl Session {
    /// A session for the project at `root`: as many jobs as cores, waiting for the lock.
    pub fn new(root: PathBuf) -> Session {
        Session {
            root,
            jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
            no_wait: false,
            refresh: false,
            cancel: Arc::new(AtomicBool::new(false)),
            params: BTreeMap::new(),
        }
    }

    /// `xtask/pipeline.toml` under the root.
    pub fn pipeline_file(&self) -> PathBuf {
        self.root.join("xtask").join("pipeline.toml")
    }

    /// `target/xtask/` under the root: state of every target and the stat cache.
    pub fn xtask_dir(&self) -> PathBuf {
        self.root.join("target").join("xtask")
    }

    /// `target/xtask/<target-id>/`: the recorded results of one target.
    pub fn state_dir(&self, target: &impl Target) -> PathBuf {
        self.xtask_dir().join(target.id())
    }
}

/// Load and validate `xtask/pipeline.toml` with the kinds and targets of `registry` (exit code
/// 2 with carets on any problem).
pub fn load<T>(session: &Session, registry: &Registry<T>) -> anyhow::Result<Graph<T>> {
    let (path, text) = read_declaration(session)?;
    let tasks = decl::parse(&session.root, &text, registry)
        .map_err(|d| declaration(session, &path, &text, d))?;
    Graph::build(tasks, registry.targets).map_err(|d| declaration(session, &path, &text, d).into())
}

/// [`load`], pruned to the tasks of `target`.
pub fn load_for<T: Target>(
    session: &Session,
    registry: &Registry<T>,
    target: &T,
) -> anyhow::Result<Graph<T>> {
    prune(session, load(session, registry)?, target.name())
}

/// `graph` pruned to the target named `target` ([`Graph::prune`]), its problems rendered
/// against the declaration like [`load`]'s.
pub fn prune<T>(session: &Session, graph: Graph<T>, target: &str) -> anyhow::Result<Graph<T>> {
    graph.prune(target).map_err(|d| {
        let (path, text) = read_declaration(session).unwrap_or_default();
        declaration(session, &path, &text, d).into()
    })
}

fn read_declaration(session: &Session) -> anyhow::Result<(PathBuf, String)> {
    let path = session.pipeline_file();
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "cannot read `{}`; it declares the pipeline's tasks",
            path.display()
        )
    })?;
    Ok((path, text))
}

fn declaration(session: &Session, path: &Path, text: &str, diagnostics: Vec<Diagnostic>) -> Error {
    Error::Declaration {
        file: path
            .strip_prefix(&session.root)
            .unwrap_or(path)
            .to_path_buf(),
        text: text.to_owned(),
        diagnostics,
    }
}

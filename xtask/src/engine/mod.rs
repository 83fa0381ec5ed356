//! The engine: declaration → validated graph → hashes → plan → execution → events → rendering.

pub mod decl;
pub mod events;
pub mod exec;
pub mod glob;
pub mod graph;
pub mod hash;
pub mod key;
pub mod plan;
pub mod statcache;
pub mod state;
pub mod walk;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::Context as _;
use xshell::Shell;

use crate::cli::GlobalOpts;
use crate::error::Error;
use crate::target::Target;

pub use exec::{RunOptions, RunReport, run_tasks};
pub use graph::Graph;
pub use plan::{Decision, Plan, PlannedTask, plan_tasks};

/// Run-wide values shared by commands, the engine and task kinds (safe to share across threads).
#[derive(Debug)]
pub struct Session {
    /// The project root; every relative path is relative to it.
    pub root: PathBuf,
    /// The global command-line options.
    pub opts: GlobalOpts,
    /// Set by Ctrl-C; running children are terminated and no new task starts.
    pub cancel: Arc<AtomicBool>,
    target: OnceLock<Target>,
    docker_env: Mutex<Option<BTreeMap<String, String>>>,
}

impl Session {
    /// A session for the project at `root`.
    pub fn new(root: PathBuf, opts: GlobalOpts) -> Session {
        Session {
            root,
            opts,
            cancel: Arc::new(AtomicBool::new(false)),
            target: OnceLock::new(),
            docker_env: Mutex::new(None),
        }
    }

    /// The resolved `--target` (resolved once, on first use, so `graph` and `test` never probe).
    pub fn target(&self, sh: &Shell) -> anyhow::Result<&Target> {
        if let Some(t) = self.target.get() {
            return Ok(t);
        }
        let t = Target::resolve(sh, &self.opts)?;
        Ok(self.target.get_or_init(|| t))
    }

    /// Environment for `docker` child processes so they talk to the target's daemon (Minikube's
    /// `docker-env`); empty for the local daemon. Computed once per run.
    pub fn docker_env(&self, sh: &Shell) -> anyhow::Result<BTreeMap<String, String>> {
        let mut cached = self
            .docker_env
            .lock()
            .map_err(|_| anyhow::anyhow!("docker-env cache poisoned"))?;
        if let Some(env) = cached.as_ref() {
            return Ok(env.clone());
        }
        let env = crate::target::docker_env(sh, self.target(sh)?)?;
        *cached = Some(env.clone());
        Ok(env)
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
    pub fn state_dir(&self, target: &Target) -> PathBuf {
        self.xtask_dir().join(target.id())
    }

    /// `-j N`, default the number of cores.
    pub fn jobs(&self) -> usize {
        self.opts
            .jobs
            .filter(|&j| j > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    }
}

/// Load and validate `xtask/pipeline.toml` (exit code 2 with carets on any problem).
pub fn load(session: &Session) -> anyhow::Result<Graph> {
    let path = session.pipeline_file();
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "cannot read `{}`; it declares the pipeline's tasks",
            path.display()
        )
    })?;
    let shown = path
        .strip_prefix(&session.root)
        .unwrap_or(&path)
        .to_path_buf();
    let fail = |diagnostics| Error::Declaration {
        file: shown.clone(),
        text: text.clone(),
        diagnostics,
    };
    let tasks = decl::parse(&session.root, &text).map_err(fail)?;
    Ok(Graph::build(tasks).map_err(fail)?)
}

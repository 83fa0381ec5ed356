//! What the xtask integration tests share beyond `test-support`: throwaway projects run with
//! the real binary, the Python tools' virtualenvs, and the Docker target's lock.
#![allow(dead_code, clippy::unwrap_used)]

pub mod pyvenv;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};

pub use test_support::{Run, Xtask};

/// A throwaway project root with `xtask/pipeline.toml`.
pub struct Project {
    /// The temp dir (removed on drop).
    pub dir: tempfile::TempDir,
}

impl Project {
    /// A project whose pipeline is `pipeline`.
    pub fn new(pipeline: &str) -> Project {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("xtask")).unwrap();
        let p = Project { dir };
        p.set_pipeline(pipeline);
        p
    }

    /// The project root.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Absolute path of `rel`.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Replace `xtask/pipeline.toml`.
    pub fn set_pipeline(&self, text: &str) {
        std::fs::write(self.path("xtask/pipeline.toml"), text).unwrap();
    }

    /// Write `rel` (creating parent directories).
    pub fn write(&self, rel: &str, content: &str) {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    /// Read `rel`.
    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap()
    }

    /// The real xtask binary rooted here on the Docker target, without colours.
    pub fn command(&self, args: &[&str]) -> Command {
        Xtask::new(self.root()).command(args)
    }

    /// Run xtask with `args` and collect its output.
    pub fn xtask(&self, args: &[&str]) -> Run {
        Xtask::new(self.root()).run(args)
    }

    /// `run --json TASKS...`.
    pub fn run_json(&self, tasks: &[&str]) -> Run {
        let mut args = vec!["--json", "run"];
        args.extend(tasks);
        self.xtask(&args)
    }

    /// The state file of the Docker target.
    pub fn state_file(&self) -> PathBuf {
        self.path("target/xtask/docker-todo-app/state.json")
    }
}

/// Held by each test that deploys the whole app on the Docker target: those tests build the
/// same images, and `down --images` removes every image of ours that no container uses, so they
/// run one at a time (the binary runs its tests in parallel threads).
pub fn one_deployment_at_a_time() -> MutexGuard<'static, ()> {
    static DEPLOYMENTS: Mutex<()> = Mutex::new(());
    DEPLOYMENTS.lock().unwrap_or_else(|e| e.into_inner())
}

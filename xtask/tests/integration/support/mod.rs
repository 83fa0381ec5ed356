//! What the xtask integration tests share beyond `test-support`: throwaway projects run with
//! the real binary, the Python tools' virtualenvs, and the Docker target's images and lock.
#![allow(dead_code, clippy::unwrap_used)]

pub mod pyvenv;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};

pub use test_support::{Run, Xtask};
use test_support::{docker::docker_ok, lines};

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

/// IDs of our images: labelled part-of todo-app and built for one of the repositories the
/// pipeline declares (`todo-backend`, `todo-frontend`), untagged intermediates included, except
/// images (and their parent layers) that some container uses: those belong to another
/// deployment on the same daemon, which `down` must not break.
pub fn our_images() -> Vec<String> {
    let mut in_use = std::collections::BTreeSet::new();
    for id in lines(&docker_ok(&["ps", "--all", "-q"])) {
        // Other tests and checkouts share the daemon: a container (or its image) listed a
        // moment ago may be gone by now, and then it uses nothing.
        let inspect = test_support::docker::docker(&["inspect", "--format", "{{.Image}}", &id]);
        if !inspect.status.success() {
            continue;
        }
        let image = String::from_utf8_lossy(&inspect.stdout).trim().to_owned();
        let history = test_support::docker::docker(&["history", "-q", "--no-trunc", &image]);
        for layer in lines(&String::from_utf8_lossy(&history.stdout)) {
            in_use.insert(layer);
        }
    }
    let mut ids = Vec::new();
    for repo in ["todo-backend", "todo-frontend"] {
        let label = format!("label=dev.todo-app.image={repo}");
        ids.extend(lines(&docker_ok(&[
            "image",
            "ls",
            "--all",
            "--no-trunc",
            "--filter",
            "label=app.kubernetes.io/part-of=todo-app",
            "--filter",
            &label,
            "--format",
            "{{.ID}}",
        ])));
    }
    ids.retain(|id| !in_use.contains(id));
    ids
}

//! Shared helpers for xtask integration tests: temp projects, running the real binary, skips.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

mod prereq;
// Each test binary compiles this module and uses part of it.
#[allow(unused_imports)]
pub use prereq::{docker_daemon, in_ci, prerequisite, runs};

/// Whether `tool` is on PATH; see [`prerequisite`] for what happens when it is not.
pub fn require_tool(test: &str, tool: &str, install: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()));
    prerequisite(found, test, tool, &format!("install {install}"))
}

/// A throwaway project root with `xtask/pipeline.toml`.
pub struct Project {
    /// The temp dir (removed on drop).
    pub dir: tempfile::TempDir,
}

/// Output of one xtask invocation.
#[derive(Debug)]
pub struct Run {
    /// Exit code (None when killed by a signal).
    pub code: Option<i32>,
    /// Stdout as text.
    pub stdout: String,
    /// Stderr as text.
    pub stderr: String,
}

impl Run {
    /// Assert success, showing both streams otherwise.
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code,
            Some(0),
            "xtask failed:\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// The JSON events on stdout (with `--json`).
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
            .collect()
    }

    /// Names of tasks with event `kind` (`started`, `fresh`, ...), in order.
    pub fn tasks_with(&self, kind: &str) -> Vec<String> {
        self.events()
            .iter()
            .filter(|e| e["event"] == kind)
            .map(|e| e["task"].as_str().unwrap().to_string())
            .collect()
    }

    /// The `reason` of the `started` event of `task`.
    pub fn reason_of(&self, task: &str) -> String {
        self.events()
            .iter()
            .find(|e| e["event"] == "started" && e["task"] == task)
            .unwrap_or_else(|| panic!("`{task}` did not start:\n{}", self.stdout))["reason"]
            .as_str()
            .unwrap()
            .to_string()
    }
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

    /// The real xtask binary rooted here on the Docker target, without colors or CI mode.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
        cmd.arg("--root")
            .arg(self.root())
            .args(["--target", "docker"])
            .args(args);
        cmd.env("NO_COLOR", "1")
            .env_remove("XTASK_TARGET")
            .current_dir(self.root());
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Run xtask with `args` and collect its output.
    pub fn xtask(&self, args: &[&str]) -> Run {
        let Output {
            status,
            stdout,
            stderr,
        } = self.command(args).output().unwrap();
        Run {
            code: status.code(),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
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

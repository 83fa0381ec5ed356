//! The real `xtask` binary run against a project root (a throwaway project, or a copy of the
//! workspace deployed on the Docker target), and what one run produced.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{docker::docker_ok, free_port, lines};

/// The `xtask` executable cargo built for this test run: `CARGO_BIN_EXE_xtask` when cargo set
/// it at run time, else the binary next to the test executable's `deps/` directory (cargo's
/// own `cargo-test-support` finds its binary the same way).
pub fn bin() -> PathBuf {
    if let Some(path) = std::env::var_os("CARGO_BIN_EXE_xtask") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().unwrap();
    let mut dir = exe.parent().unwrap();
    if dir.ends_with("deps") {
        dir = dir.parent().unwrap();
    }
    let path = dir.join(format!("xtask{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "no xtask binary at {} (run the tests through `cargo test -p xtask`)",
        path.display()
    );
    path
}

/// The xtask binary pointed at one project root, on the Docker target.
pub struct Xtask {
    /// `--root`.
    pub root: PathBuf,
    /// Extra environment for the child (e.g. a marker secret).
    pub env: Vec<(String, String)>,
    /// `--namespace` and `--port` of a deployment (see [`Xtask::deployment`]).
    deployment: Option<(String, u16)>,
}

impl Xtask {
    /// A runner for `root` with xtask's defaults (namespace, port) and no `--json`; the
    /// arguments of each run say the rest.
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
            env: Vec::new(),
            deployment: None,
        }
    }

    /// A runner for a deployment of `root` under its own `--namespace` (which names the Docker
    /// objects, so parallel checkouts never collide) and `--port`, with `--json`; it runs
    /// `down` when dropped.
    pub fn deployment(root: &Path, namespace: &str) -> Self {
        Self {
            root: root.to_path_buf(),
            env: Vec::new(),
            deployment: Some((namespace.to_owned(), free_port())),
        }
    }

    /// The namespace (xtask's default `todo-app` unless a deployment's).
    pub fn namespace(&self) -> &str {
        self.deployment.as_ref().map_or("todo-app", |(ns, _)| ns)
    }

    /// `xtask --root ROOT --target docker [DEPLOYMENT OPTIONS] ARGS`, without colours, stdin
    /// closed, `XTASK_TARGET`, `XTASK_BUILD_PROFILE` and the `XTASK_REGISTRY*` settings removed
    /// and `XTASK_BUILDER` set to [`crate::TEST_BUILDER`] (set them in `env`), in the root.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin());
        cmd.arg("--root")
            .arg(&self.root)
            .args(["--target", "docker"]);
        if let Some((namespace, port)) = &self.deployment {
            cmd.args(["--namespace", namespace])
                .args(["--port", &port.to_string(), "--json"]);
        }
        cmd.args(args)
            .env("NO_COLOR", "1")
            .env_remove("XTASK_TARGET")
            .env_remove("XTASK_BUILD_PROFILE")
            // A developer's registry settings must not send a test's images anywhere.
            .env_remove("XTASK_REGISTRY")
            .env_remove("XTASK_NO_REGISTRY_CACHE")
            .env_remove("XTASK_REGISTRY_INSECURE")
            .env_remove("XTASK_REGISTRY_USERNAME")
            .env_remove("XTASK_REGISTRY_PASSWORD")
            .env("XTASK_BUILDER", crate::TEST_BUILDER)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.root)
            .stdin(Stdio::null());
        cmd
    }

    /// Starts xtask with `args`; its stdout's lines come through the receiver as it writes
    /// them (its stderr goes to the test's).
    pub fn spawn(&self, args: &[&str]) -> (Child, Receiver<String>) {
        let mut child = self
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        (child, rx)
    }

    /// Runs xtask with `args` and collects what it produced.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::of(&mut self.command(args))
    }

    /// The target label value of this deployment's Docker objects.
    pub fn target_label(&self) -> String {
        format!("dev.todo-app.target={}-docker", self.namespace())
    }

    /// Names of this deployment's Docker objects of `kind` (`container`, `network`, `volume`).
    pub fn objects(&self, kind: &str) -> Vec<String> {
        let filter = format!("label={}", self.target_label());
        let mut args = vec![kind, "ls", "--filter", &filter];
        if kind == "container" {
            args.extend(["--all", "--format", "{{.Names}}"]);
        } else {
            args.extend(["--format", "{{.Name}}"]);
        }
        lines(&docker_ok(&args))
    }

    /// The container ID of `role` (`postgres`, `backend`, `frontend`), if it exists.
    pub fn container_id(&self, role: &str) -> Option<String> {
        let name = format!("{}-docker-{role}", self.namespace());
        let out = crate::docker::docker(&["container", "inspect", "--format", "{{.Id}}", &name]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// The image ID of this deployment's Docker container for `role`, if it exists.
    pub fn container_image(&self, role: &str) -> Option<String> {
        let name = format!("{}-docker-{role}", self.namespace());
        let out = crate::docker::docker(&["container", "inspect", "--format", "{{.Image}}", &name]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }
}

impl Drop for Xtask {
    fn drop(&mut self) {
        // Best effort, also after a failed assertion: leave none of the deployment's containers
        // or volumes behind.
        // Images stay (their layers are the next test's build cache) unless the test removed
        // them itself.
        if self.deployment.is_some() {
            // The builder, shared by every deployment on the daemon, stays: the next test's
            // compile starts from its cache.
            let _ = self.run(&["down", "--volumes"]);
        }
    }
}

/// What one xtask invocation produced.
#[derive(Debug)]
pub struct Run {
    /// Exit code (None when killed by a signal).
    pub code: Option<i32>,
    /// Stdout as text.
    pub stdout: String,
    /// Stderr as text.
    pub stderr: String,
    /// Wall time.
    pub elapsed: Duration,
}

impl Run {
    /// Runs `cmd` to the end and collects its output and wall time.
    pub fn of(cmd: &mut Command) -> Run {
        let started = Instant::now();
        let Output {
            status,
            stdout,
            stderr,
        } = cmd.output().expect("run xtask");
        Run {
            code: status.code(),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            elapsed: started.elapsed(),
        }
    }

    /// Asserts success, showing both streams otherwise; chains by value.
    #[track_caller]
    pub fn ok(self) -> Run {
        self.assert_ok("xtask");
        self
    }

    /// Asserts that `what` succeeded, showing both streams otherwise; chains by reference.
    #[track_caller]
    pub fn assert_ok(&self, what: &str) -> &Self {
        assert_eq!(
            self.code,
            Some(0),
            "{what} failed\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// Asserts that every stdout line is one JSON object (the `--json` contract): a table or
    /// notice printed to stdout would break every consumer that reads events line by line.
    #[track_caller]
    pub fn assert_json_lines(&self, what: &str) -> &Self {
        for (n, line) in self.stdout.lines().enumerate() {
            let parsed: Result<Value, _> = serde_json::from_str(line);
            assert!(
                parsed.as_ref().is_ok_and(Value::is_object),
                "{what}: stdout line {} is not a JSON object: {line:?}\n--- stdout\n{}",
                n + 1,
                self.stdout
            );
        }
        self
    }

    /// The JSON events on stdout (with `--json`); panics on a line that is not JSON.
    #[track_caller]
    pub fn events(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
            .collect()
    }

    /// The lines of the run's `settled` events: what the target did once the run ended.
    pub fn settled_lines(&self) -> Vec<String> {
        self.events()
            .iter()
            .filter(|e| e["event"] == "settled")
            .flat_map(|e| e["lines"].as_array().unwrap().clone())
            .map(|l| l.as_str().unwrap().to_owned())
            .collect()
    }

    /// Names of the tasks with event `kind` (`started`, `fresh`, `finished`, ...), in order.
    pub fn tasks_with(&self, kind: &str) -> Vec<String> {
        self.events()
            .iter()
            .filter(|e| e["event"] == kind)
            .map(|e| e["task"].as_str().unwrap().to_owned())
            .collect()
    }

    /// The same names as [`Run::tasks_with`], sorted (for runs whose order is the scheduler's).
    pub fn tasks_sorted(&self, kind: &str) -> Vec<String> {
        let mut tasks = self.tasks_with(kind);
        tasks.sort();
        tasks
    }

    /// The `reason` of the `started` event of `task`.
    #[track_caller]
    pub fn reason_of(&self, task: &str) -> String {
        self.events()
            .iter()
            .find(|e| e["event"] == "started" && e["task"] == task)
            .unwrap_or_else(|| panic!("`{task}` did not start:\n{}", self.stdout))["reason"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

//! Shared by the Docker-target tests: prerequisite check (skip, or fail under CI), a throwaway
//! copy of the repository, and a runner for the real `xtask` binary against it.

#![allow(dead_code, clippy::unwrap_used)]

#[path = "../support/prereq.rs"]
mod prereq;
// The Docker-target tests' one prerequisite.
pub use prereq::docker_daemon as docker_available;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The real project root (this crate's parent).
pub fn real_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A copy of the repository's tracked and untracked-but-not-ignored files in a temp dir, so
/// tests can edit sources and keep state without touching the real tree.
pub fn copy_repo() -> tempfile::TempDir {
    let root = real_root();
    let out = Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(&root)
        .output()
        .expect("git ls-files");
    assert!(out.status.success(), "git ls-files failed");
    let dir = tempfile::Builder::new()
        .prefix("xtask-docker-")
        .tempdir()
        .unwrap();
    for rel in out.stdout.split(|b| *b == 0).filter(|p| !p.is_empty()) {
        let rel = Path::new(std::str::from_utf8(rel).unwrap());
        let src = root.join(rel);
        // Deleted-but-tracked files are listed too; skip them.
        let Ok(meta) = std::fs::symlink_metadata(&src) else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        let dst = dir.path().join(rel);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(&src, &dst).unwrap();
    }
    dir
}

/// A free TCP port on loopback (racy by nature, fine for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// What one xtask invocation produced.
#[derive(Debug)]
pub struct Run {
    /// Exit code.
    pub code: Option<i32>,
    /// Stdout.
    pub stdout: String,
    /// Stderr.
    pub stderr: String,
    /// Stdout lines that parse as JSON objects.
    pub events: Vec<serde_json::Value>,
    /// Wall time.
    pub elapsed: Duration,
}

impl Run {
    /// Panics with both streams unless the run succeeded.
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

    /// Panics unless every stdout line is one JSON object (the `--json` contract): a table or
    /// notice printed to stdout would break every consumer that reads events line by line.
    pub fn assert_json_lines(&self, what: &str) -> &Self {
        for (n, line) in self.stdout.lines().enumerate() {
            let parsed: Result<serde_json::Value, _> = serde_json::from_str(line);
            assert!(
                parsed.as_ref().is_ok_and(serde_json::Value::is_object),
                "{what}: stdout line {} is not a JSON object: {line:?}\n--- stdout\n{}",
                n + 1,
                self.stdout
            );
        }
        self
    }

    /// Task names with an event of type `kind` (`started`, `fresh`, `finished`, `failed`).
    pub fn tasks_with(&self, kind: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .events
            .iter()
            .filter(|e| e["event"] == kind)
            .filter_map(|e| e["task"].as_str().map(str::to_owned))
            .collect();
        v.sort();
        v
    }
}

/// The xtask binary pointed at one repository copy, Docker target, own namespace and port.
pub struct Xtask {
    /// Repository copy.
    pub root: PathBuf,
    /// `--namespace`: names the Docker objects, so parallel checkouts never collide.
    pub namespace: String,
    /// `--port`.
    pub port: u16,
    /// Extra environment for the child (e.g. a marker secret).
    pub env: Vec<(String, String)>,
}

impl Xtask {
    /// A runner for `root`.
    pub fn new(root: &Path, namespace: &str) -> Self {
        Self {
            root: root.to_path_buf(),
            namespace: namespace.to_owned(),
            port: free_port(),
            env: Vec::new(),
        }
    }

    /// Runs `cargo xtask ARGS` (the built binary) with the target options and `--json`.
    pub fn run(&self, args: &[&str]) -> Run {
        let started = Instant::now();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
        cmd.arg("--root")
            .arg(&self.root)
            .args(["--target", "docker", "--namespace", &self.namespace])
            .args(["--port", &self.port.to_string(), "--json"])
            .args(args)
            .current_dir(&self.root)
            .env_remove("XTASK_TARGET");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run xtask");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let events = stdout
            .lines()
            .filter(|l| l.trim_start().starts_with('{'))
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        Run {
            code: out.status.code(),
            stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            events,
            elapsed: started.elapsed(),
        }
    }

    /// The target label value of this runner's objects.
    pub fn target_label(&self) -> String {
        format!("dev.todo-app.target={}-docker", self.namespace)
    }

    /// `docker <kind> ls` names filtered by this runner's target label.
    pub fn objects(&self, kind: &str) -> Vec<String> {
        let label = self.target_label();
        let mut args = vec![kind, "ls", "--filter"];
        let filter = format!("label={label}");
        args.push(&filter);
        if kind == "container" {
            args.push("--all");
        }
        args.extend(["--format", "{{.Names}}"]);
        if kind != "container" {
            args.pop();
            args.push("{{.Name}}");
        }
        lines(&docker(&args))
    }

    /// The container ID of `role` (`postgres`, `backend`, `frontend`), if it exists.
    pub fn container_id(&self, role: &str) -> Option<String> {
        let name = format!("{}-docker-{role}", self.namespace);
        let out = Command::new("docker")
            .args(["container", "inspect", "--format", "{{.Id}}", &name])
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }
}

impl Drop for Xtask {
    fn drop(&mut self) {
        // Best effort, also after a failed assertion: leave no containers behind. Images stay
        // (their layers are the next test's build cache) unless the test removed them itself.
        let _ = self.run(&["down"]);
    }
}

/// Runs `docker ARGS`, returning stdout; panics on failure.
pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Non-empty trimmed lines.
pub fn lines(s: &str) -> Vec<String> {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// IDs of our images: labelled part-of todo-app and built for one of the repositories the
/// pipeline declares (`todo-backend`, `todo-frontend`), untagged intermediates included, except
/// images (and their parent layers) that some container uses: those belong to another
/// deployment on the same daemon, which `down` must not break.
pub fn our_images() -> Vec<String> {
    let mut in_use = std::collections::BTreeSet::new();
    for id in lines(&docker(&["ps", "--all", "-q"])) {
        let image = docker(&["inspect", "--format", "{{.Image}}", &id]);
        for layer in lines(&docker(&["history", "-q", "--no-trunc", image.trim()])) {
            in_use.insert(layer);
        }
    }
    let mut ids = Vec::new();
    for repo in ["todo-backend", "todo-frontend"] {
        let label = format!("label=dev.todo-app.image={repo}");
        ids.extend(lines(&docker(&[
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

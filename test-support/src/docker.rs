//! The Docker daemon probe and the `docker` calls the image and target tests make.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::{check, output_text, skip_or_fail};

/// Whether the Docker daemon answers (`docker info`), quietly.
pub fn available() -> bool {
    crate::runs("docker", &["info", "--format", "{{.ID}}"])
}

/// Whether the Docker daemon answers; when it does not, `test` skips (or fails in CI) naming it.
#[track_caller]
pub fn daemon(test: &str) -> bool {
    let up = available();
    if !up {
        skip_or_fail(
            test,
            "a reachable Docker daemon",
            "../shared/ci/provision.sh docker",
        );
    }
    up
}

/// `docker ARGS`, stdin closed, output collected (whatever the exit code).
pub fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("docker runs")
}

/// `docker ARGS`, which must succeed; its trimmed stdout.
#[track_caller]
pub fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    check(&out, &format!("docker {}", args.join(" ")));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Removes the builder named `.0` and its volumes on drop, also after a failed assertion: for a
/// test that compiles in a builder of its own (`--builder`).
pub struct BuilderGone(pub String);

impl Drop for BuilderGone {
    fn drop(&mut self) {
        let _ = docker(&["rm", "--force", &self.0]);
        for volume in ["cargo-registry", "cargo-target", "src"] {
            let _ = docker(&["volume", "rm", &format!("{}-{volume}", self.0)]);
        }
    }
}

/// The namespace of the image tests' deployment (they compile in [`crate::TEST_BUILDER`], like
/// every test).
pub const IMAGE_TESTS_NAMESPACE: &str = "xtask-image-tests";

/// Builds the image of pipeline task `task` (`backend-image`, `frontend-image`) of the project
/// at `root` as `cargo xtask build` does (both binaries compiled in the builder container, the
/// runtime Dockerfile around one), tags it `tag` too, and returns how long it took. Builds the
/// xtask binary first ([`crate::workspace_binary`]). Panics with the run's output on failure.
#[track_caller]
pub fn build(root: &Path, task: &str, tag: &str) -> Duration {
    let started = Instant::now();
    let xtask = crate::workspace_binary("xtask").unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new(xtask)
        .arg("--root")
        .arg(root)
        .args(["--target", "docker", "--namespace", IMAGE_TESTS_NAMESPACE])
        .args(["run", task])
        .env("NO_COLOR", "1")
        .env_remove("XTASK_BUILD_PROFILE")
        .env("XTASK_BUILDER", crate::TEST_BUILDER)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    check(&out, &format!("xtask run {task}"));
    let state = root.join(format!(
        "target/xtask/docker-{IMAGE_TESTS_NAMESPACE}/state.json"
    ));
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    let image = state["tasks"][task]["outputs"]["image"]
        .as_str()
        .unwrap_or_else(|| panic!("{task} recorded no image in {state}"))
        .to_owned();
    docker_ok(&["tag", &image, tag]);
    started.elapsed()
}

/// Asserts that `image` takes at most `max_bytes`, and prints its size.
#[track_caller]
pub fn assert_image_size_at_most(image: &str, max_bytes: u64) {
    let size: u64 = docker_ok(&["image", "inspect", "-f", "{{.Size}}", image])
        .parse()
        .unwrap();
    eprintln!("{image}: {:.1} MB", size as f64 / 1e6);
    assert!(
        size <= max_bytes,
        "{image} is {size} bytes, over {max_bytes}"
    );
}

/// Everything `container` logged so far (stdout, then stderr).
pub fn logs(container: &str) -> String {
    output_text(&docker(&["logs", container]))
}

/// Everything a test created, removed on drop even when an assertion fails; a failing test
/// also prints its containers' last log lines.
#[derive(Default)]
pub struct Cleanup {
    /// Removed with their anonymous volumes.
    pub containers: Vec<String>,
    /// Removed after the containers.
    pub networks: Vec<String>,
    /// Removed last, keeping their parent layers (the next build's cache).
    pub images: Vec<String>,
}

impl Cleanup {
    /// Creates the network `name`, removed on drop.
    pub fn network(&mut self, name: &str) {
        docker_ok(&["network", "create", name]);
        self.networks.push(name.to_owned());
    }

    /// `docker run --detach --name NAME OPTIONS... IMAGE`; the container is removed on drop
    /// (also when it fails to start).
    #[track_caller]
    pub fn run(&mut self, name: &str, options: &[&str], image: &str) {
        self.containers.push(name.to_owned());
        let out = Command::new("docker")
            .args(["run", "--detach", "--name", name])
            .args(options)
            .arg(image)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        check(&out, &format!("docker run {name}"));
    }

    /// Starts `postgres:15-bookworm` as the container `name` on `network` under the alias `db`,
    /// removed on drop, and waits until it accepts connections. Its superuser `postgres` has
    /// `password` (handed over in an env file: secrets never go on a command line); the
    /// database is `postgres`.
    pub fn postgres(&mut self, name: &str, network: &str, password: &str) {
        let mut env = tempfile::NamedTempFile::new().unwrap();
        writeln!(env, "POSTGRES_PASSWORD={password}").unwrap();
        let env_file = env.path().to_str().unwrap();
        let options = ["--network", network, "--network-alias", "db"];
        self.run(
            name,
            &[&options[..], &["--env-file", env_file]].concat(),
            "postgres:15-bookworm",
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        let ready = [
            "exec",
            name,
            "pg_isready",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
        ];
        while !docker(&ready).status.success() {
            assert!(
                Instant::now() < deadline,
                "postgres container {name} not ready"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in &self.containers {
            if std::thread::panicking() {
                let logs = output_text(&docker(&["logs", "--tail", "60", c]));
                eprintln!("--- logs of {c} ---\n{logs}");
            }
            let _ = docker(&["rm", "-f", "-v", c]);
        }
        for n in &self.networks {
            let _ = docker(&["network", "rm", n]);
        }
        for i in &self.images {
            let _ = docker(&["rmi", "--no-prune", i]);
        }
    }
}

//! What the workspace's test suites share, in one place (the model is cargo's own
//! `cargo-test-support`): the one `CI` rule and the skip-or-fail rule for absent prerequisites,
//! a throwaway PostgreSQL server, the Docker daemon probe and `docker` calls, free ports, the
//! workspace root, and the runner for the real `xtask` binary.
//!
//! A dev-dependency only. Helpers that belong to one crate's tests (the backend's `TestApp`,
//! the frontend's `Stack` and `Browser`, xtask's `Project`) stay in that crate's tests
//! (`tests/support/`, `tests/integration/support/`), built on these.
#![allow(clippy::unwrap_used)]

pub mod docker;
pub mod postgres;
mod prereq;
pub mod registry;
pub mod token_issuer;
pub mod xtask;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub use docker::daemon as docker_daemon;
pub use postgres::PgServer;
pub use prereq::{in_ci, on_path, require, runs, skip_or_fail};
pub use xtask::{Run, Xtask};

/// The builder every test compiles in (`--builder`): shared by the tests, as deployments share
/// one, and apart from the developer's own (`todo-app-builder`), which tests never touch.
pub const TEST_BUILDER: &str = "xtask-tests-builder";

/// A free TCP port on 127.0.0.1 (released again; the caller binds it soon after, and the race
/// with other processes is harmless in tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Sends `child` SIGINT, as Ctrl-C in a terminal does.
#[track_caller]
pub fn interrupt(child: &std::process::Child) {
    let pid = child.id().to_string();
    let sent = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(sent.success(), "kill -INT {pid} failed");
}

/// The workspace root (this crate lives in its top-level `test-support/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The path of the workspace's binary `name` (`todo-backend`, `xtask`), built from the current
/// sources, or the build's failure. The build is the workspace's every target, so its features
/// are the ones `cargo test --workspace` (CI) resolves: under it this is a no-op, where `cargo
/// build -p NAME` would compile a quarter of the dependencies again with other features, and
/// replace the binary the other tests run. Built once per test process.
pub fn workspace_binary(name: &str) -> Result<PathBuf, String> {
    static BINS: std::sync::OnceLock<Result<Vec<(String, PathBuf)>, String>> =
        std::sync::OnceLock::new();
    let bins = BINS.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(cargo);
        // What cargo set for this test process (CARGO_PKG_NAME, CARGO_MANIFEST_DIR, OUT_DIR...)
        // must not reach the build: build scripts rerun when such a variable changes (ring's, via
        // `cc`), so 36 units were compiled again, and again by the next cargo outside the tests.
        for (key, _) in std::env::vars_os() {
            let set_by_cargo = key.to_str().is_some_and(|k| {
                k.starts_with("CARGO_PKG_")
                    || k.starts_with("CARGO_BIN_")
                    || [
                        "CARGO_MANIFEST_DIR",
                        "CARGO_MANIFEST_PATH",
                        "CARGO_MANIFEST_LINKS",
                        "CARGO_CRATE_NAME",
                        "CARGO_PRIMARY_PACKAGE",
                        "CARGO_TARGET_TMPDIR",
                        "CARGO_RUSTC_CURRENT_DIR",
                        "OUT_DIR",
                    ]
                    .contains(&k)
            });
            if set_by_cargo {
                build.env_remove(key);
            }
        }
        let out = build
            .args([
                "build",
                "--quiet",
                "--workspace",
                "--all-targets",
                "--message-format=json",
            ])
            .current_dir(workspace_root())
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .output()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        if !out.status.success() {
            return Err("cargo build --workspace --all-targets failed (see above)".to_owned());
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["profile"]["test"] == false && v["target"]["kind"][0] == "bin")
            .filter_map(|v| {
                let name = v["target"]["name"].as_str()?.to_owned();
                Some((name, PathBuf::from(v["executable"].as_str()?)))
            })
            .collect())
    });
    let bins = bins.as_ref().map_err(Clone::clone)?;
    bins.iter()
        .find(|(n, _)| n == name)
        .map(|(_, path)| path.clone())
        .ok_or_else(|| format!("cargo built no binary `{name}` in the workspace"))
}

/// A copy of the workspace's tracked and untracked-but-not-ignored files in a temp dir, so a
/// test can edit sources and keep state without touching the real tree.
pub fn copy_workspace() -> tempfile::TempDir {
    let root = workspace_root();
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
        .prefix("todo-workspace-")
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

/// Panics, naming `what` and showing its status and both streams, unless `out` is a success.
#[track_caller]
pub fn check(out: &Output, what: &str) {
    if !out.status.success() {
        panic!("{what} failed ({}):\n{}", out.status, output_text(out));
    }
}

/// Stdout then stderr of `out`, as text.
pub fn output_text(out: &Output) -> String {
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    text
}

/// The string at `path` (keys, outermost first) in each element of the JSON array `array`;
/// panics, showing the value, on any other shape.
#[track_caller]
pub fn json_strs<'a>(array: &'a serde_json::Value, path: &[&str]) -> Vec<&'a str> {
    let Some(items) = array.as_array() else {
        panic!("not a JSON array: {array}");
    };
    let at = |item: &'a serde_json::Value| path.iter().fold(item, |v, key| &v[*key]);
    let string = |item| {
        at(item)
            .as_str()
            .unwrap_or_else(|| panic!("no string at {path:?}: {item}"))
    };
    items.iter().map(string).collect()
}

/// Non-empty trimmed lines of `s`.
pub fn lines(s: &str) -> Vec<String> {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

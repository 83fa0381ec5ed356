//! Wrappers over the external CLIs the pipeline drives (docker, minikube, kubectl, helm, kind,
//! k3d, and crictl in their nodes).
//!
//! Every wrapper takes the one `&Shell` (its env, e.g. a test's PATH, reaches the child) and runs
//! the tool with captured output, so a failure reports the tool's own stderr, never a bare exit
//! code. Values that must stay private (secrets) are only ever passed on stdin.

pub mod crictl;
pub mod docker;
pub mod helm;
pub mod k3d;
pub mod kind;
pub mod kubectl;
pub mod minikube;
pub mod registry;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use xshell::{Cmd, Shell};

/// Extra environment for one child process (for example minikube's docker-env); never set on
/// our own process, so it cannot leak into unrelated tools.
pub type ChildEnv = BTreeMap<String, String>;

/// What a finished tool invocation produced.
#[derive(Debug, Clone)]
pub struct ToolOutput {
    /// Exit code, `None` when killed by a signal.
    pub code: Option<i32>,
    /// Captured standard output, lossily decoded.
    pub stdout: String,
    /// Captured standard error, lossily decoded.
    pub stderr: String,
}

impl ToolOutput {
    /// True when the tool exited with status 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// The last `n` non-empty lines of stderr (or stdout when stderr is empty), for error messages.
    pub fn tail(&self, n: usize) -> String {
        let text = if self.stderr.trim().is_empty() {
            &self.stdout
        } else {
            &self.stderr
        };
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

/// Runs `cmd` with captured output whatever its exit status; only a failure to start is an error.
pub fn capture(cmd: Cmd<'_>, what: &str) -> Result<ToolOutput> {
    let out = cmd
        .quiet()
        .ignore_status()
        .output()
        .with_context(|| format!("could not run {what}"))?;
    Ok(ToolOutput {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// Runs `cmd` and fails with the tool's last stderr lines when it exits non-zero.
pub fn checked(cmd: Cmd<'_>, what: &str) -> Result<ToolOutput> {
    let out = capture(cmd, what)?;
    if !out.success() {
        bail!(
            "{what} failed (exit {}):\n{}",
            out.code
                .map_or_else(|| "signal".to_owned(), |c| c.to_string()),
            out.tail(12)
        );
    }
    Ok(out)
}

/// Finds `program` on the Shell's PATH (not the process's: tests give the Shell its own PATH).
pub fn find_program(sh: &Shell, program: &str) -> Option<PathBuf> {
    let path = sh.var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Applies a child-only environment to a command.
pub fn with_env<'a>(cmd: Cmd<'a>, env: &ChildEnv) -> Cmd<'a> {
    cmd.envs(env.iter().map(|(k, v)| (OsStr::new(k), OsStr::new(v))))
}

/// The versions of the cluster tools the pipeline supports: the oldest ones whose every flag,
/// exit code and output the code relies on was checked in the tool's source (see
/// `xtask/tests/doubles/README.md`); newer ones are supported as they come.
pub mod versions {
    /// minikube v1.25.0: the oldest with `image ls --format` (cmd/minikube/cmd/image.go).
    pub const MINIKUBE: (u32, u32, u32) = (1, 25, 0);
    /// kubectl v1.24.0: `get --ignore-not-found -o json` printing nothing for an absent object,
    /// `delete -o name`, `apply --server-side --field-manager`, `delete --timeout`.
    pub const KUBECTL: (u32, u32, u32) = (1, 24, 0);
}

/// The names of the objects a tool call touched, comma-separated, or `none`, for the lines that
/// say what a teardown removed or kept.
pub fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

/// `MAJOR.MINOR.PATCH` of `v1.33.1`, `v1.32.4-dispatcher`, `1.30.0+g3a31588`.
pub fn semver(text: &str) -> Option<(u32, u32, u32)> {
    let t = text.trim();
    let core = t.strip_prefix('v').unwrap_or(t).split(['-', '+']).next()?;
    let mut parts = core.split('.').map(str::parse::<u32>);
    match (parts.next(), parts.next(), parts.next()) {
        (Some(Ok(a)), Some(Ok(b)), Some(Ok(c))) => Some((a, b, c)),
        _ => None,
    }
}

/// Whether `found` (a version as the tool prints it) is at least `minimum`; `None` when it
/// does not parse.
pub fn at_least(found: &str, minimum: (u32, u32, u32)) -> Option<bool> {
    semver(found).map(|v| v >= minimum)
}

/// One `doctor` check's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was found.
    pub found: String,
    /// What is required.
    pub required: String,
    /// Whether it passes.
    pub ok: bool,
    /// The fix when it does not (empty when it does).
    pub fix: String,
}

/// `found` (as `TOOL version` prints it) against the supported `minimum`.
pub fn version_check(found: String, minimum: (u32, u32, u32), tool: &str, install: &str) -> Check {
    let required = format!("{}+", show_version(minimum));
    match at_least(&found, minimum) {
        Some(true) => Check {
            found,
            required,
            ok: true,
            fix: String::new(),
        },
        Some(false) => Check {
            fix: format!(
                "{tool} {found} is older than the oldest supported, {}; install a current one: {install}",
                show_version(minimum)
            ),
            found,
            required,
            ok: false,
        },
        None => Check {
            fix: format!("`{tool}` printed an unknown version; install a release: {install}"),
            found,
            required,
            ok: false,
        },
    }
}

/// `vMAJOR.MINOR.PATCH`.
pub fn show_version(v: (u32, u32, u32)) -> String {
    format!("v{}.{}.{}", v.0, v.1, v.2)
}

/// True when `text` says the object does not exist, in the words kubectl, helm and minikube use.
pub fn says_not_found(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    t.contains("notfound") || t.contains("not found")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tail_prefers_stderr_and_keeps_last_lines() {
        let out = ToolOutput {
            code: Some(1),
            stdout: "ignored".into(),
            stderr: "a\n\nb\nc\n".into(),
        };
        assert_eq!(out.tail(2), "b\nc");
        let out = ToolOutput {
            code: Some(1),
            stdout: "only\nstdout".into(),
            stderr: " \n".into(),
        };
        assert_eq!(out.tail(5), "only\nstdout");
    }

    #[test]
    fn versions_compare_with_their_minimum() {
        assert_eq!(semver("v1.32.4-dispatcher"), Some((1, 32, 4)));
        assert_eq!(semver("v1.33.1\n"), Some((1, 33, 1)));
        assert_eq!(semver("1.30.0+g3a31588"), Some((1, 30, 0)));
        assert_eq!(semver("v1.33"), None);
        assert_eq!(at_least("v1.25.0", versions::MINIKUBE), Some(true));
        assert_eq!(at_least("v1.24.9", versions::MINIKUBE), Some(false));
        assert_eq!(at_least("v1.23.17", versions::KUBECTL), Some(false));
        assert_eq!(at_least("garbage", versions::KUBECTL), None);
        assert_eq!(show_version(versions::KUBECTL), "v1.24.0");
    }

    #[test]
    fn not_found_wording() {
        assert!(says_not_found(
            "Error from server (NotFound): secrets \"x\" not found"
        ));
        assert!(says_not_found("Error: release: not found"));
        assert!(!says_not_found("connection refused"));
    }
}

//! Wrappers over the external CLIs the pipeline drives (docker, minikube, kubectl, helm).
//!
//! Every wrapper takes the one `&Shell` (its env, e.g. a test's PATH, reaches the child) and runs
//! the tool with captured output, so a failure reports the tool's own stderr, never a bare exit
//! code. Values that must stay private (secrets) are only ever passed on stdin.

pub mod docker;
pub mod helm;
pub mod kubectl;
pub mod minikube;

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

/// SIGTERM, a grace period, then SIGKILL.
pub fn terminate(child: &mut std::process::Child) {
    let pid = child.id().to_string();
    // `kill` the command: std offers only SIGKILL and unsafe code is forbidden.
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .stderr(std::process::Stdio::null())
        .status();
    for _ in 0..50 {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = child.kill();
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
    fn not_found_wording() {
        assert!(says_not_found(
            "Error from server (NotFound): secrets \"x\" not found"
        ));
        assert!(says_not_found("Error: release: not found"));
        assert!(!says_not_found("connection refused"));
    }
}

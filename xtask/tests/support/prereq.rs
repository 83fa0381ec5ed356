//! Prerequisites of the integration tests (Docker, helm, python3, ...): absent locally, a test
//! skips with a line naming what to install; under `CI=true` it fails instead, so CI never goes
//! green by skipping.

// Each test binary includes this file and uses part of it.
#![allow(dead_code)]

/// True when `CI=true` (or `1`): a missing prerequisite must then fail, not skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// True when `present`; otherwise prints `SKIP: <test>: no <what>; <fix>` and returns false, or
/// fails the test under `CI=true`.
pub fn prerequisite(present: bool, test: &str, what: &str, fix: &str) -> bool {
    if present {
        return true;
    }
    assert!(!in_ci(), "{test}: no {what} and CI=true; {fix}");
    eprintln!("SKIP: {test}: no {what}; {fix}");
    false
}

/// Whether `program args...` runs and exits 0 (a tool's version, a daemon's info), quietly.
pub fn runs(program: &str, args: &[&str]) -> bool {
    std::process::Command::new(program)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether the Docker daemon answers; see [`prerequisite`] for when it does not.
pub fn docker_daemon(test: &str) -> bool {
    prerequisite(
        runs("docker", &["info", "--format", "{{.ID}}"]),
        test,
        "reachable Docker daemon",
        "install and start it with ../shared/ci/provision.sh docker",
    )
}

//! Prerequisites of the integration tests (Docker, helm, python3, ...): absent locally, a test
//! skips with a line naming what to install; under `CI=true` it fails instead, so CI never goes
//! green by skipping.

/// True when `CI=true` (or `1`): a missing prerequisite must then fail, not skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// True when `present`; otherwise prints `SKIP: <test>: <what> not found; <fix>` and returns
/// false, or fails the test under `CI=true`.
pub fn prerequisite(present: bool, test: &str, what: &str, fix: &str) -> bool {
    if present {
        return true;
    }
    assert!(!in_ci(), "{test}: {what} not found and CI=true; {fix}");
    eprintln!("SKIP: {test}: {what} not found; {fix}");
    false
}

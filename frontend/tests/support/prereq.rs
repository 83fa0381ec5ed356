//! The prerequisite rule: a test whose tool is missing skips with a line naming what to
//! install, but fails when `CI=true` so CI can never go green by skipping.

/// Whether this run is CI (`CI=true`).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// Reports a missing prerequisite: panics under CI, prints a SKIP line otherwise.
#[track_caller]
pub fn missing(test: &str, what: &str, install: &str) {
    let line = format!("SKIP: {test}: {what} not found; {install}");
    if in_ci() {
        panic!("{line} (CI=true, so a missing prerequisite fails the run)");
    }
    eprintln!("{line}");
}

//! The prerequisite rule. A test whose prerequisite (a tool, a daemon, a server) is absent skips
//! locally with one line naming the test, what is missing and what to install; in CI it fails
//! with that same line, so CI can never go green by skipping.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Whether this run is CI: `CI=true` or `CI=1` (what CI services set). Any other value, or
/// none, is a local run.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// Reports that `test` cannot run because `missing` is absent: prints
/// `SKIP: <test>: missing <missing>; install with <install>` on stderr (past libtest's
/// capture, so it shows in every log) and returns, or under CI panics with that line.
#[track_caller]
pub fn skip_or_fail(test: &str, missing: &str, install: &str) {
    let line = format!("SKIP: {test}: missing {missing}; install with {install}");
    if in_ci() {
        panic!("{line} (CI is set: a missing prerequisite fails the run)");
    }
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// `present`, after [`skip_or_fail`] when it is false.
#[track_caller]
pub fn require(present: bool, test: &str, missing: &str, install: &str) -> bool {
    if !present {
        skip_or_fail(test, missing, install);
    }
    present
}

/// Whether `program args...` starts and exits 0 (a tool's version, a daemon's info), quietly.
pub fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The first of `names` found as a file in a PATH directory (directories in PATH order).
pub fn on_path(names: &[&str]) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::skip_or_fail;
    use crate::output_text;

    const SELF: &str = "prereq::tests::a_missing_prerequisite_skips_locally_and_fails_in_ci";

    // The environment is process-global, so each value of CI is tried in a child process: this
    // test binary again, running only this test, which then reports a missing prerequisite.
    #[test]
    fn a_missing_prerequisite_skips_locally_and_fails_in_ci() {
        if std::env::var_os("TEST_SUPPORT_CHILD").is_some() {
            skip_or_fail("the_test", "a thing", "a tool");
            return;
        }
        let line = "SKIP: the_test: missing a thing; install with a tool";
        for (ci, fails) in [
            (None, false),
            (Some("true"), true),
            (Some("1"), true),
            (Some("false"), false),
            (Some("0"), false),
        ] {
            let mut child = Command::new(std::env::current_exe().unwrap());
            child
                .args(["--exact", SELF, "--test-threads=1"])
                .env("TEST_SUPPORT_CHILD", "1");
            match ci {
                Some(value) => child.env("CI", value),
                None => child.env_remove("CI"),
            };
            let out = child.output().unwrap();
            let text = output_text(&out);
            assert_eq!(!out.status.success(), fails, "CI={ci:?}:\n{text}");
            assert_eq!(
                text.lines().filter(|l| l.contains(line)).count(),
                1,
                "CI={ci:?}: not one line `{line}`:\n{text}"
            );
        }
    }
}

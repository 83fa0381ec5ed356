//! `cargo xtask test`: the project's one test command (what CI runs).

use std::time::Instant;

use anyhow::Context as _;
use xshell::{Shell, cmd};

use crate::pipeline::Pipeline;
use crate::render::human;

/// Options of `cargo xtask test`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run fmt check, clippy and the tests of the whole workspace, stopping at the first failure.
pub fn run(sh: &Shell, _p: &Pipeline, _args: &Args) -> anyhow::Result<()> {
    let started = Instant::now();
    // The child inherits our environment, so `CI=true` reaches tests that must then not skip.
    let steps: [(&str, xshell::Cmd<'_>); 3] = [
        ("format", cmd!(sh, "cargo fmt --all --check")),
        (
            "clippy",
            cmd!(sh, "cargo clippy --workspace --all-targets -- -D warnings"),
        ),
        ("tests", cmd!(sh, "cargo test --workspace")),
    ];
    let fixes = [
        "run `cargo fmt --all`",
        "fix the warnings above",
        "fix the failing tests above",
    ];
    for ((name, step), fix) in steps.into_iter().zip(fixes) {
        eprintln!("==> {name}");
        let t0 = Instant::now();
        step.run()
            .with_context(|| format!("step `{name}` failed; {fix}"))?;
        eprintln!("==> {name} passed in {}", human(t0.elapsed()));
    }
    eprintln!(
        "test: format, clippy and tests passed in {}",
        human(started.elapsed())
    );
    Ok(())
}

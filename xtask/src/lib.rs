//! The project's pipeline: a content-hashed task graph declared in `xtask/pipeline.toml`.
//!
//! Layers, each using only those below it: `engine` (generic graph, hashing, planning,
//! execution, events) and `error`; the tool wrappers (`tools`), the build context (`context`),
//! `secrets`, `diagnose` and the `smoke` client; `target` (what a deployment is on each
//! target); `kinds` (the task kinds, on targets and tools); `render` (events to the terminal);
//! `pipeline`, `watch` (file changes, for `dev`), `commands`, the `load` suite and the
//! inner-loop benchmark `loop_bench` (what the CLI runs); `cli`.

pub mod builder;
pub mod cli;
pub(crate) mod commands;
pub mod context;
pub mod diagnose;
pub mod engine;
pub mod error;
pub mod image_registry;
pub(crate) mod kinds;
pub(crate) mod load;
pub(crate) mod loop_bench;
pub(crate) mod pipeline;
pub(crate) mod render;
pub(crate) mod secrets;
pub(crate) mod smoke;
pub mod target;
pub mod tools;
pub(crate) mod watch;

pub use kinds::registry;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use xshell::Shell;

/// Parse the command line, run the command, render any error once, map it to an exit code.
pub fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let result = project_root(cli.global.root.clone()).and_then(|root| {
        let sh = Shell::new()?;
        sh.change_dir(&root);
        let mut global = cli.global.clone();
        global.build_profile = global.build_profile.or(cli.command.default_build_profile());
        let pipeline = pipeline::Pipeline::new(engine::Session::new(root), global);
        commands::dispatch(&sh, &pipeline, &cli.command)
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprint!(
                "{}",
                error::render(&err, render::color_enabled(&std::io::stderr()))
            );
            ExitCode::from(error::exit_code(&err))
        }
    }
}

/// The workspace root: `--root`, else the parent of the xtask manifest directory that `cargo`
/// names at run time (so a target dir shared by two checkouts runs against the right tree).
fn project_root(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(root) = given {
        return Ok(root);
    }
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from).context(
        "CARGO_MANIFEST_DIR is not set: run the pipeline as `cargo xtask ...` from the workspace, \
         or pass `--root DIR`",
    )?;
    manifest
        .parent()
        .map(PathBuf::from)
        .with_context(|| format!("xtask manifest dir `{}` has no parent", manifest.display()))
}

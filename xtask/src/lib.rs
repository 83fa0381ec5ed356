//! The project's pipeline: a content-hashed task graph declared in `xtask/pipeline.toml`.

pub mod cli;
pub mod commands;
pub mod context;
pub mod diagnose;
pub mod engine;
pub mod error;
pub mod kinds;
pub mod render;
pub mod secrets;
pub mod smoke;
pub mod target;
pub mod tools;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use xshell::Shell;

/// Parse the command line, run the command, render any error once, map it to an exit code.
pub fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let root = match cli.global.root.clone() {
        Some(root) => Ok(root),
        None => project_root(),
    };
    let result = root.and_then(|root| {
        let sh = Shell::new()?;
        sh.change_dir(&root);
        let session = engine::Session::new(root, cli.global.clone());
        commands::dispatch(&sh, &session, &cli.command)
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => error::report(&err),
    }
}

/// The workspace root: the parent of this crate's manifest directory.
fn project_root() -> anyhow::Result<PathBuf> {
    let manifest = env!("CARGO_MANIFEST_DIR");
    let root = std::path::Path::new(manifest)
        .parent()
        .ok_or_else(|| anyhow::anyhow!("xtask manifest dir `{manifest}` has no parent"))?;
    Ok(root.to_path_buf())
}

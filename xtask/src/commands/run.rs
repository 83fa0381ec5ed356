//! `cargo xtask run TASK…`: run tasks with their dependencies, skipping fresh ones.

use xshell::Shell;

use crate::engine::RunOptions;
use crate::pipeline::Pipeline;

/// Options of `cargo xtask run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Tasks to run (their dependencies run first).
    #[arg(required = true)]
    pub tasks: Vec<String>,
    /// Ignore recorded results and run every selected task.
    #[arg(long)]
    pub force: bool,
}

/// Run `cargo xtask run`.
pub fn run(sh: &Shell, p: &Pipeline, args: &Args) -> anyhow::Result<()> {
    p.run(sh, &args.tasks, &RunOptions { force: args.force })
        .map(drop)
}

//! `cargo xtask run TASK…`: run tasks with their dependencies, skipping fresh ones.

use xshell::Shell;

use crate::engine::{RunOptions, Session, run_tasks};

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
pub fn run(sh: &Shell, session: &Session, args: &Args) -> anyhow::Result<()> {
    run_tasks(sh, session, &args.tasks, &RunOptions { force: args.force }).map(drop)
}

//! `cargo xtask doctor`: check the environment of the chosen target and print a table of
//! tool, version found, version required, status and fix. Exit 1 when anything blocks.

use xshell::Shell;

use crate::pipeline::Pipeline;

/// Options of `cargo xtask doctor`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `cargo xtask doctor`.
pub fn run(sh: &Shell, p: &Pipeline, _args: &Args) -> anyhow::Result<()> {
    check(sh, p)
}

/// The doctor as a step of other commands (`deploy` runs it first): prints the table, fails
/// when a row blocks.
pub fn check(sh: &Shell, p: &Pipeline) -> anyhow::Result<()> {
    crate::kinds::doctor::check_and_print(sh, &p.opts.target_options(), p.opts.json)
}

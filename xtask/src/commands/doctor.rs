//! `cargo xtask doctor`: check the environment of the chosen target and print a table of
//! tool, version found, version required, status and fix. Exit 1 when anything blocks.

use xshell::Shell;

use crate::engine::Session;

/// Options of `cargo xtask doctor`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `cargo xtask doctor`.
pub fn run(sh: &Shell, session: &Session, _args: &Args) -> anyhow::Result<()> {
    check(sh, session)
}

/// The doctor as a step of other commands (`deploy` runs it first): prints the table, fails
/// when a row blocks.
pub fn check(sh: &Shell, session: &Session) -> anyhow::Result<()> {
    crate::kinds::doctor::check_and_print(sh, &session.opts)
}

//! `cargo xtask run` (placeholder until its owner fills it in).

use xshell::Shell;

use crate::engine::Session;

/// Options of `cargo xtask run`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `cargo xtask run`.
pub fn run(_sh: &Shell, _session: &Session, _args: &Args) -> anyhow::Result<()> {
    anyhow::bail!("`cargo xtask run` is not implemented yet")
}

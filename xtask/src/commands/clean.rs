//! `cargo xtask clean` (placeholder until its owner fills it in).

use xshell::Shell;

use crate::engine::Session;

/// Options of `cargo xtask clean`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `cargo xtask clean`.
pub fn run(_sh: &Shell, _session: &Session, _args: &Args) -> anyhow::Result<()> {
    anyhow::bail!("`cargo xtask clean` is not implemented yet")
}

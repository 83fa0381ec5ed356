//! `cargo xtask down` (placeholder until its owner fills it in).

use xshell::Shell;

use crate::engine::Session;

/// Options of `cargo xtask down`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `cargo xtask down`.
pub fn run(_sh: &Shell, _session: &Session, _args: &Args) -> anyhow::Result<()> {
    anyhow::bail!("`cargo xtask down` is not implemented yet")
}

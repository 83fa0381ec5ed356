//! `cargo xtask graph` (placeholder until its owner fills it in).

use xshell::Shell;

use crate::engine::Session;

/// Options of `cargo xtask graph`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `cargo xtask graph`.
pub fn run(_sh: &Shell, _session: &Session, _args: &Args) -> anyhow::Result<()> {
    anyhow::bail!("`cargo xtask graph` is not implemented yet")
}

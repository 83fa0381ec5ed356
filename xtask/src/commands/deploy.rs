//! `cargo xtask deploy` (placeholder until its owner fills it in).

use xshell::Shell;

use crate::engine::Session;

/// Options of `cargo xtask deploy`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `cargo xtask deploy`.
pub fn run(_sh: &Shell, _session: &Session, _args: &Args) -> anyhow::Result<()> {
    anyhow::bail!("`cargo xtask deploy` is not implemented yet")
}

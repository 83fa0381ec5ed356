//! `cargo xtask secrets` (placeholder until its owner fills it in).

use xshell::Shell;

use crate::engine::Session;

/// Options of `cargo xtask secrets`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `cargo xtask secrets`.
pub fn run(_sh: &Shell, _session: &Session, _args: &Args) -> anyhow::Result<()> {
    anyhow::bail!("`cargo xtask secrets` is not implemented yet")
}

//! `cargo xtask status` (placeholder until its owner fills it in).

use xshell::Shell;

use crate::engine::Session;

/// Options of `cargo xtask status`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `cargo xtask status`.
pub fn run(_sh: &Shell, _session: &Session, _args: &Args) -> anyhow::Result<()> {
    anyhow::bail!("`cargo xtask status` is not implemented yet")
}

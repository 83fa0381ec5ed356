//! `cargo xtask plan` (placeholder until its owner fills it in).

use xshell::Shell;

use crate::engine::Session;

/// Options of `cargo xtask plan`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `cargo xtask plan`.
pub fn run(_sh: &Shell, _session: &Session, _args: &Args) -> anyhow::Result<()> {
    anyhow::bail!("`cargo xtask plan` is not implemented yet")
}

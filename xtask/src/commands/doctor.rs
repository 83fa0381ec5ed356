//! `cargo xtask doctor` (placeholder until its owner fills it in).

use xshell::Shell;

use crate::engine::Session;

/// Options of `cargo xtask doctor`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `cargo xtask doctor`.
pub fn run(_sh: &Shell, _session: &Session, _args: &Args) -> anyhow::Result<()> {
    anyhow::bail!("`cargo xtask doctor` is not implemented yet")
}

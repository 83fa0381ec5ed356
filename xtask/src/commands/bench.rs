//! `cargo xtask bench` (placeholder until its owner fills it in).

use xshell::Shell;

use crate::engine::Session;

/// Options of `cargo xtask bench`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `cargo xtask bench`.
pub fn run(_sh: &Shell, _session: &Session, _args: &Args) -> anyhow::Result<()> {
    anyhow::bail!("`cargo xtask bench` is not implemented yet")
}

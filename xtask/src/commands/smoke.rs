//! `cargo xtask smoke` (placeholder until its owner fills it in).

use xshell::Shell;

use crate::engine::Session;

/// Options of `cargo xtask smoke`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `cargo xtask smoke`.
pub fn run(_sh: &Shell, _session: &Session, _args: &Args) -> anyhow::Result<()> {
    anyhow::bail!("`cargo xtask smoke` is not implemented yet")
}

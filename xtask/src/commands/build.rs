//! `cargo xtask build` (placeholder until its owner fills it in).

use xshell::Shell;

use crate::engine::Session;

/// Options of `cargo xtask build`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `cargo xtask build`.
pub fn run(_sh: &Shell, _session: &Session, _args: &Args) -> anyhow::Result<()> {
    anyhow::bail!("`cargo xtask build` is not implemented yet")
}

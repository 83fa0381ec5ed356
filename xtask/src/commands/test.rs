//! `cargo xtask test` (placeholder until its owner fills it in).

use xshell::Shell;

use crate::engine::Session;

/// Options of `cargo xtask test`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `cargo xtask test`.
pub fn run(_sh: &Shell, _session: &Session, _args: &Args) -> anyhow::Result<()> {
    anyhow::bail!("`cargo xtask test` is not implemented yet")
}

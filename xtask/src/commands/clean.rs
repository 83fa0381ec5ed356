//! `cargo xtask clean`: forget the recorded results of the target (nothing is deleted elsewhere).

use xshell::Shell;

use crate::engine::Target as _;
use crate::engine::state::{self, Lock};
use crate::pipeline::Pipeline;

/// Options of `cargo xtask clean`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `cargo xtask clean`.
pub fn run(sh: &Shell, p: &Pipeline, _args: &Args) -> anyhow::Result<()> {
    let target = p.target(sh)?;
    let dir = p.session.state_dir(target);
    let _lock = Lock::acquire(&dir, &target.id(), p.session.no_wait)?;
    if state::forget(&dir)? {
        eprintln!(
            "forgot the recorded results of target `{}`; every task will run next time",
            target.id()
        );
    } else {
        eprintln!("target `{}` has no recorded results", target.id());
    }
    Ok(())
}

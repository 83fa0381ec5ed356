//! One module per subcommand; each exposes `Args` (clap) and `run(sh, session, args)`.

pub mod bench;
pub mod build;
pub mod clean;
pub mod deploy;
pub mod doctor;
pub mod down;
pub mod graph;
pub mod plan;
pub mod run;
pub mod secrets;
pub mod smoke;
pub mod status;
pub mod test;

use xshell::Shell;

use crate::cli::Command;
use crate::engine::Session;

/// Run the chosen subcommand.
pub fn dispatch(sh: &Shell, session: &Session, command: &Command) -> anyhow::Result<()> {
    match command {
        Command::Plan(args) => plan::run(sh, session, args),
        Command::Graph(args) => graph::run(sh, session, args),
        Command::Run(args) => run::run(sh, session, args),
        Command::Clean(args) => clean::run(sh, session, args),
        Command::Test(args) => test::run(sh, session, args),
        Command::Bench(args) => bench::run(sh, session, args),
        Command::Doctor(args) => doctor::run(sh, session, args),
        Command::Build(args) => build::run(sh, session, args),
        Command::Secrets(args) => secrets::run(sh, session, args),
        Command::Deploy(args) => deploy::run(sh, session, args),
        Command::Smoke(args) => smoke::run(sh, session, args),
        Command::Down(args) => down::run(sh, session, args),
        Command::Status(args) => status::run(sh, session, args),
    }
}

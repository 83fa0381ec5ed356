//! One module per subcommand; each exposes `Args` (clap) and `run(sh, pipeline, args)`.

pub mod bench;
pub mod build;
pub mod clean;
pub mod deploy;
pub mod dev;
pub mod doctor;
pub mod down;
pub mod graph;
pub mod logs;
pub mod plan;
pub mod run;
pub mod secrets;
pub mod smoke;
pub mod status;
pub mod test;

use xshell::Shell;

use crate::cli::Command;
use crate::pipeline::Pipeline;

/// Run the chosen subcommand.
pub fn dispatch(sh: &Shell, p: &Pipeline, command: &Command) -> anyhow::Result<()> {
    match command {
        Command::Plan(args) => plan::run(sh, p, args),
        Command::Graph(args) => graph::run(sh, p, args),
        Command::Run(args) => run::run(sh, p, args),
        Command::Clean(args) => clean::run(sh, p, args),
        Command::Test(args) => test::run(sh, p, args),
        Command::Bench(args) => bench::run(sh, p, args),
        Command::Doctor(args) => doctor::run(sh, p, args),
        Command::Build(args) => build::run(sh, p, args),
        Command::Secrets(args) => secrets::run(sh, p, args),
        Command::Deploy(args) => deploy::run(sh, p, args),
        Command::Smoke(args) => smoke::run(sh, p, args),
        Command::Down(args) => down::run(sh, p, args),
        Command::Status(args) => status::run(sh, p, args),
        Command::Logs(args) => logs::run(sh, p, args),
        Command::Dev(args) => dev::run(sh, p, args),
    }
}

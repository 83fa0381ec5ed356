//! Command-line definitions: global options shared by every command, one subcommand per module.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::commands;

/// `cargo xtask`: the project's pipeline as a content-hashed task graph.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", version, about, propagate_version = true)]
pub struct Cli {
    /// Options every command accepts.
    #[command(flatten)]
    pub global: GlobalOpts,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command accepts (placed before or after the subcommand).
#[derive(Debug, Clone, Args)]
pub struct GlobalOpts {
    /// Where to deploy: a Minikube cluster, plain Docker containers, or `auto`
    /// (Minikube when installed, else Docker).
    #[arg(long, global = true, env = "XTASK_TARGET", value_enum, default_value_t = TargetChoice::Auto)]
    pub target: TargetChoice,
    /// Minikube profile (Minikube target).
    #[arg(long, global = true, default_value = "minikube")]
    pub profile: String,
    /// Kubernetes namespace (Minikube target); on the Docker target, the prefix of the
    /// container, network and volume names (`<namespace>-docker-...`).
    #[arg(long, global = true, default_value = "todo-app")]
    pub namespace: String,
    /// Local port the frontend is published on (Docker target).
    #[arg(long, global = true, default_value_t = 3000)]
    pub port: u16,
    /// Run at most N tasks at once (default: the number of cores).
    #[arg(short = 'j', long, global = true, value_name = "N")]
    pub jobs: Option<usize>,
    /// Print one JSON event per line instead of progress output.
    #[arg(long, global = true)]
    pub json: bool,
    /// Fail at once instead of waiting when another run holds the target's lock.
    #[arg(long, global = true)]
    pub no_wait: bool,
    /// Project root (default: the workspace this xtask was built from). Used by tests.
    #[arg(long, global = true, hide = true, value_name = "DIR")]
    pub root: Option<PathBuf>,
}

/// The `--target` choice before resolution (see [`crate::target::Target::resolve`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TargetChoice {
    /// Minikube when `minikube` is on PATH, else Docker.
    Auto,
    /// A Minikube profile: images built in its Docker daemon, deployed with Helm.
    Minikube,
    /// The local Docker daemon: containers on a private network.
    Docker,
}

/// The subcommands; each one is a module in `commands/`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print every task with `run` or `fresh` and the reason.
    Plan(commands::plan::Args),
    /// Print the task graph as DOT or Mermaid.
    Graph(commands::graph::Args),
    /// Run tasks with their dependencies.
    Run(commands::run::Args),
    /// Forget recorded results of the target.
    Clean(commands::clean::Args),
    /// The project's one test command: fmt check, clippy, tests.
    Test(commands::test::Args),
    /// Benchmark hashing and no-op planning against sha256sum and git status.
    Bench(commands::bench::Args),
    /// Verify the environment and print a table of tools and fixes.
    Doctor(commands::doctor::Args),
    /// Build every image the pipeline declares.
    Build(commands::build::Args),
    /// Create or update the app's secrets.
    Secrets(commands::secrets::Args),
    /// Doctor, build, secrets, deploy, smoke test.
    Deploy(commands::deploy::Args),
    /// Smoke test the live deployment.
    Smoke(commands::smoke::Args),
    /// Tear the deployment down.
    Down(commands::down::Args),
    /// Show what is deployed against what the tree would build now.
    Status(commands::status::Args),
}

//! `cargo xtask secrets`: create or update the Secret `todo-app-secrets` by running the
//! pipeline's `k8s-secret` task. Prints, per key, where its value came from; never a value.

use xshell::Shell;

use crate::engine::{RunOptions, Session, run_tasks};
use crate::error::Error;
use crate::target::Target;

/// Options of `cargo xtask secrets`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Apply the Secret even when its keyed digest is unchanged.
    #[arg(long)]
    pub force: bool,
}

/// Run `cargo xtask secrets`.
pub fn run(sh: &Shell, session: &Session, args: &Args) -> anyhow::Result<()> {
    let graph = crate::engine::load(session)?;
    let tasks = graph.tasks_of_kind("k8s-secret");
    if tasks.is_empty() {
        return Err(Error::Usage {
            message: "xtask/pipeline.toml declares no task of kind `k8s-secret`".into(),
            fix: "add one (see xtask/src/kinds/k8s_secret.rs for its fields)".into(),
        }
        .into());
    }
    if let Target::Docker { .. } = session.target(sh)? {
        println!(
            "the Docker target has no Kubernetes Secret: `cargo xtask deploy` passes the same values \
             to the containers' environment"
        );
        return Ok(());
    }
    let report = run_tasks(sh, session, &tasks, &RunOptions { force: args.force })?;
    for task in &tasks {
        if report.fresh.contains(task) {
            println!(
                "{task}: the Secret is up to date (keyed digest unchanged; --force re-applies it)"
            );
        }
    }
    Ok(())
}

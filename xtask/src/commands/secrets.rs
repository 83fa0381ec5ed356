//! `cargo xtask secrets`: create or update the app's Secret by running the target's
//! `k8s-secret` tasks. Prints, per key, where its value came from; never a value.

use xshell::Shell;

use crate::engine::RunOptions;
use crate::error::Error;
use crate::pipeline::Pipeline;

/// Options of `cargo xtask secrets`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Apply the Secret even when its keyed digest is unchanged.
    #[arg(long)]
    pub force: bool,
}

/// Run `cargo xtask secrets`.
pub fn run(sh: &Shell, p: &Pipeline, args: &Args) -> anyhow::Result<()> {
    if p.graph()?.tasks_of_kind("k8s-secret").is_empty() {
        return Err(Error::Usage {
            message: "xtask/pipeline.toml declares no task of kind `k8s-secret`".into(),
            fix: "add one (see xtask/src/kinds/k8s_secret.rs for its fields)".into(),
        }
        .into());
    }
    let tasks = p.graph_for(p.target(sh)?)?.tasks_of_kind("k8s-secret");
    if tasks.is_empty() {
        println!(
            "this target has no Kubernetes Secret: `cargo xtask deploy` passes the same values \
             to the containers' environment"
        );
        return Ok(());
    }
    let report = p.run(sh, &tasks, &RunOptions { force: args.force })?;
    for task in &tasks {
        if report.fresh.contains(task) {
            println!(
                "{task}: the Secret is up to date (keyed digest unchanged; --force re-applies it)"
            );
        }
    }
    Ok(())
}

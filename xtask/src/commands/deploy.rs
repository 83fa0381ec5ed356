//! `cargo xtask deploy`: doctor, then a walk of the graph up to the smoke test: images, secrets,
//! the deployment of the target (Helm release or containers), smoke. Ends with how to reach
//! the app, as the smoke test recorded it.

use xshell::Shell;

use crate::engine::{EventSink, RunOptions, RunReport};
use crate::pipeline::Pipeline;
use crate::target::Access;

/// The task whose dependencies make up a deployment; it records how the app is reached.
pub const FINAL_TASK: &str = "smoke";

/// Options of `cargo xtask deploy`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Re-run every task even when its recorded result is current.
    #[arg(long)]
    pub force: bool,
}

/// Run `cargo xtask deploy`.
pub fn run(sh: &Shell, p: &Pipeline, args: &Args) -> anyhow::Result<()> {
    super::doctor::check(sh, p)?;
    let renderer = crate::render::for_run(p.opts.json);
    let report = walk(sh, p, args.force, renderer.as_ref())?;
    announce(p, &report);
    Ok(())
}

/// The deploy walk (every task up to the smoke test), its events to `sink`.
pub fn walk(
    sh: &Shell,
    p: &Pipeline,
    force: bool,
    sink: &dyn EventSink,
) -> anyhow::Result<RunReport> {
    p.run_with(sh, &[FINAL_TASK.to_owned()], &RunOptions { force }, sink)
}

/// Says how to reach the app, as the smoke test of `report` recorded it.
pub fn announce(p: &Pipeline, report: &RunReport) {
    let access = report
        .outputs
        .get(FINAL_TASK)
        .and_then(Access::from_outputs);
    match (access, p.opts.json) {
        (Some(Access::Url(url)), false) => println!("The app is live at {url}"),
        // Keep stdout pure JSON lines.
        (Some(Access::Url(url)), true) => {
            println!("{}", serde_json::json!({ "event": "url", "url": url }));
        }
        (Some(Access::PortForward(cmd)), false) => {
            println!("The app is live; reach it from this host with `{cmd}`")
        }
        (Some(Access::PortForward(cmd)), true) => println!(
            "{}",
            serde_json::json!({ "event": "port-forward", "command": cmd })
        ),
        (None, _) => eprintln!("deployed; no task recorded the app's URL"),
    }
}

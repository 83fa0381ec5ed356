//! `cargo xtask deploy`: doctor, then a walk of the graph up to the smoke test: images, secrets,
//! the deployment of the target (Helm release or containers), smoke. Ends with the app's URL.

use xshell::Shell;

use crate::engine::{RunOptions, Session, run_tasks};

/// The task whose dependencies make up a deployment.
pub const FINAL_TASK: &str = "smoke";

/// Options of `cargo xtask deploy`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Re-run every task even when its recorded result is current.
    #[arg(long)]
    pub force: bool,
}

/// Run `cargo xtask deploy`.
pub fn run(sh: &Shell, session: &Session, args: &Args) -> anyhow::Result<()> {
    super::doctor::check(sh, session)?;
    let report = run_tasks(
        sh,
        session,
        &[FINAL_TASK.to_owned()],
        &RunOptions { force: args.force },
    )?;
    let url = report
        .outputs
        .values()
        .filter_map(|o| o.get("url"))
        .find(|u| u.starts_with("http"));
    // On Minikube's container drivers off Linux the app is reached through a port-forward.
    let forward = report.outputs.values().find_map(|o| o.get("port-forward"));
    match (url, forward, session.opts.json) {
        (Some(url), _, false) => println!("The app is live at {url}"),
        // Keep stdout pure JSON lines.
        (Some(url), _, true) => {
            println!("{}", serde_json::json!({ "event": "url", "url": url }));
        }
        (None, Some(cmd), false) => {
            println!("The app is live; reach it from this host with `{cmd}`")
        }
        (None, Some(cmd), true) => println!(
            "{}",
            serde_json::json!({ "event": "port-forward", "command": cmd })
        ),
        (None, None, _) => eprintln!("deployed; no task recorded the app's URL"),
    }
    Ok(())
}

//! `cargo xtask smoke`: the HTTP round trip against the live deployment, whatever the recorded
//! state says; prints a table and fails on any failed check.

use std::time::Duration;

use anyhow::{Context as _, bail};
use xshell::Shell;

use crate::pipeline::Pipeline;
use crate::smoke::{self, Options};

/// Options of `cargo xtask smoke`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Seconds to wait for /health and /ready to answer 200.
    #[arg(long, default_value_t = 30)]
    pub ready_timeout: u64,
}

/// Run `cargo xtask smoke`.
pub fn run(sh: &Shell, p: &Pipeline, args: &Args) -> anyhow::Result<()> {
    let target = p.target(sh)?;
    let json = p.opts.json;
    let log = |line: &str| {
        if !json {
            eprintln!("{line}");
        }
    };
    // Held until the checks are done: it may be the port-forward they go through.
    let front = target
        .deployment()
        .frontend(sh, &log)
        .context("finding the live deployment; run `cargo xtask deploy` first")?;
    let opts = Options {
        ready_timeout: Duration::from_secs(args.ready_timeout),
        unreachable_fix: Some(target.deployment().unreachable_fix()),
        ..Options::default()
    };
    let report = smoke::run(&front.endpoints, &opts, |name| {
        log(&format!("checking {name} ..."));
    });
    if json {
        for c in &report.checks {
            let (result, error) = match &c.outcome {
                smoke::Outcome::Pass => ("pass", None),
                smoke::Outcome::Fail(e) => ("fail", Some(e.as_str())),
                smoke::Outcome::Skipped => ("skipped", None),
            };
            println!(
                "{}",
                serde_json::json!({"event": "check", "check": c.name, "result": result,
                    "error": error, "duration_ms": c.elapsed.as_millis() as u64})
            );
        }
    } else {
        print!("{}", report.table());
    }
    if !report.passed() {
        let failed = report
            .checks
            .iter()
            .filter(|c| matches!(c.outcome, smoke::Outcome::Fail(_)))
            .count();
        report
            .into_result()
            .map(drop)
            .context(format!("{failed} smoke check(s) failed"))?;
        bail!("smoke test failed");
    }
    Ok(())
}

//! `cargo xtask smoke`: the HTTP round trip against the live deployment, whatever the recorded
//! state says; prints a table and fails on any failed check.

use std::time::Duration;

use anyhow::{Context as _, bail};
use xshell::Shell;

use crate::engine::Session;
use crate::kinds::smoke::docker_endpoints;
use crate::smoke::{self, Options};
use crate::target::Target;
use crate::tools::docker::Docker;

/// Options of `cargo xtask smoke`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Seconds to wait for /health and /ready to answer 200.
    #[arg(long, default_value_t = 30)]
    pub ready_timeout: u64,
}

/// Run `cargo xtask smoke`.
pub fn run(sh: &Shell, session: &Session, args: &Args) -> anyhow::Result<()> {
    let target = session.target(sh)?;
    // Held until the checks are done: it may be the port-forward they go through.
    let mut _forward = None;
    let endpoints = match target {
        Target::Docker { port, .. } => {
            let docker = Docker::new(sh, session.docker_env(sh)?);
            docker_endpoints(&docker, session, *port)?
        }
        Target::Minikube { profile, namespace } => {
            let log = |line: &str| {
                if !session.opts.json {
                    eprintln!("{line}");
                }
            };
            let kube = crate::tools::kubectl::Kube {
                context: profile.clone(),
                namespace: namespace.clone(),
            };
            let front = crate::kinds::smoke::minikube_frontend(sh, &kube, &log)
                .context("finding the live deployment; run `cargo xtask deploy` first")?;
            _forward = front.forward;
            front.endpoints
        }
    };
    let opts = Options {
        ready_timeout: Duration::from_secs(args.ready_timeout),
        unreachable_fix: Some(crate::kinds::smoke::unreachable_fix(session, target)),
        ..Options::default()
    };
    let report = smoke::run(&endpoints, &opts, |name| {
        if !session.opts.json {
            eprintln!("checking {name} ...");
        }
    });
    if session.opts.json {
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

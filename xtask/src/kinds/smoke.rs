//! `kind = "smoke"`: the HTTP round trip of [`crate::smoke`] against the live deployment.
//!
//! ```toml
//! [tasks.smoke]
//! kind = "smoke"
//! deps = ["app-containers", "release"]   # the deployments of every target; each keeps its own
//! ready-timeout = 90   # optional, seconds for /health and /ready to answer
//! ```
//! Not always-run: its key covers its dependencies' keys, so it re-runs whenever anything it
//! tests changed, and [`Task::output_exists`] re-runs it when the deployment it tested is no
//! longer the one that is live (Docker: other container IDs). A no-op deploy stays all fresh.
//! It records how a user reaches the app ([`crate::target::Access`]), which `deploy` prints.

use std::time::Duration;

use anyhow::Result;

use super::{BoxTask, CheckCx, Diagnostic, LoadCx, Outputs, RunCx, Settings, Task, TaskKind};
use crate::smoke::{self, Endpoints, Options};
use crate::target::Target;

/// The `smoke` kind.
#[derive(Debug)]
pub struct SmokeKind;

/// One smoke task's settings.
#[derive(Debug, Clone)]
pub struct Smoke {
    ready_timeout: Duration,
}

impl TaskKind<Target> for SmokeKind {
    fn name(&self) -> &'static str {
        "smoke"
    }

    fn parse(&self, s: &mut Settings, _cx: &LoadCx<'_>) -> Result<BoxTask, Diagnostic> {
        let secs: u64 = s.get("ready-timeout")?.unwrap_or(90);
        if secs == 0 {
            return Err(s.error(
                "ready-timeout",
                "`ready-timeout` must be at least 1 second",
                "give seconds, e.g. `ready-timeout = 90`",
            ));
        }
        Ok(Box::new(Smoke {
            ready_timeout: Duration::from_secs(secs),
        }))
    }
}

/// Runs the checks, logging the table line by line; an error lists the failures.
pub fn check(
    endpoints: &Endpoints,
    timeout: Duration,
    fix: String,
    log: &dyn Fn(&str),
) -> Result<()> {
    let opts = Options {
        ready_timeout: timeout,
        unreachable_fix: Some(fix),
        ..Options::default()
    };
    let report = smoke::run(endpoints, &opts, |_| {});
    for line in report.table().lines() {
        log(line);
    }
    report.into_result().map(drop)
}

impl Task<Target> for Smoke {
    fn output_exists(&self, cx: &CheckCx<'_>) -> Result<bool> {
        let live = cx.target.deployment().live(cx.sh)?;
        Ok(live.iter().all(|(k, v)| cx.outputs.get(k) == Some(v)))
    }

    fn run(&self, cx: &RunCx<'_>) -> Result<Outputs> {
        let log = |line: &str| cx.log(line);
        // Held until the checks are done: it may be the port-forward they go through.
        let front = cx.target.deployment().frontend(cx.sh, &log)?;
        check(
            &front.endpoints,
            self.ready_timeout,
            cx.target.deployment().unreachable_fix(),
            &log,
        )?;
        let mut outputs = cx.target.deployment().live(cx.sh)?;
        outputs.extend(front.access.to_outputs());
        Ok(outputs)
    }
}

//! The smoke test: an HTTP round trip against a live deployment, shared by both targets.
//!
//! It checks both services' `/health` and `/ready` (retrying until a deadline, since a fresh
//! deployment may still be starting), then drives the frontend's own HTML forms the way a
//! browser would: cookies, the hidden CSRF field, POST-redirect-GET. A throwaway user signs up,
//! signs in, adds a task, sees it listed, completes it and deletes it; then asks the chat
//! assistant to add a task (the backend's built-in interpreter understands `add TITLE` when no
//! AI provider is configured), sees that task in the list and deletes it again.

pub(crate) mod client;
pub(crate) mod flow;
pub(crate) mod page;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use client::Client;
use flow::Flow;

/// Where the live deployment answers.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// Base URL of the frontend, e.g. `http://127.0.0.1:3000`.
    pub frontend: String,
    /// Base URL of the backend, when reachable from here (health checks only).
    pub backend: Option<String>,
}

/// How long to keep retrying the readiness checks.
#[derive(Debug, Clone)]
pub struct Options {
    /// Deadline for `/health` and `/ready` to start answering 200.
    pub ready_timeout: Duration,
    /// Timeout of one HTTP request.
    pub request_timeout: Duration,
    /// The fix named when the app cannot be connected to (target-specific); a generic one
    /// when `None`.
    pub unreachable_fix: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            ready_timeout: Duration::from_secs(90),
            request_timeout: Duration::from_secs(15),
            unreachable_fix: None,
        }
    }
}

/// Outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It passed.
    Pass,
    /// It failed, with the reason.
    Fail(String),
    /// Not attempted because an earlier step it needs failed.
    Skipped,
}

/// One row of the report.
#[derive(Debug, Clone)]
pub struct Check {
    /// What was checked, e.g. `backend /ready`.
    pub name: String,
    /// How it went.
    pub outcome: Outcome,
    /// Time it took (including retries).
    pub elapsed: Duration,
}

/// Every check of one smoke run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The checks, in the order they ran.
    pub checks: Vec<Check>,
}

impl Report {
    /// True when every check passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.outcome == Outcome::Pass)
    }

    /// A plain-text table: check, result, time.
    pub fn table(&self) -> String {
        let width = self
            .checks
            .iter()
            .map(|c| c.name.len())
            .max()
            .unwrap_or(5)
            .max(5);
        let mut out = String::new();
        let _ = writeln!(out, "{:<width$}  {:<6}  {:>8}", "check", "result", "time");
        for c in &self.checks {
            let (result, detail) = match &c.outcome {
                Outcome::Pass => ("ok", String::new()),
                Outcome::Fail(why) => ("FAIL", format!("  {why}")),
                Outcome::Skipped => ("skip", String::new()),
            };
            let _ = writeln!(
                out,
                "{:<width$}  {:<6}  {:>7.2}s{}",
                c.name,
                result,
                c.elapsed.as_secs_f64(),
                detail
            );
        }
        out
    }

    /// `Ok` when everything passed, otherwise an error listing the failures.
    pub fn into_result(self) -> Result<Self> {
        let failures: Vec<String> = self
            .checks
            .iter()
            .filter_map(|c| match &c.outcome {
                Outcome::Fail(why) => Some(format!("{}: {why}", c.name)),
                _ => None,
            })
            .collect();
        if failures.is_empty() {
            Ok(self)
        } else {
            bail!("smoke test failed:\n  {}", failures.join("\n  "))
        }
    }

    fn record(&mut self, name: &str, started: Instant, res: Result<()>) -> bool {
        let outcome = match res {
            Ok(()) => Outcome::Pass,
            Err(e) => Outcome::Fail(format!("{e:#}").replace('\n', " ")),
        };
        let ok = outcome == Outcome::Pass;
        self.checks.push(Check {
            name: name.to_owned(),
            outcome,
            elapsed: started.elapsed(),
        });
        ok
    }

    fn skip(&mut self, name: &str) {
        self.checks.push(Check {
            name: name.to_owned(),
            outcome: Outcome::Skipped,
            elapsed: Duration::ZERO,
        });
    }
}

/// Runs every check against `endpoints`; never stops at the first failure of a health check,
/// so the table shows the whole picture. `progress` sees each check's name as it starts.
pub fn run(endpoints: &Endpoints, opts: &Options, mut progress: impl FnMut(&str)) -> Report {
    let mut report = Report::default();
    let deadline = Instant::now() + opts.ready_timeout;
    let mut client = Client::new(opts.request_timeout);
    if let Some(fix) = &opts.unreachable_fix {
        client.fix.clone_from(fix);
    }

    let mut targets: Vec<(&str, &str)> = Vec::new();
    if let Some(b) = &endpoints.backend {
        targets.push(("backend", b.as_str()));
    }
    targets.push(("frontend", endpoints.frontend.as_str()));
    let mut all_ready = true;
    for (service, base) in &targets {
        for path in ["/health", "/ready"] {
            let name = format!("{service} {path}");
            progress(&name);
            let started = Instant::now();
            let res = wait_ok(&client, &format!("{base}{path}"), deadline);
            all_ready &= report.record(&name, started, res);
        }
    }

    let steps = [
        "sign up",
        "sign in",
        "add task",
        "task listed",
        "complete task",
        "delete task",
        "chat add task",
        "chat task listed",
        "chat task cleanup",
    ];
    if !all_ready {
        for s in steps {
            report.skip(s);
        }
        return report;
    }
    let mut flow = Flow::new(client, &endpoints.frontend);
    for (i, step) in steps.iter().enumerate() {
        progress(step);
        let started = Instant::now();
        let res = match i {
            0 => flow.sign_up(),
            1 => flow.sign_in(),
            2 => flow.add_task(),
            3 => flow.task_listed(),
            4 => flow.complete_task(),
            5 => flow.delete_task(),
            6 => flow.chat_add_task(),
            7 => flow.chat_task_listed(),
            _ => flow.chat_task_cleanup(),
        };
        if !report.record(step, started, res) {
            for s in &steps[i + 1..] {
                report.skip(s);
            }
            break;
        }
    }
    report
}

/// Polls `url` until it answers 200 or the deadline passes; the error is the last answer.
fn wait_ok(client: &Client, url: &str, deadline: Instant) -> Result<()> {
    loop {
        let last = match client.get(url, &BTreeMap::new()) {
            Ok(r) if r.status == 200 => return Ok(()),
            Ok(r) => format!("{url}: HTTP {} {}", r.status, first_line(&r.body)),
            // Already names the URL (once) and the fix.
            Err(e) => format!("{e:#}"),
        };
        if Instant::now() >= deadline {
            bail!("{last}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or("");
    line.chars().take(160).collect()
}

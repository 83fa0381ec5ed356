//! The suite's report: one row per step (requests, rate, latency, statuses, errors, memory,
//! lost writes), what each fault did, each hostile case, and the verdicts; as plain-text
//! tables or, with `--json`, one JSON object per line.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::json;

use super::faults::Observation;
use super::hostile::Case;
use super::memory::mib;
use super::stats::{Tally, percentile, rate};

/// One step's figures.
#[derive(Debug, Clone, Default)]
pub(crate) struct StepRow {
    /// The step, e.g. `workload (60 s, 32 workers)`.
    pub(crate) step: String,
    /// Its answers.
    pub(crate) tally: Tally,
    /// How long it ran (for the rate); `None` when a rate means nothing.
    pub(crate) elapsed: Option<Duration>,
    /// Highest backend memory sampled during the step, in bytes.
    pub(crate) peak_memory: Option<u64>,
    /// Acknowledged writes found missing afterwards; `None` when the step writes nothing.
    pub(crate) lost: Option<u64>,
}

/// A verdict: a property the suite proves or refutes.
#[derive(Debug, Clone)]
pub(crate) struct Check {
    /// The property.
    pub(crate) name: String,
    /// Whether it held.
    pub(crate) ok: bool,
    /// What was measured.
    pub(crate) detail: String,
}

/// Everything the suite measured.
#[derive(Debug, Default)]
pub(crate) struct Report {
    /// One row per step.
    pub(crate) steps: Vec<StepRow>,
    /// What the faults did.
    pub(crate) observations: Vec<Observation>,
    /// Hostile cases.
    pub(crate) hostile: Vec<Case>,
    /// Verdicts.
    pub(crate) checks: Vec<Check>,
    /// The backend container's memory limit in bytes (0: none).
    pub(crate) memory_limit: u64,
    /// Highest backend memory sampled over the whole run.
    pub(crate) peak_memory: Option<u64>,
}

fn ms(v: Option<f64>) -> String {
    v.map_or("-".to_owned(), |v| format!("{v:.0}ms"))
}

impl Report {
    /// Records a verdict.
    pub(crate) fn check(&mut self, name: &str, ok: bool, detail: impl Into<String>) {
        self.checks.push(Check {
            name: name.to_owned(),
            ok,
            detail: detail.into(),
        });
    }

    /// The verdicts that failed.
    pub(crate) fn failures(&self) -> Vec<&Check> {
        self.checks.iter().filter(|c| !c.ok).collect()
    }

    fn limit_text(&self) -> String {
        if self.memory_limit == 0 {
            "no limit".to_owned()
        } else {
            mib(self.memory_limit)
        }
    }

    /// The headline: load held (answers the step allows, per second: a dead backend's refusals
    /// do not count), p99 of those answers, peak memory, faults survived, lost writes.
    pub(crate) fn summary(&self) -> String {
        let load = self.steps.iter().find(|s| s.step.starts_with("workload"));
        let held = load.map_or("-".to_owned(), |s| {
            s.elapsed.map_or("-".to_owned(), |e| {
                format!(
                    "{:.0} req/s ({:.0} answered/s)",
                    rate(s.tally.ok, e),
                    rate(s.tally.requests(), e)
                )
            })
        });
        let p99 = load.map_or("-".to_owned(), |s| ms(percentile(&s.tally.ok_ms, 99.0)));
        let survived = self.observations.iter().filter(|o| o.ok).count();
        let lost: u64 = self.steps.iter().filter_map(|s| s.lost).sum();
        let lost_known = self.steps.iter().any(|s| s.lost.is_some());
        format!(
            "load held: {held}; p99: {p99}; peak backend memory: {} of {}; faults survived: \
             {survived} of {}; lost writes: {}",
            self.peak_memory.map_or("-".to_owned(), mib),
            self.limit_text(),
            self.observations.len(),
            if lost_known {
                lost.to_string()
            } else {
                "-".to_owned()
            }
        )
    }

    /// The plain-text tables.
    pub(crate) fn table(&self) -> String {
        let mut out = String::new();
        let w = self
            .steps
            .iter()
            .map(|s| s.step.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let _ = writeln!(
            out,
            "{:<w$}  {:>8}  {:>7}  {:>7}  {:>7}  {:>9}  {:>6}  {:>22}  {:>4}  statuses",
            "step",
            "requests",
            "req/s",
            "p50",
            "p99",
            "throttled",
            "errors",
            "peak memory / limit",
            "lost"
        );
        for s in &self.steps {
            let r = s.elapsed.map_or("-".to_owned(), |e| {
                format!("{:.1}", rate(s.tally.requests(), e))
            });
            let mem = s.peak_memory.map_or("-".to_owned(), |p| {
                format!("{} / {}", mib(p), self.limit_text())
            });
            let _ = writeln!(
                out,
                "{:<w$}  {:>8}  {:>7}  {:>7}  {:>7}  {:>9}  {:>6}  {:>22}  {:>4}  {}",
                s.step,
                s.tally.requests(),
                r,
                ms(s.tally.percentile(50.0)),
                ms(s.tally.percentile(99.0)),
                s.tally.throttled,
                s.tally.errors,
                mem,
                s.lost.map_or("-".to_owned(), |l| l.to_string()),
                s.tally.status_counts()
            );
        }
        if !self.observations.is_empty() {
            let w = self
                .observations
                .iter()
                .map(|o| o.what.len())
                .max()
                .unwrap_or(5);
            let _ = writeln!(out, "\n{:<w$}  {:>8}  {:<4}  seen", "fault", "after", "ok");
            for o in &self.observations {
                let _ = writeln!(
                    out,
                    "{:<w$}  {:>8}  {:<4}  {}",
                    o.what,
                    o.seconds.map_or("-".to_owned(), |s| format!("{s:.2}s")),
                    if o.ok { "ok" } else { "FAIL" },
                    o.seen
                );
            }
        }
        if !self.hostile.is_empty() {
            let w = self.hostile.iter().map(|c| c.name.len()).max().unwrap_or(5);
            let _ = writeln!(
                out,
                "\n{:<w$}  {:<14}  {:<4}  got",
                "hostile input", "wanted", "ok"
            );
            for c in &self.hostile {
                let _ = writeln!(
                    out,
                    "{:<w$}  {:<14}  {:<4}  {}",
                    c.name,
                    c.wanted,
                    if c.ok { "ok" } else { "FAIL" },
                    c.got
                );
            }
        }
        let w = self.checks.iter().map(|c| c.name.len()).max().unwrap_or(5);
        let _ = writeln!(out, "\n{:<w$}  {:<4}  measured", "check", "ok");
        for c in &self.checks {
            let _ = writeln!(
                out,
                "{:<w$}  {:<4}  {}",
                c.name,
                if c.ok { "ok" } else { "FAIL" },
                c.detail
            );
        }
        let _ = writeln!(out, "\n{}", self.summary());
        out
    }

    /// One JSON object per line: `load-step`, `load-fault`, `load-hostile`, `load-check`,
    /// then `load-summary`.
    pub(crate) fn json_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for s in &self.steps {
            lines.push(
                json!({
                    "event": "load-step",
                    "step": s.step,
                    "requests": s.tally.requests(),
                    "rate": s.elapsed.map(|e| rate(s.tally.requests(), e)),
                    "p50_ms": s.tally.percentile(50.0),
                    "p99_ms": s.tally.percentile(99.0),
                    "statuses": s.tally.statuses,
                    "throttled": s.tally.throttled,
                    "errors": s.tally.errors,
                    "acked_writes": s.tally.acked_writes,
                    "peak_memory_bytes": s.peak_memory,
                    "memory_limit_bytes": self.memory_limit,
                    "lost_writes": s.lost,
                })
                .to_string(),
            );
        }
        for o in &self.observations {
            lines.push(
                json!({"event": "load-fault", "fault": o.what, "seen": o.seen,
                       "seconds": o.seconds, "ok": o.ok})
                .to_string(),
            );
        }
        for c in &self.hostile {
            lines.push(
                json!({"event": "load-hostile", "case": c.name, "wanted": c.wanted,
                       "got": c.got, "ok": c.ok})
                .to_string(),
            );
        }
        for c in &self.checks {
            lines.push(
                json!({"event": "load-check", "check": c.name, "ok": c.ok, "detail": c.detail})
                    .to_string(),
            );
        }
        lines.push(
            json!({"event": "load-summary", "summary": self.summary(),
                   "peak_memory_bytes": self.peak_memory, "memory_limit_bytes": self.memory_limit,
                   "failed_checks": self.failures().len()})
            .to_string(),
        );
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::http::Answer;
    use crate::load::stats::Class;

    #[test]
    fn the_table_and_the_json_carry_the_same_figures() {
        let mut tally = Tally::default();
        for ms in [10, 20, 30] {
            let a = Answer {
                status: Some(200),
                latency: Duration::from_millis(ms),
                ..Answer::default()
            };
            tally.record(&a, Class::Ok);
        }
        let mut r = Report {
            memory_limit: 1 << 30,
            peak_memory: Some(100 << 20),
            ..Report::default()
        };
        r.steps.push(StepRow {
            step: "workload (1 s)".into(),
            tally,
            elapsed: Some(Duration::from_secs(1)),
            peak_memory: Some(100 << 20),
            lost: Some(0),
        });
        r.check("zero lost writes", true, "0 of 3");
        let table = r.table();
        assert!(table.contains("workload (1 s)"), "{table}");
        assert!(table.contains("100.0 MiB / 1024.0 MiB"), "{table}");
        assert!(table.contains("200:3"), "{table}");
        assert!(
            r.summary().starts_with(
                "load held: 3 req/s (3 answered/s); p99: 30ms; peak backend memory: 100.0 MiB"
            ),
            "{}",
            r.summary()
        );
        let lines = r.json_lines();
        let step: serde_json::Value = serde_json::from_str(&lines[0]).unwrap_or_default();
        assert_eq!(step["event"], "load-step");
        assert_eq!(step["requests"], 3);
        assert_eq!(step["lost_writes"], 0);
        assert!(r.failures().is_empty());
    }
}

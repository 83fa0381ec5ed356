//! Events the executor emits; renderers turn them into progress bars, lines or JSON.

use std::time::Duration;

use serde::Serialize;

/// Something that happened during a run.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The plan for this run, before anything runs.
    Planned {
        /// Selected tasks in topological order.
        tasks: Vec<String>,
        /// Target identity.
        target: String,
    },
    /// A task started.
    Started {
        /// Task name.
        task: String,
        /// Its key.
        key: String,
        /// Why it runs.
        reason: String,
    },
    /// A line of output from a task.
    Log {
        /// Task name.
        task: String,
        /// The line.
        line: String,
    },
    /// A task was skipped because its recorded result is current.
    Fresh {
        /// Task name.
        task: String,
        /// Its key.
        key: String,
        /// Why: "up to date", or what an early cutoff found unchanged ("binary unchanged").
        reason: String,
    },
    /// A task succeeded and was recorded.
    Finished {
        /// Task name.
        task: String,
        /// Its key.
        key: String,
        /// Why it ran.
        reason: String,
        /// How long it took.
        #[serde(rename = "duration_ms", serialize_with = "millis")]
        duration: Duration,
    },
    /// A task failed.
    Failed {
        /// Task name.
        task: String,
        /// Its key.
        key: String,
        /// Why it ran.
        reason: String,
        /// How long it took.
        #[serde(rename = "duration_ms", serialize_with = "millis")]
        duration: Duration,
        /// The error, with its causes.
        error: String,
    },
    /// A task never started because another failed or the run was interrupted.
    NotStarted {
        /// Task name.
        task: String,
    },
    /// The target settled the walk ([`super::Target::settle`]): what it did.
    Settled {
        /// Whether every selected task succeeded.
        succeeded: bool,
        /// What it did, one line each.
        lines: Vec<String>,
    },
    /// The run ended.
    Summary {
        /// Tasks that ran and succeeded.
        ran: Vec<String>,
        /// Tasks skipped as fresh.
        fresh: Vec<String>,
        /// Tasks that failed.
        failed: Vec<String>,
        /// Tasks that never started.
        not_started: Vec<String>,
        /// Wall time of the run.
        #[serde(rename = "duration_ms", serialize_with = "millis")]
        duration: Duration,
        /// True when stopped by Ctrl-C.
        interrupted: bool,
    },
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Receives events; implementations synchronise internally (tasks emit from worker threads).
pub trait EventSink: Send + Sync {
    /// Handle one event.
    fn emit(&self, event: Event);
}

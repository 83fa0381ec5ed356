//! The commands' own events, beside the engine's: the app's log lines (`logs`, and `dev` while
//! it watches) and the dev loop's cycles. The engine knows nothing of them; every renderer
//! renders them, so `--json` stays one JSON object a line and a terminal keeps its progress.

use std::time::Duration;

use serde::Serialize;

use super::{Paint, human};
use crate::target::logs::{Service, Stream};

/// Something a command reports beyond a walk's events.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum CommandEvent {
    /// A line of a service's own output.
    AppLog {
        /// `backend`, `frontend` or `postgres`.
        service: &'static str,
        /// The container's stream it came from.
        stream: Stream,
        /// The line.
        line: String,
    },
    /// The dev loop watches the inputs of the deploy walk.
    Watching {
        /// How many input files.
        files: usize,
    },
    /// A dev cycle starts: these inputs changed.
    CycleStarted {
        /// The cycle's number; the first deploy is 1.
        cycle: u64,
        /// The changed files (root-relative); empty for the first deploy.
        changed: Vec<String>,
    },
    /// A dev cycle ended.
    CycleEnded {
        /// The cycle's number.
        cycle: u64,
        /// Whether the deploy walk, smoke test included, succeeded.
        ok: bool,
        /// The changed files that started it.
        changed: Vec<String>,
        /// Tasks that ran (what was rebuilt or replaced).
        ran: Vec<String>,
        /// Tasks that failed.
        failed: Vec<String>,
        /// How long it took.
        #[serde(rename = "duration_ms", serialize_with = "millis")]
        duration: Duration,
        /// What went wrong, as the error is shown; the last good deployment keeps running.
        error: Option<String>,
    },
    /// The dev loop stopped; the deployment stays up.
    Stopped {
        /// The command that tears it down.
        teardown: String,
    },
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A service's line prefix, padded so that every service's lines align (`postgres | `).
pub fn service_prefix(service: &str) -> String {
    let width = Service::ALL
        .iter()
        .map(|s| s.name().len())
        .max()
        .unwrap_or(0);
    format!("{service:<width$} |")
}

/// Where a line of text goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Out {
    /// The app's own lines: stdout, like `docker compose logs`, so they can be piped.
    Stdout,
    /// What the pipeline says: stderr, beside its progress.
    Stderr,
}

/// `event` as text for the line and progress renderers.
pub(super) fn text(event: &CommandEvent, p: Paint) -> (Out, String) {
    match event {
        CommandEvent::AppLog { service, line, .. } => (
            Out::Stdout,
            format!("{} {line}", p.service(service, &service_prefix(service))),
        ),
        CommandEvent::Watching { files } => (
            Out::Stderr,
            format!(
                "watching {files} input files; a change redeploys what it affects (Ctrl-C stops \
                 watching and leaves the app running)"
            ),
        ),
        CommandEvent::CycleStarted { cycle, changed } => (
            Out::Stderr,
            if changed.is_empty() {
                format!("{} deploy", p.bold(&format!("cycle {cycle}:")))
            } else {
                format!(
                    "{} changed: {}",
                    p.bold(&format!("cycle {cycle}:")),
                    shown(changed)
                )
            },
        ),
        CommandEvent::CycleEnded {
            cycle,
            ok,
            ran,
            duration,
            error,
            ..
        } => {
            let head = p.bold(&format!("cycle {cycle}"));
            let text = if *ok {
                let ran = if ran.is_empty() {
                    "nothing needed redoing".to_owned()
                } else {
                    format!("ran {}", ran.join(", "))
                };
                format!("{head} {} in {}: {ran}", p.ok("ok"), human(*duration))
            } else {
                format!(
                    "{head} {} after {}: {}\n  the last good deployment keeps running; waiting \
                     for the next change",
                    p.bad("FAILED"),
                    human(*duration),
                    error.as_deref().unwrap_or("").trim_end()
                )
            };
            (Out::Stderr, text)
        }
        CommandEvent::Stopped { teardown } => (
            Out::Stderr,
            format!("stopped watching; the app is still running (`{teardown}` tears it down)"),
        ),
    }
}

/// The first few paths, then how many more.
fn shown(paths: &[String]) -> String {
    const SHOWN: usize = 3;
    let mut text = paths
        .iter()
        .take(SHOWN)
        .map(|p| format!("`{p}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if paths.len() > SHOWN {
        text.push_str(&format!(" (+{} more)", paths.len() - SHOWN));
    }
    text
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn service_lines_align_like_compose() {
        let line = |service| {
            text(
                &CommandEvent::AppLog {
                    service,
                    stream: Stream::Stdout,
                    line: "hello".into(),
                },
                Paint(false),
            )
        };
        assert_eq!(line("backend"), (Out::Stdout, "backend  | hello".into()));
        assert_eq!(line("postgres"), (Out::Stdout, "postgres | hello".into()));
    }

    #[test]
    fn a_cycle_end_is_one_json_object_naming_what_changed() {
        let event = CommandEvent::CycleEnded {
            cycle: 2,
            ok: false,
            changed: vec!["backend/src/lib.rs".into()],
            ran: vec![],
            failed: vec!["backend-image".into()],
            duration: Duration::from_millis(1500),
            error: Some("error: task(s) failed".into()),
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["event"], "cycle_ended");
        assert_eq!(json["ok"], false);
        assert_eq!(json["changed"][0], "backend/src/lib.rs");
        assert_eq!(json["duration_ms"], 1500);
        let (out, text) = text(&event, Paint(false));
        assert_eq!(out, Out::Stderr);
        assert!(
            text.starts_with("cycle 2 FAILED after 1.5s: error: task(s) failed"),
            "{text}"
        );
    }
}

//! Plain timestamped lines on stderr (no terminal, or `CI=true`).

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use super::command::{Out, text};
use super::{CommandEvent, Paint, Renderer, fresh_line, human, summary_table, timestamp};
use crate::engine::events::{Event, EventSink};

/// Line renderer.
#[derive(Debug)]
pub struct Lines {
    paint: Paint,
    durations: Mutex<BTreeMap<String, Duration>>,
}

impl Lines {
    /// A line renderer, colored or not.
    pub fn new(color: bool) -> Lines {
        Lines {
            paint: Paint(color),
            durations: Mutex::new(BTreeMap::new()),
        }
    }
}

impl EventSink for Lines {
    fn emit(&self, event: Event) {
        let p = self.paint;
        let text = match event {
            Event::Planned { tasks, target } => {
                format!("plan: {} task(s) on target `{target}`", tasks.len())
            }
            Event::Started { task, reason, .. } => format!("{} started ({reason})", p.bold(&task)),
            Event::Log { task, line } => format!("{} | {line}", p.dim(&task)),
            Event::Fresh { task, reason, .. } => fresh_line(p, &p.bold(&task), &reason),
            Event::Finished { task, duration, .. } => {
                if let Ok(mut d) = self.durations.lock() {
                    d.insert(task.clone(), duration);
                }
                format!(
                    "{} {} in {}",
                    p.bold(&task),
                    p.ok("finished"),
                    human(duration)
                )
            }
            Event::Failed {
                task,
                duration,
                error,
                ..
            } => {
                if let Ok(mut d) = self.durations.lock() {
                    d.insert(task.clone(), duration);
                }
                format!(
                    "{} {} after {}: {error}",
                    p.bold(&task),
                    p.bad("FAILED"),
                    human(duration)
                )
            }
            Event::Settled { lines, .. } => {
                let mut err = std::io::stderr().lock();
                for line in lines {
                    let _ = writeln!(err, "{} {} | {line}", p.dim(&timestamp()), p.dim("target"));
                }
                return;
            }
            Event::NotStarted { task } => format!("{} {}", p.bold(&task), p.dim("never started")),
            Event::Summary {
                ran,
                fresh,
                failed,
                not_started,
                duration,
                interrupted,
            } => {
                let durations = self.durations.lock().map(|d| d.clone()).unwrap_or_default();
                let table = summary_table(
                    p,
                    &durations,
                    &ran,
                    &fresh,
                    &failed,
                    &not_started,
                    duration,
                    interrupted,
                );
                let mut err = std::io::stderr().lock();
                let _ = write!(err, "{table}");
                return;
            }
        };
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{} {text}", p.dim(&timestamp()));
    }
}

impl Renderer for Lines {
    fn command(&self, event: CommandEvent) {
        let p = self.paint;
        match text(&event, p) {
            (Out::Stdout, line) => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
            (Out::Stderr, line) => {
                let mut err = std::io::stderr().lock();
                let _ = writeln!(err, "{} {line}", p.dim(&timestamp()));
            }
        }
    }
}

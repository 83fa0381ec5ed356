//! Progress on a terminal: a spinner line per running task with its elapsed time and last
//! output line; fresh and finished tasks printed above; a summary table at the end.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use super::command::{Out, text};
use super::{CommandEvent, Paint, Renderer, human, summary_table};
use crate::engine::events::{Event, EventSink};

/// Log lines kept per task, shown when it fails.
const TAIL: usize = 30;

/// Progress renderer.
pub struct Progress {
    paint: Paint,
    multi: MultiProgress,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    bars: BTreeMap<String, ProgressBar>,
    tails: BTreeMap<String, VecDeque<String>>,
    durations: BTreeMap<String, Duration>,
}

impl Progress {
    /// A progress renderer on stderr.
    pub fn new(color: bool) -> Progress {
        Progress {
            paint: Paint(color),
            multi: MultiProgress::new(),
            inner: Mutex::new(Inner::default()),
        }
    }

    fn println(&self, line: &str) {
        let _ = self.multi.println(line);
    }
}

impl EventSink for Progress {
    fn emit(&self, event: Event) {
        let p = self.paint;
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        match event {
            Event::Planned { .. } => {}
            Event::Started { task, reason, .. } => {
                let style = ProgressStyle::with_template(
                    "{spinner} {prefix:.bold} {wide_msg} {elapsed:>4}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
                let bar = self.multi.add(
                    ProgressBar::new_spinner()
                        .with_style(style)
                        .with_prefix(task.clone()),
                );
                bar.set_message(reason);
                bar.enable_steady_tick(Duration::from_millis(100));
                inner.bars.insert(task, bar);
            }
            Event::Log { task, line } => {
                if let Some(bar) = inner.bars.get(&task) {
                    bar.set_message(line.clone());
                }
                let tail = inner.tails.entry(task).or_default();
                if tail.len() == TAIL {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
            Event::Fresh { task, reason, .. } => self.println(&format!(
                "{} {}",
                p.dim("·"),
                super::fresh_line(p, &task, &reason)
            )),
            Event::Finished { task, duration, .. } => {
                if let Some(bar) = inner.bars.remove(&task) {
                    bar.finish_and_clear();
                }
                inner.durations.insert(task.clone(), duration);
                self.println(&format!("{} {task} {}", p.ok("✓"), p.dim(&human(duration))));
            }
            Event::Failed {
                task,
                duration,
                error,
                ..
            } => {
                if let Some(bar) = inner.bars.remove(&task) {
                    bar.finish_and_clear();
                }
                inner.durations.insert(task.clone(), duration);
                let mut text = format!(
                    "{} {task} failed after {}: {error}",
                    p.bad("✗"),
                    human(duration)
                );
                for line in inner.tails.get(&task).into_iter().flatten() {
                    text.push_str(&format!("\n    {} {line}", p.dim("|")));
                }
                self.println(&text);
            }
            Event::NotStarted { .. } => {}
            Event::Settled { lines, .. } => {
                for line in lines {
                    self.println(&format!("{} {line}", p.dim("target |")));
                }
            }
            Event::Summary {
                ran,
                fresh,
                failed,
                not_started,
                duration,
                interrupted,
            } => {
                for bar in std::mem::take(&mut inner.bars).into_values() {
                    bar.finish_and_clear();
                }
                let table = summary_table(
                    p,
                    &inner.durations,
                    &ran,
                    &fresh,
                    &failed,
                    &not_started,
                    duration,
                    interrupted,
                );
                let _ = self.multi.clear();
                eprint!("{table}");
            }
        }
    }
}

impl Renderer for Progress {
    fn command(&self, event: CommandEvent) {
        match text(&event, self.paint) {
            // Above the bars, on stdout, so that a pipe still gets the app's lines.
            (Out::Stdout, line) => self.multi.suspend(|| println!("{line}")),
            (Out::Stderr, line) => self.println(&line),
        }
    }
}

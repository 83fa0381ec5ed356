//! Rendering of events: progress bars on a terminal, plain timestamped lines, or JSON lines.

mod plain;
mod tty;

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::engine::events::{Event, EventSink};

/// Colors only on a terminal and when `NO_COLOR` is unset or empty.
pub fn color_enabled(stream: &impl IsTerminal) -> bool {
    stream.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// True when `CI` is set to `true` (or `1`): no progress bars.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Which renderer suits this run: `--json`; progress bars on a terminal outside CI; else lines.
pub fn for_run(json: bool) -> Box<dyn EventSink> {
    if json {
        Box::new(JsonLines::default())
    } else if std::io::stderr().is_terminal() && !in_ci() {
        Box::new(tty::Progress::new(color_enabled(&std::io::stderr())))
    } else {
        Box::new(plain::Lines::new(color_enabled(&std::io::stderr())))
    }
}

/// One JSON object per event on stdout.
#[derive(Debug, Default)]
pub struct JsonLines {
    out: Mutex<()>,
}

impl EventSink for JsonLines {
    fn emit(&self, event: Event) {
        let _guard = self.out.lock();
        if let Ok(line) = serde_json::to_string(&event) {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    }
}

/// `HH:MM:SS.mmm` UTC wall-clock time, for plain lines.
pub fn timestamp() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        now.subsec_millis()
    )
}

/// `1.2s`, `850ms`, `2m03s`.
pub fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}m{:02}s", ms / 60_000, ms / 1000 % 60)
    }
}

/// ANSI styling that disappears when colors are off.
#[derive(Debug, Clone, Copy)]
pub struct Paint(pub bool);

impl Paint {
    fn wrap(self, code: &str, s: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    /// Green.
    pub fn ok(self, s: &str) -> String {
        self.wrap("32", s)
    }
    /// Red, bold.
    pub fn bad(self, s: &str) -> String {
        self.wrap("1;31", s)
    }
    /// Dim.
    pub fn dim(self, s: &str) -> String {
        self.wrap("2", s)
    }
    /// Bold.
    pub fn bold(self, s: &str) -> String {
        self.wrap("1", s)
    }
}

/// The closing table shared by the line and progress renderers.
#[allow(clippy::too_many_arguments)]
pub fn summary_table(
    paint: Paint,
    durations: &BTreeMap<String, Duration>,
    ran: &[String],
    fresh: &[String],
    failed: &[String],
    not_started: &[String],
    total: Duration,
    interrupted: bool,
) -> String {
    let mut rows: Vec<(String, String, String)> = Vec::new();
    let dur = |t: &String| durations.get(t).map(|d| human(*d)).unwrap_or_default();
    rows.extend(ran.iter().map(|t| (t.clone(), paint.ok("ran"), dur(t))));
    rows.extend(
        fresh
            .iter()
            .map(|t| (t.clone(), paint.dim("fresh"), String::new())),
    );
    rows.extend(
        failed
            .iter()
            .map(|t| (t.clone(), paint.bad("FAILED"), dur(t))),
    );
    rows.extend(
        not_started
            .iter()
            .map(|t| (t.clone(), paint.dim("never started"), String::new())),
    );
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(4).max(4);
    let mut out = String::new();
    for (task, status, d) in rows {
        out.push_str(&format!("  {task:<width$}  {status}  {d}\n"));
    }
    let verdict = if interrupted {
        paint.bad("interrupted")
    } else if failed.is_empty() {
        paint.ok("ok")
    } else {
        paint.bad("failed")
    };
    out.push_str(&format!(
        "{verdict}: {} ran, {} fresh, {} failed, {} never started in {}\n",
        ran.len(),
        fresh.len(),
        failed.len(),
        not_started.len(),
        human(total)
    ));
    out
}

/// `fresh`, with where it was found when it was not recorded here (a shared cache).
fn fresh_word(reason: &str) -> String {
    if reason == "up to date" {
        "fresh".to_owned()
    } else {
        format!("fresh ({reason})")
    }
}

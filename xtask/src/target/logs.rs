//! The app's own logs on a target: its services, and their output streamed line by line, once
//! or followed across restarts and replacements until cancelled. Each target's module finds its
//! containers or pods and says which command streams one of them; what they print reaches the
//! caller here, as [`LogLine`]s, from one thread per stream.

use std::io::{BufRead as _, BufReader, Read};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result};

use crate::engine::task::{DEFAULT_GRACE, terminate};

/// A service of the app, as `cargo xtask logs SERVICE` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Service {
    /// The HTTP API.
    Backend,
    /// The web UI.
    Frontend,
    /// The database.
    Postgres,
}

impl Service {
    /// Every service, in the order their lines are aligned and listed.
    pub const ALL: [Service; 3] = [Service::Backend, Service::Frontend, Service::Postgres];

    /// The name users type, and the prefix of its lines.
    pub fn name(self) -> &'static str {
        match self {
            Service::Backend => "backend",
            Service::Frontend => "frontend",
            Service::Postgres => "postgres",
        }
    }

    /// The chart's `app.kubernetes.io/component` label of its pods.
    pub fn component(self) -> &'static str {
        match self {
            Service::Backend => "backend",
            Service::Frontend => "frontend",
            Service::Postgres => "database",
        }
    }

    /// The service whose pods carry `component`.
    pub fn of_component(component: &str) -> Option<Service> {
        Service::ALL
            .into_iter()
            .find(|s| s.component() == component)
    }
}

/// What to stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The services whose lines are wanted (never empty).
    pub services: Vec<Service>,
    /// Keep streaming new lines, and the containers that replace these, until cancelled.
    pub follow: bool,
    /// Only this many of the last lines of what runs now (what starts later shows in full).
    pub tail: Option<u64>,
}

/// Which of a container's streams a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    /// Its standard output.
    Stdout,
    /// Its standard error.
    Stderr,
}

/// One line of a service's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Whose.
    pub service: Service,
    /// Which stream.
    pub stream: Stream,
    /// The line, without its line end.
    pub line: String,
}

/// Where lines go; called from several threads at once.
pub type Lines<'a> = &'a (dyn Fn(LogLine) + Sync);

/// How often a streaming loop looks at the cancel flag.
pub(super) const POLL: Duration = Duration::from_millis(50);

/// Runs `cmd` (a `docker logs` or `kubectl logs`), sending every line of its stdout and stderr
/// to `out` as `service`'s, until it exits or `cancel` is set (then it is terminated). Returns
/// its exit status (`None` when cancelled) and its last stderr line, which names the problem
/// when it failed.
pub(super) fn stream(
    mut cmd: Command,
    service: Service,
    cancel: &AtomicBool,
    out: Lines<'_>,
) -> Result<(Option<ExitStatus>, String)> {
    // Never `{cmd:?}`: it prints the environment, which may carry a daemon's credentials.
    let shown = crate::engine::task::shown(&cmd);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {shown}"))?;
    let stdout = child.stdout.take().context("no stdout pipe")?;
    let stderr = child.stderr.take().context("no stderr pipe")?;
    let last_err = Mutex::new(String::new());
    std::thread::scope(|s| {
        s.spawn(|| {
            lines(stdout, |line| {
                out(LogLine {
                    service,
                    stream: Stream::Stdout,
                    line,
                })
            })
        });
        s.spawn(|| {
            lines(stderr, |line| {
                if let Ok(mut last) = last_err.lock() {
                    last.clone_from(&line);
                }
                out(LogLine {
                    service,
                    stream: Stream::Stderr,
                    line,
                });
            });
        });
        loop {
            if let Some(status) = child.try_wait().context("waiting for a log stream")? {
                return Ok(Some(status));
            }
            if cancel.load(Ordering::SeqCst) {
                terminate(&mut child, DEFAULT_GRACE);
                let _ = child.wait();
                return Ok(None);
            }
            std::thread::sleep(POLL);
        }
    })
    .map(|status| (status, last_err.into_inner().unwrap_or_default()))
}

/// Calls `each` with every line of `pipe`, lossily decoded, without its line end.
pub(super) fn lines(pipe: impl Read, mut each: impl FnMut(String)) {
    for line in BufReader::new(pipe).split(b'\n').map_while(Result::ok) {
        each(
            String::from_utf8_lossy(&line)
                .trim_end_matches('\r')
                .to_owned(),
        );
    }
}

/// The error for a stream that failed, with the tool's last words.
pub(super) fn failed(what: &str, status: ExitStatus, last: &str) -> anyhow::Error {
    anyhow::anyhow!("{what} failed ({status}): {last}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn services_map_to_the_chart_s_components_and_back() {
        for s in Service::ALL {
            assert_eq!(Service::of_component(s.component()), Some(s));
        }
        assert_eq!(Service::of_component("database"), Some(Service::Postgres));
        assert_eq!(Service::of_component("postgres"), None);
    }

    #[test]
    fn a_stream_delivers_both_pipes_and_its_status() {
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            "echo out1; echo err1 >&2; printf 'out2\\r\\n'; exit 3",
        ]);
        let got = Mutex::new(Vec::new());
        let cancel = AtomicBool::new(false);
        let (status, last) = stream(cmd, Service::Backend, &cancel, &|l| {
            got.lock().unwrap().push((l.stream, l.line));
        })
        .unwrap();
        assert_eq!(status.unwrap().code(), Some(3));
        assert_eq!(last, "err1");
        let mut got = got.into_inner().unwrap();
        got.sort_by(|a, b| a.1.cmp(&b.1));
        assert_eq!(
            got,
            [
                (Stream::Stderr, "err1".to_owned()),
                (Stream::Stdout, "out1".to_owned()),
                (Stream::Stdout, "out2".to_owned()),
            ]
        );
    }

    #[test]
    fn a_cancelled_stream_stops_its_child() {
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let cancel = AtomicBool::new(true);
        let (status, _) = stream(cmd, Service::Postgres, &cancel, &|_| {}).unwrap();
        assert!(status.is_none());
    }
}

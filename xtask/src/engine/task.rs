//! What the engine asks of a kind of task, and what it hands a task at each step.
//!
//! The engine is generic over `T`, what the tasks act on (for the pipeline, the resolved
//! deployment target): it never looks inside it, it only prunes the graph to its
//! [`Target::name`], keeps results under its [`Target::id`] and lets it [`Target::settle`] a
//! walk. Kinds are passed in as a [`Registry`], so the engine knows none of them.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use xshell::Shell;

use super::Session;
use super::decl::Settings;
use super::events::{Event, EventSink};
use crate::error::Diagnostic;

/// What a task recorded on success, e.g. `{"image": "todo-backend:0123456789ab"}`.
pub type Outputs = BTreeMap<String, String>;

/// What a run's tasks act on.
pub trait Target: Send + Sync {
    /// The name `targets = [...]` lists, e.g. `docker`.
    fn name(&self) -> &'static str;
    /// A stable identity; results are recorded under `target/xtask/<id>/`.
    fn id(&self) -> String;
    /// Called once a walk has run, still under the target's lock, with whether every selected
    /// task succeeded; what it did, one line each. A target that keeps what a walk replaced
    /// puts it back after a failed one here, and lets it go after a good one.
    fn settle(&self, _sh: &Shell, _succeeded: bool) -> anyhow::Result<Vec<String>> {
        Ok(Vec::new())
    }
}

/// The kinds a declaration may use and the targets its `targets` fields may name.
pub struct Registry<T: 'static> {
    /// Every kind, by [`TaskKind::name`].
    pub kinds: Vec<&'static dyn TaskKind<T>>,
    /// Every target name.
    pub targets: &'static [&'static str],
}

impl<T> Registry<T> {
    /// The kind named `name`.
    pub fn kind(&self, name: &str) -> Option<&'static dyn TaskKind<T>> {
        self.kinds.iter().copied().find(|k| k.name() == name)
    }
}

/// A kind of task, e.g. `command` or `docker-image`.
pub trait TaskKind<T>: Send + Sync {
    /// The `kind = "..."` value.
    fn name(&self) -> &'static str;
    /// The targets a task of this kind can run on (`None`: every target). A task of such a kind
    /// must declare `targets` within these, so no kind ever meets a target it cannot serve.
    fn targets(&self) -> Option<&'static [&'static str]> {
        None
    }
    /// Parse and validate the kind's own fields of a task's table. Take each field through
    /// `settings` (unknown fields are then reported by the engine), name other tasks through
    /// [`Settings::require_task`] so the graph checks them, and return errors from
    /// [`Settings::error`] so they point at the offending text.
    fn parse(
        &self,
        settings: &mut Settings,
        cx: &LoadCx<'_>,
    ) -> Result<Box<dyn Task<T>>, Diagnostic>;
}

/// A task of some kind with its settings parsed.
pub trait Task<T>: Send + Sync + std::fmt::Debug {
    /// Tasks that must run every time (environment checks) return true.
    fn always_run(&self) -> bool {
        false
    }
    /// Extra key material beyond the declaration, input files and dependency keys: what the task
    /// acts on (a daemon's ID, a kube context) and resolved settings (a keyed secret digest).
    /// Every value that affects the output and is not in the declaration belongs here.
    fn key_material(&self, _cx: &KeyCx<'_, T>) -> anyhow::Result<BTreeMap<String, String>> {
        Ok(BTreeMap::new())
    }
    /// Extra input files, relative to the project root with `/` separators (for example the
    /// files of a Docker build context). The engine hashes them with the declared `inputs`.
    fn extra_inputs(&self, _cx: &KeyCx<'_, T>) -> anyhow::Result<Vec<String>> {
        Ok(Vec::new())
    }
    /// Early cutoff (as Shake, Bazel and cargo do it): `Some(what)` when this task's outputs
    /// fully describe its result, `what` naming it for people (`"binary"`). A dependent is then
    /// keyed by the outputs it reads instead of this task's key, so a run that reproduces the
    /// recorded outputs leaves everything after it fresh (`binary unchanged`).
    fn early_cutoff(&self) -> Option<&'static str> {
        None
    }
    /// The outputs of `dep`, an early-cutoff dependency, that this task's result depends on
    /// (`None`: all of them). A dependent that reads one binary of several is not re-keyed when
    /// only another one changes.
    fn outputs_read(&self, _dep: &str) -> Option<Vec<String>> {
        None
    }
    /// Cheaply confirm a recorded output still exists (the image tag is in the daemon, the
    /// release is installed). Called only when the key is unchanged; `false` reruns the task.
    fn output_exists(&self, _cx: &CheckCx<'_, T>) -> anyhow::Result<bool> {
        Ok(true)
    }
    /// The outputs of this task's key found in a cache shared beyond this checkout (an image
    /// registry), and where they were found: the task is then recorded as done without running.
    /// Asked only when the task would run for a reason other than `--force` or `always_run`;
    /// `cx.outputs` are the recorded ones (empty without a record). Default: no such cache.
    fn cached(&self, _cx: &CheckCx<'_, T>) -> anyhow::Result<Option<(Outputs, String)>> {
        Ok(None)
    }
    /// Do the work and return the outputs to record. Use [`RunCx::run`] for child processes so
    /// their output is streamed as events and Ctrl-C terminates them.
    fn run(&self, cx: &RunCx<'_, T>) -> anyhow::Result<Outputs>;
}

/// What a kind sees while parsing settings.
#[derive(Debug)]
pub struct LoadCx<'a> {
    /// Project root; settings' relative paths are relative to it.
    pub root: &'a Path,
    /// The task's name.
    pub task: &'a str,
}

/// What a task sees while its key is computed.
pub struct KeyCx<'a, T> {
    /// A shell rooted at the project root.
    pub sh: &'a Shell,
    /// The engine's run-wide values.
    pub session: &'a Session,
    /// What the task acts on.
    pub target: &'a T,
    /// The task's name.
    pub task: &'a str,
}

/// What a task sees while checking that its recorded output exists.
pub struct CheckCx<'a, T> {
    /// A shell rooted at the project root.
    pub sh: &'a Shell,
    /// The engine's run-wide values.
    pub session: &'a Session,
    /// What the task acts on.
    pub target: &'a T,
    /// The task's name.
    pub task: &'a str,
    /// The task's current key (equal to the recorded one).
    pub key: &'a str,
    /// The outputs recorded by its last successful run.
    pub outputs: &'a Outputs,
}

/// What a task sees while running.
pub struct RunCx<'a, T> {
    /// A shell rooted at the project root (this worker's own clone).
    pub sh: &'a Shell,
    /// The engine's run-wide values.
    pub session: &'a Session,
    /// What the task acts on.
    pub target: &'a T,
    /// The task's name.
    pub task: &'a str,
    /// The task's key (64 hex); image tags derive from it, see [`RunCx::short_key`].
    pub key: &'a str,
    /// Outputs of every task this one depends on, directly or not, by task name.
    pub deps: &'a BTreeMap<String, Outputs>,
    /// Set when the user pressed Ctrl-C or the run is being stopped.
    pub cancel: &'a AtomicBool,
    /// Where log lines go.
    pub events: &'a dyn EventSink,
}

/// How long a child may take to exit after SIGTERM before it gets SIGKILL.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(1);

impl<T> RunCx<'_, T> {
    /// The first 12 hex digits of the key, for image tags (`todo-backend:<12 hex>`).
    pub fn short_key(&self) -> &str {
        &self.key[..12]
    }

    /// The output `name` of dependency `task`, or an error naming what is missing.
    pub fn dep_output(&self, task: &str, name: &str) -> anyhow::Result<&str> {
        let outputs = self.deps.get(task).with_context(|| {
            format!(
                "task `{}` needs outputs of `{task}`; add `{task}` to its `deps`",
                self.task
            )
        })?;
        outputs.get(name).map(String::as_str).with_context(|| {
            format!(
                "task `{task}` recorded no output `{name}` (it has: {:?})",
                outputs.keys()
            )
        })
    }

    /// Emit a log line for this task.
    pub fn log(&self, line: impl Into<String>) {
        self.events.emit(Event::Log {
            task: self.task.to_string(),
            line: line.into(),
        });
    }

    /// Run a child process, streaming its stdout and stderr as log lines; terminated on Ctrl-C.
    pub fn run(&self, cmd: xshell::Cmd<'_>) -> anyhow::Result<()> {
        self.spawn(cmd.into(), None, Output::Streamed, (DEFAULT_GRACE, ""))
            .map(drop)
    }

    /// Like [`RunCx::run`] for a compiler: a failure's error quotes the `error` lines the child
    /// printed on stderr (with the location line after each), so a failed build says why in its
    /// one message, not only in the log above it.
    pub fn run_compiler(&self, cmd: xshell::Cmd<'_>) -> anyhow::Result<()> {
        self.spawn(cmd.into(), None, Output::Quoted, (DEFAULT_GRACE, ""))
            .map(drop)
    }

    /// Like [`RunCx::run`], for a child that needs up to `grace` after SIGTERM to leave what it
    /// changed consistent (helm rolls a release back on SIGTERM); on Ctrl-C the wait is logged
    /// with `why`.
    pub fn run_with_grace(
        &self,
        cmd: xshell::Cmd<'_>,
        grace: Duration,
        why: &str,
    ) -> anyhow::Result<()> {
        self.spawn(cmd.into(), None, Output::Streamed, (grace, why))
            .map(drop)
    }

    /// Like [`RunCx::run`] with `stdin` fed to the child (secrets go here, never in argv).
    pub fn run_with_stdin(&self, cmd: xshell::Cmd<'_>, stdin: &[u8]) -> anyhow::Result<()> {
        self.spawn(
            cmd.into(),
            Some(stdin),
            Output::Streamed,
            (DEFAULT_GRACE, ""),
        )
        .map(drop)
    }

    /// Run a child process and return its stdout (stderr is streamed as log lines).
    pub fn read(&self, cmd: xshell::Cmd<'_>) -> anyhow::Result<String> {
        self.spawn(cmd.into(), None, Output::Captured, (DEFAULT_GRACE, ""))
    }

    fn spawn(
        &self,
        mut cmd: Command,
        stdin: Option<&[u8]>,
        output: Output,
        (grace, why): (Duration, &str),
    ) -> anyhow::Result<String> {
        let shown = shown(&cmd);
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start {shown}"))?;
        if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(data)
                .with_context(|| format!("cannot write stdin of {shown}"))?;
        }
        let stdout = child.stdout.take().context("child stdout")?;
        let stderr = child.stderr.take().context("child stderr")?;
        let (events, task) = (self.events, self.task);
        let (captured, status) = std::thread::scope(|s| -> anyhow::Result<_> {
            let out = s.spawn(move || -> String {
                if output == Output::Captured {
                    let mut buf = String::new();
                    let _ = BufReader::new(stdout).read_to_string(&mut buf);
                    buf
                } else {
                    stream(events, task, stdout);
                    String::new()
                }
            });
            let diagnostics = s.spawn(move || stream(events, task, stderr));
            let status = loop {
                if let Some(status) = child.try_wait().context("waiting for child")? {
                    break status;
                }
                if self.cancel.load(Ordering::SeqCst) {
                    if !why.is_empty() {
                        self.log(format!(
                            "interrupted: {why}; waiting up to {}s for it",
                            grace.as_secs()
                        ));
                    }
                    terminate(&mut child, grace);
                    break child.wait().context("waiting for terminated child")?;
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            let quoted = diagnostics.join().unwrap_or_default();
            Ok((out.join().unwrap_or_default(), (status, quoted)))
        })?;
        let (status, quoted) = status;
        if self.cancel.load(Ordering::SeqCst) {
            bail!("interrupted: {shown}");
        }
        if !status.success() {
            if output == Output::Quoted && !quoted.is_empty() {
                bail!("{shown} failed: {status}:\n{}", quoted.join("\n"));
            }
            bail!("{shown} failed: {status}");
        }
        Ok(captured)
    }
}

/// The program and its arguments, quoted as `Command`'s Debug quotes them, but never the
/// environment it sets: that Debug form prints `KEY="value"` for every variable set on the
/// command, and a child's environment may carry a credential.
pub fn shown(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|part| format!("{part:?}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// SIGTERM, up to `grace` to exit, then SIGKILL.
pub fn terminate(child: &mut Child, grace: Duration) {
    let pid = child.id().to_string();
    // `kill` the command: std offers only SIGKILL and unsafe code is forbidden.
    let _ = Command::new("kill")
        .args(["-TERM", &pid])
        .stderr(Stdio::null())
        .status();
    let step = Duration::from_millis(20);
    let mut waited = Duration::ZERO;
    while waited < grace {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(step);
        waited += step;
    }
    let _ = child.kill();
}

/// What becomes of a child's stdout, and what its failure quotes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Output {
    /// Streamed as log lines.
    Streamed,
    /// Returned to the caller.
    Captured,
    /// Streamed, and a failure quotes its `error` lines.
    Quoted,
}

/// How many lines a failure quotes at most.
const QUOTED_LINES: usize = 12;

/// Forward each line of `pipe` as a log event of `task`; returns the first `error` lines (a
/// compiler's diagnostics) with the location line after each.
fn stream(events: &dyn EventSink, task: &str, pipe: impl Read) -> Vec<String> {
    let mut quoted = Vec::new();
    let mut after_error = false;
    for line in BufReader::new(pipe).split(b'\n').map_while(Result::ok) {
        let line = String::from_utf8_lossy(&line)
            .trim_end_matches('\r')
            .to_string();
        if quoted.len() < QUOTED_LINES {
            if line.starts_with("error") {
                quoted.push(line.clone());
                after_error = true;
            } else if after_error && line.trim_start().starts_with("-->") {
                quoted.push(line.clone());
                after_error = false;
            } else {
                after_error = false;
            }
        }
        events.emit(Event::Log {
            task: task.to_string(),
            line,
        });
    }
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shown_command_names_its_arguments_but_never_its_environment() {
        let mut cmd = Command::new("docker");
        cmd.args(["build", "-t", "x"]).env("TOKEN", "s3cret-value");
        let text = shown(&cmd);
        assert_eq!(text, r#""docker" "build" "-t" "x""#);
        assert!(
            format!("{cmd:?}").contains("s3cret-value"),
            "std's Debug form does show it"
        );
    }
}

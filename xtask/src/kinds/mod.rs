//! Task kinds: what `kind = "..."` in `pipeline.toml` means. Each kind parses its own settings at
//! load time and then keys, checks and runs its tasks. Register new kinds in [`registry`].

pub mod command;
pub mod containers;
pub mod docker_image;
pub mod doctor;
pub mod helm_release;
pub mod k8s_secret;
pub mod smoke;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use xshell::Shell;

use crate::engine::Session;
pub use crate::engine::decl::Settings;
use crate::engine::events::{Event, EventSink};
pub use crate::error::Diagnostic;
use crate::target::Target;

/// What a task recorded on success, e.g. `{"image": "todo-backend:0123456789ab"}`.
pub type Outputs = BTreeMap<String, String>;

/// A kind of task, e.g. `command` or `docker-image`.
pub trait TaskKind: Send + Sync {
    /// The `kind = "..."` value.
    fn name(&self) -> &'static str;
    /// Parse and validate the kind's own fields of a task's table (everything except the common
    /// fields `kind`, `deps`, `inputs`, `description`). Take each field through `settings`
    /// (unknown fields are then reported by the engine) and return errors from
    /// [`Settings::error`] so they point at the offending text.
    fn parse(&self, settings: &mut Settings, cx: &LoadCx<'_>) -> Result<Box<dyn Task>, Diagnostic>;
}

/// A task of some kind with its settings parsed.
pub trait Task: Send + Sync + std::fmt::Debug {
    /// Tasks that must run every time (smoke tests, environment checks) return true.
    fn always_run(&self) -> bool {
        false
    }
    /// Extra key material beyond the declaration, input files and dependency keys: what the task
    /// targets (Docker daemon ID, kube context + namespace) and resolved settings (a keyed secret
    /// digest). Every value that affects the output and is not in the declaration belongs here.
    fn key_material(&self, _cx: &KeyCx<'_>) -> anyhow::Result<BTreeMap<String, String>> {
        Ok(BTreeMap::new())
    }
    /// Extra input files, relative to the project root with `/` separators (for example the
    /// files of a Docker build context). The engine hashes them with the declared `inputs`.
    fn extra_inputs(&self, _cx: &KeyCx<'_>) -> anyhow::Result<Vec<String>> {
        Ok(Vec::new())
    }
    /// Cheaply confirm a recorded output still exists (the image tag is in the daemon, the
    /// release is installed). Called only when the key is unchanged; `false` reruns the task.
    fn output_exists(&self, _cx: &CheckCx<'_>) -> anyhow::Result<bool> {
        Ok(true)
    }
    /// Do the work and return the outputs to record. Use [`RunCx::run`] for child processes so
    /// their output is streamed as events and Ctrl-C terminates them.
    fn run(&self, cx: &RunCx<'_>) -> anyhow::Result<Outputs>;
}

/// All kinds `pipeline.toml` may use.
pub fn registry() -> Vec<&'static dyn TaskKind> {
    vec![
        &command::CommandKind,
        // Pipeline kinds: add one line each, e.g. `&docker_image::DockerImageKind,`.
        &docker_image::DockerImageKind,
        &containers::ContainersKind,
        &smoke::SmokeKind,
        &k8s_secret::K8sSecretKind,
        &helm_release::HelmReleaseKind,
        &doctor::DoctorKind,
    ]
}

/// The kind named `name`.
pub fn find(name: &str) -> Option<&'static dyn TaskKind> {
    registry().into_iter().find(|k| k.name() == name)
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
pub struct KeyCx<'a> {
    /// A shell rooted at the project root.
    pub sh: &'a Shell,
    /// Run-wide values (project root, options, docker-env).
    pub session: &'a Session,
    /// Where we deploy.
    pub target: &'a Target,
    /// The task's name.
    pub task: &'a str,
}

/// What a task sees while checking that its recorded output exists.
pub struct CheckCx<'a> {
    /// A shell rooted at the project root.
    pub sh: &'a Shell,
    /// Run-wide values.
    pub session: &'a Session,
    /// Where we deploy.
    pub target: &'a Target,
    /// The task's name.
    pub task: &'a str,
    /// The task's current key (equal to the recorded one).
    pub key: &'a str,
    /// The outputs recorded by its last successful run.
    pub outputs: &'a Outputs,
}

/// What a task sees while running.
pub struct RunCx<'a> {
    /// A shell rooted at the project root (this worker's own clone).
    pub sh: &'a Shell,
    /// Run-wide values.
    pub session: &'a Session,
    /// Where we deploy.
    pub target: &'a Target,
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

impl RunCx<'_> {
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
        self.spawn(cmd.into(), None, false).map(drop)
    }

    /// Like [`RunCx::run`] with `stdin` fed to the child (secrets go here, never in argv).
    pub fn run_with_stdin(&self, cmd: xshell::Cmd<'_>, stdin: &[u8]) -> anyhow::Result<()> {
        self.spawn(cmd.into(), Some(stdin), false).map(drop)
    }

    /// Run a child process and return its stdout (stderr is streamed as log lines).
    pub fn read(&self, cmd: xshell::Cmd<'_>) -> anyhow::Result<String> {
        self.spawn(cmd.into(), None, true)
    }

    fn spawn(
        &self,
        mut cmd: Command,
        stdin: Option<&[u8]>,
        capture: bool,
    ) -> anyhow::Result<String> {
        let shown = format!("{cmd:?}");
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
                if capture {
                    let mut buf = String::new();
                    let _ = BufReader::new(stdout).read_to_string(&mut buf);
                    buf
                } else {
                    stream(events, task, stdout);
                    String::new()
                }
            });
            s.spawn(move || stream(events, task, stderr));
            let status = loop {
                if let Some(status) = child.try_wait().context("waiting for child")? {
                    break status;
                }
                if self.cancel.load(Ordering::SeqCst) {
                    crate::tools::terminate(&mut child);
                    break child.wait().context("waiting for terminated child")?;
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            Ok((out.join().unwrap_or_default(), status))
        })?;
        if self.cancel.load(Ordering::SeqCst) {
            bail!("interrupted: {shown}");
        }
        if !status.success() {
            bail!("{shown} failed: {status}");
        }
        Ok(captured)
    }
}

/// Forward each line of `pipe` as a log event of `task`.
fn stream(events: &dyn EventSink, task: &str, pipe: impl Read) {
    for line in BufReader::new(pipe).split(b'\n').map_while(Result::ok) {
        let line = String::from_utf8_lossy(&line)
            .trim_end_matches('\r')
            .to_string();
        events.emit(Event::Log {
            task: task.to_string(),
            line,
        });
    }
}

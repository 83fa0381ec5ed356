//! The pipeline as commands use it: the engine's session, the command line's options, the
//! target resolved on first use, `pipeline.toml` loaded with this crate's kinds, and runs that
//! render their events and stop on Ctrl-C.

use std::sync::OnceLock;
use std::sync::atomic::Ordering;

use xshell::Shell;

use crate::builder::PROFILE_PARAM;
use crate::cli::GlobalOpts;
use crate::engine::{self, EventSink, Graph, RunOptions, RunReport, Session};
use crate::target::{Declared, Release, Target};

/// Everything a command works with.
#[derive(Debug)]
pub struct Pipeline {
    /// The engine's run-wide values.
    pub session: Session,
    /// The global command-line options.
    pub opts: GlobalOpts,
    target: OnceLock<Target>,
}

impl Pipeline {
    /// The pipeline of the project at `session.root`.
    pub fn new(mut session: Session, opts: GlobalOpts) -> Pipeline {
        if let Some(jobs) = opts.jobs.filter(|&j| j > 0) {
            session.jobs = jobs;
        }
        session.no_wait = opts.no_wait;
        session.refresh = opts.pull;
        if let Some(profile) = opts.build_profile {
            session
                .params
                .insert(PROFILE_PARAM.to_owned(), profile.name().to_owned());
        }
        Pipeline {
            session,
            opts,
            target: OnceLock::new(),
        }
    }

    /// The resolved `--target` (resolved once, on first use, so `graph` and `test` never probe).
    pub fn target(&self, sh: &Shell) -> anyhow::Result<&Target> {
        if let Some(t) = self.target.get() {
            return Ok(t);
        }
        let t = Target::resolve(sh, &self.opts.target_options())?;
        Ok(self.target.get_or_init(|| t))
    }

    /// Every declared task, whatever its targets.
    pub fn graph(&self) -> anyhow::Result<Graph<Target>> {
        engine::load(&self.session, &crate::kinds::registry())
    }

    /// The tasks of `target` only.
    pub fn graph_for(&self, target: &Target) -> anyhow::Result<Graph<Target>> {
        self.prune(self.graph()?, engine::Target::name(target))
    }

    /// `graph` pruned to the target named `target`.
    pub fn prune(&self, graph: Graph<Target>, target: &str) -> anyhow::Result<Graph<Target>> {
        engine::prune(&self.session, graph, target)
    }

    /// Runs `names` (every task when empty) with their dependencies on the target, rendering
    /// events as `--json` and the terminal ask. Ctrl-C stops it cleanly.
    pub fn run(
        &self,
        sh: &Shell,
        names: &[String],
        opts: &RunOptions,
    ) -> anyhow::Result<RunReport> {
        let sink = crate::render::for_run(self.opts.json);
        self.run_with(sh, names, opts, sink.as_ref())
    }

    /// [`Pipeline::run`] with events going to `sink` (a command that renders more than one
    /// walk, or its own events beside them, keeps one renderer).
    pub fn run_with(
        &self,
        sh: &Shell,
        names: &[String],
        opts: &RunOptions,
        sink: &dyn EventSink,
    ) -> anyhow::Result<RunReport> {
        let target = self.target(sh)?;
        let graph = self.graph_for(target)?;
        self.handle_ctrlc(RUN_INTERRUPTED);
        engine::run_tasks(sh, &self.session, &graph, target, names, opts, sink)
    }

    /// What a target's teardown and status need from the declaration: every Helm release the
    /// pipeline installs, with the Secret of its secrets task.
    pub fn declared(&self, graph: &Graph<Target>) -> Declared {
        let releases = graph
            .tasks_of_kind("helm-release")
            .iter()
            .map(|task| {
                let secret = graph
                    .setting(task, "secret-task")
                    .and_then(|s| graph.setting(s, "secret"))
                    .unwrap_or(crate::secrets::SECRET_NAME);
                Release {
                    name: graph
                        .setting(task, "release")
                        .unwrap_or("todo-app")
                        .to_owned(),
                    secret: secret.to_owned(),
                }
            })
            .collect::<Vec<_>>();
        if releases.is_empty() {
            // Nothing declared: tear down what the default chart would have installed.
            return Declared {
                releases: vec![Release {
                    name: "todo-app".to_owned(),
                    secret: crate::secrets::SECRET_NAME.to_owned(),
                }],
            };
        }
        Declared { releases }
    }

    /// The repositories of every image the pipeline builds.
    pub fn image_repositories(&self, graph: &Graph<Target>) -> Vec<String> {
        graph
            .tasks_of_kind("docker-image")
            .iter()
            .filter_map(|t| graph.setting(t, "image").map(str::to_owned))
            .collect()
    }

    /// From now on Ctrl-C sets the session's cancel flag, saying `message`; a second Ctrl-C
    /// exits at once (state is still valid: every write is atomic). The first command to ask
    /// chooses the message: a command that runs walks says what its Ctrl-C means before them.
    pub fn handle_ctrlc(&self, message: &'static str) {
        let cancel = self.session.cancel.clone();
        // Fails only when a handler is already installed (a second run in one process): keep it.
        let _ = ctrlc::set_handler(move || {
            if cancel.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
            eprintln!("{message}");
        });
    }
}

/// What Ctrl-C during a walk says.
const RUN_INTERRUPTED: &str =
    "interrupted: stopping running tasks, starting no new ones (Ctrl-C again to exit now)";

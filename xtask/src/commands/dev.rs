//! `cargo xtask dev`: the inner loop. Deploys as `cargo xtask deploy` does, then watches the
//! inputs of the deploy walk's tasks; each burst of saves that touches one starts a cycle: the
//! same walk again, which reruns only the tasks whose keys changed (so only what changed is
//! rebuilt and replaced), smoke test included. Meanwhile the app's logs stream, each line
//! prefixed with its service. A failed cycle says why and leaves the last good deployment
//! running; Ctrl-C stops watching and leaves the app up.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use xshell::Shell;

use crate::engine::{Event, EventSink, RunReport};
use crate::error::Error;
use crate::pipeline::Pipeline;
use crate::render::{self, CommandEvent, Renderer};
use crate::target::logs::{Request, Service};
use crate::watch::{Changes, Stamps, Watcher};

/// Options of `cargo xtask dev`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Milliseconds without a change that end a burst of saves (an editor writes several files
    /// and renames on one save).
    #[arg(long, default_value_t = 300, value_name = "MS")]
    pub debounce: u64,
}

/// What Ctrl-C says: between cycles it only stops watching.
const INTERRUPTED: &str = "interrupted: stopping the dev loop; a running cycle stops its tasks \
                           (Ctrl-C again to exit now)";

/// The command that tears the deployment down, as the dev loop names it on leaving.
const TEARDOWN: &str = "cargo xtask down";

/// Lines of each running container shown when the logs start (new ones are shown in full).
const LOG_TAIL: u64 = 10;

/// Run `cargo xtask dev`.
pub fn run(sh: &Shell, p: &Pipeline, args: &Args) -> anyhow::Result<()> {
    // Before any walk installs its own: Ctrl-C between cycles is the way out, not a failure.
    p.handle_ctrlc(INTERRUPTED);
    super::doctor::check(sh, p)?;
    let renderer = render::for_run(p.opts.json);
    let renderer = renderer.as_ref();
    let mut watcher = Watcher::new(
        &p.session.root,
        &never_watched(p),
        Duration::from_millis(args.debounce),
    )?;
    // Watched before the first deploy, so a save during it is not missed.
    let mut inputs = deploy_inputs(sh, p)?;
    watcher.cover(&inputs)?;
    let root = &p.session.root;
    let mut stamps = Stamps::of(root, inputs.iter().chain(&ALWAYS.map(String::from)));
    std::thread::scope(|s| {
        let result = (|| -> anyhow::Result<()> {
            let mut logs_started = false;
            let mut changed = Vec::new();
            for cycle in 1.. {
                renderer.command(CommandEvent::CycleStarted {
                    cycle,
                    changed: changed.clone(),
                });
                let outcome = run_cycle(sh, p, renderer, cycle, std::mem::take(&mut changed));
                let interrupted = outcome
                    .as_ref()
                    .err()
                    .and_then(|e| e.downcast_ref::<Error>())
                    .is_some_and(|e| matches!(e, Error::Interrupted));
                if interrupted {
                    renderer.command(CommandEvent::Stopped {
                        teardown: TEARDOWN.to_owned(),
                    });
                    return outcome.map(drop);
                }
                if let Ok(report) = &outcome {
                    if cycle == 1 {
                        super::deploy::announce(p, report);
                    }
                    if !logs_started {
                        logs_started = true;
                        let sh = sh.clone();
                        s.spawn(move || follow_logs(&sh, p, renderer));
                    }
                }
                if cycle == 1 {
                    renderer.command(CommandEvent::Watching {
                        files: inputs.len(),
                    });
                }
                // Until a burst touches an input (or the declaration): then the next cycle.
                loop {
                    let Some(batch) = watcher.next(&p.session.cancel)? else {
                        renderer.command(CommandEvent::Stopped {
                            teardown: TEARDOWN.to_owned(),
                        });
                        return Ok(());
                    };
                    // The inputs now: a new file may be one, a deleted one was one before.
                    let now = deploy_inputs(sh, p).unwrap_or_else(|_| inputs.clone());
                    let mut relevant = relevant(&batch, &inputs, &now);
                    if matches!(batch, Changes::Paths(_)) {
                        // Opened or read (the last cycle's plan and build read every input)
                        // is not changed.
                        relevant = stamps.changed(root, relevant);
                    }
                    inputs = now;
                    watcher.cover(&inputs)?;
                    if !relevant.is_empty() {
                        changed = relevant;
                        break;
                    }
                }
            }
            Ok(())
        })();
        // Stops the logs, which the scope waits for, whatever the reason for leaving.
        p.session.cancel.store(true, Ordering::SeqCst);
        result
    })
}

/// One cycle: the deploy walk, ended by a `cycle_ended` event saying what changed and ran.
fn run_cycle(
    sh: &Shell,
    p: &Pipeline,
    renderer: &dyn Renderer,
    cycle: u64,
    changed: Vec<String>,
) -> anyhow::Result<RunReport> {
    let started = Instant::now();
    let recording = Recording {
        inner: renderer,
        seen: Mutex::default(),
    };
    let outcome = super::deploy::walk(sh, p, false, &recording);
    let seen = recording.seen.into_inner().unwrap_or_default();
    let error = outcome.as_ref().err().map(|e| {
        if seen.errors.is_empty() {
            crate::error::render(e, false).trim_end().to_owned()
        } else {
            seen.errors.join("\n")
        }
    });
    renderer.command(CommandEvent::CycleEnded {
        cycle,
        ok: outcome.is_ok(),
        changed,
        ran: seen.ran,
        failed: seen.failed,
        duration: started.elapsed(),
        error,
    });
    outcome
}

/// Follows every service's logs until the dev loop ends; a failure to is said once.
fn follow_logs(sh: &Shell, p: &Pipeline, renderer: &dyn Renderer) {
    let request = Request {
        services: Service::ALL.to_vec(),
        follow: true,
        tail: Some(LOG_TAIL),
    };
    if let Err(e) = super::logs::stream(sh, p, &request, renderer) {
        eprint!(
            "{}",
            crate::error::render(
                &e.context("the app's logs stopped"),
                render::color_enabled(&std::io::stderr())
            )
        );
    }
}

/// The input files of the deploy walk's tasks, as the graph declares them now.
fn deploy_inputs(sh: &Shell, p: &Pipeline) -> anyhow::Result<BTreeSet<String>> {
    let target = p.target(sh)?;
    let graph = p.graph_for(target)?;
    let selection = graph.select(&[super::deploy::FINAL_TASK.to_owned()])?;
    crate::engine::input_paths(sh, &p.session, &graph, target, &selection)
}

/// What is never watched: the pipeline's own output (`target/`, where the state directory
/// is, and cargo's target directory wherever it is) and git's.
fn never_watched(p: &Pipeline) -> Vec<PathBuf> {
    let root = &p.session.root;
    let mut dirs = vec![
        root.join("target"),
        p.session.xtask_dir(),
        root.join(".git"),
    ];
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        dirs.push(root.join(dir));
    }
    dirs
}

/// What matters besides the inputs: the declaration, and the `.env` file secrets come from.
const ALWAYS: [&str; 2] = ["xtask/pipeline.toml", ".env"];

/// The changed paths that matter: inputs before or after the change, the declaration and
/// the `.env` file the secrets come from. Lost notifications make every input matter.
fn relevant(changes: &Changes, before: &BTreeSet<String>, now: &BTreeSet<String>) -> Vec<String> {
    match changes {
        Changes::Paths(paths) => paths
            .iter()
            .filter(|p| before.contains(*p) || now.contains(*p) || ALWAYS.contains(&p.as_str()))
            .cloned()
            .collect(),
        Changes::Unknown(why) => vec![format!("(unknown: {why})")],
    }
}

/// Forwards a walk's events to the renderer, keeping what the cycle's end reports.
struct Recording<'a> {
    inner: &'a dyn Renderer,
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    ran: Vec<String>,
    failed: Vec<String>,
    errors: Vec<String>,
}

impl EventSink for Recording<'_> {
    fn emit(&self, event: Event) {
        if let Ok(mut seen) = self.seen.lock() {
            match &event {
                Event::Finished { task, .. } => seen.ran.push(task.clone()),
                Event::Failed { task, error, .. } => {
                    seen.failed.push(task.clone());
                    seen.errors.push(format!("{task}: {error}"));
                }
                _ => {}
            }
        }
        self.inner.emit(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_inputs_before_or_after_and_the_declaration_matter() {
        let before = BTreeSet::from(["a.rs".to_owned(), "gone.rs".to_owned()]);
        let now = BTreeSet::from(["a.rs".to_owned(), "new.rs".to_owned()]);
        let changes = Changes::Paths(
            [
                "a.rs",
                "gone.rs",
                "new.rs",
                "README.md",
                "xtask/pipeline.toml",
                ".a.rs.swp",
            ]
            .map(String::from)
            .into(),
        );
        assert_eq!(
            relevant(&changes, &before, &now),
            ["a.rs", "gone.rs", "new.rs", "xtask/pipeline.toml"]
        );
        let nothing = Changes::Paths(BTreeSet::from(["docs/x.md".to_owned()]));
        assert!(relevant(&nothing, &before, &now).is_empty());
        assert_eq!(
            relevant(&Changes::Unknown("overflow".into()), &before, &now).len(),
            1
        );
    }
}

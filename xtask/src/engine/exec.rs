//! The executor: runs planned tasks in parallel with the failure policy, records successes.
//!
//! Policy: a task starts when its dependencies succeeded or are fresh. After a failure or
//! Ctrl-C no new task starts; running ones finish (Ctrl-C terminates their children). Each
//! success is recorded at once (atomically), so a crash loses at most the running tasks.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use xshell::Shell;

use super::events::{Event, EventSink};
use super::plan::{Decision, FORCED, Plan, PlannedTask, dep_entry, finish_key, why_changed};
use super::state::State;
use super::task::{CheckCx, Outputs, RunCx, Target};
use super::{Graph, Session};
use crate::error::Error;

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Ignore recorded results: run every selected task.
    pub force: bool,
}

/// What a successful run produced.
#[derive(Debug, Clone, Default)]
pub struct RunReport {
    /// Outputs of every selected task (recorded ones for fresh tasks).
    pub outputs: BTreeMap<String, Outputs>,
    /// Tasks that ran.
    pub ran: Vec<String>,
    /// Tasks skipped as fresh.
    pub fresh: Vec<String>,
}

/// Take the target's lock, plan `names` (every task when empty) with their dependencies, run
/// what is not fresh and send the events to `sink`. Errors when any task failed.
#[allow(clippy::too_many_arguments)]
pub fn run_tasks<T: Target>(
    sh: &Shell,
    session: &Session,
    graph: &Graph<T>,
    target: &T,
    names: &[String],
    opts: &RunOptions,
    sink: &dyn EventSink,
) -> anyhow::Result<RunReport> {
    let selection = graph.select(names)?;
    let mut locked = super::plan::plan_locked(sh, session, graph, target, &selection, opts.force)?;
    let (plan, dir) = (&locked.plan, &locked.dir);
    execute(
        sh,
        session,
        graph,
        target,
        plan,
        &mut locked.state,
        dir,
        sink,
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Pending,
    Running,
    Done,
    Fresh,
    Failed,
}

/// Run `plan`, recording each success in `state` (saved to `dir`) and emitting events to `sink`.
#[allow(clippy::too_many_arguments)]
pub fn execute<T: Target>(
    sh: &Shell,
    session: &Session,
    graph: &Graph<T>,
    target: &T,
    plan: &Plan,
    state: &mut State,
    dir: &std::path::Path,
    sink: &dyn EventSink,
) -> anyhow::Result<RunReport> {
    let started = Instant::now();
    let jobs = session.jobs.max(1);
    let n = plan.tasks.len();
    let pos: BTreeMap<usize, usize> = plan
        .tasks
        .iter()
        .enumerate()
        .map(|(p, t)| (t.index, p))
        .collect();
    let deps: Vec<Vec<usize>> = plan
        .tasks
        .iter()
        .map(|t| graph.deps[t.index].iter().map(|d| pos[d]).collect())
        .collect();
    let mut status = vec![Status::Pending; n];
    // Decisions and records as execution settles them: a pending decision, or a key that
    // waited for early-cutoff dependencies, is finished once those dependencies are done.
    let mut tasks: Vec<PlannedTask> = plan.tasks.clone();
    let mut settled: Vec<bool> = tasks.iter().map(|t| t.key.is_some()).collect();
    let mut outputs: BTreeMap<String, Outputs> = BTreeMap::new();
    let (mut ran, mut fresh, mut failed) = (Vec::new(), Vec::new(), Vec::new());
    sink.emit(Event::Planned {
        tasks: plan.tasks.iter().map(|t| t.name.clone()).collect(),
        target: target.id(),
    });

    let cancel = &*session.cancel;
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let (tx, rx) = mpsc::channel::<(usize, Duration, anyhow::Result<Outputs>)>();
        let mut running = 0usize;
        let mut stop = false;
        loop {
            stop |= cancel.load(Ordering::SeqCst);
            // Dispatch everything ready, in topological order; fresh tasks complete at once.
            let mut progressed = true;
            while progressed && !stop {
                progressed = false;
                for p in 0..n {
                    let ready = status[p] == Status::Pending
                        && deps[p]
                            .iter()
                            .all(|&d| matches!(status[d], Status::Done | Status::Fresh));
                    if !ready {
                        continue;
                    }
                    if !settled[p] {
                        let keys: Vec<Option<String>> =
                            tasks.iter().map(|t| t.key.clone()).collect();
                        settle(
                            graph,
                            (sh, session, target),
                            &mut tasks[p],
                            &deps[p],
                            (&keys, &plan.tasks),
                            (&outputs, state),
                        )?;
                        settled[p] = true;
                    }
                    let task = &tasks[p];
                    let key = task.key.clone().unwrap_or_default();
                    match &task.decision {
                        Decision::Fresh | Decision::Unchanged(_) => {
                            status[p] = Status::Fresh;
                            let recorded = state
                                .tasks
                                .get(&task.name)
                                .map(|r| r.outputs.clone())
                                .unwrap_or_default();
                            outputs.insert(task.name.clone(), recorded);
                            fresh.push(task.name.clone());
                            sink.emit(Event::Fresh {
                                task: task.name.clone(),
                                key,
                                reason: task.decision.reason(),
                            });
                            progressed = true;
                        }
                        Decision::Cached {
                            from,
                            outputs: found,
                        } => {
                            // Recorded like a success, at once: the next plan finds it fresh.
                            progressed = true;
                            if let Err(e) = record(state, dir, task, found.clone()) {
                                status[p] = Status::Failed;
                                failed.push(task.name.clone());
                                stop = true;
                                sink.emit(Event::Failed {
                                    task: task.name.clone(),
                                    key: key.clone(),
                                    reason: from.clone(),
                                    duration: Duration::ZERO,
                                    error: format!("found but could not be recorded: {e:#}"),
                                });
                                continue;
                            }
                            status[p] = Status::Fresh;
                            outputs.insert(task.name.clone(), found.clone());
                            fresh.push(task.name.clone());
                            sink.emit(Event::Fresh {
                                task: task.name.clone(),
                                key: key.clone(),
                                reason: from.clone(),
                            });
                        }
                        Decision::Run(reason) if running < jobs => {
                            status[p] = Status::Running;
                            running += 1;
                            progressed = true;
                            sink.emit(Event::Started {
                                task: task.name.clone(),
                                key: key.clone(),
                                reason: reason.clone(),
                            });
                            let dep_outputs: BTreeMap<String, Outputs> = graph
                                .transitive_deps(task.index)
                                .into_iter()
                                .filter_map(|d| {
                                    outputs
                                        .get(&graph.tasks[d].name)
                                        .map(|o| (graph.tasks[d].name.clone(), o.clone()))
                                })
                                .collect();
                            let sh = sh.clone();
                            let tx = tx.clone();
                            let decl = &graph.tasks[task.index];
                            scope.spawn(move || {
                                let t0 = Instant::now();
                                let cx = RunCx {
                                    sh: &sh,
                                    session,
                                    target,
                                    task: &decl.name,
                                    key: &key,
                                    deps: &dep_outputs,
                                    cancel,
                                    events: sink,
                                };
                                let result = decl.task.run(&cx);
                                let _ = tx.send((p, t0.elapsed(), result));
                            });
                        }
                        Decision::Run(_) => {}
                        Decision::Pending(_) => {
                            unreachable!("a settled decision is never pending")
                        }
                    }
                }
            }
            if running == 0 {
                break;
            }
            let Ok((p, duration, result)) = rx.recv() else {
                break;
            };
            running -= 1;
            let task = &tasks[p];
            let key = task.key.clone().unwrap_or_default();
            let reason = task.decision.reason();
            match result {
                Ok(out) => {
                    if let Err(e) = record(state, dir, task, out.clone()) {
                        status[p] = Status::Failed;
                        failed.push(task.name.clone());
                        stop = true;
                        sink.emit(Event::Failed {
                            task: task.name.clone(),
                            key: key.clone(),
                            reason,
                            duration,
                            error: format!("succeeded but could not be recorded: {e:#}"),
                        });
                        continue;
                    }
                    status[p] = Status::Done;
                    outputs.insert(task.name.clone(), out);
                    ran.push(task.name.clone());
                    sink.emit(Event::Finished {
                        task: task.name.clone(),
                        key: key.clone(),
                        reason,
                        duration,
                    });
                }
                Err(e) => {
                    status[p] = Status::Failed;
                    failed.push(task.name.clone());
                    stop = true;
                    sink.emit(Event::Failed {
                        task: task.name.clone(),
                        key: key.clone(),
                        reason,
                        duration,
                        error: format!("{e:#}"),
                    });
                }
            }
        }
        Ok(())
    })?;

    let not_started: Vec<String> = (0..n)
        .filter(|&p| status[p] == Status::Pending)
        .map(|p| plan.tasks[p].name.clone())
        .collect();
    for task in &not_started {
        sink.emit(Event::NotStarted { task: task.clone() });
    }
    let interrupted = cancel.load(Ordering::SeqCst);
    let succeeded = failed.is_empty() && not_started.is_empty() && !interrupted;
    let settled = target.settle(sh, succeeded);
    let lines = match &settled {
        Ok(lines) => lines.clone(),
        // Shown here too: after a failed walk, the walk's error is the one returned.
        Err(e) => vec![format!("could not settle the target: {e:#}")],
    };
    if !lines.is_empty() {
        sink.emit(Event::Settled { succeeded, lines });
    }
    sink.emit(Event::Summary {
        ran: ran.clone(),
        fresh: fresh.clone(),
        failed: failed.clone(),
        not_started,
        duration: started.elapsed(),
        interrupted,
    });
    if interrupted {
        return Err(Error::Interrupted.into());
    }
    if !failed.is_empty() {
        return Err(Error::TasksFailed { failed }.into());
    }
    settled.with_context(|| format!("settling target `{}` after the run", target.id()))?;
    Ok(RunReport {
        outputs,
        ran,
        fresh,
    })
}

/// Finishes the key of `task`, whose dependencies (`deps`, plan positions) are all done or
/// fresh, from their keys and the outputs they produced, and decides a pending decision:
/// fresh when the key is the recorded one and the output is still there, else it runs.
fn settle<T: Target>(
    graph: &Graph<T>,
    (sh, session, target): (&Shell, &Session, &T),
    task: &mut PlannedTask,
    deps: &[usize],
    (keys, planned): (&[Option<String>], &[PlannedTask]),
    (outputs, state): (&BTreeMap<String, Outputs>, &State),
) -> anyhow::Result<()> {
    let mut entries = BTreeMap::new();
    for &d in deps {
        let name = &planned[d].name;
        let key = keys[d].as_deref().unwrap_or_default();
        let out = outputs.get(name).cloned().unwrap_or_default();
        entries.insert(
            name.clone(),
            dep_entry(graph, task.index, planned[d].index, key, &out),
        );
    }
    let key = finish_key(graph, task, &entries);
    task.record.deps = entries;
    task.record.key = key.clone();
    task.key = Some(key.clone());
    let decl = &graph.tasks[task.index];
    let old = state.tasks.get(&task.name);
    let Decision::Pending(awaits) = &task.decision else {
        // A task that waited for its key and runs anyway may still find its output in a
        // shared cache, now that the key is known (not when forced or always run).
        if let Decision::Run(reason) = &task.decision
            && reason != FORCED
            && !decl.task.always_run()
        {
            task.decision = cached_or_run(decl, (sh, session, target), &key, old, reason.clone())?;
        }
        return Ok(());
    };
    let what = awaits.0.values().next().copied().unwrap_or("output");
    task.decision = match old {
        Some(old) if old.key == key => {
            let cx = CheckCx {
                sh,
                session,
                target,
                task: &task.name,
                key: &key,
                outputs: &old.outputs,
            };
            if graph.tasks[task.index].task.output_exists(&cx)? {
                Decision::Unchanged(what)
            } else {
                Decision::Run("output missing".into())
            }
        }
        Some(old) => Decision::Run(why_changed(old, &task.record, None, None)),
        None => Decision::Run("no previous run".into()),
    };
    if let Decision::Run(reason) = &task.decision {
        task.decision = cached_or_run(decl, (sh, session, target), &key, old, reason.clone())?;
    }
    Ok(())
}

/// Records `task` as done with `outputs` and saves the state: its per-file digests first, so
/// the state never points at a missing list.
fn record(
    state: &mut State,
    dir: &std::path::Path,
    task: &PlannedTask,
    outputs: Outputs,
) -> anyhow::Result<()> {
    let mut record = task.record.clone();
    record.outputs = outputs;
    record.recorded_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    state.tasks.insert(task.name.clone(), record);
    if let Some(inputs) = &task.inputs {
        super::state::save_inputs(dir, &task.name, inputs)?;
    }
    state.save(dir)
}

/// [`Decision::Cached`] when the task's output for `key` is in a shared cache, else `Run`.
fn cached_or_run<T: Target>(
    decl: &super::decl::TaskDecl<T>,
    (sh, session, target): (&Shell, &Session, &T),
    key: &str,
    old: Option<&super::state::Record>,
    reason: String,
) -> anyhow::Result<Decision> {
    let empty = Outputs::new();
    let cx = CheckCx {
        sh,
        session,
        target,
        task: &decl.name,
        key,
        outputs: old.map_or(&empty, |r| &r.outputs),
    };
    Ok(match decl.task.cached(&cx)? {
        Some((outputs, from)) => Decision::Cached { from, outputs },
        None => Decision::Run(reason),
    })
}

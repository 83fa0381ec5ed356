//! Which selected tasks run and why: keys from hashes, compared with recorded results.

use std::collections::BTreeMap;

use xshell::Shell;

use super::hash::{self, InputFile, StatCache};
use super::key::{self, ENGINE_KEY_VERSION, KeyInput};
use super::state::{Lock, Record, State};
use super::task::{CheckCx, KeyCx, Outputs, Target};
use super::walk;
use super::{Graph, Session};
use crate::error::{Diagnostic, Error};

/// The reason of a task run because the caller forced it.
pub(super) const FORCED: &str = "forced";

/// How many changed paths a reason names before "+N more".
const SHOWN_PATHS: usize = 3;

/// Whether a task runs, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Its recorded result is current.
    Fresh,
    /// It must run, for this reason.
    Run(String),
    /// Decided once early-cutoff tasks it depends on have run: fresh when they reproduce
    /// their recorded outputs, else it runs. Only a plan holds this; execution decides.
    Pending(Awaits),
    /// Found fresh at execution: the early-cutoff tasks it waited for reproduced their
    /// recorded outputs (`what` names them, e.g. "binary").
    Unchanged(&'static str),
    /// Its output for this key exists in a shared cache ([`super::Task::cached`]): recorded
    /// as done with these outputs, without running.
    Cached {
        /// Where it was found, e.g. "in the registry …".
        from: String,
        /// The outputs to record.
        outputs: super::Outputs,
    },
}

/// The early-cutoff tasks a pending decision waits for, with what their outputs are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Awaits(pub BTreeMap<String, &'static str>);

impl Awaits {
    fn merge(&mut self, other: &Awaits) {
        self.0.extend(other.0.iter().map(|(k, v)| (k.clone(), *v)));
    }
}

impl Decision {
    /// Why it runs, or why not: the one rendering of a decision, for plans, events and JSON.
    pub fn reason(&self) -> String {
        match self {
            Decision::Fresh => "up to date".to_owned(),
            Decision::Run(r) => r.clone(),
            Decision::Pending(Awaits(on)) => {
                let names: Vec<String> = on.keys().map(|n| format!("`{n}`")).collect();
                let mut whats: Vec<&str> = on.values().copied().collect();
                whats.dedup();
                match whats.as_slice() {
                    [what] => format!("runs if the {what} of {} changes", names.join(", ")),
                    _ => format!("runs if the outputs of {} change", names.join(", ")),
                }
            }
            Decision::Unchanged(what) => format!("{what} unchanged"),
            Decision::Cached { from, .. } => from.clone(),
        }
    }

    /// `fresh`, `run`, `pending` or `cached`, as `plan --json` names it.
    pub fn word(&self) -> &'static str {
        match self {
            Decision::Fresh | Decision::Unchanged(_) => "fresh",
            Decision::Run(_) => "run",
            Decision::Pending(_) => "pending",
            Decision::Cached { .. } => "cached",
        }
    }
}

/// One selected task in the plan, with what gets recorded when it succeeds.
#[derive(Debug, Clone)]
pub struct PlannedTask {
    /// Graph index.
    pub index: usize,
    /// Task name.
    pub name: String,
    /// Its key (64 hex), or `None` until the early-cutoff tasks it waits for have run.
    pub key: Option<String>,
    /// Run, fresh or pending.
    pub decision: Decision,
    /// The record to store after success (outputs filled in then; key and dependencies too
    /// when they were pending).
    pub record: Record,
    /// Per-file input digests when they were computed (not on the stat-signature fast path).
    pub inputs: Option<BTreeMap<String, String>>,
    /// Kind material as supplied (not only its digests): the key is finished with it once
    /// the dependencies' outputs are known.
    pub(super) material: BTreeMap<String, String>,
}

/// What a dependent's key holds for a dependency: its key, or for an early-cutoff task the
/// digest of the outputs the dependent reads.
pub(super) fn dep_entry<T>(
    graph: &Graph<T>,
    task: usize,
    dep: usize,
    key: &str,
    outputs: &Outputs,
) -> String {
    let name = &graph.tasks[dep].name;
    if graph.tasks[dep].task.early_cutoff().is_none() {
        return key.to_owned();
    }
    let read: Outputs = match graph.tasks[task].task.outputs_read(name) {
        Some(names) => outputs
            .iter()
            .filter(|(k, _)| names.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        None => outputs.clone(),
    };
    format!("outputs {}", key::digest_of(&read))
}

/// The key of `task` from its planned parts and its dependencies' entries.
pub(super) fn finish_key<T>(
    graph: &Graph<T>,
    planned: &PlannedTask,
    deps: &BTreeMap<String, String>,
) -> String {
    let decl = &graph.tasks[planned.index];
    key::compute(&KeyInput {
        engine: ENGINE_KEY_VERSION,
        kind: decl.kind,
        declaration: &decl.canonical,
        inputs: &planned.record.inputs,
        deps,
        material: &planned.material,
    })
}

/// The selected tasks in topological order with their decisions.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Tasks, dependencies first.
    pub tasks: Vec<PlannedTask>,
}

/// Compute keys and decisions for `selection` (graph indices in topological order, closed
/// under dependencies) against the recorded `state`.
pub fn plan_tasks<T: Target>(
    sh: &Shell,
    session: &Session,
    graph: &Graph<T>,
    target: &T,
    selection: &[usize],
    state: &State,
    force: bool,
) -> anyhow::Result<Plan> {
    let root = &session.root;
    // Hashing threads: the cores (it is CPU-bound). Asked only when needed: the answer reads
    // cgroup files, a cost a no-op plan can skip.
    let threads = || std::thread::available_parallelism().map_or(2, |n| n.get());
    // The filesystem clock before any stat: files changed at or after it are not settled.
    let stamp = hash::fs_now(&session.xtask_dir())?;
    // 1. Files of every selected task, stat'ed as they are found; a pattern matching nothing
    //    is a declaration error.
    let mut task_files: BTreeMap<usize, Vec<InputFile>> = BTreeMap::new();
    let mut diagnostics = Vec::new();
    for &i in selection {
        let decl = &graph.tasks[i];
        let patterns: Vec<&str> = decl.inputs.iter().map(|(p, _)| p.as_str()).collect();
        let expansion = hash::expand(root, &patterns, walk::MAX_WALK_THREADS)?;
        for &e in &expansion.empty {
            let (pattern, span) = &decl.inputs[e];
            diagnostics.push(Diagnostic::new(
                format!("input `{pattern}` of task `{}` matches no file", decl.name),
                Some(span.clone()),
                "fix the pattern (relative to the project root) or remove it from `inputs`",
            ));
        }
        let cx = KeyCx {
            sh,
            session,
            target,
            task: &decl.name,
        };
        let extra = decl.task.extra_inputs(&cx)?;
        let mut files = expansion.files;
        if !extra.is_empty() {
            files = walk::merge_extra(files, hash::stat_paths(root, &extra, threads())?);
        }
        task_files.insert(i, files);
    }
    if !diagnostics.is_empty() {
        let path = session.pipeline_file();
        let file = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        return Err(Error::Declaration {
            file,
            text,
            diagnostics,
        }
        .into());
    }
    // 2. Stat signatures: a task whose signature matches its record keeps its inputs digest
    //    without reading any file (git's index trick, with its racy-timestamp rule).
    let mut sigs: BTreeMap<usize, (String, bool)> = BTreeMap::new();
    let mut known: BTreeMap<usize, String> = BTreeMap::new();
    for &i in selection {
        let (sig, settled) = hash::stat_signature(&task_files[&i], stamp);
        let recorded = state.tasks.get(&graph.tasks[i].name);
        if let Some(r) = recorded.filter(|r| r.stat_sig.as_deref() == Some(sig.as_str())) {
            known.insert(i, r.inputs.clone());
        }
        sigs.insert(i, (sig, settled));
    }
    // 3. Digest the files of the other tasks once, in parallel, through the stat cache.
    let mut to_hash: Vec<&InputFile> = selection
        .iter()
        .filter(|i| !known.contains_key(i))
        .flat_map(|i| task_files[i].iter())
        .collect();
    to_hash.sort_by(|a, b| a.path.cmp(&b.path));
    to_hash.dedup_by(|a, b| a.path == b.path);
    let mut digests = Vec::new();
    if !to_hash.is_empty() {
        let cache_path = session.xtask_dir().join("stat-cache");
        let mut cache = StatCache::load(&cache_path, stamp);
        digests = hash::digest_inputs(root, &to_hash, &mut cache, threads())?;
        if let Err(e) = cache.save(&cache_path) {
            eprintln!(
                "notice: cannot save the stat cache ({e:#}); the next run re-reads every input"
            );
        }
    }
    let digest_of = |path: &str| -> String {
        to_hash
            .binary_search_by(|f| f.path.as_str().cmp(path))
            .map(|k| digests[k].clone())
            .unwrap_or_default()
    };
    // 4. Keys in topological order, then decisions. A dependent of an early-cutoff task that
    //    will run cannot know its key before that task's outputs exist: it waits for them.
    let mut keys: BTreeMap<usize, String> = BTreeMap::new();
    let mut waits: BTreeMap<usize, Awaits> = BTreeMap::new();
    let mut tasks: Vec<PlannedTask> = Vec::with_capacity(selection.len());
    for &i in selection {
        let decl = &graph.tasks[i];
        let per_file: Option<BTreeMap<String, String>> = (!known.contains_key(&i)).then(|| {
            task_files[&i]
                .iter()
                .map(|f| (f.path.clone(), digest_of(&f.path)))
                .collect()
        });
        let inputs = match (&per_file, known.get(&i)) {
            (Some(map), _) => hash::inputs_digest(map),
            (None, Some(d)) => d.clone(),
            (None, None) => unreachable!("every task is hashed or known"),
        };
        let old = state.tasks.get(&decl.name);
        // Each dependency's entry, when known now; else what it waits for.
        let mut deps: BTreeMap<String, String> = BTreeMap::new();
        let mut awaits = Awaits::default();
        for &d in &graph.deps[i] {
            let name = graph.tasks[d].name.clone();
            // The outputs it will have, when known now: recorded (fresh) or found in a
            // shared cache.
            let known = match tasks.iter().find(|t| t.index == d).map(|t| &t.decision) {
                Some(Decision::Fresh) => state.tasks.get(&name).map(|r| &r.outputs),
                Some(Decision::Cached { outputs, .. }) => Some(outputs),
                _ => None,
            };
            if let Some(what) = graph.tasks[d].task.early_cutoff() {
                match (known, keys.get(&d)) {
                    (Some(outputs), Some(k)) => {
                        deps.insert(name, dep_entry(graph, i, d, k, outputs));
                    }
                    _ => {
                        awaits.0.insert(name, what);
                    }
                }
            } else if let Some(k) = keys.get(&d) {
                deps.insert(name, k.clone());
            } else if let Some(w) = waits.get(&d) {
                awaits.merge(w);
            }
        }
        let material = decl.task.key_material(&KeyCx {
            sh,
            session,
            target,
            task: &decl.name,
        })?;
        let (sig, settled) = &sigs[&i];
        let mut record = Record {
            key: String::new(),
            declaration: key::digest_of(&(&decl.kind, &decl.canonical)),
            engine: ENGINE_KEY_VERSION,
            inputs,
            stat_sig: settled.then(|| sig.clone()),
            deps: BTreeMap::new(),
            material: material
                .iter()
                .map(|(k, v)| (k.clone(), key::digest_of(v)))
                .collect(),
            outputs: Default::default(),
            recorded_at: 0,
        };
        let mut planned = PlannedTask {
            index: i,
            name: decl.name.clone(),
            key: None,
            decision: Decision::Fresh,
            record: record.clone(),
            inputs: per_file,
            material,
        };
        let waiting = !awaits.0.is_empty();
        // While waiting, the dependencies it waits for are assumed to reproduce what was
        // recorded: if the key still differs, it runs whatever they produce, for the reasons
        // that remain.
        let mut assumed = deps.clone();
        if waiting {
            for &d in &graph.deps[i] {
                let name = &graph.tasks[d].name;
                if !assumed.contains_key(name) {
                    let was = old.and_then(|o| o.deps.get(name)).cloned();
                    assumed.insert(name.clone(), was.unwrap_or_default());
                }
            }
        }
        let key = finish_key(graph, &planned, &assumed);
        record.deps = assumed;
        record.key = key.clone();
        let decision = if force {
            Decision::Run(FORCED.into())
        } else if decl.task.always_run() {
            Decision::Run("always runs".into())
        } else {
            match old {
                None => Decision::Run("no previous run".into()),
                Some(old) if old.key == key && waiting => Decision::Pending(awaits.clone()),
                Some(old) if old.key == key => {
                    let cx = CheckCx {
                        sh,
                        session,
                        target,
                        task: &decl.name,
                        key: &key,
                        outputs: &old.outputs,
                    };
                    if decl.task.output_exists(&cx)? {
                        Decision::Fresh
                    } else {
                        Decision::Run("output missing".into())
                    }
                }
                Some(old) => {
                    let old_inputs = (old.inputs != record.inputs)
                        .then(|| super::state::load_inputs(&session.state_dir(target), &decl.name))
                        .flatten();
                    Decision::Run(why_changed(
                        old,
                        &record,
                        old_inputs.as_ref(),
                        planned.inputs.as_ref(),
                    ))
                }
            }
        };
        // A task that would run may find its output in a shared cache; not one still waiting
        // for its key, whose lookup waits for it too (at execution).
        let decision = match decision {
            Decision::Run(reason) if !waiting && !force && !decl.task.always_run() => {
                let empty = super::Outputs::new();
                let recorded = old.map_or(&empty, |r| &r.outputs);
                let cx = CheckCx {
                    sh,
                    session,
                    target,
                    task: &decl.name,
                    key: &key,
                    outputs: recorded,
                };
                match decl.task.cached(&cx)? {
                    Some((outputs, from)) => Decision::Cached { from, outputs },
                    None => Decision::Run(reason),
                }
            }
            other => other,
        };
        if waiting {
            waits.insert(i, awaits);
        } else {
            keys.insert(i, key.clone());
            planned.key = Some(key);
        }
        planned.record = record;
        planned.decision = decision;
        tasks.push(planned);
    }
    Ok(Plan { tasks })
}

/// Store in `state` the current stat signature of every task found fresh whose recorded
/// signature is stale (a touched file, a checkout that restored content), so the next no-op
/// plan reads no file: git refreshes its index on `status` the same way. The signature is
/// only kept when every input was settled, and only on the record whose key was just
/// confirmed. Returns whether anything changed.
fn refresh_signatures(state: &mut State, plan: &Plan) -> bool {
    let mut changed = false;
    for t in &plan.tasks {
        let Some(sig) = &t.record.stat_sig else {
            continue;
        };
        if t.decision != Decision::Fresh {
            continue;
        }
        if let Some(r) = state.tasks.get_mut(&t.name)
            && Some(&r.key) == t.key.as_ref()
            && r.stat_sig.as_ref() != Some(sig)
        {
            r.stat_sig = Some(sig.clone());
            changed = true;
        }
    }
    changed
}

/// A plan made under the target's lock, with the state it was made against. The lock is held
/// until this is dropped.
#[derive(Debug)]
pub struct Locked {
    /// The plan.
    pub plan: Plan,
    /// The recorded state, with refreshed stat signatures.
    pub state: State,
    /// The target's state directory.
    pub dir: std::path::PathBuf,
    _lock: Lock,
}

/// Takes the target's lock (waiting, or failing with `session.no_wait`), then plans `selection`
/// and records refreshed stat signatures. Planning writes: signatures, and whatever a kind's
/// key needs to exist (a generated secret), so two commands must not plan one target at once.
pub fn plan_locked<T: Target>(
    sh: &Shell,
    session: &Session,
    graph: &Graph<T>,
    target: &T,
    selection: &[usize],
    force: bool,
) -> anyhow::Result<Locked> {
    let dir = session.state_dir(target);
    let lock = Lock::acquire(&dir, &target.id(), session.no_wait)?;
    let mut state = State::load(&dir);
    let plan = plan_tasks(sh, session, graph, target, selection, &state, force)?;
    if refresh_signatures(&mut state, &plan)
        && let Err(e) = state.save(&dir)
    {
        eprintln!(
            "notice: cannot record refreshed stat signatures ({e:#}); the next plan re-hashes"
        );
    }
    Ok(Locked {
        plan,
        state,
        dir,
        _lock: lock,
    })
}

/// The reasons a key changed, most fundamental first.
pub fn why_changed(
    old: &Record,
    new: &Record,
    old_inputs: Option<&BTreeMap<String, String>>,
    new_inputs: Option<&BTreeMap<String, String>>,
) -> String {
    let mut reasons = Vec::new();
    if old.engine != new.engine {
        reasons.push("engine version changed".to_string());
    }
    if old.declaration != new.declaration {
        reasons.push("declaration changed".to_string());
    }
    if old.inputs != new.inputs {
        match (old_inputs, new_inputs) {
            (Some(old_inputs), Some(new_inputs)) => {
                let mut changed: Vec<&str> = new_inputs
                    .iter()
                    .filter(|(p, d)| old_inputs.get(*p) != Some(*d))
                    .map(|(p, _)| p.as_str())
                    .chain(
                        old_inputs
                            .keys()
                            .filter(|p| !new_inputs.contains_key(*p))
                            .map(String::as_str),
                    )
                    .collect();
                changed.sort_unstable();
                let shown: Vec<String> = changed
                    .iter()
                    .take(SHOWN_PATHS)
                    .map(|p| format!("`{p}`"))
                    .collect();
                let more = changed.len().saturating_sub(SHOWN_PATHS);
                let more = if more > 0 {
                    format!(" (+{more} more)")
                } else {
                    String::new()
                };
                reasons.push(format!("inputs changed: {}{more}", shown.join(", ")));
            }
            _ => reasons.push("inputs changed".to_string()),
        }
    }
    let deps: Vec<String> = new
        .deps
        .iter()
        .filter(|(n, k)| old.deps.get(*n) != Some(*k))
        .map(|(n, _)| n.clone())
        .chain(
            old.deps
                .keys()
                .filter(|n| !new.deps.contains_key(*n))
                .cloned(),
        )
        .map(|n| format!("`{n}`"))
        .collect();
    if !deps.is_empty() {
        reasons.push(format!("dependency changed: {}", deps.join(", ")));
    }
    let material: Vec<String> = new
        .material
        .iter()
        .filter(|(n, v)| old.material.get(*n) != Some(*v))
        .map(|(n, _)| format!("`{n}`"))
        .chain(
            old.material
                .keys()
                .filter(|n| !new.material.contains_key(*n))
                .map(|n| format!("`{n}`")),
        )
        .collect();
    if !material.is_empty() {
        reasons.push(format!("{} changed", material.join(", ")));
    }
    if reasons.is_empty() {
        "key changed".to_string()
    } else {
        reasons.join("; ")
    }
}

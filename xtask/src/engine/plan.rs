//! Which selected tasks run and why: keys from hashes, compared with recorded results.

use std::collections::BTreeMap;

use xshell::Shell;

use super::hash::{self, InputFile, StatCache};
use super::key::{self, ENGINE_KEY_VERSION, KeyInput};
use super::state::{Lock, Record, State};
use super::task::{CheckCx, KeyCx, Target};
use super::walk;
use super::{Graph, Session};
use crate::error::{Diagnostic, Error};

/// How many changed paths a reason names before "+N more".
const SHOWN_PATHS: usize = 3;

/// Whether a task runs, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Its recorded result is current.
    Fresh,
    /// It must run, for this reason.
    Run(String),
    /// Its output for this key exists in a shared cache ([`super::Task::cached`]): recorded
    /// as done with these outputs, without running.
    Cached {
        /// Where it was found, e.g. "in the registry …".
        from: String,
        /// The outputs to record.
        outputs: super::Outputs,
    },
}

impl Decision {
    /// `fresh` or the reason it runs.
    pub fn reason(&self) -> &str {
        match self {
            Decision::Fresh => "up to date",
            Decision::Run(r) => r,
            Decision::Cached { from, .. } => from,
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
    /// Its key (64 hex).
    pub key: String,
    /// Run or fresh.
    pub decision: Decision,
    /// The record to store after success (outputs filled in then).
    pub record: Record,
    /// Per-file input digests when they were computed (not on the stat-signature fast path).
    pub inputs: Option<BTreeMap<String, String>>,
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
    // 4. Keys in topological order, then decisions.
    let mut keys: BTreeMap<usize, String> = BTreeMap::new();
    let mut tasks = Vec::with_capacity(selection.len());
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
        let deps: BTreeMap<String, String> = graph.deps[i]
            .iter()
            .map(|&d| (graph.tasks[d].name.clone(), keys[&d].clone()))
            .collect();
        let material = decl.task.key_material(&KeyCx {
            sh,
            session,
            target,
            task: &decl.name,
        })?;
        let key = key::compute(&KeyInput {
            engine: ENGINE_KEY_VERSION,
            kind: decl.kind,
            declaration: &decl.canonical,
            inputs: &inputs,
            deps: &deps,
            material: &material,
        });
        keys.insert(i, key.clone());
        let (sig, settled) = &sigs[&i];
        let record = Record {
            key: key.clone(),
            declaration: key::digest_of(&(&decl.kind, &decl.canonical)),
            engine: ENGINE_KEY_VERSION,
            inputs,
            stat_sig: settled.then(|| sig.clone()),
            deps,
            material: material
                .iter()
                .map(|(k, v)| (k.clone(), key::digest_of(v)))
                .collect(),
            outputs: Default::default(),
            recorded_at: 0,
        };
        let decision = if force {
            Decision::Run("forced".into())
        } else if decl.task.always_run() {
            Decision::Run("always runs".into())
        } else {
            match state.tasks.get(&decl.name) {
                None => Decision::Run("no previous run".into()),
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
                        per_file.as_ref(),
                    ))
                }
            }
        };
        let decision = match decision {
            Decision::Run(reason) if !force && !decl.task.always_run() => {
                let empty = super::Outputs::new();
                let recorded = state.tasks.get(&decl.name).map_or(&empty, |r| &r.outputs);
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
        tasks.push(PlannedTask {
            index: i,
            name: decl.name.clone(),
            key,
            decision,
            record,
            inputs: per_file,
        });
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
            && r.key == t.key
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

//! The validated task graph: dependencies resolved, acyclic, in a deterministic topological
//! order, and prunable to the tasks of one target.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::decl::{Canon, TaskDecl};
use crate::error::{Diagnostic, Error};

/// A validated, acyclic task graph.
#[derive(Debug)]
pub struct Graph<T> {
    /// Tasks sorted by name; indices below refer to this vector.
    pub tasks: Vec<TaskDecl<T>>,
    /// Direct dependencies of each task (sorted indices).
    pub deps: Vec<Vec<usize>>,
    /// Every task, dependencies first; ties broken by name.
    pub topo: Vec<usize>,
    by_name: BTreeMap<String, usize>,
}

impl<T> Graph<T> {
    /// Resolve dependencies (the declared ones and the tasks settings name), reject unknown
    /// ones and cycles, and check that on each of `targets` every task runs where the tasks it
    /// needs run.
    pub fn build(tasks: Vec<TaskDecl<T>>, targets: &[&str]) -> Result<Graph<T>, Vec<Diagnostic>> {
        let graph = Graph::assemble(tasks)?;
        let mut diags = Vec::new();
        for task in &graph.tasks {
            for need in &task.needs {
                let Some(needed) = graph.index(&need.task).map(|i| &graph.tasks[i]) else {
                    continue;
                };
                let missing: Vec<&str> = targets
                    .iter()
                    .copied()
                    .filter(|t| task.runs_on(t) && !needed.runs_on(t))
                    .collect();
                if let Some(target) = missing.first() {
                    diags.push(Diagnostic::new(
                        format!(
                            "task `{}` needs `{}` (its `{}`), which does not run on target `{target}`",
                            task.name, need.task, need.field
                        ),
                        Some(need.span.clone()),
                        format!(
                            "add `{target}` to the `targets` of `{}`, or limit `{}` to the targets `{}` runs on",
                            need.task, task.name, need.task
                        ),
                    ));
                }
            }
        }
        if diags.is_empty() {
            Ok(graph)
        } else {
            Err(diags)
        }
    }

    /// Only the tasks that run on `target`; a dependency on a pruned task is dropped. For a
    /// target [`Graph::build`] checked, no task needs a pruned one; for another, that is an
    /// error at the setting that names it.
    pub fn prune(self, target: &str) -> Result<Graph<T>, Vec<Diagnostic>> {
        let mut tasks: Vec<TaskDecl<T>> = self
            .tasks
            .into_iter()
            .filter(|t| t.runs_on(target))
            .collect();
        let kept: BTreeSet<String> = tasks.iter().map(|t| t.name.clone()).collect();
        for task in &mut tasks {
            task.deps.retain(|(d, _)| kept.contains(d));
        }
        Graph::assemble(tasks)
    }

    fn assemble(mut tasks: Vec<TaskDecl<T>>) -> Result<Graph<T>, Vec<Diagnostic>> {
        tasks.sort_by(|a, b| a.name.cmp(&b.name));
        let by_name: BTreeMap<String, usize> = tasks
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        let mut diags = Vec::new();
        let mut deps = Vec::with_capacity(tasks.len());
        for task in &tasks {
            let mut ds = BTreeSet::new();
            let named = task.deps.iter().map(|(d, span)| (d, span, "deps")).chain(
                task.needs
                    .iter()
                    .map(|n| (&n.task, &n.span, n.field.as_str())),
            );
            for (dep, span, field) in named {
                match by_name.get(dep) {
                    Some(&i) => {
                        ds.insert(i);
                    }
                    None => diags.push(Diagnostic::new(
                        if field == "deps" {
                            format!("unknown dependency `{dep}` of task `{}`", task.name)
                        } else {
                            format!("unknown task `{dep}` in `{field}` of task `{}`", task.name)
                        },
                        Some(span.clone()),
                        match suggest(dep, by_name.keys()) {
                            Some(s) => {
                                format!("did you mean `{s}`? Otherwise declare `[tasks.{dep}]`")
                            }
                            None => {
                                format!("declare `[tasks.{dep}]` or remove `{dep}` from `{field}`")
                            }
                        },
                    )),
                }
            }
            deps.push(ds.into_iter().collect::<Vec<_>>());
        }
        if !diags.is_empty() {
            return Err(diags);
        }
        if let Some(cycle) = find_cycle(&deps) {
            let names: Vec<String> = cycle
                .iter()
                .map(|&i| format!("`{}`", tasks[i].name))
                .collect();
            let first = &tasks[cycle[0]];
            let next = &tasks[cycle[1]].name;
            let span = first
                .deps
                .iter()
                .find(|(d, _)| d == next)
                .map(|(_, s)| s.clone());
            return Err(vec![Diagnostic::new(
                format!("dependency cycle: {}", names.join(" -> ")),
                span.or(Some(first.name_span.clone())),
                "remove one dependency of this loop",
            )]);
        }
        let topo = topo_order(&deps, &tasks);
        Ok(Graph {
            tasks,
            deps,
            topo,
            by_name,
        })
    }

    /// Index of the task named `name`.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// Names of the tasks of kind `kind`.
    pub fn tasks_of_kind(&self, kind: &str) -> Vec<String> {
        self.tasks
            .iter()
            .filter(|t| t.kind == kind)
            .map(|t| t.name.clone())
            .collect()
    }

    /// The string setting `key` of task `task`, as declared (validated by its kind).
    pub fn setting(&self, task: &str, key: &str) -> Option<&str> {
        let decl = self.tasks.iter().find(|t| t.name == task)?;
        match &decl.canonical {
            Canon::Table(settings) => match settings.get(key)? {
                Canon::Str(s) => Some(s),
                _ => None,
            },
            _ => None,
        }
    }

    /// The named tasks and everything they depend on, in topological order; every task when
    /// `names` is empty. Unknown names are a usage error with a suggestion.
    pub fn select(&self, names: &[String]) -> Result<Vec<usize>, Error> {
        if names.is_empty() {
            return Ok(self.topo.clone());
        }
        let mut wanted = BTreeSet::new();
        let mut stack = Vec::new();
        for name in names {
            let i = self.index(name).ok_or_else(|| Error::Usage {
                message: format!("unknown task `{name}`"),
                fix: match suggest(name, self.by_name.keys()) {
                    Some(s) => format!("did you mean `{s}`? (`cargo xtask graph` lists all tasks)"),
                    None => "`cargo xtask graph` lists all tasks".to_string(),
                },
            })?;
            stack.push(i);
        }
        while let Some(i) = stack.pop() {
            if wanted.insert(i) {
                stack.extend(&self.deps[i]);
            }
        }
        Ok(self
            .topo
            .iter()
            .copied()
            .filter(|i| wanted.contains(i))
            .collect())
    }

    /// Every task `i` depends on, directly or not.
    pub fn transitive_deps(&self, i: usize) -> BTreeSet<usize> {
        let mut seen = BTreeSet::new();
        let mut stack = self.deps[i].clone();
        while let Some(d) = stack.pop() {
            if seen.insert(d) {
                stack.extend(&self.deps[d]);
            }
        }
        seen
    }

    /// Graphviz DOT: an edge from each task to each of its dependencies.
    pub fn dot(&self) -> String {
        let mut out = String::from("digraph pipeline {\n  rankdir=LR;\n  node [shape=box];\n");
        for &i in &self.topo {
            let t = &self.tasks[i];
            let _ = writeln!(
                out,
                "  \"{}\" [label=\"{}\\n({})\"];",
                t.name,
                t.name,
                label(t)
            );
        }
        for &i in &self.topo {
            for &d in &self.deps[i] {
                let _ = writeln!(
                    out,
                    "  \"{}\" -> \"{}\";",
                    self.tasks[i].name, self.tasks[d].name
                );
            }
        }
        out.push_str("}\n");
        out
    }

    /// Mermaid flowchart with the same edges as [`Graph::dot`].
    pub fn mermaid(&self) -> String {
        let id = |i: usize| format!("t{i}");
        let mut out = String::from("flowchart LR\n");
        for &i in &self.topo {
            let t = &self.tasks[i];
            let _ = writeln!(out, "  {}[\"{}<br/>({})\"]", id(i), t.name, label(t));
        }
        for &i in &self.topo {
            for &d in &self.deps[i] {
                let _ = writeln!(out, "  {} --> {}", id(i), id(d));
            }
        }
        out
    }
}

/// The kind, and the targets when the task does not run on every target.
fn label<T>(task: &TaskDecl<T>) -> String {
    match &task.targets {
        None => task.kind.to_owned(),
        Some(targets) => {
            let names: Vec<&str> = targets.iter().map(|(t, _)| t.as_str()).collect();
            format!("{}; {}", task.kind, names.join(", "))
        }
    }
}

/// A loop `a -> b -> ... -> a` (first element repeated at the end), if any.
fn find_cycle(deps: &[Vec<usize>]) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let mut mark = vec![Mark::New; deps.len()];
    for start in 0..deps.len() {
        if mark[start] != Mark::New {
            continue;
        }
        // Iterative DFS: (node, next child position); `path` mirrors the active stack.
        let mut stack = vec![(start, 0usize)];
        mark[start] = Mark::Active;
        while let Some(&mut (node, ref mut pos)) = stack.last_mut() {
            if let Some(&child) = deps[node].get(*pos) {
                *pos += 1;
                match mark[child] {
                    Mark::New => {
                        mark[child] = Mark::Active;
                        stack.push((child, 0));
                    }
                    Mark::Active => {
                        let from = stack.iter().position(|&(n, _)| n == child).unwrap_or(0);
                        let mut cycle: Vec<usize> = stack[from..].iter().map(|&(n, _)| n).collect();
                        cycle.push(child);
                        return Some(cycle);
                    }
                    Mark::Done => {}
                }
            } else {
                mark[node] = Mark::Done;
                stack.pop();
            }
        }
    }
    None
}

fn topo_order<T>(deps: &[Vec<usize>], tasks: &[TaskDecl<T>]) -> Vec<usize> {
    let mut remaining: Vec<usize> = deps.iter().map(Vec::len).collect();
    let mut dependents = vec![Vec::new(); deps.len()];
    for (i, ds) in deps.iter().enumerate() {
        for &d in ds {
            dependents[d].push(i);
        }
    }
    let mut ready: BTreeSet<(&str, usize)> = (0..deps.len())
        .filter(|&i| remaining[i] == 0)
        .map(|i| (tasks[i].name.as_str(), i))
        .collect();
    let mut order = Vec::with_capacity(deps.len());
    while let Some((_, i)) = ready.pop_first() {
        order.push(i);
        for &j in &dependents[i] {
            remaining[j] -= 1;
            if remaining[j] == 0 {
                ready.insert((tasks[j].name.as_str(), j));
            }
        }
    }
    order
}

/// The closest known name within a small edit distance.
fn suggest<'a>(name: &str, known: impl Iterator<Item = &'a String>) -> Option<&'a str> {
    known
        .map(|k| (edit_distance(name, k), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min()
        .map(|(_, k)| k.as_str())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push(
                (prev[j] + usize::from(ca != *cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1),
            );
        }
        prev = cur;
    }
    prev[b.len()]
}

//! `pipeline.toml`: schema and validation. Every problem becomes a [`Diagnostic`] with a span.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_spanned::Spanned;

use super::task::{LoadCx, Registry, Task, TaskKind};
use crate::error::Diagnostic;

/// Fields every task has; everything else belongs to its kind.
const COMMON_FIELDS: [&str; 5] = ["kind", "deps", "inputs", "description", "targets"];

/// Fields that do not change what a task produces on a target, so they stay out of its key.
const UNKEYED_FIELDS: [&str; 2] = ["description", "targets"];

/// A task named in another task's settings: it must exist, and run wherever its user runs.
#[derive(Debug, Clone)]
pub struct Need {
    /// The task needed.
    pub task: String,
    /// The setting that names it.
    pub field: String,
    /// Span of the name in the declaration.
    pub span: Range<usize>,
}

/// One declared task, with its kind's settings parsed.
#[derive(Debug)]
pub struct TaskDecl<T> {
    /// Unique name (`[tasks.NAME]`).
    pub name: String,
    /// Span of the name in the header.
    pub name_span: Range<usize>,
    /// Its kind.
    pub kind: &'static str,
    /// Names of the tasks it depends on, with their spans.
    pub deps: Vec<(String, Range<usize>)>,
    /// Input patterns (paths or globs relative to the root; `!pattern` excludes), with spans.
    pub inputs: Vec<(String, Range<usize>)>,
    /// The targets it runs on, with spans; `None`: every target.
    pub targets: Option<Vec<(String, Range<usize>)>>,
    /// Tasks its settings name (implicit dependencies).
    pub needs: Vec<Need>,
    /// One line shown by `graph` and `plan`.
    pub description: Option<String>,
    /// Canonical form of everything that affects the output (all fields but
    /// [`UNKEYED_FIELDS`]).
    pub canonical: Canon,
    /// The kind's parsed task.
    pub task: Box<dyn Task<T>>,
}

impl<T> TaskDecl<T> {
    /// Whether it runs on the target named `target`.
    pub fn runs_on(&self, target: &str) -> bool {
        self.targets
            .as_ref()
            .is_none_or(|ts| ts.iter().any(|(t, _)| t == target))
    }
}

/// A TOML value in canonical form: tables sorted by key whatever the source order.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum Canon {
    /// String.
    Str(String),
    /// Integer.
    Int(i64),
    /// Float.
    Float(f64),
    /// Boolean.
    Bool(bool),
    /// Datetime, as written.
    Datetime(String),
    /// Array.
    Array(Vec<Canon>),
    /// Table, sorted.
    Table(BTreeMap<String, Canon>),
}

impl From<&toml::Value> for Canon {
    fn from(v: &toml::Value) -> Canon {
        match v {
            toml::Value::String(s) => Canon::Str(s.clone()),
            toml::Value::Integer(i) => Canon::Int(*i),
            toml::Value::Float(f) => Canon::Float(*f),
            toml::Value::Boolean(b) => Canon::Bool(*b),
            toml::Value::Datetime(d) => Canon::Datetime(d.to_string()),
            toml::Value::Array(a) => Canon::Array(a.iter().map(Canon::from).collect()),
            toml::Value::Table(t) => {
                Canon::Table(t.iter().map(|(k, v)| (k.clone(), Canon::from(v))).collect())
            }
        }
    }
}

type RawTask = BTreeMap<Spanned<String>, Spanned<toml::Value>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    tasks: BTreeMap<Spanned<String>, Spanned<RawTask>>,
}

/// Parse and validate the declaration text. Graph-level checks (unknown deps, cycles) are in
/// [`super::graph`]; this checks each task on its own.
pub fn parse<T>(
    root: &Path,
    text: &str,
    registry: &Registry<T>,
) -> Result<Vec<TaskDecl<T>>, Vec<Diagnostic>> {
    let raw: RawFile = toml::from_str(text).map_err(|e| vec![toml_error(&e)])?;
    let mut diags = Vec::new();
    let mut tasks = Vec::new();
    for (name, table) in raw.tasks {
        let name_span = name.span();
        let name = name.into_inner();
        match parse_task(
            registry,
            root,
            text,
            &name,
            name_span.clone(),
            table.into_inner(),
        ) {
            Ok(task) => tasks.push(task),
            Err(mut d) => diags.append(&mut d),
        }
    }
    if diags.is_empty() {
        Ok(tasks)
    } else {
        diags.sort_by_key(|d| d.span.as_ref().map_or(0, |s| s.start));
        Err(diags)
    }
}

fn toml_error(e: &toml::de::Error) -> Diagnostic {
    let message = e.message().trim().replace('\n', "; ");
    let fix = if message.contains("duplicate") {
        "task names must be unique: rename or merge one of the `[tasks.NAME]` tables".to_string()
    } else if message.contains("unknown field") {
        "the file may only contain `[tasks.NAME]` tables".to_string()
    } else {
        "correct the TOML syntax at this position".to_string()
    };
    Diagnostic::new(format!("cannot parse pipeline: {message}"), e.span(), fix)
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn parse_task<T>(
    registry: &Registry<T>,
    root: &Path,
    text: &str,
    name: &str,
    name_span: Range<usize>,
    raw: RawTask,
) -> Result<TaskDecl<T>, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    if !valid_name(name) {
        diags.push(Diagnostic::new(
            format!("invalid task name `{name}`"),
            Some(name_span.clone()),
            "use lowercase letters, digits, `-` and `_`, starting with a letter or digit",
        ));
    }
    let canonical = Canon::Table(
        raw.iter()
            .filter(|(k, _)| !UNKEYED_FIELDS.contains(&k.get_ref().as_str()))
            .map(|(k, v)| (k.get_ref().clone(), Canon::from(v.get_ref())))
            .collect(),
    );
    let mut fields: BTreeMap<String, Field> = raw
        .into_iter()
        .map(|(k, v)| {
            let key_span = k.span();
            let value_span = v.span();
            (
                k.into_inner(),
                Field {
                    key_span,
                    value_span,
                    value: v.into_inner(),
                },
            )
        })
        .collect();

    let kind_names = || {
        registry
            .kinds
            .iter()
            .map(|k| format!("`{}`", k.name()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let kind: Option<&'static dyn TaskKind<T>> = match fields.remove("kind") {
        None => {
            diags.push(Diagnostic::new(
                format!("task `{name}` has no `kind`"),
                Some(name_span.clone()),
                format!("add `kind = \"...\"` with one of: {}", kind_names()),
            ));
            None
        }
        Some(Field {
            value: toml::Value::String(k),
            value_span,
            ..
        }) => match registry.kind(&k) {
            Some(kind) => Some(kind),
            None => {
                diags.push(Diagnostic::new(
                    format!("unknown kind `{k}` in task `{name}`"),
                    Some(value_span),
                    format!("use one of: {}", kind_names()),
                ));
                None
            }
        },
        Some(Field { value_span, .. }) => {
            diags.push(Diagnostic::new(
                format!("`kind` of task `{name}` must be a string"),
                Some(value_span),
                format!("write `kind = \"...\"` with one of: {}", kind_names()),
            ));
            None
        }
    };
    let deps = string_list(text, name, "deps", fields.remove("deps"), &mut diags);
    let inputs = string_list(text, name, "inputs", fields.remove("inputs"), &mut diags);
    for (input, span) in &inputs {
        if let Some(problem) = check_input(root, input) {
            diags.push(Diagnostic::new(
                format!("input `{input}` of task `{name}` {problem}"),
                Some(span.clone()),
                "fix the path (relative to the project root) or remove it from `inputs`",
            ));
        }
    }
    let description = match fields.remove("description") {
        None => None,
        Some(Field {
            value: toml::Value::String(s),
            ..
        }) => Some(s),
        Some(Field { value_span, .. }) => {
            diags.push(Diagnostic::new(
                format!("`description` of task `{name}` must be a string"),
                Some(value_span),
                "write `description = \"...\"`",
            ));
            None
        }
    };
    let targets = fields
        .remove("targets")
        .map(|f| string_list(text, name, "targets", Some(f), &mut diags));
    let Some(kind) = kind else {
        return Err(diags);
    };
    check_targets(
        registry,
        kind,
        name,
        &name_span,
        targets.as_deref(),
        &mut diags,
    );
    let mut settings = Settings {
        text,
        task: name.to_string(),
        kind: kind.name(),
        header: name_span.clone(),
        fields,
        asked: BTreeSet::new(),
        needs: Vec::new(),
    };
    let task = match kind.parse(&mut settings, &LoadCx { root, task: name }) {
        Ok(task) => Some(task),
        Err(d) => {
            diags.push(d);
            None
        }
    };
    diags.extend(settings.finish());
    match task {
        Some(task) if diags.is_empty() => Ok(TaskDecl {
            name: name.to_string(),
            name_span,
            kind: kind.name(),
            deps,
            inputs,
            targets,
            needs: settings.needs,
            description,
            canonical,
            task,
        }),
        _ => Err(diags),
    }
}

/// `targets` must name known targets, at least one, and only those the kind can serve; a kind
/// limited to some targets needs its tasks to say so.
fn check_targets<T>(
    registry: &Registry<T>,
    kind: &dyn TaskKind<T>,
    task: &str,
    header: &Range<usize>,
    targets: Option<&[(String, Range<usize>)]>,
    diags: &mut Vec<Diagnostic>,
) {
    let listed = |names: &[&str]| {
        names
            .iter()
            .map(|t| format!("`{t}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let supported = kind.targets();
    let Some(targets) = targets else {
        if let Some(supported) = supported {
            diags.push(Diagnostic::new(
                format!(
                    "task `{task}` of kind `{}` must say where it runs: the kind runs only on {}",
                    kind.name(),
                    listed(supported)
                ),
                Some(header.clone()),
                format!(
                    "add `targets = [{}]` to `[tasks.{task}]`",
                    supported
                        .iter()
                        .map(|t| format!("\"{t}\""))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        return;
    };
    if targets.is_empty() {
        diags.push(Diagnostic::new(
            format!("`targets` of task `{task}` is empty"),
            Some(header.clone()),
            "remove `targets` to run on every target, or name at least one",
        ));
    }
    for (target, span) in targets {
        if !registry.targets.contains(&target.as_str()) {
            diags.push(Diagnostic::new(
                format!("unknown target `{target}` in task `{task}`"),
                Some(span.clone()),
                format!("use one of: {}", listed(registry.targets)),
            ));
        } else if let Some(supported) = supported
            && !supported.contains(&target.as_str())
        {
            diags.push(Diagnostic::new(
                format!(
                    "task `{task}` of kind `{}` cannot run on target `{target}`",
                    kind.name()
                ),
                Some(span.clone()),
                format!(
                    "the kind runs only on {}: remove `{target}`",
                    listed(supported)
                ),
            ));
        }
    }
}

/// Why an input pattern cannot match anything, checked cheaply at load time: its literal part
/// must exist. (A glob that matches no file is reported when inputs are expanded.)
fn check_input(root: &Path, pattern: &str) -> Option<String> {
    let pattern = pattern.strip_prefix('!').unwrap_or(pattern);
    if pattern.is_empty() {
        return Some("is empty".into());
    }
    if pattern.starts_with('/') || pattern.split('/').any(|c| c == "..") {
        return Some("must be relative to the project root, without `..`".into());
    }
    let literal = super::hash::literal_prefix(pattern);
    let path = root.join(&literal);
    if literal.is_empty() || path.symlink_metadata().is_ok() {
        None
    } else {
        Some(format!(
            "does not exist (`{}` not found)",
            if literal.is_empty() { "." } else { &literal }
        ))
    }
}

fn string_list(
    text: &str,
    task: &str,
    field: &str,
    value: Option<Field>,
    diags: &mut Vec<Diagnostic>,
) -> Vec<(String, Range<usize>)> {
    let Some(Field {
        value, value_span, ..
    }) = value
    else {
        return Vec::new();
    };
    let bad = |span| {
        Diagnostic::new(
            format!("`{field}` of task `{task}` must be an array of strings"),
            Some(span),
            format!("write `{field} = [\"...\", \"...\"]`"),
        )
    };
    let toml::Value::Array(items) = value else {
        diags.push(bad(value_span));
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut search_from = value_span.start;
    for item in items {
        let toml::Value::String(s) = item else {
            diags.push(bad(value_span.clone()));
            return Vec::new();
        };
        let span = find_string(text, &s, search_from, value_span.end).unwrap_or(value_span.clone());
        search_from = span.end.min(value_span.end);
        out.push((s, span));
    }
    out
}

/// The span of the quoted literal `s` within `text[from..to]` (values carry no inner spans).
fn find_string(text: &str, s: &str, from: usize, to: usize) -> Option<Range<usize>> {
    let hay = text.get(from..to)?;
    for quote in ['"', '\''] {
        let needle = format!("{quote}{s}{quote}");
        if let Some(i) = hay.find(&needle) {
            return Some(from + i..from + i + needle.len());
        }
    }
    None
}

#[derive(Debug)]
struct Field {
    key_span: Range<usize>,
    value_span: Range<usize>,
    value: toml::Value,
}

/// The kind-specific fields of one task, handed to [`TaskKind::parse`].
#[derive(Debug)]
pub struct Settings<'a> {
    text: &'a str,
    task: String,
    kind: &'static str,
    header: Range<usize>,
    fields: BTreeMap<String, Field>,
    asked: BTreeSet<String>,
    needs: Vec<Need>,
}

impl Settings<'_> {
    /// The task's name.
    pub fn task(&self) -> &str {
        &self.task
    }

    /// The optional field `key`, deserialized as `T`; a wrong type is reported at its value.
    pub fn get<T: DeserializeOwned>(&mut self, key: &str) -> Result<Option<T>, Diagnostic> {
        self.asked.insert(key.to_string());
        let Some(field) = self.fields.get(key) else {
            return Ok(None);
        };
        T::deserialize(field.value.clone()).map(Some).map_err(|e| {
            Diagnostic::new(
                format!(
                    "invalid `{key}` in task `{}`: {}",
                    self.task,
                    e.message().trim()
                ),
                Some(field.value_span.clone()),
                format!(
                    "see the fields of kind `{}` in xtask/pipeline.toml's header comment",
                    self.kind
                ),
            )
        })
    }

    /// The required field `key`; when missing, the fix shows `key = example`.
    pub fn require<T: DeserializeOwned>(
        &mut self,
        key: &str,
        example: &str,
    ) -> Result<T, Diagnostic> {
        self.get(key)?.ok_or_else(|| {
            Diagnostic::new(
                format!("task `{}` of kind `{}` needs `{key}`", self.task, self.kind),
                Some(self.header.clone()),
                format!("add `{key} = {example}` to `[tasks.{}]`", self.task),
            )
        })
    }

    /// The required field `key` naming another task whose outputs this one reads: the graph
    /// checks that it exists, orders it first and runs it on every target this task runs on.
    pub fn require_task(&mut self, key: &str, example: &str) -> Result<String, Diagnostic> {
        let task: String = self.require(key, example)?;
        self.need(key, &task);
        Ok(task)
    }

    /// The optional field `key` naming another task, as [`Settings::require_task`].
    pub fn get_task(&mut self, key: &str) -> Result<Option<String>, Diagnostic> {
        let task: Option<String> = self.get(key)?;
        if let Some(task) = &task {
            self.need(key, task);
        }
        Ok(task)
    }

    /// The optional table `key` whose values name other tasks, as [`Settings::require_task`].
    pub fn get_task_table(
        &mut self,
        key: &str,
    ) -> Result<Option<BTreeMap<String, String>>, Diagnostic> {
        let table: Option<BTreeMap<String, String>> = self.get(key)?;
        for task in table.iter().flat_map(BTreeMap::values) {
            self.need(key, task);
        }
        Ok(table)
    }

    fn need(&mut self, key: &str, task: &str) {
        let value = self
            .fields
            .get(key)
            .map_or(self.header.clone(), |f| f.value_span.clone());
        let span = find_string(self.text, task, value.start, value.end).unwrap_or(value);
        self.needs.push(Need {
            task: task.to_owned(),
            field: key.to_owned(),
            span,
        });
    }

    /// A diagnostic pointing at the value of `key` (or the task header when absent), for
    /// validation a kind does itself (a file that must exist, a value out of range).
    pub fn error(
        &self,
        key: &str,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Diagnostic {
        let span = self
            .fields
            .get(key)
            .map_or(self.header.clone(), |f| f.value_span.clone());
        Diagnostic::new(message, Some(span), fix)
    }

    /// Fields nobody asked for are unknown.
    fn finish(&self) -> Vec<Diagnostic> {
        let mut known: Vec<String> = COMMON_FIELDS.iter().map(|s| s.to_string()).collect();
        known.extend(self.asked.iter().cloned());
        self.fields
            .iter()
            .filter(|(k, _)| !self.asked.contains(*k))
            .map(|(k, f)| {
                Diagnostic::new(
                    format!(
                        "unknown field `{k}` in task `{}` of kind `{}`",
                        self.task, self.kind
                    ),
                    Some(f.key_span.clone()),
                    format!(
                        "remove it or use one of: {}",
                        known
                            .iter()
                            .map(|k| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })
            .collect()
    }
}

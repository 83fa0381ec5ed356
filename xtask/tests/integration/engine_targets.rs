//! The engine on its own, with a kind and a target that exist only here: targets and pruning,
//! tasks named in settings, and a run that records only the target's tasks.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Mutex;

use xshell::Shell;

use xtask::engine::decl::{self, Settings};
use xtask::engine::state::State;
use xtask::engine::{
    Decision, Event, EventSink, Graph, LoadCx, Outputs, Registry, RunCx, RunOptions, Session,
    Target, Task, TaskKind, load_for, plan_tasks, run_tasks,
};
use xtask::error::Diagnostic;

/// A target known only by name.
#[derive(Debug)]
struct Place(&'static str);

impl Target for Place {
    fn name(&self) -> &'static str {
        self.0
    }
    fn id(&self) -> String {
        format!("place-{}", self.0)
    }
}

/// `kind = "note"`: records `text` as its output; `from` names a task whose output it reads.
struct NoteKind;

#[derive(Debug)]
struct Note {
    text: String,
    from: Option<String>,
}

impl TaskKind<Place> for NoteKind {
    fn name(&self) -> &'static str {
        "note"
    }
    fn parse(
        &self,
        s: &mut Settings,
        _cx: &LoadCx<'_>,
    ) -> Result<Box<dyn Task<Place>>, Diagnostic> {
        Ok(Box::new(Note {
            text: s.require("text", "\"hello\"")?,
            from: s.get_task("from")?,
        }))
    }
}

impl Task<Place> for Note {
    fn run(&self, cx: &RunCx<'_, Place>) -> anyhow::Result<Outputs> {
        let mut text = format!("{} on {}", self.text, cx.target.0);
        if let Some(from) = &self.from {
            text = format!("{text} after {}", cx.dep_output(from, "text")?);
        }
        cx.log(text.clone());
        Ok(Outputs::from([("text".to_owned(), text)]))
    }
}

/// `kind = "only-a"`: a kind that serves target `a` alone.
struct OnlyAKind;

impl TaskKind<Place> for OnlyAKind {
    fn name(&self) -> &'static str {
        "only-a"
    }
    fn targets(&self) -> Option<&'static [&'static str]> {
        Some(&["a"])
    }
    fn parse(
        &self,
        _s: &mut Settings,
        _cx: &LoadCx<'_>,
    ) -> Result<Box<dyn Task<Place>>, Diagnostic> {
        Ok(Box::new(Note {
            text: "only a".into(),
            from: None,
        }))
    }
}

fn registry() -> Registry<Place> {
    Registry {
        kinds: vec![&NoteKind, &OnlyAKind],
        targets: &["a", "b"],
    }
}

fn graph(text: &str) -> Result<Graph<Place>, Vec<Diagnostic>> {
    Graph::build(
        decl::parse(Path::new("."), text, &registry())?,
        registry().targets,
    )
}

fn messages(text: &str) -> Vec<String> {
    graph(text)
        .unwrap_err()
        .into_iter()
        .map(|d| format!("{} @{:?}", d.message, d.span.map(|s| &text[s])))
        .collect()
}

#[derive(Default)]
struct Collect(Mutex<Vec<Event>>);

impl EventSink for Collect {
    fn emit(&self, event: Event) {
        self.0.lock().unwrap().push(event);
    }
}

const PIPELINE: &str = r#"
[tasks.base]
kind = "note"
text = "base"

[tasks.on-a]
kind = "note"
text = "a"
targets = ["a"]
deps = ["base"]

[tasks.on-b]
kind = "note"
text = "b"
targets = ["b"]
from = "base"

[tasks.last]
kind = "note"
text = "last"
deps = ["on-a", "on-b"]
"#;

fn names(g: &Graph<Place>) -> Vec<&str> {
    g.topo.iter().map(|&i| g.tasks[i].name.as_str()).collect()
}

#[test]
fn pruning_keeps_the_target_s_tasks_and_drops_dependencies_on_the_others() {
    let a = graph(PIPELINE).unwrap().prune("a").unwrap();
    assert_eq!(names(&a), ["base", "on-a", "last"]);
    let last = a.index("last").unwrap();
    assert_eq!(a.deps[last], [a.index("on-a").unwrap()]);
    let b = graph(PIPELINE).unwrap().prune("b").unwrap();
    assert_eq!(names(&b), ["base", "on-b", "last"]);
}

#[test]
fn a_task_named_in_settings_is_a_dependency() {
    let g = graph(PIPELINE).unwrap();
    let on_b = g.index("on-b").unwrap();
    assert_eq!(g.deps[on_b], [g.index("base").unwrap()]);
}

#[test]
fn a_needed_task_missing_on_a_target_is_a_declaration_error_at_the_setting() {
    let text = "[tasks.x]\nkind = \"note\"\ntext = \"x\"\ntargets = [\"a\"]\n\n\
                [tasks.y]\nkind = \"note\"\ntext = \"y\"\nfrom = \"x\"\n";
    assert_eq!(
        messages(text),
        ["task `y` needs `x` (its `from`), which does not run on target `b` @Some(\"\\\"x\\\"\")"]
    );
}

#[test]
fn targets_are_checked_against_the_registry_and_the_kind() {
    let text = "[tasks.x]\nkind = \"note\"\ntext = \"x\"\ntargets = [\"c\"]\n\n\
                [tasks.y]\nkind = \"only-a\"\n\n\
                [tasks.z]\nkind = \"only-a\"\ntargets = [\"a\", \"b\"]\n";
    let got = decl::parse(Path::new("."), text, &registry()).unwrap_err();
    let got: Vec<String> = got
        .into_iter()
        .map(|d| format!("{} @{:?}", d.message, d.span.map(|s| &text[s])))
        .collect();
    assert_eq!(
        got,
        [
            "unknown target `c` in task `x` @Some(\"\\\"c\\\"\")",
            "task `y` of kind `only-a` must say where it runs: the kind runs only on `a` @Some(\"y\")",
            "task `z` of kind `only-a` cannot run on target `b` @Some(\"\\\"b\\\"\")",
        ]
    );
}

#[test]
fn an_unknown_task_in_a_setting_is_named_with_a_suggestion() {
    let text = "[tasks.base]\nkind = \"note\"\ntext = \"x\"\n\n\
                [tasks.y]\nkind = \"note\"\ntext = \"y\"\nfrom = \"bsae\"\n";
    let err = graph(text).unwrap_err();
    assert_eq!(err.len(), 1);
    assert_eq!(err[0].message, "unknown task `bsae` in `from` of task `y`");
    assert!(
        err[0].fix.contains("did you mean `base`?"),
        "{}",
        err[0].fix
    );
}

#[test]
fn targets_and_description_stay_out_of_the_key() {
    let with = "[tasks.t]\nkind = \"note\"\ntext = \"t\"\ntargets = [\"a\"]\ndescription = \"d\"\n";
    let without = "[tasks.t]\nkind = \"note\"\ntext = \"t\"\n";
    let canon = |text| {
        decl::parse(Path::new("."), text, &registry()).unwrap()[0]
            .canonical
            .clone()
    };
    assert_eq!(canon(with), canon(without));
}

#[test]
fn a_run_records_only_the_target_s_tasks_and_hands_outputs_on() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("xtask")).unwrap();
    std::fs::write(dir.path().join("xtask/pipeline.toml"), PIPELINE).unwrap();
    let session = Session::new(dir.path().to_path_buf());
    let sh = Shell::new().unwrap();
    sh.change_dir(dir.path());
    let target = Place("b");
    let g = load_for(&session, &registry(), &target).unwrap();
    let sink = Collect::default();
    let report = run_tasks(
        &sh,
        &session,
        &g,
        &target,
        &[],
        &RunOptions::default(),
        &sink,
    )
    .unwrap();
    assert_eq!(report.ran, ["base", "on-b", "last"]);
    assert_eq!(report.outputs["on-b"]["text"], "b on b after base on b");
    let state = State::load(&session.state_dir(&target));
    assert_eq!(
        state.tasks.keys().collect::<Vec<_>>(),
        ["base", "last", "on-b"]
    );
    let events = sink.0.lock().unwrap();
    assert!(matches!(&events[0], Event::Planned { target, .. } if target == "place-b"));
    // Planned again: everything fresh.
    let plan = plan_tasks(&sh, &session, &g, &target, &g.topo, &state, false).unwrap();
    assert!(plan.tasks.iter().all(|t| t.decision == Decision::Fresh));
}

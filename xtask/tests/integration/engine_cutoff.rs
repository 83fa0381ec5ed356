//! Early cutoff in the engine, with kinds that exist only here: `compile` turns `src/*.txt`
//! into one output per file with its `#` comment lines dropped (a compiler that drops doc
//! comments), and declares that its outputs describe its result; `pack` reads one of those
//! outputs. A comment-only edit re-runs `compile` and nothing after it; a real edit re-runs
//! only the `pack` of the changed output and what depends on it.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use xshell::Shell;

use xtask::engine::decl::{self, Settings};
use xtask::engine::state::State;
use xtask::engine::{
    CheckCx, Decision, Event, EventSink, Graph, LoadCx, Outputs, Registry, RunCx, RunOptions,
    Session, Target, Task, TaskKind, plan_tasks, run_tasks,
};
use xtask::error::Diagnostic;

#[derive(Debug)]
struct Place;

impl Target for Place {
    fn name(&self) -> &'static str {
        "here"
    }
    fn id(&self) -> String {
        "here".to_owned()
    }
}

struct CompileKind;

#[derive(Debug)]
struct Compile;

impl TaskKind<Place> for CompileKind {
    fn name(&self) -> &'static str {
        "compile"
    }
    fn parse(&self, _: &mut Settings, _: &LoadCx<'_>) -> Result<Box<dyn Task<Place>>, Diagnostic> {
        Ok(Box::new(Compile))
    }
}

impl Task<Place> for Compile {
    fn early_cutoff(&self) -> Option<&'static str> {
        Some("binary")
    }
    fn run(&self, cx: &RunCx<'_, Place>) -> anyhow::Result<Outputs> {
        let mut out = Outputs::new();
        for name in ["a", "b"] {
            let text = std::fs::read_to_string(cx.session.root.join(format!("src/{name}.txt")))?;
            let code: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
            out.insert(name.to_owned(), code.join("\n"));
        }
        Ok(out)
    }
}

/// `kind = "pack"`: `from` names the compile task, `read` the output it packs. Its output is
/// "there" while `gone` (a file) does not exist.
struct PackKind;

#[derive(Debug)]
struct Pack {
    from: Option<String>,
    read: Option<String>,
}

impl TaskKind<Place> for PackKind {
    fn name(&self) -> &'static str {
        "pack"
    }
    fn parse(&self, s: &mut Settings, _: &LoadCx<'_>) -> Result<Box<dyn Task<Place>>, Diagnostic> {
        Ok(Box::new(Pack {
            from: s.get_task("from")?,
            read: s.get("read")?,
        }))
    }
}

impl Task<Place> for Pack {
    fn outputs_read(&self, dep: &str) -> Option<Vec<String>> {
        (self.from.as_deref() == Some(dep))
            .then(|| self.read.clone().into_iter().collect())
            .filter(|v: &Vec<String>| !v.is_empty())
    }
    fn output_exists(&self, cx: &CheckCx<'_, Place>) -> anyhow::Result<bool> {
        Ok(!cx.session.root.join(format!("gone-{}", cx.task)).exists())
    }
    fn run(&self, cx: &RunCx<'_, Place>) -> anyhow::Result<Outputs> {
        let text = match (&self.from, &self.read) {
            (Some(from), Some(read)) => cx.dep_output(from, read)?.to_owned(),
            _ => cx.task.to_owned(),
        };
        Ok(Outputs::from([("packed".to_owned(), text)]))
    }
}

fn registry() -> Registry<Place> {
    Registry {
        kinds: vec![&CompileKind, &PackKind],
        targets: &["here"],
    }
}

const PIPELINE: &str = r#"
[tasks.compile]
kind = "compile"
inputs = ["src"]

[tasks.pack-a]
kind = "pack"
from = "compile"
read = "a"

[tasks.pack-b]
kind = "pack"
from = "compile"
read = "b"

[tasks.ship]
kind = "pack"
deps = ["pack-a", "pack-b"]
"#;

#[derive(Default)]
struct Collect(Mutex<Vec<Event>>);

impl EventSink for Collect {
    fn emit(&self, event: Event) {
        self.0.lock().unwrap().push(event);
    }
}

impl Collect {
    /// `task -> (event, reason)` for the tasks that started or were fresh.
    fn outcomes(&self) -> BTreeMap<String, (&'static str, String)> {
        let mut out = BTreeMap::new();
        for e in self.0.lock().unwrap().iter() {
            match e {
                Event::Started { task, reason, .. } => {
                    out.insert(task.clone(), ("started", reason.clone()));
                }
                Event::Fresh { task, reason, .. } => {
                    out.insert(task.clone(), ("fresh", reason.clone()));
                }
                _ => {}
            }
        }
        out
    }

    /// The key each task started or was fresh with.
    fn keys(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for e in self.0.lock().unwrap().iter() {
            if let Event::Started { task, key, .. } | Event::Fresh { task, key, .. } = e {
                out.insert(task.clone(), key.clone());
            }
        }
        out
    }
}

struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new(pipeline: &str) -> Project {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("xtask")).unwrap();
        std::fs::create_dir_all(dir.path().join("src")).unwrap();
        std::fs::write(dir.path().join("xtask/pipeline.toml"), pipeline).unwrap();
        let p = Project { dir };
        p.write("src/a.txt", "# the a file\nlet a = 1;\n");
        p.write("src/b.txt", "let b = 2;\n");
        p
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, rel: &str, text: &str) {
        std::fs::write(self.root().join(rel), text).unwrap();
    }

    fn session(&self) -> Session {
        Session::new(self.root().to_path_buf())
    }

    fn graph(&self) -> Graph<Place> {
        let text = std::fs::read_to_string(self.root().join("xtask/pipeline.toml")).unwrap();
        Graph::build(
            decl::parse(self.root(), &text, &registry()).unwrap(),
            registry().targets,
        )
        .unwrap()
    }

    fn shell(&self) -> Shell {
        let sh = Shell::new().unwrap();
        sh.change_dir(self.root());
        sh
    }

    /// `task -> (fresh|run|pending, reason)` as `plan` decides.
    fn plan(&self, force: bool) -> BTreeMap<String, (&'static str, String, Option<String>)> {
        let (session, graph, sh) = (self.session(), self.graph(), self.shell());
        let state = State::load(&session.state_dir(&Place));
        let selection = graph.select(&[]).unwrap();
        let plan = plan_tasks(&sh, &session, &graph, &Place, &selection, &state, force).unwrap();
        plan.tasks
            .into_iter()
            .map(|t| {
                let word = t.decision.word();
                (t.name, (word, t.decision.reason(), t.key))
            })
            .collect()
    }

    fn run(&self, force: bool) -> Collect {
        let (session, graph, sh) = (self.session(), self.graph(), self.shell());
        let sink = Collect::default();
        run_tasks(
            &sh,
            &session,
            &graph,
            &Place,
            &[],
            &RunOptions { force },
            &sink,
        )
        .unwrap();
        sink
    }

    fn state(&self) -> State {
        State::load(&self.session().state_dir(&Place))
    }
}

fn outcome(event: &'static str, reason: &str) -> (&'static str, String) {
    (event, reason.to_owned())
}

#[test]
fn an_edit_that_leaves_the_outputs_alone_reruns_the_compile_and_nothing_after_it() {
    let p = Project::new(PIPELINE);
    let first = p.run(false);
    assert!(first.outcomes().values().all(|(e, _)| *e == "started"));
    let recorded = p.state();

    // A comment: the compile's inputs change, its outputs do not.
    p.write("src/a.txt", "# the a file, reworded\nlet a = 1;\n");
    let plan = p.plan(false);
    assert_eq!(
        (plan["compile"].0, plan["compile"].1.as_str()),
        ("run", "inputs changed: `src/a.txt`")
    );
    let pending = "runs if the binary of `compile` changes";
    for task in ["pack-a", "pack-b", "ship"] {
        assert_eq!(
            (plan[task].0, plan[task].1.as_str(), &plan[task].2),
            ("pending", pending, &None),
            "{task}"
        );
    }

    let run = p.run(false);
    let outcomes = run.outcomes();
    assert_eq!(
        outcomes["compile"],
        outcome("started", "inputs changed: `src/a.txt`")
    );
    for task in ["pack-a", "pack-b", "ship"] {
        assert_eq!(
            outcomes[task],
            outcome("fresh", "binary unchanged"),
            "{task}"
        );
    }
    // The dependents keep their records and keys; only the compile is re-recorded.
    let state = p.state();
    for task in ["pack-a", "pack-b", "ship"] {
        assert_eq!(
            state.tasks[task], recorded.tasks[task],
            "{task} was re-recorded"
        );
        assert_eq!(run.keys()[task], recorded.tasks[task].key);
    }
    assert_ne!(state.tasks["compile"].key, recorded.tasks["compile"].key);
    assert_eq!(
        state.tasks["compile"].outputs,
        recorded.tasks["compile"].outputs
    );

    // Now every key is known when planning, and everything is fresh.
    let plan = p.plan(false);
    assert!(
        plan.values()
            .all(|(word, _, key)| *word == "fresh" && key.is_some()),
        "{plan:?}"
    );
}

#[test]
fn a_changed_output_reruns_only_what_reads_it() {
    let p = Project::new(PIPELINE);
    p.run(false);
    let recorded = p.state();

    p.write("src/b.txt", "let b = 3;\n");
    let run = p.run(false);
    let outcomes = run.outcomes();
    assert_eq!(outcomes["compile"].0, "started");
    assert_eq!(outcomes["pack-a"], outcome("fresh", "binary unchanged"));
    assert_eq!(
        outcomes["pack-b"],
        outcome("started", "dependency changed: `compile`")
    );
    assert_eq!(
        outcomes["ship"],
        outcome("started", "dependency changed: `pack-b`")
    );
    let state = p.state();
    assert_eq!(state.tasks["pack-b"].outputs["packed"], "let b = 3;");
    // The key a task started with is the one recorded, and it differs from the last one.
    assert_eq!(run.keys()["pack-b"], state.tasks["pack-b"].key);
    assert_ne!(state.tasks["pack-b"].key, recorded.tasks["pack-b"].key);
    assert_eq!(state.tasks["pack-a"], recorded.tasks["pack-a"]);

    // Back to the first content: the outputs are the first run's again, and so the keys of
    // every task that reads them (content keys, as before the edit).
    p.write("src/b.txt", "let b = 2;\n");
    p.run(false);
    let back = p.state();
    for task in ["pack-a", "pack-b", "ship"] {
        assert_eq!(back.tasks[task].key, recorded.tasks[task].key, "{task}");
    }
}

#[test]
fn a_pending_task_whose_output_is_gone_or_whose_own_settings_changed_runs() {
    let p = Project::new(PIPELINE);
    p.run(false);
    // pack-a's output vanished; pack-b's declaration changed. Both wait for the compile.
    p.write("gone-pack-a", "");
    p.write(
        "xtask/pipeline.toml",
        &PIPELINE.replace("read = \"b\"", "read = \"b\"\ninputs = [\"src/b.txt\"]"),
    );
    p.write("src/a.txt", "# reworded\nlet a = 1;\n");
    let plan = p.plan(false);
    assert_eq!(plan["pack-a"].0, "pending", "{plan:?}");
    // Its own reason does not wait: it runs whatever the compile produces.
    assert_eq!(
        (
            plan["pack-b"].0,
            plan["pack-b"].1.as_str(),
            &plan["pack-b"].2
        ),
        (
            "run",
            "declaration changed; inputs changed: `src/b.txt`",
            &None
        )
    );
    let run = p.run(false);
    let outcomes = run.outcomes();
    assert_eq!(outcomes["pack-a"], outcome("started", "output missing"));
    assert_eq!(
        outcomes["pack-b"],
        outcome(
            "started",
            "declaration changed; inputs changed: `src/b.txt`"
        )
    );
    // pack-b's key changed with its declaration: what depends on its key runs.
    assert_eq!(
        outcomes["ship"],
        outcome("started", "dependency changed: `pack-b`")
    );
    let state = p.state();
    assert_eq!(run.keys()["pack-b"], state.tasks["pack-b"].key);
}

#[test]
fn forced_runs_key_dependents_by_the_new_outputs() {
    let p = Project::new(PIPELINE);
    p.run(false);
    let recorded = p.state();
    let plan = p.plan(true);
    assert!(plan.values().all(|(w, r, _)| *w == "run" && r == "forced"));
    let run = p.run(true);
    assert!(
        run.outcomes()
            .values()
            .all(|(e, r)| *e == "started" && r == "forced")
    );
    // Same outputs, same keys: forcing changed what ran, not what the results are.
    let state = p.state();
    for task in ["pack-a", "pack-b", "ship"] {
        assert_eq!(state.tasks[task].key, recorded.tasks[task].key, "{task}");
    }
    assert!(p.plan(false).values().all(|(w, _, _)| *w == "fresh"));
}

#[test]
fn the_decision_s_one_rendering() {
    use xtask::engine::plan::Awaits;
    let one = Awaits(BTreeMap::from([("app-binaries".to_owned(), "binary")]));
    assert_eq!(
        Decision::Pending(one).reason(),
        "runs if the binary of `app-binaries` changes"
    );
    let two = Awaits(BTreeMap::from([
        ("a".to_owned(), "binary"),
        ("b".to_owned(), "bundle"),
    ]));
    assert_eq!(
        Decision::Pending(two).reason(),
        "runs if the outputs of `a`, `b` change"
    );
    assert_eq!(Decision::Unchanged("binary").reason(), "binary unchanged");
    assert_eq!(Decision::Fresh.reason(), "up to date");
    assert_eq!(Decision::Run("forced".into()).word(), "run");
}

//! Every way `pipeline.toml` can be wrong: exact message, caret, fix, exit code 2, nothing run.
#![allow(clippy::unwrap_used)]

use crate::support::Project;

/// Run `plan` on `pipeline` and return stderr, asserting exit code 2 and that nothing ran.
fn rejected(project: &Project) -> String {
    let run = project.xtask(&["run", "a"]);
    assert_eq!(
        run.code,
        Some(2),
        "expected exit code 2, got {:?}:\n{}",
        run.code,
        run.stderr
    );
    assert!(
        !project.path("ran").exists(),
        "a task ran despite an invalid declaration"
    );
    assert!(
        !project.state_file().exists(),
        "state was written despite an invalid declaration"
    );
    run.stderr
}

#[test]
fn unknown_kind() {
    let p = Project::new("[tasks.a]\nkind = \"comand\"\nrun = [\"touch\", \"ran\"]\n");
    let err = rejected(&p);
    let expected = "\
error: unknown kind `comand` in task `a`
 --> xtask/pipeline.toml:2:8
  |
2 | kind = \"comand\"
  |        ^^^^^^^^
  = fix: use one of: `command`";
    assert!(err.starts_with(expected), "got:\n{err}");
    assert!(
        err.ends_with("error: `xtask/pipeline.toml` has 1 problem; nothing was run\n"),
        "got:\n{err}"
    );
}

#[test]
fn unknown_field() {
    let p = Project::new(
        "[tasks.a]\nkind = \"command\"\nrun = [\"touch\", \"ran\"]\ncolour = \"red\"\n",
    );
    assert_eq!(
        rejected(&p),
        "\
error: unknown field `colour` in task `a` of kind `command`
 --> xtask/pipeline.toml:4:1
  |
4 | colour = \"red\"
  | ^^^^^^
  = fix: remove it or use one of: `kind`, `deps`, `inputs`, `description`, `targets`, `always`, `creates`, `run`
error: `xtask/pipeline.toml` has 1 problem; nothing was run
"
    );
}

#[test]
fn unknown_dependency_with_suggestion() {
    let p = Project::new(
        "[tasks.build]\nkind = \"command\"\nrun = [\"true\"]\n\n[tasks.a]\nkind = \"command\"\ndeps = [\"biuld\"]\nrun = [\"touch\", \"ran\"]\n",
    );
    assert_eq!(
        rejected(&p),
        "\
error: unknown dependency `biuld` of task `a`
 --> xtask/pipeline.toml:7:9
  |
7 | deps = [\"biuld\"]
  |         ^^^^^^^
  = fix: did you mean `build`? Otherwise declare `[tasks.biuld]`
error: `xtask/pipeline.toml` has 1 problem; nothing was run
"
    );
}

#[test]
fn duplicate_task_name() {
    let p = Project::new(
        "[tasks.a]\nkind = \"command\"\nrun = [\"true\"]\n\n[tasks.a]\nkind = \"command\"\nrun = [\"touch\", \"ran\"]\n",
    );
    assert_eq!(
        rejected(&p),
        "\
error: cannot parse pipeline: invalid table header; duplicate key `a` in table `tasks`
 --> xtask/pipeline.toml:5:1
  |
5 | [tasks.a]
  | ^
  = fix: task names must be unique: rename or merge one of the `[tasks.NAME]` tables
error: `xtask/pipeline.toml` has 1 problem; nothing was run
"
    );
}

#[test]
fn cycle_prints_the_whole_loop() {
    let p = Project::new(
        "[tasks.a]\nkind = \"command\"\ndeps = [\"c\"]\nrun = [\"touch\", \"ran\"]\n\n\
         [tasks.b]\nkind = \"command\"\ndeps = [\"a\"]\nrun = [\"true\"]\n\n\
         [tasks.c]\nkind = \"command\"\ndeps = [\"b\"]\nrun = [\"true\"]\n",
    );
    assert_eq!(
        rejected(&p),
        "\
error: dependency cycle: `a` -> `c` -> `b` -> `a`
 --> xtask/pipeline.toml:3:9
  |
3 | deps = [\"c\"]
  |         ^^^
  = fix: remove one dependency of this loop
error: `xtask/pipeline.toml` has 1 problem; nothing was run
"
    );
}

#[test]
fn self_dependency_is_a_cycle() {
    let p =
        Project::new("[tasks.a]\nkind = \"command\"\ndeps = [\"a\"]\nrun = [\"touch\", \"ran\"]\n");
    let err = rejected(&p);
    assert!(
        err.starts_with("error: dependency cycle: `a` -> `a`\n --> xtask/pipeline.toml:3:9\n"),
        "got:\n{err}"
    );
}

#[test]
fn missing_input_path() {
    let p = Project::new(
        "[tasks.a]\nkind = \"command\"\ninputs = [\"src/missing.rs\"]\nrun = [\"touch\", \"ran\"]\n",
    );
    assert_eq!(
        rejected(&p),
        "\
error: input `src/missing.rs` of task `a` does not exist (`src/missing.rs` not found)
 --> xtask/pipeline.toml:3:11
  |
3 | inputs = [\"src/missing.rs\"]
  |           ^^^^^^^^^^^^^^^^
  = fix: fix the path (relative to the project root) or remove it from `inputs`
error: `xtask/pipeline.toml` has 1 problem; nothing was run
"
    );
}

#[test]
fn glob_matching_no_file() {
    let p = Project::new(
        "[tasks.a]\nkind = \"command\"\ninputs = [\"src/x.txt\", \"src/*.rs\"]\nrun = [\"touch\", \"ran\"]\n",
    );
    p.write("src/x.txt", "x");
    assert_eq!(
        rejected(&p),
        "\
error: input `src/*.rs` of task `a` matches no file
 --> xtask/pipeline.toml:3:24
  |
3 | inputs = [\"src/x.txt\", \"src/*.rs\"]
  |                        ^^^^^^^^^^
  = fix: fix the pattern (relative to the project root) or remove it from `inputs`
error: `xtask/pipeline.toml` has 1 problem; nothing was run
"
    );
}

#[test]
fn missing_required_setting() {
    let p = Project::new("[tasks.a]\nkind = \"command\"\n");
    assert_eq!(
        rejected(&p),
        "\
error: task `a` of kind `command` needs `run`
 --> xtask/pipeline.toml:1:8
  |
1 | [tasks.a]
  |        ^
  = fix: add `run = [\"program\", \"arg\"]` to `[tasks.a]`
error: `xtask/pipeline.toml` has 1 problem; nothing was run
"
    );
}

#[test]
fn missing_kind() {
    let p = Project::new("[tasks.a]\nrun = [\"touch\", \"ran\"]\n");
    let err = rejected(&p);
    assert!(
        err.starts_with("error: task `a` has no `kind`\n --> xtask/pipeline.toml:1:8\n  |\n1 | [tasks.a]\n  |        ^\n  = fix: add `kind = \"...\"` with one of: `command`"),
        "got:\n{err}"
    );
}

#[test]
fn wrong_type() {
    let p = Project::new("[tasks.a]\nkind = \"command\"\nrun = \"touch ran\"\n");
    let err = rejected(&p);
    assert!(
        err.starts_with(
            "error: invalid `run` in task `a`: invalid type: string \"touch ran\", expected a sequence\n --> xtask/pipeline.toml:3:7\n  |\n3 | run = \"touch ran\"\n  |       ^^^^^^^^^^^\n"
        ),
        "got:\n{err}"
    );
}

#[test]
fn syntax_error() {
    let p = Project::new("[tasks.a]\nkind = \"command\"\nrun = [\"true\"\n");
    let err = rejected(&p);
    assert!(
        err.starts_with("error: cannot parse pipeline: "),
        "got:\n{err}"
    );
    assert!(
        err.contains(" --> xtask/pipeline.toml:4:1\n"),
        "got:\n{err}"
    );
    assert!(
        err.contains("= fix: correct the TOML syntax at this position"),
        "got:\n{err}"
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let p = Project::new(
        "[tasks.a]\nkind = \"command\"\nrun = [\"touch\", \"ran\"]\nextra = 1\n\n[tasks.b]\nkind = \"nope\"\n\n[tasks.Bad]\nkind = \"command\"\nrun = [\"true\"]\n",
    );
    let err = rejected(&p);
    assert!(err.contains("unknown field `extra`"), "{err}");
    assert!(err.contains("unknown kind `nope`"), "{err}");
    assert!(err.contains("invalid task name `Bad`"), "{err}");
    assert!(err.ends_with("has 3 problems; nothing was run\n"), "{err}");
}

#[test]
fn unknown_task_on_the_command_line() {
    let p = Project::new("[tasks.build]\nkind = \"command\"\nrun = [\"true\"]\n");
    let run = p.xtask(&["run", "biuld"]);
    assert_eq!(run.code, Some(2));
    assert_eq!(
        run.stderr,
        "error: unknown task `biuld`\n  = fix: did you mean `build`? (`cargo xtask graph` lists all tasks)\n"
    );
}

#[test]
fn a_task_needed_on_a_target_where_it_does_not_run() {
    // `app-containers` runs on Docker only; a smoke-like task on every target names its image
    // task, which runs only on Minikube: on Docker it would have nothing to read.
    let p = Project::new(
        "[tasks.img]\nkind = \"docker-image\"\ntargets = [\"minikube\"]\nimage = \"x\"\n\
         dockerfile = \"Dockerfile\"\ncontext = \".\"\n\n\
         [tasks.a]\nkind = \"containers\"\ntargets = [\"docker\"]\n\
         backend-image = \"img\"\nfrontend-image = \"img\"\n",
    );
    std::fs::write(p.path("Dockerfile"), "FROM scratch\n").unwrap();
    let err = rejected(&p);
    assert!(
        err.starts_with(
            "\
error: task `a` needs `img` (its `backend-image`), which does not run on target `docker`
  --> xtask/pipeline.toml:11:17
   |
11 | backend-image = \"img\"
   |                 ^^^^^
   = fix: add `docker` to the `targets` of `img`, or limit `a` to the targets `img` runs on
"
        ),
        "got:\n{err}"
    );
}

#[test]
fn a_kind_that_serves_one_target_must_say_so() {
    let p = Project::new(
        "[tasks.a]\nkind = \"containers\"\nbackend-image = \"a\"\nfrontend-image = \"a\"\n",
    );
    let err = rejected(&p);
    assert!(
        err.starts_with(
            "\
error: task `a` of kind `containers` must say where it runs: the kind runs only on `docker`
 --> xtask/pipeline.toml:1:8
  |
1 | [tasks.a]
  |        ^
  = fix: add `targets = [\"docker\"]` to `[tasks.a]`
"
        ),
        "got:\n{err}"
    );
}

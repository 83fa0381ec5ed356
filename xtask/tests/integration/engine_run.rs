//! Running the graph with the real binary: reasons, freshness, failure policy, parallelism,
//! JSON events, state recovery, the lock, Ctrl-C and crash safety.
#![allow(clippy::unwrap_used)]

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::Project;

/// `gen` copies `src/` into `out.txt`; `use` depends on it.
const TWO: &str = r#"
[tasks.gen]
kind = "command"
inputs = ["src"]
run = ["sh", "-c", "cat src/*.txt > out.txt; echo gen >> log"]
creates = "out.txt"

[tasks.use]
kind = "command"
deps = ["gen"]
run = ["sh", "-c", "echo use >> log"]
"#;

fn two() -> Project {
    let p = Project::new(TWO);
    p.write("src/a.txt", "a\n");
    p.write("src/b.txt", "b\n");
    p
}

#[test]
fn first_run_runs_everything_then_all_fresh() {
    let p = two();
    let first = p.run_json(&["use"]).ok();
    assert_eq!(first.tasks_with("started"), ["gen", "use"]);
    assert_eq!(first.reason_of("gen"), "no previous run");
    assert_eq!(p.read("log"), "gen\nuse\n");
    let second = p.run_json(&["use"]).ok();
    assert_eq!(second.tasks_with("fresh"), ["gen", "use"]);
    assert!(second.tasks_with("started").is_empty());
    assert_eq!(p.read("log"), "gen\nuse\n", "nothing ran the second time");
}

#[test]
fn reason_input_changed_names_the_paths() {
    let p = two();
    p.run_json(&["use"]).ok();
    p.write("src/b.txt", "B\n");
    let run = p.run_json(&["use"]).ok();
    assert_eq!(run.reason_of("gen"), "inputs changed: `src/b.txt`");
    assert_eq!(run.reason_of("use"), "dependency changed: `gen`");
}

#[test]
fn reason_input_added_and_removed_with_first_paths_only() {
    let p = two();
    p.run_json(&["gen"]).ok();
    for i in 0..5 {
        p.write(&format!("src/new{i}.txt"), "n\n");
    }
    std::fs::remove_file(p.path("src/a.txt")).unwrap();
    let run = p.run_json(&["gen"]).ok();
    assert_eq!(
        run.reason_of("gen"),
        "inputs changed: `src/a.txt`, `src/new0.txt`, `src/new1.txt` (+3 more)"
    );
}

#[test]
fn reason_executable_bit_changed() {
    use std::os::unix::fs::PermissionsExt;
    let p = two();
    p.run_json(&["gen"]).ok();
    std::fs::set_permissions(p.path("src/a.txt"), std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(
        p.run_json(&["gen"]).ok().reason_of("gen"),
        "inputs changed: `src/a.txt`"
    );
}

#[test]
fn reason_declaration_changed() {
    let p = two();
    p.run_json(&["use"]).ok();
    p.set_pipeline(&TWO.replace("echo use >> log", "echo use2 >> log"));
    let run = p.run_json(&["use"]).ok();
    assert_eq!(run.tasks_with("fresh"), ["gen"]);
    assert_eq!(run.reason_of("use"), "declaration changed");
}

#[test]
fn description_and_layout_do_not_invalidate() {
    let p = two();
    p.run_json(&["use"]).ok();
    // Reordered tables and fields, a description, comments and different whitespace.
    p.set_pipeline(
        r#"
# comment
[tasks.use]
run = [ "sh", "-c", "echo use >> log" ]
description = "uses gen"
deps = ['gen']
kind = "command"

[tasks.gen]
creates = "out.txt"
run = ["sh", "-c", "cat src/*.txt > out.txt; echo gen >> log"]
inputs = ["src"]
kind = "command"
"#,
    );
    assert_eq!(
        p.run_json(&["use"]).ok().tasks_with("fresh"),
        ["gen", "use"]
    );
}

#[test]
fn reason_output_missing() {
    let p = two();
    p.run_json(&["use"]).ok();
    std::fs::remove_file(p.path("out.txt")).unwrap();
    let run = p.run_json(&["use"]).ok();
    assert_eq!(run.reason_of("gen"), "output missing");
    assert_eq!(
        run.tasks_with("fresh"),
        ["use"],
        "same key for `use`: it stays fresh"
    );
    assert!(p.path("out.txt").exists());
}

#[test]
fn reason_forced_and_plan_command() {
    let p = two();
    p.run_json(&["use"]).ok();
    let run = p.xtask(&["--json", "run", "--force", "use"]).ok();
    assert_eq!(run.reason_of("gen"), "forced");
    assert_eq!(run.reason_of("use"), "forced");
    p.write("src/a.txt", "changed\n");
    let plan = p.xtask(&["plan"]).ok();
    let lines: Vec<&str> = plan.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "run    gen  inputs changed: `src/a.txt`",
            "run    use  dependency changed: `gen`"
        ]
    );
    assert_eq!(p.read("log"), "gen\nuse\ngen\nuse\n", "plan runs nothing");
}

#[test]
fn always_tasks_never_fresh() {
    let p = Project::new(
        "[tasks.check]\nkind = \"command\"\nalways = true\nrun = [\"sh\", \"-c\", \"echo x >> log\"]\n",
    );
    p.run_json(&["check"]).ok();
    assert_eq!(
        p.run_json(&["check"]).ok().reason_of("check"),
        "always runs"
    );
    assert_eq!(p.read("log"), "x\nx\n");
}

#[test]
fn clean_forgets_results() {
    let p = two();
    p.run_json(&["use"]).ok();
    p.xtask(&["clean"]).ok();
    assert_eq!(
        p.run_json(&["use"]).ok().reason_of("gen"),
        "no previous run"
    );
}

#[test]
fn corrupt_state_is_discarded_with_a_notice() {
    let p = two();
    p.run_json(&["use"]).ok();
    std::fs::write(p.state_file(), "{ not json").unwrap();
    let run = p.run_json(&["use"]).ok();
    assert!(
        run.stderr.contains("notice: discarding corrupt"),
        "{}",
        run.stderr
    );
    assert_eq!(run.reason_of("gen"), "no previous run");
    // And an older layout version.
    std::fs::write(p.state_file(), r#"{"version": 0, "tasks": {}}"#).unwrap();
    let run = p.run_json(&["use"]).ok();
    assert!(
        run.stderr.contains("written by another xtask version"),
        "{}",
        run.stderr
    );
    assert_eq!(
        p.run_json(&["use"]).ok().tasks_with("fresh"),
        ["gen", "use"]
    );
}

#[test]
fn failure_stops_new_tasks_finishes_running_ones_and_records_successes() {
    // `slow` and `bad` start together (-j 2); `bad` fails while `slow` runs (it waits for
    // `bad`); `slow` still finishes and is recorded; `after` (depends on `slow`) and `child`
    // (depends on `bad`) never start.
    let p = Project::new(
        r#"
[tasks.bad]
kind = "command"
run = ["sh", "-c", "echo boom >&2; touch bad.done; exit 3"]

[tasks.slow]
kind = "command"
run = ["sh", "-c", "while [ ! -e bad.done ]; do sleep 0.05; done; sleep 0.5; echo slow >> log"]

[tasks.after]
kind = "command"
deps = ["slow"]
run = ["sh", "-c", "echo after >> log"]

[tasks.child]
kind = "command"
deps = ["bad"]
run = ["sh", "-c", "echo child >> log"]
"#,
    );
    let run = p.xtask(&["-j", "2", "--json", "run", "after", "child"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert_eq!(run.tasks_with("failed"), ["bad"]);
    assert_eq!(run.tasks_with("finished"), ["slow"]);
    let mut never = run.tasks_with("not_started");
    never.sort();
    assert_eq!(never, ["after", "child"]);
    let summary = run
        .events()
        .into_iter()
        .find(|e| e["event"] == "summary")
        .unwrap();
    assert_eq!(summary["failed"], serde_json::json!(["bad"]));
    assert_eq!(summary["ran"], serde_json::json!(["slow"]));
    let failed = run
        .events()
        .into_iter()
        .find(|e| e["event"] == "failed")
        .unwrap();
    assert!(
        failed["error"].as_str().unwrap().contains("exit status: 3"),
        "{failed}"
    );
    assert_eq!(p.read("log"), "slow\n");
    assert!(
        run.stderr.contains("error: 1 task(s) failed: `bad`"),
        "{}",
        run.stderr
    );
    // `slow` was recorded: next time it is fresh and `after` runs.
    std::fs::write(
        p.path("xtask/pipeline.toml"),
        p.read("xtask/pipeline.toml").replace("exit 3", "exit 0"),
    )
    .unwrap();
    let next = p.run_json(&["after", "child"]).ok();
    assert!(
        next.tasks_with("fresh").contains(&"slow".to_string()),
        "{}",
        next.stdout
    );
}

#[test]
fn independent_tasks_run_in_parallel() {
    // Each task waits for the other's marker: only completes when both run at once.
    let wait_for = |me: &str, other: &str| {
        format!(
            r#"run = ["sh", "-c", "touch {me}.on; i=0; while [ ! -e {other}.on ]; do i=$((i+1)); [ $i -gt 200 ] && exit 7; sleep 0.05; done"]"#
        )
    };
    let p = Project::new(&format!(
        "[tasks.x]\nkind = \"command\"\n{}\n\n[tasks.y]\nkind = \"command\"\n{}\n\n[tasks.all]\nkind = \"command\"\ndeps = [\"x\", \"y\"]\nrun = [\"true\"]\n",
        wait_for("x", "y"),
        wait_for("y", "x")
    ));
    let run = p.xtask(&["-j", "2", "--json", "run", "all"]).ok();
    let started = run.tasks_with("started");
    assert_eq!(
        started.last().unwrap(),
        "all",
        "`all` starts after both dependencies"
    );
}

#[test]
fn jobs_one_runs_one_at_a_time() {
    let body = |me: &str| {
        format!(
            r#"run = ["sh", "-c", "[ ! -e busy ] || exit 9; touch busy; sleep 0.2; rm busy; echo {me} >> log"]"#
        )
    };
    let p = Project::new(&format!(
        "[tasks.a]\nkind = \"command\"\n{}\n\n[tasks.b]\nkind = \"command\"\n{}\n\n[tasks.c]\nkind = \"command\"\n{}\n",
        body("a"),
        body("b"),
        body("c")
    ));
    p.xtask(&["-j", "1", "run", "a", "b", "c"]).ok();
    assert_eq!(p.read("log"), "a\nb\nc\n");
}

#[test]
fn json_events_have_key_reason_and_duration() {
    let p = two();
    let run = p.run_json(&["use"]).ok();
    let events = run.events();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"planned"));
    assert_eq!(kinds.last(), Some(&"summary"));
    for e in events.iter().filter(|e| e["event"] == "finished") {
        assert_eq!(e["key"].as_str().unwrap().len(), 64);
        assert!(e["reason"].is_string());
        assert!(e["duration_ms"].is_u64());
    }
    let started_gen = events
        .iter()
        .position(|e| e["event"] == "started" && e["task"] == "gen")
        .unwrap();
    let finished_gen = events
        .iter()
        .position(|e| e["event"] == "finished" && e["task"] == "gen")
        .unwrap();
    let started_use = events
        .iter()
        .position(|e| e["event"] == "started" && e["task"] == "use")
        .unwrap();
    assert!(started_gen < finished_gen && finished_gen < started_use);
    let fresh = p.run_json(&["use"]).ok();
    let f = fresh
        .events()
        .into_iter()
        .find(|e| e["event"] == "fresh")
        .unwrap();
    assert_eq!(f["key"].as_str().unwrap().len(), 64);
}

#[test]
fn plain_lines_when_not_a_terminal() {
    let p = two();
    let run = p.xtask(&["run", "use"]).ok();
    let line = run
        .stderr
        .lines()
        .find(|l| l.contains("gen started"))
        .unwrap();
    // `HH:MM:SS.mmm gen started (no previous run)`
    assert!(
        line.as_bytes()[2] == b':' && line.as_bytes()[8] == b'.',
        "{line}"
    );
    assert!(
        run.stderr
            .contains("ok: 2 ran, 0 fresh, 0 failed, 0 never started"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains('\x1b'), "NO_COLOR: no escape codes");
}

/// A pipeline whose `slow` task blocks until `release` exists.
const SLOW: &str = r#"
[tasks.quick]
kind = "command"
run = ["sh", "-c", "echo quick >> log"]

[tasks.slow]
kind = "command"
deps = ["quick"]
run = ["sh", "-c", "touch slow.started; while [ ! -e release ]; do sleep 0.05; done; echo slow >> log"]
"#;

fn wait_for(path: &std::path::Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn lock_second_run_fails_with_no_wait_and_waits_without() {
    let p = Project::new(SLOW);
    let mut first = p
        .command(&["run", "slow"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&p.path("slow.started"));
    let blocked = p.xtask(&["--no-wait", "run", "slow"]);
    assert_eq!(blocked.code, Some(3), "{}", blocked.stderr);
    assert!(
        blocked
            .stderr
            .contains("another xtask run holds the lock of target `docker-todo-app`"),
        "{}",
        blocked.stderr
    );
    assert!(
        blocked.stderr.contains("fix: wait for it to finish"),
        "{}",
        blocked.stderr
    );

    // `plan` writes too (signatures, a secret generated for a key): it takes the same lock.
    let plan = p.xtask(&["--no-wait", "plan"]);
    assert_eq!(
        plan.code,
        Some(3),
        "plan did not take the lock: {}",
        plan.stderr
    );

    let mut waiting = p
        .command(&["--json", "run", "slow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        waiting.try_wait().unwrap().is_none(),
        "second run must wait for the lock"
    );
    std::fs::write(p.path("release"), "").unwrap();
    assert!(first.wait().unwrap().success());
    let out = waiting.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("waiting for another xtask run on target `docker-todo-app`")
    );
    // It ran after the first finished, so it found both tasks fresh.
    assert!(!String::from_utf8_lossy(&out.stdout).contains("\"started\""));
    assert_eq!(p.read("log"), "quick\nslow\n");
}

#[test]
fn sigkill_midway_then_next_run_is_correct() {
    let p = Project::new(SLOW);
    let mut run = p
        .command(&["run", "slow"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&p.path("slow.started"));
    run.kill().unwrap(); // SIGKILL: no handler runs.
    run.wait().unwrap();
    // The orphaned child of the killed run may still wait for `release`; let it finish now.
    std::fs::write(p.path("release"), "").unwrap();
    // State is valid JSON recording `quick` only; the lock died with the process.
    let state: serde_json::Value =
        serde_json::from_str(&p.read("target/xtask/docker-todo-app/state.json")).unwrap();
    assert!(state["tasks"]["quick"].is_object());
    assert!(state["tasks"]["slow"].is_null());
    let next = p.xtask(&["--no-wait", "--json", "run", "slow"]).ok();
    assert_eq!(next.tasks_with("fresh"), ["quick"]);
    assert_eq!(next.reason_of("slow"), "no previous run");
    assert_eq!(
        p.run_json(&["slow"]).ok().tasks_with("fresh"),
        ["quick", "slow"]
    );
}

#[test]
fn ctrl_c_terminates_children_and_leaves_state_valid() {
    let p = Project::new(SLOW);
    let mut run = p
        .command(&["--json", "run", "slow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&p.path("slow.started"));
    test_support::interrupt(&run);
    let deadline = Instant::now() + Duration::from_secs(10);
    while run.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "xtask did not stop after Ctrl-C");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = run.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(r#""interrupted":true"#), "{stdout}");
    // The child was terminated: releasing now must not let it append to the log.
    std::fs::write(p.path("release"), "").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(p.read("log"), "quick\n");
    let next = p.run_json(&["slow"]).ok();
    assert_eq!(next.tasks_with("fresh"), ["quick"]);
    assert_eq!(next.reason_of("slow"), "no previous run");
}

#[test]
fn graph_formats() {
    let p = two();
    let dot = p.xtask(&["graph"]).ok().stdout;
    assert!(dot.starts_with("digraph pipeline {"));
    assert!(dot.contains("\"use\" -> \"gen\";"), "{dot}");
    let mermaid = p.xtask(&["graph", "--format", "mermaid"]).ok().stdout;
    assert!(mermaid.starts_with("flowchart LR\n"));
    assert!(mermaid.contains("t1 --> t0"), "{mermaid}");
}

#[test]
fn same_size_rewrite_with_restored_mtime_reruns() {
    let p = two();
    p.run_json(&["gen"]).ok();
    let path = p.path("src/a.txt");
    let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
    std::fs::write(&path, "z\n").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let run = p.run_json(&["gen"]).ok();
    assert_eq!(run.reason_of("gen"), "inputs changed: `src/a.txt`");
    assert_eq!(p.read("out.txt"), "z\nb\n");
}

#[test]
fn inputs_changed_at_or_after_the_scan_are_not_trusted_by_stat() {
    let p = two();
    let future = std::time::SystemTime::now() + Duration::from_secs(3600);
    let path = p.path("src/a.txt");
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(future)
        .unwrap();
    p.run_json(&["gen"]).ok();
    let state: serde_json::Value =
        serde_json::from_str(&p.read("target/xtask/docker-todo-app/state.json")).unwrap();
    assert!(
        state["tasks"]["gen"]["stat_sig"].is_null(),
        "racy inputs must not get a stat signature"
    );
    // Still fresh by content.
    assert_eq!(p.run_json(&["gen"]).ok().tasks_with("fresh"), ["gen"]);
    std::fs::remove_file(p.path("src/b.txt")).unwrap();
    let state: serde_json::Value =
        serde_json::from_str(&p.read("target/xtask/docker-todo-app/state.json")).unwrap();
    assert!(state["tasks"]["gen"]["inputs"].is_string());
    assert_eq!(
        p.run_json(&["gen"]).ok().reason_of("gen"),
        "inputs changed: `src/b.txt`"
    );
}

#[test]
fn a_touched_but_unchanged_input_stays_fresh_and_its_new_stat_is_remembered() {
    let p = two();
    p.run_json(&["gen"]).ok();
    let sig = || -> serde_json::Value {
        let state: serde_json::Value =
            serde_json::from_str(&p.read("target/xtask/docker-todo-app/state.json")).unwrap();
        state["tasks"]["gen"]["stat_sig"].clone()
    };
    let first = sig();
    assert!(first.is_string(), "settled inputs get a signature: {first}");
    let touch = || {
        // Same content, an older mtime (settled); ctime moves to now, so the stat differs.
        let path = p.path("src/a.txt");
        std::fs::write(&path, "a\n").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(std::time::SystemTime::now() - Duration::from_secs(3600))
            .unwrap();
        // Let the filesystem clock tick past the new ctime, so the next scan finds it settled.
        std::thread::sleep(Duration::from_millis(50));
    };

    // `plan` (which holds no lock) re-hashes, finds the key unchanged, and records the new
    // stat so the next no-op plan need not hash.
    touch();
    let plan = p.xtask(&["plan", "gen"]).ok();
    assert!(plan.stdout.starts_with("fresh"), "{}", plan.stdout);
    let second = sig();
    assert!(second.is_string());
    assert_ne!(
        second, first,
        "the refreshed signature is recorded by `plan`"
    );

    // `run` does the same under its lock.
    touch();
    let run = p.run_json(&["gen"]).ok();
    assert_eq!(run.tasks_with("fresh"), ["gen"]);
    let third = sig();
    assert!(third.is_string());
    assert_ne!(
        third, second,
        "the refreshed signature is recorded by `run`"
    );
    assert_eq!(p.read("log"), "gen\n", "nothing re-ran");

    // A real change behind the remembered signature is still seen.
    p.write("src/a.txt", "A\n");
    assert_eq!(
        p.run_json(&["gen"]).ok().reason_of("gen"),
        "inputs changed: `src/a.txt`"
    );
}

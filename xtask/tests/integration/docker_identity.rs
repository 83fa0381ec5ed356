//! The Docker target's identity includes `--namespace`: two namespaces are two deployments,
//! each with its own state directory (state, lock, generated secrets). Needs no Docker: a
//! `command` task records state on the Docker target without touching the daemon.
#![allow(clippy::unwrap_used)]

use crate::support::Project;

const PIPELINE: &str = r#"
[tasks.t]
kind = "command"
inputs = ["src"]
run = ["sh", "-c", "echo ran >> log"]
"#;

#[test]
fn two_namespaces_keep_two_state_dirs() {
    let p = Project::new(PIPELINE);
    p.write("src/a.txt", "a\n");
    let run = |ns: &str| p.xtask(&["--namespace", ns, "--json", "run", "t"]).ok();

    assert_eq!(run("alpha").tasks_with("started"), ["t"]);
    assert!(p.path("target/xtask/docker-alpha/state.json").is_file());
    assert!(!p.path("target/xtask/docker/state.json").exists());

    // Another namespace has recorded nothing yet: its task runs instead of being fresh.
    assert_eq!(run("beta").tasks_with("started"), ["t"]);
    assert!(p.path("target/xtask/docker-beta/state.json").is_file());

    // Each namespace now sees its own record.
    assert_eq!(run("alpha").tasks_with("fresh"), ["t"]);
    assert_eq!(run("beta").tasks_with("fresh"), ["t"]);

    // Forgetting one namespace's state leaves the other's.
    p.xtask(&["--namespace", "beta", "clean"]).ok();
    assert!(p.path("target/xtask/docker-alpha/state.json").is_file());
    assert_eq!(run("alpha").tasks_with("fresh"), ["t"]);
    assert_eq!(run("beta").tasks_with("started"), ["t"]);
}

#[test]
fn the_port_is_not_part_of_the_identity() {
    let p = Project::new(PIPELINE);
    p.write("src/a.txt", "a\n");
    p.xtask(&[
        "--namespace",
        "gamma",
        "--port",
        "3001",
        "--json",
        "run",
        "t",
    ])
    .ok();
    let again = p
        .xtask(&[
            "--namespace",
            "gamma",
            "--port",
            "3002",
            "--json",
            "run",
            "t",
        ])
        .ok();
    assert_eq!(again.tasks_with("fresh"), ["t"]);
}

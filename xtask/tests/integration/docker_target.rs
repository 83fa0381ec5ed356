//! The Docker target end to end, for real: images built from the repository's Dockerfiles,
//! containers on a private network, the smoke round trip through the frontend's forms.
//!
//! One test walks the whole life cycle on one throwaway copy of the repository, because each
//! step builds on the last and image builds are expensive (the Docker layer cache is shared).

#![allow(clippy::unwrap_used)]

use test_support::docker::docker_ok;
use test_support::{Xtask, copy_workspace, docker_daemon};

use crate::support::{one_deployment_at_a_time, our_images};

#[test]
fn deploy_noop_one_file_change_and_down() {
    let _serial = one_deployment_at_a_time();
    if !docker_daemon("docker_target::deploy_noop_one_file_change_and_down") {
        return;
    }
    let repo = copy_workspace();
    let ns = format!("xtest{}", std::process::id());
    let x = Xtask::deployment(repo.path(), &ns);

    // 1. From clean: everything runs and the smoke test passes.
    let cold = x.run(&["deploy"]);
    cold.assert_ok("cold deploy")
        .assert_json_lines("cold deploy");
    // The doctor's rows arrive as events too, not as a table on stdout.
    assert!(
        cold.events().iter().any(|e| e["event"] == "doctor"
            && e["check"] == "docker daemon"
            && e["status"] == "ok"),
        "no doctor event for the docker daemon: {}",
        cold.stdout
    );
    let finished = cold.tasks_with("finished");
    for task in ["backend-image", "frontend-image", "app-containers", "smoke"] {
        assert!(
            finished.contains(&task.to_owned()),
            "{task} did not run: {finished:?}"
        );
    }
    assert!(cold.tasks_with("failed").is_empty());
    // The smoke table has a passing row for every step, the chat round trip included.
    let smoke_rows: Vec<String> = cold
        .events()
        .iter()
        .filter(|e| e["event"] == "log" && e["task"] == "smoke")
        .filter_map(|e| e["line"].as_str().map(str::to_owned))
        .collect();
    for row in [
        "frontend /ready",
        "sign up",
        "add task",
        "delete task",
        "chat add task",
        "chat task listed",
        "chat task cleanup",
    ] {
        assert!(
            smoke_rows.iter().any(|l| {
                let mut cols = l.split("  ").map(str::trim).filter(|c| !c.is_empty());
                cols.next() == Some(row) && cols.next() == Some("ok")
            }),
            "no passing smoke row `{row}`: {smoke_rows:#?}"
        );
    }
    assert!(
        cold.events().iter().any(|e| e["event"] == "url"),
        "deploy printed no URL: {}",
        cold.stdout
    );
    // The Docker target's tasks only: nothing of Minikube is planned, run or recorded.
    let planned = cold
        .events()
        .into_iter()
        .find(|e| e["event"] == "planned")
        .expect("a planned event");
    assert_eq!(
        planned["tasks"],
        serde_json::json!(["backend-image", "frontend-image", "app-containers", "smoke"]),
    );
    let mut containers = x.objects("container");
    containers.sort();
    assert_eq!(
        containers,
        ["backend", "frontend", "postgres"].map(|r| format!("{ns}-docker-{r}")),
    );
    let before: Vec<Option<String>> = ["postgres", "backend", "frontend"]
        .iter()
        .map(|r| x.container_id(r))
        .collect();

    // 2. Nothing changed: every task is fresh, none starts.
    let noop = x.run(&["deploy"]);
    noop.assert_ok("no-op deploy")
        .assert_json_lines("no-op deploy");
    assert!(
        noop.tasks_with("started").is_empty(),
        "tasks ran on a no-op deploy: {}",
        noop.stdout
    );
    let fresh = noop.tasks_with("fresh");
    for task in ["app-containers", "backend-image", "frontend-image", "smoke"] {
        assert!(
            fresh.contains(&task.to_owned()),
            "{task} not fresh: {fresh:?}"
        );
    }

    // 3. One backend source file changes: only the backend image rebuilds, only the backend
    //    container is replaced, and the smoke test runs again.
    let main_rs = repo.path().join("backend/src/main.rs");
    let mut text = std::fs::read_to_string(&main_rs).unwrap();
    text.push_str("\n// edited by the docker_target test\n");
    std::fs::write(&main_rs, text).unwrap();
    let edit = x.run(&["deploy"]);
    edit.assert_ok("deploy after editing one backend file")
        .assert_json_lines("one-file-changed deploy");
    // Only the Docker target's tasks: Minikube's `secrets` and `release` are not even planned.
    assert_eq!(
        edit.tasks_sorted("started"),
        ["app-containers", "backend-image", "smoke"]
    );
    assert_eq!(edit.tasks_sorted("fresh"), ["frontend-image"]);
    let after: Vec<Option<String>> = ["postgres", "backend", "frontend"]
        .iter()
        .map(|r| x.container_id(r))
        .collect();
    assert_eq!(after[0], before[0], "postgres container was replaced");
    assert_ne!(after[1], before[1], "backend container was not replaced");
    assert_eq!(after[2], before[2], "frontend container was replaced");

    eprintln!(
        "timings: cold deploy {:.1}s, no-op deploy {:.2}s, one-file-changed deploy {:.1}s",
        cold.elapsed.as_secs_f64(),
        noop.elapsed.as_secs_f64(),
        edit.elapsed.as_secs_f64()
    );

    // 4. A container removed behind our back is noticed (output missing) and recreated; the
    //    others stay, and the smoke test runs again against the new one.
    docker_ok(&["rm", "--force", &format!("{ns}-docker-backend")]);
    let healed = x.run(&["deploy"]);
    healed.assert_ok("deploy after removing the backend container");
    assert_eq!(healed.tasks_sorted("started"), ["app-containers", "smoke"]);
    assert!(
        healed.events().iter().any(|e| e["event"] == "started"
            && e["task"] == "app-containers"
            && e["reason"] == "output missing"),
        "app-containers did not run for a missing output: {}",
        healed.stdout
    );
    let healed_ids: Vec<Option<String>> = ["postgres", "backend", "frontend"]
        .iter()
        .map(|r| x.container_id(r))
        .collect();
    assert_eq!(healed_ids[0], after[0]);
    assert!(healed_ids[1].is_some() && healed_ids[1] != after[1]);
    assert_eq!(healed_ids[2], after[2]);

    // 5. `down` keeps the database: the containers and network go, the volume stays and is
    //    named, and the next deploy finds every account again.
    let users = || {
        let postgres = format!("{ns}-docker-postgres");
        let sql = "select email from users order by email";
        docker_ok(&[
            "exec", &postgres, "psql", "-U", "postgres", "-d", "todo", "-tAc", sql,
        ])
    };
    let accounts = users();
    assert!(!accounts.is_empty(), "the smoke tests created no account");
    let down = x.run(&["down"]);
    down.assert_ok("down");
    let volume = format!("{ns}-docker-pgdata");
    assert!(
        down.stdout.contains("Volumes kept (the database") && down.stdout.contains(&volume),
        "down did not name the kept volume: {}",
        down.stdout
    );
    assert!(x.objects("container").is_empty() && x.objects("network").is_empty());
    assert_eq!(x.objects("volume"), [volume]);
    x.run(&["deploy"]).assert_ok("deploy after down");
    assert_eq!(
        users().lines().count(),
        accounts.lines().count() + 1,
        "one more smoke account"
    );
    for account in accounts.lines() {
        assert!(
            users().contains(account),
            "{account} was lost by down + deploy"
        );
    }

    // 6. down --volumes --images leaves nothing of ours; a second down is a no-op that succeeds.
    x.run(&["down", "--volumes", "--images"])
        .assert_ok("down --volumes --images");
    for kind in ["container", "network", "volume"] {
        assert!(
            x.objects(kind).is_empty(),
            "{kind}s left: {:?}",
            x.objects(kind)
        );
    }
    assert!(our_images().is_empty(), "images left: {:?}", our_images());
    x.run(&["down", "-v", "--images"]).assert_ok("second down");
    let state = format!("target/xtask/docker-{}/state.json", x.namespace());
    assert!(!repo.path().join(state).exists());
}

#[test]
fn a_changed_database_password_is_diagnosed() {
    let _serial = one_deployment_at_a_time();
    if !docker_daemon("docker_target::a_changed_database_password_is_diagnosed") {
        return;
    }
    let repo = copy_workspace();
    // A short readiness deadline: the failure is the point of this test.
    let pipeline = repo.path().join("xtask/pipeline.toml");
    let text = std::fs::read_to_string(&pipeline).unwrap();
    let anchor = "frontend-image = \"frontend-image\"\n";
    assert!(text.contains(anchor), "pipeline.toml changed shape");
    std::fs::write(
        &pipeline,
        text.replacen(anchor, &format!("{anchor}ready-timeout = 20\n"), 1),
    )
    .unwrap();
    let mut x = Xtask::deployment(repo.path(), &format!("xpw{}", std::process::id()));
    x.env
        .push(("POSTGRES_PASSWORD".into(), "first-password-4f1e".into()));
    x.run(&["deploy"])
        .assert_ok("deploy with the first password");

    x.env[0].1 = "second-password-9a7c".into();
    let run = x.run(&["deploy"]);
    assert_ne!(
        run.code,
        Some(0),
        "deploy succeeded with a password the volume does not know"
    );
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(
        all.contains("PostgreSQL rejects the password"),
        "no diagnosis of the password mismatch:\n{all}"
    );
    assert!(!all.contains("first-password-4f1e") && !all.contains("second-password-9a7c"));
    x.run(&["down", "--volumes"]).assert_ok("down --volumes");
}

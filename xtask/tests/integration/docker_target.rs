//! The Docker target end to end, for real: both binaries compiled in the builder container,
//! the runtime images built from them, containers on a private network, the smoke round trip
//! through the frontend's forms.
//!
//! One test walks the whole life cycle on one throwaway copy of the repository, because each
//! step builds on the last and a cold compile is expensive. It builds with the `dev` profile
//! (the inner loop's, and the quicker cold compile); `release` differs only in cargo's flags.

#![allow(clippy::unwrap_used)]

use test_support::docker::docker_ok;
use test_support::{TEST_BUILDER, Xtask, copy_workspace, docker_daemon, lines};

use crate::support::one_deployment_at_a_time;

#[test]
fn deploy_noop_one_file_change_and_down() {
    let _serial = one_deployment_at_a_time();
    if !docker_daemon("docker_target::deploy_noop_one_file_change_and_down") {
        return;
    }
    let repo = copy_workspace();
    let ns = format!("xtest{}", std::process::id());
    let mut x = Xtask::deployment(repo.path(), &ns);
    x.env.push(("XTASK_BUILD_PROFILE".into(), "dev".into()));
    let builder_volumes = || {
        let mut v = lines(&docker_ok(&[
            "volume",
            "ls",
            "-q",
            "--filter",
            &format!("label=dev.todo-app.builder={TEST_BUILDER}"),
        ]));
        v.sort();
        v
    };
    let volumes = ["cargo-registry", "cargo-target", "src"].map(|v| format!("{TEST_BUILDER}-{v}"));

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
    for task in [
        "app-binaries",
        "backend-image",
        "frontend-image",
        "app-containers",
        "smoke",
    ] {
        assert!(
            finished.contains(&task.to_owned()),
            "{task} did not run: {finished:?}"
        );
    }
    assert_eq!(builder_volumes(), volumes, "the builder's volumes");
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
        serde_json::json!([
            "app-binaries",
            "backend-image",
            "frontend-image",
            "app-containers",
            "smoke"
        ]),
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
    // Every app image this deployment runs, for step 8: other tests share the daemon and build
    // images of their own meanwhile, so only these can be expected gone.
    let mut built = std::collections::BTreeSet::new();
    let mut record_images = |x: &Xtask| {
        built.extend(
            ["backend", "frontend"]
                .iter()
                .filter_map(|r| x.container_image(r)),
        );
    };
    record_images(&x);

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
    for task in [
        "app-binaries",
        "app-containers",
        "backend-image",
        "frontend-image",
        "smoke",
    ] {
        assert!(
            fresh.contains(&task.to_owned()),
            "{task} not fresh: {fresh:?}"
        );
    }

    // 3. A test file changes: the compile runs again, leaves both binaries byte-identical,
    //    and nothing after it runs. `plan` says the images wait for the binaries.
    let test_file = repo.path().join("backend/tests/api.rs");
    let mut text = std::fs::read_to_string(&test_file).unwrap();
    text.push_str("\n// edited by the docker_target test\n");
    std::fs::write(&test_file, text).unwrap();
    let plan = x.run(&["plan"]);
    plan.assert_ok("plan after a test-file edit")
        .assert_json_lines("plan --json");
    let decisions: Vec<(String, String, String)> = plan
        .events()
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
            (s("task"), s("decision"), s("reason"))
        })
        .collect();
    let pending = "runs if the binary of `app-binaries` changes";
    assert_eq!(
        decisions,
        [
            (
                "app-binaries",
                "run",
                "inputs changed: `backend/tests/api.rs`; `sources` changed"
            ),
            ("backend-image", "pending", pending),
            ("frontend-image", "pending", pending),
            ("app-containers", "pending", pending),
            ("smoke", "pending", pending),
        ]
        .map(|(t, d, r)| (t.to_owned(), d.to_owned(), r.to_owned()))
    );
    let same = x.run(&["deploy"]);
    same.assert_ok("deploy after a test-file edit")
        .assert_json_lines("test-file deploy");
    assert_eq!(same.tasks_sorted("started"), ["app-binaries"]);
    for task in ["backend-image", "frontend-image", "app-containers", "smoke"] {
        assert!(
            same.events().iter().any(|e| e["event"] == "fresh"
                && e["task"] == task
                && e["reason"] == "binary unchanged"),
            "{task} not fresh with `binary unchanged`: {}",
            same.stdout
        );
    }
    let unchanged: Vec<Option<String>> = ["postgres", "backend", "frontend"]
        .iter()
        .map(|r| x.container_id(r))
        .collect();
    assert_eq!(unchanged, before, "a container was replaced");

    // 4. One backend line changes: the compile runs, only the backend binary differs, so only
    //    the backend image rebuilds, only the backend container is replaced, and the smoke
    //    test runs again.
    let main_rs = repo.path().join("backend/src/main.rs");
    let text = std::fs::read_to_string(&main_rs).unwrap();
    let line = "todo-backend: configuration error: {e}";
    assert!(text.contains(line), "backend/src/main.rs changed shape");
    std::fs::write(
        &main_rs,
        text.replace(line, "todo-backend: configuration error (edited): {e}"),
    )
    .unwrap();
    let edit = x.run(&["deploy"]);
    edit.assert_ok("deploy after editing one backend line")
        .assert_json_lines("one-line deploy");
    // Only the Docker target's tasks: Minikube's `secrets` and `release` are not even planned.
    assert_eq!(
        edit.tasks_sorted("started"),
        ["app-binaries", "app-containers", "backend-image", "smoke"]
    );
    assert_eq!(edit.tasks_sorted("fresh"), ["frontend-image"]);
    assert_eq!(
        edit.reason_of("backend-image"),
        "dependency changed: `app-binaries`"
    );
    let after: Vec<Option<String>> = ["postgres", "backend", "frontend"]
        .iter()
        .map(|r| x.container_id(r))
        .collect();
    record_images(&x);
    assert_eq!(after[0], before[0], "postgres container was replaced");
    assert_ne!(after[1], before[1], "backend container was not replaced");
    assert_eq!(after[2], before[2], "frontend container was replaced");

    // 5. Another build profile is another key: nothing compiled for `dev` is reused.
    let mut release = Xtask::deployment(repo.path(), &ns);
    release
        .env
        .push(("XTASK_BUILD_PROFILE".into(), "release".into()));
    let plan = release.run(&["plan"]);
    plan.assert_ok("plan --build-profile release");
    let event = |run: &test_support::Run, task: &str| {
        run.events()
            .into_iter()
            .find(|e| e["event"] == "plan" && e["task"] == task)
            .unwrap()
    };
    let binaries = event(&plan, "app-binaries");
    assert_eq!(
        (binaries["decision"].as_str(), binaries["reason"].as_str()),
        (Some("run"), Some("`profile` changed"))
    );
    assert_eq!(event(&plan, "backend-image")["decision"], "pending");
    let dev_plan = x.run(&["plan"]);
    let dev_key = event(&dev_plan, "app-binaries")["key"].clone();
    assert!(dev_key.is_string());
    assert_ne!(binaries["key"], dev_key);

    eprintln!(
        "timings: cold deploy {:.1}s, no-op deploy {:.2}s, test-file deploy {:.1}s, one-line deploy {:.1}s",
        cold.elapsed.as_secs_f64(),
        noop.elapsed.as_secs_f64(),
        same.elapsed.as_secs_f64(),
        edit.elapsed.as_secs_f64()
    );

    // 6. A container removed behind our back is noticed (output missing) and recreated; the
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

    // 6b. A backend that exits by itself comes back by itself (the containers' restart policy,
    //    as Kubernetes restarts a pod's container): the same container, restarted by Docker,
    //    and the live app passes the smoke test again with no deploy.
    let backend = format!("{ns}-docker-backend");
    docker_ok(&["exec", &backend, "sh", "-c", "kill -TERM 1"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let state = docker_ok(&[
            "inspect",
            "-f",
            "{{.RestartCount}} {{.State.Running}}",
            &backend,
        ]);
        if state.trim() == "1 true" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "Docker did not restart the backend that exited: {state}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(x.container_id("backend"), healed_ids[1]);
    x.run(&["smoke"])
        .assert_ok("smoke after Docker restarted the backend");

    // 7. `down` keeps the database: the containers and network go, the volume stays and is
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
    // The builder stays for every deployment on the daemon; only this one's binaries go.
    assert!(
        down.stdout
            .contains(&format!("builder kept: {TEST_BUILDER}")),
        "{}",
        down.stdout
    );
    let out_dir = format!("/build/target/xtask-out/{ns}-docker");
    let test_out = test_support::docker::docker(&["exec", TEST_BUILDER, "test", "-e", &out_dir]);
    assert!(
        !test_out.status.success(),
        "{out_dir} is left in the builder"
    );
    assert_eq!(
        builder_volumes(),
        volumes,
        "down removed the builder's volumes"
    );
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

    // 8. down --volumes --images leaves nothing of this deployment's (the shared builder stays);
    //    a second down is a no-op that succeeds.
    x.run(&["down", "--volumes", "--images"])
        .assert_ok("down --volumes --images");
    for kind in ["container", "network", "volume"] {
        assert!(
            x.objects(kind).is_empty(),
            "{kind}s left: {:?}",
            x.objects(kind)
        );
    }
    assert_eq!(built.len(), 3, "two backend images and one frontend image");
    let left: Vec<&String> = built
        .iter()
        .filter(|id| {
            test_support::docker::docker(&["image", "inspect", id])
                .status
                .success()
        })
        .collect();
    assert!(left.is_empty(), "images left: {left:?}");
    assert_eq!(
        builder_volumes(),
        volumes,
        "--images removed the shared builder"
    );
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

//! `cargo xtask bench load` with tiny bounds against the real Docker target: 10 sign-ins at
//! once, a few seconds of workload, one PostgreSQL and one backend kill and restart, the
//! hostile-input set, and `down` + `deploy` keeping every account and task. Correctness only
//! (allowed statuses, zero lost writes, recovery, every hostile case refused): its figures are
//! printed, never judged, so load on the machine cannot fail it.

#![allow(clippy::unwrap_used)]

use serde_json::Value;
use test_support::docker::docker_ok;
use test_support::{Xtask, copy_workspace, docker_daemon, workspace_root};

use crate::support::one_deployment_at_a_time;

/// The checks the small run must pass: every property the suite proves (a step that could not
/// run to the end adds a failing check of its own, which the exit code check below catches).
const MUST_HOLD: [&str; 15] = [
    "sign-in burst: every answer 303/200/401/429/503",
    "sign-in burst: no wrong password signed in",
    "sign-in burst: normal traffic served throughout",
    "sign-in burst: backend under its memory limit",
    "workload: every answer 2xx or throttled",
    "workload: zero lost writes",
    "workload: backend under its memory limit",
    "faults: the app said so and recovered by itself",
    "faults: zero lost writes",
    "faults: writes acknowledged in every phase",
    "faults: backend under its memory limit",
    "down + deploy: every account and acknowledged write kept",
    "hostile input: no 5xx",
    "hostile input: every case clearly refused",
    "hostile input: nothing changed",
];

fn of_kind<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == kind).collect()
}

#[test]
fn a_small_load_suite_holds_its_properties_on_the_docker_target() {
    let _serial = one_deployment_at_a_time();
    if !docker_daemon("load::a_small_load_suite_holds_its_properties_on_the_docker_target") {
        return;
    }
    let repo = copy_workspace();
    // Its own namespace and port (Xtask::deployment), so it cannot meet another deployment.
    let x = Xtask::deployment(repo.path(), &format!("xload{}", std::process::id()));
    let run = x.run(&[
        "bench",
        "load",
        "--sign-ins",
        "10",
        "--duration",
        "3",
        "--users",
        "6",
        "--concurrency",
        "4",
        "--outage",
        "2",
    ]);
    run.assert_json_lines("bench load");
    let events = run.events();
    let all = format!("--- stdout\n{}\n--- stderr\n{}", run.stdout, run.stderr);

    let checks = of_kind(&events, "load-check");
    for name in MUST_HOLD {
        let check = checks
            .iter()
            .find(|c| c["check"] == name)
            .unwrap_or_else(|| panic!("no check `{name}`:\n{all}"));
        assert_eq!(
            check["ok"], true,
            "`{name}` failed: {}\n{all}",
            check["detail"]
        );
    }
    // The exit code says the same as the checks.
    let failed = checks.iter().filter(|c| c["ok"] != true).count();
    assert_eq!(
        run.code == Some(0),
        failed == 0,
        "exit code {:?}\n{all}",
        run.code
    );

    // The workload wrote, and the ledger checked what it wrote.
    let steps = of_kind(&events, "load-step");
    let workload = steps
        .iter()
        .find(|s| s["step"].as_str().unwrap().starts_with("workload"))
        .unwrap_or_else(|| panic!("no workload row:\n{all}"));
    assert!(workload["acked_writes"].as_u64().unwrap() > 0, "{all}");
    assert_eq!(workload["lost_writes"], 0, "{all}");
    // The burst's answers are what was sent: 10 attempts.
    let burst = steps
        .iter()
        .find(|s| s["step"].as_str().unwrap().starts_with("sign-in burst"))
        .unwrap();
    assert_eq!(burst["requests"], 10, "{all}");

    // Each fault was seen to happen and to heal.
    let faults = of_kind(&events, "load-fault");
    for what in [
        "database killed: backend /ready",
        "database started: backend /ready",
        "backend killed: frontend /tasks",
        "backend started: frontend /tasks",
    ] {
        let f = faults
            .iter()
            .find(|f| f["fault"] == what)
            .unwrap_or_else(|| panic!("no fault row `{what}`:\n{all}"));
        assert_eq!(f["ok"], true, "`{what}`: {}\n{all}", f["seen"]);
    }

    // Every hostile case was sent and judged: each refused clearly and changed nothing, none
    // got a 5xx.
    let hostile = of_kind(&events, "load-hostile");
    assert!(
        hostile.len() >= 30,
        "only {} hostile cases:\n{all}",
        hostile.len()
    );
    for case in &hostile {
        let name = case["case"].as_str().unwrap();
        assert!(
            !case["got"].as_str().unwrap().starts_with('5'),
            "a 5xx for `{name}`:\n{all}"
        );
        assert_eq!(case["ok"], true, "`{name}`: {}\n{all}", case["got"]);
    }

    // The backend ran under the chart's limit, 1Gi (a unit test of the load module keeps the
    // Docker target's limits equal to values.yaml).
    let name = format!("{}-docker-backend", x.namespace());
    let limit = docker_ok(&[
        "container",
        "inspect",
        "--format",
        "{{.HostConfig.Memory}}",
        &name,
    ]);
    assert_eq!(limit, (1u64 << 30).to_string());
}

#[test]
fn bad_bounds_are_refused_naming_the_option() {
    let root = workspace_root();
    let run = Xtask::new(&root).run(&["bench", "load", "--sign-ins", "0"]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("--sign-ins"), "{}", run.stderr);
    let run = Xtask::new(&root).run(&["bench", "load", "--skip", "everything"]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("signin") && run.stderr.contains("redeploy"),
        "the possible values are not named: {}",
        run.stderr
    );
}

//! Issue 12, the inner loop, on the Docker target for real: `cargo xtask logs` and
//! `cargo xtask dev` against one deployment of a throwaway copy of the repository (image
//! builds are slow: one deployment serves every assertion).

#![allow(clippy::unwrap_used)]

use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use serde_json::Value;
use test_support::{Xtask, copy_workspace, docker_daemon};

use crate::support::one_deployment_at_a_time;

/// The backend handler the test edits, and the line it changes.
const HANDLER: &str = "backend/src/routes/health.rs";
const ORIGINAL: &str = r#"Json(json!({ "status": "ok" }))"#;
const EDITED: &str = r#"Json(json!({ "status": "ok", "edited": "by-the-dev-test" }))"#;
const BROKEN: &str = r#"Json(json!({ "status": "ok", "edited": by_the_dev_test }))"#;
/// Compiles and starts, but its `/health` fails, so the frontend (whose readiness asks it)
/// never becomes ready.
const UNHEALTHY: &str = r#"panic!("broken by the dev test")"#;

/// How long a cycle may take before the test gives up instead of hanging (a cold backend
/// build on a loaded machine takes many minutes); not a timing assertion.
const CYCLE_BOUND: Duration = Duration::from_secs(3600);

/// `cargo xtask dev --json`, killed if the test fails before it stops it.
struct Dev {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<Value>,
}

impl Drop for Dev {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        // Ctrl-C first, so that dev stops its `docker logs` and `docker events` children.
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-INT", &pid]).status();
        for _ in 0..100 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Dev {
    fn start(x: &Xtask) -> Dev {
        let (child, lines) = x.spawn(&["dev"]);
        Dev {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The next event, waiting up to `limit`.
    #[track_caller]
    fn next(&self, limit: Duration) -> Result<Value, RecvTimeoutError> {
        let line = self.lines.recv_timeout(limit)?;
        Ok(serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("dev's stdout is not JSON lines: {line:?}: {e}")))
    }

    /// The next `cycle_ended` event (of the cycle after `after`).
    #[track_caller]
    fn cycle_end(&mut self, after: u64) -> Value {
        loop {
            let event = self.next(CYCLE_BOUND).unwrap_or_else(|e| {
                panic!(
                    "no cycle ended after cycle {after} ({e}); events: {:#?}",
                    self.seen
                )
            });
            self.seen.push(event.clone());
            if event["event"] == "cycle_ended" && event["cycle"].as_u64().unwrap() > after {
                return event;
            }
        }
    }

    /// Waits for an event `wanted` accepts.
    #[track_caller]
    fn event(&mut self, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        if let Some(e) = self.seen.iter().find(|e| wanted(e)) {
            return e.clone();
        }
        loop {
            let event = self
                .next(CYCLE_BOUND)
                .unwrap_or_else(|e| panic!("no {what} ({e}); events: {:#?}", self.seen));
            self.seen.push(event.clone());
            if wanted(&event) {
                return event;
            }
        }
    }

    /// SIGINT, as Ctrl-C sends it; the exit code and every event left.
    fn interrupt(&mut self) -> (Option<i32>, Vec<Value>) {
        test_support::interrupt(&self.child);
        let code = self.child.wait().unwrap().code();
        while let Ok(event) = self.next(Duration::from_secs(10)) {
            self.seen.push(event);
        }
        (code, std::mem::take(&mut self.seen))
    }
}

fn ids(x: &Xtask) -> [Option<String>; 3] {
    ["postgres", "backend", "frontend"].map(|r| x.container_id(r))
}

/// The body of the backend's `/health`, through its port published on loopback.
fn backend_health(x: &Xtask) -> (u16, String) {
    let name = format!("{}-docker-backend", x.namespace());
    let addr = test_support::docker::docker_ok(&["port", &name, "8000/tcp"]);
    let addr = addr
        .lines()
        .find(|l| l.starts_with("127.") || l.starts_with("0.0.0.0"))
        .unwrap()
        .replace("0.0.0.0", "127.0.0.1");
    let resp = ureq::get(&format!("http://{addr}/health")).call().unwrap();
    (resp.status(), resp.into_string().unwrap())
}

fn edit(root: &std::path::Path, from: &str, to: &str) {
    let path = root.join(HANDLER);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{HANDLER} has no `{from}`");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

fn strs(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

#[test]
fn logs_and_the_dev_loop_replace_only_what_changed() {
    let _serial = one_deployment_at_a_time();
    if !docker_daemon("docker_dev::logs_and_the_dev_loop_replace_only_what_changed") {
        return;
    }
    let repo = copy_workspace();
    // Step 5 fails readiness on purpose: give up after 30 s, not 120.
    let pipeline = repo.path().join("xtask/pipeline.toml");
    let text = std::fs::read_to_string(&pipeline).unwrap();
    let anchor = "frontend-image = \"frontend-image\"\n";
    assert!(text.contains(anchor), "pipeline.toml changed shape");
    let text = text.replacen(anchor, &format!("{anchor}ready-timeout = 30\n"), 1);
    std::fs::write(&pipeline, text).unwrap();
    let ns = format!("xdev{}", std::process::id());
    let x = Xtask::deployment(repo.path(), &ns);

    // Nothing deployed yet: `logs` says so.
    let none = x.run(&["logs"]);
    assert_eq!(none.code, Some(1), "{}", none.stderr);
    assert!(
        none.stderr.contains("nothing is deployed"),
        "{}",
        none.stderr
    );

    // 1. The first cycle deploys, as `deploy` does.
    let mut dev = Dev::start(&x);
    let first = dev.cycle_end(0);
    assert_eq!(first["ok"], true, "{first}");
    assert!(
        strs(&first["ran"]).contains(&"app-containers") && strs(&first["ran"]).contains(&"smoke"),
        "{first}"
    );
    // Then how to reach the app, as `deploy` says it.
    dev.event("url event", |e| e["event"] == "url");
    let before = ids(&x);
    assert!(before.iter().all(Option::is_some), "{before:?}");

    // `logs`: every service's lines, prefixed and aligned; `logs backend`: the backend's only.
    let plain = |args: &[&str]| {
        let out = Command::new(test_support::xtask::bin())
            .arg("--root")
            .arg(repo.path())
            .args(["--target", "docker", "--namespace", &ns])
            .args(args)
            .env("NO_COLOR", "1")
            .env_remove("XTASK_TARGET")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let all = plain(&["logs"]);
    for service in ["backend  | ", "frontend | ", "postgres | "] {
        assert!(
            all.lines().any(|l| l.starts_with(service)),
            "no line of `{service}`:\n{all}"
        );
    }
    assert!(
        all.lines()
            .all(|l| ["backend  | ", "frontend | ", "postgres | "]
                .iter()
                .any(|p| l.starts_with(p))),
        "{all}"
    );
    let backend = plain(&["logs", "backend"]);
    assert!(!backend.is_empty());
    assert!(
        backend.lines().all(|l| l.starts_with("backend  | ")),
        "{backend}"
    );
    let json = x.run(&["logs", "frontend"]);
    json.assert_ok("logs --json frontend")
        .assert_json_lines("logs --json");
    assert!(
        !json.events().is_empty()
            && json
                .events()
                .iter()
                .all(|e| e["event"] == "app_log" && e["service"] == "frontend"),
        "{}",
        json.stdout
    );

    // 2. A backend handler changes: only the backend is rebuilt and replaced.
    edit(repo.path(), ORIGINAL, EDITED);
    let second = dev.cycle_end(1);
    assert_eq!(second["ok"], true, "{second}");
    assert_eq!(strs(&second["changed"]), [HANDLER], "{second}");
    assert!(
        strs(&second["ran"]).contains(&"backend-image")
            && !strs(&second["ran"]).contains(&"frontend-image"),
        "{second}"
    );
    let after = ids(&x);
    assert_eq!(after[0], before[0], "postgres was replaced");
    assert_ne!(after[1], before[1], "backend was not replaced");
    assert_eq!(after[2], before[2], "frontend was replaced");
    // The replaced one was kept until the run passed, then removed.
    dev.event("settled event of a good run", |e| {
        e["event"] == "settled"
            && e["succeeded"] == true
            && e["lines"][0]
                .as_str()
                .is_some_and(|l| l.contains(&format!("{ns}-docker-backend-previous")))
    });
    assert_eq!(
        x.objects("container").len(),
        3,
        "{:?}",
        x.objects("container")
    );
    let (status, body) = backend_health(&x);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (status, &body["edited"]),
        (200, &Value::from("by-the-dev-test"))
    );

    // 3. A compile error: the cycle fails, says why, and the running containers still serve.
    edit(repo.path(), EDITED, BROKEN);
    let third = dev.cycle_end(2);
    assert_eq!(third["ok"], false, "{third}");
    assert_eq!(strs(&third["failed"]), ["app-binaries"], "{third}");
    assert!(
        third["error"].as_str().unwrap().contains("by_the_dev_test"),
        "the compiler's error is not in the cycle's error: {third}"
    );
    assert_eq!(ids(&x), after, "a failed cycle replaced a container");
    assert_eq!(backend_health(&x).0, 200);

    // 4. Fixed: the next cycle succeeds. The source is the one already running; whether its
    //    recompiled binary is byte-identical (then nothing after the compile runs) is the
    //    compiler's business, so only the other containers are held to it.
    edit(repo.path(), BROKEN, EDITED);
    let fourth = dev.cycle_end(3);
    assert_eq!(fourth["ok"], true, "{fourth}");
    let after = {
        let now = ids(&x);
        assert_eq!((&now[0], &now[2]), (&after[0], &after[2]), "{fourth}");
        now
    };
    assert_eq!(backend_health(&x).0, 200);

    // 5. A change that compiles and starts but leaves the app unready: the new backend replaced
    //    the old one, the run failed, and the old one, the last that passed, is put back.
    edit(repo.path(), EDITED, UNHEALTHY);
    let fifth = dev.cycle_end(4);
    assert_eq!(fifth["ok"], false, "{fifth}");
    assert_eq!(strs(&fifth["failed"]), ["app-containers"], "{fifth}");
    assert!(
        fifth["error"].as_str().unwrap().contains("not ready"),
        "{fifth}"
    );
    let settled = dev.event("settled event of a failed run", |e| {
        e["event"] == "settled" && e["succeeded"] == false
    });
    assert_eq!(
        ids(&x),
        after,
        "the last good backend is not back: {settled}"
    );
    let (status, body) = backend_health(&x);
    assert_eq!(status, 200);
    assert!(body.contains("by-the-dev-test"), "{body}");
    let mut containers = x.objects("container");
    containers.sort();
    assert_eq!(
        containers,
        ["backend", "frontend", "postgres"].map(|r| format!("{ns}-docker-{r}")),
        "the broken backend was left behind"
    );

    // 6. Ctrl-C: exit 0, the deployment stays up, and the way to tear it down is named.
    let (code, events) = dev.interrupt();
    assert_eq!(code, Some(0), "{events:#?}");
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "stopped" && e["teardown"] == "cargo xtask down"),
        "{events:#?}"
    );
    assert_eq!(ids(&x), after, "Ctrl-C changed the deployment");
    assert_eq!(backend_health(&x).0, 200);
    // The app's own lines reached dev's output, the replaced backend's included.
    for service in ["backend", "frontend"] {
        assert!(
            events
                .iter()
                .any(|e| e["event"] == "app_log" && e["service"] == service),
            "no log line of {service} in dev's output: {events:#?}"
        );
    }
}

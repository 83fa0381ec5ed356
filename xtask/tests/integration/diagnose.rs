//! Why a rollout failed, from pods, events and logs as kubectl prints them: one diagnosis per
//! failure reason, with the fix.
#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};
use xtask::diagnose::*;

fn ctx() -> FixContext {
    FixContext {
        profile: Some("minikube".into()),
        context: "minikube".into(),
        target_flags: "--target minikube --profile minikube".into(),
        values_file: "k8s/todo-app/values-dev.yaml".into(),
    }
}

fn pod(name: &str, phase: &str, conditions: Value, statuses: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "todo-app",
                     "labels": {"app.kubernetes.io/name": "todo-app", "app.kubernetes.io/component": "backend"}},
        "spec": {"containers": [{"name": "backend", "image": "todo-backend:0123456789ab",
                                 "imagePullPolicy": "IfNotPresent"}]},
        "status": {"phase": phase, "conditions": conditions, "containerStatuses": statuses,
                   "hostIP": "192.168.49.2", "podIP": "10.244.0.12", "qosClass": "Burstable",
                   "startTime": "2024-05-01T10:00:00Z"}
    })
}

fn list(items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": "List", "items": items, "metadata": {"resourceVersion": ""}})
}

fn event(pod: &str, kind: &str, reason: &str, message: &str, count: u64, at: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": format!("{pod}.17c9"), "namespace": "todo-app"},
        "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": pod, "namespace": "todo-app",
                            "fieldPath": "spec.containers{backend}"},
        "reason": reason, "message": message, "type": kind, "count": count,
        "firstTimestamp": "2024-05-01T10:00:00Z", "lastTimestamp": at,
        "source": {"component": "kubelet", "host": "minikube"}
    })
}

fn ready_conditions(ready: bool) -> Value {
    let s = if ready { "True" } else { "False" };
    json!([
        {"type": "Initialized", "status": "True"},
        {"type": "Ready", "status": s, "reason": "ContainersNotReady",
         "message": "containers with unready status: [backend]"},
        {"type": "ContainersReady", "status": s},
        {"type": "PodScheduled", "status": "True"}
    ])
}

fn no_logs() -> impl FnMut(&str, &str, bool) -> Option<String> {
    |_, _, _| None
}

#[test]
fn image_pull_backoff() {
    let pods = list(vec![pod(
        "todo-app-backend-7d9c-x1",
        "Pending",
        ready_conditions(false),
        json!([{"name": "backend", "image": "todo-backend:0123456789ab", "imageID": "", "ready": false,
                "restartCount": 0, "started": false,
                "state": {"waiting": {"reason": "ImagePullBackOff",
                          "message": "Back-off pulling image \"todo-backend:0123456789ab\""}},
                "lastState": {}}]),
    )]);
    let events = list(vec![
        event(
            "todo-app-backend-7d9c-x1",
            "Normal",
            "Pulling",
            "Pulling image \"todo-backend:0123456789ab\"",
            3,
            "2024-05-01T10:00:05Z",
        ),
        event(
            "todo-app-backend-7d9c-x1",
            "Warning",
            "Failed",
            "Failed to pull image \"todo-backend:0123456789ab\": pull access denied, repository does not exist",
            3,
            "2024-05-01T10:00:06Z",
        ),
        event(
            "other-pod",
            "Warning",
            "Failed",
            "unrelated",
            1,
            "2024-05-01T10:00:07Z",
        ),
    ]);
    let f = diagnose(&pods, &events, &ctx(), &mut no_logs());
    assert_eq!(f.len(), 1);
    assert_eq!(
        f[0].problem,
        Problem::ImagePull {
            reason: "ImagePullBackOff".into(),
            image: "todo-backend:0123456789ab".into()
        }
    );
    assert_eq!(f[0].container.as_deref(), Some("backend"));
    assert_eq!(
        f[0].events.len(),
        2,
        "only this pod's events: {:?}",
        f[0].events
    );
    assert!(f[0].events[1].starts_with("Warning Failed: Failed to pull image"));
    assert!(f[0].events[1].ends_with("(x3)"));
    assert!(f[0].fix.contains("cargo xtask deploy"), "{}", f[0].fix);
    let text = render(&f);
    assert!(text.contains("pod todo-app-backend-7d9c-x1, container backend: ImagePullBackOff for image todo-backend:0123456789ab"), "{text}");
}

#[test]
fn crash_loop_with_exit_code_and_previous_logs() {
    let pods = list(vec![pod(
        "todo-app-backend-7d9c-x2",
        "Running",
        ready_conditions(false),
        json!([{"name": "backend", "image": "todo-backend:0123456789ab", "ready": false, "restartCount": 4,
                "started": false,
                "state": {"waiting": {"reason": "CrashLoopBackOff",
                          "message": "back-off 1m20s restarting failed container=backend pod=todo-app-backend-7d9c-x2_todo-app(uid)"}},
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                              "startedAt": "2024-05-01T10:01:00Z", "finishedAt": "2024-05-01T10:01:01Z",
                              "containerID": "docker://abc"}}}]),
    )]);
    let events = list(vec![event(
        "todo-app-backend-7d9c-x2",
        "Warning",
        "BackOff",
        "Back-off restarting failed container backend in pod todo-app-backend-7d9c-x2",
        7,
        "2024-05-01T10:02:00Z",
    )]);
    let mut calls = Vec::new();
    let mut logs = |p: &str, c: &str, prev: bool| {
        calls.push((p.to_owned(), c.to_owned(), prev));
        Some("starting\nerror: JWT_SECRET must be at least 32 bytes\n".to_owned())
    };
    let f = diagnose(&pods, &events, &ctx(), &mut logs);
    assert_eq!(
        f[0].problem,
        Problem::Crash {
            exit_code: Some(1),
            reason: "Error".into(),
            restarts: 4
        }
    );
    assert_eq!(
        calls,
        vec![(
            "todo-app-backend-7d9c-x2".to_owned(),
            "backend".to_owned(),
            true
        )]
    );
    let text = render(&f);
    assert!(
        text.contains("CrashLoopBackOff, last exit code 1 (Error), 4 restarts"),
        "{text}"
    );
    assert!(
        text.contains("| error: JWT_SECRET must be at least 32 bytes"),
        "{text}"
    );
    assert!(
        text.contains("Warning BackOff: Back-off restarting failed container"),
        "{text}"
    );
}

#[test]
fn oom_killed_points_at_the_memory_limit() {
    let pods = list(vec![pod(
        "p",
        "Running",
        ready_conditions(false),
        json!([{"name": "backend", "image": "i", "ready": false, "restartCount": 2,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]),
    )]);
    let f = diagnose(&pods, &list(vec![]), &ctx(), &mut no_logs());
    assert!(f[0].fix.contains("memory limit"), "{}", f[0].fix);
    assert!(f[0].fix.contains("values-dev.yaml"));
}

#[test]
fn failing_readiness_probe() {
    let pods = list(vec![pod(
        "todo-app-backend-7d9c-x3",
        "Running",
        ready_conditions(false),
        json!([{"name": "backend", "image": "todo-backend:0123456789ab", "ready": false, "restartCount": 0,
                "started": true, "state": {"running": {"startedAt": "2024-05-01T10:00:00Z"}}, "lastState": {}}]),
    )]);
    let events = list(vec![
        event(
            "todo-app-backend-7d9c-x3",
            "Warning",
            "Unhealthy",
            "Readiness probe failed: HTTP probe failed with statuscode: 500",
            2,
            "2024-05-01T10:00:30Z",
        ),
        event(
            "todo-app-backend-7d9c-x3",
            "Warning",
            "Unhealthy",
            "Readiness probe failed: HTTP probe failed with statuscode: 503",
            20,
            "2024-05-01T10:05:00Z",
        ),
    ]);
    let mut logs = |_: &str, _: &str, prev: bool| {
        assert!(!prev, "a running container's current logs");
        Some("{\"level\":\"WARN\",\"msg\":\"database unreachable\"}".to_owned())
    };
    let f = diagnose(&pods, &events, &ctx(), &mut logs);
    assert_eq!(
        f[0].problem,
        Problem::NotReady {
            probe: Some("Readiness probe failed: HTTP probe failed with statuscode: 503".into())
        }
    );
    assert!(f[0].fix.contains("/ready"));
    assert!(render(&f).contains("database unreachable"));
}

#[test]
fn pending_for_insufficient_memory() {
    let conditions = json!([{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
        "lastProbeTime": null, "lastTransitionTime": "2024-05-01T10:00:00Z",
        "message": "0/1 nodes are available: 1 Insufficient memory. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."}]);
    let mut p = pod(
        "todo-app-frontend-5b-x4",
        "Pending",
        conditions,
        json!(null),
    );
    p["status"]
        .as_object_mut()
        .unwrap()
        .remove("containerStatuses");
    let events = list(vec![event(
        "todo-app-frontend-5b-x4",
        "Warning",
        "FailedScheduling",
        "0/1 nodes are available: 1 Insufficient memory. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.",
        1,
        "2024-05-01T10:00:01Z",
    )]);
    let f = diagnose(&list(vec![p]), &events, &ctx(), &mut no_logs());
    assert_eq!(f.len(), 1);
    assert!(f[0].container.is_none());
    assert!(
        matches!(&f[0].problem, Problem::Unschedulable { message } if message.contains("Insufficient memory"))
    );
    assert!(
        f[0].fix
            .contains("minikube start -p minikube --cpus=2 --memory=4096"),
        "{}",
        f[0].fix
    );
}

#[test]
fn missing_secret_key() {
    let pods = list(vec![pod(
        "p5",
        "Pending",
        ready_conditions(false),
        json!([{"name": "backend", "image": "i", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "CreateContainerConfigError",
                          "message": "couldn't find key JWT_SECRET in Secret todo-app/todo-app-secrets"}}}]),
    )]);
    let f = diagnose(&pods, &list(vec![]), &ctx(), &mut no_logs());
    assert!(f[0].fix.contains("cargo xtask secrets"), "{}", f[0].fix);
}

#[test]
fn ready_pods_and_finished_init_containers_are_not_findings() {
    let mut p = pod(
        "ok",
        "Running",
        ready_conditions(true),
        json!([{"name": "backend", "image": "i", "ready": true, "restartCount": 0,
                "state": {"running": {"startedAt": "2024-05-01T10:00:00Z"}}}]),
    );
    p["status"]["initContainerStatuses"] = json!([{"name": "migrate", "image": "i", "ready": false,
        "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]);
    assert!(diagnose(&list(vec![p]), &list(vec![]), &ctx(), &mut no_logs()).is_empty());
    assert!(render(&[]).contains("no failing pod"));
}

#[test]
fn a_run_that_ended_without_an_earlier_one_gets_its_current_logs() {
    // The first run crashed and the kubelet has not restarted it yet: only `state.terminated`
    // is set, and `kubectl logs --previous` would be refused ("previous terminated container
    // ... not found"), so the current logs are asked for.
    let pods = list(vec![pod(
        "todo-app-backend-7d9c-x3",
        "Running",
        ready_conditions(false),
        json!([{"name": "backend", "image": "todo-backend:0123456789ab", "ready": false, "restartCount": 0,
                "started": false, "lastState": {},
                "state": {"terminated": {"exitCode": 1, "reason": "Error",
                          "startedAt": "2024-05-01T10:01:00Z", "finishedAt": "2024-05-01T10:01:01Z"}}}]),
    )]);
    let mut calls = Vec::new();
    let mut logs = |_: &str, _: &str, prev: bool| {
        calls.push(prev);
        Some("error: DATABASE_URL is not set\n".to_owned())
    };
    let f = diagnose(&pods, &list(vec![]), &ctx(), &mut logs);
    assert!(
        matches!(f[0].problem, Problem::Crash { .. }),
        "{:?}",
        f[0].problem
    );
    assert_eq!(calls, vec![false]);
    assert!(render(&f).contains("| error: DATABASE_URL is not set"));
}

//! Why a rollout failed, from `kubectl get pods -o json`, `get events -o json` and container
//! logs: which pod and container, its state and reason, recent events, last log lines, the fix.
//!
//! Field names follow the core/v1 API: `status.phase`, `status.conditions[]` (`PodScheduled`,
//! `Ready`), `status.containerStatuses[]` with `state.waiting.reason`,
//! `lastState.terminated.{exitCode,reason}`, `ready`, `restartCount`; events carry
//! `involvedObject.{kind,name}`, `type`, `reason`, `message`, `count`/`series.count` and
//! `lastTimestamp`/`eventTime`.

use std::fmt;

use serde_json::Value;

/// What is wrong with one container (or pod, when it never got scheduled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The pod cannot be placed on a node (for example `Insufficient memory`).
    Unschedulable {
        /// The scheduler's message.
        message: String,
    },
    /// The image cannot be pulled (`ImagePullBackOff`, `ErrImagePull`, `ErrImageNeverPull`, ...).
    ImagePull {
        /// The waiting reason.
        reason: String,
        /// The image reference.
        image: String,
    },
    /// The container keeps exiting (`CrashLoopBackOff`, or terminated with an error).
    Crash {
        /// Last exit code, if known.
        exit_code: Option<i64>,
        /// Termination reason (`Error`, `OOMKilled`, ...).
        reason: String,
        /// Restarts so far.
        restarts: u64,
    },
    /// The container cannot be created from its spec (missing Secret or key, bad ConfigMap).
    Config {
        /// Waiting reason.
        reason: String,
        /// Kubelet's message.
        message: String,
    },
    /// Running but never ready: its readiness probe fails.
    NotReady {
        /// The latest probe failure message, if an event reported one.
        probe: Option<String>,
    },
    /// Waiting for another reason.
    Waiting {
        /// Waiting reason.
        reason: String,
    },
}

/// One diagnosed pod/container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Pod name.
    pub pod: String,
    /// Container name (none for scheduling problems).
    pub container: Option<String>,
    /// What is wrong.
    pub problem: Problem,
    /// Recent events of the pod, oldest first, `Type Reason: message (xN)`.
    pub events: Vec<String>,
    /// Last log lines of the container (of its previous run after a crash).
    pub logs: Option<String>,
    /// The command or change that fixes it.
    pub fix: String,
}

/// Context for the fix texts.
#[derive(Debug, Clone)]
pub struct FixContext {
    /// Minikube profile (for `minikube start -p`); `None` on another cluster.
    pub profile: Option<String>,
    /// The kube context.
    pub context: String,
    /// The `cargo xtask` flags that reach the same target (`--target minikube --profile p`).
    pub target_flags: String,
    /// The values file the deploy used.
    pub values_file: String,
}

/// How many events and log lines a finding keeps.
pub const MAX_EVENTS: usize = 5;

/// Diagnoses every pod that is not ready. `logs(pod, container, previous)` fetches log lines.
pub fn diagnose(
    pods: &Value,
    events: &Value,
    ctx: &FixContext,
    logs: &mut dyn FnMut(&str, &str, bool) -> Option<String>,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    for pod in items(pods) {
        let name = str_at(pod, "/metadata/name");
        let pod_events = events_for(events, &name);
        let status = pod.get("status").unwrap_or(&Value::Null);

        if let Some(cond) = condition(status, "PodScheduled")
            && cond.get("status").and_then(Value::as_str) == Some("False")
        {
            let message = cond
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .or_else(|| last_event_message(events, &name, "FailedScheduling"))
                .unwrap_or_else(|| "unschedulable".to_owned());
            let fix = unschedulable_fix(&message, ctx);
            findings.push(Finding {
                pod: name.clone(),
                container: None,
                problem: Problem::Unschedulable { message },
                events: pod_events.clone(),
                logs: None,
                fix,
            });
            continue;
        }

        let statuses = ["initContainerStatuses", "containerStatuses"]
            .iter()
            .flat_map(|k| {
                status
                    .get(*k)
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
            });
        for cs in statuses {
            if cs.get("ready").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            let container = str_at(cs, "/name");
            let image = str_at(cs, "/image");
            let waiting = cs.pointer("/state/waiting");
            let waiting_reason = waiting.map(|w| str_at(w, "/reason")).unwrap_or_default();
            let waiting_message = waiting.map(|w| str_at(w, "/message")).unwrap_or_default();
            let last_term = cs
                .pointer("/lastState/terminated")
                .or_else(|| cs.pointer("/state/terminated"));
            let restarts = cs.get("restartCount").and_then(Value::as_u64).unwrap_or(0);
            let init_done = cs
                .pointer("/state/terminated/exitCode")
                .and_then(Value::as_i64)
                == Some(0);
            if init_done {
                continue;
            }

            let (problem, want_logs) = match waiting_reason.as_str() {
                "ImagePullBackOff" | "ErrImagePull" | "ErrImageNeverPull" | "InvalidImageName" => (
                    Problem::ImagePull {
                        reason: waiting_reason.clone(),
                        image: image.clone(),
                    },
                    None,
                ),
                "CreateContainerConfigError" | "CreateContainerError" | "RunContainerError" => (
                    Problem::Config {
                        reason: waiting_reason.clone(),
                        message: waiting_message.clone(),
                    },
                    None,
                ),
                "CrashLoopBackOff" => (crash(last_term, restarts), Some(true)),
                "" if last_term
                    .is_some_and(|t| t.get("exitCode").and_then(Value::as_i64) != Some(0)) =>
                {
                    (
                        crash(last_term, restarts),
                        Some(cs.pointer("/state/running").is_none()),
                    )
                }
                "" => (
                    Problem::NotReady {
                        probe: last_event_message(events, &name, "Unhealthy"),
                    },
                    Some(false),
                ),
                other => (
                    Problem::Waiting {
                        reason: other.to_owned(),
                    },
                    None,
                ),
            };
            // A crash that has a retry (waiting or running): the crashed run's logs are the
            // `--previous` ones. Only `lastState.terminated` makes them exist; a container whose
            // current run ended (`state.terminated`) has its logs as the current ones, and the
            // kubelet refuses `--previous` ("previous terminated container ... not found").
            let logs = want_logs.and_then(|_| {
                let previous = matches!(problem, Problem::Crash { .. }) && wants_previous_logs(cs);
                logs(&name, &container, previous)
            });
            let fix = fix_for(&problem, &container, ctx);
            findings.push(Finding {
                pod: name.clone(),
                container: Some(container),
                problem,
                events: pod_events.clone(),
                logs,
                fix,
            });
        }
    }
    findings
}

fn crash(term: Option<&Value>, restarts: u64) -> Problem {
    Problem::Crash {
        exit_code: term.and_then(|t| t.get("exitCode")).and_then(Value::as_i64),
        reason: term.map(|t| str_at(t, "/reason")).unwrap_or_default(),
        restarts,
    }
}

fn unschedulable_fix(message: &str, ctx: &FixContext) -> String {
    let c = &ctx.context;
    let resources = message.contains("Insufficient memory") || message.contains("Insufficient cpu");
    let volume =
        message.contains("persistentvolumeclaim") || message.contains("PersistentVolumeClaim");
    match &ctx.profile {
        Some(p) if resources => format!(
            "the node lacks the requested resources: give Minikube more (`minikube delete -p {p} && \
             minikube start -p {p} --cpus=2 --memory=4096`) or lower the requests in {}",
            ctx.values_file
        ),
        Some(p) if volume => format!(
            "a volume cannot be bound: enable the storage provisioner (`minikube addons enable storage-provisioner -p {p}`)"
        ),
        None if resources => format!(
            "the nodes lack the requested resources: free some (`kubectl describe nodes --context {c}` \
             shows what they offer) or lower the requests in {}",
            ctx.values_file
        ),
        None if volume => format!(
            "a volume cannot be bound: the cluster needs a default StorageClass with a provisioner \
             (`kubectl get storageclass --context {c}`)"
        ),
        _ => format!(
            "read the scheduler's message above; `kubectl describe nodes --context {c}` shows what the node offers"
        ),
    }
}

fn fix_for(problem: &Problem, container: &str, ctx: &FixContext) -> String {
    let flags = &ctx.target_flags;
    match problem {
        Problem::Unschedulable { message } => unschedulable_fix(message, ctx),
        Problem::ImagePull { image, .. } => match &ctx.profile {
            Some(p) => format!(
                "the image {image} is not on the profile's node (nothing is pulled: tags are local): \
                 run `cargo xtask deploy {flags}`, which builds it in the node's Docker daemon or \
                 loads it into the node, and check `minikube -p {p} image ls`"
            ),
            None => format!(
                "the image {image} is not on the cluster's nodes (nothing is pulled: tags are local): \
                 run `cargo xtask deploy {flags}`, which loads it into kind and k3d nodes"
            ),
        },
        Problem::Config { message, .. }
            if message.contains("secret") || message.contains("Secret") =>
        {
            format!(
                "the pod's Secret is missing or lacks a key ({message}): run `cargo xtask secrets {flags}`"
            )
        }
        Problem::Config { message, .. } => {
            format!("the container spec cannot be satisfied: {message}")
        }
        Problem::Crash { reason, .. } if reason == "OOMKilled" => format!(
            "{container} ran out of memory: raise its memory limit in {}",
            ctx.values_file
        ),
        Problem::Crash { exit_code, .. } => format!(
            "{container} exits (code {}): the log lines above say why; a wrong DATABASE_URL or JWT_SECRET is fixed \
             with `cargo xtask secrets`, an unreachable database by checking the postgres pod",
            exit_code.map_or_else(|| "unknown".to_owned(), |c| c.to_string())
        ),
        Problem::NotReady { .. } => format!(
            "{container} runs but its readiness probe (/ready) fails: it answers 503 while the database is \
             unreachable or migrations are pending; check the database pod and the log lines above"
        ),
        Problem::Waiting { reason } => {
            format!("{container} is waiting ({reason}); see the events above")
        }
    }
}

fn items(list: &Value) -> impl Iterator<Item = &Value> {
    list.get("items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn str_at(v: &Value, pointer: &str) -> String {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn condition<'a>(status: &'a Value, kind: &str) -> Option<&'a Value> {
    status
        .get("conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
}

fn event_time(e: &Value) -> String {
    [
        "/lastTimestamp",
        "/eventTime",
        "/series/lastObservedTime",
        "/firstTimestamp",
    ]
    .iter()
    .find_map(|p| e.pointer(p).and_then(Value::as_str).map(str::to_owned))
    .unwrap_or_default()
}

fn sorted_events<'a>(events: &'a Value, pod: &str) -> Vec<&'a Value> {
    let mut evs: Vec<&Value> = items(events)
        .filter(|e| str_at(e, "/involvedObject/name") == pod)
        .collect();
    evs.sort_by_key(|e| event_time(e));
    evs
}

fn events_for(events: &Value, pod: &str) -> Vec<String> {
    let evs = sorted_events(events, pod);
    evs[evs.len().saturating_sub(MAX_EVENTS)..]
        .iter()
        .map(|e| {
            let count = e
                .get("count")
                .and_then(Value::as_u64)
                .or_else(|| e.pointer("/series/count").and_then(Value::as_u64))
                .unwrap_or(1);
            let times = if count > 1 {
                format!(" (x{count})")
            } else {
                String::new()
            };
            format!(
                "{} {}: {}{times}",
                str_at(e, "/type"),
                str_at(e, "/reason"),
                str_at(e, "/message").trim()
            )
        })
        .collect()
}

fn last_event_message(events: &Value, pod: &str, reason: &str) -> Option<String> {
    sorted_events(events, pod)
        .into_iter()
        .rev()
        .find(|e| str_at(e, "/reason") == reason)
        .map(|e| str_at(e, "/message").trim().to_owned())
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Unschedulable { message } => write!(f, "Pending (unschedulable): {message}"),
            Problem::ImagePull { reason, image } => write!(f, "{reason} for image {image}"),
            Problem::Crash {
                exit_code,
                reason,
                restarts,
            } => {
                write!(f, "CrashLoopBackOff")?;
                if let Some(code) = exit_code {
                    write!(f, ", last exit code {code}")?;
                }
                if !reason.is_empty() {
                    write!(f, " ({reason})")?;
                }
                write!(f, ", {restarts} restarts")
            }
            Problem::Config { reason, message } => write!(f, "{reason}: {message}"),
            Problem::NotReady { probe: Some(p) } => write!(f, "not ready: {p}"),
            Problem::NotReady { probe: None } => write!(f, "not ready (readiness probe failing)"),
            Problem::Waiting { reason } => write!(f, "waiting: {reason}"),
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pod {}", self.pod)?;
        if let Some(c) = &self.container {
            write!(f, ", container {c}")?;
        }
        writeln!(f, ": {}", self.problem)?;
        if !self.events.is_empty() {
            writeln!(f, "  recent events:")?;
            for e in &self.events {
                writeln!(f, "    {e}")?;
            }
        }
        if let Some(logs) = self.logs.as_deref().filter(|l| !l.trim().is_empty()) {
            writeln!(f, "  last log lines:")?;
            for line in logs.lines() {
                writeln!(f, "    | {line}")?;
            }
        }
        write!(f, "  fix: {}", self.fix)
    }
}

/// Renders all findings, or a note that no pod explains the failure.
pub fn render(findings: &[Finding]) -> String {
    if findings.is_empty() {
        return "no failing pod found: every pod is ready (the failure is elsewhere; see helm's message)".to_owned();
    }
    findings
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether the container's crashed run is a previous one (`kubectl logs --previous`): only when
/// `lastState.terminated` is set and the current run has not ended itself.
pub fn wants_previous_logs(container_status: &Value) -> bool {
    container_status.pointer("/lastState/terminated").is_some()
        && container_status.pointer("/state/terminated").is_none()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::events_for;

    #[test]
    fn events_with_series_and_event_time() {
        let ev = json!({"involvedObject": {"kind": "Pod", "name": "p6"}, "type": "Warning", "reason": "BackOff",
                        "message": "Back-off", "eventTime": "2024-05-01T10:00:00.000000Z", "lastTimestamp": null,
                        "series": {"count": 9, "lastObservedTime": "2024-05-01T10:09:00.000000Z"}});
        let out = events_for(&json!({"items": [ev]}), "p6");
        assert_eq!(out, vec!["Warning BackOff: Back-off (x9)".to_owned()]);
    }
}

//! The app as a Helm release on a Kubernetes cluster, whatever target put it there: its pods'
//! selector, its status lines, how this host reaches its frontend, its pods' logs, what a failed
//! run puts back and its teardown. Every call names the kube context.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use serde_json::Value;
use xshell::Shell;

use super::logs::{self, Lines, Request, Service};
use super::{Access, Data, Declared, Frontend, kept_line};
use crate::engine::task::{DEFAULT_GRACE, terminate};
use crate::smoke::Endpoints;
use crate::tools::helm;
use crate::tools::kubectl::{Kube, NamespaceState};
use crate::tools::list_or_none;

/// The label every pod of `release` carries.
pub fn release_selector(release: &str) -> String {
    format!("app.kubernetes.io/instance={release}")
}

/// The releases with their revisions, then their pods' readiness, one line each.
pub fn status_lines(sh: &Shell, kube: &Kube, declared: &Declared) -> Result<Vec<String>> {
    let mut lines = Vec::new();
    for release in &declared.releases {
        let name = &release.name;
        lines.push(
            match helm::status(sh, &kube.context, &kube.namespace, name)? {
                Some(s) => format!("release: {name} revision {} {}", s.revision, s.status),
                None => format!("release: {name} not installed (run `cargo xtask deploy`)"),
            },
        );
    }
    for release in &declared.releases {
        lines.push(format!("pods of {}:", release.name));
        let pods = kube.pods_json(sh, &release_selector(&release.name))?;
        let pods = pod_lines(&pods);
        if pods.is_empty() {
            lines.push("  (none)".to_owned());
        }
        lines.extend(pods.into_iter().map(|l| format!("  {l}")));
    }
    Ok(lines)
}

/// How long a node's NodePort may take to accept a connection before the smoke test goes
/// through a port-forward instead.
const NODE_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// How this host reaches the release's frontend Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrontendAccess {
    /// At a node's address and the Service's NodePort.
    Direct {
        /// `http://<node IP>:<NodePort>`.
        url: String,
    },
    /// Only through `kubectl port-forward` of the Service.
    Forward {
        /// Why not directly.
        reason: String,
        /// The Service's name.
        service: String,
        /// The Service's port.
        port: u16,
    },
}

/// How this host reaches the release's frontend Service: at the address `node` gives (or the
/// reason it gives why no node address is routed here) and the NodePort, unless the Service has
/// none (ClusterIP) or (with `probe`) the NodePort does not accept a connection; else through a
/// port-forward. `missing` is the error when the namespace has no frontend Service.
pub fn frontend_access(
    sh: &Shell,
    kube: &Kube,
    probe: bool,
    missing: impl FnOnce() -> String,
    node: impl FnOnce() -> Result<std::result::Result<IpAddr, String>>,
) -> Result<FrontendAccess> {
    let Some(svc) = kube
        .services(sh)?
        .into_iter()
        .find(|s| s.name.ends_with("frontend"))
    else {
        bail!("{}", missing());
    };
    let forward = |reason: String| FrontendAccess::Forward {
        reason,
        service: svc.name.clone(),
        port: svc.port,
    };
    let Some(node_port) = svc.node_port else {
        return Ok(forward(format!(
            "Service `{}` has no NodePort ({})",
            svc.name, svc.kind
        )));
    };
    let ip = match node()? {
        Ok(ip) => ip,
        Err(reason) => return Ok(forward(reason)),
    };
    let addr = SocketAddr::new(ip, node_port);
    let url = format!("http://{addr}");
    if probe && let Err(e) = TcpStream::connect_timeout(&addr, NODE_CONNECT_TIMEOUT) {
        return Ok(forward(format!(
            "{url} does not answer from this host ({e})"
        )));
    }
    Ok(FrontendAccess::Direct { url })
}

impl FrontendAccess {
    /// The frontend the smoke test talks to, with the port-forward started when it takes one.
    pub fn open(self, sh: &Shell, kube: &Kube, log: &dyn Fn(&str)) -> Result<Frontend> {
        let (frontend, access, forward) = match self {
            FrontendAccess::Direct { url } => (url.clone(), Access::Url(url), None),
            FrontendAccess::Forward {
                reason,
                service,
                port,
            } => {
                log(&format!(
                    "{reason}: reaching svc/{service} through `kubectl port-forward`"
                ));
                let forward = kube.port_forward(sh, &service, port)?;
                log(&format!(
                    "forwarding {} to svc/{service}:{port}",
                    forward.local
                ));
                (
                    format!("http://{}", forward.local),
                    Access::PortForward(kube.port_forward_command(&service, port)),
                    Some(forward),
                )
            }
        };
        Ok(Frontend {
            endpoints: Endpoints {
                frontend,
                // The backend has no outside address; the frontend's /ready checks it.
                backend: None,
            },
            access,
            forward,
        })
    }

    /// `status`'s line for the frontend's URL (or why it is unknown).
    pub fn status_line(access: Result<FrontendAccess>, kube: &Kube) -> String {
        match access {
            Ok(FrontendAccess::Direct { url }) => format!("url: {url} (frontend NodePort)"),
            Ok(FrontendAccess::Forward {
                reason,
                service,
                port,
            }) => format!(
                "url: none from this host ({reason}); `{}` gives it on localhost",
                kube.port_forward_command(&service, port)
            ),
            Err(e) => format!("url: unknown ({e:#})"),
        }
    }
}

/// A release the helm-release task rolled out in the current run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgraded {
    /// The release's name.
    pub release: String,
    /// The revision this run's rollout made.
    pub revision: u64,
    /// The revision it replaced (the `deployed` one, else the last that was deployed); `None`
    /// for a first install, or a release none of whose revisions was ever deployed.
    pub previous: Option<u64>,
    /// The rollout's `--timeout`, which a rollback waits as long as.
    pub timeout: Duration,
}

/// The releases a run rolled out, kept by a cluster target until the run settles
/// ([`Upgrades::settle`]). Only a rollout that succeeded is noted: one that failed was already
/// rolled back by helm (`--rollback-on-failure`/`--atomic`).
#[derive(Debug, Default)]
pub struct Upgrades(Mutex<Vec<Upgraded>>);

impl Upgrades {
    /// Notes a rollout of this run.
    pub fn note(&self, upgraded: Upgraded) -> Result<()> {
        self.0
            .lock()
            .map_err(|_| anyhow::anyhow!("the list of upgraded releases is poisoned"))?
            .push(upgraded);
        Ok(())
    }

    /// After a good run the notes go, and nothing is said. After a failed one (a task after
    /// the release failed, typically the smoke test, or the run was interrupted) each release
    /// this run upgraded is rolled back to the revision it replaced, with `--wait` and the
    /// rollout's timeout, so that the last deployment that worked serves again. A release that
    /// is no longer at the revision the run made (someone else changed it meanwhile) is left
    /// alone, and so is a first install: there is nothing to go back to (said in one line).
    pub fn settle(&self, sh: &Shell, kube: &Kube, succeeded: bool) -> Result<Vec<String>> {
        let noted = std::mem::take(
            &mut *self
                .0
                .lock()
                .map_err(|_| anyhow::anyhow!("the list of upgraded releases is poisoned"))?,
        );
        if succeeded {
            return Ok(Vec::new());
        }
        let mut lines = Vec::new();
        for up in noted {
            let name = &up.release;
            let Some(previous) = up.previous else {
                lines.push(format!(
                    "the run failed: release {name} has no deployed revision before this run's \
                     (revision {}) to roll back to, so it stays",
                    up.revision
                ));
                continue;
            };
            let now = helm::status(sh, &kube.context, &kube.namespace, name)?;
            match now {
                Some(st) if st.revision == up.revision && st.status == "deployed" => {}
                other => {
                    let now = other.map_or_else(
                        || "not installed".to_owned(),
                        |st| format!("at revision {} ({})", st.revision, st.status),
                    );
                    lines.push(format!(
                        "the run failed: release {name} is {now}, not at revision {} that this \
                         run deployed, so it is left as it is",
                        up.revision
                    ));
                    continue;
                }
            }
            helm::rollback(
                sh,
                name,
                previous,
                &kube.namespace,
                &kube.context,
                up.timeout,
            )
            .map_err(|e| {
                anyhow::anyhow!(
                    "{}could not roll release `{name}` back to revision {previous} after the \
                     failed run (it is still at revision {}): {e:#}\nfix: see `helm history \
                     {name} --namespace {ns} --kube-context {ctx}`, then `helm rollback {name} \
                     {previous} --namespace {ns} --kube-context {ctx} --wait`",
                    lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
                    up.revision,
                    ns = kube.namespace,
                    ctx = kube.context,
                )
            })?;
            lines.push(format!(
                "the run failed: release {name} rolled back to revision {previous} (the last that \
                 passed)"
            ));
        }
        Ok(lines)
    }
}

/// [`teardown`] of every declared release.
pub fn teardown_all(
    sh: &Shell,
    kube: &Kube,
    declared: &Declared,
    data: Data,
) -> Result<Vec<String>> {
    let mut done = Vec::new();
    for release in &declared.releases {
        done.extend(teardown(sh, kube, &release.name, &release.secret, data)?);
    }
    Ok(done)
}

/// Tears one release down in order: helm uninstall, our Secret (the next deploy creates it
/// again from the stored secrets) and the registry's pull Secret, the release's PersistentVolumeClaims, then the namespace
/// only if we created it. Idempotent. Returns what was done, one line each.
///
/// The in-cluster PostgreSQL's claim (`data-<release>-postgres-0`, labelled with the release's
/// instance) outlives `helm uninstall`. [`Data::Keep`] leaves it, and so the namespace that
/// holds it, for the next install; [`Data::Delete`] deletes it after the uninstall, so that no
/// new pod claims it again.
pub fn teardown(
    sh: &Shell,
    kube: &Kube,
    release: &str,
    secret: &str,
    data: Data,
) -> Result<Vec<String>> {
    let mut done = Vec::new();
    if helm::uninstall(sh, &kube.context, &kube.namespace, release)? {
        done.push(format!("helm release `{release}` uninstalled"));
    } else {
        done.push(format!("helm release `{release}`: not installed"));
    }
    let ns = &kube.namespace;
    if kube.namespace_state(sh)? == NamespaceState::Absent {
        done.push(format!("namespace `{ns}`: absent"));
        return Ok(done);
    }
    kube.delete_secret(sh, secret)?;
    // The registry's pull Secret (`--registry` with credentials), if a deploy made one: it holds
    // a credential, so it goes with the app's.
    kube.delete_secret(sh, &crate::image_registry::pull_secret::name(release))?;
    done.push(format!("Secret `{secret}` deleted"));
    let claims = format!("PersistentVolumeClaims of `{release}`");
    if data == Data::Delete {
        let deleted = kube.delete_pvcs(sh, &release_selector(release))?;
        done.push(format!("{claims} deleted: {}", list_or_none(&deleted)));
    } else {
        let kept = kube.pvc_names(sh, &release_selector(release))?;
        if !kept.is_empty() {
            done.push(kept_line(&claims, &kept));
            done.push(format!("namespace `{ns}` kept (it holds the database)"));
            return Ok(done);
        }
    }
    done.push(if kube.delete_namespace_if_ours(sh)? {
        format!("namespace `{ns}` deleted (created by xtask)")
    } else {
        format!("namespace `{ns}` kept (not created by xtask)")
    });
    Ok(done)
}

/// `ready/total` per pod from `kubectl get pods -o json`.
pub fn pod_lines(pods: &serde_json::Value) -> Vec<String> {
    use serde_json::Value;
    let items = pods
        .get("items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    items
        .iter()
        .map(|p| {
            let name = p
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("?");
            let phase = p
                .pointer("/status/phase")
                .and_then(Value::as_str)
                .unwrap_or("?");
            let cs = p
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let ready = cs
                .iter()
                .filter(|c| c.get("ready").and_then(Value::as_bool) == Some(true))
                .count();
            let restarts: u64 = cs
                .iter()
                .filter_map(|c| c.get("restartCount").and_then(Value::as_u64))
                .sum();
            format!(
                "{name}  {ready}/{} ready  {phase}  restarts {restarts}",
                cs.len()
            )
        })
        .collect()
}

/// `kubectl logs` of every container of the release's pods of the asked services, the
/// previous instance of a restarted one first. Following, a watch of the release's pods
/// starts a `kubectl logs --follow` for each container instance as it starts running: the
/// pods a rollout creates, and a container's every restart.
///
/// `flags` are the target's options as the user types them, for the fix when nothing is
/// deployed.
pub fn logs(
    sh: &Shell,
    kube: &Kube,
    declared: &Declared,
    request: &Request,
    cancel: &AtomicBool,
    out: Lines<'_>,
    flags: &str,
) -> Result<()> {
    let selectors: Vec<String> = declared
        .releases
        .iter()
        .map(|r| release_selector(&r.name))
        .collect();
    let mut pods = Vec::new();
    for selector in &selectors {
        let list = kube.pods_json(sh, selector)?;
        let items = list["items"].as_array().cloned().unwrap_or_default();
        pods.extend(pod_runs(&items, &request.services));
    }
    if pods.is_empty() {
        let releases: Vec<String> = declared
            .releases
            .iter()
            .map(|r| format!("`{}`", r.name))
            .collect();
        bail!(
            "nothing is deployed: no pods of {} for {} in namespace `{}` (context `{}`); run \
             `cargo xtask deploy {}` first",
            request
                .services
                .iter()
                .map(|s| s.name())
                .collect::<Vec<_>>()
                .join(", "),
            releases.join(", "),
            kube.namespace,
            kube.context,
            flags
        );
    }
    if !request.follow {
        for run in &pods {
            for c in run.containers.iter().filter(|c| c.has_log) {
                if c.restarts > 0 {
                    // The instance before the restart, when the kubelet still has it.
                    let cmd = kube.logs_command(sh, &run.pod, &c.name, false, true, request.tail);
                    logs::stream(cmd, run.service, cancel, out)?;
                }
                let cmd = kube.logs_command(sh, &run.pod, &c.name, false, false, request.tail);
                if let (Some(status), last) = logs::stream(cmd, run.service, cancel, out)?
                    && !status.success()
                {
                    return Err(logs::failed(
                        &format!("kubectl logs {} -c {}", run.pod, c.name),
                        status,
                        &last,
                    ));
                }
            }
        }
        return Ok(());
    }
    let stop = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<Value>();
    let mut watches: Vec<(Child, Instant)> = Vec::new();
    for selector in &selectors {
        watches.push((watch_pods(sh, kube, selector, tx.clone())?, Instant::now()));
    }
    let stop = &stop;
    std::thread::scope(|s| {
        let result = (|| -> Result<()> {
            let mut followed: BTreeSet<(String, String, u64)> = BTreeSet::new();
            let mut follow = |run: &PodRun, tail: Option<u64>| {
                for c in run.containers.iter().filter(|c| c.running) {
                    if !followed.insert((run.pod.clone(), c.name.clone(), c.restarts)) {
                        continue;
                    }
                    let cmd = kube.logs_command(sh, &run.pod, &c.name, true, false, tail);
                    let service = run.service;
                    s.spawn(move || logs::stream(cmd, service, stop, out).map(drop));
                }
            };
            for run in &pods {
                follow(run, request.tail);
            }
            loop {
                if cancel.load(Ordering::SeqCst) {
                    return Ok(());
                }
                match rx.recv_timeout(logs::POLL) {
                    Ok(event) => {
                        if matches!(event["type"].as_str(), Some("ADDED" | "MODIFIED")) {
                            let pod = std::slice::from_ref(&event["object"]);
                            for run in pod_runs(pod, &request.services) {
                                follow(&run, None);
                            }
                        }
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        for ((child, started), selector) in watches.iter_mut().zip(&selectors) {
                            if matches!(child.try_wait(), Ok(Some(_)))
                                && started.elapsed() >= WATCH_RESTART
                            {
                                *child = watch_pods(sh, kube, selector, tx.clone())?;
                                *started = Instant::now();
                            }
                        }
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
                }
            }
        })();
        // Inside the scope: its threads end only once their children do.
        stop.store(true, Ordering::SeqCst);
        for (child, _) in &mut watches {
            terminate(child, DEFAULT_GRACE);
            let _ = child.wait();
        }
        result
    })
}

/// How soon a pod watch that ended (the API server closes watches after a while) is started
/// again, at the most: a kubectl that fails at once is not restarted in a busy loop.
const WATCH_RESTART: Duration = Duration::from_secs(1);

/// Starts `get pods --watch` of `selector`, its events parsed and sent to `tx`.
fn watch_pods(sh: &Shell, kube: &Kube, selector: &str, tx: mpsc::Sender<Value>) -> Result<Child> {
    let mut child = kube
        .watch_pods_command(sh, selector)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start `kubectl get pods --watch`; is kubectl installed?")?;
    let stdout = child.stdout.take().context("kubectl: no stdout pipe")?;
    // kubectl prints each event as an indented JSON object, one after the other.
    std::thread::spawn(move || {
        for event in serde_json::Deserializer::from_reader(stdout).into_iter::<Value>() {
            let Ok(event) = event else { break };
            if tx.send(event).is_err() {
                break;
            }
        }
    });
    Ok(child)
}

/// A pod of the release and the containers it runs, as `kubectl get pods -o json` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRun {
    /// The pod's name.
    pub pod: String,
    /// The service its component label names.
    pub service: Service,
    /// Its containers.
    pub containers: Vec<ContainerRun>,
}

/// One container of a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRun {
    /// The container's name.
    pub name: String,
    /// How often it restarted: each restart is a new instance with its own log.
    pub restarts: u64,
    /// Running now (only then can its log be followed).
    pub running: bool,
    /// Running or terminated: it has a log (a container still waiting to start has none).
    pub has_log: bool,
}

/// The pods of `services` among `pods` (items of a pod list, or one pod), by service and name.
pub fn pod_runs(pods: &[Value], services: &[Service]) -> Vec<PodRun> {
    let mut runs: Vec<PodRun> = pods
        .iter()
        .filter_map(|p| {
            let component = p
                .pointer("/metadata/labels")?
                .get("app.kubernetes.io/component")?
                .as_str()?;
            let service = Service::of_component(component).filter(|s| services.contains(s))?;
            let containers = p
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|c| {
                    let state = c.get("state");
                    let running = state.and_then(|s| s.get("running")).is_some();
                    Some(ContainerRun {
                        name: c.get("name")?.as_str()?.to_owned(),
                        restarts: c.get("restartCount").and_then(Value::as_u64).unwrap_or(0),
                        running,
                        has_log: running || state.and_then(|s| s.get("terminated")).is_some(),
                    })
                })
                .collect();
            Some(PodRun {
                pod: p.pointer("/metadata/name")?.as_str()?.to_owned(),
                service,
                containers,
            })
        })
        .collect();
    runs.sort_by(|a, b| (a.service, &a.pod).cmp(&(b.service, &b.pod)));
    runs
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn pod_runs_name_the_service_of_each_pod_and_its_containers_state() {
        let pods = serde_json::json!([
            {"metadata": {"name": "todo-app-postgres-0", "labels": {"app.kubernetes.io/component": "database"}},
             "status": {"containerStatuses": [{"name": "postgres", "restartCount": 2, "state": {"running": {}}}]}},
            {"metadata": {"name": "todo-app-backend-b", "labels": {"app.kubernetes.io/component": "backend"}},
             "status": {"containerStatuses": [{"name": "backend", "restartCount": 0, "state": {"waiting": {}}}]}},
            {"metadata": {"name": "todo-app-frontend-f", "labels": {"app.kubernetes.io/component": "frontend"}},
             "status": {}},
            {"metadata": {"name": "other", "labels": {}}}
        ]);
        let pods = pods.as_array().unwrap();
        let runs = pod_runs(pods, &[Service::Postgres, Service::Backend]);
        assert_eq!(
            runs,
            [
                PodRun {
                    pod: "todo-app-backend-b".into(),
                    service: Service::Backend,
                    containers: vec![ContainerRun {
                        name: "backend".into(),
                        restarts: 0,
                        running: false,
                        has_log: false,
                    }],
                },
                PodRun {
                    pod: "todo-app-postgres-0".into(),
                    service: Service::Postgres,
                    containers: vec![ContainerRun {
                        name: "postgres".into(),
                        restarts: 2,
                        running: true,
                        has_log: true,
                    }],
                },
            ]
        );
    }
}

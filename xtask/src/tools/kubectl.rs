//! The `kubectl` CLI. Every call names `--context` (and `--namespace` for namespaced objects)
//! explicitly so nothing depends on whatever the user's current context happens to be, and
//! manifests go in on stdin (`apply -f -`) so Secret values never appear in process arguments.

use std::io::{BufRead as _, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use xshell::{Shell, cmd};

use super::{capture, checked};
use crate::engine::task::{DEFAULT_GRACE, terminate};

/// Label marking objects the pipeline created (and may therefore delete).
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Value of [`MANAGED_BY_LABEL`] on objects we own.
pub const MANAGED_BY_VALUE: &str = "xtask";

/// The kube identity every call is scoped to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kube {
    /// kubeconfig context (for Minikube: the profile name).
    pub context: String,
    /// Namespace of the app.
    pub namespace: String,
}

/// `kubectl config current-context`; `None` when no context is set.
pub fn current_context(sh: &Shell) -> Result<Option<String>> {
    let out = capture(
        cmd!(sh, "kubectl config current-context"),
        "kubectl config current-context",
    )?;
    if out.success() {
        let ctx = out.stdout.trim();
        return Ok((!ctx.is_empty()).then(|| ctx.to_owned()));
    }
    if out.stderr.contains("current-context is not set") {
        return Ok(None);
    }
    bail!("kubectl config current-context failed: {}", out.tail(5))
}

/// What kubectl says when the kube context it is told to use is unusable, rather than that an
/// object is absent: client-go's `context was not found for specified context: P` (no kubeconfig
/// at all; printed as `Error in configuration: ...` by kubectl's `cmdutil.CheckErr`) and
/// `error: context "P" does not exist` (a kubeconfig without it), `tools/clientcmd` v0.24 to HEAD.
pub fn is_context_error(stderr: &str) -> bool {
    stderr.contains("context was not found for specified context")
        || (stderr.contains("error: context \"") && stderr.contains("\" does not exist"))
}

/// The fix for an unusable context: minikube writes its profile's context into the kubeconfig.
pub fn context_fix(context: &str) -> String {
    format!(
        "the kube context `{context}` is missing from your kubeconfig; recreate it with \
         `minikube update-context -p {context}` (or `minikube start -p {context}`)"
    )
}

/// `kubectl config get-contexts C -o name`: whether the kubeconfig has context `C` (kubectl
/// answers `error: context C not found`, exit 1, when not; `pkg/cmd/config/get_contexts.go`).
pub fn context_exists(sh: &Shell, context: &str) -> Result<bool> {
    let out = capture(
        cmd!(sh, "kubectl config get-contexts {context} -o name"),
        "kubectl config get-contexts",
    )?;
    if out.success() {
        return Ok(out.stdout.lines().any(|l| l.trim() == context));
    }
    if out.stderr.contains(&format!("context {context} not found")) {
        return Ok(false);
    }
    bail!("kubectl config get-contexts failed: {}", out.tail(3))
}

/// The context every cluster call uses (`--context`, `--kube-context`): the profile's. The
/// current context is shown for information only; nothing depends on it, and the user is never
/// asked to change it.
pub fn context_check(sh: &Shell, context: &str) -> super::Check {
    let current = match current_context(sh) {
        Ok(Some(c)) if c == context => String::new(),
        Ok(Some(c)) => format!("; current: {c}"),
        Ok(None) | Err(_) => String::new(),
    };
    let required = format!("{context} in the kubeconfig");
    match context_exists(sh, context) {
        Ok(true) => super::Check {
            found: format!("{context} (used by every call{current})"),
            required,
            ok: true,
            fix: String::new(),
        },
        Ok(false) => super::Check {
            found: match current.strip_prefix("; ") {
                Some(c) => format!("missing ({c})"),
                None => "missing".to_owned(),
            },
            required,
            ok: false,
            fix: format!("minikube update-context -p {context}"),
        },
        Err(e) => super::Check {
            found: format!("{e:#}"),
            required,
            ok: false,
            fix: format!(
                "check your kubeconfig (`kubectl config get-contexts`), then `minikube update-context -p {context}`"
            ),
        },
    }
}

/// `kubectl config get-contexts -o name`: every context of the kubeconfig, one per line, in
/// kubectl's order (`pkg/cmd/config/get_contexts.go`: sorted by name). Empty when there is no
/// kubeconfig.
pub fn context_names(sh: &Shell) -> Result<Vec<String>> {
    let out = checked(
        cmd!(sh, "kubectl config get-contexts -o name"),
        "kubectl config get-contexts",
    )?;
    Ok(out
        .stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}

/// One context of the kubeconfig with the cluster it points at, as `kubectl config view -o json`
/// shows them (`contexts[].context.cluster`, `clusters[].cluster.server` and
/// `.certificate-authority`; embedded data is shown as `DATA+OMITTED`, never read here).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContextInfo {
    /// The context's name.
    pub name: String,
    /// The name of the kubeconfig cluster entry it uses.
    pub cluster: String,
    /// That cluster's API server URL (empty when the entry is missing).
    pub server: String,
    /// The path of that cluster's CA file, when the kubeconfig names one.
    pub certificate_authority: Option<String>,
}

/// Parses `kubectl config view -o json` (a `Config` of client-go's `clientcmd/api/v1`).
pub fn parse_config_view(json: &str) -> Result<Vec<ContextInfo>> {
    let doc: serde_json::Value = serde_json::from_str(json.trim())
        .context("`kubectl config view -o json` printed unexpected output")?;
    let clusters = doc["clusters"].as_array().cloned().unwrap_or_default();
    let cluster = |name: &str| clusters.iter().find(|c| c["name"].as_str() == Some(name));
    Ok(doc["contexts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| {
            let name = c["name"].as_str()?.to_owned();
            let cluster_name = c["context"]["cluster"].as_str().unwrap_or_default();
            let entry = cluster(cluster_name);
            Some(ContextInfo {
                name,
                cluster: cluster_name.to_owned(),
                server: entry
                    .and_then(|e| e["cluster"]["server"].as_str())
                    .unwrap_or_default()
                    .to_owned(),
                certificate_authority: entry
                    .and_then(|e| e["cluster"]["certificate-authority"].as_str())
                    .map(str::to_owned),
            })
        })
        .collect())
}

/// `kubectl config view -o json`: every context with its cluster entry. Reads the kubeconfig
/// only (no `--context`: it asks no cluster).
pub fn config_view(sh: &Shell) -> Result<Vec<ContextInfo>> {
    let out = checked(
        cmd!(sh, "kubectl config view -o json"),
        "kubectl config view",
    )?;
    parse_config_view(&out.stdout)
}

/// One node of the cluster, as `kubectl get nodes -o json` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// `metadata.name` (for kind and k3d: the node container's name).
    pub name: String,
    /// The first `InternalIP` of `status.addresses`.
    pub internal_ip: Option<std::net::IpAddr>,
    /// `status.nodeInfo.containerRuntimeVersion`, e.g. `docker://27.4.0`, `containerd://1.7.24`.
    pub runtime: String,
}

/// Parses `kubectl get nodes -o json`.
pub fn parse_nodes(json: &str) -> Result<Vec<Node>> {
    let doc: serde_json::Value =
        serde_json::from_str(json).context("kubectl get nodes printed invalid JSON")?;
    Ok(doc["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| {
            let internal_ip = n["status"]["addresses"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|a| a["type"] == "InternalIP")
                .find_map(|a| a["address"].as_str()?.parse().ok());
            Some(Node {
                name: n["metadata"]["name"].as_str()?.to_owned(),
                internal_ip,
                runtime: n["status"]["nodeInfo"]["containerRuntimeVersion"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            })
        })
        .collect())
}

/// `kubectl version --client -o json` → `v1.32.4`.
pub fn client_version(sh: &Shell) -> Result<String> {
    let out = checked(
        cmd!(sh, "kubectl version --client -o json"),
        "kubectl version --client",
    )?;
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim())
        .context("`kubectl version --client -o json` printed no JSON")?;
    v.pointer("/clientVersion/gitVersion")
        .and_then(|g| g.as_str())
        .map(str::to_owned)
        .context("`kubectl version --client -o json` has no clientVersion.gitVersion")
}

/// How long `down` waits for the namespace to go (its finalizers: every object in it deleted).
/// kubectl's own default for `--wait` without `--timeout` is a week (`delete.go`).
pub const NAMESPACE_DELETE_TIMEOUT: Duration = Duration::from_secs(180);

/// `kubectl --context C get --raw /readyz`: Ok when the API server answers `ok`.
pub fn api_ready(sh: &Shell, context: &str) -> Result<()> {
    let out = capture(
        cmd!(
            sh,
            "kubectl --context {context} --request-timeout=5s get --raw /readyz"
        ),
        "kubectl get --raw /readyz",
    )?;
    if out.success() && out.stdout.trim() == "ok" {
        Ok(())
    } else {
        bail!(
            "the API server of context {context:?} is not reachable: {}",
            out.tail(3)
        )
    }
}

impl Kube {
    /// Applies a manifest given on stdin with server-side apply: no
    /// `last-applied-configuration` annotation, which would otherwise copy Secret data.
    pub fn apply_stdin(&self, sh: &Shell, manifest: &[u8]) -> Result<()> {
        let (ctx, ns) = (&self.context, &self.namespace);
        checked(
            cmd!(
                sh,
                "kubectl --context {ctx} --namespace {ns} apply --server-side --field-manager=xtask --force-conflicts -f -"
            )
            .stdin(manifest),
            "kubectl apply",
        )?;
        Ok(())
    }

    /// `get secret NAME -o json`; `None` when it does not exist. The JSON holds secret data:
    /// callers must never print it.
    pub fn get_secret(&self, sh: &Shell, name: &str) -> Result<Option<serde_json::Value>> {
        self.get_json(sh, "secret", name)
    }

    /// The annotation `key` of secret `name`, or `None` when the secret is absent.
    pub fn secret_annotation(&self, sh: &Shell, name: &str, key: &str) -> Result<Option<String>> {
        Ok(self.get_secret(sh, name)?.map(|s| {
            s.pointer("/metadata/annotations")
                .and_then(|a| a.get(key))
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned()
        }))
    }

    /// `delete secret NAME --ignore-not-found`.
    pub fn delete_secret(&self, sh: &Shell, name: &str) -> Result<()> {
        let (ctx, ns) = (&self.context, &self.namespace);
        checked(
            cmd!(
                sh,
                "kubectl --context {ctx} --namespace {ns} delete secret {name} --ignore-not-found"
            ),
            "kubectl delete secret",
        )?;
        Ok(())
    }

    /// `get KIND NAME -o json --ignore-not-found`: an absent object is an empty answer with
    /// exit 0 (`get.go` `printGeneric`), so every failure, a missing kube context included, is
    /// an error rather than absence.
    fn get_json(&self, sh: &Shell, kind: &str, name: &str) -> Result<Option<serde_json::Value>> {
        let (ctx, ns) = (&self.context, &self.namespace);
        let out = capture(
            cmd!(
                sh,
                "kubectl --context {ctx} --namespace {ns} get {kind} {name} -o json --ignore-not-found"
            ),
            &format!("kubectl get {kind}"),
        )?;
        if !out.success() {
            // stderr only: stdout of `get secret` would be the Secret's data.
            let err: Vec<&str> = out
                .stderr
                .lines()
                .filter(|l| !l.trim().is_empty())
                .collect();
            if is_context_error(&out.stderr) {
                bail!(
                    "kubectl get {kind} {name} failed: {}\nfix: {}",
                    err.join("\n"),
                    context_fix(ctx)
                );
            }
            bail!("kubectl get {kind} {name} failed: {}", err.join("\n"));
        }
        if out.stdout.trim().is_empty() {
            return Ok(None);
        }
        // The JSON error never quotes the text: for a Secret it holds the values.
        let value = serde_json::from_str(&out.stdout)
            .map_err(|_| anyhow::anyhow!("kubectl get {kind} {name} printed no JSON"))?;
        Ok(Some(value))
    }

    /// The namespace's state: absent, ours (labelled managed-by=xtask), or someone else's.
    pub fn namespace_state(&self, sh: &Shell) -> Result<NamespaceState> {
        let ns = &self.namespace;
        Ok(match self.get_json(sh, "namespace", ns)? {
            None => NamespaceState::Absent,
            Some(v) => {
                let ours = v
                    .pointer("/metadata/labels")
                    .and_then(|l| l.get(MANAGED_BY_LABEL))
                    .and_then(|v| v.as_str())
                    == Some(MANAGED_BY_VALUE);
                if ours {
                    NamespaceState::Ours
                } else {
                    NamespaceState::Foreign
                }
            }
        })
    }

    /// Creates the namespace labelled as ours unless it exists; returns its state afterwards.
    pub fn ensure_namespace(&self, sh: &Shell) -> Result<NamespaceState> {
        let state = self.namespace_state(sh)?;
        if state != NamespaceState::Absent {
            return Ok(state);
        }
        let manifest = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": self.namespace,
                "labels": { MANAGED_BY_LABEL: MANAGED_BY_VALUE },
            },
        });
        self.apply_stdin(sh, manifest.to_string().as_bytes())?;
        Ok(NamespaceState::Ours)
    }

    /// Deletes the namespace only if we created it; returns whether it was deleted.
    pub fn delete_namespace_if_ours(&self, sh: &Shell) -> Result<bool> {
        if self.namespace_state(sh)? != NamespaceState::Ours {
            return Ok(false);
        }
        let (ctx, ns) = (&self.context, &self.namespace);
        let timeout = format!("--timeout={}s", NAMESPACE_DELETE_TIMEOUT.as_secs());
        let out = capture(
            cmd!(
                sh,
                "kubectl --context {ctx} delete namespace {ns} --ignore-not-found --wait=true {timeout}"
            ),
            "kubectl delete namespace",
        )?;
        if out.success() {
            return Ok(true);
        }
        if out.stderr.contains("timed out waiting for the condition") {
            bail!(
                "namespace `{ns}` is still terminating after {}s (something in it has a finalizer \
                 that does not finish)\nfix: see what is left with `kubectl --context {ctx} get \
                 namespace {ns} -o yaml` (status.conditions) and `kubectl --context {ctx} api-resources \
                 --verbs=list --namespaced -o name | xargs -n1 kubectl --context {ctx} get -n {ns} \
                 --ignore-not-found`, then run `down` again",
                NAMESPACE_DELETE_TIMEOUT.as_secs()
            );
        }
        bail!("kubectl delete namespace {ns} failed: {}", out.tail(5))
    }

    /// The names of the PersistentVolumeClaims `selector` matches (`get pvc -l SELECTOR -o json`).
    pub fn pvc_names(&self, sh: &Shell, selector: &str) -> Result<Vec<String>> {
        let (ctx, ns) = (&self.context, &self.namespace);
        let out = checked(
            cmd!(
                sh,
                "kubectl --context {ctx} --namespace {ns} get pvc -l {selector} -o json"
            ),
            "kubectl get pvc",
        )?;
        let list: serde_json::Value =
            serde_json::from_str(&out.stdout).context("kubectl get pvc printed no JSON")?;
        let items = list["items"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        Ok(items
            .iter()
            .filter_map(|i| i["metadata"]["name"].as_str())
            .map(str::to_owned)
            .collect())
    }

    /// `get nodes -o json`: the cluster's nodes (cluster-scoped: no namespace).
    pub fn nodes(&self, sh: &Shell) -> Result<Vec<Node>> {
        let ctx = &self.context;
        let out = checked(
            cmd!(sh, "kubectl --context {ctx} get nodes -o json"),
            "kubectl get nodes",
        )?;
        parse_nodes(&out.stdout)
    }

    /// `get pods -l SELECTOR -o json`.
    pub fn pods_json(&self, sh: &Shell, selector: &str) -> Result<serde_json::Value> {
        let (ctx, ns) = (&self.context, &self.namespace);
        let out = checked(
            cmd!(
                sh,
                "kubectl --context {ctx} --namespace {ns} get pods -l {selector} -o json"
            ),
            "kubectl get pods",
        )?;
        serde_json::from_str(&out.stdout).context("kubectl get pods printed no JSON")
    }

    /// `get events [--field-selector involvedObject.name=NAME] -o json`.
    pub fn events_json(&self, sh: &Shell, involved: Option<&str>) -> Result<serde_json::Value> {
        let (ctx, ns) = (&self.context, &self.namespace);
        let selector: Vec<String> = involved
            .map(|n| vec![format!("--field-selector=involvedObject.name={n}")])
            .unwrap_or_default();
        let out = checked(
            cmd!(
                sh,
                "kubectl --context {ctx} --namespace {ns} get events {selector...} -o json"
            ),
            "kubectl get events",
        )?;
        serde_json::from_str(&out.stdout).context("kubectl get events printed no JSON")
    }

    /// `logs POD -c CONTAINER --tail N [--previous]`: the last lines, or the error text when the
    /// container has no logs yet (never fatal: logs only enrich a diagnosis).
    pub fn logs(
        &self,
        sh: &Shell,
        pod: &str,
        container: &str,
        tail: u32,
        previous: bool,
    ) -> Result<String> {
        let (ctx, ns) = (&self.context, &self.namespace);
        let tail = tail.to_string();
        let prev: &[&str] = if previous { &["--previous"] } else { &[] };
        let out = capture(
            cmd!(
                sh,
                "kubectl --context {ctx} --namespace {ns} logs {pod} -c {container} --tail {tail} {prev...}"
            ),
            "kubectl logs",
        )?;
        Ok(if out.success() {
            out.stdout
        } else {
            format!("(no logs: {})", out.tail(2))
        })
    }
}

impl Kube {
    /// `logs POD -c CONTAINER [--previous] [--follow] [--tail N]`, as a command for the caller
    /// to spawn and read. Following ends when that instance of the container terminates (a
    /// restart is a new instance: `--previous` reads the one before it).
    pub fn logs_command(
        &self,
        sh: &Shell,
        pod: &str,
        container: &str,
        follow: bool,
        previous: bool,
        tail: Option<u64>,
    ) -> Command {
        let (ctx, ns) = (&self.context, &self.namespace);
        let mut args: Vec<String> = Vec::new();
        if previous {
            args.push("--previous".into());
        }
        if follow {
            args.push("--follow".into());
        }
        if let Some(n) = tail {
            args.extend(["--tail".into(), n.to_string()]);
        }
        cmd!(
            sh,
            "kubectl --context {ctx} --namespace {ns} logs {pod} -c {container} {args...}"
        )
        .into()
    }

    /// `get pods -l SELECTOR --watch --output-watch-events -o json`, as a command for the caller
    /// to spawn and read: one JSON watch event (`{"type": "ADDED"|"MODIFIED"|"DELETED", "object":
    /// <pod>}`) after another, the pods that exist first as `ADDED` (`pkg/cmd/get/get.go`). It
    /// ends when the API server closes the watch.
    pub fn watch_pods_command(&self, sh: &Shell, selector: &str) -> Command {
        let (ctx, ns) = (&self.context, &self.namespace);
        cmd!(
            sh,
            "kubectl --context {ctx} --namespace {ns} get pods -l {selector} --watch --output-watch-events -o json"
        )
        .into()
    }
}

/// Who owns the app's namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamespaceState {
    /// It does not exist.
    Absent,
    /// It exists and carries our managed-by label: `down` may delete it.
    Ours,
    /// It exists and someone else created it: `down` leaves it.
    Foreign,
}

impl Kube {
    /// `delete pvc -l SELECTOR --ignore-not-found --wait=false -o name`: PersistentVolumeClaims
    /// outlive `helm uninstall` (a StatefulSet's volumeClaimTemplates are not release objects).
    /// Not waiting: a claim still mounted by a terminating pod finishes deleting on its own.
    /// Returns the deleted claims' names; none (or a missing namespace) is success.
    pub fn delete_pvcs(&self, sh: &Shell, selector: &str) -> Result<Vec<String>> {
        let (ctx, ns) = (&self.context, &self.namespace);
        let out = checked(
            cmd!(
                sh,
                "kubectl --context {ctx} --namespace {ns} delete pvc -l {selector} --ignore-not-found --wait=false -o name"
            ),
            "kubectl delete pvc",
        )?;
        Ok(deleted_names(&out.stdout, "persistentvolumeclaim"))
    }
}

/// The names in `kubectl delete ... -o name` output (`KIND/NAME` lines). When nothing matched,
/// kubectl prints `No resources found` on stdout too (`delete.go` `DeleteResult`, v0.24 to HEAD).
pub fn deleted_names(stdout: &str, kind: &str) -> Vec<String> {
    let prefix = format!("{kind}/");
    stdout
        .lines()
        .map(str::trim)
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect()
}

/// One port of a Service, as `kubectl get svc -o json` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// `metadata.name`.
    pub name: String,
    /// `spec.type`: `ClusterIP`, `NodePort`, `LoadBalancer`, ...
    pub kind: String,
    /// `spec.ports[0].port`.
    pub port: u16,
    /// `spec.ports[0].nodePort`, for NodePort and LoadBalancer Services.
    pub node_port: Option<u16>,
}

/// The Services in a `kubectl get svc -o json` list (their first port each).
pub fn parse_services(json: &str) -> Result<Vec<Service>> {
    let doc: serde_json::Value =
        serde_json::from_str(json).context("kubectl get svc printed invalid JSON")?;
    let port = |v: &serde_json::Value| v.as_u64().and_then(|p| u16::try_from(p).ok());
    Ok(doc["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|svc| {
            Some(Service {
                name: svc["metadata"]["name"].as_str()?.to_owned(),
                kind: svc["spec"]["type"]
                    .as_str()
                    .unwrap_or("ClusterIP")
                    .to_owned(),
                port: port(&svc["spec"]["ports"][0]["port"])?,
                node_port: port(&svc["spec"]["ports"][0]["nodePort"]),
            })
        })
        .collect())
}

/// How long `kubectl port-forward` may take to print that it listens (it first finds a running
/// pod behind the Service and opens a stream to the API server).
const PORT_FORWARD_START: Duration = Duration::from_secs(30);

/// A running `kubectl port-forward` to a Service; stopped (SIGTERM, then SIGKILL) when dropped.
#[derive(Debug)]
pub struct PortForward {
    child: Child,
    /// Where it listens: `127.0.0.1` and a port the system chose.
    pub local: SocketAddr,
}

impl Drop for PortForward {
    fn drop(&mut self) {
        terminate(&mut self.child, DEFAULT_GRACE);
        let _ = self.child.wait();
    }
}

/// The local port in one line of `kubectl port-forward`'s output (client-go prints
/// `Forwarding from 127.0.0.1:43567 -> 3000`; the number after `->` is the pod's port).
pub fn forwarding_port(line: &str) -> Option<u16> {
    let rest = line.trim().strip_prefix("Forwarding from 127.0.0.1:")?;
    let (port, _) = rest.split_once(" -> ")?;
    port.parse().ok()
}

impl Kube {
    /// `get svc -o json`: the namespace's Services.
    pub fn services(&self, sh: &Shell) -> Result<Vec<Service>> {
        let (ctx, ns) = (&self.context, &self.namespace);
        let out = checked(
            cmd!(
                sh,
                "kubectl --context {ctx} --namespace {ns} get svc -o json"
            ),
            "kubectl get svc",
        )?;
        parse_services(&out.stdout)
    }

    /// `kubectl port-forward` of `service` to the same local port, as a user would type it.
    pub fn port_forward_command(&self, service: &str, port: u16) -> String {
        format!(
            "kubectl --context {} -n {} port-forward svc/{service} {port}:{port}",
            self.context, self.namespace
        )
    }

    /// `port-forward svc/SERVICE :PORT --address 127.0.0.1`: a local port (chosen by the system,
    /// so it never clashes) forwarded through the API server to a pod behind the Service.
    /// Returns once kubectl says it listens; fails with kubectl's own words if it exits first.
    pub fn port_forward(&self, sh: &Shell, service: &str, port: u16) -> Result<PortForward> {
        let (ctx, ns) = (&self.context, &self.namespace);
        let shown = format!(
            "kubectl --context {ctx} --namespace {ns} port-forward svc/{service} :{port} \
             --address 127.0.0.1"
        );
        // A long-running child with live pipes, which xshell cannot spawn: resolved on the
        // Shell's PATH like every other call (tests give the Shell its own).
        let kubectl = super::find_program(sh, "kubectl").with_context(
            || "kubectl not found on PATH; install it (https://kubernetes.io/docs/tasks/tools/)",
        )?;
        let mut child = Command::new(kubectl)
            .current_dir(sh.current_dir())
            .args(["--context", ctx, "--namespace", ns, "port-forward"])
            .arg(format!("svc/{service}"))
            .arg(format!(":{port}"))
            .args(["--address", "127.0.0.1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start `{shown}`; is kubectl installed?"))?;
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            bail!("`{shown}`: no output pipes");
        };
        // Both pipes are read for as long as kubectl runs: it writes a line per connection,
        // and a full pipe would stall the forward.
        let (lines, started) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        let errors = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&errors);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut stderr = stderr;
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Ok(mut text) = sink.lock()
                    && text.len() < 16 * 1024
                {
                    text.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
        });
        let deadline = std::time::Instant::now() + PORT_FORWARD_START;
        let fail = |child: &mut Child, why: String| -> anyhow::Error {
            terminate(child, DEFAULT_GRACE);
            let _ = child.wait();
            // Let the reader catch kubectl's last words.
            std::thread::sleep(Duration::from_millis(50));
            let said = errors
                .lock()
                .map(|t| t.trim().to_owned())
                .unwrap_or_default();
            if said.is_empty() {
                anyhow::anyhow!("`{shown}` {why}")
            } else {
                anyhow::anyhow!("`{shown}` {why}: {said}")
            }
        };
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match started.recv_timeout(left) {
                Ok(line) => {
                    if let Some(local) = forwarding_port(&line) {
                        // The rest of its output is drained and dropped by the reader.
                        std::thread::spawn(move || started.iter().for_each(drop));
                        return Ok(PortForward {
                            child,
                            local: SocketAddr::from((Ipv4Addr::LOCALHOST, local)),
                        });
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(fail(
                        &mut child,
                        format!(
                            "did not start listening within {}s",
                            PORT_FORWARD_START.as_secs()
                        ),
                    ));
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(fail(&mut child, "exited before listening".to_owned()));
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn no_resources_found_on_stdout_is_no_names() {
        assert!(deleted_names("No resources found\n", "persistentvolumeclaim").is_empty());
        assert_eq!(
            deleted_names(
                "persistentvolumeclaim/data-todo-app-postgres-0\n",
                "persistentvolumeclaim"
            ),
            ["data-todo-app-postgres-0"]
        );
    }

    #[test]
    fn context_errors_are_not_absence() {
        assert!(is_context_error(
            "Error in configuration: context was not found for specified context: p\n"
        ));
        assert!(is_context_error("error: context \"p\" does not exist\n"));
        assert!(!is_context_error(
            "Error from server (NotFound): secrets \"x\" not found"
        ));
    }

    #[test]
    fn the_local_port_is_read_from_client_go_s_line() {
        assert_eq!(
            forwarding_port("Forwarding from 127.0.0.1:43567 -> 3000"),
            Some(43567)
        );
        assert_eq!(
            forwarding_port("Forwarding from 127.0.0.1:8080 -> 8080\n"),
            Some(8080)
        );
        // The IPv6 line (with `--address localhost`) and the per-connection lines are not it.
        assert_eq!(forwarding_port("Forwarding from [::1]:43567 -> 3000"), None);
        assert_eq!(forwarding_port("Handling connection for 43567"), None);
    }

    #[test]
    fn services_list_their_first_port_and_node_port() {
        let json = r#"{"apiVersion":"v1","kind":"List","items":[
            {"metadata":{"name":"todo-app-frontend"},"spec":{"type":"NodePort",
              "ports":[{"name":"http","port":3000,"targetPort":"http","nodePort":30000}]}},
            {"metadata":{"name":"todo-app-backend"},"spec":{"type":"ClusterIP",
              "ports":[{"name":"http","port":8000,"targetPort":8000}]}}]}"#;
        assert_eq!(
            parse_services(json).unwrap(),
            [
                Service {
                    name: "todo-app-frontend".into(),
                    kind: "NodePort".into(),
                    port: 3000,
                    node_port: Some(30000),
                },
                Service {
                    name: "todo-app-backend".into(),
                    kind: "ClusterIP".into(),
                    port: 8000,
                    node_port: None,
                },
            ]
        );
        assert!(parse_services("not json").is_err());
    }
}

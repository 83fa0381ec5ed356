//! The `kubectl` CLI. Every call names `--context` (and `--namespace` for namespaced objects)
//! explicitly so nothing depends on whatever the user's current context happens to be, and
//! manifests go in on stdin (`apply -f -`) so Secret values never appear in process arguments.

use anyhow::{Context, Result, bail};
use xshell::{Shell, cmd};

use super::{capture, checked, says_not_found};

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

    fn get_json(&self, sh: &Shell, kind: &str, name: &str) -> Result<Option<serde_json::Value>> {
        let (ctx, ns) = (&self.context, &self.namespace);
        let out = capture(
            cmd!(
                sh,
                "kubectl --context {ctx} --namespace {ns} get {kind} {name} -o json"
            ),
            &format!("kubectl get {kind}"),
        )?;
        if !out.success() {
            if says_not_found(&out.stderr) {
                return Ok(None);
            }
            // stderr only: stdout of `get secret` would be the Secret's data.
            let err: Vec<&str> = out
                .stderr
                .lines()
                .filter(|l| !l.trim().is_empty())
                .collect();
            bail!("kubectl get {kind} {name} failed: {}", err.join("\n"));
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
        checked(
            cmd!(
                sh,
                "kubectl --context {ctx} delete namespace {ns} --ignore-not-found --wait=true"
            ),
            "kubectl delete namespace",
        )?;
        Ok(true)
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
        Ok(out
            .stdout
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| l.trim_start_matches("persistentvolumeclaim/").to_owned())
            .collect())
    }
}

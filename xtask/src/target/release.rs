//! The app as a Helm release on a Kubernetes cluster, whatever target put it there: its pods'
//! selector, its status lines and its teardown. Every call names the kube context.

use anyhow::Result;
use xshell::Shell;

use super::{Data, Declared, kept_line, list_or_none};
use crate::tools::helm;
use crate::tools::kubectl::{Kube, NamespaceState};

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
/// again from the stored secrets), the release's PersistentVolumeClaims, then the namespace
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

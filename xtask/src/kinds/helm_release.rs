//! `kind = "helm-release"`: `helm upgrade --install` the chart with the content-hashed image
//! tags and the Secret's keyed digest, waiting for the rollout and rolling back on failure.
//!
//! ```toml
//! [tasks.release]
//! kind = "helm-release"
//! targets = ["minikube", "kube"]
//! inputs = ["k8s/todo-app"]
//! chart = "k8s/todo-app"
//! release = "todo-app"                          # optional, default "todo-app"
//! values-file = "values-dev.yaml"               # optional, relative to the chart
//! timeout-seconds = 300                         # optional
//! images = { backend = "backend-image", frontend = "frontend-image" }  # values prefix -> image task
//! secret-task = "secrets"                       # the k8s-secret task (its digest -> secretChecksum)
//! ```
//! A rollout that succeeded is noted with the revision it replaced: if a later task of the run
//! fails (the smoke test), the target rolls the release back to it when the run settles.
//! While helm waits, the pods are polled: if the rollout fails, the diagnosis printed is of the
//! failing pods as they were before the rollback replaced them. Runs on Kubernetes targets only.
//!
//! No secret value is ever an argument: the chat provider's `LLM_BASE_URL` (which may carry
//! credentials) is in the Secret, and only its model, timeout and port are chart values.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use xshell::{Shell, cmd};

use super::digest_key_path;
use super::{
    BoxTask, CheckCx, Diagnostic, KeyCx, LoadCx, Outputs, RunCx, Settings, Task, TaskKind,
};
use crate::diagnose::{self, Finding, FixContext};
use crate::engine::Session;
use crate::image_registry::pull_secret;
use crate::secrets::{self, SecretValue, llm::LlmSettings};
use crate::target::Target;
use crate::target::minikube::release_selector;
use crate::target::release::Upgraded;
use crate::tools::helm::{self, Release};
use crate::tools::kubectl::Kube;

/// The `helm-release` kind.
#[derive(Debug)]
pub struct HelmReleaseKind;

/// One release task's settings.
#[derive(Debug, Clone)]
pub struct HelmRelease {
    /// Chart directory, relative to the project root.
    pub chart: String,
    /// Release name.
    pub release: String,
    /// Values file inside the chart, for the Minikube target.
    pub values_file: Option<String>,
    /// `--timeout`.
    pub timeout: Duration,
    /// Values prefix (`backend`) → image task whose `image` output is `repo:tag`.
    pub images: BTreeMap<String, String>,
    /// The k8s-secret task.
    pub secret_task: Option<String>,
}

impl TaskKind<Target> for HelmReleaseKind {
    fn name(&self) -> &'static str {
        "helm-release"
    }

    fn targets(&self) -> Option<&'static [&'static str]> {
        Some(&[crate::target::minikube::NAME, crate::target::kube::NAME])
    }

    fn parse(&self, s: &mut Settings, cx: &LoadCx<'_>) -> Result<BoxTask, Diagnostic> {
        let chart: String = s.require("chart", "\"k8s/todo-app\"")?;
        if !cx.root.join(&chart).join("Chart.yaml").is_file() {
            return Err(s.error(
                "chart",
                format!("`{chart}` is not a chart directory (no Chart.yaml)"),
                "point `chart` at the directory holding Chart.yaml",
            ));
        }
        let values_file: Option<String> = s.get("values-file")?;
        if let Some(v) = &values_file
            && !cx.root.join(&chart).join(v).is_file()
        {
            return Err(s.error(
                "values-file",
                format!("values file `{v}` not found in `{chart}`"),
                "name a file inside the chart directory, e.g. \"values-dev.yaml\"",
            ));
        }
        let timeout: u64 = s.get("timeout-seconds")?.unwrap_or(300);
        if timeout == 0 {
            return Err(s.error(
                "timeout-seconds",
                "a zero timeout cannot wait for a rollout",
                "use e.g. 300",
            ));
        }
        Ok(Box::new(HelmRelease {
            chart,
            release: s.get("release")?.unwrap_or_else(|| "todo-app".to_owned()),
            values_file,
            timeout: Duration::from_secs(timeout),
            images: s.get_task_table("images")?.unwrap_or_default(),
            secret_task: s.get_task("secret-task")?,
        }))
    }
}

impl HelmRelease {
    /// The `Release` for helm, with values from the dependencies' outputs and the chat
    /// assistant's provider settings.
    pub fn helm_release(
        &self,
        root: &std::path::Path,
        kube: &Kube,
        deps: &BTreeMap<String, Outputs>,
        llm: &LlmSettings,
    ) -> Result<Release> {
        let chart = root.join(&self.chart);
        let mut set = Vec::new();
        for (prefix, task) in &self.images {
            let outputs = deps.get(task).with_context(|| {
                format!("helm release needs the outputs of `{task}`; add it to `deps`")
            })?;
            set.extend(image_values(prefix, task, outputs)?);
        }
        if let Some(task) = &self.secret_task {
            let outputs = deps.get(task).with_context(|| {
                format!("helm release needs the outputs of `{task}`; add it to `deps`")
            })?;
            if let Some(digest) = outputs.get("digest") {
                set.push(("secretChecksum".to_owned(), digest.clone()));
            }
            // The chart reads the Secret the secret task wrote (its `secret` setting).
            if let Some(name) = outputs.get("secret") {
                set.push(("secret.name".to_owned(), name.clone()));
            }
            if outputs.get("external-db").map(String::as_str) == Some("true") {
                set.push(("database.external.enabled".to_owned(), "true".to_owned()));
                if let Some(url) = outputs.get("external-db-url") {
                    set.push(("database.external.url".to_owned(), url.clone()));
                }
            }
        }
        // Without the model, a base URL in the Secret makes the backend refuse to start. The
        // base URL itself is a key of the Secret (it may carry credentials): only its port, for
        // the backend's egress, is a value. The timeout and the port are integers in the
        // chart's schema, so they go through the typed `--set`.
        set.extend(llm.helm_string_values());
        let set_typed = llm.helm_typed_values();
        Ok(Release {
            name: self.release.clone(),
            chart: chart.clone(),
            namespace: kube.namespace.clone(),
            context: kube.context.clone(),
            values_files: self
                .values_file
                .iter()
                .map(|v| chart.join(v))
                .collect::<Vec<PathBuf>>(),
            set,
            set_typed,
        })
    }

    fn fix_context(&self, target: &Target, kube: &Kube) -> FixContext {
        let (profile, target_flags) = match target {
            Target::Minikube(m) => (
                Some(m.profile.clone()),
                format!("--target minikube --profile {}", m.profile),
            ),
            Target::Kube(k) => (None, k.flags()),
            Target::Docker(_) => (None, "--target docker".to_owned()),
        };
        FixContext {
            profile,
            context: kube.context.clone(),
            target_flags,
            values_file: format!(
                "{}/{}",
                self.chart,
                self.values_file.as_deref().unwrap_or("values.yaml")
            ),
        }
    }
}

/// The chart values of one image task's outputs: `<prefix>.image.repository` and `.tag`, and
/// `.digest` for an image in a registry (the chart then deploys `repository@digest`).
fn image_values(prefix: &str, task: &str, outputs: &Outputs) -> Result<Vec<(String, String)>> {
    let key = |k: &str| format!("{prefix}.image.{k}");
    if let (Some(repository), Some(tag), Some(digest)) = (
        outputs.get("repository"),
        outputs.get("tag"),
        outputs.get("digest"),
    ) {
        return Ok(vec![
            (key("repository"), repository.clone()),
            (key("tag"), tag.clone()),
            (key("digest"), digest.clone()),
        ]);
    }
    let image = outputs
        .get("image")
        .with_context(|| format!("task `{task}` recorded no `image` output"))?;
    let (repo, tag) = image
        .rsplit_once(':')
        .with_context(|| format!("image `{image}` of task `{task}` has no tag"))?;
    Ok(vec![
        (key("repository"), repo.to_owned()),
        (key("tag"), tag.to_owned()),
    ])
}

/// Creates or updates the release's pull Secret for a registry with credentials, from stdin,
/// and returns its name for `imagePullSecrets`; `None` without a registry or credentials.
fn apply_pull_secret(cx: &RunCx<'_>, kube: &Kube, release: &str) -> Result<Option<String>> {
    let Some(registry) = cx.target.registry() else {
        return Ok(None);
    };
    let Some(credentials) = registry.credentials(cx.sh)? else {
        return Ok(None);
    };
    let name = pull_secret::name(release);
    let digest = registry_digest(cx.session, &registry.address, &credentials)?;
    kube.ensure_namespace(cx.sh)?;
    let manifest = pull_secret::manifest(
        &name,
        &kube.namespace,
        &registry.address,
        &credentials,
        &digest,
    );
    kube.apply_stdin(cx.sh, manifest.bytes())
        .with_context(|| format!("creating the registry pull Secret `{name}`"))?;
    cx.log(format!(
        "pull Secret {name} for registry {} (user `{}`, from {})",
        registry.address, credentials.username, credentials.source
    ));
    Ok(Some(name))
}

/// A keyed digest of the registry's credentials (never the credentials themselves).
fn registry_digest(
    session: &Session,
    address: &crate::image_registry::Address,
    credentials: &crate::image_registry::Credentials,
) -> Result<String> {
    let key = secrets::digest::load_or_create_key(&digest_key_path(session))?;
    let host = SecretValue::new(address.host());
    let user = SecretValue::new(credentials.username.clone());
    Ok(secrets::digest::keyed_digest(
        &key,
        [
            ("host", &host),
            ("username", &user),
            ("password", &credentials.password),
        ],
    ))
}

/// The LLM provider settings, resolved like the secrets task resolves its values (the Shell's
/// environment, then the project's `.env`).
fn llm_settings(sh: &Shell, session: &Session, target: &Target) -> Result<LlmSettings> {
    let (dotenv, _) = secrets::default_paths(&session.root, &session.state_dir(target));
    secrets::llm::resolve_from(&|k| sh.var(k).ok(), &dotenv)
}

/// Diagnoses the release's pods now (kubectl pods, events and logs).
pub fn diagnose_now(
    sh: &Shell,
    kube: &Kube,
    release: &str,
    ctx: &FixContext,
) -> Result<Vec<Finding>> {
    let pods = kube.pods_json(sh, &release_selector(release))?;
    let events = kube.events_json(sh, None)?;
    let mut logs = |pod: &str, container: &str, previous: bool| {
        kube.logs(sh, pod, container, 20, previous).ok()
    };
    Ok(diagnose::diagnose(&pods, &events, ctx, &mut logs))
}

impl Task<Target> for HelmRelease {
    fn key_material(&self, cx: &KeyCx<'_>) -> Result<BTreeMap<String, String>> {
        let mut m = BTreeMap::new();
        let kube = cx.target.kube()?;
        m.insert("kube-context".into(), kube.context);
        m.insert("namespace".into(), kube.namespace);
        // A changed model, timeout or provider port redeploys (a changed base URL changes the
        // Secret, and so the secret task this one depends on). Keyed like the secrets.
        let llm = llm_settings(cx.sh, cx.session, cx.target)?;
        let port = llm.egress_port().map(|p| p.to_string());
        let pairs: Vec<(&str, SecretValue)> = llm
            .env()
            .chain(port.as_deref().map(|p| ("egressPort", p)))
            .map(|(k, v)| (k, SecretValue::new(v)))
            .collect();
        let key = secrets::digest::load_or_create_key(&digest_key_path(cx.session))?;
        m.insert(
            "llm".into(),
            secrets::digest::keyed_digest(&key, pairs.iter().map(|(k, v)| (*k, v))),
        );
        // Deploying from a registry instead of the cluster's daemon (or another registry, or
        // rotated credentials) changes the images' references and the pull Secret, not the
        // images' keys.
        if let Some(registry) = cx.target.registry() {
            m.insert("registry".into(), registry.address.to_string());
            if let Some(credentials) = registry.credentials(cx.sh)? {
                m.insert(
                    "registry credentials".into(),
                    registry_digest(cx.session, &registry.address, &credentials)?,
                );
            }
        }
        Ok(m)
    }

    fn output_exists(&self, cx: &CheckCx<'_>) -> Result<bool> {
        let kube = cx.target.kube()?;
        let recorded: Option<u64> = cx.outputs.get("revision").and_then(|r| r.parse().ok());
        let Some(status) = helm::status(cx.sh, &kube.context, &kube.namespace, &self.release)?
        else {
            return Ok(false);
        };
        Ok(status.status == "deployed" && Some(status.revision) == recorded)
    }

    fn run(&self, cx: &RunCx<'_>) -> Result<Outputs> {
        let mut outputs = Outputs::new();
        let kube = cx.target.kube()?;
        let version = helm::version(cx.sh)?;
        if !version.supported() {
            bail!(
                "helm {version} is not supported; install helm v3.8+ or v4 (https://helm.sh/docs/intro/install/)"
            );
        }
        let before = helm::status(cx.sh, &kube.context, &kube.namespace, &self.release)?;
        if let Some(st) = &before
            && st.status.starts_with("pending-")
        {
            let history = helm::history(cx.sh, &kube.context, &kube.namespace, &self.release)?;
            let good = helm::last_good_revision(&history);
            bail!(helm::pending_error(
                &self.release,
                &kube.namespace,
                &kube.context,
                st,
                good
            ));
        }
        // The revision serving now, for the target to go back to if the run fails after the
        // rollout: the deployed one or, after a failed revision, the last that was deployed.
        let previous = match &before {
            None => None,
            Some(st) if st.status == "deployed" => Some(st.revision),
            Some(_) => helm::last_good_revision(&helm::history(
                cx.sh,
                &kube.context,
                &kube.namespace,
                &self.release,
            )?),
        };
        let llm = llm_settings(cx.sh, cx.session, cx.target)?;
        let mut release = self.helm_release(&cx.session.root, &kube, cx.deps, &llm)?;
        if let Some(name) = apply_pull_secret(cx, &kube, &self.release)? {
            release
                .set
                .push(("imagePullSecrets[0].name".to_owned(), name));
        }
        let args = release.upgrade_args(version, self.timeout);
        let fix = self.fix_context(cx.target, &kube);

        // Poll the pods while helm waits: after a failed rollout, helm's rollback replaces the
        // failing pods, so they must be diagnosed before that happens.
        let stop = Arc::new(AtomicBool::new(false));
        let latest: Arc<Mutex<Vec<Finding>>> = Arc::default();
        let poller = {
            let (sh, kube, stop, latest) =
                (cx.sh.clone(), kube.clone(), stop.clone(), latest.clone());
            let (name, fix) = (self.release.clone(), fix.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    if let Ok(findings) = diagnose_now(&sh, &kube, &name, &fix)
                        && !findings.is_empty()
                        && let Ok(mut l) = latest.lock()
                    {
                        *l = keep_logs(findings, &l);
                    }
                    for _ in 0..10 {
                        if stop.load(Ordering::SeqCst) {
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            })
        };
        let result = cx.run_with_grace(
            cmd!(cx.sh, "helm {args...}"),
            helm::rollback_grace(self.timeout),
            "helm is rolling the release back (stopping it midway would leave the release \
             `pending-*`)",
        );
        stop.store(true, Ordering::SeqCst);
        let _ = poller.join();
        if let Err(err) = result {
            let mut findings = latest.lock().map(|l| l.clone()).unwrap_or_default();
            if findings.is_empty() {
                findings = diagnose_now(cx.sh, &kube, &self.release, &fix).unwrap_or_default();
            }
            if cx.cancel.load(Ordering::SeqCst) {
                return Err(err);
            }
            return Err(anyhow::anyhow!(rollout_failure(
                &self.release,
                &kube,
                &diagnose::render(&findings)
            )));
        }
        let status = helm::status(cx.sh, &kube.context, &kube.namespace, &self.release)?
            .context("helm reported success but `helm status` finds no release")?;
        // Until the run settles: if a later task fails (the smoke test), the target rolls the
        // release back to the revision that was serving before.
        cx.target.upgrades()?.note(Upgraded {
            release: self.release.clone(),
            revision: status.revision,
            previous,
            timeout: self.timeout,
        })?;
        outputs.insert("release".into(), self.release.clone());
        outputs.insert("revision".into(), status.revision.to_string());
        outputs.insert("namespace".into(), kube.namespace.clone());
        outputs.insert("context".into(), kube.context.clone());
        for (k, v) in &release.set {
            if k.ends_with(".image.tag")
                || k.ends_with(".image.repository")
                || k.ends_with(".image.digest")
            {
                outputs.insert(k.clone(), v.clone());
            }
        }
        Ok(outputs)
    }
}

/// The error of a failed rollout, shown once (not also logged): the failing command on its own
/// line, then the diagnosis, so the last `fix:` ends the message instead of helm's argv. The
/// values are left out of the command: a base URL may carry credentials; helm's own message is
/// in the task's log above.
fn rollout_failure(release: &str, kube: &Kube, diagnosis: &str) -> String {
    format!(
        "the rollout of release `{release}` failed\n\
         failed command: helm upgrade --install {release} --namespace {} --kube-context {} \
         (helm's output is above)\n\
         diagnosis:\n{diagnosis}",
        kube.namespace, kube.context
    )
}

/// A poll racing the rollback may find a pod gone by the time its logs are asked for; keep the
/// lines an earlier poll got for the same pod and container.
fn keep_logs(mut new: Vec<Finding>, old: &[Finding]) -> Vec<Finding> {
    for f in &mut new {
        let missing = f.logs.as_deref().is_none_or(|l| l.starts_with("(no logs"));
        if missing
            && let Some(prev) = old
                .iter()
                .find(|o| o.pod == f.pod && o.container == f.container && o.logs.is_some())
        {
            f.logs.clone_from(&prev.logs);
        }
    }
    new
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_images_are_deployed_by_digest() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let pushed = Outputs::from([
            (
                "image".into(),
                format!("127.0.0.1:5000/ci/todo-backend@{digest}"),
            ),
            ("repository".into(), "127.0.0.1:5000/ci/todo-backend".into()),
            ("tag".into(), "0123456789ab".into()),
            ("digest".into(), digest.clone()),
        ]);
        assert_eq!(
            image_values("backend", "backend-image", &pushed).expect("values"),
            [
                (
                    "backend.image.repository".into(),
                    "127.0.0.1:5000/ci/todo-backend".into()
                ),
                ("backend.image.tag".into(), "0123456789ab".into()),
                ("backend.image.digest".into(), digest),
            ]
        );
        let local = Outputs::from([("image".into(), "todo-backend:0123456789ab".into())]);
        assert_eq!(
            image_values("backend", "backend-image", &local).expect("values"),
            [
                ("backend.image.repository".into(), "todo-backend".into()),
                ("backend.image.tag".into(), "0123456789ab".into()),
            ]
        );
    }

    #[test]
    fn a_rollout_failure_names_the_command_on_its_own_line_before_the_diagnosis() {
        let kube = Kube {
            context: "minikube".into(),
            namespace: "todo-app".into(),
        };
        let diagnosis = "pod todo-app-backend-0: container backend: CrashLoopBackOff\n  fix: check DATABASE_URL";
        let text = rollout_failure("todo-app", &kube, diagnosis);
        assert_eq!(
            text,
            "the rollout of release `todo-app` failed\n\
             failed command: helm upgrade --install todo-app --namespace todo-app --kube-context minikube (helm's output is above)\n\
             diagnosis:\n\
             pod todo-app-backend-0: container backend: CrashLoopBackOff\n  fix: check DATABASE_URL"
        );
        assert!(text.ends_with("fix: check DATABASE_URL"), "{text}");
    }
}

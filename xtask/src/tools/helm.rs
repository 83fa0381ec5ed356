//! The `helm` CLI (v3.8+ or v4). Helm 4 renamed `--atomic` to `--rollback-on-failure` (and made
//! `--wait` take a strategy, bare `--wait` meaning `watcher`), so the flag is chosen from the
//! detected major version.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use xshell::{Shell, cmd};

use super::{capture, checked};

/// helm's `driver.ErrReleaseNotFound` (`pkg/storage/driver/driver.go`, v3.8 to v4): the only
/// answer that means "no such release". Anything else, for example client-go's `context was not
/// found for specified context` when the kube context is missing, is an error.
pub const RELEASE_NOT_FOUND: &str = "release: not found";

fn release_not_found(stderr: &str) -> bool {
    stderr.contains(RELEASE_NOT_FOUND)
}

/// A parsed `helm version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HelmVersion {
    /// Major version (3 or 4).
    pub major: u32,
    /// Minor version.
    pub minor: u32,
    /// Patch version.
    pub patch: u32,
}

impl HelmVersion {
    /// The oldest helm we support.
    pub const MINIMUM: HelmVersion = HelmVersion {
        major: 3,
        minor: 8,
        patch: 0,
    };

    /// Parses `v3.14.2`, `v4.1.4`, `v3.15.0-rc.1`, `v3.12.3+g3a31588`.
    pub fn parse(text: &str) -> Result<HelmVersion> {
        let t = text.trim();
        let core = t
            .strip_prefix('v')
            .unwrap_or(t)
            .split(['-', '+'])
            .next()
            .unwrap_or_default();
        let mut parts = core.split('.').map(str::parse::<u32>);
        match (parts.next(), parts.next(), parts.next()) {
            (Some(Ok(major)), Some(Ok(minor)), Some(Ok(patch))) => Ok(HelmVersion {
                major,
                minor,
                patch,
            }),
            _ => bail!("could not parse helm version {t:?} (expected vMAJOR.MINOR.PATCH)"),
        }
    }

    /// True for v3.8+ and v4.
    pub fn supported(&self) -> bool {
        *self >= Self::MINIMUM && self.major <= 4
    }

    /// The flag that rolls a failed upgrade back.
    pub fn rollback_flag(&self) -> &'static str {
        if self.major >= 4 {
            "--rollback-on-failure"
        } else {
            "--atomic"
        }
    }
}

impl std::fmt::Display for HelmVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// `helm version --template '{{.Version}}'`.
pub fn version(sh: &Shell) -> Result<HelmVersion> {
    let template = "{{.Version}}";
    let out = checked(
        cmd!(sh, "helm version --template {template}"),
        "helm version",
    )?;
    HelmVersion::parse(&out.stdout)
}

/// Everything `helm upgrade --install` and `helm template` need.
#[derive(Debug, Clone)]
pub struct Release {
    /// Release name.
    pub name: String,
    /// Chart directory.
    pub chart: PathBuf,
    /// Namespace.
    pub namespace: String,
    /// kube context.
    pub context: String,
    /// `-f` values files, in order.
    pub values_files: Vec<PathBuf>,
    /// `--set-string key=value` pairs (image tags, checksums: never secret values).
    pub set: Vec<(String, String)>,
    /// `--set key=value` pairs for values the chart's schema wants typed (integers), which
    /// `--set-string` would turn into strings.
    pub set_typed: Vec<(String, String)>,
}

/// Escapes a value for `--set`/`--set-string`: helm splits the list on `,` and treats `\` as
/// an escape, so a comma in a value (a model name, a URL query) would cut it short.
pub fn escape_set_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        if matches!(c, '\\' | ',') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl Release {
    fn value_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        for f in &self.values_files {
            args.push("-f".to_owned());
            args.push(f.display().to_string());
        }
        for (flag, pairs) in [("--set-string", &self.set), ("--set", &self.set_typed)] {
            for (k, v) in pairs {
                args.push(flag.to_owned());
                args.push(format!("{k}={}", escape_set_value(v)));
            }
        }
        args
    }

    /// The argv after `helm` for `upgrade --install`.
    pub fn upgrade_args(&self, version: HelmVersion, timeout: Duration) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "upgrade".into(),
            "--install".into(),
            self.name.clone(),
            self.chart.display().to_string(),
            "--namespace".into(),
            self.namespace.clone(),
            "--kube-context".into(),
            self.context.clone(),
            "--create-namespace".into(),
            "--wait".into(),
            "--timeout".into(),
            format!("{}s", timeout.as_secs()),
            version.rollback_flag().into(),
        ];
        args.extend(self.value_args());
        args
    }
}

/// The argv after `helm` for `rollback RELEASE REVISION`, waiting for the rolled-back pods
/// like the upgrade did. `--wait` alone is right for both majors: a flag in v3, and in v4 a
/// strategy whose bare form means `watcher` (`WaitStrategy[=watcher]`, default `hookOnly`, in
/// helm v4.1.4's `rollback --help`), as for `upgrade --wait`. Rollback has no
/// `--atomic`/`--rollback-on-failure`.
pub fn rollback_args(
    release: &str,
    revision: u64,
    namespace: &str,
    context: &str,
    timeout: Duration,
) -> Vec<String> {
    vec![
        "rollback".into(),
        release.into(),
        revision.to_string(),
        "--namespace".into(),
        namespace.into(),
        "--kube-context".into(),
        context.into(),
        "--wait".into(),
        "--timeout".into(),
        format!("{}s", timeout.as_secs()),
    ]
}

/// `helm rollback` ([`rollback_args`]): a new revision with `revision`'s chart and values,
/// `deployed` once its pods are ready.
pub fn rollback(
    sh: &Shell,
    release: &str,
    revision: u64,
    namespace: &str,
    context: &str,
    timeout: Duration,
) -> Result<()> {
    let args = rollback_args(release, revision, namespace, context, timeout);
    checked(cmd!(sh, "helm {args...}"), "helm rollback")?;
    Ok(())
}

/// How long helm may still need after SIGTERM: on SIGTERM (or SIGINT) `helm upgrade` cancels its
/// context, marks the release failed and, with `--atomic`/`--rollback-on-failure`, rolls back
/// and waits for that with the same `--timeout` (`cmd/helm/upgrade.go` and `pkg/action/upgrade.go`
/// `failRelease`, v3.8 to v4.1). Killed before that ends, it leaves the release `pending-*`.
pub fn rollback_grace(timeout: Duration) -> Duration {
    timeout + Duration::from_secs(30)
}

/// The error for a release left `pending-install`/`pending-upgrade`/`pending-rollback` (helm
/// refuses to touch it: "another operation (install/upgrade/rollback) is in progress",
/// `errPending` in `pkg/action/action.go`): its state and the commands that clear it.
/// `last_good` is the newest `deployed`/`superseded` revision: the one to roll back to, named
/// explicitly because a bare `helm rollback` goes to the revision before the current one
/// (`pkg/action/rollback.go`), which may be the failed one.
pub fn pending_error(
    release: &str,
    namespace: &str,
    context: &str,
    status: &ReleaseStatus,
    last_good: Option<u64>,
) -> String {
    let at = format!("--namespace {namespace} --kube-context {context}");
    let fix = match last_good {
        Some(good) => format!(
            "if no other helm is working on it, `helm rollback {release} {good} {at}` (revision \
             {good} is the last that was deployed; `helm history {release} {at}` lists them all), \
             then deploy again"
        ),
        None => format!(
            "if no other helm is working on it, `helm uninstall {release} {at}` (no revision of it \
             was ever deployed), then deploy again"
        ),
    };
    format!(
        "Helm release `{release}` is `{}` (revision {}): an earlier helm was stopped before it \
         finished, or another one is running now, and helm refuses to change it meanwhile\nfix: {fix}",
        status.status, status.revision
    )
}

/// The newest revision that was deployed (`deployed` or `superseded`), from `helm history`.
pub fn last_good_revision(history: &[Revision]) -> Option<u64> {
    history
        .iter()
        .filter(|r| matches!(r.status.as_str(), "deployed" | "superseded"))
        .map(|r| r.revision)
        .max()
}

/// A release's current state from `helm status -o json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseStatus {
    /// Revision number.
    pub revision: u64,
    /// `deployed`, `failed`, `pending-upgrade`, ...
    pub status: String,
}

#[derive(Deserialize)]
struct RawStatus {
    version: u64,
    info: RawInfo,
}

#[derive(Deserialize)]
struct RawInfo {
    status: String,
}

/// Parses `helm status -o json`.
pub fn parse_status(stdout: &str) -> Result<ReleaseStatus> {
    let raw: RawStatus = serde_json::from_str(stdout.trim())
        .context("`helm status -o json` printed unexpected output")?;
    Ok(ReleaseStatus {
        revision: raw.version,
        status: raw.info.status,
    })
}

/// `helm status RELEASE -n NS --kube-context C -o json`; `None` when there is no such release.
pub fn status(
    sh: &Shell,
    context: &str,
    namespace: &str,
    release: &str,
) -> Result<Option<ReleaseStatus>> {
    let out = capture(
        cmd!(
            sh,
            "helm status {release} --namespace {namespace} --kube-context {context} -o json"
        ),
        "helm status",
    )?;
    if !out.success() {
        if release_not_found(&out.stderr) {
            return Ok(None);
        }
        bail!("helm status {release} failed: {}", out.tail(5));
    }
    parse_status(&out.stdout).map(Some)
}

/// One entry of `helm history -o json`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Revision {
    /// Revision number.
    pub revision: u64,
    /// Status of that revision.
    pub status: String,
    /// Chart name-version.
    #[serde(default)]
    pub chart: String,
    /// Helm's description (`Install complete`, `Upgrade "x" failed: ...`).
    #[serde(default)]
    pub description: String,
}

/// `helm history RELEASE -o json`; empty when there is no such release.
pub fn history(sh: &Shell, context: &str, namespace: &str, release: &str) -> Result<Vec<Revision>> {
    let out = capture(
        cmd!(
            sh,
            "helm history {release} --namespace {namespace} --kube-context {context} -o json"
        ),
        "helm history",
    )?;
    if !out.success() {
        if release_not_found(&out.stderr) {
            return Ok(Vec::new());
        }
        bail!("helm history {release} failed: {}", out.tail(5));
    }
    serde_json::from_str(out.stdout.trim())
        .context("`helm history -o json` printed unexpected output")
}

/// `helm uninstall RELEASE --wait`; Ok(false) when there was nothing to uninstall. Checks with
/// `helm status` first rather than `--ignore-not-found`, which older v3 releases lack.
pub fn uninstall(sh: &Shell, context: &str, namespace: &str, release: &str) -> Result<bool> {
    if status(sh, context, namespace, release)?.is_none() {
        return Ok(false);
    }
    checked(
        cmd!(
            sh,
            "helm uninstall {release} --namespace {namespace} --kube-context {context} --wait"
        ),
        "helm uninstall",
    )?;
    Ok(true)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_gate() {
        let v4 = HelmVersion::parse("v4.1.4").unwrap();
        assert_eq!((v4.major, v4.minor, v4.patch), (4, 1, 4));
        assert!(v4.supported());
        assert_eq!(v4.rollback_flag(), "--rollback-on-failure");
        let v3 = HelmVersion::parse("v3.14.2+g3a31588\n").unwrap();
        assert!(v3.supported());
        assert_eq!(v3.rollback_flag(), "--atomic");
        assert!(!HelmVersion::parse("v3.7.9").unwrap().supported());
        assert!(HelmVersion::parse("v3.15.0-rc.1").unwrap().supported());
        assert!(HelmVersion::parse("v2").is_err());
        assert!(HelmVersion::parse("").is_err());
    }

    #[test]
    fn upgrade_argv_is_exact() {
        let r = Release {
            name: "todo-app".into(),
            chart: "k8s/todo-app".into(),
            namespace: "todo-app".into(),
            context: "minikube".into(),
            values_files: vec!["k8s/todo-app/values-dev.yaml".into()],
            set: vec![
                ("backend.image.tag".into(), "0123456789ab".into()),
                ("backend.llm.model".into(), r"a,b\c".into()),
            ],
            set_typed: vec![("backend.llm.timeoutSeconds".into(), "45".into())],
        };
        let args = r.upgrade_args(
            HelmVersion::parse("v3.9.0").unwrap(),
            Duration::from_secs(300),
        );
        assert_eq!(
            args.join(" "),
            "upgrade --install todo-app k8s/todo-app --namespace todo-app --kube-context minikube \
             --create-namespace --wait --timeout 300s --atomic -f k8s/todo-app/values-dev.yaml \
             --set-string backend.image.tag=0123456789ab --set-string backend.llm.model=a\\,b\\\\c \
             --set backend.llm.timeoutSeconds=45"
        );
        let args = r.upgrade_args(
            HelmVersion::parse("v4.0.0").unwrap(),
            Duration::from_secs(60),
        );
        assert!(args.contains(&"--rollback-on-failure".to_owned()));
        assert!(!args.contains(&"--atomic".to_owned()));
    }

    #[test]
    fn rollback_argv_is_exact() {
        let args = rollback_args(
            "todo-app",
            3,
            "todo-app",
            "minikube",
            Duration::from_secs(300),
        );
        assert_eq!(
            args.join(" "),
            "rollback todo-app 3 --namespace todo-app --kube-context minikube --wait --timeout 300s"
        );
    }

    #[test]
    fn a_pending_release_names_its_state_and_the_command_that_clears_it() {
        let st = |status: &str, revision| ReleaseStatus {
            revision,
            status: status.into(),
        };
        let rev = |revision, status: &str| Revision {
            revision,
            status: status.into(),
            chart: String::new(),
            description: String::new(),
        };
        let history = [
            rev(1, "superseded"),
            rev(2, "deployed"),
            rev(3, "failed"),
            rev(4, "pending-rollback"),
        ];
        assert_eq!(last_good_revision(&history), Some(2));
        let text = pending_error("todo-app", "ns", "ctx", &st("pending-rollback", 4), Some(2));
        assert!(text.contains("`pending-rollback` (revision 4)"), "{text}");
        assert!(
            text.contains("fix: if no other helm")
                && text.contains("helm rollback todo-app 2 --namespace ns --kube-context ctx")
                && text.contains("helm history"),
            "{text}"
        );
        assert_eq!(last_good_revision(&[rev(1, "pending-install")]), None);
        let text = pending_error("todo-app", "ns", "ctx", &st("pending-install", 1), None);
        assert!(text.contains("helm uninstall todo-app"), "{text}");
    }

    #[test]
    fn only_helm_s_own_answer_means_no_release() {
        assert!(release_not_found("Error: release: not found\n"));
        assert!(!release_not_found(
            "Error: Kubernetes cluster unreachable: context was not found for specified context: p"
        ));
    }

    #[test]
    fn status_json() {
        let s = parse_status(
            r#"{"name":"todo-app","info":{"first_deployed":"2024-01-01T00:00:00Z","status":"deployed","description":"Upgrade complete"},"version":3,"namespace":"todo-app"}"#,
        )
        .unwrap();
        assert_eq!(
            s,
            ReleaseStatus {
                revision: 3,
                status: "deployed".into()
            }
        );
        assert!(parse_status("Error").is_err());
    }
}

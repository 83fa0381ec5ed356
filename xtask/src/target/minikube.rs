//! The Minikube target: a profile's cluster, the app installed as a Helm release in a
//! namespace, images built in the profile's Docker daemon (or with `minikube image build` on
//! other runtimes). Every cluster call names the profile's context explicitly.

use std::net::{SocketAddr, TcpStream};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Result, bail};
use xshell::Shell;

use super::{Access, Data, Declared, Deployment, Frontend, ImageStore, kept_line, list_or_none};
use crate::smoke::Endpoints;
pub use crate::tools::kubectl::Kube;
use crate::tools::kubectl::NamespaceState;
use crate::tools::{ChildEnv, helm, minikube};

/// The target's name in `targets = [...]`.
pub const NAME: &str = "minikube";

/// How long the node's NodePort may take to accept a connection before the smoke test goes
/// through a port-forward instead.
const NODE_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// A Minikube profile and the namespace the app goes into.
#[derive(Debug)]
pub struct MinikubeTarget {
    /// `minikube -p PROFILE`; also the kube context.
    pub profile: String,
    /// Kubernetes namespace.
    pub namespace: String,
    /// `minikube docker-env`, asked once per run.
    pub(super) docker_env: Mutex<Option<ChildEnv>>,
    /// `--registry`, if any.
    pub registry: Option<std::sync::Arc<crate::image_registry::Registry>>,
}

/// How this host reaches the release's frontend Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrontendAccess {
    /// At the node's IP and the Service's NodePort.
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

/// The label every pod of `release` carries.
pub fn release_selector(release: &str) -> String {
    format!("app.kubernetes.io/instance={release}")
}

impl MinikubeTarget {
    /// Stable identity for the state directory.
    pub fn id(&self) -> String {
        format!("minikube-{}-{}", self.profile, self.namespace)
    }

    /// The kube identity: context = profile.
    pub fn kube(&self) -> Kube {
        Kube {
            context: self.profile.clone(),
            namespace: self.namespace.clone(),
        }
    }

    /// `minikube docker-env`, cached for the run. Only for the Docker runtime: other runtimes
    /// build with `minikube image build`.
    pub fn docker_env(&self, sh: &Shell) -> Result<ChildEnv> {
        let mut cached = self
            .docker_env
            .lock()
            .map_err(|_| anyhow::anyhow!("docker-env cache poisoned"))?;
        if let Some(env) = cached.as_ref() {
            return Ok(env.clone());
        }
        let profile = &self.profile;
        let runtime = minikube::profile_config(sh, profile)?
            .map(|p| p.container_runtime)
            .unwrap_or_default();
        let env = match minikube::image_store(sh, profile, &runtime)? {
            minikube::ImageStore::DockerEnv(env) => env,
            minikube::ImageStore::MinikubeImageBuild => bail!(
                "Minikube profile `{profile}` runs `{runtime}`, not Docker: its images are built \
                 with `minikube image build`, not through docker-env"
            ),
        };
        *cached = Some(env.clone());
        Ok(env)
    }

    /// The profile's Docker daemon, or `minikube image build` when its runtime is not Docker.
    fn store(&self, sh: &Shell) -> Result<ImageStore> {
        // docker-env is cached for the run, so the common (Docker runtime) case costs one
        // `minikube docker-env` per run; only when it fails do we ask for the runtime.
        let env_err = match self.docker_env(sh) {
            Ok(env) => return Ok(ImageStore::Docker(env)),
            Err(e) => e,
        };
        let runtime = self.runtime(sh)?;
        if runtime.is_empty() || runtime == "docker" {
            Err(env_err)
        } else {
            Ok(ImageStore::MinikubeBuild(self.profile.clone()))
        }
    }

    fn runtime(&self, sh: &Shell) -> Result<String> {
        Ok(minikube::profile_config(sh, &self.profile)?
            .map(|c| c.container_runtime)
            .unwrap_or_default())
    }

    /// `kubectl port-forward` of `service` to the same local port, as a user would type it.
    pub fn port_forward_command(&self, service: &str, port: u16) -> String {
        format!(
            "kubectl --context {} -n {} port-forward svc/{service} {port}:{port}",
            self.profile, self.namespace
        )
    }

    /// How this host reaches the release's frontend Service: at the node's IP and NodePort,
    /// unless the Service has none (ClusterIP), or minikube's rule says the node's IP is not
    /// routed here (its container drivers on macOS, Windows and WSL), or (with `probe`) the
    /// NodePort does not accept a connection.
    pub fn frontend_access(&self, sh: &Shell, probe: bool) -> Result<FrontendAccess> {
        let kube = self.kube();
        let Some(svc) = kube
            .services(sh)?
            .into_iter()
            .find(|s| s.name.ends_with("frontend"))
        else {
            bail!(
                "no frontend Service in namespace `{}`; is the release deployed \
                 (`cargo xtask deploy`)?",
                self.namespace
            );
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
        let ip = minikube::ip(sh, &self.profile)?;
        let driver = minikube::profile_config(sh, &self.profile)?
            .map(|c| c.driver)
            .unwrap_or_default();
        let os = std::env::consts::OS;
        let addr = SocketAddr::new(ip, node_port);
        let url = format!("http://{addr}");
        if minikube::needs_port_forward(&driver, os, minikube::is_wsl()) {
            return Ok(forward(format!(
                "the {driver} driver on {os} does not route the node's IP {ip} to this host"
            )));
        }
        if probe && let Err(e) = TcpStream::connect_timeout(&addr, NODE_CONNECT_TIMEOUT) {
            return Ok(forward(format!(
                "{url} does not answer from this host ({e})"
            )));
        }
        Ok(FrontendAccess::Direct { url })
    }
}

impl Deployment for MinikubeTarget {
    fn image_store(&self, sh: &Shell) -> Result<ImageStore> {
        self.store(sh)
    }

    fn live(&self, _sh: &Shell) -> Result<std::collections::BTreeMap<String, String>> {
        // The release's revision reaches the smoke test's key through the release's key.
        Ok(Default::default())
    }

    /// [`MinikubeTarget::frontend_access`], probed, with the port-forward started when it
    /// takes one.
    fn frontend(&self, sh: &Shell, log: &dyn Fn(&str)) -> Result<Frontend> {
        let (frontend, access, forward) = match self.frontend_access(sh, true)? {
            FrontendAccess::Direct { url } => (url.clone(), Access::Url(url), None),
            FrontendAccess::Forward {
                reason,
                service,
                port,
            } => {
                log(&format!(
                    "{reason}: reaching svc/{service} through `kubectl port-forward`"
                ));
                let forward = self.kube().port_forward(sh, &service, port)?;
                log(&format!(
                    "forwarding {} to svc/{service}:{port}",
                    forward.local
                ));
                (
                    format!("http://{}", forward.local),
                    Access::PortForward(self.port_forward_command(&service, port)),
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

    /// The fix named when the smoke test cannot connect to the app.
    fn unreachable_fix(&self) -> String {
        format!(
            "run `cargo xtask status --target minikube`; `minikube -p {} service list -n {}` \
             shows the frontend's URL, or forward it with `{}`",
            self.profile,
            self.namespace,
            self.port_forward_command("todo-app-frontend", 3000)
        )
    }

    /// For each release: helm uninstall, its Secret, its PersistentVolumeClaims (only with
    /// [`Data::Delete`]), then the namespace if we created it and it holds no kept claims.
    fn teardown(&self, sh: &Shell, declared: &Declared, data: Data) -> Result<Vec<String>> {
        let kube = self.kube();
        let mut done = Vec::new();
        for release in &declared.releases {
            done.extend(teardown(sh, &kube, &release.name, &release.secret, data)?);
        }
        Ok(done)
    }

    /// The images of `repositories` in the profile: from its Docker daemon, or its image store
    /// on other runtimes.
    fn remove_images(&self, sh: &Shell, repositories: &[String]) -> Result<String> {
        let runtime = self.runtime(sh)?;
        if runtime.is_empty() || runtime == "docker" {
            return super::docker::remove_images(sh, &self.docker_env(sh)?, repositories);
        }
        let mut removed = Vec::new();
        for image in minikube::image_ls(sh, &self.profile)? {
            if repositories
                .iter()
                .any(|r| image.starts_with(&format!("{r}:")))
            {
                minikube::image_rm(sh, &self.profile, &image)?;
                removed.push(image);
            }
        }
        Ok(format!("images removed: {}", list_or_none(&removed)))
    }

    /// The releases with their revisions, their pods' readiness, and how to reach the app.
    fn status(&self, sh: &Shell, declared: &Declared) -> Result<Vec<String>> {
        let kube = self.kube();
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
        // Without the connect probe: status stays quick on an unroutable node.
        lines.push(match self.frontend_access(sh, false) {
            Ok(FrontendAccess::Direct { url }) => format!("url: {url} (frontend NodePort)"),
            Ok(FrontendAccess::Forward {
                reason,
                service,
                port,
            }) => format!(
                "url: none from this host ({reason}); `{}` gives it on localhost",
                self.port_forward_command(&service, port)
            ),
            Err(e) => format!("url: unknown ({e:#})"),
        });
        Ok(lines)
    }
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::engine::Target as _;

    fn target(profile: &str, namespace: &str) -> MinikubeTarget {
        MinikubeTarget {
            profile: profile.into(),
            namespace: namespace.into(),
            docker_env: Mutex::new(None),
            registry: None,
        }
    }

    #[test]
    fn identities_never_collide_with_docker_s() {
        let minikube = super::super::Target::Minikube(target("todo", "app"));
        let docker = super::super::Target::Docker(super::super::DockerTarget {
            namespace: "todo-app".into(),
            port: 3000,
            registry: None,
        });
        assert_ne!(minikube.id(), docker.id());
    }

    #[test]
    fn the_unreachable_fix_names_the_profile_s_commands_on_one_line() {
        let fix = target("dev", "todo").unreachable_fix();
        assert!(
            fix.contains("`minikube -p dev service list -n todo`")
                && fix.contains("kubectl --context dev -n todo port-forward"),
            "{fix}"
        );
        assert_eq!(fix.lines().count(), 1);
    }

    #[test]
    fn pod_lines_count_ready_containers() {
        let pods = serde_json::json!({"items": [{"metadata": {"name": "p"}, "status": {"phase": "Running",
            "containerStatuses": [{"ready": true, "restartCount": 1}, {"ready": false, "restartCount": 2}]}}]});
        assert_eq!(
            pod_lines(&pods),
            vec!["p  1/2 ready  Running  restarts 3".to_owned()]
        );
    }
}

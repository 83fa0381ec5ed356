//! The Minikube target: a profile's cluster, the app installed as a Helm release in a
//! namespace. On the Docker runtime the binaries and images are built in the profile's Docker
//! daemon (docker-env), where the node sees them; on other runtimes (containerd, CRI-O) they are
//! built in the local Docker daemon and loaded into the profile by the `image-load` task
//! ([`crate::kinds::image_load`]), which confirms each by image ID. Every cluster call names the
//! profile's context explicitly.

use std::sync::Mutex;
use std::sync::atomic::AtomicBool;

use anyhow::Result;
use xshell::Shell;

use super::logs::{Lines, Request};
use super::release::{self, FrontendAccess};
use super::{Data, Declared, Deployment, Frontend};
use crate::builder::{Builder, Site};
pub use crate::tools::kubectl::Kube;
use crate::tools::list_or_none;
use crate::tools::{ChildEnv, minikube};
pub use release::{pod_lines, release_selector, teardown};

/// The target's name in `targets = [...]`.
pub const NAME: &str = "minikube";

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
    /// `--builder`.
    pub builder: String,
    /// The releases the current run rolled out, until it settles.
    pub(super) upgrades: release::Upgrades,
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

    /// `minikube docker-env`, cached for the run. Only for the Docker runtime.
    pub fn docker_env(&self, sh: &Shell) -> Result<ChildEnv> {
        let mut cached = self
            .docker_env
            .lock()
            .map_err(|_| anyhow::anyhow!("docker-env cache poisoned"))?;
        if let Some(env) = cached.as_ref() {
            return Ok(env.clone());
        }
        let env = minikube::docker_env(sh, &self.profile)?;
        *cached = Some(env.clone());
        Ok(env)
    }

    /// The profile's container runtime (`docker`, `containerd`, `cri-o`; empty: minikube's
    /// default, Docker).
    pub fn runtime(&self, sh: &Shell) -> Result<String> {
        Ok(minikube::profile_config(sh, &self.profile)?
            .map(|c| c.container_runtime)
            .unwrap_or_default())
    }

    /// Whether the node runs Docker, so the images are built where it sees them.
    pub fn docker_runtime(&self, sh: &Shell) -> Result<bool> {
        Ok(minikube::is_docker_runtime(&self.runtime(sh)?))
    }

    /// The daemon binaries and images are built in: the profile's (docker-env) on the Docker
    /// runtime, else the local one, from which `image-load` loads them into the profile.
    fn daemon(&self, sh: &Shell) -> Result<ChildEnv> {
        if self.docker_runtime(sh)? {
            self.docker_env(sh)
        } else {
            Ok(ChildEnv::new())
        }
    }

    /// The deployment's builder, on [`MinikubeTarget::daemon`].
    fn builder<'a>(&self, sh: &'a Shell) -> Result<Builder<'a>> {
        let site = Site {
            env: self.daemon(sh)?,
            builder: self.builder.clone(),
            prefix: self.object_prefix(),
        };
        Ok(Builder::new(sh, &site))
    }

    /// How this host reaches the release's frontend Service: at the node's IP and NodePort,
    /// unless the Service has none (ClusterIP), or minikube's rule says the node's IP is not
    /// routed here (its container drivers on macOS, Windows and WSL), or (with `probe`) the
    /// NodePort does not accept a connection.
    pub fn frontend_access(&self, sh: &Shell, probe: bool) -> Result<FrontendAccess> {
        let missing = || {
            format!(
                "no frontend Service in namespace `{}`; is the release deployed \
                 (`cargo xtask deploy`)?",
                self.namespace
            )
        };
        release::frontend_access(sh, &self.kube(), probe, missing, || {
            let ip = minikube::ip(sh, &self.profile)?;
            let driver = minikube::profile_config(sh, &self.profile)?
                .map(|c| c.driver)
                .unwrap_or_default();
            let os = std::env::consts::OS;
            Ok(
                if minikube::needs_port_forward(&driver, os, minikube::is_wsl()) {
                    Err(format!(
                        "the {driver} driver on {os} does not route the node's IP {ip} to this host"
                    ))
                } else {
                    Ok(ip)
                },
            )
        })
    }
}

impl Deployment for MinikubeTarget {
    fn image_daemon(&self, sh: &Shell) -> Result<ChildEnv> {
        self.daemon(sh)
    }

    fn object_prefix(&self) -> String {
        format!("{}-{NAME}", self.namespace)
    }

    fn builder_name(&self) -> &str {
        &self.builder
    }

    fn live(&self, _sh: &Shell) -> Result<std::collections::BTreeMap<String, String>> {
        // The release's revision reaches the smoke test's key through the release's key.
        Ok(Default::default())
    }

    /// [`MinikubeTarget::frontend_access`], probed, with the port-forward started when it
    /// takes one.
    fn frontend(&self, sh: &Shell, log: &dyn Fn(&str)) -> Result<Frontend> {
        self.frontend_access(sh, true)?.open(sh, &self.kube(), log)
    }

    /// The fix named when the smoke test cannot connect to the app.
    fn unreachable_fix(&self) -> String {
        format!(
            "run `cargo xtask status --target minikube`; `minikube -p {} service list -n {}` \
             shows the frontend's URL, or forward it with `{}`",
            self.profile,
            self.namespace,
            self.kube().port_forward_command("todo-app-frontend", 3000)
        )
    }

    /// For each release: helm uninstall, its Secret, its PersistentVolumeClaims (only with
    /// [`Data::Delete`]), then the namespace if we created it and it holds no kept claims.
    fn teardown(&self, sh: &Shell, declared: &Declared, data: Data) -> Result<Vec<String>> {
        let mut done = release::teardown_all(sh, &self.kube(), declared, data)?;
        done.extend(self.builder(sh)?.leave()?);
        Ok(done)
    }

    /// The images of `repositories` in the profile, and the builder's volumes. On the Docker
    /// runtime both are in the profile's daemon; on others the images go from the nodes
    /// (`minikube image rm`) and from the local daemon they were built and loaded from, where
    /// the builder is too.
    fn remove_images(&self, sh: &Shell, repositories: &[String]) -> Result<Vec<String>> {
        let in_repositories = |tag: &str| {
            let tag = minikube::normalize_image(tag);
            repositories.iter().any(|r| {
                tag.strip_prefix(&minikube::normalize_image(r))
                    .is_some_and(|rest| rest.starts_with(':'))
            })
        };
        let mut done = Vec::new();
        if !self.docker_runtime(sh)? {
            // Sorted: minikube lists the nodes' images in no stable order.
            let mut removed: Vec<String> = minikube::images(sh, &self.profile)?
                .iter()
                .flat_map(|image| &image.repo_tags)
                .filter(|t| in_repositories(t))
                .map(|t| minikube::normalize_image(t))
                .collect();
            removed.sort();
            removed.dedup();
            for tag in &removed {
                minikube::image_rm(sh, &self.profile, tag)?;
            }
            done.push(format!(
                "images removed from profile `{}`: {}",
                self.profile,
                list_or_none(&removed)
            ));
        }
        done.push(super::docker::remove_images(
            sh,
            &self.daemon(sh)?,
            repositories,
        )?);
        Ok(done)
    }

    /// Helm puts back the last release itself when a rollout fails (`--rollback-on-failure`);
    /// one that rolled out in a run that then failed is rolled back here.
    fn settle(&self, sh: &Shell, succeeded: bool) -> Result<Vec<String>> {
        self.upgrades.settle(sh, &self.kube(), succeeded)
    }

    fn remove_builder(&self, sh: &Shell) -> Result<String> {
        self.builder(sh)?.remove_all()
    }

    /// The release's pods' logs ([`release::logs`]).
    fn logs(
        &self,
        sh: &Shell,
        declared: &Declared,
        request: &Request,
        cancel: &AtomicBool,
        out: Lines<'_>,
    ) -> Result<()> {
        release::logs(
            sh,
            &self.kube(),
            declared,
            request,
            cancel,
            out,
            "--target minikube",
        )
    }

    /// The releases with their revisions, their pods' readiness, and how to reach the app.
    fn status(&self, sh: &Shell, declared: &Declared) -> Result<Vec<String>> {
        let mut lines = release::status_lines(sh, &self.kube(), declared)?;
        // Without the connect probe: status stays quick on an unroutable node.
        lines.push(FrontendAccess::status_line(
            self.frontend_access(sh, false),
            &self.kube(),
        ));
        Ok(lines)
    }
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
            builder: crate::builder::DEFAULT_NAME.into(),
            upgrades: Default::default(),
        }
    }

    #[test]
    fn identities_never_collide_with_docker_s() {
        let minikube = super::super::Target::Minikube(target("todo", "app"));
        let docker = super::super::Target::Docker(super::super::DockerTarget {
            namespace: "todo-app".into(),
            port: 3000,
            registry: None,
            builder: crate::builder::DEFAULT_NAME.into(),
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

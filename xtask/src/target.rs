//! Where the pipeline deploys: a Minikube profile or the local Docker daemon.

use std::path::{Path, PathBuf};

use xshell::Shell;

use crate::cli::{GlobalOpts, TargetChoice};

/// A resolved deployment target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A Minikube profile and the namespace the app goes into.
    Minikube {
        /// `minikube -p PROFILE`.
        profile: String,
        /// Kubernetes namespace.
        namespace: String,
    },
    /// Containers on the local Docker daemon.
    Docker {
        /// `--namespace`: names the containers (`<namespace>-docker-*`) and the state directory.
        namespace: String,
        /// Local port the frontend is published on.
        port: u16,
    },
}

impl Target {
    /// Resolve `--target`: `auto` is Minikube when `minikube` is on PATH, else Docker (said in one line).
    pub fn resolve(sh: &Shell, opts: &GlobalOpts) -> anyhow::Result<Target> {
        let minikube = || Target::Minikube {
            profile: opts.profile.clone(),
            namespace: opts.namespace.clone(),
        };
        let docker = || Target::Docker {
            namespace: opts.namespace.clone(),
            port: opts.port,
        };
        let target = match opts.target {
            TargetChoice::Minikube => minikube(),
            TargetChoice::Docker => docker(),
            TargetChoice::Auto => {
                if find_on_path(sh, "minikube").is_some() {
                    minikube()
                } else {
                    eprintln!(
                        "note: minikube not found on PATH, using the Docker target \
                         (install minikube from https://minikube.sigs.k8s.io/docs/start/ to deploy to Kubernetes)"
                    );
                    docker()
                }
            }
        };
        // PIPELINE HOOK: a Minikube profile must be running (for `auto` and explicit `minikube`):
        // fail with `minikube start -p PROFILE` instead of silently picking another target.
        if let Target::Minikube { profile, .. } = &target {
            crate::tools::minikube::ensure_running(sh, profile)?;
        }
        Ok(target)
    }

    /// Stable identity used for the state directory `target/xtask/<id>/`.
    pub fn id(&self) -> String {
        match self {
            Target::Minikube { profile, namespace } => format!("minikube-{profile}-{namespace}"),
            // The namespace names the containers, so two namespaces are two deployments: each
            // needs its own state, lock and generated secrets. The port is not part of the
            // identity: the containers kind keys on it, so a new port re-creates containers
            // without rebuilding images.
            Target::Docker { namespace, .. } => format!("docker-{namespace}"),
        }
    }
}

/// The first executable named `name` on the shell's PATH.
pub fn find_on_path(sh: &Shell, name: &str) -> Option<PathBuf> {
    let path = sh.var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Environment that points `docker` child processes at the target's daemon.
pub fn docker_env(
    _sh: &Shell,
    target: &Target,
) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    match target {
        Target::Docker { .. } => Ok(Default::default()),
        // PIPELINE HOOK: `minikube -p PROFILE docker-env --shell none`, parsed (tools/minikube.rs);
        // only for the Docker runtime: other runtimes build with `minikube image build`.
        Target::Minikube { profile, .. } => {
            let runtime = crate::tools::minikube::profile_config(_sh, profile)?
                .map(|p| p.container_runtime)
                .unwrap_or_default();
            match crate::tools::minikube::image_store(_sh, profile, &runtime)? {
                crate::tools::minikube::ImageStore::DockerEnv(env) => Ok(env),
                crate::tools::minikube::ImageStore::MinikubeImageBuild => anyhow::bail!(
                    "Minikube profile `{profile}` runs `{runtime}`, not Docker: its images are built with \
                     `minikube image build` (tools::minikube::image_build), not through docker-env"
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Target;

    fn docker(namespace: &str, port: u16) -> Target {
        Target::Docker {
            namespace: namespace.to_owned(),
            port,
        }
    }

    #[test]
    fn docker_identity_includes_the_namespace_but_not_the_port() {
        assert_eq!(docker("todo-app", 3000).id(), "docker-todo-app");
        assert_ne!(docker("a", 3000).id(), docker("b", 3000).id());
        assert_eq!(docker("a", 3000).id(), docker("a", 4000).id());
    }

    #[test]
    fn docker_and_minikube_identities_never_collide() {
        let minikube = Target::Minikube {
            profile: "todo".to_owned(),
            namespace: "app".to_owned(),
        };
        assert_ne!(minikube.id(), docker("todo-app", 3000).id());
    }
}

//! The Docker target: PostgreSQL, the backend and the frontend as containers on a private
//! network of the local daemon, named `<namespace>-docker[-role]` so a second deployment (a
//! test, another checkout) with its own `--namespace` never touches this one.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Result;
use xshell::{Shell, cmd};

use super::{Access, Data, Declared, Deployment, Frontend, ImageStore, kept_line, list_or_none};
use crate::image_registry::Registry;
use crate::smoke::Endpoints;
use crate::tools::docker::{
    Docker, IMAGE_LABEL, ObjectKind, PART_OF_LABEL, PART_OF_VALUE, TARGET_LABEL,
};
use crate::tools::{ChildEnv, capture};

/// The target's name in `targets = [...]`.
pub const NAME: &str = "docker";

/// The containers' roles, in start order.
pub const ROLES: [&str; 3] = ["postgres", "backend", "frontend"];

/// The port the backend container listens on.
pub const BACKEND_PORT: u16 = 8000;

/// Containers on the local Docker daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerTarget {
    /// `--namespace`: names the containers (`<namespace>-docker-*`) and the state directory.
    pub namespace: String,
    /// Local port the frontend is published on.
    pub port: u16,
    /// `--registry`, if any.
    pub registry: Option<Arc<Registry>>,
}

impl DockerTarget {
    /// Stable identity for the state directory. The namespace names the containers, so two
    /// namespaces are two deployments, each with its own state, lock and generated secrets. The
    /// port is not part of it: the containers kind keys on it, so a new port re-creates
    /// containers without rebuilding images.
    pub fn id(&self) -> String {
        format!("docker-{}", self.namespace)
    }

    /// The local daemon: no extra environment.
    pub fn docker_env(&self) -> ChildEnv {
        ChildEnv::new()
    }

    /// `<namespace>-docker`; also the value of the target label.
    pub fn prefix(&self) -> String {
        format!("{}-docker", self.namespace)
    }

    /// The private network.
    pub fn network(&self) -> String {
        self.prefix()
    }

    /// PostgreSQL's data volume.
    pub fn volume(&self) -> String {
        format!("{}-pgdata", self.prefix())
    }

    /// The container of `role`.
    pub fn container(&self, role: &str) -> String {
        format!("{}-{role}", self.prefix())
    }

    /// Labels every object of this deployment carries.
    pub fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (PART_OF_LABEL.to_owned(), PART_OF_VALUE.to_owned()),
            (TARGET_LABEL.to_owned(), self.prefix()),
        ])
    }

    /// Where a user reaches the app.
    pub fn url(&self) -> String {
        format!("http://localhost:{}/", self.port)
    }
}

impl Deployment for DockerTarget {
    fn image_store(&self, _sh: &Shell) -> Result<ImageStore> {
        Ok(ImageStore::Docker(self.docker_env()))
    }

    /// The published frontend port, and the backend's port published on loopback.
    fn frontend(&self, sh: &Shell, _log: &dyn Fn(&str)) -> Result<Frontend> {
        let docker = Docker::new(sh, self.docker_env());
        let backend = docker
            .port(&self.container("backend"), BACKEND_PORT)
            .map(|addr| format!("http://{addr}"))
            .ok();
        Ok(Frontend {
            endpoints: Endpoints {
                frontend: format!("http://127.0.0.1:{}", self.port),
                backend,
            },
            access: Access::Url(self.url()),
            forward: None,
        })
    }

    /// The running containers' IDs by role, as `<role>_container` (a missing one is empty).
    fn live(&self, sh: &Shell) -> Result<BTreeMap<String, String>> {
        let docker = Docker::new(sh, self.docker_env());
        let mut out = BTreeMap::new();
        for role in ROLES {
            let id = docker
                .container_inspect(&self.container(role))?
                .filter(|info| info.is_running())
                .map(|info| info.id)
                .unwrap_or_default();
            out.insert(format!("{role}_container"), id);
        }
        Ok(out)
    }

    fn unreachable_fix(&self) -> String {
        format!(
            "run `cargo xtask status --target docker` and check the frontend container's logs: \
             `docker logs {}`",
            self.container("frontend")
        )
    }

    /// Our containers and network, found by label; the data volume only with [`Data::Delete`].
    fn teardown(&self, sh: &Shell, _declared: &Declared, data: Data) -> Result<Vec<String>> {
        let docker = Docker::new(sh, self.docker_env());
        let labels = self.labels();
        let mut done = Vec::new();
        for kind in [
            ObjectKind::Container,
            ObjectKind::Network,
            ObjectKind::Volume,
        ] {
            let found = docker.list(kind, &labels)?;
            if kind == ObjectKind::Volume && data == Data::Keep && !found.is_empty() {
                done.push(kept_line("Volumes", &found));
                continue;
            }
            docker.remove(kind, &found)?;
            done.push(format!("{kind:?}s removed: {}", list_or_none(&found)));
        }
        Ok(done)
    }

    fn remove_images(&self, sh: &Shell, repositories: &[String]) -> Result<String> {
        remove_images(sh, &self.docker_env(), repositories)
    }

    /// Our containers with their state, and the URL.
    fn status(&self, sh: &Shell, _declared: &Declared) -> Result<Vec<String>> {
        let label = format!("label={TARGET_LABEL}={}", self.prefix());
        let format = "{{.Names}}  {{.Status}}";
        let out = capture(
            cmd!(sh, "docker ps -a --filter {label} --format {format}"),
            "docker ps",
        )?;
        let text = out.stdout.trim();
        Ok(vec![
            "containers:".to_owned(),
            format!(
                "  {}",
                if text.is_empty() { "(none)" } else { text }.replace('\n', "\n  ")
            ),
            format!("url: http://localhost:{}", self.port),
        ])
    }
}

/// Removes every image of `repositories` carrying our label from the daemon `env` reaches. Other
/// checkouts' images of the same repositories go too (tags are content-addressed), unless a
/// running container uses them.
pub fn remove_images(sh: &Shell, env: &ChildEnv, repositories: &[String]) -> Result<String> {
    let docker = Docker::new(sh, env.clone());
    let mut found = Vec::new();
    for repo in repositories {
        let labels = BTreeMap::from([
            (PART_OF_LABEL.to_owned(), PART_OF_VALUE.to_owned()),
            (IMAGE_LABEL.to_owned(), repo.clone()),
        ]);
        found.extend(docker.list(ObjectKind::Image, &labels)?);
    }
    found.sort();
    found.dedup();
    let (mut removed, mut kept) = (Vec::new(), Vec::new());
    for image in found {
        match docker.image_rm(std::slice::from_ref(&image)) {
            Ok(()) => removed.push(image),
            // A container of another deployment (another --namespace) uses it: not ours to break.
            Err(e) if format!("{e:#}").contains("conflict") => kept.push(image),
            Err(e) => return Err(e),
        }
    }
    let mut line = format!("images removed: {}", list_or_none(&removed));
    if !kept.is_empty() {
        line.push_str(&format!(
            "; kept (used by containers of another deployment): {}",
            kept.join(", ")
        ));
    }
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Target as _;

    fn docker(namespace: &str, port: u16) -> super::super::Target {
        super::super::Target::Docker(DockerTarget {
            namespace: namespace.to_owned(),
            port,
            registry: None,
        })
    }

    #[test]
    fn identity_includes_the_namespace_but_not_the_port() {
        assert_eq!(docker("todo-app", 3000).id(), "docker-todo-app");
        assert_ne!(docker("a", 3000).id(), docker("b", 3000).id());
        assert_eq!(docker("a", 3000).id(), docker("a", 4000).id());
    }

    #[test]
    fn the_unreachable_fix_names_the_frontend_container() {
        assert_eq!(
            docker("todo-app", 8080).deployment().unreachable_fix(),
            "run `cargo xtask status --target docker` and check the frontend container's logs: \
             `docker logs todo-app-docker-frontend`"
        );
    }
}

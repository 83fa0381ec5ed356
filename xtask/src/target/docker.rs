//! The Docker target: PostgreSQL, the backend and the frontend as containers on a private
//! network of the local daemon, named `<namespace>-docker[-role]` so a second deployment (a
//! test, another checkout) with its own `--namespace` never touches this one.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, mpsc};

use anyhow::{Context as _, Result, bail};
use xshell::{Shell, cmd};

use super::logs::{self, Lines, Request, Service};
use super::{Access, Data, Declared, Deployment, Frontend, kept_line};
use crate::builder::{Builder, Site};
use crate::engine::task::{DEFAULT_GRACE, terminate};
use crate::image_registry::Registry;
use crate::smoke::Endpoints;
use crate::tools::docker::{
    Docker, IMAGE_LABEL, ObjectKind, PART_OF_LABEL, PART_OF_VALUE, TARGET_LABEL,
};
use crate::tools::list_or_none;
use crate::tools::{ChildEnv, capture};

/// The target's name in `targets = [...]`.
pub const NAME: &str = "docker";

/// The containers' roles, in start order.
pub const ROLES: [&str; 3] = ["postgres", "backend", "frontend"];

/// The port the backend container listens on.
pub const BACKEND_PORT: u16 = 8000;

/// The suffix of a replaced container's name while the run that replaced it settles.
const PREVIOUS: &str = "-previous";

/// Containers on the local Docker daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerTarget {
    /// `--namespace`: names the containers (`<namespace>-docker-*`) and the state directory.
    pub namespace: String,
    /// Local port the frontend is published on.
    pub port: u16,
    /// `--registry`, if any.
    pub registry: Option<Arc<Registry>>,
    /// `--builder`.
    pub builder: String,
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

    /// Stops container `name`, which a run is replacing, and keeps it as `<name>-previous`
    /// until the run settles ([`DockerTarget::settle`]): put back if the run fails, removed if
    /// it succeeds. One that a killed run left goes first.
    pub fn set_aside(&self, docker: &Docker<'_>, name: &str) -> Result<()> {
        let previous = format!("{name}{PREVIOUS}");
        docker.remove(ObjectKind::Container, std::slice::from_ref(&previous))?;
        docker.stop_now(name)?;
        docker.rename(name, &previous)
    }

    /// Labels every object of this deployment carries.
    pub fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (PART_OF_LABEL.to_owned(), PART_OF_VALUE.to_owned()),
            (TARGET_LABEL.to_owned(), self.prefix()),
        ])
    }

    /// The deployment's builder on the local daemon.
    fn builder<'a>(&self, sh: &'a Shell) -> Builder<'a> {
        Builder::new(
            sh,
            &Site {
                env: self.docker_env(),
                builder: self.builder.clone(),
                prefix: self.prefix(),
            },
        )
    }

    /// Where a user reaches the app.
    pub fn url(&self) -> String {
        format!("http://localhost:{}/", self.port)
    }
}

impl Deployment for DockerTarget {
    fn image_daemon(&self, _sh: &Shell) -> Result<ChildEnv> {
        Ok(self.docker_env())
    }

    fn object_prefix(&self) -> String {
        self.prefix()
    }

    fn builder_name(&self) -> &str {
        &self.builder
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
        done.extend(self.builder(sh).leave()?);
        Ok(done)
    }

    fn remove_images(&self, sh: &Shell, repositories: &[String]) -> Result<Vec<String>> {
        Ok(vec![remove_images(sh, &self.docker_env(), repositories)?])
    }

    fn remove_builder(&self, sh: &Shell) -> Result<String> {
        self.builder(sh).remove_all()
    }

    /// The containers a run replaced ([`DockerTarget::set_aside`]) go after a good run; after a
    /// failed one they are put back in place of the new ones, so the last deployment that
    /// worked keeps serving (a new container that never became ready, or failed the smoke
    /// test, is removed). The next run replaces them again: their configuration is not the
    /// recorded one.
    fn settle(&self, sh: &Shell, succeeded: bool) -> Result<Vec<String>> {
        let docker = Docker::new(sh, self.docker_env());
        let previous: Vec<String> = docker
            .list(ObjectKind::Container, &self.labels())?
            .into_iter()
            .filter(|n| n.ends_with(PREVIOUS))
            .collect();
        if previous.is_empty() {
            return Ok(Vec::new());
        }
        if succeeded {
            docker.remove(ObjectKind::Container, &previous)?;
            return Ok(vec![format!(
                "replaced containers removed: {}",
                previous.join(", ")
            )]);
        }
        let mut lines = Vec::new();
        for kept in previous {
            let name = kept.trim_end_matches(PREVIOUS).to_owned();
            docker.remove(ObjectKind::Container, std::slice::from_ref(&name))?;
            docker.rename(&kept, &name)?;
            docker.start(&name)?;
            lines.push(format!(
                "the run failed: {name} is back as it was before the run (the new one removed)"
            ));
        }
        Ok(lines)
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

    /// `docker logs` of each service's container. Following, `docker events` reports every
    /// start of one of our containers, so a container that a deploy replaces (a new ID) is
    /// followed from its first line, and one that restarts (the same ID) from its start.
    fn logs(
        &self,
        sh: &Shell,
        _declared: &Declared,
        request: &Request,
        cancel: &AtomicBool,
        out: Lines<'_>,
    ) -> Result<()> {
        let docker = Docker::new(sh, self.docker_env());
        // Subscribed before the containers are looked up: none that starts in between is missed.
        let mut starts = if request.follow {
            let label = format!("{TARGET_LABEL}={}", self.prefix());
            let mut cmd = docker.container_starts_command(&label);
            let child = cmd
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .context("cannot start `docker events`; is docker installed?")?;
            Some(child)
        } else {
            None
        };
        let mut present = Vec::new();
        for &service in &request.services {
            if let Some(info) = docker.container_inspect(&self.container(service.name()))? {
                present.push((service, info.id));
            }
        }
        if present.is_empty() {
            if let Some(child) = starts.as_mut() {
                terminate(child, DEFAULT_GRACE);
                let _ = child.wait();
            }
            bail!(
                "nothing is deployed on the Docker target `{}`: no container {}; run \
                 `cargo xtask deploy --target docker` first",
                self.id(),
                request
                    .services
                    .iter()
                    .map(|s| format!("`{}`", self.container(s.name())))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let Some(mut starts) = starts else {
            let commands: Vec<_> = present
                .iter()
                .map(|(service, id)| (*service, docker.logs_command(id, false, request.tail, None)))
                .collect();
            return std::thread::scope(|s| {
                let streams: Vec<_> = commands
                    .into_iter()
                    .map(|(service, cmd)| {
                        s.spawn(move || -> Result<()> {
                            match logs::stream(cmd, service, cancel, out)? {
                                (Some(status), last) if !status.success() => Err(logs::failed(
                                    &format!("docker logs of {}", service.name()),
                                    status,
                                    &last,
                                )),
                                _ => Ok(()),
                            }
                        })
                    })
                    .collect();
                for stream in streams {
                    stream
                        .join()
                        .map_err(|_| anyhow::anyhow!("a log stream panicked"))??;
                }
                Ok(())
            });
        };
        let (Some(events), Some(events_err)) = (starts.stdout.take(), starts.stderr.take()) else {
            bail!("`docker events`: no output pipes");
        };
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || logs::lines(events, |line| drop(tx.send(line))));
        let said = Mutex::new(String::new());
        // Set when following ends, for whatever reason: every stream stops then.
        let stop = AtomicBool::new(false);
        let active: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
        std::thread::scope(|s| {
            s.spawn(|| {
                logs::lines(events_err, |line| {
                    if let Ok(mut said) = said.lock() {
                        said.clone_from(&line);
                    }
                });
            });
            let result = (|| -> Result<()> {
                let (stop, active) = (&stop, &active);
                let follow =
                    |service: Service, id: String, since: Option<String>, tail: Option<u64>| {
                        let cmd = docker.logs_command(&id, true, tail, since.as_deref());
                        if let Ok(mut a) = active.lock() {
                            a.insert(id.clone());
                        }
                        s.spawn(move || {
                            let _ = logs::stream(cmd, service, stop, out);
                            if let Ok(mut a) = active.lock() {
                                a.remove(&id);
                            }
                        });
                    };
                let mut seen = BTreeSet::new();
                for (service, id) in present {
                    seen.insert(id.clone());
                    follow(service, id, None, request.tail);
                }
                loop {
                    if cancel.load(Ordering::SeqCst) {
                        return Ok(());
                    }
                    let line = match rx.recv_timeout(logs::POLL) {
                        Ok(line) => line,
                        Err(mpsc::RecvTimeoutError::Timeout) => continue,
                        Err(mpsc::RecvTimeoutError::Disconnected) => {
                            if cancel.load(Ordering::SeqCst) {
                                return Ok(());
                            }
                            let said = said.lock().map(|s| s.clone()).unwrap_or_default();
                            bail!("`docker events` stopped reporting container starts: {said}");
                        }
                    };
                    let Some(start) = ContainerStart::parse(&line) else {
                        continue;
                    };
                    let Some(&service) = request
                        .services
                        .iter()
                        .find(|s| self.container(s.name()) == start.name)
                    else {
                        continue;
                    };
                    if active.lock().is_ok_and(|a| a.contains(&start.id)) {
                        continue;
                    }
                    // A restart of a container followed before: only what it prints from now on.
                    let since = (!seen.insert(start.id.clone())).then_some(start.since);
                    follow(service, start.id, since, None);
                }
            })();
            // Inside the scope: its threads end only once their children do.
            stop.store(true, Ordering::SeqCst);
            terminate(&mut starts, DEFAULT_GRACE);
            let _ = starts.wait();
            result
        })
    }
}

/// A container start that `docker events --format '{{json .}}'` reported.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ContainerStart {
    /// The container's ID.
    id: String,
    /// Its name.
    name: String,
    /// When it started, as `docker logs --since` takes it (`SECONDS.NANOSECONDS`).
    since: String,
}

impl ContainerStart {
    /// Reads one event line (the daemon's `events.Message`: `id`, `Actor.Attributes.name`,
    /// `timeNano`); `None` for anything else.
    fn parse(line: &str) -> Option<ContainerStart> {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        let id = v
            .get("id")
            .or_else(|| v.pointer("/Actor/ID"))?
            .as_str()?
            .to_owned();
        let name = v.pointer("/Actor/Attributes/name")?.as_str()?.to_owned();
        let nanos = v.get("timeNano")?.as_i64()?;
        Some(ContainerStart {
            id,
            name,
            since: format!("{}.{:09}", nanos / 1_000_000_000, nanos % 1_000_000_000),
        })
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
            builder: crate::builder::DEFAULT_NAME.into(),
        })
    }

    #[test]
    fn identity_includes_the_namespace_but_not_the_port() {
        assert_eq!(docker("todo-app", 3000).id(), "docker-todo-app");
        assert_ne!(docker("a", 3000).id(), docker("b", 3000).id());
        assert_eq!(docker("a", 3000).id(), docker("a", 4000).id());
    }

    #[test]
    fn container_starts_are_read_from_docker_events_json() {
        let line = r#"{"status":"start","id":"abc123","from":"todo-backend:1","Type":"container","Action":"start","Actor":{"ID":"abc123","Attributes":{"image":"todo-backend:1","name":"ns-docker-backend"}},"scope":"local","time":1700000000,"timeNano":1700000000012345678}"#;
        assert_eq!(
            ContainerStart::parse(line),
            Some(ContainerStart {
                id: "abc123".into(),
                name: "ns-docker-backend".into(),
                since: "1700000000.012345678".into(),
            })
        );
        assert_eq!(ContainerStart::parse("not json"), None);
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

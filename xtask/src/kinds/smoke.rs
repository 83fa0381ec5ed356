//! `kind = "smoke"`: the HTTP round trip of [`crate::smoke`] against the live deployment.
//!
//! ```toml
//! [tasks.smoke]
//! kind = "smoke"
//! deps = ["app-containers", "app-release"]
//! ready-timeout = 90   # optional, seconds for /health and /ready to answer
//! ```
//! Not always-run: its key covers its dependencies' keys, so it re-runs whenever anything it
//! tests changed, and [`Task::output_exists`] re-runs it when the deployment it tested is no
//! longer the one that is live (Docker: other container IDs). A no-op deploy stays all fresh.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Result, bail};

use super::containers::{Names, ROLES};
use super::{CheckCx, Diagnostic, LoadCx, Outputs, RunCx, Settings, Task, TaskKind};
use crate::engine::Session;
use crate::smoke::{self, Endpoints, Options};
use crate::target::Target;
use crate::tools::docker::Docker;
use crate::tools::kubectl::{Kube, PortForward};
use crate::tools::minikube;

/// The `smoke` kind.
#[derive(Debug)]
pub struct SmokeKind;

/// One smoke task's settings.
#[derive(Debug, Clone)]
pub struct Smoke {
    ready_timeout: Duration,
}

impl TaskKind for SmokeKind {
    fn name(&self) -> &'static str {
        "smoke"
    }

    fn parse(&self, s: &mut Settings, _cx: &LoadCx<'_>) -> Result<Box<dyn Task>, Diagnostic> {
        let secs: u64 = s.get("ready-timeout")?.unwrap_or(90);
        if secs == 0 {
            return Err(s.error(
                "ready-timeout",
                "`ready-timeout` must be at least 1 second",
                "give seconds, e.g. `ready-timeout = 90`",
            ));
        }
        Ok(Box::new(Smoke {
            ready_timeout: Duration::from_secs(secs),
        }))
    }
}

/// The Docker target's endpoints: the published frontend port and the backend's loopback port.
pub fn docker_endpoints(docker: &Docker<'_>, session: &Session, port: u16) -> Result<Endpoints> {
    let names = Names::new(session);
    let backend = docker
        .port(&names.container("backend"), 8000)
        .map(|addr| format!("http://{addr}"))
        .ok();
    Ok(Endpoints {
        frontend: format!("http://127.0.0.1:{port}"),
        backend,
    })
}

/// How the smoke test reaches the Minikube frontend.
#[derive(Debug)]
pub struct MinikubeFrontend {
    /// What the checks talk to: the node's address, or the local end of the forward.
    pub endpoints: Endpoints,
    /// How this host reaches the app.
    pub access: FrontendAccess,
    /// The forward the checks go through; stopped when dropped.
    pub forward: Option<PortForward>,
}

/// How this host reaches the Minikube frontend.
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

impl FrontendAccess {
    /// The command that gives the app on `localhost:<port>`, when it takes a forward.
    pub fn forward_command(&self, profile: &str, namespace: &str) -> Option<String> {
        match self {
            FrontendAccess::Direct { .. } => None,
            FrontendAccess::Forward { service, port, .. } => {
                Some(port_forward_command(profile, namespace, service, *port))
            }
        }
    }
}

/// `kubectl port-forward` of `service` to the same local port, as a user would type it.
pub fn port_forward_command(profile: &str, namespace: &str, service: &str, port: u16) -> String {
    format!("kubectl --context {profile} -n {namespace} port-forward svc/{service} {port}:{port}")
}

/// How this host reaches the release's frontend Service: at the node's IP and NodePort, unless
/// the Service has none (ClusterIP), or minikube's rule says the node's IP is not routed here
/// (its container drivers on macOS, Windows and WSL), or (with `probe`) the NodePort does not
/// accept a connection. `kube` is the Minikube target's identity (context = profile).
pub fn minikube_frontend_access(
    sh: &xshell::Shell,
    kube: &Kube,
    probe: bool,
) -> Result<FrontendAccess> {
    let (profile, namespace) = (&kube.context, &kube.namespace);
    let Some(svc) = kube
        .services(sh)?
        .into_iter()
        .find(|s| s.name.ends_with("frontend"))
    else {
        bail!(
            "no frontend Service in namespace `{namespace}`; is the release deployed \
             (`cargo xtask deploy`)?"
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
    let ip = minikube::ip(sh, profile)?;
    let driver = minikube::profile_config(sh, profile)?
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

/// [`minikube_frontend_access`], probed, with the port-forward started when it takes one.
pub fn minikube_frontend(
    sh: &xshell::Shell,
    kube: &Kube,
    log: &dyn Fn(&str),
) -> Result<MinikubeFrontend> {
    let access = minikube_frontend_access(sh, kube, true)?;
    let (frontend, forward) = match &access {
        FrontendAccess::Direct { url } => (url.clone(), None),
        FrontendAccess::Forward {
            reason,
            service,
            port,
        } => {
            log(&format!(
                "{reason}: reaching svc/{service} through `kubectl port-forward`"
            ));
            let forward = kube.port_forward(sh, service, *port)?;
            log(&format!(
                "forwarding {} to svc/{service}:{port}",
                forward.local
            ));
            (format!("http://{}", forward.local), Some(forward))
        }
    };
    Ok(MinikubeFrontend {
        endpoints: Endpoints {
            frontend,
            // The backend has no outside address; the frontend's /ready checks it.
            backend: None,
        },
        access,
        forward,
    })
}

/// How long the node's NodePort may take to accept a connection before the smoke test goes
/// through a port-forward instead.
const NODE_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// IDs of the Docker target's live containers, by role (missing ones absent).
fn live_containers(docker: &Docker<'_>, session: &Session) -> Result<BTreeMap<String, String>> {
    let names = Names::new(session);
    let mut out = BTreeMap::new();
    for role in ROLES {
        if let Some(info) = docker.container_inspect(&names.container(role))?
            && info.is_running()
        {
            out.insert(format!("{role}_container"), info.id);
        }
    }
    Ok(out)
}

/// The fix named when the smoke test cannot connect to the app on `target`.
pub fn unreachable_fix(session: &Session, target: &Target) -> String {
    unreachable_fix_for(target, &Names::new(session).container("frontend"))
}

fn unreachable_fix_for(target: &Target, frontend_container: &str) -> String {
    match target {
        Target::Docker { .. } => format!(
            "run `cargo xtask status --target docker` and check the frontend container's logs: \
             `docker logs {frontend_container}`"
        ),
        Target::Minikube { profile, namespace } => format!(
            "run `cargo xtask status --target minikube`; `minikube -p {profile} service list -n \
             {namespace}` shows the frontend's URL, or forward it with `{}`",
            port_forward_command(profile, namespace, "todo-app-frontend", 3000)
        ),
    }
}

/// Runs the checks, logging the table line by line; an error lists the failures.
pub fn check(
    endpoints: &Endpoints,
    timeout: Duration,
    fix: String,
    log: &dyn Fn(&str),
) -> Result<()> {
    let opts = Options {
        ready_timeout: timeout,
        unreachable_fix: Some(fix),
        ..Options::default()
    };
    let report = smoke::run(endpoints, &opts, |_| {});
    for line in report.table().lines() {
        log(line);
    }
    report.into_result().map(drop)
}

impl Task for Smoke {
    fn output_exists(&self, cx: &CheckCx<'_>) -> Result<bool> {
        match cx.target {
            Target::Docker { .. } => {
                let docker = Docker::new(cx.sh, cx.session.docker_env(cx.sh)?);
                let live = live_containers(&docker, cx.session)?;
                Ok(ROLES.iter().all(|role| {
                    let k = format!("{role}_container");
                    live.get(&k)
                        .is_some_and(|id| cx.outputs.get(&k) == Some(id))
                }))
            }
            // The release's revision is in the key through the release task's key.
            Target::Minikube { .. } => Ok(true),
        }
    }

    fn run(&self, cx: &RunCx<'_>) -> Result<Outputs> {
        let log = |line: &str| cx.log(line);
        match cx.target {
            Target::Docker { port, .. } => {
                let docker = Docker::new(cx.sh, cx.session.docker_env(cx.sh)?);
                let endpoints = docker_endpoints(&docker, cx.session, *port)?;
                check(
                    &endpoints,
                    self.ready_timeout,
                    unreachable_fix(cx.session, cx.target),
                    &log,
                )?;
                let mut outputs: Outputs = live_containers(&docker, cx.session)?;
                outputs.insert("url".into(), endpoints.frontend);
                Ok(outputs)
            }
            Target::Minikube { profile, namespace } => {
                let kube = Kube {
                    context: profile.clone(),
                    namespace: namespace.clone(),
                };
                let front = minikube_frontend(cx.sh, &kube, &log)?;
                check(
                    &front.endpoints,
                    self.ready_timeout,
                    unreachable_fix(cx.session, cx.target),
                    &log,
                )?;
                let mut outputs = Outputs::new();
                match &front.access {
                    FrontendAccess::Direct { url } => {
                        outputs.insert("url".to_owned(), url.clone());
                    }
                    forward => {
                        outputs.extend(
                            forward
                                .forward_command(profile, namespace)
                                .map(|c| ("port-forward".to_owned(), c)),
                        );
                    }
                }
                Ok(outputs)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unreachable_fix_names_the_target_s_commands() {
        let docker = unreachable_fix_for(
            &Target::Docker {
                port: 8080,
                namespace: "todo-app".into(),
            },
            "todo-app-docker-frontend",
        );
        assert_eq!(
            docker,
            "run `cargo xtask status --target docker` and check the frontend container's logs: \
             `docker logs todo-app-docker-frontend`"
        );
        let minikube = unreachable_fix_for(
            &Target::Minikube {
                profile: "dev".into(),
                namespace: "todo".into(),
            },
            "unused",
        );
        assert!(
            minikube.contains("`minikube -p dev service list -n todo`")
                && minikube.contains("kubectl --context dev -n todo port-forward"),
            "{minikube}"
        );
        assert_eq!(minikube.lines().count(), 1);
    }
}

//! Where the pipeline deploys, and what a deployment there is: one module per target (`docker`,
//! `minikube`, and `kube` for any named kube context), used by kinds and commands alike. A
//! target names its objects, says how the app is reached, tears it down and reports its status;
//! kinds and commands never work those out themselves.

pub mod docker;
pub mod kube;
pub mod logs;
pub mod minikube;
pub mod product;
pub mod release;
pub mod settings;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use xshell::Shell;

use crate::image_registry::Registry;
use crate::smoke::Endpoints;
use crate::tools::kubectl::{Kube, PortForward};
use crate::tools::{ChildEnv, find_program};

pub use docker::DockerTarget;
pub use kube::KubeTarget;
pub use minikube::MinikubeTarget;

/// The name of every target, as `targets = [...]` in `pipeline.toml` lists them.
pub const NAMES: &[&str] = &[docker::NAME, minikube::NAME, kube::NAME];

/// The `--target` choice before resolution (see [`Target::resolve`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Choice {
    /// Minikube when `minikube` is on PATH, else Docker.
    Auto,
    /// A Minikube profile: images built in its Docker daemon, deployed with Helm.
    Minikube,
    /// The local Docker daemon: containers on a private network.
    Docker,
    /// The kube context named with `--context`, deployed with Helm.
    Kube,
}

impl Choice {
    /// The target's name, when the choice names one.
    pub fn name(self) -> Option<&'static str> {
        match self {
            Choice::Auto => None,
            Choice::Minikube => Some(minikube::NAME),
            Choice::Docker => Some(docker::NAME),
            Choice::Kube => Some(kube::NAME),
        }
    }
}

/// What the command line says about the target.
#[derive(Debug, Clone)]
pub struct Options {
    /// `--target`.
    pub target: Choice,
    /// `--profile` (Minikube).
    pub profile: String,
    /// `--namespace`.
    pub namespace: String,
    /// `--port` (Docker).
    pub port: u16,
    /// `--context` (kube).
    pub context: Option<String>,
    /// `--allow-context` (kube).
    pub allow_context: Option<String>,
    /// `--registry`: images are pushed there and deployed by digest, and it is the build cache.
    pub registry: Option<Arc<Registry>>,
    /// `--builder`: the builder container the binaries are compiled in.
    pub builder: String,
}

/// A resolved deployment target.
#[derive(Debug)]
pub enum Target {
    /// A Minikube profile and the namespace the app goes into.
    Minikube(MinikubeTarget),
    /// Containers on the local Docker daemon.
    Docker(DockerTarget),
    /// A kube context the user named, and the namespace the app goes into.
    Kube(KubeTarget),
}

impl crate::engine::Target for Target {
    fn name(&self) -> &'static str {
        match self {
            Target::Minikube(_) => minikube::NAME,
            Target::Docker(_) => docker::NAME,
            Target::Kube(_) => kube::NAME,
        }
    }

    fn id(&self) -> String {
        match self {
            Target::Minikube(m) => m.id(),
            Target::Docker(d) => d.id(),
            Target::Kube(k) => k.id(),
        }
    }

    fn settle(&self, sh: &Shell, succeeded: bool) -> anyhow::Result<Vec<String>> {
        self.deployment().settle(sh, succeeded)
    }
}

/// How this host reaches the app's frontend, as the smoke test found it (recorded in its
/// outputs, so `deploy` reads it back instead of searching outputs for something URL-like).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Directly at this URL.
    Url(String),
    /// Only through this command (a `kubectl port-forward`).
    PortForward(String),
}

const ACCESS_URL: &str = "url";
const ACCESS_FORWARD: &str = "port-forward";

impl Access {
    /// The outputs that record it.
    pub fn to_outputs(&self) -> BTreeMap<String, String> {
        match self {
            Access::Url(url) => BTreeMap::from([(ACCESS_URL.to_owned(), url.clone())]),
            Access::PortForward(cmd) => BTreeMap::from([(ACCESS_FORWARD.to_owned(), cmd.clone())]),
        }
    }

    /// Read back from [`Access::to_outputs`].
    pub fn from_outputs(outputs: &BTreeMap<String, String>) -> Option<Access> {
        outputs
            .get(ACCESS_URL)
            .map(|u| Access::Url(u.clone()))
            .or_else(|| {
                outputs
                    .get(ACCESS_FORWARD)
                    .map(|c| Access::PortForward(c.clone()))
            })
    }
}

/// The live frontend as the smoke test talks to it.
#[derive(Debug)]
pub struct Frontend {
    /// What the checks talk to.
    pub endpoints: Endpoints,
    /// How a user on this host reaches it.
    pub access: Access,
    /// The port-forward the checks go through, if any; stopped when dropped.
    pub forward: Option<PortForward>,
}

impl Target {
    /// Resolve `--target`: `auto` is Minikube when `minikube` is on the Shell's PATH, else
    /// Docker (said in one line). A Minikube profile must be running; `kube` needs `--context`
    /// and a context the safety rule lets through ([`KubeTarget::resolve`]).
    pub fn resolve(sh: &Shell, opts: &Options) -> anyhow::Result<Target> {
        if opts.target == Choice::Kube {
            return Ok(Target::Kube(KubeTarget::resolve(sh, opts)?));
        }
        check_context_flags(opts)?;
        let minikube = opts.target == Choice::Minikube
            || (opts.target == Choice::Auto
                && {
                    let found = find_program(sh, "minikube").is_some();
                    if !found {
                        eprintln!(
                            "note: minikube not found on PATH, using the Docker target \
                         (install minikube from https://minikube.sigs.k8s.io/docs/start/ to deploy to Kubernetes)"
                        );
                    }
                    found
                });
        if minikube {
            crate::tools::minikube::ensure_running(sh, &opts.profile)?;
            Ok(Target::Minikube(MinikubeTarget {
                profile: opts.profile.clone(),
                namespace: opts.namespace.clone(),
                docker_env: Mutex::new(None),
                registry: opts.registry.clone(),
                builder: opts.builder.clone(),
                upgrades: release::Upgrades::default(),
            }))
        } else {
            Ok(Target::Docker(DockerTarget {
                namespace: opts.namespace.clone(),
                port: opts.port,
                registry: opts.registry.clone(),
                builder: opts.builder.clone(),
            }))
        }
    }

    /// The options that resolve to this target again.
    pub fn options(&self) -> Options {
        match self {
            Target::Minikube(m) => Options {
                target: Choice::Minikube,
                profile: m.profile.clone(),
                namespace: m.namespace.clone(),
                port: 0,
                context: None,
                allow_context: None,
                registry: m.registry.clone(),
                builder: m.builder.clone(),
            },
            Target::Docker(d) => Options {
                target: Choice::Docker,
                profile: String::new(),
                namespace: d.namespace.clone(),
                port: d.port,
                context: None,
                allow_context: None,
                registry: d.registry.clone(),
                builder: d.builder.clone(),
            },
            Target::Kube(k) => Options {
                target: Choice::Kube,
                profile: String::new(),
                namespace: k.namespace.clone(),
                port: 0,
                context: Some(k.context.clone()),
                allow_context: (k.allowed == kube::Allowed::Flag).then(|| k.context.clone()),
                registry: k.registry.clone(),
                builder: k.builder.clone(),
            },
        }
    }

    /// The Docker target, for what only runs there (its kinds are declared for it alone).
    pub fn docker(&self) -> anyhow::Result<&DockerTarget> {
        match self {
            Target::Docker(d) => Ok(d),
            Target::Minikube(_) | Target::Kube(_) => anyhow::bail!(
                "this runs on the Docker target only; limit the task with `targets = [\"docker\"]`"
            ),
        }
    }

    /// The Kubernetes identity every cluster call is scoped to.
    pub fn kube(&self) -> anyhow::Result<Kube> {
        match self {
            Target::Minikube(m) => Ok(m.kube()),
            Target::Kube(k) => Ok(k.kube()),
            Target::Docker(_) => anyhow::bail!(
                "the Docker target has no Kubernetes cluster; limit the task with `targets = [\"minikube\", \"kube\"]`"
            ),
        }
    }

    /// Where a cluster target keeps the releases the current run rolled out, for
    /// [`Deployment::settle`] to roll them back if the run fails.
    pub fn upgrades(&self) -> anyhow::Result<&release::Upgrades> {
        match self {
            Target::Minikube(m) => Ok(&m.upgrades),
            Target::Kube(k) => Ok(&k.upgrades),
            Target::Docker(_) => anyhow::bail!(
                "the Docker target has no Helm releases; limit the task with `targets = [\"minikube\", \"kube\"]`"
            ),
        }
    }

    /// The registry images go through (`--registry`), if any: every target pushes there and
    /// deploys by digest.
    pub fn registry(&self) -> Option<&Registry> {
        match self {
            Target::Minikube(m) => m.registry.as_deref(),
            Target::Docker(d) => d.registry.as_deref(),
            Target::Kube(k) => k.registry.as_deref(),
        }
    }

    /// What every target does, as this one does it.
    pub fn deployment(&self) -> &dyn Deployment {
        match self {
            Target::Docker(d) => d,
            Target::Minikube(m) => m,
            Target::Kube(k) => k,
        }
    }
}

/// `--context` and `--allow-context` belong to the kube target: given to another one, they would
/// be silently ignored while the deployment goes elsewhere, so they are refused.
pub fn check_context_flags(opts: &Options) -> anyhow::Result<()> {
    if opts.target == Choice::Kube {
        return Ok(());
    }
    if let Some((flag, name)) = [
        ("--context", &opts.context),
        ("--allow-context", &opts.allow_context),
    ]
    .into_iter()
    .find_map(|(f, v)| v.as_ref().map(|n| (f, n)))
    {
        return Err(crate::error::Error::Usage {
            message: format!(
                "`{flag} {name}` is for the kube target, but the target is `{}`",
                opts.target.name().unwrap_or("auto")
            ),
            fix: format!("add `--target kube` to deploy to context `{name}`, or drop `{flag}`"),
        }
        .into());
    }
    Ok(())
}

/// What a deployment on a target is, as kinds and commands use it: each target module
/// implements it once.
pub trait Deployment: Send + Sync {
    /// The Docker daemon the target's binaries and images are built in: the child environment
    /// that reaches it (empty for the local daemon, Minikube's docker-env for its Docker runtime).
    fn image_daemon(&self, sh: &Shell) -> anyhow::Result<ChildEnv>;
    /// The prefix of the deployment's Docker objects' names (`<namespace>-<target>`): it names
    /// its binaries' directory in the builder too.
    fn object_prefix(&self) -> String;
    /// `--builder`: the builder container its binaries are compiled in.
    fn builder_name(&self) -> &str;
    /// Finds the live frontend (starting a port-forward when the target needs one).
    fn frontend(&self, sh: &Shell, log: &dyn Fn(&str)) -> anyhow::Result<Frontend>;
    /// What identifies the live deployment the smoke test checked (Docker: container IDs);
    /// a different answer later means the smoke test's result no longer holds.
    fn live(&self, sh: &Shell) -> anyhow::Result<BTreeMap<String, String>>;
    /// The fix named when the smoke test cannot connect to the app.
    fn unreachable_fix(&self) -> String;
    /// Tears down what the pipeline created for `declared`, one line per step, keeping the
    /// database's storage unless `data` says to delete it. Idempotent.
    fn teardown(&self, sh: &Shell, declared: &Declared, data: Data) -> anyhow::Result<Vec<String>>;
    /// Removes the images of `repositories` that the pipeline built for this target, one line
    /// each.
    fn remove_images(&self, sh: &Shell, repositories: &[String]) -> anyhow::Result<Vec<String>>;
    /// Removes the builder and its volumes (its registry, compiled target directory and
    /// sources) from the target's daemon; the line saying so.
    fn remove_builder(&self, sh: &Shell) -> anyhow::Result<String>;
    /// After a run, under the target's lock ([`crate::engine::Target::settle`]): what was
    /// replaced goes after a good run, and is put back after a failed one; one line each.
    fn settle(&self, sh: &Shell, succeeded: bool) -> anyhow::Result<Vec<String>>;
    /// What is live, one line each (objects, pods, the URL).
    fn status(&self, sh: &Shell, declared: &Declared) -> anyhow::Result<Vec<String>>;
    /// Streams the app's own logs as `request` asks to `out`, until they end or, following
    /// them, until `cancel` is set; fails, saying how to deploy, when nothing is deployed.
    fn logs(
        &self,
        sh: &Shell,
        declared: &Declared,
        request: &logs::Request,
        cancel: &AtomicBool,
        out: logs::Lines<'_>,
    ) -> anyhow::Result<()>;
}

/// What a teardown does with the database's storage (Docker: the volume; Kubernetes: the
/// PersistentVolumeClaims): kept unless the user plainly asks (`down --volumes`), like
/// `docker compose down`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Data {
    /// Keep it, and say where it is: the next deploy finds every user and task again.
    Keep,
    /// Delete it: the next deploy starts with an empty database.
    Delete,
}

/// The line naming storage a teardown kept, and how to delete it.
fn kept_line(what: &str, names: &[String]) -> String {
    format!(
        "{what} kept (the database: every user and task; `cargo xtask down --volumes` deletes it): {}",
        names.join(", ")
    )
}

/// What the pipeline declares that a target's teardown and status need to know.
#[derive(Debug, Clone, Default)]
pub struct Declared {
    /// Helm releases, with the Secret each one reads.
    pub releases: Vec<Release>,
}

/// One Helm release the pipeline installs.
#[derive(Debug, Clone)]
pub struct Release {
    /// The release's name.
    pub name: String,
    /// The Secret the pipeline creates for it.
    pub secret: String,
}

//! The `kube` target: any kube context the user names with `--context`, the app installed as
//! the same Helm release as on Minikube. Every kubectl and helm call names that context; the
//! current context is never read, let alone used.
//!
//! Safety first: without `--context` nothing is deployed (the error lists the kubeconfig's
//! contexts), and a context whose cluster does not look like a local development cluster
//! ([`super::product`], Tilt's rule) is refused unless this run allows it by name
//! (`--allow-context NAME`) or the project does (`allow-contexts` in [`super::settings::FILE`]).
//!
//! Images are built in the local Docker daemon; how they reach the nodes depends on the cluster
//! ([`Delivery`]): loaded into kind and k3d nodes (the `image-load` task kind), seen directly by
//! Docker Desktop and Rancher Desktop (dockerd runtime), and for any other cluster pushed to a
//! registry, which this target does not do yet: it says so before anything is built.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use anyhow::{Result, bail};
use sha2::{Digest as _, Sha256};
use xshell::Shell;

use super::logs::{Lines, Request};
use super::product::{self, Product};
use super::release::{self, FrontendAccess};
use super::{Data, Declared, Deployment, Frontend, Options, settings};
use crate::builder::{Builder, Site};
use crate::error::Error;
use crate::image_registry::Registry;
use crate::tools::ChildEnv;
use crate::tools::kubectl::{self, ContextInfo, Kube};

/// The target's name in `targets = [...]`.
pub const NAME: &str = "kube";

/// Why the pipeline may deploy to the context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allowed {
    /// Its cluster looks like a local development cluster of this product.
    Local(Product),
    /// `allow-contexts` in `xtask/targets.toml` lists it.
    Setting,
    /// `--allow-context` names it.
    Flag,
}

/// How images built in the local Docker daemon reach the cluster's nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// `kind load docker-image --name CLUSTER` into the nodes that lack them.
    Kind {
        /// kind's cluster name.
        cluster: String,
    },
    /// `k3d image import --cluster CLUSTER` into the nodes that lack them.
    K3d {
        /// k3d's cluster name.
        cluster: String,
    },
    /// The nodes run on this Docker daemon (Docker Desktop, Rancher Desktop with dockerd): they
    /// see its images as they are built.
    SharedDaemon,
    /// `--registry`: the images are pushed there and the nodes pull them by digest.
    Registry {
        /// The registry's address, `HOST[:PORT]/PATH`.
        address: String,
    },
}

/// A kube context and the namespace the app goes into.
#[derive(Debug)]
pub struct KubeTarget {
    /// `--context`.
    pub context: String,
    /// Kubernetes namespace.
    pub namespace: String,
    /// The kubeconfig cluster entry the context points at, with its server.
    pub cluster: ContextInfo,
    /// What the cluster looks like.
    pub product: Product,
    /// Why it may be deployed to.
    pub allowed: Allowed,
    /// `--registry`: images are pushed there and the release pulls them by digest.
    pub registry: Option<Arc<Registry>>,
    /// `--builder`.
    pub builder: String,
    /// The answer of [`KubeTarget::delivery`], asked once per run.
    delivery: Mutex<Option<Delivery>>,
    /// The releases the current run rolled out, until it settles.
    pub(super) upgrades: release::Upgrades,
}

/// Whether `name` is a DNS-1123 label, as a namespace must be.
fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// `a, b, c`, or a note that there is none.
fn listed(contexts: &[String]) -> String {
    if contexts.is_empty() {
        "your kubeconfig has no context (`kubectl config get-contexts -o name` lists none)"
            .to_owned()
    } else {
        format!(
            "the contexts of your kubeconfig (`kubectl config get-contexts -o name`): {}",
            contexts.join(", ")
        )
    }
}

impl KubeTarget {
    /// Resolves `--context` (required), checks that the pipeline may deploy there, and reads
    /// what the kubeconfig says of its cluster.
    pub fn resolve(sh: &Shell, opts: &Options) -> Result<KubeTarget> {
        let Some(context) = opts.context.clone() else {
            let contexts = kubectl::context_names(sh)?;
            return Err(Error::Usage {
                message: "`--target kube` needs `--context NAME`: the pipeline deploys only to a \
                          context you name, never to the current one"
                    .to_owned(),
                fix: format!("add `--context NAME`; {}", listed(&contexts)),
            }
            .into());
        };
        if let Some(other) = opts.allow_context.as_deref()
            && other != context
        {
            return Err(Error::Usage {
                message: format!(
                    "`--allow-context {other}` does not name the context deployed to, `{context}`"
                ),
                fix: format!(
                    "name the same context in both (`--context {context} --allow-context {context}`)"
                ),
            }
            .into());
        }
        if !is_dns_label(&opts.namespace) {
            return Err(Error::Usage {
                message: format!("`{}` is not a Kubernetes namespace name", opts.namespace),
                fix: "use `--namespace` with lowercase letters, digits and `-` (at most 63)"
                    .to_owned(),
            }
            .into());
        }
        let view = kubectl::config_view(sh)?;
        let Some(cluster) = view.iter().find(|c| c.name == context).cloned() else {
            let names: Vec<String> = view.iter().map(|c| c.name.clone()).collect();
            return Err(Error::Usage {
                message: format!("context `{context}` is not in your kubeconfig"),
                fix: format!("pass one of them to `--context`; {}", listed(&names)),
            }
            .into());
        };
        let home = sh.var_os("HOME").map(std::path::PathBuf::from);
        let product = product::product(
            &cluster.cluster,
            cluster.certificate_authority.as_deref(),
            home.as_deref(),
        );
        // Read (and so checked) whatever the context: a broken file is an error at once.
        let settings = settings::load(&sh.current_dir())?;
        let allowed = if product.is_local() {
            Allowed::Local(product)
        } else if opts.allow_context.as_deref() == Some(context.as_str()) {
            Allowed::Flag
        } else if settings.allow_contexts.contains(&context) {
            Allowed::Setting
        } else {
            return Err(Error::Usage {
                message: format!(
                    "refusing to deploy to context `{context}`: its cluster `{}` (server {}) does \
                     not look like a local development cluster (minikube, kind-*, k3d-*, \
                     docker-desktop, rancher-desktop, ...), so it may be a shared or production one",
                    cluster.cluster,
                    if cluster.server.is_empty() { "unknown" } else { &cluster.server },
                ),
                fix: format!(
                    "if you mean it, allow it for this run with `--allow-context {context}`, or for \
                     this project in `{}`: `[kube]` `allow-contexts = [\"{context}\"]`",
                    settings::FILE
                ),
            }
            .into());
        };
        Ok(KubeTarget {
            context,
            namespace: opts.namespace.clone(),
            cluster,
            product,
            allowed,
            registry: opts.registry.clone(),
            builder: opts.builder.clone(),
            delivery: Mutex::new(None),
            upgrades: Default::default(),
        })
    }

    /// Stable identity for the state directory: the context and the namespace, so two contexts
    /// (or two namespaces) never share recorded results, a lock or generated secrets. A context
    /// name with characters a file name should not hold (`arn:aws:eks:...:cluster/x`) is
    /// spelled safely and told apart by a digest of the exact name.
    pub fn id(&self) -> String {
        state_id(&self.context, &self.namespace)
    }

    /// The kube identity every call is scoped to.
    pub fn kube(&self) -> Kube {
        Kube {
            context: self.context.clone(),
            namespace: self.namespace.clone(),
        }
    }

    /// The builder on the local daemon, where this target's images are built.
    fn builder<'a>(&self, sh: &'a Shell) -> Builder<'a> {
        Builder::new(
            sh,
            &Site {
                env: ChildEnv::new(),
                builder: self.builder.clone(),
                prefix: self.object_prefix(),
            },
        )
    }

    /// The target options as the user would type them.
    pub fn flags(&self) -> String {
        let allow = if self.allowed == Allowed::Flag {
            format!(" --allow-context {}", self.context)
        } else {
            String::new()
        };
        format!("--target kube --context {}{allow}", self.context)
    }

    /// How images reach the nodes, or why they cannot yet (a cluster that only pulls from a
    /// registry). Asked once per run.
    pub fn delivery(&self, sh: &Shell) -> Result<Delivery> {
        if let Some(d) = self.delivery.lock().ok().and_then(|d| d.clone()) {
            return Ok(d);
        }
        let d = self.find_delivery(sh)?;
        if let Ok(mut cached) = self.delivery.lock() {
            *cached = Some(d.clone());
        }
        Ok(d)
    }

    fn find_delivery(&self, sh: &Shell) -> Result<Delivery> {
        let name = &self.cluster.cluster;
        if let Some(registry) = &self.registry
            && self.product != Product::Minikube
        {
            return Ok(Delivery::Registry {
                address: registry.address.to_string(),
            });
        }
        match self.product {
            Product::Kind => Ok(Delivery::Kind {
                cluster: product::kind_cluster_name(name).to_owned(),
            }),
            Product::K3d => Ok(Delivery::K3d {
                cluster: product::k3d_cluster_name(name).to_owned(),
            }),
            Product::DockerDesktop | Product::RancherDesktop => {
                // Their nodes see this daemon's images only with the dockerd runtime (Rancher
                // Desktop's `moby`; Docker Desktop's kubeadm cluster); with containerd (Rancher
                // Desktop's default, Docker Desktop's kind-based cluster) they do not.
                let nodes = self.kube().nodes(sh)?;
                let other: Vec<String> = nodes
                    .iter()
                    .filter(|n| !n.runtime.starts_with("docker://"))
                    .map(|n| format!("{} runs {}", n.name, n.runtime))
                    .collect();
                if !nodes.is_empty() && other.is_empty() {
                    return Ok(Delivery::SharedDaemon);
                }
                bail!(self.needs_registry(&format!(
                    "its nodes do not use this machine's Docker daemon ({})",
                    if other.is_empty() {
                        "the cluster lists no node".to_owned()
                    } else {
                        other.join(", ")
                    }
                )))
            }
            Product::Minikube => bail!(
                "context `{}` is a Minikube cluster: deploy to it with the Minikube target, which \
                 builds in the profile's own daemon\nfix: `--target minikube --profile {name}`",
                self.context
            ),
            _ => {
                bail!(self.needs_registry("the pipeline loads images only into kind and k3d nodes"))
            }
        }
    }

    /// The error for a cluster whose nodes can only pull the images from a registry.
    fn needs_registry(&self, why: &str) -> String {
        format!(
            "the nodes of context `{}` (cluster `{}`, a {} cluster) cannot see the images built \
             in this machine's Docker daemon: {why}\nfix: push them to a registry the cluster \
             pulls from, with `--registry HOST[:PORT]/PATH`",
            self.context,
            self.cluster.cluster,
            self.product.name()
        )
    }

    /// How this host reaches the release's frontend Service: at a node's InternalIP and the
    /// NodePort when one answers (kind and k3d nodes on Linux do), else through a port-forward
    /// (a ClusterIP Service, nodes in a VM, Docker Desktop).
    pub fn frontend_access(&self, sh: &Shell, probe: bool) -> Result<FrontendAccess> {
        let kube = self.kube();
        let missing = || {
            format!(
                "no frontend Service in namespace `{}` of context `{}`; is the release deployed \
                 (`cargo xtask deploy {}`)?",
                self.namespace,
                self.context,
                self.flags()
            )
        };
        release::frontend_access(sh, &kube, probe, missing, || {
            let ips: Vec<std::net::IpAddr> = kube
                .nodes(sh)?
                .into_iter()
                .filter_map(|n| n.internal_ip)
                .collect();
            Ok(ips
                .first()
                .copied()
                .ok_or_else(|| "no node has an InternalIP".to_owned()))
        })
    }
}

/// The state directory's name of `context` and `namespace` (see [`KubeTarget::id`]).
pub fn state_id(context: &str, namespace: &str) -> String {
    let plain = context
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    let safe = if plain {
        context.to_owned()
    } else {
        let spelled: String = context
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let digest = hex::encode(Sha256::digest(context.as_bytes()));
        format!("{spelled}_{}", &digest[..8])
    };
    // A namespace has no `.`, a spelled context neither: the dot keeps `a-b`+`c` from `a`+`b-c`.
    format!("{NAME}-{safe}.{namespace}")
}

impl Deployment for KubeTarget {
    /// The local daemon, once it is known that the images can reach the nodes from there.
    fn image_daemon(&self, sh: &Shell) -> Result<ChildEnv> {
        self.delivery(sh)?;
        Ok(ChildEnv::new())
    }

    /// The state directory's name: unique per context and namespace, so two of them never
    /// sync sources into one builder at once (each holds only its own lock).
    fn object_prefix(&self) -> String {
        self.id()
    }

    fn builder_name(&self) -> &str {
        &self.builder
    }

    fn frontend(&self, sh: &Shell, log: &dyn Fn(&str)) -> Result<Frontend> {
        self.frontend_access(sh, true)?.open(sh, &self.kube(), log)
    }

    fn live(&self, _sh: &Shell) -> Result<BTreeMap<String, String>> {
        // The release's revision reaches the smoke test's key through the release's key.
        Ok(BTreeMap::new())
    }

    fn unreachable_fix(&self) -> String {
        format!(
            "run `cargo xtask status {}`, or forward the frontend with `{}`",
            self.flags(),
            self.kube().port_forward_command("todo-app-frontend", 3000)
        )
    }

    fn teardown(&self, sh: &Shell, declared: &Declared, data: Data) -> Result<Vec<String>> {
        let mut done = release::teardown_all(sh, &self.kube(), declared, data)?;
        done.extend(self.builder(sh).leave()?);
        Ok(done)
    }

    /// The images in the local daemon; nodes keep what was loaded into them until their
    /// cluster goes (kind and k3d have no command that removes one image
    /// from every node).
    fn remove_images(&self, sh: &Shell, repositories: &[String]) -> Result<Vec<String>> {
        let line = super::docker::remove_images(sh, &ChildEnv::new(), repositories)?;
        let images = match self.product {
            Product::Kind | Product::K3d => format!(
                "{line} (from this machine's daemon; the cluster's nodes keep their copies)"
            ),
            _ => line,
        };
        Ok(vec![images])
    }

    /// Helm puts back the last release itself when a rollout fails (`--rollback-on-failure`);
    /// one that rolled out in a run that then failed is rolled back here.
    fn settle(&self, sh: &Shell, succeeded: bool) -> Result<Vec<String>> {
        self.upgrades.settle(sh, &self.kube(), succeeded)
    }

    fn remove_builder(&self, sh: &Shell) -> Result<String> {
        self.builder(sh).remove_all()
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
            &self.flags(),
        )
    }

    fn status(&self, sh: &Shell, declared: &Declared) -> Result<Vec<String>> {
        let mut lines = release::status_lines(sh, &self.kube(), declared)?;
        lines.push(FrontendAccess::status_line(
            self.frontend_access(sh, false),
            &self.kube(),
        ));
        Ok(lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_contexts_or_namespaces_never_share_a_state_directory() {
        assert_eq!(state_id("kind-dev", "todo-app"), "kube-kind-dev.todo-app");
        assert_ne!(state_id("kind-a", "todo"), state_id("kind-b", "todo"));
        assert_ne!(state_id("a-b", "c"), state_id("a", "b-c"));
        let eks = state_id("arn:aws:eks:eu-west-1:1:cluster/x", "todo");
        assert!(
            eks.starts_with("kube-arn_aws_eks_eu-west-1_1_cluster_x_"),
            "{eks}"
        );
        assert!(!eks.contains('/') && !eks.contains(':'), "{eks}");
        // Spelled alike, told apart by the digest.
        assert_ne!(state_id("a/b", "n"), state_id("a:b", "n"));
    }

    #[test]
    fn namespaces_must_be_labels() {
        assert!(is_dns_label("todo-app"));
        assert!(!is_dns_label("Todo"));
        assert!(!is_dns_label("a.b"));
        assert!(!is_dns_label("-a"));
        assert!(!is_dns_label(""));
    }
}

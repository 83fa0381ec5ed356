//! `kind = "image-load"`: put the images built in the local Docker daemon where the kube
//! target's nodes, or a Minikube profile's, find them.
//!
//! ```toml
//! [tasks.load-images]
//! kind = "image-load"
//! targets = ["minikube", "kube"]
//! images = { backend = "backend-image", frontend = "frontend-image" }   # name -> image task
//! ```
//! How depends on the cluster ([`Delivery`]): kind nodes get `kind load docker-image IMAGE
//! --name CLUSTER`, k3d nodes `k3d image import IMAGE --cluster CLUSTER`, and only when a node
//! lacks the image's ID (asked of its containerd with `crictl inspecti`), so a re-run after a
//! no-op rebuild, or a node that already has it, costs a few `docker exec`s instead of a
//! `docker save` of the whole image. Docker Desktop and Rancher Desktop (dockerd) see the
//! daemon's images as they are: nothing to do. Any other cluster needs a registry: the target
//! says so before anything is built.
//!
//! On Minikube ([`Route`]): a profile on the Docker runtime built the images in its own daemon,
//! which its node uses: nothing to do. On another runtime (containerd, CRI-O) they were built in
//! the local daemon and go in with `minikube -p PROFILE image load --daemon --overwrite IMAGE`,
//! only when the profile does not already list the image's ID under its tag
//! (`minikube image ls --format json`), and the load is confirmed the same way afterwards:
//! minikube's own trackers show loads that exit 0 and keep the old image or none
//! (kubernetes/minikube#11276, #16032, #23023), so a load the profile does not show is an error.
//! `image ls` rather than `minikube ssh -- sudo crictl inspecti` per node: one call covers
//! every running node (their lists merged by ID, so a node still holding another image under
//! the tag shows as a second ID), through minikube's own runtime-neutral listing.
//!
//! The key covers the image tasks' keys (so their tags) and where the images go; the outputs
//! record each image's ID, and the freshness check asks the daemon that the tag still names that
//! ID and every node that it holds it: a re-created cluster, or an image rebuilt under the same
//! tag, loads again.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result, bail};
use xshell::cmd;

use super::{
    BoxTask, CheckCx, Diagnostic, KeyCx, LoadCx, Outputs, RunCx, Settings, Task, TaskKind,
};
use crate::target::Target;
use crate::target::kube::Delivery;
use crate::tools::crictl::{self, NodeImage};
use crate::tools::docker::Docker;
use crate::tools::{k3d, kind, minikube};

/// The `image-load` kind.
#[derive(Debug)]
pub struct ImageLoadKind;

/// One load task's settings.
#[derive(Debug, Clone)]
pub struct ImageLoad {
    /// Name → image task whose `image` output is `repo:tag`.
    pub images: BTreeMap<String, String>,
}

impl TaskKind<Target> for ImageLoadKind {
    fn name(&self) -> &'static str {
        "image-load"
    }

    fn targets(&self) -> Option<&'static [&'static str]> {
        Some(&[crate::target::minikube::NAME, crate::target::kube::NAME])
    }

    fn parse(&self, s: &mut Settings, _cx: &LoadCx<'_>) -> Result<BoxTask, Diagnostic> {
        let images = s.get_task_table("images")?.unwrap_or_default();
        if images.is_empty() {
            return Err(s.error(
                "images",
                "an image-load task needs the image tasks whose images it loads",
                "add `images = { backend = \"backend-image\" }`",
            ));
        }
        Ok(Box::new(ImageLoad { images }))
    }
}

/// How this run's images reach the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    /// A kube context's [`Delivery`], or a Minikube profile's (its context) with `--registry`.
    Kube {
        /// The context.
        context: String,
        /// How its nodes get the images.
        delivery: Delivery,
    },
    /// A Minikube profile on the Docker runtime: the images were built in its daemon.
    ProfileDaemon {
        /// `minikube -p`.
        profile: String,
    },
    /// A Minikube profile on another runtime: `minikube image load`, confirmed by ID.
    MinikubeLoad {
        /// `minikube -p`.
        profile: String,
    },
}

fn route(target: &Target, sh: &xshell::Shell) -> Result<Route> {
    match target {
        Target::Kube(k) => Ok(Route::Kube {
            context: k.context.clone(),
            delivery: k.delivery(sh)?,
        }),
        // As on kube: with `--registry` the nodes pull the images by digest.
        Target::Minikube(m) if let Some(registry) = &m.registry => Ok(Route::Kube {
            context: m.profile.clone(),
            delivery: Delivery::Registry {
                address: registry.address.to_string(),
            },
        }),
        Target::Minikube(m) if m.docker_runtime(sh)? => Ok(Route::ProfileDaemon {
            profile: m.profile.clone(),
        }),
        Target::Minikube(m) => Ok(Route::MinikubeLoad {
            profile: m.profile.clone(),
        }),
        _ => bail!(
            "image-load runs on the minikube and kube targets only; limit it with \
             `targets = [\"minikube\", \"kube\"]`"
        ),
    }
}

impl Route {
    /// Where images go, as key material: another cluster is another load.
    fn destination(&self) -> String {
        match self {
            Route::Kube { context, delivery } => match delivery {
                Delivery::Kind { cluster } => format!("kind:{cluster}"),
                Delivery::K3d { cluster } => format!("k3d:{cluster}"),
                Delivery::SharedDaemon => format!("shared-daemon:{context}"),
                Delivery::Registry { address } => format!("registry:{address}"),
            },
            Route::ProfileDaemon { profile } => format!("minikube-daemon:{profile}"),
            Route::MinikubeLoad { profile } => format!("minikube-load:{profile}"),
        }
    }

    /// The kube context (a Minikube profile's is its name).
    fn context(&self) -> &str {
        match self {
            Route::Kube { context, .. } => context,
            Route::ProfileDaemon { profile } | Route::MinikubeLoad { profile } => profile,
        }
    }
}

/// What a Minikube profile lists under `tag` (`no image`, `ID …`) when that is not `id` alone;
/// `None` when it holds exactly that image.
fn profile_lacks(listed: &[minikube::ListedImage], tag: &str, id: &str) -> Option<String> {
    let held = minikube::ids_of(listed, tag);
    match held.as_slice() {
        [one] if one == minikube::bare_id(id) => None,
        [] => Some("no image".to_owned()),
        other => Some(format!("ID {}", other.join(" and "))),
    }
}

/// The node containers of the cluster, for the loaders that have them.
fn nodes(sh: &xshell::Shell, route: &Route) -> Result<Vec<String>> {
    let Route::Kube { delivery, .. } = route else {
        return Ok(Vec::new());
    };
    let (nodes, cluster, list) = match delivery {
        Delivery::Kind { cluster } => (kind::nodes(sh, cluster)?, cluster, "kind get clusters"),
        Delivery::K3d { cluster } => (k3d::nodes(sh, cluster)?, cluster, "k3d cluster list"),
        Delivery::SharedDaemon | Delivery::Registry { .. } => return Ok(Vec::new()),
    };
    if nodes.is_empty() {
        bail!(
            "cluster `{cluster}` has no node container on this machine's Docker daemon; is it \
             running (`{list}`)?"
        );
    }
    Ok(nodes)
}

/// The nodes that do not hold `id` under `tag`, with what they hold instead.
fn lacking(
    sh: &xshell::Shell,
    nodes: &[String],
    tag: &str,
    id: &str,
) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for node in nodes {
        match crictl::image(sh, node, tag)? {
            NodeImage::Id(held) if held == id => {}
            NodeImage::Id(held) => out.push((node.clone(), format!("holds {held}"))),
            // crictl's own line for an absent tag adds nothing but noise; anything else may.
            NodeImage::Absent(why) if why.contains("no such image") => {
                out.push((node.clone(), "not present".to_owned()));
            }
            NodeImage::Absent(why) => out.push((node.clone(), why)),
        }
    }
    Ok(out)
}

impl Task<Target> for ImageLoad {
    fn key_material(&self, cx: &KeyCx<'_>) -> Result<BTreeMap<String, String>> {
        let route = route(cx.target, cx.sh)?;
        Ok(BTreeMap::from([
            ("destination".to_owned(), route.destination()),
            ("kube-context".to_owned(), route.context().to_owned()),
        ]))
    }

    fn output_exists(&self, cx: &CheckCx<'_>) -> Result<bool> {
        let route = route(cx.target, cx.sh)?;
        if let Route::Kube {
            delivery: Delivery::Registry { .. },
            ..
        } = route
        {
            // The nodes pull by digest, which the image tasks' keys already pin.
            return Ok(true);
        }
        let docker = Docker::new(cx.sh, cx.target.deployment().image_daemon(cx.sh)?);
        let nodes = nodes(cx.sh, &route)?;
        let listed = match &route {
            Route::MinikubeLoad { profile } => minikube::images(cx.sh, profile)?,
            _ => Vec::new(),
        };
        for name in self.images.keys() {
            let (Some(tag), Some(id)) = (
                cx.outputs.get(&format!("{name}.image")),
                cx.outputs.get(&format!("{name}.image_id")),
            ) else {
                return Ok(false);
            };
            if docker.image_id(tag)?.as_deref() != Some(id.as_str())
                || !lacking(cx.sh, &nodes, tag, id)?.is_empty()
            {
                return Ok(false);
            }
            if let Route::MinikubeLoad { .. } = route
                && profile_lacks(&listed, tag, id).is_some()
            {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn run(&self, cx: &RunCx<'_>) -> Result<Outputs> {
        let route = route(cx.target, cx.sh)?;
        let docker = Docker::new(cx.sh, cx.target.deployment().image_daemon(cx.sh)?);
        let nodes = nodes(cx.sh, &route)?;
        let mut outputs = Outputs::new();
        for (name, task) in &self.images {
            let tag = cx.dep_output(task, "image")?.to_owned();
            outputs.insert(format!("{name}.image"), tag.clone());
            // Not asked on the registry route: the image may never have been in this daemon.
            let local_id = || {
                docker.image_id(&tag)?.with_context(|| {
                    format!(
                        "image {tag} of task `{task}` is not in the Docker daemon it was built in"
                    )
                })
            };
            // Into kind or k3d nodes with `program` and its `args`.
            let load_with = |program: &str, args: Vec<String>| -> Result<String> {
                let id = local_id()?;
                let argv: Vec<String> = std::iter::once(program.to_owned()).chain(args).collect();
                load_into_nodes(cx, &nodes, &argv, &tag, &id)?;
                Ok(id)
            };
            let id = match &route {
                Route::Kube {
                    context,
                    delivery: Delivery::Registry { address },
                } => {
                    cx.log(format!(
                        "{tag}: the nodes of `{context}` pull it from {address}: nothing to load"
                    ));
                    continue;
                }
                Route::ProfileDaemon { profile } => {
                    cx.log(format!(
                        "{tag}: built in the Docker daemon of Minikube profile `{profile}`, which \
                         its node uses: nothing to load"
                    ));
                    local_id()?
                }
                Route::MinikubeLoad { profile } => {
                    let id = local_id()?;
                    load_into_profile(cx, profile, &tag, &id)?;
                    id
                }
                Route::Kube {
                    context,
                    delivery: Delivery::SharedDaemon,
                } => {
                    cx.log(format!(
                        "{tag}: the nodes of `{context}` use this Docker daemon: nothing to load"
                    ));
                    local_id()?
                }
                Route::Kube {
                    delivery: Delivery::Kind { cluster },
                    ..
                } => load_with("kind", kind::load_args(&tag, cluster))?,
                Route::Kube {
                    delivery: Delivery::K3d { cluster },
                    ..
                } => load_with("k3d", k3d::import_args(&tag, cluster))?,
            };
            outputs.insert(format!("{name}.image_id"), id);
        }
        if let Route::Kube { .. } = route {
            outputs.insert("nodes".to_owned(), nodes.join(","));
        }
        Ok(outputs)
    }
}

/// Runs the loader `args` unless every node already holds `tag` as image `id`, and confirms
/// that every node holds it afterwards.
fn load_into_nodes(
    cx: &RunCx<'_>,
    nodes: &[String],
    args: &[String],
    tag: &str,
    id: &str,
) -> Result<()> {
    let missing = lacking(cx.sh, nodes, tag, id)?;
    if missing.is_empty() {
        cx.log(format!(
            "{tag} ({id}) already on every node ({}): not loaded",
            nodes.join(", ")
        ));
        return Ok(());
    }
    for (node, why) in &missing {
        cx.log(format!("{tag}: node {node} lacks {id} ({why})"));
    }
    let (program, rest) = args.split_first().context("empty loader argv")?;
    cx.run(cmd!(cx.sh, "{program} {rest...}"))?;
    let still = lacking(cx.sh, nodes, tag, id)?;
    if !still.is_empty() {
        bail!(
            "`{}` succeeded but node(s) {} still lack {id}",
            args.join(" "),
            still
                .iter()
                .map(|(n, why)| format!("{n} ({why})"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

/// Loads `tag` (local image `id`) into Minikube `profile` unless it already lists that ID under
/// the tag, and confirms the load by ID.
fn load_into_profile(cx: &RunCx<'_>, profile: &str, tag: &str, id: &str) -> Result<()> {
    let Some(why) = profile_lacks(&minikube::images(cx.sh, profile)?, tag, id) else {
        cx.log(format!(
            "{tag} ({id}) already in Minikube profile `{profile}`: not loaded"
        ));
        return Ok(());
    };
    cx.log(format!(
        "{tag}: Minikube profile `{profile}` holds {why} under it, not {id}"
    ));
    let args = minikube::load_args(profile, tag);
    let shown = format!("minikube {}", args.join(" "));
    cx.run(cmd!(cx.sh, "minikube {args...}"))?;
    if let Some(held) = profile_lacks(&minikube::images(cx.sh, profile)?, tag, id) {
        bail!(
            "`{shown}` exited 0 but Minikube profile `{profile}` lists {held} under {tag}, \
             not the local image's {id} (kubernetes/minikube#11276); fix: remove it from the \
             profile with `minikube -p {profile} image rm {tag}` and deploy again"
        );
    }
    cx.log(format!(
        "{tag}: loaded; Minikube profile `{profile}` lists {id}"
    ));
    Ok(())
}

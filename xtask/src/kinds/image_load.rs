//! `kind = "image-load"`: put the images built in the local Docker daemon where the kube
//! target's nodes find them.
//!
//! ```toml
//! [tasks.load-images]
//! kind = "image-load"
//! targets = ["kube"]
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
use crate::target::kube::{Delivery, KubeTarget};
use crate::tools::crictl::{self, NodeImage};
use crate::tools::docker::Docker;
use crate::tools::{ChildEnv, k3d, kind};

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
        Some(&[crate::target::kube::NAME])
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

fn kube(target: &Target) -> Result<&KubeTarget> {
    match target {
        Target::Kube(k) => Ok(k),
        _ => bail!("image-load runs on the kube target only; limit it with `targets = [\"kube\"]`"),
    }
}

/// Where images go, as key material: another cluster is another load.
fn destination(k: &KubeTarget, delivery: &Delivery) -> String {
    match delivery {
        Delivery::Kind { cluster } => format!("kind:{cluster}"),
        Delivery::K3d { cluster } => format!("k3d:{cluster}"),
        Delivery::SharedDaemon => format!("shared-daemon:{}", k.context),
        Delivery::Registry { address } => format!("registry:{address}"),
    }
}

/// The node containers of the cluster, for the loaders that have them.
fn nodes(sh: &xshell::Shell, delivery: &Delivery) -> Result<Vec<String>> {
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
        let k = kube(cx.target)?;
        let delivery = k.delivery(cx.sh)?;
        Ok(BTreeMap::from([
            ("destination".to_owned(), destination(k, &delivery)),
            ("kube-context".to_owned(), k.context.clone()),
        ]))
    }

    fn output_exists(&self, cx: &CheckCx<'_>) -> Result<bool> {
        let k = kube(cx.target)?;
        let delivery = k.delivery(cx.sh)?;
        if let Delivery::Registry { .. } = delivery {
            // The nodes pull by digest, which the image tasks' keys already pin.
            return Ok(true);
        }
        let docker = Docker::new(cx.sh, ChildEnv::new());
        let nodes = nodes(cx.sh, &delivery)?;
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
        }
        Ok(true)
    }

    fn run(&self, cx: &RunCx<'_>) -> Result<Outputs> {
        let k = kube(cx.target)?;
        let delivery = k.delivery(cx.sh)?;
        let docker = Docker::new(cx.sh, ChildEnv::new());
        let nodes = nodes(cx.sh, &delivery)?;
        let mut outputs = Outputs::new();
        for (name, task) in &self.images {
            let tag = cx.dep_output(task, "image")?.to_owned();
            if let Delivery::Registry { address } = &delivery {
                cx.log(format!(
                    "{tag}: the nodes of `{}` pull it from {address}: nothing to load",
                    k.context
                ));
                outputs.insert(format!("{name}.image"), tag);
                continue;
            }
            let id = docker.image_id(&tag)?.with_context(|| {
                format!("image {tag} of task `{task}` is not in the local Docker daemon")
            })?;
            outputs.insert(format!("{name}.image"), tag.clone());
            outputs.insert(format!("{name}.image_id"), id.clone());
            let args = match &delivery {
                Delivery::SharedDaemon => {
                    cx.log(format!(
                        "{tag}: the nodes of `{}` use this Docker daemon: nothing to load",
                        k.context
                    ));
                    continue;
                }
                Delivery::Registry { .. } => unreachable!("handled above"),
                Delivery::Kind { cluster } => {
                    let mut a = vec!["kind".to_owned()];
                    a.extend(kind::load_args(&tag, cluster));
                    a
                }
                Delivery::K3d { cluster } => {
                    let mut a = vec!["k3d".to_owned()];
                    a.extend(k3d::import_args(&tag, cluster));
                    a
                }
            };
            let missing = lacking(cx.sh, &nodes, &tag, &id)?;
            if missing.is_empty() {
                cx.log(format!(
                    "{tag} ({id}) already on every node ({}): not loaded",
                    nodes.join(", ")
                ));
                continue;
            }
            for (node, why) in &missing {
                cx.log(format!("{tag}: node {node} lacks {id} ({why})"));
            }
            let (program, rest) = args.split_first().context("empty loader argv")?;
            cx.run(cmd!(cx.sh, "{program} {rest...}"))?;
            let still = lacking(cx.sh, &nodes, &tag, &id)?;
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
        }
        outputs.insert("nodes".to_owned(), nodes.join(","));
        Ok(outputs)
    }
}

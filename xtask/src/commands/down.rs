//! `cargo xtask down`: tear the target's deployment down and forget its recorded state.
//! Docker: our containers, network and volume (found by label); Minikube: the Helm release,
//! our Secret and the namespace if we created it. `--images` also removes our images.
//! Idempotent: on nothing, or twice in a row, it succeeds.

use std::collections::BTreeMap;

use xshell::Shell;

use crate::engine::Session;
use crate::engine::state::{self, Lock};
use crate::kinds::containers::Names;
use crate::kinds::docker_image::IMAGE_LABEL;
use crate::target::Target;
use crate::tools::docker::{Docker, ObjectKind, PART_OF_LABEL, PART_OF_VALUE};

/// Options of `cargo xtask down`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Also remove the images the pipeline built from the target's daemon.
    #[arg(long)]
    pub images: bool,
}

/// Run `cargo xtask down`.
pub fn run(sh: &Shell, session: &Session, args: &Args) -> anyhow::Result<()> {
    let target = session.target(sh)?.clone();
    let dir = session.state_dir(&target);
    let _lock = Lock::acquire(&dir, &target.id(), session.opts.no_wait)?;
    let mut done = Vec::new();
    match &target {
        Target::Docker { .. } => {
            let docker = Docker::new(sh, session.docker_env(sh)?);
            let names = Names::new(session);
            let labels = names.labels();
            for kind in [
                ObjectKind::Container,
                ObjectKind::Network,
                ObjectKind::Volume,
            ] {
                let found = docker.list(kind, &labels)?;
                docker.remove(kind, &found)?;
                done.push(format!("{kind:?}s removed: {}", list_or_none(&found)));
            }
        }
        Target::Minikube { .. } => {
            let kube = crate::kinds::k8s_secret::kube_of(&target)
                .ok_or_else(|| anyhow::anyhow!("no kube identity for target {}", target.id()))?;
            // Every release the pipeline declares (normally one), by its `release` setting.
            let graph = crate::engine::load(session)?;
            let text = std::fs::read_to_string(session.pipeline_file())?;
            let mut releases: Vec<String> = graph
                .tasks_of_kind("helm-release")
                .iter()
                .map(|t| setting_of(&text, t, "release").unwrap_or_else(|| "todo-app".to_owned()))
                .collect();
            if releases.is_empty() {
                releases.push("todo-app".to_owned());
            }
            for release in releases {
                done.extend(crate::kinds::helm_release::teardown(
                    sh,
                    &kube,
                    &release,
                    crate::secrets::SECRET_NAME,
                )?);
            }
        }
    }
    if args.images {
        done.push(remove_images(sh, session, &target)?);
    }
    state::forget(&dir)?;
    done.push(format!(
        "recorded state of target `{}` forgotten",
        target.id()
    ));
    for line in done {
        if session.opts.json {
            println!("{}", serde_json::json!({"event": "down", "done": line}));
        } else {
            println!("{line}");
        }
    }
    Ok(())
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

/// Removes every image carrying our label from the target's daemon (or Minikube's store).
fn remove_images(sh: &Shell, session: &Session, target: &Target) -> anyhow::Result<String> {
    let graph = crate::engine::load(session)?;
    let repos: Vec<String> = graph
        .tasks_of_kind("docker-image")
        .iter()
        .filter_map(|t| {
            let text = std::fs::read_to_string(session.pipeline_file()).ok()?;
            setting_of(&text, t, "image")
        })
        .collect();
    if let Target::Minikube { profile, .. } = target {
        let runtime = crate::tools::minikube::profile_config(sh, profile)?
            .map(|c| c.container_runtime)
            .unwrap_or_default();
        if !(runtime.is_empty() || runtime == "docker") {
            let mut removed = Vec::new();
            for image in crate::tools::minikube::image_ls(sh, profile)? {
                if repos.iter().any(|r| image.starts_with(&format!("{r}:"))) {
                    crate::tools::minikube::image_rm(sh, profile, &image)?;
                    removed.push(image);
                }
            }
            return Ok(format!("images removed: {}", list_or_none(&removed)));
        }
    }
    // Only the repositories this pipeline declares: other checkouts' images of the same
    // repositories go too (they are content-addressed), unless a running container uses them.
    let docker = Docker::new(sh, session.docker_env(sh)?);
    let mut found = Vec::new();
    for repo in &repos {
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

/// The string setting `key` of task `task` in the pipeline text.
fn setting_of(text: &str, task: &str, key: &str) -> Option<String> {
    let doc: toml::Value = toml::from_str(text).ok()?;
    doc.get("tasks")?
        .get(task)?
        .get(key)?
        .as_str()
        .map(str::to_owned)
}

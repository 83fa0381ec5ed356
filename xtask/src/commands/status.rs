//! `cargo xtask status`: what is deployed where. Minikube: release and revision, the image tags
//! deployed against the tags the tree would build now, pod readiness, URL. Docker: the recorded
//! images against the tree, our containers, URL.

use std::collections::BTreeMap;

use anyhow::Result;
use xshell::Shell;

use crate::engine::plan_tasks;
use crate::engine::state::State;
use crate::pipeline::Pipeline;
use crate::target::{Target, docker, kube, minikube};

/// Options of `cargo xtask status`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// One image: recorded/deployed tag and the tag the tree would build now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRow {
    /// Image task.
    pub task: String,
    /// Repository.
    pub repository: String,
    /// Deployed (or last built) tag, if any.
    pub deployed: Option<String>,
    /// The tag the current tree builds, unless it waits for a compile (early cutoff).
    pub now: Option<String>,
}

/// The image rows: tags from the tree (keys planned now) against what is recorded as deployed.
pub fn image_rows(sh: &Shell, p: &Pipeline, target: &Target) -> Result<Vec<ImageRow>> {
    let graph = p.graph_for(target)?;
    let session = &p.session;
    let image_tasks = graph.tasks_of_kind("docker-image");
    if image_tasks.is_empty() {
        return Ok(Vec::new());
    }
    let selection = graph.select(&image_tasks)?;
    let state = State::load(&session.state_dir(target));
    let plan = plan_tasks(sh, session, &graph, target, &selection, &state, false)?;
    // Deployed tags: the helm-release outputs (`<prefix>.image.repository/tag`) on Minikube,
    // else the image task's own recorded output.
    let mut deployed: BTreeMap<String, String> = BTreeMap::new();
    let releases = graph.tasks_of_kind("helm-release");
    for release in &releases {
        if let Some(rec) = state.tasks.get(release) {
            for (k, repo) in &rec.outputs {
                if let Some(prefix) = k.strip_suffix(".image.repository")
                    && let Some(tag) = rec.outputs.get(&format!("{prefix}.image.tag"))
                {
                    deployed.insert(repo.clone(), tag.clone());
                }
            }
        }
    }
    let mut rows = Vec::new();
    for p in plan.tasks.iter().filter(|p| image_tasks.contains(&p.name)) {
        let rec = state.tasks.get(&p.name);
        let image = rec.and_then(|r| r.outputs.get("image")).cloned();
        let repository = rec
            .and_then(|r| r.outputs.get("repository"))
            .cloned()
            .or_else(|| {
                image
                    .as_ref()
                    .and_then(|i| i.rsplit_once(':'))
                    .map(|(r, _)| r.to_owned())
            })
            .unwrap_or_else(|| p.name.clone());
        let recorded_tag = image
            .as_ref()
            .and_then(|i| i.rsplit_once(':'))
            .map(|(_, t)| t.to_owned());
        // A release records what it deployed; without one the image itself is what runs.
        let deployed_tag = if releases.is_empty() {
            recorded_tag
        } else {
            deployed.get(&repository).cloned()
        };
        rows.push(ImageRow {
            task: p.name.clone(),
            repository,
            deployed: deployed_tag,
            now: p.key.as_deref().map(|k| k[..12].to_owned()),
        });
    }
    Ok(rows)
}

fn print_images(rows: &[ImageRow]) {
    println!("images (deployed -> tree now):");
    for r in rows {
        let deployed = r.deployed.as_deref().unwrap_or("(none)");
        let Some(now) = &r.now else {
            println!(
                "  {:<16} {}:{deployed} -> (tag known once the binaries are compiled)",
                r.task, r.repository
            );
            continue;
        };
        let verdict = if r.deployed.as_deref() == Some(now.as_str()) {
            "up to date"
        } else {
            "deploy would rebuild/roll it"
        };
        println!(
            "  {:<16} {}:{deployed} -> {}:{now}  {verdict}",
            r.task, r.repository, r.repository
        );
    }
}

/// Run `cargo xtask status`.
pub fn run(sh: &Shell, p: &Pipeline, _args: &Args) -> Result<()> {
    let target = p.target(sh)?;
    match target {
        Target::Minikube(m) => println!(
            "target: {} (profile {}, namespace {})",
            minikube::NAME,
            m.profile,
            m.namespace
        ),
        Target::Docker(_) => println!("target: {}", docker::NAME),
        Target::Kube(k) => println!(
            "target: {} (context {}, cluster {}, namespace {})",
            kube::NAME,
            k.context,
            k.cluster.cluster,
            k.namespace
        ),
    }
    let graph = p.graph_for(target)?;
    print_images(&image_rows(sh, p, target)?);
    for line in target.deployment().status(sh, &p.declared(&graph))? {
        println!("{line}");
    }
    Ok(())
}

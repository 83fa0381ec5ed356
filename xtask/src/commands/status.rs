//! `cargo xtask status`: what is deployed where. Minikube: release and revision, the image tags
//! deployed against the tags the tree would build now, pod readiness, URL. Docker: the recorded
//! images against the tree, our containers, URL.

use std::collections::BTreeMap;

use anyhow::Result;
use serde_json::Value;
use xshell::{Shell, cmd};

use crate::engine::state::State;
use crate::engine::{Session, plan_tasks};
use crate::kinds::helm_release::instance_selector;
use crate::kinds::smoke::{FrontendAccess, port_forward_command};
use crate::target::Target;
use crate::tools::{capture, helm};

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
    /// The tag the current tree builds.
    pub now: String,
}

/// The image rows: tags from the tree (keys planned now) against what is recorded as deployed.
pub fn image_rows(sh: &Shell, session: &Session, target: &Target) -> Result<Vec<ImageRow>> {
    let graph = crate::engine::load(session)?;
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
    for release in graph.tasks_of_kind("helm-release") {
        if let Some(rec) = state.tasks.get(&release) {
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
        let deployed_tag = match target {
            Target::Minikube { .. } => deployed.get(&repository).cloned(),
            Target::Docker { .. } => recorded_tag,
        };
        rows.push(ImageRow {
            task: p.name.clone(),
            repository,
            deployed: deployed_tag,
            now: p.key[..12].to_owned(),
        });
    }
    Ok(rows)
}

fn print_images(rows: &[ImageRow]) {
    println!("images (deployed -> tree now):");
    for r in rows {
        let deployed = r.deployed.as_deref().unwrap_or("(none)");
        let verdict = if r.deployed.as_deref() == Some(r.now.as_str()) {
            "up to date"
        } else {
            "deploy would rebuild/roll it"
        };
        println!(
            "  {:<16} {}:{deployed} -> {}:{}  {verdict}",
            r.task, r.repository, r.repository, r.now
        );
    }
}

/// `ready/total` per pod from `kubectl get pods -o json`.
pub fn pod_lines(pods: &Value) -> Vec<String> {
    let items = pods
        .get("items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    items
        .iter()
        .map(|p| {
            let name = p
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("?");
            let phase = p
                .pointer("/status/phase")
                .and_then(Value::as_str)
                .unwrap_or("?");
            let cs = p
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let ready = cs
                .iter()
                .filter(|c| c.get("ready").and_then(Value::as_bool) == Some(true))
                .count();
            let restarts: u64 = cs
                .iter()
                .filter_map(|c| c.get("restartCount").and_then(Value::as_u64))
                .sum();
            format!(
                "{name}  {ready}/{} ready  {phase}  restarts {restarts}",
                cs.len()
            )
        })
        .collect()
}

/// Run `cargo xtask status`.
pub fn run(sh: &Shell, session: &Session, _args: &Args) -> Result<()> {
    let target = session.target(sh)?.clone();
    match &target {
        Target::Minikube { profile, namespace } => {
            println!("target: minikube (profile {profile}, namespace {namespace})");
            let kube = crate::tools::kubectl::Kube {
                context: profile.clone(),
                namespace: namespace.clone(),
            };
            let graph = crate::engine::load(session)?;
            let releases = graph.tasks_of_kind("helm-release");
            let state = State::load(&session.state_dir(&target));
            let mut release_names = Vec::new();
            for task in &releases {
                let name = state
                    .tasks
                    .get(task)
                    .and_then(|r| r.outputs.get("release"))
                    .cloned()
                    .unwrap_or_else(|| "todo-app".to_owned());
                match helm::status(sh, &kube.context, &kube.namespace, &name)? {
                    Some(s) => println!("release: {name} revision {} {}", s.revision, s.status),
                    None => println!("release: {name} not installed (run `cargo xtask deploy`)"),
                }
                release_names.push(name);
            }
            print_images(&image_rows(sh, session, &target)?);
            for name in &release_names {
                println!("pods of {name}:");
                let pods = kube.pods_json(sh, &instance_selector(name))?;
                let lines = pod_lines(&pods);
                if lines.is_empty() {
                    println!("  (none)");
                }
                for l in lines {
                    println!("  {l}");
                }
            }
            // Without the connect probe: status stays quick on an unroutable node.
            match crate::kinds::smoke::minikube_frontend_access(sh, &kube, false) {
                Ok(FrontendAccess::Direct { url }) => println!("url: {url} (frontend NodePort)"),
                Ok(FrontendAccess::Forward {
                    reason,
                    service,
                    port,
                }) => println!(
                    "url: none from this host ({reason}); `{}` gives it on localhost",
                    port_forward_command(profile, namespace, &service, port)
                ),
                Err(e) => println!("url: unknown ({e:#})"),
            }
        }
        Target::Docker { port, .. } => {
            println!("target: docker");
            print_images(&image_rows(sh, session, &target)?);
            let label = format!(
                "label=dev.todo-app.target={}-docker",
                session.opts.namespace
            );
            let format = "{{.Names}}  {{.Status}}";
            let out = capture(
                cmd!(sh, "docker ps -a --filter {label} --format {format}"),
                "docker ps",
            )?;
            println!("containers:");
            let text = out.stdout.trim();
            println!(
                "  {}",
                if text.is_empty() { "(none)" } else { text }.replace('\n', "\n  ")
            );
            println!("url: http://localhost:{port}");
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn pod_lines_count_ready_containers() {
        let pods = serde_json::json!({"items": [{"metadata": {"name": "p"}, "status": {"phase": "Running",
            "containerStatuses": [{"ready": true, "restartCount": 1}, {"ready": false, "restartCount": 2}]}}]});
        assert_eq!(
            pod_lines(&pods),
            vec!["p  1/2 ready  Running  restarts 3".to_owned()]
        );
    }
}

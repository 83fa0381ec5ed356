//! `cargo xtask down`: tear the target's deployment down and forget its recorded state.
//! Docker: our containers, network and volume (found by label); Minikube: the Helm release,
//! our Secret, the namespace if we created it, and the release's PersistentVolumeClaims
//! (which `helm uninstall` leaves behind). `--images` also removes our images.
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
            let mut releases: Vec<String> = graph
                .tasks_of_kind("helm-release")
                .iter()
                .map(|t| graph.setting(t, "release").unwrap_or("todo-app").to_owned())
                .collect();
            if releases.is_empty() {
                releases.push("todo-app".to_owned());
            }
            // The Secret each k8s-secret task writes (its `secret` setting).
            let secret = graph
                .tasks_of_kind("k8s-secret")
                .iter()
                .find_map(|t| graph.setting(t, "secret"))
                .unwrap_or(crate::secrets::SECRET_NAME)
                .to_owned();
            for release in releases {
                done.extend(crate::kinds::helm_release::teardown(
                    sh, &kube, &release, &secret,
                )?);
                done.push(delete_claims(sh, &kube, &release)?);
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

/// The in-cluster PostgreSQL's PersistentVolumeClaim (`data-<release>-postgres-0`) survives
/// `helm uninstall`; in a namespace we did not create (and so keep) it would hold the old
/// database, and its password, for the next install. The chart labels its volumeClaimTemplates
/// with the release's instance label. Runs after the uninstall so no new pod claims it again;
/// in an absent (or just deleted) namespace it finds nothing and succeeds.
fn delete_claims(
    sh: &Shell,
    kube: &crate::tools::kubectl::Kube,
    release: &str,
) -> anyhow::Result<String> {
    let selector = crate::kinds::helm_release::instance_selector(release);
    let deleted = kube.delete_pvcs(sh, &selector)?;
    Ok(format!(
        "PersistentVolumeClaims of `{release}` deleted: {}",
        list_or_none(&deleted)
    ))
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
        .filter_map(|t| graph.setting(t, "image").map(str::to_owned))
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::tools::kubectl::Kube;

    /// A shell with the kubectl and helm TEST DOUBLES first on PATH, and their state dir.
    fn doubles(state: serde_json::Value) -> (tempfile::TempDir, Shell) {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let doubles = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/doubles");
        for tool in ["kubectl", "helm"] {
            std::os::unix::fs::symlink(doubles.join(format!("{tool}-double")), bin.join(tool))
                .unwrap();
        }
        let states = dir.path().join("state");
        std::fs::create_dir_all(&states).unwrap();
        std::fs::write(states.join("state.json"), state.to_string()).unwrap();
        let sh = Shell::new().unwrap();
        let mut paths = vec![bin];
        paths.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap()));
        sh.set_var("PATH", std::env::join_paths(paths).unwrap());
        sh.set_var("XTASK_DOUBLE_STATE", &states);
        (dir, sh)
    }

    fn pvc(ns: &str, name: &str, instance: &str) -> (String, serde_json::Value) {
        (
            format!("{ns}/{name}"),
            serde_json::json!({"metadata": {"name": name, "namespace": ns, "labels": {
                "app.kubernetes.io/name": "todo-app",
                "app.kubernetes.io/instance": instance,
                "app.kubernetes.io/component": "database"}}}),
        )
    }

    /// The Minikube teardown `down` runs for one release, as in `run`.
    fn down(sh: &Shell, kube: &Kube) -> Vec<String> {
        let mut done =
            crate::kinds::helm_release::teardown(sh, kube, "todo-app", "todo-app-secrets").unwrap();
        done.push(delete_claims(sh, kube, "todo-app").unwrap());
        done
    }

    fn mutating_calls(dir: &std::path::Path) -> Vec<String> {
        std::fs::read_to_string(dir.join("state/calls.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .map(|c| {
                let argv: Vec<&str> = c["argv"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_str().unwrap())
                    .collect();
                format!("{} {}", c["tool"].as_str().unwrap(), argv.join(" "))
            })
            .filter(|l| l.contains("uninstall") || l.contains(" delete "))
            .collect()
    }

    #[test]
    fn down_deletes_the_releases_claims_in_a_namespace_it_keeps() {
        if crate::target::find_on_path(&Shell::new().unwrap(), "python3").is_none() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but python3 (with PyYAML) is missing"
            );
            eprintln!("SKIP: down tests: python3 not found; install python3 python3-yaml");
            return;
        }
        let pvcs: serde_json::Map<String, serde_json::Value> = [
            pvc("todo-app", "data-todo-app-postgres-0", "todo-app"),
            // Another release's claim in the same namespace, and ours in another namespace.
            pvc("todo-app", "data-other-postgres-0", "other"),
            pvc("elsewhere", "data-todo-app-postgres-0", "todo-app"),
        ]
        .into_iter()
        .collect();
        let (dir, sh) = doubles(serde_json::json!({
            "minikube": {"version": "v1.33.1", "profiles": {}, "images": []},
            "kube": {"current_context": "minikube", "contexts": {"minikube": {"reachable": true}}},
            "namespaces": {"todo-app": {"labels": {"team": "someone-else"}},
                           "elsewhere": {"labels": {}}},
            "secrets": {}, "pods": {}, "events": [], "pvcs": pvcs,
            "releases": {"todo-app/todo-app": {"revisions": [{"revision": 1, "status": "deployed",
                "description": "Install complete", "updated": "2024-01-01T00:00:00Z"}]}},
            "knobs": {"fail": {}},
        }));
        let kube = Kube {
            context: "minikube".into(),
            namespace: "todo-app".into(),
        };
        let done = down(&sh, &kube);
        assert!(
            done.last()
                .unwrap()
                .ends_with("deleted: data-todo-app-postgres-0"),
            "{done:?}"
        );
        // Order kept: uninstall, Secret, (namespace kept: someone else's), then the claims.
        assert_eq!(
            mutating_calls(dir.path()),
            [
                "helm uninstall todo-app --namespace todo-app --kube-context minikube --wait",
                "kubectl --context minikube --namespace todo-app delete secret todo-app-secrets --ignore-not-found",
                "kubectl --context minikube --namespace todo-app delete pvc -l app.kubernetes.io/instance=todo-app --ignore-not-found --wait=false -o name",
            ]
        );
        let state: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("state/state.json")).unwrap(),
        )
        .unwrap();
        let left: Vec<&String> = state["pvcs"].as_object().unwrap().keys().collect();
        assert_eq!(
            left,
            [
                "elsewhere/data-todo-app-postgres-0",
                "todo-app/data-other-postgres-0"
            ]
        );
        assert!(state["namespaces"].get("todo-app").is_some());

        // Idempotent: again, nothing left to delete, still success.
        let again = down(&sh, &kube);
        assert!(
            again.last().unwrap().ends_with("deleted: none"),
            "{again:?}"
        );
    }
}

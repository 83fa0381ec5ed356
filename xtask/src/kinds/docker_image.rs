//! `kind = "docker-image"`: build an image tagged with the task's content key.
//!
//! ```toml
//! [tasks.backend-image]
//! kind = "docker-image"
//! image = "todo-backend"              # repository name; the tag is the first 12 hex of the key
//! dockerfile = "backend/Dockerfile"   # relative to the project root
//! context = "."                       # optional, default the project root
//! build-args = { PROFILE = "release" } # optional; never secrets (they land in the image history)
//! target-stage = "runtime"            # optional `--target`
//! ```
//! The key covers exactly the files `docker build` would send (per `.dockerignore`), the
//! Dockerfile, the settings above, and the daemon's identity, so a different daemon (another
//! Minikube profile, a wiped one) never trusts a tag that lives elsewhere. The build streams
//! exactly those files as a tar, so what was hashed is what the daemon receives.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use super::{CheckCx, Diagnostic, KeyCx, LoadCx, Outputs, RunCx, Settings, Task, TaskKind};
use crate::context;
use crate::engine::Session;
use crate::target::Target;
use crate::tools::docker::{BuildSpec, Docker, KEY_LABEL, PART_OF_LABEL, PART_OF_VALUE};
use crate::tools::minikube;

/// Label naming the image's repository (used by `down --images`).
pub const IMAGE_LABEL: &str = "dev.todo-app.image";

/// The `docker-image` kind.
#[derive(Debug)]
pub struct DockerImageKind;

/// One image task's parsed settings.
#[derive(Debug, Clone)]
pub struct DockerImage {
    /// Repository name, e.g. `todo-backend`.
    pub image: String,
    /// Dockerfile, relative to the project root.
    pub dockerfile: String,
    /// Context directory, relative to the project root.
    pub context: String,
    /// `--build-arg`s.
    pub build_args: BTreeMap<String, String>,
    /// `--target`.
    pub target_stage: Option<String>,
}

fn valid_repository(name: &str) -> bool {
    !name.is_empty()
        && name.split('/').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
                && part
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphanumeric())
        })
}

impl TaskKind for DockerImageKind {
    fn name(&self) -> &'static str {
        "docker-image"
    }

    fn parse(&self, s: &mut Settings, cx: &LoadCx<'_>) -> Result<Box<dyn Task>, Diagnostic> {
        let image: String = s.require("image", "\"todo-backend\"")?;
        if !valid_repository(&image) {
            return Err(s.error(
                "image",
                format!("`{image}` is not a valid image repository name"),
                "use lowercase letters, digits and `._-` (e.g. \"todo-backend\"); the tag is added for you",
            ));
        }
        let dockerfile: String = s.require("dockerfile", "\"backend/Dockerfile\"")?;
        if !cx.root.join(&dockerfile).is_file() {
            return Err(s.error(
                "dockerfile",
                format!("Dockerfile `{dockerfile}` not found"),
                "give its path relative to the project root",
            ));
        }
        let context: String = s.get("context")?.unwrap_or_else(|| ".".to_owned());
        if !cx.root.join(&context).is_dir() {
            return Err(s.error(
                "context",
                format!("build context `{context}` is not a directory"),
                "give a directory relative to the project root (default \".\")",
            ));
        }
        let build_args: BTreeMap<String, String> = s.get("build-args")?.unwrap_or_default();
        let target_stage: Option<String> = s.get("target-stage")?;
        Ok(Box::new(DockerImage {
            image,
            dockerfile,
            context,
            build_args,
            target_stage,
        }))
    }
}

/// Where the image goes.
enum Store {
    /// A Docker daemon reached with this child environment (local, or Minikube's docker-env).
    Docker(BTreeMap<String, String>),
    /// A Minikube profile whose runtime is not Docker: `minikube image build`.
    MinikubeBuild(String),
}

fn store(sh: &xshell::Shell, session: &Session, target: &Target) -> Result<Store> {
    match target {
        Target::Docker { .. } => Ok(Store::Docker(session.docker_env(sh)?)),
        Target::Minikube { profile, .. } => {
            // docker-env is cached for the run, so the common (Docker runtime) case costs one
            // `minikube docker-env` per run; only when it fails do we ask for the runtime.
            let env_err = match session.docker_env(sh) {
                Ok(env) => return Ok(Store::Docker(env)),
                Err(e) => e,
            };
            let runtime = minikube::profile_config(sh, profile)?
                .map(|c| c.container_runtime)
                .unwrap_or_default();
            if runtime.is_empty() || runtime == "docker" {
                Err(env_err)
            } else {
                Ok(Store::MinikubeBuild(profile.clone()))
            }
        }
    }
}

impl DockerImage {
    fn paths(&self, root: &Path) -> (PathBuf, PathBuf) {
        (root.join(&self.context), root.join(&self.dockerfile))
    }

    fn list(&self, root: &Path) -> Result<context::ContextFiles> {
        let (ctx, dockerfile) = self.paths(root);
        context::list(&ctx, &dockerfile)
            .with_context(|| format!("listing the build context of `{}`", self.dockerfile))
    }
}

impl Task for DockerImage {
    fn key_material(&self, cx: &KeyCx<'_>) -> Result<BTreeMap<String, String>> {
        let mut m = BTreeMap::new();
        let daemon = match store(cx.sh, cx.session, cx.target)? {
            Store::Docker(env) => format!("docker:{}", Docker::new(cx.sh, env).daemon_id()?),
            Store::MinikubeBuild(profile) => format!("minikube-image-build:{profile}"),
        };
        m.insert("daemon".to_owned(), daemon);
        Ok(m)
    }

    fn extra_inputs(&self, cx: &KeyCx<'_>) -> Result<Vec<String>> {
        let root = &cx.session.root;
        let files = self.list(root)?;
        let canonical_root = std::fs::canonicalize(root)
            .with_context(|| format!("resolving the project root {}", root.display()))?;
        let mut out = Vec::new();
        for (_, abs) in files.files() {
            // Paths outside the project cannot be keyed by root-relative path; say so.
            let rel = abs.strip_prefix(&canonical_root).with_context(|| {
                format!(
                    "build context file {} lies outside the project root",
                    abs.display()
                )
            })?;
            out.push(to_slash(rel));
        }
        if let Ok(rel) = files.dockerfile.strip_prefix(&canonical_root) {
            out.push(to_slash(rel));
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    fn output_exists(&self, cx: &CheckCx<'_>) -> Result<bool> {
        let Some(tag) = cx.outputs.get("image") else {
            return Ok(false);
        };
        match store(cx.sh, cx.session, cx.target)? {
            Store::Docker(env) => Docker::new(cx.sh, env).image_exists(tag),
            Store::MinikubeBuild(profile) => {
                let want = minikube::normalize_image(tag);
                Ok(minikube::image_ls(cx.sh, &profile)?.contains(&want))
            }
        }
    }

    fn run(&self, cx: &RunCx<'_>) -> Result<Outputs> {
        let tag = format!("{}:{}", self.image, cx.short_key());
        let root = &cx.session.root;
        let mut outputs = Outputs::new();
        outputs.insert("image".into(), tag.clone());
        outputs.insert("repository".into(), self.image.clone());
        match store(cx.sh, cx.session, cx.target)? {
            Store::Docker(env) => {
                let files = self.list(root)?;
                let plan = context::tar_plan(&files)?;
                let mut labels = BTreeMap::new();
                labels.insert(PART_OF_LABEL.to_owned(), PART_OF_VALUE.to_owned());
                labels.insert(KEY_LABEL.to_owned(), cx.key.to_owned());
                labels.insert(IMAGE_LABEL.to_owned(), self.image.clone());
                labels.insert(
                    "org.opencontainers.image.title".to_owned(),
                    self.image.clone(),
                );
                let spec = BuildSpec {
                    dockerfile: plan.dockerfile.clone(),
                    tag: tag.clone(),
                    build_args: self.build_args.clone(),
                    target_stage: self.target_stage.clone(),
                    labels,
                };
                cx.log(format!(
                    "docker build {tag} ({} files from {})",
                    files.files().count(),
                    self.context
                ));
                let docker = Docker::new(cx.sh, env);
                let id = docker.build(
                    &spec,
                    |w| {
                        context::write_tar(&files, w)?;
                        Ok(())
                    },
                    |line| cx.log(line),
                    cx.cancel,
                )?;
                outputs.insert("image_id".into(), id);
            }
            Store::MinikubeBuild(profile) => {
                anyhow::ensure!(
                    self.build_args.is_empty() && self.target_stage.is_none(),
                    "task `{}`: build-args and target-stage are not supported with `minikube image build` \
                     (profile `{profile}` does not run Docker); use a Docker-runtime profile \
                     (`minikube start --container-runtime=docker`)",
                    cx.task
                );
                let (ctx, dockerfile) = self.paths(root);
                cx.log(format!("minikube -p {profile} image build {tag}"));
                minikube::image_build(cx.sh, &profile, &tag, &dockerfile, &ctx)?;
            }
        }
        Ok(outputs)
    }
}

fn to_slash(p: &Path) -> String {
    p.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names() {
        assert!(valid_repository("todo-backend"));
        assert!(valid_repository("example.com/team/todo_app"));
        assert!(!valid_repository("Todo"));
        assert!(!valid_repository("todo:1"));
        assert!(!valid_repository(""));
        assert!(!valid_repository("-x"));
    }
}

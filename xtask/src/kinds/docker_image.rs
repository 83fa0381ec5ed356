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
//! The key covers exactly the files `docker build` would send (per `.dockerignore`): their
//! contents, and the context's layout (empty directories, symlink targets, permission bits:
//! they change the image but have no content), the Dockerfile, the settings above, and the IDs
//! of the images it builds on (its `FROM`s and `COPY --from=` images), so a re-pulled base
//! rebuilds it: `--pull` pulls them first, and one the daemon lacks is pulled, as the build
//! would. Nothing of the machine is keyed (no path, daemon or clock), so two checkouts anywhere
//! compute the same key and can share images through a registry. Which daemon holds the image
//! is the freshness check's business instead: the recorded tag must still name the recorded
//! image ID in the target's daemon, so another daemon (another Minikube profile, a wiped one)
//! never trusts a tag that lives elsewhere.
//!
//! With `--registry`, the image is tagged `<registry>/<image>:<tag>`, pushed, and recorded by
//! digest (`<registry>/<image>@sha256:…`), which is what deployments then use. Before building,
//! the registry is asked whether that tag exists (`--no-registry-cache` skips it): if it does,
//! the task is recorded with its digest without building or pulling anything.
//!
//! Built from a binary instead of a context directory, an image's context is just the runtime
//! Dockerfile and the binary, copied out of the builder (`binaries` names the `cargo-build`
//! task, `binary` the output it reads):
//! ```toml
//! [tasks.backend-image]
//! kind = "docker-image"
//! image = "todo-backend"
//! dockerfile = "backend/Dockerfile"   # runtime only: `COPY todo-backend /usr/local/bin/`
//! binaries = "app-binaries"
//! binary = "todo-backend"
//! ```
//! Its key is then the binary's digest (that task's output, not its key: early cutoff), the
//! Dockerfile, the settings and the base images' IDs, so an edit that leaves the binary
//! byte-identical rebuilds nothing.
//!
//! The context is listed once per run; that one listing is keyed and streamed as the tar.
//! While streaming, every file's bytes are hashed as they are sent and compared with the
//! digests the key was computed from: a file edited between planning and sending fails the
//! build (the half-sent build is stopped, no tag is left) instead of recording an image under
//! a key that does not describe it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, Result, bail};
use sha2::{Digest as _, Sha256};

use super::{
    BoxTask, CheckCx, Diagnostic, KeyCx, LoadCx, Outputs, RunCx, Settings, Task, TaskKind,
};
use crate::context::{self, Keyed, Shown, dockerfile, send_verified};
use crate::engine::Session;
use crate::engine::hash::{self, StatCache};
use crate::image_registry::{self, Registry};
use crate::target::Target;
use crate::tools::ChildEnv;
use crate::tools::docker::{
    BuildSpec, Docker, IMAGE_LABEL, KEY_LABEL, PART_OF_LABEL, PART_OF_VALUE,
};
use crate::tools::registry::Lookup;

/// The `docker-image` kind.
#[derive(Debug)]
pub struct DockerImageKind;

/// Key material names: the context's layout and its file contents.
const LAYOUT_MATERIAL: &str = "context layout";
const FILES_MATERIAL: &str = "context files";

/// One image task's parsed settings.
#[derive(Debug)]
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
    /// Built from one binary of a `cargo-build` task instead of a context directory.
    binary: Option<BinarySource>,
    /// The Dockerfile's SHA-256 as keyed, in binary mode (compared with what is sent).
    dockerfile_keyed: Mutex<Option<String>>,
    /// This run's view of the build context: listed when the engine asks for the inputs,
    /// digested when it asks for the key, streamed by `run`.
    snapshot: Mutex<Option<Snapshot>>,
}

/// The binary an image is built from: task `task`'s output `name`, the binary's SHA-256.
#[derive(Debug, Clone)]
struct BinarySource {
    task: String,
    name: String,
}

/// The build context as planned: the one listing that is keyed and sent.
#[derive(Debug, Clone)]
struct Snapshot {
    files: Arc<context::ContextFiles>,
    /// Set once the key material was computed from this listing.
    keyed: Option<Keyed>,
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

impl TaskKind<Target> for DockerImageKind {
    fn name(&self) -> &'static str {
        "docker-image"
    }

    fn parse(&self, s: &mut Settings, cx: &LoadCx<'_>) -> Result<BoxTask, Diagnostic> {
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
        let binary = parse_binary(s)?;
        if binary.is_some() && s.get::<String>("context")?.is_some() {
            return Err(s.error(
                "context",
                "`context` and `binaries` exclude each other: an image built from a binary \
                 has the Dockerfile and the binary as its context",
                "remove `context`, or `binaries` and `binary`",
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
            binary,
            dockerfile_keyed: Mutex::new(None),
            snapshot: Mutex::new(None),
        }))
    }
}

/// `binaries` and `binary`, both or neither.
fn parse_binary(s: &mut Settings) -> Result<Option<BinarySource>, Diagnostic> {
    let task = s.get_task("binaries")?;
    let name: Option<String> = s.get("binary")?;
    match (task, name) {
        (None, None) => Ok(None),
        (Some(task), Some(name)) => Ok(Some(BinarySource { task, name })),
        (Some(_), None) => Err(s.error(
            "binaries",
            "`binaries` names the task that builds the binary, but `binary` is missing",
            "add `binary = \"PACKAGE\"`, the binary's name among that task's packages",
        )),
        (None, Some(_)) => Err(s.error(
            "binary",
            "`binary` needs `binaries`, the task that builds it",
            "add `binaries = \"TASK\"` naming a `cargo-build` task",
        )),
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

    fn stored(&self) -> Option<Snapshot> {
        self.snapshot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn store(&self, snapshot: Snapshot) {
        *self
            .snapshot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(snapshot);
    }

    /// The path of a context file as the user knows it (relative to the project root).
    fn shown(&self) -> Shown<'_> {
        Shown {
            context: &self.context,
            dockerfile: &self.dockerfile,
        }
    }
}

/// Root-relative `/` paths of the context's regular files, paired with their context paths.
fn root_relative(files: &context::ContextFiles, root: &Path) -> Result<Vec<(String, String)>> {
    let canonical_root = std::fs::canonicalize(root)
        .with_context(|| format!("resolving the project root {}", root.display()))?;
    files
        .files()
        .map(|(entry, abs)| {
            // Paths outside the project cannot be keyed by root-relative path; say so.
            let rel = abs.strip_prefix(&canonical_root).with_context(|| {
                format!(
                    "build context file {} lies outside the project root",
                    abs.display()
                )
            })?;
            Ok((entry.path.clone(), to_slash(rel)))
        })
        .collect()
}

/// Content digests of the listed files and the Dockerfile. Files go through the engine's stat
/// cache, which the engine filled moments ago while hashing the same inputs, so an unchanged
/// tree reads no file here.
fn digest_context(session: &Session, files: &context::ContextFiles) -> Result<Keyed> {
    let root = &session.root;
    let pairs = root_relative(files, root)?;
    let rel: Vec<String> = pairs.iter().map(|(_, r)| r.clone()).collect();
    let stamp = hash::fs_now(&session.xtask_dir())?;
    let mut cache = StatCache::load(&session.xtask_dir().join("stat-cache"), stamp);
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    let digests = hash::digest_files(root, &rel, &mut cache, jobs)?;
    let mut out = BTreeMap::new();
    for (context_path, root_path) in pairs {
        let digest = digests
            .get(&root_path)
            .with_context(|| format!("no digest for build context file `{root_path}`"))?;
        // The engine's digest is the content SHA-256 plus `+x`; modes are in the layout.
        let sha = digest.get(..64).unwrap_or(digest).to_owned();
        out.insert(context_path, sha);
    }
    let dockerfile = std::fs::read(&files.dockerfile)
        .with_context(|| format!("reading {}", files.dockerfile.display()))?;
    Ok(Keyed {
        files: out,
        dockerfile: hex::encode(Sha256::digest(&dockerfile)),
    })
}

/// The ID of base image `reference` in the daemon: pulled first when `pull`, or when the daemon
/// does not have it (the build would pull it, and the key must name what it builds on).
pub(crate) fn base_id(docker: &Docker<'_>, reference: &str, pull: bool) -> Result<String> {
    if !pull && let Some(id) = docker.image_id(reference)? {
        return Ok(id);
    }
    docker.pull(reference)?;
    docker
        .image_id(reference)?
        .with_context(|| format!("`docker pull {reference}` succeeded but the image is missing"))
}

impl Task<Target> for DockerImage {
    fn key_material(&self, cx: &KeyCx<'_>) -> Result<BTreeMap<String, String>> {
        let mut m = BTreeMap::new();
        let text = std::fs::read_to_string(cx.session.root.join(&self.dockerfile))
            .with_context(|| format!("reading {}", self.dockerfile))?;
        let bases = dockerfile::base_images(&text, &self.build_args)
            .map_err(|e| anyhow::anyhow!("{}: {e}", self.dockerfile))?;
        let docker = Docker::new(cx.sh, cx.target.deployment().image_daemon(cx.sh)?);
        for base in bases {
            m.insert(
                format!("base image {base}"),
                base_id(&docker, &base, cx.session.refresh)?,
            );
        }
        if self.binary.is_some() {
            return self.binary_key_material(cx, m);
        }
        // The listing the engine hashed as inputs (the engine asks for inputs first).
        let files = match self.stored() {
            Some(s) => s.files,
            None => Arc::new(self.list(&cx.session.root)?),
        };
        let keyed = digest_context(cx.session, &files)?;
        m.insert(
            LAYOUT_MATERIAL.to_owned(),
            hex::encode(Sha256::digest(files.manifest().as_bytes())),
        );
        // The contents again, from the digests `run` compares the sent bytes with: then the
        // key describes exactly what a successful build sent.
        m.insert(FILES_MATERIAL.to_owned(), keyed.digest());
        self.store(Snapshot {
            files,
            keyed: Some(keyed),
        });
        Ok(m)
    }

    fn outputs_read(&self, dep: &str) -> Option<Vec<String>> {
        self.binary
            .as_ref()
            .filter(|b| b.task == dep)
            .map(|b| vec![b.name.clone()])
    }

    fn extra_inputs(&self, cx: &KeyCx<'_>) -> Result<Vec<String>> {
        if self.binary.is_some() {
            return Ok(vec![self.dockerfile.clone()]);
        }
        let root = &cx.session.root;
        let files = self.list(root)?;
        let mut out: Vec<String> = root_relative(&files, root)?
            .into_iter()
            .map(|(_, r)| r)
            .collect();
        let canonical_root = std::fs::canonicalize(root)
            .with_context(|| format!("resolving the project root {}", root.display()))?;
        if let Ok(rel) = files.dockerfile.strip_prefix(&canonical_root) {
            out.push(to_slash(rel));
        }
        out.sort();
        out.dedup();
        self.store(Snapshot {
            files: Arc::new(files),
            keyed: None,
        });
        Ok(out)
    }

    fn output_exists(&self, cx: &CheckCx<'_>) -> Result<bool> {
        if cx.outputs.get(REGISTRY_OUTPUT).map(String::as_str)
            != cx
                .target
                .registry()
                .map(|r| r.address.to_string())
                .as_deref()
        {
            // Built for another registry, or for none: not where this run wants it.
            return Ok(false);
        }
        match cx.target.registry() {
            Some(registry) if registry.lookup => self.in_registry(cx, registry),
            _ => self.in_daemon(cx),
        }
    }

    fn cached(&self, cx: &CheckCx<'_>) -> Result<Option<(Outputs, String)>> {
        let Some(registry) = cx.target.registry().filter(|r| r.lookup) else {
            return Ok(None);
        };
        let tag = short_key(cx.key);
        match registry.lookup(cx.sh, &self.image, tag)? {
            Lookup::Missing => Ok(None),
            Lookup::Found(digest) => {
                let from = format!(
                    "found in registry {}: {}:{tag} {}",
                    registry.address,
                    self.image,
                    short_digest(&digest)
                );
                Ok(Some((self.registry_outputs(registry, tag, &digest), from)))
            }
        }
    }

    fn run(&self, cx: &RunCx<'_>) -> Result<Outputs> {
        let registry = cx.target.registry();
        let tag = match registry {
            Some(r) => format!("{}:{}", r.address.image(&self.image), cx.short_key()),
            None => format!("{}:{}", self.image, cx.short_key()),
        };
        let mut outputs = Outputs::new();
        outputs.insert("image".into(), tag.clone());
        outputs.insert("repository".into(), self.image.clone());
        if let Some(binary) = &self.binary {
            let id = self.binary_build(cx, binary, &tag)?;
            if let Some(registry) = registry {
                let env = cx.target.deployment().image_daemon(cx.sh)?;
                let digest = self.push_to_registry(cx, &env, registry, &tag)?;
                outputs = self.registry_outputs(registry, cx.short_key(), &digest);
            }
            outputs.insert("image_id".into(), id);
            return Ok(outputs);
        }
        // The listing and digests this run's key was computed from; the engine computes every
        // key before it runs anything.
        let snapshot = self.stored();
        let Some((snapshot, keyed)) = snapshot.and_then(|s| s.keyed.clone().map(|k| (s, k))) else {
            bail!(
                "task `{}`: the build context was not keyed before the build; this is a bug in \
                 the engine's call order",
                cx.task
            );
        };
        let env = cx.target.deployment().image_daemon(cx.sh)?;
        let plan = context::tar_plan(&snapshot.files)?;
        let labels = self.labels(cx.key);
        let spec = BuildSpec {
            dockerfile: plan.dockerfile.clone(),
            tag: tag.clone(),
            build_args: self.build_args.clone(),
            target_stage: self.target_stage.clone(),
            labels,
        };
        cx.log(format!(
            "docker build {tag} ({} files from {})",
            snapshot.files.files().count(),
            self.context
        ));
        let docker = Docker::new(cx.sh, env.clone());
        let id = docker.build(
            &spec,
            |w| send_verified(&snapshot.files, &keyed, &self.shown(), w),
            |line| cx.log(line),
            cx.cancel,
        )?;
        if let Some(registry) = registry {
            let digest = self.push_to_registry(cx, &env, registry, &tag)?;
            outputs = self.registry_outputs(registry, cx.short_key(), &digest);
        }
        outputs.insert("image_id".into(), id);
        Ok(outputs)
    }
}

/// Binary mode: the image is the runtime Dockerfile and one binary of a `cargo-build` task.
impl DockerImage {
    /// The labels every image carries.
    fn labels(&self, key: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            (PART_OF_LABEL.to_owned(), PART_OF_VALUE.to_owned()),
            (KEY_LABEL.to_owned(), key.to_owned()),
            (IMAGE_LABEL.to_owned(), self.image.clone()),
            (
                "org.opencontainers.image.title".to_owned(),
                self.image.clone(),
            ),
        ])
    }

    /// The Dockerfile's digest, as `run` will compare it; the binary's digest reaches the key
    /// as the output of the `cargo-build` task the engine keys this task by.
    fn binary_key_material(
        &self,
        cx: &KeyCx<'_>,
        mut m: BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>> {
        let text = std::fs::read(cx.session.root.join(&self.dockerfile))
            .with_context(|| format!("reading {}", self.dockerfile))?;
        let digest = hex::encode(Sha256::digest(&text));
        m.insert("dockerfile".to_owned(), digest.clone());
        *self
            .dockerfile_keyed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(digest);
        Ok(m)
    }

    /// Builds the image from the Dockerfile and the binary streamed out of the builder, both
    /// checked against what was keyed; the image ID.
    fn binary_build(&self, cx: &RunCx<'_>, binary: &BinarySource, tag: &str) -> Result<String> {
        let env = cx.target.deployment().image_daemon(cx.sh)?;
        let digest = cx.dep_output(&binary.task, &binary.name)?;
        let here = |name: &str| {
            cx.dep_output(&binary.task, name).with_context(|| {
                format!(
                    "`{}` was compiled on another machine (found in the registry), but image \
                     {tag} is not there to match it; fix: run again with --no-registry-cache to \
                     compile here",
                    binary.task
                )
            })
        };
        let container = here(super::cargo_build::CONTAINER_OUTPUT)?;
        let dir = here(super::cargo_build::DIR_OUTPUT)?;
        let dockerfile = std::fs::read(cx.session.root.join(&self.dockerfile))
            .with_context(|| format!("reading {}", self.dockerfile))?;
        let keyed = self
            .dockerfile_keyed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if keyed.as_deref() != Some(hex::encode(Sha256::digest(&dockerfile)).as_str()) {
            bail!(
                "`{}` changed during the build (its content); run again",
                self.dockerfile
            );
        }
        let docker = Docker::new(cx.sh, env);
        let spec = BuildSpec {
            dockerfile: context::binary::DOCKERFILE.to_owned(),
            tag: tag.to_owned(),
            build_args: self.build_args.clone(),
            target_stage: self.target_stage.clone(),
            labels: self.labels(cx.key),
        };
        let path = format!("{dir}/{}", binary.name);
        cx.log(format!(
            "docker build {tag} ({} and {container}:{path}, sha256 {})",
            self.dockerfile,
            &digest[..12.min(digest.len())]
        ));
        let mut copy = docker
            .copy_out_command(container, &path)
            .spawn()
            .context("docker cp: could not run docker")?;
        let stdout = copy.stdout.take().context("docker cp: no stdout pipe")?;
        let built = docker.build(
            &spec,
            |w| context::binary::send(&dockerfile, &binary.name, stdout, digest, w),
            |line| cx.log(line),
            cx.cancel,
        );
        let copied = copy
            .wait_with_output()
            .context("docker cp: waiting for docker")?;
        if !copied.status.success() && built.is_err() {
            let err = String::from_utf8_lossy(&copied.stderr);
            return built.with_context(|| format!("docker cp {container}:{path}: {}", err.trim()));
        }
        built
    }
}

/// The output naming the registry an image was pushed to (absent: built locally only).
const REGISTRY_OUTPUT: &str = "registry";

/// The first 12 hex digits of a key: the image's tag.
fn short_key(key: &str) -> &str {
    key.get(..12).unwrap_or(key)
}

/// `sha256:` and the first 12 hex digits, for messages.
fn short_digest(digest: &str) -> &str {
    digest.get(..19).unwrap_or(digest)
}

impl DockerImage {
    /// The outputs of this image in `registry` under `tag` with `digest`: deployments use the
    /// digest reference (`image`), which no later push to the tag can change.
    fn registry_outputs(&self, registry: &Registry, tag: &str, digest: &str) -> Outputs {
        let repository = registry.address.image(&self.image);
        Outputs::from([
            ("image".to_owned(), format!("{repository}@{digest}")),
            ("repository".to_owned(), repository),
            ("tag".to_owned(), tag.to_owned()),
            ("digest".to_owned(), digest.to_owned()),
            (REGISTRY_OUTPUT.to_owned(), registry.address.to_string()),
        ])
    }

    /// Freshness without a registry lookup: the recorded tag is in the target's daemon, as
    /// the recorded image (a daemon that lacks it, or holds another image under the tag, is
    /// not where this task's output is).
    fn in_daemon(&self, cx: &CheckCx<'_>) -> Result<bool> {
        let Some(tag) = cx.outputs.get("image") else {
            return Ok(false);
        };
        let env = cx.target.deployment().image_daemon(cx.sh)?;
        let found = Docker::new(cx.sh, env).image_id(tag)?;
        Ok(match (found, cx.outputs.get("image_id")) {
            (Some(found), Some(recorded)) => &found == recorded,
            (found, None) => found.is_some(),
            (None, Some(_)) => false,
        })
    }

    /// Freshness with a registry: the tag is still there with the recorded digest. Another
    /// digest under our content tag is an error, not a rebuild: someone pushed another image
    /// over it, and deployments by digest would disagree with the tag.
    fn in_registry(&self, cx: &CheckCx<'_>, registry: &Registry) -> Result<bool> {
        let (Some(tag), Some(recorded)) = (cx.outputs.get("tag"), cx.outputs.get("digest")) else {
            return Ok(false);
        };
        match registry.lookup(cx.sh, &self.image, tag)? {
            Lookup::Missing => Ok(false),
            Lookup::Found(digest) if &digest == recorded => Ok(true),
            Lookup::Found(digest) => Err(crate::tools::registry::conflict(
                registry,
                &registry.address.repository(&self.image),
                tag,
                &digest,
                recorded,
            )),
        }
    }

    /// Pushes the image built as `reference` and returns its digest, confirmed by the registry
    /// (unless `--no-registry-cache` turned its API off): a tag that names another digest right
    /// after our push means someone else pushed to it, and nothing is recorded.
    fn push_to_registry(
        &self,
        cx: &RunCx<'_>,
        env: &ChildEnv,
        registry: &Registry,
        reference: &str,
    ) -> Result<String> {
        cx.log(format!("docker push {reference}"));
        let digest = image_registry::push::push(cx.sh, env, registry, reference)?;
        cx.log(format!("pushed {reference} as {digest}"));
        if registry.lookup {
            let tag = cx.short_key();
            match registry.lookup(cx.sh, &self.image, tag)? {
                Lookup::Found(found) if found == digest => {}
                Lookup::Found(found) => {
                    return Err(crate::tools::registry::conflict(
                        registry,
                        &registry.address.repository(&self.image),
                        tag,
                        &found,
                        &digest,
                    ));
                }
                Lookup::Missing => bail!(
                    "registry {} does not list {reference} right after `docker push` reported \
                     it; fix: check the registry's storage and try again",
                    registry.address
                ),
            }
        }
        Ok(digest)
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
    #![allow(clippy::unwrap_used)]
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

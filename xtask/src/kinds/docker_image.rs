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
//! they change the image but have no content), the Dockerfile, the settings above, and the
//! daemon's identity, so a different daemon (another Minikube profile, a wiped one) never
//! trusts a tag that lives elsewhere.
//!
//! The context is listed once per run; that one listing is keyed and streamed as the tar.
//! While streaming, every file's bytes are hashed as they are sent and compared with the
//! digests the key was computed from: a file edited between planning and sending fails the
//! build (the half-sent build is stopped, no tag is left) instead of recording an image under
//! a key that does not describe it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, Result, bail};
use sha2::{Digest as _, Sha256};

use super::{
    BoxTask, CheckCx, Diagnostic, KeyCx, LoadCx, Outputs, RunCx, Settings, Task, TaskKind,
};
use crate::context;
use crate::engine::Session;
use crate::engine::hash::{self, StatCache};
use crate::target::{ImageStore, Target};
use crate::tools::docker::{
    BuildSpec, Docker, IMAGE_LABEL, KEY_LABEL, PART_OF_LABEL, PART_OF_VALUE,
};
use crate::tools::minikube;

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
    /// This run's view of the build context: listed when the engine asks for the inputs,
    /// digested when it asks for the key, streamed by `run`.
    snapshot: Mutex<Option<Snapshot>>,
}

/// The build context as planned: the one listing that is keyed and sent.
#[derive(Debug, Clone)]
struct Snapshot {
    files: Arc<context::ContextFiles>,
    /// Set once the key material was computed from this listing.
    keyed: Option<Keyed>,
}

/// The digests a key was computed from.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Keyed {
    /// Content SHA-256 (hex) of every regular file, by its path in the context (= in the tar).
    files: BTreeMap<String, String>,
    /// Content SHA-256 (hex) of the Dockerfile (it may lie outside the context).
    dockerfile: String,
}

impl Keyed {
    /// One digest over every file's path and content digest, and the Dockerfile's.
    fn digest(&self) -> String {
        let mut h = Sha256::new();
        for (path, sha) in &self.files {
            h.update(path.as_bytes());
            h.update(b"\0");
            h.update(sha.as_bytes());
            h.update(b"\n");
        }
        h.update(b"dockerfile\0");
        h.update(self.dockerfile.as_bytes());
        hex::encode(h.finalize())
    }
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
            snapshot: Mutex::new(None),
        }))
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
    fn shown(&self, context_path: &str) -> String {
        match self.context.trim_end_matches('/') {
            "" | "." => context_path.to_owned(),
            dir => format!("{}/{context_path}", dir.trim_start_matches("./")),
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
    let mut cache = StatCache::load(&session.xtask_dir().join("stat-cache"));
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

/// What the tar must contain: the keyed digests and modes, by path in the tar.
struct Expected<'a> {
    files: BTreeMap<&'a str, (&'a str, u32)>,
    /// The Dockerfile's path in the tar when it is added outside the listing, and its digest.
    extra_dockerfile: Option<(&'a str, &'a str)>,
    /// A `.dockerignore` written by the tar writer rather than read from the tree.
    synthetic_ignore: bool,
}

/// Why a sent file does not match its key.
#[derive(Debug, thiserror::Error)]
#[error("`{path}` changed during the build ({what}); run again")]
pub struct ChangedDuringBuild {
    /// The file, relative to the project root.
    pub path: String,
    /// What differs.
    pub what: &'static str,
}

/// A reader that copies everything read through it to `out`: the tar parser reads the
/// stream, and exactly the bytes it parsed go to docker.
struct Tee<'w, R> {
    inner: R,
    out: &'w mut dyn Write,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// Streams the tar of `snapshot` to `out`, hashing each file as it is sent; fails on the first
/// file whose content or mode is not what the key was computed from.
fn send_verified(
    image: &DockerImage,
    snapshot: &Snapshot,
    keyed: &Keyed,
    out: &mut dyn Write,
) -> Result<()> {
    let plan = context::tar_plan(&snapshot.files)?;
    let mut expected = Expected {
        files: BTreeMap::new(),
        extra_dockerfile: plan
            .extra_dockerfile
            .then_some((plan.dockerfile.as_str(), keyed.dockerfile.as_str())),
        synthetic_ignore: plan.dockerignore_override.is_some(),
    };
    for (entry, _) in snapshot.files.files() {
        if let context::EntryKind::File { mode, .. } = entry.kind {
            let sha = keyed
                .files
                .get(&entry.path)
                .with_context(|| format!("`{}` was listed but not keyed", entry.path))?;
            expected
                .files
                .insert(entry.path.as_str(), (sha.as_str(), mode));
        }
    }
    let (reader, writer) = io::pipe().context("creating a pipe for the build context")?;
    std::thread::scope(|scope| {
        let producer = scope.spawn(move || context::write_tar(&snapshot.files, writer));
        // `reader` is moved in and dropped on return, so an early failure unblocks the writer.
        let checked = check_tar(image, reader, out, &expected);
        let produced = producer.join().unwrap_or_else(|_| {
            Err(context::ContextError::TarPlan {
                dockerfile: snapshot.files.dockerfile.clone(),
                reason: "the tar writer panicked".into(),
            })
        });
        match (checked, produced) {
            // The writer's own error (a file that vanished or shrank) says more than the
            // parser's unexpected end of stream; a broken pipe only echoes our failure.
            (Err(e), _) if e.downcast_ref::<ChangedDuringBuild>().is_some() => Err(e),
            (_, Err(e)) if !is_broken_pipe(&e) => {
                Err(anyhow::Error::new(e).context("writing the build context"))
            }
            (Err(e), _) => Err(e),
            (Ok(()), _) => Ok(()),
        }
    })
}

fn is_broken_pipe(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
        {
            return true;
        }
        cur = err.source();
    }
    false
}

/// Parses the tar stream from `reader`, forwarding every byte to `out`, and checks each
/// regular file against `expected`.
fn check_tar(
    image: &DockerImage,
    reader: impl Read,
    out: &mut dyn Write,
    expected: &Expected<'_>,
) -> Result<()> {
    let mut tee = Tee { inner: reader, out };
    let mut seen: BTreeSet<String> = BTreeSet::new();
    {
        let mut archive = tar::Archive::new(&mut tee);
        for entry in archive.entries().context("reading the build-context tar")? {
            let mut entry = entry.context("reading the build-context tar")?;
            if entry.header().entry_type() != tar::EntryType::Regular {
                continue;
            }
            let path = String::from_utf8(entry.path_bytes().into_owned())
                .context("a build-context path is not UTF-8")?;
            let mode = entry.header().mode().context("reading a tar mode")? & 0o7777;
            let mut hasher = HashWriter(Sha256::new());
            io::copy(&mut entry, &mut hasher)
                .with_context(|| format!("streaming `{}`", image.shown(&path)))?;
            let sha = hex::encode(hasher.0.finalize());
            if let Some((want, want_mode)) = expected.files.get(path.as_str()) {
                if sha != *want {
                    return Err(changed(image.shown(&path), "its content"));
                }
                if mode != *want_mode {
                    return Err(changed(image.shown(&path), "its permissions"));
                }
            } else if let Some((tar_path, want)) = expected.extra_dockerfile
                && path == tar_path
            {
                if sha != want {
                    return Err(changed(image.dockerfile.clone(), "its content"));
                }
            } else if !(path == ".dockerignore" && expected.synthetic_ignore) {
                bail!(
                    "the build-context tar holds `{}`, which was not keyed; run again",
                    image.shown(&path)
                );
            }
            seen.insert(path);
        }
    }
    if let Some(missing) = expected.files.keys().find(|p| !seen.contains(**p)) {
        return Err(changed(image.shown(missing), "it was not sent"));
    }
    // The end-of-archive blocks the parser did not need still belong to the stream.
    io::copy(&mut tee, &mut io::sink()).context("streaming the build context")?;
    Ok(())
}

fn changed(path: String, what: &'static str) -> anyhow::Error {
    ChangedDuringBuild { path, what }.into()
}

/// A `Write` that only hashes.
struct HashWriter(Sha256);

impl Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Task<Target> for DockerImage {
    fn key_material(&self, cx: &KeyCx<'_>) -> Result<BTreeMap<String, String>> {
        let mut m = BTreeMap::new();
        let daemon = match cx.target.image_store(cx.sh)? {
            ImageStore::Docker(env) => format!("docker:{}", Docker::new(cx.sh, env).daemon_id()?),
            ImageStore::MinikubeBuild(profile) => format!("minikube-image-build:{profile}"),
        };
        m.insert("daemon".to_owned(), daemon);
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

    fn extra_inputs(&self, cx: &KeyCx<'_>) -> Result<Vec<String>> {
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
        let Some(tag) = cx.outputs.get("image") else {
            return Ok(false);
        };
        match cx.target.image_store(cx.sh)? {
            ImageStore::Docker(env) => Docker::new(cx.sh, env).image_exists(tag),
            ImageStore::MinikubeBuild(profile) => {
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
        match cx.target.image_store(cx.sh)? {
            ImageStore::Docker(env) => {
                let plan = context::tar_plan(&snapshot.files)?;
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
                    snapshot.files.files().count(),
                    self.context
                ));
                let docker = Docker::new(cx.sh, env);
                let id = docker.build(
                    &spec,
                    |w| send_verified(self, &snapshot, &keyed, w),
                    |line| cx.log(line),
                    cx.cancel,
                )?;
                outputs.insert("image_id".into(), id);
            }
            ImageStore::MinikubeBuild(profile) => {
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
                // minikube reads the directory itself, so the sent bytes cannot be checked:
                // list and digest again, and drop the tag if the tree moved under the build.
                let relisted = self.list(root)?;
                let changed = if relisted.manifest() != snapshot.files.manifest() {
                    Some("the build context's layout changed during the build".to_owned())
                } else {
                    let now = digest_context(cx.session, &relisted)?;
                    now.files
                        .iter()
                        .find(|(p, sha)| keyed.files.get(*p) != Some(*sha))
                        .map(|(p, _)| format!("`{}` changed during the build", self.shown(p)))
                        .or_else(|| {
                            (now.dockerfile != keyed.dockerfile)
                                .then(|| format!("`{}` changed during the build", self.dockerfile))
                        })
                };
                if let Some(why) = changed {
                    minikube::image_rm(cx.sh, &profile, &tag)
                        .with_context(|| format!("{why}; removing the image {tag} it built"))?;
                    bail!("{why}; run again");
                }
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
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn image(context: &str) -> DockerImage {
        DockerImage {
            image: "t".into(),
            dockerfile: "Dockerfile".into(),
            context: context.into(),
            build_args: BTreeMap::new(),
            target_stage: None,
            snapshot: Mutex::new(None),
        }
    }

    /// A context with a Dockerfile, a nested file, an executable, a symlink and an empty dir;
    /// its listing, and the digests as keyed now.
    fn fixture() -> (tempfile::TempDir, Snapshot, Keyed) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(p.join("Dockerfile"), "FROM scratch\nCOPY . /\n").unwrap();
        std::fs::create_dir_all(p.join("src/empty")).unwrap();
        std::fs::write(p.join("src/a.rs"), "fn a() {}\n").unwrap();
        std::fs::write(p.join("run.sh"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(
            p.join("run.sh"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        std::os::unix::fs::symlink("src/a.rs", p.join("link")).unwrap();
        let files = context::list(p, &p.join("Dockerfile")).unwrap();
        let keyed = Keyed {
            files: files
                .files()
                .map(|(e, abs)| {
                    (
                        e.path.clone(),
                        hex::encode(Sha256::digest(std::fs::read(abs).unwrap())),
                    )
                })
                .collect(),
            dockerfile: hex::encode(Sha256::digest(std::fs::read(p.join("Dockerfile")).unwrap())),
        };
        let snapshot = Snapshot {
            files: Arc::new(files),
            keyed: Some(keyed.clone()),
        };
        (dir, snapshot, keyed)
    }

    #[test]
    fn verified_stream_is_exactly_the_context_tar() {
        let (_dir, snapshot, keyed) = fixture();
        let mut sent = Vec::new();
        send_verified(&image("."), &snapshot, &keyed, &mut sent).unwrap();
        let mut direct = Vec::new();
        context::write_tar(&snapshot.files, &mut direct).unwrap();
        assert_eq!(
            sent, direct,
            "the checked stream must forward every byte unchanged"
        );
    }

    #[test]
    fn a_file_edited_after_keying_fails_the_stream_naming_it() {
        let (dir, snapshot, keyed) = fixture();
        std::fs::write(dir.path().join("src/a.rs"), "fn b() {}\n").unwrap();
        let err = send_verified(&image("ctx"), &snapshot, &keyed, &mut Vec::new()).unwrap_err();
        let changed = err.downcast_ref::<ChangedDuringBuild>().unwrap();
        assert_eq!(changed.path, "ctx/src/a.rs");
        assert_eq!(
            err.to_string(),
            "`ctx/src/a.rs` changed during the build (its content); run again"
        );
    }

    #[test]
    fn a_mode_change_after_keying_fails_the_stream() {
        let (dir, snapshot, keyed) = fixture();
        std::fs::set_permissions(
            dir.path().join("run.sh"),
            std::os::unix::fs::PermissionsExt::from_mode(0o644),
        )
        .unwrap();
        let err = send_verified(&image("."), &snapshot, &keyed, &mut Vec::new()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`run.sh` changed during the build (its permissions); run again"
        );
    }

    #[test]
    fn a_changed_dockerfile_outside_the_listing_is_caught() {
        let (dir, _, _) = fixture();
        let p = dir.path();
        // The Dockerfile lives outside the context: it travels as an extra tar entry.
        std::fs::create_dir_all(p.join("ctx")).unwrap();
        std::fs::write(p.join("ctx/x.txt"), "x").unwrap();
        let files = context::list(&p.join("ctx"), &p.join("Dockerfile")).unwrap();
        let keyed = Keyed {
            files: BTreeMap::from([("x.txt".to_owned(), hex::encode(Sha256::digest(b"x")))]),
            dockerfile: hex::encode(Sha256::digest(std::fs::read(p.join("Dockerfile")).unwrap())),
        };
        let snapshot = Snapshot {
            files: Arc::new(files),
            keyed: Some(keyed.clone()),
        };
        send_verified(&image("ctx"), &snapshot, &keyed, &mut Vec::new()).unwrap();
        std::fs::write(p.join("Dockerfile"), "FROM scratch\n").unwrap();
        let err = send_verified(&image("ctx"), &snapshot, &keyed, &mut Vec::new()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`Dockerfile` changed during the build (its content); run again"
        );
    }

    #[test]
    fn a_deleted_file_fails_with_the_writers_error() {
        let (dir, snapshot, keyed) = fixture();
        std::fs::remove_file(dir.path().join("src/a.rs")).unwrap();
        let err = send_verified(&image("."), &snapshot, &keyed, &mut Vec::new()).unwrap_err();
        assert!(format!("{err:#}").contains("a.rs"), "{err:#}");
    }

    #[test]
    fn keyed_digest_covers_paths_contents_and_the_dockerfile() {
        let (_dir, _, keyed) = fixture();
        let mut other = keyed.clone();
        other.dockerfile = "0".repeat(64);
        assert_ne!(keyed.digest(), other.digest());
        let mut moved = keyed.clone();
        let sha = moved.files.remove("src/a.rs").unwrap();
        moved.files.insert("src/b.rs".into(), sha);
        assert_ne!(keyed.digest(), moved.digest());
    }

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

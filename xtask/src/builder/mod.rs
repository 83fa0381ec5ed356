//! The builder: a long-lived container on the target's Docker daemon (the local one, or
//! Minikube's through its docker-env) in which the workspace's binaries are compiled once,
//! incrementally, by one cargo invocation, from the same pinned toolchain image the images used
//! to compile in. Its cargo registry, target directory and sources live in named volumes, so
//! they outlive the container: `down` removes the container, only `down --images` the volumes.
//!
//! Sources reach it the way a build context reaches a daemon, as a tar stream through the
//! Docker CLI (`docker exec -i ... tar`), never a bind mount, since the daemon may run in a VM;
//! and only what changed since the last sync ([`sync`]), so cargo's mtime fingerprints see only
//! real changes.

pub mod sync;

use std::collections::BTreeMap;

use anyhow::{Context as _, Result};

use crate::tools::ChildEnv;
use crate::tools::docker::{Docker, ObjectKind, PART_OF_LABEL, PART_OF_VALUE, RunSpec};

/// Label naming the deployment (its object prefix) a builder and its volumes belong to. Not the
/// target label: a teardown that keeps or deletes the database's volume leaves these alone.
pub const BUILDER_LABEL: &str = "dev.todo-app.builder";
/// Label holding the ID of the toolchain image the builder container runs.
pub const TOOLCHAIN_LABEL: &str = "dev.todo-app.toolchain";

/// Where the sources are, inside the builder (the workspace root there).
pub const SRC_DIR: &str = "/build/src";
/// `CARGO_TARGET_DIR` inside the builder.
pub const TARGET_DIR: &str = "/build/target";
/// The cargo registry (downloaded crates) inside the toolchain image.
const REGISTRY_DIR: &str = "/usr/local/cargo/registry";

/// The Cargo profile binaries are built with: `--build-profile`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    /// Cargo's `dev` profile: incremental, unoptimised except the hot dependencies that
    /// Cargo.toml optimises (argon2, blake2, sha2); for the inner loop.
    Dev,
    /// Cargo's `release` profile: what `deploy` ships by default.
    Release,
}

impl Profile {
    /// Cargo's name for it (`--profile NAME`).
    pub fn name(self) -> &'static str {
        match self {
            Profile::Dev => "dev",
            Profile::Release => "release",
        }
    }

    /// The profile named `name`, if it is one.
    pub fn parse(name: &str) -> Option<Profile> {
        match name {
            "dev" => Some(Profile::Dev),
            "release" => Some(Profile::Release),
            _ => None,
        }
    }

    /// Its directory under the target directory (`dev` builds into `debug`).
    pub fn dir(self) -> &'static str {
        match self {
            Profile::Dev => "debug",
            Profile::Release => "release",
        }
    }
}

/// The run-wide parameter (`Session::params`) that holds `--build-profile`.
pub const PROFILE_PARAM: &str = "build-profile";

/// Which daemon a deployment's builder lives on, and the prefix of its objects' names.
#[derive(Debug, Clone)]
pub struct Site {
    /// The `docker` CLI environment reaching the daemon.
    pub env: ChildEnv,
    /// `<namespace>-<target>`, like the deployment's other objects.
    pub prefix: String,
}

/// One deployment's builder on its daemon.
pub struct Builder<'a> {
    docker: Docker<'a>,
    prefix: String,
}

impl<'a> Builder<'a> {
    /// The builder of `site`, driven through `sh`.
    pub fn new(sh: &'a xshell::Shell, site: &Site) -> Builder<'a> {
        Builder {
            docker: Docker::new(sh, site.env.clone()),
            prefix: site.prefix.clone(),
        }
    }

    /// The `docker` CLI reaching its daemon.
    pub fn docker(&self) -> &Docker<'a> {
        &self.docker
    }

    /// The container's name: `<prefix>-builder`.
    pub fn container(&self) -> String {
        format!("{}-builder", self.prefix)
    }

    /// Its volumes with where they are mounted: the registry, the target directory and the
    /// sources (with the manifest of what the builder holds).
    pub fn volumes(&self) -> [(String, &'static str); 3] {
        [
            (format!("{}-cargo-registry", self.prefix), REGISTRY_DIR),
            (format!("{}-cargo-target", self.prefix), TARGET_DIR),
            (format!("{}-builder-src", self.prefix), SRC_DIR),
        ]
    }

    fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (PART_OF_LABEL.to_owned(), PART_OF_VALUE.to_owned()),
            (BUILDER_LABEL.to_owned(), self.prefix.clone()),
        ])
    }

    /// Makes sure the container runs `toolchain` (an image reference whose ID is
    /// `toolchain_id`): started if stopped, re-created on another toolchain (the volumes stay;
    /// cargo rebuilds what the new compiler must). Returns what it did, for the log.
    pub fn ensure(&self, toolchain: &str, toolchain_id: &str) -> Result<Option<String>> {
        let name = self.container();
        if let Some(info) = self.docker.container_inspect(&name)? {
            let same = info.labels.get(TOOLCHAIN_LABEL).map(String::as_str) == Some(toolchain_id);
            if same && info.is_running() {
                return Ok(None);
            }
            if same {
                self.docker.start(&name)?;
                return Ok(Some(format!("builder {name} started again")));
            }
            self.docker
                .remove(ObjectKind::Container, std::slice::from_ref(&name))?;
        }
        let labels = self.labels();
        for (volume, _) in self.volumes() {
            self.docker.volume_create(&volume, &labels)?;
        }
        let mut container_labels = labels;
        container_labels.insert(TOOLCHAIN_LABEL.to_owned(), toolchain_id.to_owned());
        let spec = RunSpec {
            name: name.clone(),
            image: toolchain.to_owned(),
            env: BTreeMap::from([("CARGO_TARGET_DIR".to_owned(), TARGET_DIR.to_owned())]),
            volumes: self
                .volumes()
                .iter()
                .map(|(volume, dir)| format!("{volume}:{dir}"))
                .collect(),
            labels: container_labels,
            // Idles until work is exec'd into it; `--init` lets it stop on SIGTERM.
            command: vec!["sleep".into(), "infinity".into()],
            init: true,
            workdir: Some(SRC_DIR.to_owned()),
            ..RunSpec::default()
        };
        self.docker
            .run(&spec)
            .with_context(|| format!("starting the builder container {name}"))?;
        Ok(Some(format!(
            "builder {name} created from {toolchain} (volumes {})",
            self.volumes().map(|(v, _)| v).join(", ")
        )))
    }

    /// Stops the container and whatever runs in it (its volumes stay).
    pub fn stop(&self) -> Result<()> {
        self.docker.kill(&self.container())
    }

    /// Removes the container (its volumes stay); the line saying so.
    pub fn remove_container(&self) -> Result<String> {
        let name = self.container();
        let found = self.docker.exists(ObjectKind::Container, &name)?;
        self.docker
            .remove(ObjectKind::Container, std::slice::from_ref(&name))?;
        Ok(if found {
            format!("builder container removed: {name} (its volumes are kept)")
        } else {
            "builder container removed: none".to_owned()
        })
    }

    /// Removes the container and its volumes: the registry, the compiled target directory and
    /// the synced sources; the line saying so.
    pub fn remove_all(&self) -> Result<String> {
        let name = self.container();
        self.docker
            .remove(ObjectKind::Container, std::slice::from_ref(&name))?;
        let mut removed = Vec::new();
        for (volume, _) in self.volumes() {
            if self.docker.exists(ObjectKind::Volume, &volume)? {
                self.docker
                    .remove(ObjectKind::Volume, std::slice::from_ref(&volume))?;
                removed.push(volume);
            }
        }
        Ok(format!(
            "builder volumes removed: {}",
            if removed.is_empty() {
                "none".to_owned()
            } else {
                removed.join(", ")
            }
        ))
    }
}

//! `kind = "cargo-build"`: compile the workspace's binaries once, incrementally, in the
//! builder container on the deployment's daemon (see [`crate::builder`]), with one cargo
//! invocation, and copy them into the deployment's own directory there.
//!
//! ```toml
//! [tasks.app-binaries]
//! kind = "cargo-build"
//! packages = ["todo-backend", "todo-frontend"]  # `-p` each; each builds the binary of its name
//! sources = ["Cargo.toml", "Cargo.lock", "backend"] # what the builder gets; inputs of the task
//! stubs = ["xtask"]                    # members cargo must load but that are not built: their
//!                                      # manifests are in `sources`, their code is a stub
//! toolchain = "rust:1.95-slim-bookworm" # the image the builder runs
//! profile = "release"                  # optional: `dev` or `release`; `--build-profile` wins
//! ```
//! Its outputs are each binary's SHA-256, computed inside the builder, and they describe its
//! result (early cutoff): an image keyed by a binary's digest is not rebuilt when a change
//! leaves that binary byte-identical. The key covers the sources, the settings, the profile
//! and the toolchain image's ID. No secret reaches the builder: its environment holds only
//! `CARGO_TARGET_DIR`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use anyhow::{Context as _, Result, bail};

use super::{
    BoxTask, CheckCx, Diagnostic, KeyCx, LoadCx, Outputs, RunCx, Settings, Task, TaskKind,
};
use crate::builder::{self, Builder, PROFILE_PARAM, Profile, SRC_DIR, TARGET_DIR, sync};
use crate::engine::Session;
use crate::engine::hash::{self, StatCache};
use crate::image_registry::Registry;
use crate::target::Target;
use crate::tools::ChildEnv;
use crate::tools::docker::{BuildSpec, Docker, PART_OF_LABEL, PART_OF_VALUE};

/// The `cargo-build` kind.
#[derive(Debug)]
pub struct CargoBuildKind;

/// Output naming the builder container the binaries are in.
pub const CONTAINER_OUTPUT: &str = "container";
/// Output naming the directory the binaries are in, inside the builder.
pub const DIR_OUTPUT: &str = "dir";

/// One `cargo-build` task's parsed settings.
#[derive(Debug)]
struct CargoBuild {
    packages: Vec<String>,
    sources: Vec<String>,
    stubs: Vec<String>,
    toolchain: String,
    profile: Profile,
    /// The sources as keyed (root-relative path → digest), sent by `run`.
    keyed: Mutex<Option<sync::Manifest>>,
}

impl TaskKind<Target> for CargoBuildKind {
    fn name(&self) -> &'static str {
        "cargo-build"
    }

    fn parse(&self, s: &mut Settings, _cx: &LoadCx<'_>) -> Result<BoxTask, Diagnostic> {
        let packages: Vec<String> = s.require("packages", r#"["todo-backend"]"#)?;
        if packages.is_empty() || packages.iter().any(|p| !valid_name(p)) {
            return Err(s.error(
                "packages",
                "`packages` must name at least one package, each a cargo package name",
                r#"list the packages to build, e.g. `packages = ["todo-backend"]`"#,
            ));
        }
        let sources: Vec<String> = s.require("sources", r#"["Cargo.toml", "Cargo.lock"]"#)?;
        if sources.is_empty() {
            return Err(s.error(
                "sources",
                "`sources` is empty",
                "list what cargo builds from (manifests, Cargo.lock, the packages' directories)",
            ));
        }
        let stubs: Vec<String> = s.get("stubs")?.unwrap_or_default();
        if let Some(bad) = stubs.iter().find(|m| !valid_name(m)) {
            return Err(s.error(
                "stubs",
                format!("`{bad}` is not a workspace member's directory"),
                "name member directories relative to the project root, e.g. \"xtask\"",
            ));
        }
        let toolchain: String = s.require("toolchain", "\"rust:1.95-slim-bookworm\"")?;
        let profile: Option<String> = s.get("profile")?;
        let profile = match profile.as_deref().map(Profile::parse) {
            None => Profile::Release,
            Some(Some(p)) => p,
            Some(None) => {
                return Err(s.error(
                    "profile",
                    format!("unknown build profile `{}`", profile.unwrap_or_default()),
                    "use \"dev\" or \"release\"",
                ));
            }
        };
        Ok(Box::new(CargoBuild {
            packages,
            sources,
            stubs,
            toolchain,
            profile,
            keyed: Mutex::new(None),
        }))
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
}

impl CargoBuild {
    /// `--build-profile` when given, else the declared profile.
    fn profile(&self, session: &Session) -> Result<Profile> {
        match session.params.get(PROFILE_PARAM) {
            None => Ok(self.profile),
            Some(name) => Profile::parse(name).with_context(|| {
                format!("unknown build profile `{name}`; use `--build-profile dev` or `release`")
            }),
        }
    }

    /// The files `sources` names, relative to the root.
    fn files(&self, session: &Session) -> Result<Vec<String>> {
        let patterns: Vec<&str> = self.sources.iter().map(String::as_str).collect();
        let expansion = hash::expand(&session.root, &patterns, 2)?;
        if let Some(&i) = expansion.empty.first() {
            bail!(
                "source `{}` matches no file; fix `sources` in {}",
                self.sources[i],
                session.pipeline_file().display()
            );
        }
        Ok(expansion.paths().into_iter().map(str::to_owned).collect())
    }

    /// What cargo needs of a member it does not build: a target to load the workspace with.
    fn stub_files(&self) -> BTreeMap<String, Vec<u8>> {
        self.stubs
            .iter()
            .flat_map(|m| {
                [
                    (format!("{m}/src/main.rs"), b"fn main() {}\n".to_vec()),
                    (format!("{m}/src/lib.rs"), Vec::new()),
                ]
            })
            .collect()
    }

    /// The sources as the builder must hold them: every file's digest, through the engine's
    /// stat cache (filled moments ago hashing the same inputs), and the stubs.
    fn manifest(&self, session: &Session) -> Result<sync::Manifest> {
        let files = self.files(session)?;
        let stamp = hash::fs_now(&session.xtask_dir())?;
        let mut cache = StatCache::load(&session.xtask_dir().join("stat-cache"), stamp);
        let mut manifest = hash::digest_files(&session.root, &files, &mut cache, 2)?;
        for (path, content) in self.stub_files() {
            manifest
                .entry(path)
                .or_insert_with(|| sync::digest_of(&content));
        }
        Ok(manifest)
    }

    fn site(&self, target: &Target, sh: &xshell::Shell) -> Result<builder::Site> {
        Ok(builder::Site {
            env: target.deployment().image_daemon(sh)?,
            builder: target.deployment().builder_name().to_owned(),
            prefix: target.deployment().object_prefix(),
        })
    }

    /// The builder's paths of the binaries.
    fn binaries(&self, profile: Profile) -> Vec<String> {
        self.packages
            .iter()
            .map(|p| format!("{TARGET_DIR}/{}/{p}", profile.dir()))
            .collect()
    }
}

/// Cargo `--config` arguments the builder adds to `profile`. With `dev`, line tables only:
/// panics still name files and lines, but the binary is a fraction of the size, so linking,
/// copying it out, hashing it and the image build (the binary is its layer) all take less time
/// on every edit.
fn profile_config(profile: Profile) -> Vec<String> {
    match profile {
        Profile::Dev => ["--config", "profile.dev.debug=\"line-tables-only\""]
            .map(String::from)
            .to_vec(),
        Profile::Release => Vec::new(),
    }
}

/// `sha256sum` output: `DIGEST  PATH` per line, as path → digest.
fn parse_sums(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once("  "))
        .map(|(d, p)| (p.trim().to_owned(), d.trim().to_owned()))
        .collect()
}

impl Task<Target> for CargoBuild {
    fn early_cutoff(&self) -> Option<&'static str> {
        Some("binary")
    }

    fn extra_inputs(&self, cx: &KeyCx<'_>) -> Result<Vec<String>> {
        self.files(cx.session)
    }

    fn key_material(&self, cx: &KeyCx<'_>) -> Result<BTreeMap<String, String>> {
        let mut m = BTreeMap::new();
        // The profile as the builder compiles it: its name and what the builder adds to it.
        let profile = self.profile(cx.session)?;
        let mut definition = vec![profile.name().to_owned()];
        definition.extend(profile_config(profile));
        m.insert("profile".to_owned(), definition.join(" "));
        let site = self.site(cx.target, cx.sh)?;
        let docker = Docker::new(cx.sh, site.env);
        m.insert(
            format!("toolchain {}", self.toolchain),
            super::docker_image::base_id(&docker, &self.toolchain, cx.session.refresh)?,
        );
        let manifest = self.manifest(cx.session)?;
        m.insert(
            "sources".to_owned(),
            crate::engine::key::digest_of(&manifest),
        );
        *self
            .keyed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(manifest);
        Ok(m)
    }

    /// The builder still holds binaries with the recorded digests.
    fn output_exists(&self, cx: &CheckCx<'_>) -> Result<bool> {
        let site = self.site(cx.target, cx.sh)?;
        let builder = Builder::new(cx.sh, &site);
        let Some(info) = builder.docker().container_inspect(&builder.container())? else {
            return Ok(false);
        };
        if !info.is_running() {
            return Ok(false);
        }
        let Some(dir) = cx.outputs.get(DIR_OUTPUT) else {
            return Ok(false);
        };
        let paths: Vec<String> = self.packages.iter().map(|p| format!("{dir}/{p}")).collect();
        let mut args = vec!["sha256sum".to_owned(), "--".to_owned()];
        args.extend(paths.iter().cloned());
        let out = builder
            .docker()
            .exec(&builder.container(), &args, false)
            .ignore_status()
            .ignore_stderr()
            .output()
            .context("docker exec sha256sum: could not run docker")?;
        let sums = parse_sums(&String::from_utf8_lossy(&out.stdout));
        Ok(self
            .packages
            .iter()
            .zip(&paths)
            .all(|(p, path)| sums.contains_key(path) && sums.get(path) == cx.outputs.get(p)))
    }

    fn run(&self, cx: &RunCx<'_>) -> Result<Outputs> {
        let profile = self.profile(cx.session)?;
        let Some(wanted) = self
            .keyed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
        else {
            bail!(
                "task `{}`: the sources were not keyed before the build; this is a bug in the \
                 engine's call order",
                cx.task
            );
        };
        let site = self.site(cx.target, cx.sh)?;
        let builder = Builder::new(cx.sh, &site);
        let docker = builder.docker();
        let container = builder.container();
        let toolchain_id = super::docker_image::base_id(docker, &self.toolchain, false)?;
        if let Some(done) = builder.ensure(&self.toolchain, &toolchain_id)? {
            cx.log(done);
        }
        // Held until the binaries are copied out: no other deployment syncs or compiles meanwhile.
        let lease = builder.lease(cx.cancel, &|line| cx.log(line))?;

        // Sync: what the builder holds, forgotten until the new state is complete.
        let manifest_path = format!("{SRC_DIR}/{}", sync::MANIFEST);
        let held_text = docker
            .exec(&container, &["cat".into(), manifest_path.clone()], false)
            .ignore_status()
            .ignore_stderr()
            .read()
            .unwrap_or_default();
        let held = sync::parse(&held_text);
        let changes = sync::diff(&held, &wanted);
        let mut rm = vec![
            "rm".to_owned(),
            "-f".to_owned(),
            "--".to_owned(),
            manifest_path,
        ];
        rm.extend(changes.delete.iter().map(|p| format!("{SRC_DIR}/{p}")));
        cx.run(docker.exec(&container, &rm, false))?;
        let tar = sync::tar(&cx.session.root, &wanted, &self.stub_files(), &changes.send)?;
        let untar: Vec<String> = ["tar", "-x", "-m", "-f", "-", "-C", SRC_DIR]
            .map(String::from)
            .to_vec();
        cx.run_with_stdin(docker.exec(&container, &untar, true), &tar)?;
        cx.log(format!(
            "synced {} changed and {} removed of {} source files to {container} ({} bytes)",
            changes.send.len(),
            changes.delete.len(),
            wanted.len(),
            tar.len()
        ));

        // One cargo invocation for every package: dependencies compile once, features unify.
        let mut cargo: Vec<String> = ["cargo", "build", "--locked", "--profile", profile.name()]
            .map(String::from)
            .to_vec();
        cargo.extend(profile_config(profile));
        for p in &self.packages {
            cargo.push("-p".into());
            cargo.push(p.clone());
        }
        let compile = Builder::compile_command(&cargo);
        if let Err(e) = cx.run_compiler(docker.exec(&container, &compile, false)) {
            if cx.cancel.load(std::sync::atomic::Ordering::SeqCst) {
                // Still under the lease: the next run's compile cannot start meanwhile.
                cx.log(format!("interrupted: stopping the compile in {container}"));
                builder.interrupt_compile()?;
            }
            return Err(e.context(format!("cargo build in the builder {container}")));
        }

        // Copied (not hard-linked) so that the next compile, of any deployment, cannot change
        // them.
        let out = builder.out_dir(profile);
        cx.run(docker.exec(
            &container,
            &["mkdir", "-p", "--", &out].map(String::from),
            false,
        ))?;
        let mut cp = vec!["cp".to_owned(), "-f".to_owned(), "--".to_owned()];
        cp.extend(self.binaries(profile));
        cp.push(format!("{out}/"));
        cx.run(docker.exec(&container, &cp, false))?;
        drop(lease);

        let paths: Vec<String> = self.packages.iter().map(|p| format!("{out}/{p}")).collect();
        let mut args = vec!["sha256sum".to_owned(), "--".to_owned()];
        args.extend(paths.iter().cloned());
        let sums = parse_sums(&cx.read(docker.exec(&container, &args, false))?);
        let mut outputs = Outputs::new();
        for (package, path) in self.packages.iter().zip(&paths) {
            let digest = sums
                .get(path)
                .with_context(|| format!("cargo built no binary `{path}` in {container}"))?;
            cx.log(format!("{package}: sha256 {digest}"));
            outputs.insert(package.clone(), digest.clone());
        }
        outputs.insert(CONTAINER_OUTPUT.to_owned(), container);
        outputs.insert(DIR_OUTPUT.to_owned(), out);
        outputs.insert("profile".to_owned(), profile.name().to_owned());
        if let Some(registry) = cx.target.registry() {
            publish(cx, registry, &site.env, &outputs)?;
        }
        Ok(outputs)
    }

    /// With `--registry`, another machine's compile of this key: its binaries' digests, from
    /// the marker [`publish`] pushed. The images built from them are then keyed (and found in
    /// the registry) without compiling anything here.
    fn cached(&self, cx: &CheckCx<'_>) -> Result<Option<(Outputs, String)>> {
        let Some(registry) = cx.target.registry().filter(|r| r.lookup) else {
            return Ok(None);
        };
        let tag = &cx.key[..12.min(cx.key.len())];
        let Some(labels) = registry.labels(cx.sh, cx.task, tag)? else {
            return Ok(None);
        };
        let Some(recorded) = labels.get(MARKER_LABEL) else {
            return Ok(None);
        };
        let outputs: Outputs = serde_json::from_str(recorded).with_context(|| {
            format!(
                "registry {}: {}:{tag} carries a `{MARKER_LABEL}` label that is not the \
                 outputs of a compile; fix: delete that tag, or build with --no-registry-cache",
                registry.address, cx.task
            )
        })?;
        if self.packages.iter().any(|p| !outputs.contains_key(p)) {
            return Ok(None);
        }
        let from = format!(
            "found in registry {}: {}:{tag} (compiled elsewhere)",
            registry.address, cx.task
        );
        Ok(Some((outputs, from)))
    }
}

/// Label of the registry marker that records a compile's outputs.
const MARKER_LABEL: &str = "dev.todo-app.compile-outputs";

/// With `--registry`: pushes `<registry>/<task>:<key>`, an image of no layers whose label holds
/// the binaries' digests (nothing of this machine: not the builder's name or directory), so
/// that another machine with the same sources learns them without compiling ([`Task::cached`]).
fn publish(cx: &RunCx<'_>, registry: &Registry, env: &ChildEnv, outputs: &Outputs) -> Result<()> {
    let portable: Outputs = outputs
        .iter()
        .filter(|(k, _)| *k != CONTAINER_OUTPUT && *k != DIR_OUTPUT)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let reference = format!("{}:{}", registry.address.image(cx.task), cx.short_key());
    let spec = BuildSpec {
        dockerfile: "Dockerfile".to_owned(),
        tag: reference.clone(),
        build_args: BTreeMap::new(),
        target_stage: None,
        labels: BTreeMap::from([
            (PART_OF_LABEL.to_owned(), PART_OF_VALUE.to_owned()),
            (MARKER_LABEL.to_owned(), serde_json::to_string(&portable)?),
        ]),
    };
    let docker = Docker::new(cx.sh, env.clone());
    docker.build(
        &spec,
        |w| {
            let dockerfile = b"FROM scratch\n";
            let mut header = tar::Header::new_gnu();
            header.set_size(dockerfile.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            let mut archive = tar::Builder::new(w);
            archive.append_data(&mut header, "Dockerfile", &dockerfile[..])?;
            archive.finish()?;
            Ok(())
        },
        |line| cx.log(line),
        cx.cancel,
    )?;
    let digest = crate::image_registry::push::push(cx.sh, env, registry, &reference)?;
    cx.log(format!(
        "the compile's outputs are in registry {}: {reference} {digest}",
        registry.address
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256sum_lines_by_path() {
        let sums = parse_sums("ab12  /build/target/release/todo-backend\ncd34  /x y\n");
        assert_eq!(sums["/build/target/release/todo-backend"], "ab12");
        assert_eq!(sums["/x y"], "cd34");
    }
}

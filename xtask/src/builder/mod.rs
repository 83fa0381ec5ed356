//! The builder: one long-lived container on each Docker daemon (the local one, or Minikube's
//! through its docker-env) in which the workspace's binaries are compiled incrementally, by one
//! cargo invocation, from the same pinned toolchain image the images used to compile in. Every
//! deployment on that daemon (every namespace, every checkout) shares it, so the dependencies
//! compile once per daemon rather than once per namespace. Its cargo registry, target directory
//! and sources live in named volumes, so they outlive the container.
//!
//! Sharing is safe because a run holds the builder's [`Lease`] from the sync of its sources to
//! the copy of its binaries into its own directory ([`Builder::out_dir`]): the sources are
//! synced against what the last user left ([`sync`]), so every file whose content differs gets
//! a new mtime and cargo rebuilds exactly what differs; and no other run can overwrite the
//! target directory between the compile and the copy.
//!
//! Sources reach it the way a build context reaches a daemon, as a tar stream through the
//! Docker CLI (`docker exec -i ... tar`), never a bind mount, since the daemon may run in a VM;
//! and only what changed since the last sync, so cargo's mtime fingerprints see only real
//! changes.

pub mod sync;

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

use crate::tools::docker::{Docker, ObjectKind, PART_OF_LABEL, PART_OF_VALUE, RunSpec};
use crate::tools::{ChildEnv, list_or_none};

/// Label naming the builder a container or volume belongs to (its name; before the builder was
/// shared, a deployment's object prefix). Not the target label: a teardown that keeps or
/// deletes the database's volume leaves these alone.
pub const BUILDER_LABEL: &str = "dev.todo-app.builder";
/// The builder's name unless `--builder` gives another: its container's, and its volumes'
/// prefix.
pub const DEFAULT_NAME: &str = "todo-app-builder";

/// Checks a `--builder` name: it names a container and prefixes volume names, so Docker's
/// rule for those applies.
pub fn parse_name(name: &str) -> Result<String, String> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)) {
        Ok(name.to_owned())
    } else {
        Err(format!(
            "`{name}` cannot name a container: use letters, digits, `_`, `.` and `-`, starting \
             with a letter or digit (e.g. `{DEFAULT_NAME}`)"
        ))
    }
}
/// Label holding the ID of the toolchain image the builder container runs.
pub const TOOLCHAIN_LABEL: &str = "dev.todo-app.toolchain";

/// Where the sources are, inside the builder (the workspace root there).
pub const SRC_DIR: &str = "/build/src";
/// `CARGO_TARGET_DIR` inside the builder.
pub const TARGET_DIR: &str = "/build/target";
/// The cargo registry (downloaded crates) inside the toolchain image.
const REGISTRY_DIR: &str = "/usr/local/cargo/registry";
/// Each deployment's copies of its binaries, under `<prefix>/<profile dir>/`.
const OUT_DIR: &str = "/build/target/xtask-out";
/// The file a [`Lease`] holds with flock(1), in the container (not a volume: the lease is
/// about this container's processes).
const LOCK_FILE: &str = "/tmp/xtask-builder.lock";
/// The process group id of the compile in progress (one at a time: the lease's holder's), so
/// that an interrupted run stops that compile and nothing else in the shared builder.
const COMPILE_PGID_FILE: &str = "/tmp/xtask-compile.pgid";
/// How long an interrupted compile has to end after SIGTERM before it gets SIGKILL.
const COMPILE_STOP_GRACE_TENTHS: u32 = 50;

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

/// Which daemon a deployment's builder lives on, which builder, and the deployment's prefix.
#[derive(Debug, Clone)]
pub struct Site {
    /// The `docker` CLI environment reaching the daemon.
    pub env: ChildEnv,
    /// `--builder`: the builder's name.
    pub builder: String,
    /// `<namespace>-<target>`, like the deployment's other objects: names its binaries'
    /// directory in the builder.
    pub prefix: String,
}

/// The builder on a deployment's daemon, as that deployment uses it.
pub struct Builder<'a> {
    docker: Docker<'a>,
    name: String,
    prefix: String,
}

impl<'a> Builder<'a> {
    /// The builder of `site`, driven through `sh`.
    pub fn new(sh: &'a xshell::Shell, site: &Site) -> Builder<'a> {
        Builder {
            docker: Docker::new(sh, site.env.clone()),
            name: site.builder.clone(),
            prefix: site.prefix.clone(),
        }
    }

    /// The `docker` CLI reaching its daemon.
    pub fn docker(&self) -> &Docker<'a> {
        &self.docker
    }

    /// The container's name, the same for every deployment on the daemon naming this builder.
    pub fn container(&self) -> String {
        self.name.clone()
    }

    /// Where this deployment's copies of its binaries built with `profile` are.
    pub fn out_dir(&self, profile: Profile) -> String {
        format!("{OUT_DIR}/{}/{}", self.prefix, profile.dir())
    }

    /// Its volumes with where they are mounted: the registry, the target directory and the
    /// sources (with the manifest of what the builder holds).
    pub fn volumes(&self) -> [(String, &'static str); 3] {
        [
            (format!("{}-cargo-registry", self.name), REGISTRY_DIR),
            (format!("{}-cargo-target", self.name), TARGET_DIR),
            (format!("{}-src", self.name), SRC_DIR),
        ]
    }

    fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (PART_OF_LABEL.to_owned(), PART_OF_VALUE.to_owned()),
            (BUILDER_LABEL.to_owned(), self.name.clone()),
        ])
    }

    /// Waits until no other run uses the builder and holds it until the lease is dropped (or
    /// this process dies: the lease's `docker exec` ends with it). Says so through `waiting`
    /// when another run holds it; `cancel` gives up the wait.
    pub fn lease(&self, cancel: &AtomicBool, waiting: &dyn Fn(String)) -> Result<Lease> {
        let name = self.container();
        // `flock` runs `cat` once it holds the lock; `cat` echoes the line written below, so
        // that line coming back means the lock is held. Closing stdin ends `cat`, and the lock.
        let args = ["flock", LOCK_FILE, "cat"].map(String::from);
        let mut command: std::process::Command = self.docker.exec(&name, &args, true).into();
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = command
            .spawn()
            .context("docker exec flock: could not run docker")?;
        let mut stdin = child.stdin.take().context("docker exec: no stdin")?;
        let stdout = child.stdout.take().context("docker exec: no stdout")?;
        stdin
            .write_all(b"held\n")
            .and_then(|()| stdin.flush())
            .context("writing to the builder's lock")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let read = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(read.map(|n| n > 0));
        });
        let mut said = false;
        loop {
            match rx.recv_timeout(Duration::from_millis(500)) {
                Ok(Ok(true)) => {
                    return Ok(Lease {
                        child,
                        _stdin: stdin,
                    });
                }
                Ok(_) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    bail!(
                        "the builder {name} stopped while this run waited for it; run the \
                         command again"
                    );
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if cancel.load(Ordering::SeqCst) {
                        let _ = child.kill();
                        let _ = child.wait();
                        bail!("interrupted while waiting for the builder {name}");
                    }
                    if !said {
                        waiting(format!(
                            "waiting for the builder {name}: another deployment on this daemon \
                             is compiling"
                        ));
                        said = true;
                    }
                }
            }
        }
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
            // Another deployment may be compiling in it: the old toolchain goes after that.
            let lease = info
                .is_running()
                .then(|| self.lease(&AtomicBool::new(false), &|_| {}));
            self.docker
                .remove(ObjectKind::Container, std::slice::from_ref(&name))?;
            drop(lease);
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
        if let Err(e) = self.docker.run(&spec) {
            // Another deployment on the daemon may have created it meanwhile.
            let theirs = self.docker.container_inspect(&name)?.is_some_and(|info| {
                info.is_running()
                    && info.labels.get(TOOLCHAIN_LABEL).map(String::as_str) == Some(toolchain_id)
            });
            if theirs {
                return Ok(None);
            }
            return Err(e.context(format!("starting the builder container {name}")));
        }
        Ok(Some(format!(
            "builder {name} created from {toolchain} (volumes {})",
            self.volumes().map(|(v, _)| v).join(", ")
        )))
    }

    /// `argv` (a cargo command) as the builder runs it: in a session and process group of its
    /// own, whose id is written to [`COMPILE_PGID_FILE`], so that [`Builder::interrupt_compile`]
    /// can stop cargo and every compiler it started. Ending `docker exec` would not: the daemon
    /// leaves an exec'd process running (moby/moby#9098).
    pub fn compile_command(argv: &[String]) -> Vec<String> {
        let mut command: Vec<String> = [
            "setsid",
            "--wait",
            "sh",
            "-c",
            &format!("echo $$ > {COMPILE_PGID_FILE} && exec \"$@\""),
            "sh",
        ]
        .map(String::from)
        .to_vec();
        command.extend_from_slice(argv);
        command
    }

    /// Stops the compile that [`Builder::compile_command`] started (SIGTERM to its process
    /// group, SIGKILL after a grace period) and returns once it has ended. Only the lease's
    /// holder calls this, so the group is its own; the builder stays up for the runs waiting.
    /// (dash's `kill` takes `-PGID` but not `--`.)
    pub fn interrupt_compile(&self) -> Result<()> {
        let script = format!(
            "pg=$(cat {COMPILE_PGID_FILE}) && [ -n \"$pg\" ] || exit 0; \
             kill -TERM -$pg 2>/dev/null || exit 0; \
             n=0; while kill -0 -$pg 2>/dev/null; do \
             n=$((n+1)); if [ $n -ge {COMPILE_STOP_GRACE_TENTHS} ]; then kill -KILL -$pg; fi; \
             sleep 0.1; done"
        );
        let args = ["sh".to_owned(), "-c".to_owned(), script];
        let name = self.container();
        self.docker
            .exec(&name, &args, false)
            .quiet()
            .run()
            .with_context(|| format!("stopping the interrupted compile in the builder {name}"))
    }

    /// What `down` does to the builder: it stays, shared by every deployment on the daemon;
    /// only this deployment's copies of its binaries go. The line saying so, if there is a
    /// builder.
    pub fn leave(&self) -> Result<Option<String>> {
        let name = self.container();
        let Some(info) = self.docker.container_inspect(&name)? else {
            return Ok(None);
        };
        if info.is_running() {
            let dir = format!("{OUT_DIR}/{}", self.prefix);
            let rm = ["rm", "-rf", "--", &dir].map(String::from);
            self.docker
                .exec(&name, &rm, false)
                .quiet()
                .run()
                .with_context(|| format!("removing {dir} in the builder {name}"))?;
        }
        Ok(Some(format!(
            "builder kept: {name} (shared by every deployment on this Docker daemon; \
             `down --compile-cache` removes it and its volumes)"
        )))
    }

    /// Removes the container and its volumes (the registry, the compiled target directory and
    /// the synced sources), once no run uses it; also the per-deployment builder an earlier
    /// version made (`<prefix>-builder`). The line saying so.
    pub fn remove_all(&self) -> Result<String> {
        let name = self.container();
        let mut containers = Vec::new();
        if self.docker.exists(ObjectKind::Container, &name)? {
            // Taken only to wait for a compile in progress; the container goes with it. Ctrl-C
            // reaches the `docker exec` waiting for it, which ends the wait.
            let lease = self.lease(&AtomicBool::new(false), &|_| {});
            self.docker
                .remove(ObjectKind::Container, std::slice::from_ref(&name))?;
            drop(lease);
            containers.push(name);
        }
        let legacy = format!("{}-builder", self.prefix);
        if self.docker.exists(ObjectKind::Container, &legacy)? {
            self.docker
                .remove(ObjectKind::Container, std::slice::from_ref(&legacy))?;
            containers.push(legacy);
        }
        let mut volumes: Vec<String> = self.volumes().into_iter().map(|(v, _)| v).collect();
        volumes.extend(
            ["cargo-registry", "cargo-target", "builder-src"]
                .map(|v| format!("{}-{v}", self.prefix)),
        );
        let mut removed = Vec::new();
        for volume in volumes {
            if self.docker.exists(ObjectKind::Volume, &volume)? {
                self.docker
                    .remove(ObjectKind::Volume, std::slice::from_ref(&volume))?;
                removed.push(volume);
            }
        }
        Ok(format!(
            "builder removed: {}; its volumes removed: {}",
            list_or_none(&containers),
            list_or_none(&removed)
        ))
    }
}

/// Exclusive use of the builder, from [`Builder::lease`] until dropped.
pub struct Lease {
    child: Child,
    _stdin: ChildStdin,
}

impl Drop for Lease {
    fn drop(&mut self) {
        // Kill rather than close stdin and wait: the exec may hang on a daemon that went away.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_builder_name_must_name_a_container() {
        assert_eq!(
            parse_name("ci-7.builder_x").expect("a valid name"),
            "ci-7.builder_x"
        );
        for bad in ["", "-x", "a b", "a/b", "ä"] {
            let e = parse_name(bad).expect_err(bad);
            assert!(
                e.contains(&format!("`{bad}`")) && e.contains(DEFAULT_NAME),
                "{e}"
            );
        }
    }
}

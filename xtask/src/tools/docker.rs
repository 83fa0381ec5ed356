//! The `docker` CLI, driven through one `xshell::Shell` plus an environment override map.
//!
//! The override map exists for Minikube: `minikube docker-env` points the CLI at the
//! cluster's daemon, and those variables must reach only our `docker` children, never the
//! user's shell or other tools. Secrets reach containers only through the child process
//! environment (`-e NAME` without a value), never through argv.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};
use xshell::{Cmd, Shell, cmd};

use super::{ChildEnv, with_env};

/// Label every object we create carries, so `down` and the tests can find all of them.
pub const PART_OF_LABEL: &str = "app.kubernetes.io/part-of";
/// Value of [`PART_OF_LABEL`].
pub const PART_OF_VALUE: &str = "todo-app";
/// Label naming the pipeline target (its identity string) that created an object.
pub const TARGET_LABEL: &str = "dev.todo-app.target";
/// Label naming the image's repository (used by `down --images`).
pub const IMAGE_LABEL: &str = "dev.todo-app.image";
/// Label holding the full content key an image was built from.
pub const KEY_LABEL: &str = "dev.todo-app.key";
/// Label holding the configuration digest a container was started with.
pub const CONFIG_LABEL: &str = "dev.todo-app.config";

// Go templates for `--format`, kept out of `cmd!` strings where braces are interpolation.
const ID_FMT: &str = "{{.ID}}";
const IMAGE_ID_FMT: &str = "{{.Id}}";
const NAME_FMT: &str = "{{.Name}}";
const NAMES_FMT: &str = "{{.Names}}";
const ENV_FMT: &str = "{{json .Config.Env}}";
const IMAGE_LS_FMT: &str = "{{.Repository}}:{{.Tag}}\t{{.ID}}";
const MEM_USAGE_FMT: &str = "{{.MemUsage}}";
const JSON_FMT: &str = "{{json .}}";

/// The kinds of Docker objects we create and later list or remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// `docker container`
    Container,
    /// `docker network`
    Network,
    /// `docker volume`
    Volume,
    /// `docker image`
    Image,
}

impl ObjectKind {
    fn noun(self) -> &'static str {
        match self {
            Self::Container => "container",
            Self::Network => "network",
            Self::Volume => "volume",
            Self::Image => "image",
        }
    }
}

/// What to build: everything except the context bytes, which the caller streams.
#[derive(Debug, Clone, Default)]
pub struct BuildSpec {
    /// Path of the Dockerfile inside the streamed context tar.
    pub dockerfile: String,
    /// Full `name:tag` reference to apply.
    pub tag: String,
    /// `--build-arg` values (never secrets: they are recorded in the image history).
    pub build_args: BTreeMap<String, String>,
    /// `--target` stage, if any.
    pub target_stage: Option<String>,
    /// `--label` values.
    pub labels: BTreeMap<String, String>,
}

/// A container to start with `docker run -d`.
#[derive(Debug, Clone, Default)]
pub struct RunSpec {
    /// Container name.
    pub name: String,
    /// Image reference or ID.
    pub image: String,
    /// Network to attach to.
    pub network: Option<String>,
    /// DNS alias on that network.
    pub network_alias: Option<String>,
    /// Plain (non-secret) environment variables; these do appear in argv.
    pub env: BTreeMap<String, String>,
    /// Secret environment variables: passed as `-e NAME`, the value only in the child env.
    pub secret_env: BTreeMap<String, String>,
    /// `-p` publish specs, e.g. `127.0.0.1:3000:3000`.
    pub publish: Vec<String>,
    /// `-v` mount specs, e.g. `volume:/var/lib/postgresql/data`.
    pub volumes: Vec<String>,
    /// `--label` values.
    pub labels: BTreeMap<String, String>,
    /// `--health-cmd` (shell form) for images without a HEALTHCHECK.
    pub health_cmd: Option<String>,
    /// Extra arguments after the image (the container command).
    pub command: Vec<String>,
    /// `--memory` limit in Docker's units, e.g. `1g` or `512m`; none when `None`.
    pub memory: Option<String>,
    /// `--init`: a minimal init as PID 1, so a command that ignores SIGTERM still stops.
    pub init: bool,
    /// `--restart` policy, e.g. `unless-stopped`; Docker's default (`no`) when `None`.
    pub restart: Option<String>,
    /// `--workdir`.
    pub workdir: Option<String>,
}

/// The parts of `docker container inspect` the pipeline looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    /// Full container ID.
    pub id: String,
    /// Image ID (`sha256:...`) the container runs.
    pub image_id: String,
    /// `State.Status`: created, running, exited, ...
    pub status: String,
    /// `State.Health.Status` when the container has a health check.
    pub health: Option<String>,
    /// Exit code when not running.
    pub exit_code: i64,
    /// Container labels.
    pub labels: BTreeMap<String, String>,
    /// `HostConfig.Memory`: the memory limit in bytes, 0 when unlimited.
    pub memory_limit: u64,
    /// `State.OOMKilled`: the kernel killed it for exceeding its memory limit.
    pub oom_killed: bool,
}

impl ContainerInfo {
    /// Running, and healthy when it has a health check.
    pub fn is_running(&self) -> bool {
        self.status == "running"
    }
}

/// The `docker` CLI bound to a shell and an environment override map.
pub struct Docker<'a> {
    sh: &'a Shell,
    env: ChildEnv,
}

impl<'a> Docker<'a> {
    /// A wrapper whose children get `env` on top of the Shell's environment.
    pub fn new(sh: &'a Shell, env: ChildEnv) -> Self {
        Self { sh, env }
    }

    fn docker(&self, cmd: Cmd<'a>) -> Cmd<'a> {
        with_env(cmd, &self.env).quiet()
    }

    /// Runs `cmd`, returning trimmed stdout, or an error carrying its stderr.
    fn read(&self, cmd: Cmd<'a>, what: &str) -> Result<String> {
        let cmd = self.docker(cmd).ignore_status();
        let out = cmd
            .output()
            .with_context(|| format!("{what}: could not run docker"))?;
        if !out.status.success() {
            bail!("{what}: {}", stderr_summary(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// The daemon's identity (`docker info` ID); it goes into image keys so that
    /// switching daemons rebuilds instead of trusting a tag that lives elsewhere.
    pub fn daemon_id(&self) -> Result<String> {
        let sh = self.sh;
        let id = self
            .read(cmd!(sh, "docker info --format {ID_FMT}"), "docker info")
            .context(
                "the Docker daemon is not reachable; start it (e.g. `sudo systemctl start docker`) \
                 or check DOCKER_HOST",
            )?;
        if id.is_empty() {
            bail!("docker info returned an empty daemon ID");
        }
        Ok(id)
    }

    /// The image ID behind `reference`, or `None` when the daemon does not have it.
    pub fn image_id(&self, reference: &str) -> Result<Option<String>> {
        let sh = self.sh;
        let out = self
            .docker(cmd!(
                sh,
                "docker image inspect --format {IMAGE_ID_FMT} {reference}"
            ))
            .ignore_status()
            .output()
            .context("docker image inspect: could not run docker")?;
        if out.status.success() {
            return Ok(Some(String::from_utf8_lossy(&out.stdout).trim().to_owned()));
        }
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("No such image") || err.contains("No such object") {
            Ok(None)
        } else {
            bail!(
                "docker image inspect {reference}: {}",
                stderr_summary(&out.stderr)
            )
        }
    }

    /// `docker pull REFERENCE` into this daemon; the error names the image and the fix.
    pub fn pull(&self, reference: &str) -> Result<()> {
        let sh = self.sh;
        let out = super::capture(
            self.docker(cmd!(sh, "docker pull {reference}")),
            "docker pull",
        )?;
        if !out.success() {
            bail!(
                "cannot pull `{reference}`: {}\nfix: check the name and your registry access \
                 (`docker pull {reference}`), or build or load it into this daemon",
                out.tail(3)
            );
        }
        Ok(())
    }

    /// `docker login --username USER --password-stdin HOST`: the password goes to stdin, never
    /// into an argument. The error is the CLI's own last line (the daemon's answer).
    pub fn login(&self, host: &str, username: &str, password: &[u8]) -> Result<()> {
        let sh = self.sh;
        let out = self
            .docker(cmd!(
                sh,
                "docker login --username {username} --password-stdin {host}"
            ))
            .stdin(password)
            .ignore_status()
            .output()
            .context("docker login: could not run docker")?;
        if !out.status.success() {
            bail!(
                "{}",
                stderr_summary(&out.stderr).lines().last().unwrap_or("")
            );
        }
        Ok(())
    }

    /// `docker push REFERENCE`; the pushed manifest's digest (`sha256:…`) from its last line
    /// (`TAG: digest: sha256:… size: N`).
    pub fn push(&self, reference: &str) -> Result<String> {
        let sh = self.sh;
        let out = super::capture(
            self.docker(cmd!(sh, "docker push {reference}")),
            "docker push",
        )?;
        if !out.success() {
            bail!("{}", out.tail(1));
        }
        pushed_digest(&out.stdout).with_context(|| {
            format!(
                "`docker push {reference}` printed no digest; last output: {}",
                out.tail(1)
            )
        })
    }

    /// `docker tag SOURCE TARGET`.
    pub fn tag(&self, source: &str, target: &str) -> Result<()> {
        let sh = self.sh;
        self.read(cmd!(sh, "docker tag {source} {target}"), "docker tag")?;
        Ok(())
    }

    /// Whether the daemon has `reference`.
    pub fn image_exists(&self, reference: &str) -> Result<bool> {
        Ok(self.image_id(reference)?.is_some())
    }

    /// Builds an image from a context tar streamed by `write_context` on the CLI's stdin
    /// (`docker build -`), so the daemon receives exactly the files that were hashed.
    /// `on_line` sees each line of build output. Returns the image ID.
    /// Setting `cancel` terminates the build.
    pub fn build(
        &self,
        spec: &BuildSpec,
        write_context: impl FnOnce(&mut dyn Write) -> Result<()> + Send,
        mut on_line: impl FnMut(&str),
        cancel: &AtomicBool,
    ) -> Result<String> {
        let sh = self.sh;
        let mut args: Vec<String> = vec![
            // The classic builder keeps the intermediate container of a failed step unless told
            // otherwise: a failed build must not leave stopped containers in the user's daemon.
            "--force-rm".into(),
            "-f".into(),
            spec.dockerfile.clone(),
            "-t".into(),
            spec.tag.clone(),
        ];
        for (k, v) in &spec.build_args {
            args.push("--build-arg".into());
            args.push(format!("{k}={v}"));
        }
        if let Some(stage) = &spec.target_stage {
            args.push("--target".into());
            args.push(stage.clone());
        }
        for (k, v) in &spec.labels {
            args.push("--label".into());
            args.push(format!("{k}={v}"));
        }
        let mut command: Command = self.docker(cmd!(sh, "docker build {args...} -")).into();
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .context("docker build: could not run docker")?;
        let stdin = child.stdin.take().context("docker build: no stdin pipe")?;
        let stdout = child
            .stdout
            .take()
            .context("docker build: no stdout pipe")?;
        let stderr = child
            .stderr
            .take()
            .context("docker build: no stderr pipe")?;

        let pid = child.id().to_string();
        let done = AtomicBool::new(false);
        // Set when the context could not be sent as hashed: the build must not finish (a tar
        // cut short at an entry boundary reads as a complete, smaller context).
        let abort = AtomicBool::new(false);
        let (tail, writer_result) = std::thread::scope(|scope| {
            scope.spawn(|| {
                while !done.load(Ordering::SeqCst) {
                    if cancel.load(Ordering::SeqCst) {
                        // `kill` the command: std offers only SIGKILL and unsafe code is forbidden;
                        // SIGTERM lets the CLI tell the daemon to stop the build.
                        let _ = Command::new("kill")
                            .args(["-TERM", &pid])
                            .stderr(Stdio::null())
                            .status();
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
            });
            let (abort, pid) = (&abort, pid.as_str());
            let writer = scope.spawn(move || {
                let mut stdin = std::io::BufWriter::new(stdin);
                let res = write_context(&mut stdin);
                if res.as_ref().is_err_and(|e| !is_broken_pipe(e)) {
                    // Kill docker before the pipe closes on a partial context: no chance to
                    // finish that build and tag it. (A broken pipe means docker stopped
                    // reading first; its own error says why.)
                    abort.store(true, Ordering::SeqCst);
                    let _ = Command::new("kill")
                        .args(["-KILL", pid])
                        .stderr(Stdio::null())
                        .status();
                    return res;
                }
                // Dropping stdin closes the pipe so docker knows the context is complete.
                stdin.flush().map_err(anyhow::Error::from)
            });
            let err_reader = scope.spawn(move || {
                let mut s = String::new();
                let _ = BufReader::new(stderr).read_to_string(&mut s);
                s
            });
            let mut tail: Vec<String> = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // The classic builder colours the build's stderr; logs want plain text.
                let line = strip_ansi(&line);
                on_line(&line);
                tail.push(line);
                if tail.len() > 30 {
                    tail.remove(0);
                }
            }
            let err_text = err_reader.join().unwrap_or_default();
            for line in err_text.lines() {
                let line = strip_ansi(line);
                if !is_legacy_builder_notice(&line) {
                    on_line(&line);
                    tail.push(line);
                }
            }
            let writer_result = writer
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("context writer panicked")));
            done.store(true, Ordering::SeqCst);
            (tail, writer_result)
        });
        let status = child.wait().context("docker build: waiting for docker")?;
        if cancel.load(Ordering::SeqCst) {
            bail!("docker build of {} interrupted", spec.tag);
        }
        if abort.load(Ordering::SeqCst) {
            // Docker may have finished before it was stopped: that tag would name an image
            // built from a context other than the one keyed.
            if status.success() {
                self.image_rm(std::slice::from_ref(&spec.tag))
                    .with_context(|| format!("removing {} after a failed context", spec.tag))?;
            }
            return writer_result
                .and_then(|()| bail!("the build context of {} was not sent", spec.tag));
        }
        if !status.success() {
            bail!(
                "docker build of {} failed ({status}); last output:\n{}",
                spec.tag,
                tail.join("\n")
            );
        }
        // A broken pipe after a successful build cannot happen; any other writer error means
        // the context we hashed may not be what was sent.
        writer_result.with_context(|| format!("streaming the build context of {}", spec.tag))?;
        self.image_id(&spec.tag)?.with_context(|| {
            format!(
                "docker build of {} succeeded but the tag is missing",
                spec.tag
            )
        })
    }

    /// Removes images; missing ones are not an error. Never forced: an image some container
    /// still uses is refused by the daemon (a "conflict" error) rather than untagged under it.
    pub fn image_rm(&self, references: &[String]) -> Result<()> {
        if references.is_empty() {
            return Ok(());
        }
        let sh = self.sh;
        let out = self
            .docker(cmd!(sh, "docker image rm {references...}"))
            .ignore_status()
            .output()
            .context("docker image rm: could not run docker")?;
        if !out.status.success() && !is_missing(&out.stderr) {
            bail!("docker image rm: {}", stderr_summary(&out.stderr));
        }
        Ok(())
    }

    /// Creates a bridge network with labels, unless it exists.
    pub fn network_create(&self, name: &str, labels: &BTreeMap<String, String>) -> Result<()> {
        if self.exists(ObjectKind::Network, name)? {
            return Ok(());
        }
        let sh = self.sh;
        let label_args = label_args(labels);
        self.read(
            cmd!(sh, "docker network create {label_args...} {name}"),
            &format!("docker network create {name}"),
        )?;
        Ok(())
    }

    /// Creates a named volume with labels (a no-op when it exists).
    pub fn volume_create(&self, name: &str, labels: &BTreeMap<String, String>) -> Result<()> {
        if self.exists(ObjectKind::Volume, name)? {
            return Ok(());
        }
        let sh = self.sh;
        let label_args = label_args(labels);
        self.read(
            cmd!(sh, "docker volume create {label_args...} {name}"),
            &format!("docker volume create {name}"),
        )?;
        Ok(())
    }

    /// Whether an object of `kind` named `name` exists.
    pub fn exists(&self, kind: ObjectKind, name: &str) -> Result<bool> {
        let sh = self.sh;
        let noun = kind.noun();
        let out = self
            .docker(cmd!(sh, "docker {noun} inspect --format {NAME_FMT} {name}"))
            .ignore_status()
            .output()
            .with_context(|| format!("docker {noun} inspect: could not run docker"))?;
        if out.status.success() {
            Ok(true)
        } else if is_missing(&out.stderr) {
            Ok(false)
        } else {
            bail!(
                "docker {noun} inspect {name}: {}",
                stderr_summary(&out.stderr)
            )
        }
    }

    /// Removes objects of one kind (containers forcibly, with their anonymous volumes);
    /// missing objects are not an error.
    pub fn remove(&self, kind: ObjectKind, names: &[String]) -> Result<()> {
        if names.is_empty() {
            return Ok(());
        }
        if kind == ObjectKind::Image {
            return self.image_rm(names);
        }
        let sh = self.sh;
        let noun = kind.noun();
        let force: &[&str] = match kind {
            ObjectKind::Container => &["--force", "--volumes"],
            ObjectKind::Volume => &["--force"],
            _ => &[],
        };
        // One call per object so that one missing name does not hide the others' errors.
        for name in names {
            let out = self
                .docker(cmd!(sh, "docker {noun} rm {force...} {name}"))
                .ignore_status()
                .output()
                .with_context(|| format!("docker {noun} rm: could not run docker"))?;
            if !out.status.success() && !is_missing(&out.stderr) {
                bail!("docker {noun} rm {name}: {}", stderr_summary(&out.stderr));
            }
        }
        Ok(())
    }

    /// Names (images: `repo:tag` references, or IDs for untagged ones) of our objects
    /// of `kind` carrying every label in `labels`.
    pub fn list(&self, kind: ObjectKind, labels: &BTreeMap<String, String>) -> Result<Vec<String>> {
        let sh = self.sh;
        let mut filters = Vec::new();
        for (k, v) in labels {
            filters.push("--filter".to_owned());
            filters.push(format!("label={k}={v}"));
        }
        let out = match kind {
            ObjectKind::Container => self.read(
                cmd!(
                    sh,
                    "docker container ls --all {filters...} --format {NAMES_FMT}"
                ),
                "docker container ls",
            )?,
            ObjectKind::Network => self.read(
                cmd!(sh, "docker network ls {filters...} --format {NAME_FMT}"),
                "docker network ls",
            )?,
            ObjectKind::Volume => self.read(
                cmd!(sh, "docker volume ls {filters...} --format {NAME_FMT}"),
                "docker volume ls",
            )?,
            ObjectKind::Image => self.read(
                cmd!(sh, "docker image ls {filters...} --format {IMAGE_LS_FMT}"),
                "docker image ls",
            )?,
        };
        let mut names: Vec<String> = out
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                if kind == ObjectKind::Image {
                    let (reference, id) = l.split_once('\t').unwrap_or((l, l));
                    if reference.contains("<none>") {
                        id.to_owned()
                    } else {
                        reference.to_owned()
                    }
                } else {
                    l.trim().to_owned()
                }
            })
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Starts a detached container. Secret values travel only in the child's environment.
    pub fn run(&self, spec: &RunSpec) -> Result<String> {
        let sh = self.sh;
        let mut args: Vec<String> = vec!["--detach".into(), "--name".into(), spec.name.clone()];
        if let Some(net) = &spec.network {
            args.push("--network".into());
            args.push(net.clone());
        }
        if let Some(alias) = &spec.network_alias {
            args.push("--network-alias".into());
            args.push(alias.clone());
        }
        for (k, v) in &spec.env {
            args.push("--env".into());
            args.push(format!("{k}={v}"));
        }
        for k in spec.secret_env.keys() {
            // `-e NAME` without `=` makes the CLI copy the value from its own environment.
            args.push("--env".into());
            args.push(k.clone());
        }
        for p in &spec.publish {
            args.push("--publish".into());
            args.push(p.clone());
        }
        for v in &spec.volumes {
            args.push("--volume".into());
            args.push(v.clone());
        }
        args.extend(label_args(&spec.labels));
        if let Some(memory) = &spec.memory {
            args.push("--memory".into());
            args.push(memory.clone());
        }
        if spec.init {
            args.push("--init".into());
        }
        if let Some(policy) = &spec.restart {
            args.push("--restart".into());
            args.push(policy.clone());
        }
        if let Some(dir) = &spec.workdir {
            args.push("--workdir".into());
            args.push(dir.clone());
        }
        if let Some(hc) = &spec.health_cmd {
            args.extend(
                [
                    "--health-cmd",
                    hc,
                    "--health-interval",
                    "1s",
                    "--health-timeout",
                    "5s",
                    "--health-retries",
                    "60",
                ]
                .map(String::from),
            );
        }
        args.push(spec.image.clone());
        args.extend(spec.command.iter().cloned());
        let cmd = cmd!(sh, "docker run {args...}").envs(&spec.secret_env);
        self.read(cmd, &format!("docker run {}", spec.name))
    }

    /// `docker container inspect` of `name`, or `None` when it does not exist.
    pub fn container_inspect(&self, name: &str) -> Result<Option<ContainerInfo>> {
        let Some(stdout) = self.inspect_container(name, &[])? else {
            return Ok(None);
        };
        parse_container_inspect(&stdout)
            .with_context(|| format!("parsing docker container inspect {name}"))
    }

    /// Stdout of `docker container inspect [ARGS...] NAME`, or `None` when it does not exist.
    /// Never quotes stdout in an error (it may hold the container's environment).
    fn inspect_container(&self, name: &str, args: &[&str]) -> Result<Option<Vec<u8>>> {
        let sh = self.sh;
        let out = self
            .docker(cmd!(sh, "docker container inspect {args...} {name}"))
            .ignore_status()
            .output()
            .context("docker container inspect: could not run docker")?;
        if out.status.success() {
            return Ok(Some(out.stdout));
        }
        if is_missing(&out.stderr) {
            return Ok(None);
        }
        bail!(
            "docker container inspect {name}: {}",
            stderr_summary(&out.stderr)
        )
    }

    /// The value of one environment variable in a container's configuration, or `None`.
    /// The caller must treat it as secret (it may be a password); it is never logged here.
    pub fn container_env_var(&self, name: &str, key: &str) -> Result<Option<String>> {
        let Some(stdout) = self.inspect_container(name, &["--format", ENV_FMT])? else {
            return Ok(None);
        };
        let env: Vec<String> = serde_json::from_slice(&stdout).unwrap_or_default();
        let prefix = format!("{key}=");
        Ok(env
            .into_iter()
            .find_map(|kv| kv.strip_prefix(&prefix).map(str::to_owned)))
    }

    /// The host address a container port is published on (`docker port`), e.g. `127.0.0.1:49153`.
    pub fn port(&self, name: &str, container_port: u16) -> Result<String> {
        let sh = self.sh;
        let port = format!("{container_port}/tcp");
        let out = self.read(
            cmd!(sh, "docker port {name} {port}"),
            &format!("docker port {name} {port}"),
        )?;
        // One line per address family; prefer IPv4.
        let line = out
            .lines()
            .find(|l| l.starts_with("0.0.0.0") || l.starts_with("127."))
            .or_else(|| out.lines().next())
            .with_context(|| format!("container {name} publishes no {port}"))?;
        Ok(line.replace("0.0.0.0", "127.0.0.1").trim().to_owned())
    }

    /// The last `lines` lines of a container's log (stdout and stderr merged).
    pub fn logs_tail(&self, name: &str, lines: usize) -> Result<String> {
        let sh = self.sh;
        let n = lines.to_string();
        let out = self
            .docker(cmd!(sh, "docker logs --tail {n} {name}"))
            .ignore_status()
            .output()
            .context("docker logs: could not run docker")?;
        let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
        s.push_str(&String::from_utf8_lossy(&out.stderr));
        Ok(s)
    }

    /// `docker logs [--follow] [--tail N] [--since T] CONTAINER`, as a command for the caller to
    /// spawn and read: the container's stdout on its stdout, its stderr on its stderr. Following
    /// ends when the container stops or is removed.
    pub fn logs_command(
        &self,
        container: &str,
        follow: bool,
        tail: Option<u64>,
        since: Option<&str>,
    ) -> Command {
        let sh = self.sh;
        let mut args: Vec<String> = Vec::new();
        if follow {
            args.push("--follow".into());
        }
        if let Some(n) = tail {
            args.extend(["--tail".into(), n.to_string()]);
        }
        if let Some(t) = since {
            args.extend(["--since".into(), t.to_owned()]);
        }
        self.docker(cmd!(sh, "docker logs {args...} {container}"))
            .into()
    }

    /// `docker events` of the containers carrying `label` (`key=value`) that start, one JSON
    /// object a line (`{{json .}}`: `id`, `Actor.Attributes.name`, `timeNano`, ...), as a
    /// command for the caller to spawn and read; it runs until killed.
    pub fn container_starts_command(&self, label: &str) -> Command {
        let sh = self.sh;
        let label = format!("label={label}");
        let mut command: Command = self
            .docker(cmd!(
                sh,
                "docker events --filter type=container --filter event=start --filter {label} --format {JSON_FMT}"
            ))
            .into();
        command.stdin(Stdio::null());
        command
    }

    /// `docker kill`: SIGKILL to a running container (a crash, for fault tests).
    pub fn kill(&self, name: &str) -> Result<()> {
        let sh = self.sh;
        self.read(
            cmd!(sh, "docker kill {name}"),
            &format!("docker kill {name}"),
        )?;
        Ok(())
    }

    /// `docker stop --time 0`: stops `name` at once (SIGKILL right after SIGTERM); succeeds on
    /// a container that is not running.
    pub fn stop_now(&self, name: &str) -> Result<()> {
        let sh = self.sh;
        self.read(
            cmd!(sh, "docker stop --time 0 {name}"),
            &format!("docker stop {name}"),
        )?;
        Ok(())
    }

    /// `docker rename`.
    pub fn rename(&self, name: &str, new_name: &str) -> Result<()> {
        let sh = self.sh;
        self.read(
            cmd!(sh, "docker rename {name} {new_name}"),
            &format!("docker rename {name} {new_name}"),
        )?;
        Ok(())
    }

    /// `docker start`: starts a stopped container again, with its configuration and volumes.
    pub fn start(&self, name: &str) -> Result<()> {
        let sh = self.sh;
        self.read(
            cmd!(sh, "docker start {name}"),
            &format!("docker start {name}"),
        )?;
        Ok(())
    }

    /// `docker exec [-i] CONTAINER ARGS...` as a command for the caller to run (through a task's
    /// `RunCx`, so its output becomes log lines and Ctrl-C stops it); `stdin` adds `-i`.
    pub fn exec(&self, container: &str, args: &[String], stdin: bool) -> Cmd<'a> {
        let sh = self.sh;
        let interactive: &[&str] = if stdin { &["--interactive"] } else { &[] };
        self.docker(cmd!(
            sh,
            "docker exec {interactive...} {container} {args...}"
        ))
    }

    /// `docker cp CONTAINER:PATH -`: the file as a tar stream on stdout, for the caller to
    /// spawn and read (the daemon may be remote: no host path is involved).
    pub fn copy_out_command(&self, container: &str, path: &str) -> Command {
        let sh = self.sh;
        let source = format!("{container}:{path}");
        let mut command: Command = self.docker(cmd!(sh, "docker cp {source} -")).into();
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// `docker stats` streaming one `{{.MemUsage}}` line per refresh for `name`, as a command
    /// for the caller to spawn and read (it runs until killed).
    pub fn stats_memory_command(&self, name: &str) -> Command {
        let sh = self.sh;
        let mut command: Command = self
            .docker(cmd!(sh, "docker stats --format {MEM_USAGE_FMT} {name}"))
            .into();
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        command
    }
}

/// The CLI's three-line "legacy builder is deprecated" notice (and blank lines): noise in logs.
fn is_legacy_builder_notice(line: &str) -> bool {
    let t = line.trim();
    t.is_empty()
        || t.starts_with("DEPRECATED: The legacy builder")
        || t.starts_with("Install the buildx component")
        || t == "https://docs.docker.com/go/buildx/"
}

/// The digest in `docker push`'s `TAG: digest: sha256:… size: N` line.
fn pushed_digest(stdout: &str) -> Option<String> {
    stdout.lines().rev().find_map(|line| {
        let (_, rest) = line.split_once("digest: ")?;
        let digest = rest.split_whitespace().next()?;
        (digest.starts_with("sha256:") && digest.len() == 71).then(|| digest.to_owned())
    })
}

/// True when `e` comes from writing to a pipe whose reader is gone.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// `s` without ANSI escape sequences (`ESC [ ... letter`).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn label_args(labels: &BTreeMap<String, String>) -> Vec<String> {
    labels
        .iter()
        .flat_map(|(k, v)| ["--label".to_owned(), format!("{k}={v}")])
        .collect()
}

/// Docker's wordings for a missing object differ by object and version
/// ("No such container", "get x: no such volume", "network x not found").
fn is_missing(stderr: &[u8]) -> bool {
    let s = String::from_utf8_lossy(stderr).to_ascii_lowercase();
    s.contains("no such") || s.contains("not found")
}

fn stderr_summary(stderr: &[u8]) -> String {
    let s = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = s
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("DEPRECATED:"))
        .collect();
    let start = lines.len().saturating_sub(5);
    let text = lines[start..].join("\n");
    if text.is_empty() {
        "failed with no output".to_owned()
    } else {
        text
    }
}

fn parse_container_inspect(json: &[u8]) -> Result<Option<ContainerInfo>> {
    let v: serde_json::Value = serde_json::from_slice(json)?;
    let Some(c) = v.as_array().and_then(|a| a.first()) else {
        return Ok(None);
    };
    let s = |p: &str| {
        c.pointer(p)
            .and_then(|x| x.as_str())
            .unwrap_or("")
            .to_owned()
    };
    let labels = c
        .pointer("/Config/Labels")
        .and_then(|l| l.as_object())
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
                .collect()
        })
        .unwrap_or_default();
    Ok(Some(ContainerInfo {
        id: s("/Id"),
        image_id: s("/Image"),
        status: s("/State/Status"),
        health: c
            .pointer("/State/Health/Status")
            .and_then(|x| x.as_str())
            .map(str::to_owned),
        exit_code: c
            .pointer("/State/ExitCode")
            .and_then(|x| x.as_i64())
            .unwrap_or(0),
        labels,
        memory_limit: c
            .pointer("/HostConfig/Memory")
            .and_then(|x| x.as_u64())
            .unwrap_or(0),
        oom_killed: c
            .pointer("/State/OOMKilled")
            .and_then(|x| x.as_bool())
            .unwrap_or(false),
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_container_inspect() {
        let json = br#"[{"Id":"abc","Image":"sha256:def","State":{"Status":"running","ExitCode":0,
            "Health":{"Status":"healthy"}},"Config":{"Labels":{"a":"b"}}}]"#;
        let info = parse_container_inspect(json).unwrap().unwrap();
        assert_eq!(info.id, "abc");
        assert_eq!(info.image_id, "sha256:def");
        assert!(info.is_running());
        assert_eq!(info.health.as_deref(), Some("healthy"));
        assert_eq!(info.labels.get("a").map(String::as_str), Some("b"));
        assert_eq!(info.memory_limit, 0);
        assert!(!info.oom_killed);
        let limited = br#"[{"Id":"a","State":{"Status":"exited","OOMKilled":true},
            "HostConfig":{"Memory":1073741824}}]"#;
        let info = parse_container_inspect(limited).unwrap().unwrap();
        assert_eq!(info.memory_limit, 1 << 30);
        assert!(info.oom_killed);
        assert_eq!(parse_container_inspect(b"[]").unwrap(), None);
    }

    #[test]
    fn the_pushed_digest_is_read_from_the_last_line() {
        let d = format!("sha256:{}", "ab".repeat(32));
        let out = format!(
            "The push refers to repository [127.0.0.1:5000/t/x]\n5f70bf18a086: Pushed\n\
             0123abcd: digest: {d} size: 528\n"
        );
        assert_eq!(pushed_digest(&out), Some(d));
        assert_eq!(
            pushed_digest("denied: requested access to the resource is denied"),
            None
        );
    }

    #[test]
    fn strips_ansi_colours() {
        assert_eq!(
            strip_ansi("\u{1b}[0m\u{1b}[91m   Compiling x"),
            "   Compiling x"
        );
        assert_eq!(strip_ansi("plain"), "plain");
    }

    #[test]
    fn stderr_summary_drops_noise() {
        assert_eq!(
            stderr_summary(b"DEPRECATED: legacy\n\nError: boom\n"),
            "Error: boom"
        );
        assert_eq!(stderr_summary(b""), "failed with no output");
    }

    #[test]
    fn missing_object_wordings() {
        assert!(is_missing(
            b"Error response from daemon: get x-pgdata: no such volume"
        ));
        assert!(is_missing(b"Error: No such container: x"));
        assert!(is_missing(
            b"Error response from daemon: network x not found"
        ));
        assert!(!is_missing(b"Cannot connect to the Docker daemon"));
    }
}

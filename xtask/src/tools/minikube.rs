//! The `minikube` CLI: profile status and configuration, docker-env, ip, and in-cluster images.
//!
//! Output formats checked against minikube's source: `status -o json` marshals
//! `cluster.Status{Name,Host,Kubelet,APIServer,Kubeconfig,Worker,...}` (one object for one node,
//! an array for several) and exits non-zero when anything is not running; `profile list -o json`
//! prints `{"invalid":[...],"valid":[{"Name","Status","Config":{"Driver","CPUs","Memory",
//! "KubernetesConfig":{"ContainerRuntime",...}}}]}` (or `{"error":...}`, exit 80);
//! `docker-env --shell none` prints bare `KEY=value` lines (no quotes, no `export`, no usage
//! hint). A missing profile exits 85 (`reason.ExGuestNotFound`) with a message whose wording
//! changed between versions. `image ls --format json` prints `[{"id","repoDigests","repoTags",
//! "size"}]`; `image load` exits 0 when the image was not found (it only warns), and before
//! v1.21 kept an image already loaded under the same tag (kubernetes/minikube#11276, #16032), so
//! a load is confirmed by image ID afterwards.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use xshell::{Shell, cmd};

use super::{ChildEnv, capture, checked};

/// The state of one minikube profile as `minikube status` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileState {
    /// `minikube status` knows no such profile.
    NotFound,
    /// The control plane's component states.
    Exists(NodeStatus),
}

/// One node's component states (`Running`, `Stopped`, `Configured`, `Misconfigured`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NodeStatus {
    /// Node name (the profile name for the control plane).
    pub name: String,
    /// VM/container state.
    pub host: String,
    /// Kubelet state.
    pub kubelet: String,
    /// API server state (`Irrelevant` on workers).
    #[serde(rename = "APIServer")]
    pub api_server: String,
    /// Whether kubectl's kubeconfig points at this profile.
    pub kubeconfig: String,
    /// True for worker nodes.
    #[serde(default)]
    pub worker: bool,
}

impl NodeStatus {
    /// True when the host, kubelet and API server all run.
    pub fn is_running(&self) -> bool {
        self.host == "Running" && self.kubelet == "Running" && self.api_server == "Running"
    }
}

/// A profile's configuration from `minikube profile list -o json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileConfig {
    /// Profile name.
    pub name: String,
    /// Status column (`OK`, `Running`, `Stopped`, ...; differs between minikube versions).
    pub status: String,
    /// VM driver (`docker`, `kvm2`, `hyperkit`, ...).
    pub driver: String,
    /// Container runtime (`docker`, `containerd`, `cri-o`).
    pub container_runtime: String,
    /// CPUs given to the node.
    pub cpus: u32,
    /// Memory given to the node, in MB.
    pub memory_mb: u64,
}

/// Parses `minikube status -o json` (object or array) into the control plane's status.
pub fn parse_status(stdout: &str) -> Result<NodeStatus> {
    let value: serde_json::Value = serde_json::from_str(stdout.trim())
        .with_context(|| format!("`minikube status -o json` printed no JSON: {stdout:?}"))?;
    let nodes: Vec<NodeStatus> = if value.is_array() {
        serde_json::from_value(value)?
    } else {
        vec![serde_json::from_value(value).context("unexpected `minikube status` JSON")?]
    };
    nodes
        .into_iter()
        .find(|n| !n.worker)
        .context("`minikube status` listed no control-plane node")
}

/// minikube's exit code for a missing profile (`reason.ExGuestNotFound`).
const EX_GUEST_NOT_FOUND: i32 = 85;

/// `minikube -p PROFILE status -o json`; a non-zero exit only means "not all running".
pub fn status(sh: &Shell, profile: &str) -> Result<ProfileState> {
    let out = capture(
        cmd!(sh, "minikube -p {profile} status -o json"),
        "minikube status",
    )?;
    classify_status(&out).map_err(|e| e.context(format!("minikube status -p {profile}")))
}

/// The state behind one `minikube status -o json` answer. The exit code is a bit mask of
/// what is not running (1 host, 2 cluster, 4 kubeconfig) next to valid JSON; a missing
/// profile exits 85 after a message that depends on the version (`Profile "p" not found`
/// since about v1.32, `There is no local cluster named "p"` before), so the code decides.
///
/// Since v1.35 (`pkg/minikube/cluster/status.go` `GetStatus`) a node whose host is missing or
/// unreadable (Docker Desktop stopped, the node container deleted) makes minikube print `null`
/// and exit 7; before, it printed the node with `"Host":"Nonexistent"`. Both are a profile that
/// exists and does not run.
pub fn classify_status(out: &super::ToolOutput) -> Result<ProfileState> {
    if out.stdout.trim() == "null" {
        let gone = "Nonexistent".to_owned();
        return Ok(ProfileState::Exists(NodeStatus {
            name: String::new(),
            host: gone.clone(),
            kubelet: gone.clone(),
            api_server: gone.clone(),
            kubeconfig: gone,
            worker: false,
        }));
    }
    match parse_status(&out.stdout) {
        Ok(node) => Ok(ProfileState::Exists(node)),
        Err(_)
            if out.code == Some(EX_GUEST_NOT_FOUND)
                || [&out.stdout, &out.stderr].iter().any(|t| {
                    super::says_not_found(t) || t.contains("There is no local cluster named")
                }) =>
        {
            Ok(ProfileState::NotFound)
        }
        Err(e) => Err(e.context(out.tail(5))),
    }
}

/// Fails, naming the command that fixes it, unless the profile exists and runs.
pub fn ensure_running(sh: &Shell, profile: &str) -> Result<()> {
    match status(sh, profile)? {
        ProfileState::Exists(node) if node.is_running() => Ok(()),
        ProfileState::Exists(node) => Err(crate::error::Error::Usage {
            message: format!(
                "Minikube profile `{profile}` is not running (host {}, kubelet {}, apiserver {})",
                node.host, node.kubelet, node.api_server
            ),
            fix: format!("start it with `minikube start -p {profile}`"),
        }
        .into()),
        ProfileState::NotFound => Err(crate::error::Error::Usage {
            message: format!("Minikube profile `{profile}` does not exist"),
            fix: format!("create it with `minikube start -p {profile} --cpus=2 --memory=4096`"),
        }
        .into()),
    }
}

/// Whether `--cpus`/`--memory` is `no-limit`: minikube stores 0 for it, allowed with the docker
/// and podman drivers only (`cmd/minikube/cmd/start_flags.go` `getCPUCount`/`getMemorySize`,
/// v1.32+), and the node then has every CPU and all the memory of the host (or Docker's VM).
pub fn is_no_limit(value: u64, driver: &str) -> bool {
    value == 0 && matches!(driver, "docker" | "podman")
}

/// `minikube version --short` → `v1.33.1`.
pub fn version(sh: &Shell) -> Result<String> {
    let out = checked(cmd!(sh, "minikube version --short"), "minikube version")?;
    Ok(out.stdout.trim().to_owned())
}

#[derive(Deserialize)]
struct ProfileList {
    #[serde(default)]
    valid: Vec<RawProfile>,
    #[serde(default)]
    invalid: Vec<RawProfile>,
    /// Set instead of the lists when minikube could not read its profiles (exit 80).
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawProfile {
    name: String,
    #[serde(default)]
    status: String,
    config: Option<RawConfig>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawConfig {
    #[serde(default)]
    driver: String,
    #[serde(rename = "CPUs", default)]
    cpus: u32,
    #[serde(default)]
    memory: u64,
    kubernetes_config: Option<RawK8sConfig>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawK8sConfig {
    #[serde(default)]
    container_runtime: String,
}

/// Parses `minikube profile list -o json` and picks `profile`; `None` when it is not valid.
pub fn parse_profile_list(stdout: &str, profile: &str) -> Result<Option<ProfileConfig>> {
    let list: ProfileList = serde_json::from_str(stdout.trim())
        .with_context(|| "`minikube profile list -o json` printed unexpected output")?;
    if let Some(err) = list.error {
        bail!("`minikube profile list` could not read the profiles: {err}");
    }
    if list.invalid.iter().any(|p| p.name == profile) {
        bail!(
            "minikube profile {profile:?} is invalid; fix: minikube delete -p {profile} && minikube start -p {profile}"
        );
    }
    Ok(list.valid.into_iter().find(|p| p.name == profile).map(|p| {
        let cfg = p.config;
        ProfileConfig {
            name: p.name,
            status: p.status,
            driver: cfg.as_ref().map(|c| c.driver.clone()).unwrap_or_default(),
            container_runtime: cfg
                .as_ref()
                .and_then(|c| c.kubernetes_config.as_ref())
                .map(|k| k.container_runtime.clone())
                .unwrap_or_default(),
            cpus: cfg.as_ref().map_or(0, |c| c.cpus),
            memory_mb: cfg.as_ref().map_or(0, |c| c.memory),
        }
    }))
}

/// `minikube profile list -o json`, narrowed to `profile`. It checks every profile's status (slow;
/// `--light` would skip the invalid ones we report), so its answer is kept for the rest of the
/// process, per PATH, `MINIKUBE_HOME` and profile: driver, runtime, CPUs and memory do not change
/// while a profile exists, and one command asks several times (each image task, the smoke test).
pub fn profile_config(sh: &Shell, profile: &str) -> Result<Option<ProfileConfig>> {
    type Cache = std::sync::Mutex<BTreeMap<String, Option<ProfileConfig>>>;
    static CACHE: std::sync::OnceLock<Cache> = std::sync::OnceLock::new();
    let key = format!(
        "{:?}\0{:?}\0{profile}",
        sh.var_os("PATH"),
        sh.var_os("MINIKUBE_HOME")
    );
    let cache = CACHE.get_or_init(Cache::default);
    if let Some(hit) = cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return Ok(hit);
    }
    let out = capture(
        cmd!(sh, "minikube profile list -o json"),
        "minikube profile list",
    )?;
    let config = parse_profile_list(&out.stdout, profile)?;
    if let Ok(mut c) = cache.lock() {
        c.insert(key, config.clone());
    }
    Ok(config)
}

/// Parses `docker-env --shell none` output: `KEY=value` per line.
pub fn parse_docker_env(stdout: &str) -> Result<ChildEnv> {
    let mut env = BTreeMap::new();
    for line in stdout.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line.split_once('=').with_context(|| {
            format!("unexpected line in `minikube docker-env` output: {line:?}")
        })?;
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            bail!("unexpected variable name in `minikube docker-env` output: {key:?}");
        }
        env.insert(key.to_owned(), value.to_owned());
    }
    if !env.contains_key("DOCKER_HOST") {
        bail!("`minikube docker-env` gave no DOCKER_HOST (output: {stdout:?})");
    }
    Ok(env)
}

/// `minikube -p PROFILE docker-env --shell none`: the environment that points a docker CLI at
/// the profile's daemon. Returned for child processes only.
pub fn docker_env(sh: &Shell, profile: &str) -> Result<ChildEnv> {
    let out = checked(
        cmd!(sh, "minikube -p {profile} docker-env --shell none"),
        "minikube docker-env",
    )?;
    parse_docker_env(&out.stdout)
}

/// Whether a profile's container runtime (`KubernetesConfig.ContainerRuntime`) is Docker; an
/// empty one is minikube's default, Docker.
pub fn is_docker_runtime(runtime: &str) -> bool {
    runtime.is_empty() || runtime == "docker"
}

/// `minikube -p PROFILE ip`, validated as an IP address.
pub fn ip(sh: &Shell, profile: &str) -> Result<std::net::IpAddr> {
    let out = checked(cmd!(sh, "minikube -p {profile} ip"), "minikube ip")?;
    let text = out.stdout.trim();
    text.parse()
        .with_context(|| format!("`minikube -p {profile} ip` printed {text:?}, not an IP address"))
}

/// Whether this host cannot reach the node's IP, so Services must be reached through a
/// port-forward: minikube's own rule (`driver.NeedsPortForward`) for its container drivers
/// (docker, podman) on macOS, Windows and WSL. Other cases minikube also forwards for (a
/// rootless or remote Docker daemon) are caught by trying the node's address first.
pub fn needs_port_forward(driver: &str, os: &str, wsl: bool) -> bool {
    matches!(driver, "docker" | "podman") && (matches!(os, "macos" | "windows") || wsl)
}

/// Whether this process runs under WSL (minikube's `IsMicrosoftWSL`: any of the variables
/// WSL sets).
pub fn is_wsl() -> bool {
    ["WSL_DISTRO_NAME", "WSLPATH", "WSLENV"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
}

/// Normalizes an image reference so `docker.io/library/x:t` and `x:t` compare equal.
pub fn normalize_image(reference: &str) -> String {
    let r = reference.trim();
    let r = r.strip_prefix("docker.io/").unwrap_or(r);
    r.strip_prefix("library/").unwrap_or(r).to_owned()
}

/// An image ID without its `sha256:` prefix: containerd's CRI reports it with the prefix,
/// CRI-O's without, Docker always with.
pub fn bare_id(id: &str) -> &str {
    id.trim().strip_prefix("sha256:").unwrap_or(id.trim())
}

/// One image of `minikube image ls --format json`: `cruntime.ListImage` (`id`, `repoDigests`,
/// `repoTags`, `size`; pkg/minikube/cruntime/cruntime.go, v1.25.0 to HEAD).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListedImage {
    /// The runtime's image ID (`crictl images` `id` on containerd and CRI-O).
    pub id: String,
    /// Its tags, as the runtime spells them (`docker.io/library/x:t`).
    #[serde(default)]
    pub repo_tags: Vec<String>,
}

/// Parses `minikube image ls --format json`: one JSON array (`json.Marshal` of the images of
/// every running node, merged by ID), then a newline.
pub fn parse_image_list(stdout: &str) -> Result<Vec<ListedImage>> {
    let text = stdout.trim();
    if text.is_empty() || text == "null" {
        return Ok(Vec::new());
    }
    serde_json::from_str(text).with_context(|| {
        format!(
            "`minikube image ls --format json` printed unexpected output: {:?}",
            text.chars().take(200).collect::<String>()
        )
    })
}

/// `minikube -p PROFILE image ls --format json`: the images of the profile's running nodes.
pub fn images(sh: &Shell, profile: &str) -> Result<Vec<ListedImage>> {
    let out = checked(
        cmd!(sh, "minikube -p {profile} image ls --format json"),
        "minikube image ls",
    )?;
    parse_image_list(&out.stdout)
}

/// The IDs the profile's nodes hold under `tag` (bare, see [`bare_id`]), sorted: none when no
/// node has it, more than one when nodes disagree (`image ls` merges the nodes' lists by ID).
pub fn ids_of(listed: &[ListedImage], tag: &str) -> Vec<String> {
    let want = normalize_image(tag);
    let mut ids: Vec<String> = listed
        .iter()
        .filter(|i| i.repo_tags.iter().any(|t| normalize_image(t) == want))
        .map(|i| bare_id(&i.id).to_owned())
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// The arguments after `minikube` that load `tag` from the local Docker daemon into every node
/// of `profile`: `--daemon` so minikube never falls back to pulling a same-named image from a
/// registry (without it, it tries both), `--overwrite` (the default since v1.25.0, said
/// explicitly) so a tag the node already holds is replaced.
pub fn load_args(profile: &str, tag: &str) -> Vec<String> {
    [
        "-p",
        profile,
        "image",
        "load",
        "--daemon",
        "--overwrite",
        tag,
    ]
    .map(str::to_owned)
    .to_vec()
}

/// `minikube -p PROFILE image rm TAG`.
pub fn image_rm(sh: &Shell, profile: &str, tag: &str) -> Result<()> {
    checked(
        cmd!(sh, "minikube -p {profile} image rm {tag}"),
        &format!("minikube image rm {tag}"),
    )?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn container_drivers_off_linux_need_a_port_forward() {
        for (driver, os, wsl, want) in [
            ("docker", "macos", false, true),
            ("podman", "windows", false, true),
            ("docker", "linux", true, true),
            ("docker", "linux", false, false),
            ("kvm2", "linux", false, false),
            ("hyperkit", "macos", false, false),
            ("qemu2", "macos", false, false),
            ("hyperv", "windows", false, false),
        ] {
            assert_eq!(
                needs_port_forward(driver, os, wsl),
                want,
                "{driver} on {os}, wsl {wsl}"
            );
        }
    }

    #[test]
    fn status_single_node_object() {
        let s = parse_status(
            r#"{"Name":"minikube","Host":"Running","Kubelet":"Running","APIServer":"Running","Kubeconfig":"Configured","Worker":false}"#,
        )
        .unwrap();
        assert!(s.is_running());
        assert_eq!(s.kubeconfig, "Configured");
    }

    #[test]
    fn status_stopped_and_multi_node() {
        let s = parse_status(
            r#"[{"Name":"m02","Host":"Running","Kubelet":"Running","APIServer":"Irrelevant","Kubeconfig":"Irrelevant","Worker":true},
                {"Name":"dev","Host":"Stopped","Kubelet":"Stopped","APIServer":"Stopped","Kubeconfig":"Stopped","Worker":false}]"#,
        )
        .unwrap();
        assert_eq!(s.name, "dev");
        assert!(!s.is_running());
    }

    #[test]
    fn status_garbage_is_an_error() {
        assert!(parse_status("").is_err());
        assert!(parse_status("minikube\ntype: Control Plane").is_err());
    }

    fn out(code: i32, stdout: &str, stderr: &str) -> crate::tools::ToolOutput {
        crate::tools::ToolOutput {
            code: Some(code),
            stdout: stdout.into(),
            stderr: stderr.into(),
        }
    }

    #[test]
    fn status_classifies_missing_profiles_of_every_version_and_stopped_ones() {
        // v1.32+: `Profile "p" not found` as a JSON event; older: "There is no local cluster".
        let new = r#"{"specversion":"1.0","type":"io.k8s.sigs.minikube.info","data":{"message":"Profile \"p\" not found. Run \"minikube profile list\" to view all profiles."}}"#;
        assert_eq!(
            classify_status(&out(85, new, "")).unwrap(),
            ProfileState::NotFound
        );
        let old = r#"{"data":{"message":"There is no local cluster named \"p\""}}"#;
        assert_eq!(
            classify_status(&out(85, old, "")).unwrap(),
            ProfileState::NotFound
        );
        assert_eq!(
            classify_status(&out(1, "", "* There is no local cluster named \"p\"")).unwrap(),
            ProfileState::NotFound
        );
        // A stopped profile exits with its bit mask (7) and valid JSON: it exists.
        let stopped = r#"{"Name":"p","Host":"Stopped","Kubelet":"Stopped","APIServer":"Stopped","Kubeconfig":"Stopped","Worker":false}"#;
        match classify_status(&out(7, stopped, "")).unwrap() {
            ProfileState::Exists(n) => assert!(!n.is_running()),
            other => panic!("{other:?}"),
        }
        // Anything else is an error with minikube's words.
        let err = classify_status(&out(80, "", "X Exiting due to GUEST_STATUS: boom")).unwrap_err();
        assert!(format!("{err:#}").contains("GUEST_STATUS: boom"), "{err:#}");
    }

    #[test]
    fn a_missing_host_is_a_profile_that_does_not_run() {
        // v1.35+: `null`, exit 7 (the host does not exist or cannot be read).
        match classify_status(&out(7, "null", "")).unwrap() {
            ProfileState::Exists(n) => {
                assert!(!n.is_running());
                assert_eq!(n.host, "Nonexistent");
            }
            other => panic!("{other:?}"),
        }
        // Before v1.35: the node with `"Host":"Nonexistent"`.
        let old = r#"{"Name":"p","Host":"Nonexistent","Kubelet":"Nonexistent","APIServer":"Nonexistent","Kubeconfig":"Nonexistent","Worker":false}"#;
        match classify_status(&out(7, old, "")).unwrap() {
            ProfileState::Exists(n) => assert!(!n.is_running()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn no_limit_is_zero_on_container_drivers_only() {
        assert!(is_no_limit(0, "docker"));
        assert!(is_no_limit(0, "podman"));
        assert!(!is_no_limit(0, "kvm2"));
        assert!(!is_no_limit(2, "docker"));
    }

    #[test]
    fn docker_env_none_shell_format() {
        let env = parse_docker_env(
            "DOCKER_TLS_VERIFY=1\nDOCKER_HOST=tcp://192.168.49.2:2376\nDOCKER_CERT_PATH=/home/u/.minikube/certs\nMINIKUBE_ACTIVE_DOCKERD=minikube\n",
        )
        .unwrap();
        assert_eq!(env["DOCKER_HOST"], "tcp://192.168.49.2:2376");
        assert_eq!(env["DOCKER_TLS_VERIFY"], "1");
        assert_eq!(env["DOCKER_CERT_PATH"], "/home/u/.minikube/certs");
        assert_eq!(env["MINIKUBE_ACTIVE_DOCKERD"], "minikube");
        assert_eq!(env.len(), 4);
    }

    #[test]
    fn docker_env_rejects_shell_syntax_and_missing_host() {
        assert!(parse_docker_env("export DOCKER_HOST=\"tcp://x:1\"\n").is_err());
        assert!(parse_docker_env("DOCKER_TLS_VERIFY=1\n").is_err());
        assert!(parse_docker_env("garbage\n").is_err());
    }

    #[test]
    fn profile_list_structure() {
        let json = r#"{"invalid":[],"valid":[{"Name":"other","Status":"OK","Config":{"Driver":"kvm2","CPUs":4,"Memory":8192,"KubernetesConfig":{"ContainerRuntime":"containerd"}}},
            {"Name":"minikube","Status":"Running","Config":{"Name":"minikube","Driver":"docker","CPUs":2,"Memory":4000,"KubernetesConfig":{"KubernetesVersion":"v1.30.0","ContainerRuntime":"docker"}}}]}"#;
        let p = parse_profile_list(json, "minikube").unwrap().unwrap();
        assert_eq!(
            p,
            ProfileConfig {
                name: "minikube".into(),
                status: "Running".into(),
                driver: "docker".into(),
                container_runtime: "docker".into(),
                cpus: 2,
                memory_mb: 4000
            }
        );
        assert!(parse_profile_list(json, "absent").unwrap().is_none());
        let invalid = r#"{"invalid":[{"Name":"bad","Status":"","Config":null}],"valid":[]}"#;
        let err = parse_profile_list(invalid, "bad").unwrap_err().to_string();
        assert!(err.contains("minikube delete -p bad"), "{err}");
        // No profiles at all is an empty answer, exit 0; an unreadable store is an error.
        assert!(
            parse_profile_list(r#"{"invalid":[],"valid":[]}"#, "minikube")
                .unwrap()
                .is_none()
        );
        let err = parse_profile_list(r#"{"error":{"Op":"open"}}"#, "minikube").unwrap_err();
        assert!(
            err.to_string().contains("could not read the profiles"),
            "{err}"
        );
    }

    #[test]
    fn image_ls_json_lists_ids_by_tag() {
        // What v1.33 prints for a containerd node: compact, one line.
        let out = r#"[{"id":"sha256:aa11","repoDigests":[],"repoTags":["docker.io/library/todo-backend:abc"],"size":"1234"},{"id":"bb22","repoDigests":["registry.k8s.io/pause@sha256:cc"],"repoTags":["registry.k8s.io/pause:3.9"],"size":"321"}]
"#;
        let listed = parse_image_list(out).unwrap();
        assert_eq!(ids_of(&listed, "todo-backend:abc"), ["aa11"]);
        assert_eq!(ids_of(&listed, "registry.k8s.io/pause:3.9"), ["bb22"]);
        assert!(ids_of(&listed, "todo-backend:other").is_empty());
        assert!(parse_image_list("null\n").unwrap().is_empty());
        assert!(parse_image_list("docker.io/library/x:t").is_err());
    }

    #[test]
    fn image_names_normalize() {
        assert_eq!(
            normalize_image("docker.io/library/todo-backend:abc"),
            "todo-backend:abc"
        );
        assert_eq!(
            normalize_image("registry.k8s.io/pause:3.9"),
            "registry.k8s.io/pause:3.9"
        );
    }
}

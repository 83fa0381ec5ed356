//! The kube target (`--target kube --context NAME`) end to end against TEST DOUBLES of kubectl,
//! helm, kind and k3d (`tests/doubles/`). Images are REALLY built by the local docker daemon; the
//! kind and k3d doubles' nodes are REAL containers (named as those tools name theirs) whose
//! stand-in crictl the pipeline asks, through a real `docker exec`, which image IDs they hold.
//! The kubeconfig's current context is a production-looking one throughout: nothing may use it.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use test_support::workspace_root as repo_root;

use crate::cluster::{
    CSRF_MARKER, FakeFrontend, JWT_MARKER, LLM_BASE_URL, LLM_MARKER, assert_no_marker, copy_dir,
    prerequisites,
};
use crate::support;

/// A project with a small app image, the real chart, the doubles on PATH and a kubeconfig of
/// four contexts: a kind cluster, a k3d cluster, a GKE one (current) and Docker Desktop.
struct Kube {
    project: support::Project,
    bin: PathBuf,
    state: PathBuf,
    id: String,
    images: [String; 2],
    kind_cluster: Option<String>,
    k3d_cluster: Option<String>,
}

impl Drop for Kube {
    fn drop(&mut self) {
        // The doubles' node containers, then every image of ours this test built.
        if let Some(c) = &self.kind_cluster {
            let _ = self.double("kind", &["delete", "cluster", "--name", c]);
        }
        if let Some(c) = &self.k3d_cluster {
            let _ = self.double("k3d", &["cluster", "delete", c]);
        }
        for repo in &self.images {
            let out = Command::new("docker")
                .args(["images", "--format", "{{.Repository}}:{{.Tag}}", repo])
                .output()
                .unwrap();
            for tag in String::from_utf8_lossy(&out.stdout).lines() {
                let _ = Command::new("docker")
                    .args(["rmi", "-f", tag])
                    .stdout(Stdio::null())
                    .status();
            }
        }
    }
}

impl Kube {
    fn new(name: &str) -> Kube {
        let id = format!("xtk{}{}", std::process::id(), name);
        let images = [format!("{id}-backend"), format!("{id}-frontend")];
        let pipeline = format!(
            r#"
[tasks.backend-image]
kind = "docker-image"
image = "{b}"
dockerfile = "app/Dockerfile"
context = "app"
build-args = {{ ROLE = "backend" }}

[tasks.frontend-image]
kind = "docker-image"
image = "{f}"
dockerfile = "app/Dockerfile"
context = "app"
build-args = {{ ROLE = "frontend" }}

[tasks.load-images]
kind = "image-load"
targets = ["kube"]
images = {{ backend = "backend-image", frontend = "frontend-image" }}

[tasks.secrets]
kind = "k8s-secret"
targets = ["kube"]
database-host = "todo-app-postgres"

[tasks.release]
kind = "helm-release"
targets = ["kube"]
deps = ["load-images", "secrets"]
inputs = ["k8s/todo-app"]
chart = "k8s/todo-app"
values-file = "values-dev.yaml"
images = {{ backend = "backend-image", frontend = "frontend-image" }}
secret-task = "secrets"
"#,
            b = images[0],
            f = images[1]
        );
        let project = support::Project::new(&pipeline);
        project.write(
            "app/Dockerfile",
            "FROM debian:bookworm-slim\nARG ROLE\nLABEL role=$ROLE\nCOPY hello.txt /hello.txt\n",
        );
        project.write("app/hello.txt", "hello\n");
        copy_dir(
            &repo_root().join("k8s/todo-app"),
            &project.path("k8s/todo-app"),
        );
        let bin = project.path("double-bin");
        let state = project.path("double-state");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(&state).unwrap();
        let doubles = repo_root().join("xtask/tests/doubles");
        for tool in ["kubectl", "helm", "kind", "k3d"] {
            std::os::unix::fs::symlink(doubles.join(format!("{tool}-double")), bin.join(tool))
                .unwrap();
        }
        // Nodes at TEST-NET-1 (RFC 5737), never routed: the NodePort probe cannot connect.
        let nodes = |names: &[String], runtime: &str| -> Value {
            names
                .iter()
                .map(|n| json!({"name": n, "ip": "192.0.2.1", "runtime": runtime}))
                .collect()
        };
        let k = Kube {
            project,
            bin,
            state,
            images,
            kind_cluster: None,
            k3d_cluster: None,
            id: id.clone(),
        };
        let kind_nodes = [format!("{id}-control-plane"), format!("{id}-worker")];
        let k3d_nodes = [format!("k3d-{id}-server-0"), format!("k3d-{id}-agent-0")];
        k.write_state(&json!({
            "minikube": {"version": "v1.33.1", "images": [], "profiles": {}},
            "kube": {"current_context": "prod", "contexts": {
                format!("kind-{id}"): {"server": "https://127.0.0.1:41234",
                                       "nodes": nodes(&kind_nodes, "containerd://1.7.24")},
                format!("k3d-{id}"): {"server": "https://0.0.0.0:42345",
                                      "nodes": nodes(&k3d_nodes, "containerd://1.7.23-k3s2")},
                "prod": {"cluster": "gke_acme_europe-west1_prod", "server": "https://34.1.2.3"},
                // A local-looking context name pointing at a production cluster entry.
                "kind-prod": {"cluster": "gke_acme_europe-west1_prod", "server": "https://34.1.2.3"},
                "docker-desktop": {"server": "https://127.0.0.1:6443",
                                   "nodes": [{"name": "docker-desktop", "ip": "192.168.65.3",
                                              "runtime": "docker://27.4.0"}]}
            }},
            "helm_version": null,
            "namespaces": {"default": {"labels": {}}, "kube-system": {"labels": {}}},
            "secrets": {}, "releases": {}, "pods": {}, "events": [],
            "knobs": {"fail": {}, "wait_seconds": 0.5, "docker_host": "unix:///var/run/docker.sock"}
        }));
        k
    }

    fn kind_context(&self) -> String {
        format!("kind-{}", self.id)
    }

    fn create_kind(&mut self) {
        let out = self.double("kind", &["create", "cluster", "--name", &self.id]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.kind_cluster = Some(self.id.clone());
    }

    fn create_k3d(&mut self) {
        let out = self.double("k3d", &["cluster", "create", &self.id]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.k3d_cluster = Some(self.id.clone());
    }

    fn read_state(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.state.join("state.json")).unwrap())
            .unwrap()
    }

    fn write_state(&self, v: &Value) {
        std::fs::write(
            self.state.join("state.json"),
            serde_json::to_string_pretty(v).unwrap(),
        )
        .unwrap();
    }

    fn edit_state(&self, f: impl FnOnce(&mut Value)) {
        let mut s = self.read_state();
        f(&mut s);
        self.write_state(&s);
    }

    fn path_env(&self) -> std::ffi::OsString {
        let mut paths = vec![self.bin.clone()];
        paths.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap()));
        std::env::join_paths(paths).unwrap()
    }

    /// The real xtask binary on the kube target with the doubles first on PATH; `args` carry
    /// `--context` (or not).
    fn xtask(&self, args: &[&str]) -> support::Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
        cmd.arg("--root")
            .arg(self.project.root())
            .args(["--target", "kube", "--namespace", "todo-app"])
            .args(args)
            .env("PATH", self.path_env())
            .env("XTASK_DOUBLE_STATE", &self.state)
            .env("NO_COLOR", "1")
            .env("JWT_SECRET", JWT_MARKER)
            .env("CSRF_SECRET", CSRF_MARKER)
            .env("LLM_API_KEY", LLM_MARKER)
            .env("LLM_BASE_URL", LLM_BASE_URL)
            .env("LLM_MODEL", "test-model")
            .env_remove("DATABASE_URL")
            .env_remove("POSTGRES_PASSWORD")
            .env_remove("XTASK_TARGET")
            .env_remove("DOCKER_HOST")
            .env_remove("KUBECONFIG")
            .current_dir(self.project.root())
            .stdin(Stdio::null());
        support::Run::of(&mut cmd)
    }

    fn double(&self, tool: &str, args: &[&str]) -> std::process::Output {
        Command::new(self.bin.join(tool))
            .args(args)
            .env("PATH", self.path_env())
            .env("XTASK_DOUBLE_STATE", &self.state)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn argv_lines(&self) -> Vec<String> {
        std::fs::read_to_string(self.state.join("calls.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let c: Value = serde_json::from_str(l).unwrap();
                let argv: Vec<&str> = c["argv"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_str().unwrap())
                    .collect();
                format!("{} {}", c["tool"].as_str().unwrap(), argv.join(" "))
            })
            .collect()
    }

    fn clear_calls(&self) {
        let _ = std::fs::remove_file(self.state.join("calls.jsonl"));
    }

    /// The tag an image task recorded.
    fn tag(&self, task: &str) -> String {
        let dir = self.project.path("target/xtask");
        let states: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.path().join("state.json"))
            .filter(|p| p.is_file())
            .collect();
        for s in states {
            let v: Value = serde_json::from_str(&std::fs::read_to_string(s).unwrap()).unwrap();
            if let Some(image) = v["tasks"][task]["outputs"]["image"].as_str() {
                return image.to_owned();
            }
        }
        panic!("no recorded image of {task}");
    }

    /// The image ID node `node` holds under `tag` (asked like the pipeline asks it).
    fn node_image(&self, node: &str, tag: &str) -> Option<String> {
        let out = Command::new("docker")
            .args(["exec", node, "crictl", "inspecti", "-o", "json", tag])
            .output()
            .unwrap();
        out.status.success().then(|| {
            let v: Value = serde_json::from_slice(&out.stdout).unwrap();
            v["status"]["id"].as_str().unwrap().to_owned()
        })
    }

    /// Makes `node` forget `tag` (as a node re-created by its cluster would).
    fn forget(&self, node: &str, tag: &str) {
        let key = format!("docker.io/library/{tag}").replace(['/', ':'], "_");
        let status = Command::new("docker")
            .args([
                "exec",
                node,
                "rm",
                &format!("/var/lib/xtask-double-images/{key}"),
            ])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

fn local_id(tag: &str) -> String {
    let out = Command::new("docker")
        .args(["image", "inspect", "-f", "{{.Id}}", tag])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// What a run printed, both streams.
fn text(run: &support::Run) -> String {
    format!("{}\n{}", run.stdout, run.stderr)
}

/// Every kubectl call but `config …` (which reads the kubeconfig, not a cluster) names
/// `--context CTX`, and every helm call but `version`/`template` `--kube-context CTX`.
fn assert_context_everywhere(argv: &[String], ctx: &str) {
    let mut cluster_calls = 0;
    for line in argv {
        if line.starts_with("kubectl ") && !line.starts_with("kubectl config ") {
            cluster_calls += 1;
            assert!(
                line.starts_with(&format!("kubectl --context {ctx} ")),
                "kubectl without --context {ctx}: {line}"
            );
        }
        if line.starts_with("helm ") && !line.starts_with("helm version") {
            cluster_calls += 1;
            assert!(
                line.contains(&format!(" --kube-context {ctx}")),
                "helm without --kube-context {ctx}: {line}"
            );
        }
    }
    assert!(cluster_calls > 0, "no cluster call at all: {argv:#?}");
    assert!(
        !argv.iter().any(|l| l.contains("current-context")
            || l.contains("use-context")
            || l.contains("prod")),
        "the current context was read or used: {argv:#?}"
    );
}

#[test]
fn kube_target_needs_a_named_known_context_and_lists_them() {
    if !prerequisites("kube_target_needs_a_named_known_context_and_lists_them") {
        return;
    }
    let k = Kube::new("ctx");
    let run = k.xtask(&["deploy"]);
    assert_eq!(run.code, Some(2), "{}", text(&run));
    assert!(
        run.stderr
            .contains("`--target kube` needs `--context NAME`: the pipeline deploys only to a context you name")
            && run.stderr.contains(&format!(
                "fix: add `--context NAME`; the contexts of your kubeconfig (`kubectl config get-contexts -o name`): \
                 docker-desktop, k3d-{id}, kind-prod, kind-{id}, prod",
                id = k.id
            )),
        "{}",
        run.stderr
    );
    // Nothing but the listing was asked; nothing was built.
    assert_eq!(
        k.argv_lines(),
        ["kubectl config get-contexts -o name"],
        "{}",
        run.stderr
    );
    // A context given to another target is an error, not ignored while deploying elsewhere.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
    cmd.arg("--root")
        .arg(k.project.root())
        .args(["--target", "docker", "--context", "kind-dev", "plan"])
        .env("PATH", k.path_env())
        .env("XTASK_DOUBLE_STATE", &k.state);
    let run = support::Run::of(&mut cmd);
    assert_eq!(run.code, Some(2), "{}", text(&run));
    assert!(
        run.stderr
            .contains("`--context kind-dev` is for the kube target, but the target is `docker`")
            && run.stderr.contains("add `--target kube`"),
        "{}",
        run.stderr
    );
    let run = k.xtask(&["--context", "nowhere", "plan"]);
    assert_eq!(run.code, Some(2), "{}", text(&run));
    assert!(
        run.stderr
            .contains("context `nowhere` is not in your kubeconfig")
            && run.stderr.contains("docker-desktop, k3d-"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_context_that_does_not_look_local_is_refused_unless_allowed() {
    if !prerequisites("a_context_that_does_not_look_local_is_refused_unless_allowed") {
        return;
    }
    let k = Kube::new("safe");
    // Refused, naming both fixes; judged by its cluster entry, not its own name.
    for ctx in ["prod", "kind-prod"] {
        let run = k.xtask(&["--context", ctx, "deploy"]);
        assert_eq!(run.code, Some(2), "{ctx}: {}", text(&run));
        assert!(
            run.stderr.contains(&format!(
                "refusing to deploy to context `{ctx}`: its cluster `gke_acme_europe-west1_prod` \
                 (server https://34.1.2.3) does not look like a local development cluster"
            )) && run.stderr.contains(&format!(
                "fix: if you mean it, allow it for this run with `--allow-context {ctx}`, or for \
                 this project in `xtask/targets.toml`: `[kube]` `allow-contexts = [\"{ctx}\"]`"
            )),
            "{ctx}: {}",
            run.stderr
        );
    }
    assert!(
        !k.argv_lines()
            .iter()
            .any(|l| !l.starts_with("kubectl config ")),
        "{:#?}",
        k.argv_lines()
    );
    // `--allow-context` must name the same context.
    let run = k.xtask(&["--context", "prod", "--allow-context", "staging", "plan"]);
    assert_eq!(run.code, Some(2), "{}", text(&run));
    assert!(
        run.stderr
            .contains("`--allow-context staging` does not name the context deployed to, `prod`"),
        "{}",
        run.stderr
    );
    // Allowed by the flag: past the safety rule, the cluster needs a registry; it says so
    // before building anything.
    k.clear_calls();
    let run = k.xtask(&["--context", "prod", "--allow-context", "prod", "plan"]);
    assert_ne!(run.code, Some(0), "{}", text(&run));
    let needs_registry = "the nodes of context `prod` (cluster `gke_acme_europe-west1_prod`, a gke \
                          cluster) cannot see the images built in this machine's Docker daemon: the \
                          pipeline loads images only into kind and k3d nodes";
    assert!(
        run.stderr.contains(needs_registry)
            && run
                .stderr
                .contains("fix: push them to a registry the cluster pulls from, with `--registry HOST[:PORT]/PATH`"),
        "{}",
        run.stderr
    );
    assert!(
        k.images.iter().all(|i| local_id(i).is_empty()),
        "an image was built"
    );
    // Allowed by the project's setting: the same.
    k.project.write(
        "xtask/targets.toml",
        "[kube]\nallow-contexts = [\"prod\"]\n",
    );
    let run = k.xtask(&["--context", "prod", "plan"]);
    assert!(run.stderr.contains(needs_registry), "{}", text(&run));
    // A broken setting is an error pointing at it.
    k.project
        .write("xtask/targets.toml", "[kube]\nallow-context = [\"prod\"]\n");
    let run = k.xtask(&["--context", "prod", "plan"]);
    assert_eq!(run.code, Some(2), "{}", text(&run));
    assert!(
        run.stderr.contains("unknown field `allow-context`")
            && run.stderr.contains("--> xtask/targets.toml:2:1"),
        "{}",
        run.stderr
    );
    // Docker Desktop with the dockerd runtime sees the local images: it plans; with containerd
    // it needs a registry too.
    k.project.write("xtask/targets.toml", "");
    let run = k.xtask(&["--context", "docker-desktop", "plan"]);
    assert_eq!(run.code, Some(0), "{}", text(&run));
    k.edit_state(|s| {
        s["kube"]["contexts"]["docker-desktop"]["nodes"][0]["runtime"] = json!("containerd://2.0.1")
    });
    let run = k.xtask(&["--context", "docker-desktop", "plan"]);
    assert!(
        run.stderr
            .contains("its nodes do not use this machine's Docker daemon (docker-desktop runs containerd://2.0.1)")
            && run.stderr.contains("--registry HOST[:PORT]/PATH"),
        "{}",
        text(&run)
    );
    assert_context_everywhere(
        &k.argv_lines()
            .into_iter()
            .filter(|l| l.contains("docker-desktop"))
            .collect::<Vec<_>>(),
        "docker-desktop",
    );
}

#[test]
fn kind_deploy_loads_what_nodes_lack_names_the_context_and_tears_down() {
    let test = "kind_deploy_loads_what_nodes_lack_names_the_context_and_tears_down";
    if !prerequisites(test) {
        return;
    }
    let mut k = Kube::new("kind");
    k.create_kind();
    let ctx = k.kind_context();
    let (cp, worker) = (
        format!("{}-control-plane", k.id),
        format!("{}-worker", k.id),
    );

    // 1. Cold: both images loaded into both nodes; every cluster call names the context.
    k.clear_calls();
    let run = k
        .xtask(&["--context", &ctx, "--json", "run", "release"])
        .ok();
    let argv = k.argv_lines();
    assert_context_everywhere(&argv, &ctx);
    let (b, f) = (k.tag("backend-image"), k.tag("frontend-image"));
    let loads: Vec<&String> = argv.iter().filter(|l| l.starts_with("kind load")).collect();
    assert_eq!(
        loads,
        [
            &format!("kind load docker-image {b} --name {}", k.id),
            &format!("kind load docker-image {f} --name {}", k.id),
        ],
        "{argv:#?}"
    );
    for node in [&cp, &worker] {
        assert_eq!(k.node_image(node, &b), Some(local_id(&b)), "{node}");
        assert_eq!(k.node_image(node, &f), Some(local_id(&f)), "{node}");
    }
    assert!(
        k.project
            .path(&format!("target/xtask/kube-{ctx}.todo-app/state.json"))
            .is_file()
    );
    assert!(
        argv.iter().any(|l| l.starts_with(&format!(
            "helm upgrade --install todo-app {}/k8s/todo-app --namespace todo-app --kube-context {ctx} ",
            k.project.root().display()
        ))),
        "{argv:#?}"
    );
    assert_no_marker("argv", &argv.join("\n"));
    assert_no_marker("output", &text(&run));

    // 2. Nothing changed: fresh, the nodes asked, nothing loaded.
    k.clear_calls();
    let run = k
        .xtask(&["--context", &ctx, "--json", "run", "release"])
        .ok();
    assert!(run.tasks_with("finished").is_empty(), "{}", run.stdout);
    let argv = k.argv_lines();
    assert!(
        !argv.iter().any(|l| l.starts_with("kind load")),
        "{argv:#?}"
    );

    // 3. A node lost the backend image: only it is loaded again; the frontend is on every node.
    k.forget(&worker, &b);
    k.clear_calls();
    let run = k
        .xtask(&["--context", &ctx, "--json", "run", "release"])
        .ok();
    assert_eq!(
        run.tasks_with("finished"),
        ["load-images"],
        "{}",
        run.stdout
    );
    assert!(
        run.reason_of("load-images").contains("output missing"),
        "{}",
        run.reason_of("load-images")
    );
    let loads: Vec<String> = k
        .argv_lines()
        .into_iter()
        .filter(|l| l.starts_with("kind "))
        .collect();
    assert_eq!(
        loads,
        [
            format!("kind get nodes --name {}", k.id),
            format!("kind get nodes --name {}", k.id),
            format!("kind load docker-image {b} --name {}", k.id),
        ]
    );
    assert!(
        run.stdout
            .contains(&format!("node {worker} lacks {}", local_id(&b)))
            && run.stdout.contains(&format!(
                "{f} ({}) already on every node ({cp}, {worker}): not loaded",
                local_id(&f)
            )),
        "{}",
        run.stdout
    );
    assert_eq!(k.node_image(&worker, &b), Some(local_id(&b)));

    // 4. status and the smoke test through a port-forward (the nodes' IP is not routed here).
    let status = k.xtask(&["--context", &ctx, "status"]).ok();
    assert!(
        status.stdout.contains(&format!(
            "target: kube (context {ctx}, cluster {ctx}, namespace todo-app)"
        )) && status
            .stdout
            .contains("release: todo-app revision 1 deployed"),
        "{}",
        status.stdout
    );
    let frontend = FakeFrontend::start("127.0.0.1:0");
    k.edit_state(|s| s["knobs"]["port_forward_to"] = json!(frontend.addr.to_string()));
    k.clear_calls();
    let run = k.xtask(&["--context", &ctx, "smoke", "--ready-timeout", "2"]);
    let all = text(&run);
    assert!(
        all.contains("http://192.0.2.1:30000 does not answer from this host")
            && all.contains("reaching svc/todo-app-frontend through `kubectl port-forward`"),
        "{all}"
    );
    assert!(frontend.saw("GET /health HTTP/1.1"), "{all}");
    let forward = format!(
        "kubectl --context {ctx} --namespace todo-app port-forward svc/todo-app-frontend :3000 \
         --address 127.0.0.1"
    );
    assert!(k.argv_lines().contains(&forward), "{:#?}", k.argv_lines());

    // 5. down keeps the database's claim, down --volumes deletes it; both name the context.
    k.clear_calls();
    let down = k.xtask(&["--context", &ctx, "down"]).ok();
    assert!(
        down.stdout.contains("helm release `todo-app` uninstalled")
            && down
                .stdout
                .contains("PersistentVolumeClaims of `todo-app` kept")
            && down.stdout.contains(&format!(
                "recorded state of target `kube-{ctx}.todo-app` forgotten"
            )),
        "{}",
        down.stdout
    );
    let down = k.xtask(&["--context", &ctx, "down", "--volumes"]).ok();
    assert!(
        down.stdout
            .contains("PersistentVolumeClaims of `todo-app` deleted: data-todo-app-postgres-0"),
        "{}",
        down.stdout
    );
    assert_context_everywhere(&k.argv_lines(), &ctx);
    assert!(k.read_state()["releases"].as_object().unwrap().is_empty());
}

#[test]
fn k3d_imports_only_the_images_its_nodes_lack() {
    if !prerequisites("k3d_imports_only_the_images_its_nodes_lack") {
        return;
    }
    let mut k = Kube::new("k3d");
    k.create_k3d();
    let ctx = format!("k3d-{}", k.id);
    k.xtask(&[
        "--context",
        &ctx,
        "--json",
        "run",
        "backend-image",
        "frontend-image",
    ])
    .ok();
    let (b, f) = (k.tag("backend-image"), k.tag("frontend-image"));
    // The backend is on every node already (imported by hand): only the frontend is imported.
    let out = k.double("k3d", &["image", "import", &b, "--cluster", &k.id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    k.clear_calls();
    let run = k
        .xtask(&["--context", &ctx, "--json", "run", "load-images"])
        .ok();
    let imports: Vec<String> = k
        .argv_lines()
        .into_iter()
        .filter(|l| l.starts_with("k3d "))
        .collect();
    assert_eq!(
        imports,
        [
            "k3d node list -o json".to_owned(),
            format!("k3d image import {f} --cluster {}", k.id),
        ]
    );
    assert!(
        run.stdout.contains(&format!(
            "{b} ({}) already on every node (k3d-{id}-agent-0, k3d-{id}-server-0): not loaded",
            local_id(&b),
            id = k.id
        )),
        "{}",
        run.stdout
    );
    for node in [
        format!("k3d-{}-server-0", k.id),
        format!("k3d-{}-agent-0", k.id),
    ] {
        assert_eq!(k.node_image(&node, &f), Some(local_id(&f)), "{node}");
    }
    // The load balancer runs no pods: never asked.
    assert!(
        !k.argv_lines().iter().any(|l| l.contains("serverlb")),
        "{:#?}",
        k.argv_lines()
    );
    // A rollout that fails is diagnosed, and the fix names this target's own flags.
    // helm waits 6 s, long enough for the pipeline's pod poll (every second, a few kubectl
    // calls each) to see the failing pod before helm's rollback replaces it, even on a busy
    // machine.
    k.xtask(&["--context", &ctx, "--json", "run", "release"])
        .ok();
    k.edit_state(|s| {
        s["knobs"]["fail"] = json!({"backend": "imagepull"});
        s["knobs"]["wait_seconds"] = json!(6.0);
    });
    k.project.write(
        "k8s/todo-app/values-dev.yaml",
        &format!(
            "{}\n# a change, so the release rolls\n",
            k.project.read("k8s/todo-app/values-dev.yaml")
        ),
    );
    let run = k.xtask(&["--context", &ctx, "run", "release"]);
    assert_eq!(run.code, Some(1), "{}", text(&run));
    assert!(
        run.stderr.contains(&format!(
            "failed command: helm upgrade --install todo-app --namespace todo-app --kube-context {ctx}"
        )) && run.stderr.contains(&format!(
            "is not on the cluster's nodes (nothing is pulled: tags are local): run \
             `cargo xtask deploy --target kube --context {ctx}`, which loads it into kind and k3d nodes"
        )),
        "{}",
        run.stderr
    );
}

/// On the kube target too, a run whose smoke test fails after the release rolled out rolls the
/// release back to the revision it replaced, naming the context; a good run rolls nothing back.
#[test]
fn a_failed_smoke_after_the_rollout_rolls_back_on_the_named_context() {
    let test = "a_failed_smoke_after_the_rollout_rolls_back_on_the_named_context";
    if !prerequisites(test) {
        return;
    }
    let mut k = Kube::new("rb");
    k.create_kind();
    let ctx = k.kind_context();
    let pipeline = k.project.read("xtask/pipeline.toml");
    k.project.set_pipeline(&format!(
        "{pipeline}\n[tasks.smoke]\nkind = \"smoke\"\ntargets = [\"kube\"]\n\
         deps = [\"release\"]\nready-timeout = 2\n"
    ));
    // Behind the port-forward every request gets `200 {}`: the smoke test fails at its first
    // API check.
    let frontend = FakeFrontend::start("127.0.0.1:0");
    k.edit_state(|s| s["knobs"]["port_forward_to"] = json!(frontend.addr.to_string()));
    let rollbacks = |k: &Kube| -> Vec<String> {
        k.argv_lines()
            .into_iter()
            .filter(|l| l.starts_with("helm rollback"))
            .collect()
    };
    let statuses = |k: &Kube| -> Vec<String> {
        k.read_state()["releases"]["todo-app/todo-app"]["revisions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["status"].as_str().unwrap().to_owned())
            .collect()
    };

    // 1. A good run: revision 1, nothing rolled back, nothing said.
    let run = k
        .xtask(&["--context", &ctx, "--json", "run", "release"])
        .ok();
    assert_eq!(rollbacks(&k), Vec::<String>::new());
    assert_eq!(run.settled_lines(), Vec::<String>::new());

    // 2. A change rolls out as revision 2 and fails the smoke test: back to revision 1.
    k.project.write("app/hello.txt", "hello again\n");
    k.clear_calls();
    let run = k.xtask(&["--context", &ctx, "--json", "run", "smoke"]);
    let all = text(&run);
    assert_ne!(run.code, Some(0), "{all}");
    assert!(frontend.saw("GET /health HTTP/1.1"), "{all}");
    assert_eq!(
        rollbacks(&k),
        [format!(
            "helm rollback todo-app 1 --namespace todo-app --kube-context {ctx} --wait \
             --timeout 300s"
        )]
    );
    assert_eq!(
        run.settled_lines(),
        ["the run failed: release todo-app rolled back to revision 1 (the last that passed)"],
        "{all}"
    );
    assert_eq!(statuses(&k), ["superseded", "superseded", "deployed"]);
    let revs = k.read_state()["releases"]["todo-app/todo-app"]["revisions"].clone();
    assert_eq!(revs[2]["description"], "Rollback to 1");
    assert_eq!(revs[2]["set"], revs[0]["set"]);
    assert_context_everywhere(&k.argv_lines(), &ctx);
}

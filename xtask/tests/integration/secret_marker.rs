//! Secrets never leak: the whole Docker-target pipeline runs with known markers as the JWT and
//! CSRF secrets (and, in a second deployment, as the password in the chat provider's
//! `LLM_BASE_URL`), and the markers (and the generated database password) must appear nowhere in
//! our output, the JSON events, `target/xtask/`, the history and configuration of our images,
//! the containers' command lines and labels, or the services' logs. A registry's password
//! (`--registry`) is checked the same way, and in `docker`'s arguments.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use test_support::docker::docker_ok;
use test_support::{Run, Xtask, copy_workspace, docker_daemon, lines};

use crate::registry;
use crate::support::one_deployment_at_a_time;

/// Every file under `dir` whose bytes contain `needle`.
pub fn files_containing(dir: &Path, needle: &str) -> Vec<String> {
    let mut hits = Vec::new();
    for entry in walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
    {
        if entry.file_type().is_file() {
            let bytes = std::fs::read(entry.path()).unwrap_or_default();
            if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                hits.push(entry.path().display().to_string());
            }
        }
    }
    hits
}

/// A directory holding a `docker` wrapper that appends each call's arguments to a log, then
/// runs the real `docker`; `path` is `PATH` with it first.
pub struct DockerArgv {
    bin: tempfile::TempDir,
    /// `PATH` with the wrapper first.
    pub path: String,
}

impl DockerArgv {
    pub fn new() -> DockerArgv {
        use std::os::unix::fs::PermissionsExt as _;
        let bin = tempfile::tempdir().unwrap();
        let real = test_support::on_path(&["docker"]).unwrap();
        let wrapper = bin.path().join("docker");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\nexec '{}' \"$@\"\n",
                bin.path().join("argv.log").display(),
                real.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!(
            "{}:{}",
            bin.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        DockerArgv { bin, path }
    }

    /// The arguments of every call so far, one call a line.
    pub fn read(&self) -> String {
        std::fs::read_to_string(self.bin.path().join("argv.log")).unwrap_or_default()
    }
}

/// Asserts that no needle is in the runs' output, under `target/xtask/` (except
/// `generated-secrets.env` for the `stored` ones), in our images, or in the command line, labels
/// and logs of the deployment's containers.
fn assert_nowhere(repo: &Path, x: &Xtask, runs: &[Run], needles: &[String], stored: &[String]) {
    for needle in needles {
        for (i, run) in runs.iter().enumerate() {
            assert!(
                !run.stdout.contains(needle.as_str()),
                "run {i} stdout holds a secret"
            );
            assert!(
                !run.stderr.contains(needle.as_str()),
                "run {i} stderr holds a secret"
            );
        }
        // target/xtask/ may hold generated values (0600 store, by design) but never a supplied
        // one, and nothing but that store may hold a generated one.
        let hits = files_containing(&repo.join("target/xtask"), needle);
        if stored.contains(needle) {
            assert!(
                hits.iter().all(|h| h.ends_with("generated-secrets.env")),
                "generated secret outside its store: {hits:?}"
            );
        } else {
            assert!(hits.is_empty(), "a secret under target/xtask/: {hits:?}");
        }
    }

    let images = lines(&docker_ok(&[
        "image",
        "ls",
        "--filter",
        "label=app.kubernetes.io/part-of=todo-app",
        "--format",
        "{{.ID}}",
    ]));
    assert!(!images.is_empty(), "no images of ours to inspect");
    for image in &images {
        let history = docker_ok(&["history", "--no-trunc", image]);
        let inspect = docker_ok(&["image", "inspect", image]);
        for needle in needles {
            assert!(
                !history.contains(needle.as_str()),
                "{image} history holds a secret"
            );
            assert!(
                !inspect.contains(needle.as_str()),
                "{image} config holds a secret"
            );
        }
    }
    for role in ["postgres", "backend", "frontend"] {
        let name = format!("{}-docker-{role}", x.namespace());
        let argv = docker_ok(&[
            "inspect",
            "--format",
            "{{json .Path}} {{json .Args}} {{json .Config.Cmd}} {{json .Config.Labels}}",
            &name,
        ]);
        let logs = test_support::docker::logs(&name);
        for needle in needles {
            assert!(
                !argv.contains(needle.as_str()),
                "a secret is in the argv or labels of {name}"
            );
            assert!(!logs.contains(needle.as_str()), "{name} logs hold a secret");
        }
    }
}

/// The builder compiles without any secret: none in its environment, argv or labels, and none
/// in the sources synced into it.
fn assert_not_in_builder(needles: &[String]) {
    let builder = test_support::TEST_BUILDER;
    let config = docker_ok(&[
        "inspect",
        "--format",
        "{{json .Config.Env}} {{json .Path}} {{json .Args}} {{json .Config.Labels}}",
        builder,
    ]);
    assert!(
        config.contains("CARGO_TARGET_DIR"),
        "not the builder: {config}"
    );
    // grep exits 1 when nothing matches: read what it printed, whatever its status.
    let found =
        test_support::docker::docker(&["exec", builder, "grep", "-rlF", "MARKER-", "/build/src"]);
    let sources = String::from_utf8_lossy(&found.stdout).trim().to_owned();
    for needle in needles {
        assert!(
            !config.contains(needle.as_str()),
            "a secret is in the environment, argv or labels of {builder}"
        );
    }
    assert!(
        sources.is_empty(),
        "marker text in the builder's sources: {sources}"
    );
}

/// The environment of the deployment's `role` container, as `docker inspect` shows it.
fn container_env(x: &Xtask, role: &str) -> String {
    let name = format!("{}-docker-{role}", x.namespace());
    docker_ok(&["inspect", "--format", "{{json .Config.Env}}", &name])
}

#[test]
fn marker_secret_appears_nowhere() {
    let _serial = one_deployment_at_a_time();
    if !docker_daemon("secret_marker::marker_secret_appears_nowhere") {
        return;
    }
    let repo = copy_workspace();
    let ns = format!("xsecret{}", std::process::id());
    let mut x = Xtask::deployment(repo.path(), &ns);
    let marker = format!(
        "MARKER-jwt-{}-0123456789abcdef0123456789",
        std::process::id()
    );
    x.env.push(("JWT_SECRET".into(), marker.clone()));
    let csrf = format!(
        "MARKER-csrf-{}-0123456789abcdef0123456789",
        std::process::id()
    );
    x.env.push(("CSRF_SECRET".into(), csrf.clone()));

    let runs = [
        x.run(&["deploy"]),
        x.run(&["plan"]),
        x.run(&["deploy"]),
        x.run(&["smoke"]),
        x.run(&["status"]),
    ];
    runs[0].assert_ok("deploy with a marker secret");
    runs[3].assert_ok("smoke");

    // The generated database password is a secret too: it must not leak either.
    let store = repo
        .path()
        .join(format!("target/xtask/docker-{ns}/generated-secrets.env"));
    let generated = std::fs::read_to_string(&store).unwrap_or_default();
    let password = generated
        .lines()
        .find_map(|l| l.strip_prefix("POSTGRES_PASSWORD="))
        .map(str::to_owned);
    assert!(
        password.is_some(),
        "no generated POSTGRES_PASSWORD in {}",
        store.display()
    );
    for supplied in [&marker, &csrf] {
        assert!(
            !generated.contains(supplied.as_str()),
            "a secret supplied from the environment was written to disk"
        );
    }
    let password: Vec<String> = password.into_iter().collect();
    let mut needles = vec![marker.clone(), csrf.clone()];
    needles.extend(password.iter().cloned());
    assert_nowhere(repo.path(), &x, &runs, &needles, &password);
    assert_not_in_builder(&needles);

    // The secrets did reach the services, through their environment and not their command
    // lines: the JWT key the backend, the CSRF key the frontend (and only the frontend).
    assert!(
        container_env(&x, "backend").contains(&format!("JWT_SECRET={marker}")),
        "the backend did not get the JWT secret from the environment"
    );
    let frontend = container_env(&x, "frontend");
    assert!(
        frontend.contains(&format!("CSRF_SECRET={csrf}")),
        "the frontend did not get the CSRF secret from the environment"
    );
    assert!(!frontend.contains("JWT_SECRET"), "{frontend}");
    assert!(!container_env(&x, "backend").contains(&csrf));

    x.run(&["down"]).assert_ok("down");
}

#[test]
fn a_provider_url_with_credentials_is_a_secret_on_the_docker_target() {
    let _serial = one_deployment_at_a_time();
    const TEST: &str =
        "secret_marker::a_provider_url_with_credentials_is_a_secret_on_the_docker_target";
    if !docker_daemon(TEST) {
        return;
    }
    let repo = copy_workspace();
    let ns = format!("xllmurl{}", std::process::id());
    let mut x = Xtask::deployment(repo.path(), &ns);
    // A URL may carry credentials; the provider does not exist and is never called.
    let password = format!("MARKER-urlpw-{}", std::process::id());
    let query_key = format!("MARKER-urlkey-{}", std::process::id());
    let url = format!("http://llm-user:{password}@llm.test.invalid:8080/v1?api-key={query_key}");
    x.env.push(("LLM_BASE_URL".into(), url.clone()));
    x.env.push(("LLM_MODEL".into(), "test-model".into()));
    let api_key = format!("MARKER-llmkey-{}", std::process::id());
    x.env.push(("LLM_API_KEY".into(), api_key.clone()));

    // The containers only: the smoke test's chat step would call the (fake) provider.
    let runs = [
        x.run(&["run", "app-containers"]),
        x.run(&["plan"]),
        x.run(&["status"]),
    ];
    runs[0].assert_ok("deploying the containers with a provider URL holding credentials");
    runs[1].assert_ok("plan");
    assert!(
        runs[0]
            .stdout
            .contains("LLM_BASE_URL: environment variable"),
        "the URL's source is not reported: {}",
        runs[0].stdout
    );
    assert_nowhere(
        repo.path(),
        &x,
        &runs,
        &[password.clone(), query_key.clone(), api_key, url.clone()],
        &[],
    );
    // The backend got the whole URL, through its environment; the model as plain setting.
    let env = container_env(&x, "backend");
    assert!(env.contains(&format!("LLM_BASE_URL={url}")), "{env}");
    assert!(env.contains("LLM_MODEL=test-model"), "{env}");
    assert!(!container_env(&x, "frontend").contains("LLM_"));

    x.run(&["down", "--volumes"]).assert_ok("down --volumes");
}

#[test]
fn a_too_short_secret_is_named_but_never_shown() {
    if !docker_daemon("secret_marker::a_too_short_secret_is_named_but_never_shown") {
        return;
    }
    let repo = copy_workspace();
    let mut x = Xtask::deployment(repo.path(), &format!("xshort{}", std::process::id()));
    let marker = "SHORTMARKER-7d1c"; // 16 bytes: below the 32-byte minimum
    x.env.push(("JWT_SECRET".into(), marker.into()));
    let run = x.run(&["deploy"]);
    assert_ne!(run.code, Some(0), "deploy accepted a 16-byte JWT secret");
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(
        all.contains("JWT_SECRET"),
        "the error does not name the key: {all}"
    );
    assert!(
        all.contains("32"),
        "the error does not say the minimum: {all}"
    );
    assert!(!all.contains(marker), "the rejected secret was printed");
    // Rejected while planning: nothing was started.
    assert!(x.objects("container").is_empty());
}

/// The registry's password (`--registry` with XTASK_REGISTRY_USERNAME/PASSWORD, then from a
/// Docker config's `auths`) authenticates the look-up and the push, and appears in no argument
/// of any `docker` the pipeline runs (a wrapper on PATH records them), no output, no file under
/// `target/xtask/`, and no layer or configuration of the pushed image; a wrong one is refused
/// in one line naming the user and where the credentials came from.
#[test]
fn a_registry_password_authenticates_and_appears_nowhere() {
    const TEST: &str = "secret_marker::a_registry_password_authenticates_and_appears_nowhere";
    if !docker_daemon(TEST) {
        return;
    }
    let password = format!("MARKER-registry-pw-{}", std::process::id());
    let Some(server) = test_support::registry::Registry::with_auth(TEST, "ci-bot", &password)
    else {
        return;
    };
    let _tags = registry::LocalTags(server.host());
    let registry = format!("{}/private", server.host());
    let image = format!("xreg-auth-{}", std::process::id());
    let p = registry::small_project(&image);

    // Every `docker` the pipeline runs goes through a wrapper that records its arguments.
    let argv = DockerArgv::new();
    let path = argv.path.clone();
    // No Docker config of the user's: only what the test gives.
    let home = tempfile::tempdir().unwrap();
    let runner = |user: &str, pw: &str| {
        let mut x = Xtask::new(p.root());
        x.env.push(("PATH".into(), path.clone()));
        x.env
            .push(("HOME".into(), home.path().display().to_string()));
        x.env.push(("XTASK_REGISTRY".into(), registry.clone()));
        if !user.is_empty() {
            x.env.push(("XTASK_REGISTRY_USERNAME".into(), user.into()));
            x.env.push(("XTASK_REGISTRY_PASSWORD".into(), pw.into()));
        }
        x
    };
    let mut runs = Vec::new();

    // No credentials: the registry's 401 says what to do.
    let run = runner("", "").run(&["build"]);
    let line = registry::one_error_line(&run);
    assert!(
        line.contains("requires credentials") && line.contains("docker login"),
        "{line}"
    );
    runs.push(run);

    // A wrong password: refused, naming the user and where the credentials came from.
    let wrong = format!("{password}-wrong");
    let run = runner("ci-bot", &wrong).run(&["build"]);
    let line = registry::one_error_line(&run);
    assert!(
        line.contains(&format!(
            "registry {registry} refused the credentials of user `ci-bot`"
        )) && line.contains("XTASK_REGISTRY_USERNAME/XTASK_REGISTRY_PASSWORD"),
        "{line}"
    );
    assert!(registry::recorded(p.root(), "img").is_none());
    runs.push(run);

    // The right ones: looked up, built, logged in with --password-stdin, pushed.
    let run = runner("ci-bot", &password).run(&["--json", "build"]);
    run.assert_ok("build with the registry's credentials");
    assert_eq!(run.tasks_with("finished"), ["img"]);
    runs.push(run);
    let run = runner("ci-bot", &password).run(&["--json", "plan"]);
    run.assert_ok("plan");
    assert_eq!(run.events()[0]["decision"], "fresh");
    runs.push(run);

    // From the Docker config instead (`auths`, as `docker login` writes it): no login needed.
    let config = home.path().join(".docker");
    std::fs::create_dir_all(&config).unwrap();
    let auth = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(format!("ci-bot:{password}"))
    };
    std::fs::write(
        config.join("config.json"),
        format!(
            "{{\"auths\":{{\"{}\":{{\"auth\":\"{auth}\"}}}}}}",
            server.host()
        ),
    )
    .unwrap();
    p.write("hello.txt", "from the docker config\n");
    let run = runner("", "").run(&["--json", "build"]);
    run.assert_ok("build with the Docker config's credentials");
    assert_eq!(run.tasks_with("finished"), ["img"]);
    runs.push(run);

    let argv = argv.read();
    assert!(
        argv.lines()
            .any(|l| l.starts_with("login --username ci-bot --password-stdin")),
        "no docker login with --password-stdin:\n{argv}"
    );
    assert!(argv.contains("push "), "{argv}");
    let needles = [password.clone(), wrong, auth];
    for needle in &needles {
        assert!(
            !argv.contains(needle.as_str()),
            "a credential in docker's argv"
        );
        for (i, run) in runs.iter().enumerate() {
            assert!(!run.stdout.contains(needle.as_str()), "run {i} stdout");
            assert!(!run.stderr.contains(needle.as_str()), "run {i} stderr");
        }
        let hits = files_containing(&p.path("target/xtask"), needle);
        assert!(hits.is_empty(), "a credential under target/xtask: {hits:?}");
    }
    for tag in registry::LocalTags(server.host()).list() {
        let history = docker_ok(&["history", "--no-trunc", &tag]);
        let inspect = docker_ok(&["image", "inspect", &tag]);
        assert!(!history.contains(&password) && !inspect.contains(&password));
    }
}

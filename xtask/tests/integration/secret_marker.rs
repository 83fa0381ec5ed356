//! Secrets never leak: the whole Docker-target pipeline runs with known markers as the JWT and
//! CSRF secrets (and, in a second deployment, as the password in the chat provider's
//! `LLM_BASE_URL`), and the markers (and the generated database password) must appear nowhere in
//! our output, the JSON events, `target/xtask/`, the history and configuration of our images,
//! the containers' command lines and labels, or the services' logs.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use test_support::docker::docker_ok;
use test_support::{Run, Xtask, copy_workspace, docker_daemon, lines};

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

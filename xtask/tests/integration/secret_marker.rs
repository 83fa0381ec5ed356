//! Secrets never leak: the whole Docker-target pipeline runs with a known marker as the JWT
//! secret, and the marker (and the generated database password) must appear nowhere in our
//! output, the JSON events, `target/xtask/`, or the history and configuration of our images.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use test_support::docker::docker_ok;
use test_support::{Xtask, copy_workspace, docker_daemon, lines};

use crate::support::one_deployment_at_a_time;

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<String> {
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
    assert!(
        !generated.contains(&marker),
        "a secret supplied from the environment was written to disk"
    );
    let mut needles = vec![marker.clone()];
    needles.extend(password);

    for needle in &needles {
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
    }
    // target/xtask/ may hold the generated password (0600 store, by design) but never the
    // marker, and nothing but that store may hold the password.
    let state = repo.path().join("target/xtask");
    assert!(
        files_containing(&state, &marker).is_empty(),
        "marker under target/xtask/"
    );
    if let Some(pw) = needles.get(1) {
        let hits = files_containing(&state, pw);
        assert!(
            hits.iter().all(|h| h.ends_with("generated-secrets.env")),
            "generated password outside its store: {hits:?}"
        );
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
        for needle in &needles {
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
    // The secret did reach the backend, through its environment and not its command line.
    let backend = format!("{ns}-docker-backend");
    let env = docker_ok(&["inspect", "--format", "{{json .Config.Env}}", &backend]);
    assert!(
        env.contains(&format!("JWT_SECRET={marker}")),
        "the backend did not get the JWT secret from the environment"
    );
    let argv = docker_ok(&[
        "inspect",
        "--format",
        "{{json .Path}} {{json .Args}}",
        &backend,
    ]);
    assert!(
        !argv.contains(&marker),
        "the JWT secret is in the backend's argv"
    );

    // The backend logs requests and config problems but never the secret it was given.
    let logs = test_support::docker::logs(&format!("{ns}-docker-backend"));
    assert!(!logs.contains(&marker), "backend logs hold the JWT secret");

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

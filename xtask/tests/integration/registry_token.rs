//! The Bearer token flow against a real registry: `docker-registry` in `auth: token` mode (as
//! ghcr.io and Docker Hub authenticate), its tokens issued by test_support's token server to the
//! test's one user and verified by the registry itself. The pipeline's look-up, its push
//! (`docker login --password-stdin` into a private Docker config, then `docker push` through
//! the real daemon), a real `docker login` whose Docker config a second checkout then uses, a
//! wrong password, and no credentials; the password and every token appear in no argument of
//! any `docker` the pipeline runs, no output, no state and no image.
#![allow(clippy::unwrap_used)]

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use test_support::docker::docker_ok;
use test_support::registry::Registry;
use test_support::token_issuer::{SERVICE, TokenRequest};
use test_support::{Run, Xtask, docker_daemon};

use crate::registry::{LocalTags, one_error_line, recorded, second_checkout, small_project};
use crate::secret_marker::{DockerArgv, files_containing};

#[test]
fn a_token_registry_serves_the_lookup_the_push_and_docker_login() {
    const TEST: &str =
        "registry_token::a_token_registry_serves_the_lookup_the_push_and_docker_login";
    if !docker_daemon(TEST) {
        return;
    }
    let password = format!("MARKER-token-pw-{}", std::process::id());
    let Some(server) = Registry::with_token_auth(TEST, "ci-bot", &password) else {
        return;
    };
    let issuer = server.issuer.as_ref().unwrap();
    let tags = LocalTags(server.host());
    let registry = format!("{}/private", server.host());
    let image = format!("xreg-token-{}", std::process::id());
    let repository = format!("private/{image}");
    let pull = format!("repository:{repository}:pull");
    let first = small_project(&image);

    let argv = DockerArgv::new();
    // No Docker config of the user's: only what the test gives.
    let no_config = tempfile::tempdir().unwrap();
    let runner = |root: &Path, credentials: Option<&str>, docker_config: &Path| {
        let mut x = Xtask::new(root);
        x.env.push(("PATH".into(), argv.path.clone()));
        x.env
            .push(("HOME".into(), no_config.path().display().to_string()));
        x.env
            .push(("DOCKER_CONFIG".into(), docker_config.display().to_string()));
        x.env.push(("XTASK_REGISTRY".into(), registry.clone()));
        if let Some(pw) = credentials {
            x.env
                .push(("XTASK_REGISTRY_USERNAME".into(), "ci-bot".into()));
            x.env.push(("XTASK_REGISTRY_PASSWORD".into(), pw.into()));
        }
        x
    };
    let mut runs: Vec<Run> = Vec::new();
    let asked = |from: usize| -> Vec<TokenRequest> { issuer.requests()[from..].to_vec() };

    // No credentials: the registry's challenge sends the client to the issuer, which refuses an
    // anonymous pull; the one error line says what to do.
    let run = runner(first.root(), None, no_config.path()).run(&["build"]);
    let line = one_error_line(&run);
    assert!(
        line.contains(&format!("registry {registry} requires credentials"))
            && line.contains(&format!("docker login {}", server.host())),
        "{line}"
    );
    assert_eq!(
        asked(0),
        [TokenRequest {
            user: None,
            service: Some(SERVICE.into()),
            scopes: vec![pull.clone()],
            granted: false,
        }]
    );
    runs.push(run);

    // A wrong password: refused by the issuer, in one line naming the registry, the user, where
    // the credentials came from and the fix; nothing recorded.
    let wrong = format!("{password}-wrong");
    let seen = issuer.requests().len();
    let run = runner(first.root(), Some(&wrong), no_config.path()).run(&["build"]);
    let line = one_error_line(&run);
    assert!(
        line.contains(&format!(
            "registry {registry} refused the credentials of user `ci-bot`"
        )) && line.contains("XTASK_REGISTRY_USERNAME/XTASK_REGISTRY_PASSWORD")
            && line.contains("fix:"),
        "{line}"
    );
    assert!(recorded(first.root(), "img").is_none());
    assert!(asked(seen).iter().all(|r| !r.granted), "{:?}", asked(seen));
    runs.push(run);

    // Credentials the issuer accepts for a repository it grants them nothing on: the registry
    // refuses the token, and the line says the user lacks pull access there, not that the
    // password is wrong.
    let denied_image = format!("{image}-denied");
    issuer.deny(&format!("private/{denied_image}"));
    let denied = small_project(&denied_image);
    let run = runner(denied.root(), Some(&password), no_config.path()).run(&["build"]);
    let line = one_error_line(&run);
    assert!(
        line.contains(&format!(
            "registry {registry} gave user `ci-bot` (from XTASK_REGISTRY_USERNAME/\
             XTASK_REGISTRY_PASSWORD) no pull access to private/{denied_image}"
        )) && line.contains("fix: grant that user pull access"),
        "{line}"
    );
    assert!(recorded(denied.root(), "img").is_none());
    runs.push(run);

    // A token the registry does not trust (made for another service): the line says so and
    // names the token endpoint, not the credentials, as the thing to fix.
    issuer.set_audience("another-registry");
    let run = runner(first.root(), Some(&password), no_config.path()).run(&["build"]);
    let line = one_error_line(&run);
    assert!(
        line.contains(&format!(
            "registry {registry} rejected the token its token endpoint {} issued to user \
             `ci-bot` (invalid_token); fix: the registry's token settings",
            issuer.realm()
        )),
        "{line}"
    );
    assert!(recorded(first.root(), "img").is_none());
    issuer.set_audience(SERVICE);
    runs.push(run);

    // The right ones: a pull token for the look-up (the tag is missing), the build, the
    // pipeline's `docker login` and the daemon's push with its own push token, and the look-up
    // of the pushed digest, which the registry verified every token of.
    let seen = issuer.requests().len();
    let run = runner(first.root(), Some(&password), no_config.path()).run(&["--json", "build"]);
    run.assert_ok("build against the token registry");
    assert_eq!(run.tasks_with("finished"), ["img"]);
    let out = recorded(first.root(), "img").unwrap();
    let digest = out["digest"].as_str().unwrap().to_owned();
    assert_eq!(
        out["image"].as_str().unwrap(),
        format!("{registry}/{image}@{digest}")
    );
    let tag = out["tag"].as_str().unwrap().to_owned();
    assert!(
        server
            .storage()
            .join(format!(
                "docker/registry/v2/repositories/{repository}/_manifests/tags/{tag}"
            ))
            .is_dir()
    );
    let requests = asked(seen);
    let ours = TokenRequest {
        user: Some("ci-bot".into()),
        service: Some(SERVICE.into()),
        scopes: vec![pull.clone()],
        granted: true,
    };
    // One pull token for both look-ups (before the build, and of the pushed digest): the
    // client keeps the registry's token for the run.
    assert_eq!(
        requests.iter().filter(|r| **r == ours).count(),
        1,
        "{requests:?}"
    );
    assert!(
        requests.iter().any(|r| {
            r.granted
                && r.scopes.iter().any(|s| {
                    s.starts_with(&format!("repository:{repository}:")) && s.contains("push")
                })
        }),
        "the daemon asked for no push token: {requests:?}"
    );
    runs.push(run);
    let logins = argv
        .read()
        .lines()
        .filter(|l| l.starts_with("login --username ci-bot --password-stdin"))
        .count();
    assert_eq!(logins, 1, "{}", argv.read());

    // `doctor`'s registry row asks through the token flow too.
    let doctor = runner(first.root(), Some(&password), no_config.path())
        .run(&["doctor"])
        .ok();
    let row = doctor
        .stdout
        .lines()
        .find(|l| l.starts_with("registry"))
        .unwrap_or_else(|| panic!("no registry row:\n{}", doctor.stdout));
    assert!(
        row.contains(&format!(
            "{registry} (user `ci-bot` from XTASK_REGISTRY_USERNAME/XTASK_REGISTRY_PASSWORD)"
        )) && row.trim_end().ends_with(" ok"),
        "{row}"
    );
    runs.push(doctor);

    // A real `docker login` to the token registry, into a Docker config of the test's own.
    let logged_in = tempfile::tempdir().unwrap();
    let mut login = Command::new("docker")
        .arg("--config")
        .arg(logged_in.path())
        .args(["login", "--username", "ci-bot", "--password-stdin"])
        .arg(server.host())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    login
        .stdin
        .take()
        .unwrap()
        .write_all(password.as_bytes())
        .unwrap();
    let login = login.wait_with_output().unwrap();
    assert!(
        login.status.success(),
        "docker login: {}",
        String::from_utf8_lossy(&login.stderr)
    );

    // An image's labels through the token flow (what finds a compile's outputs, `app-binaries`,
    // in the registry): its manifest, then its config blob, with one pull token for both and
    // for a look-up after them.
    let labelled = format!(
        "{}/private/xreg-token-labels-{}:v1",
        server.host(),
        std::process::id()
    );
    let mut build = Command::new("docker")
        .args([
            "build",
            "--quiet",
            "--label",
            "xtask.test=token-flow",
            "-t",
            &labelled,
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    build
        .stdin
        .take()
        .unwrap()
        .write_all(b"FROM debian:bookworm-slim\n")
        .unwrap();
    let build = build.wait_with_output().unwrap();
    assert!(
        build.status.success(),
        "{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let push = Command::new("docker")
        .arg("--config")
        .arg(logged_in.path())
        .args(["push", &labelled])
        .output()
        .unwrap();
    assert!(
        push.status.success(),
        "{}",
        String::from_utf8_lossy(&push.stderr)
    );
    let sh = xshell::Shell::new().unwrap();
    // Empty is unset to the credentials: only the Docker config of the `docker login` above.
    sh.set_var("XTASK_REGISTRY_USERNAME", "");
    sh.set_var("XTASK_REGISTRY_PASSWORD", "");
    sh.set_var("DOCKER_CONFIG", logged_in.path());
    let client = xtask::image_registry::Registry::new(
        xtask::image_registry::Address::parse(&registry).unwrap(),
        true,
        false,
    );
    let seen = issuer.requests().len();
    let name = format!("xreg-token-labels-{}", std::process::id());
    let labels = client.labels(&sh, &name, "v1").unwrap().unwrap();
    assert_eq!(labels["xtask.test"], "token-flow", "{labels:?}");
    assert!(client.labels(&sh, &name, "v2").unwrap().is_none());
    assert!(matches!(
        client.lookup(&sh, &name, "v1").unwrap(),
        xtask::tools::registry::Lookup::Found(_)
    ));
    let requests = asked(seen);
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(
        requests[0].scopes,
        [format!("repository:private/{name}:pull")],
        "{requests:?}"
    );
    assert!(requests[0].granted);

    // A second checkout elsewhere, with no state, no local image and the credentials from that
    // Docker config only: the look-up finds the image by its key; nothing is built or pulled.
    tags.remove();
    let second = second_checkout(&first);
    let x2 = runner(second.path(), None, logged_in.path());
    let plan = x2.run(&["--json", "plan"]).ok();
    assert_eq!(plan.events()[0]["decision"], "cached", "{}", plan.stdout);
    runs.push(plan);
    let found = x2.run(&["--json", "build"]).ok();
    assert!(found.tasks_with("started").is_empty(), "{}", found.stdout);
    let fresh: Vec<_> = found
        .events()
        .into_iter()
        .filter(|e| e["event"] == "fresh")
        .collect();
    assert_eq!(fresh.len(), 1, "{}", found.stdout);
    assert!(
        fresh[0]["reason"].as_str().unwrap().starts_with(&format!(
            "found in registry {registry}: {image}:{tag} {}",
            &digest[..19]
        )),
        "{}",
        found.stdout
    );
    assert_eq!(recorded(second.path(), "img").unwrap()["digest"], digest);
    assert!(tags.list().is_empty(), "{:?}", tags.list());
    runs.push(found);

    // A changed file there: built and pushed with Docker's own credentials (no login of ours).
    std::fs::write(second.path().join("hello.txt"), "changed\n").unwrap();
    let rebuilt = x2.run(&["--json", "build"]).ok();
    assert_eq!(rebuilt.tasks_with("finished"), ["img"]);
    assert_ne!(recorded(second.path(), "img").unwrap()["digest"], digest);
    runs.push(rebuilt);
    let argv = argv.read();
    assert_eq!(
        argv.lines().filter(|l| l.starts_with("login ")).count(),
        1,
        "{argv}"
    );
    assert_eq!(
        argv.lines().filter(|l| l.starts_with("push ")).count(),
        2,
        "{argv}"
    );

    // The password, the wrong one, their Basic form and every token: nowhere.
    let basic = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(format!("ci-bot:{password}"))
    };
    let tokens = issuer.tokens();
    assert!(tokens.len() >= 2, "{} tokens issued", tokens.len());
    let needles: Vec<String> = [password.clone(), wrong, basic]
        .into_iter()
        .chain(tokens)
        .collect();
    let local = tags.list();
    assert!(!local.is_empty(), "no image of ours to inspect");
    for needle in &needles {
        assert!(!argv.contains(needle.as_str()), "a secret in docker's argv");
        for (i, run) in runs.iter().enumerate() {
            assert!(!run.stdout.contains(needle.as_str()), "run {i} stdout");
            assert!(!run.stderr.contains(needle.as_str()), "run {i} stderr");
        }
        for root in [first.root(), second.path()] {
            let hits = files_containing(&root.join("target/xtask"), needle);
            assert!(hits.is_empty(), "a secret under target/xtask: {hits:?}");
        }
        for tag in &local {
            let history = docker_ok(&["history", "--no-trunc", tag]);
            let inspect = docker_ok(&["image", "inspect", tag]);
            assert!(!history.contains(needle.as_str()) && !inspect.contains(needle.as_str()));
        }
    }
}

//! Images through a real registry (`docker-registry` on 127.0.0.1, open or with htpasswd):
//! `build --registry` pushes and records digests; a second checkout elsewhere with no state and
//! no local image finds every image there and builds nothing; keys are the same at any path;
//! an unreachable registry and a tag holding another digest each fail in one line and record
//! nothing. Credentials: `secret_marker::a_registry_password_authenticates_and_appears_nowhere`
//! (htpasswd), `registry_token` (the Bearer token flow, `auth: token`) and, on Minikube, `cluster::registry_images_are_deployed_by_digest_with_a_pull_secret_from_stdin`.
//!
//! A small image (a file on `debian:bookworm-slim`) keeps most of these quick; one test runs
//! the real pipeline's two images on copies of the workspace.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Instant;

use serde_json::Value;
use test_support::docker::{docker, docker_ok};
use test_support::registry::Registry;
use test_support::{Run, Xtask, copy_workspace, docker_daemon, lines};

use crate::support::{Project, one_deployment_at_a_time};

const DOCKERFILE: &str = "FROM debian:bookworm-slim\nCOPY hello.txt /hello.txt\n";

fn pipeline(image: &str) -> String {
    format!(
        "[tasks.img]\nkind = \"docker-image\"\nimage = \"{image}\"\ndockerfile = \"Dockerfile\"\n"
    )
}

/// A project with one small image named `image`.
pub fn small_project(image: &str) -> Project {
    let p = Project::new(&pipeline(image));
    p.write("Dockerfile", DOCKERFILE);
    p.write(".dockerignore", "*\n!hello.txt\n");
    p.write("hello.txt", "hello\n");
    p
}

/// A copy of [`small_project`] `first` at another path, as a second CI runner checks it out:
/// its files only, no recorded state.
pub fn second_checkout(first: &Project) -> tempfile::TempDir {
    let second = tempfile::tempdir().unwrap();
    for file in [
        ".dockerignore",
        "Dockerfile",
        "hello.txt",
        "xtask/pipeline.toml",
    ] {
        let to = second.path().join(file);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(first.path(file), to).unwrap();
    }
    second
}

/// Removes, on drop, every local image tag of the registry at `host` (its port is this test's
/// own, so these are the tags this test made).
pub struct LocalTags(pub String);

impl LocalTags {
    /// Our images' references: `repo:tag`, or the image ID of one whose tag moved away
    /// (`repo:<none>`, as after a push of another image over its tag).
    pub fn list(&self) -> Vec<String> {
        lines(&docker_ok(&[
            "image",
            "ls",
            "--format",
            "{{.Repository}}:{{.Tag}} {{.ID}}",
        ]))
        .into_iter()
        .filter(|l| l.starts_with(&format!("{}/", self.0)))
        .filter_map(|l| {
            let (reference, id) = l.split_once(' ')?;
            Some(if reference.ends_with(":<none>") {
                id.to_owned()
            } else {
                reference.to_owned()
            })
        })
        .collect()
    }

    pub fn remove(&self) {
        for reference in self.list() {
            let _ = docker(&["rmi", "--no-prune", &reference]);
        }
    }
}

impl Drop for LocalTags {
    fn drop(&mut self) {
        self.remove();
    }
}

/// The recorded outputs of `task` in the Docker target's state under `root`, if any.
pub fn recorded(root: &Path, task: &str) -> Option<Value> {
    let text =
        std::fs::read_to_string(root.join("target/xtask/docker-todo-app/state.json")).ok()?;
    let state: Value = serde_json::from_str(&text).unwrap();
    let outputs = state["tasks"][task]["outputs"].clone();
    (!outputs.is_null()).then_some(outputs)
}

/// `plan --json` keys of every task, by name.
fn plan_keys(x: &Xtask, registry: &str) -> Vec<(String, String)> {
    let run = x.run(&["--json", "--registry", registry, "plan"]).ok();
    run.events()
        .iter()
        .map(|e| {
            (
                e["task"].as_str().unwrap().to_owned(),
                e["key"].as_str().unwrap_or("(pending)").to_owned(),
            )
        })
        .collect()
}

/// The one `error:` line of a failed run's stderr.
#[track_caller]
pub fn one_error_line(run: &Run) -> String {
    assert_ne!(run.code, Some(0), "succeeded:\n{}", run.stdout);
    let errors: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("error"))
        .collect();
    assert_eq!(errors.len(), 1, "not one error line:\n{}", run.stderr);
    errors[0].to_owned()
}

#[test]
fn a_second_checkout_finds_the_image_in_the_registry_and_builds_nothing() {
    const TEST: &str =
        "registry::a_second_checkout_finds_the_image_in_the_registry_and_builds_nothing";
    if !docker_daemon(TEST) {
        return;
    }
    let Some(server) = Registry::start(TEST) else {
        return;
    };
    let tags = LocalTags(server.host());
    let registry = format!("{}/test", server.host());
    let image = format!("xreg-small-{}", std::process::id());

    let first = small_project(&image);
    let pushed = first
        .xtask(&["--json", "--registry", &registry, "build"])
        .ok();
    assert_eq!(pushed.tasks_with("finished"), ["img"]);
    let out = recorded(first.root(), "img").unwrap();
    let digest = out["digest"].as_str().unwrap().to_owned();
    assert!(digest.starts_with("sha256:"), "{out}");
    assert_eq!(
        out["image"].as_str().unwrap(),
        format!("{registry}/{image}@{digest}")
    );
    assert_eq!(out["registry"], registry.as_str());
    // The pushed tag is in the registry's storage, under the repository's tags.
    let tag = out["tag"].as_str().unwrap();
    assert!(
        server
            .storage()
            .join(format!(
                "docker/registry/v2/repositories/test/{image}/_manifests/tags/{tag}"
            ))
            .is_dir()
    );

    // Again in the same checkout: fresh, checked against the registry.
    let again = first
        .xtask(&["--json", "--registry", &registry, "build"])
        .ok();
    assert_eq!(again.tasks_with("fresh"), ["img"]);

    // A second runner: another path, no state, our image gone from the daemon.
    tags.remove();
    let second = second_checkout(&first);
    let x2 = Xtask::new(second.path());
    assert_eq!(
        plan_keys(&Xtask::new(first.root()), &registry),
        plan_keys(&x2, &registry),
        "the two checkouts key the image differently"
    );
    let plan = x2.run(&["--json", "--registry", &registry, "plan"]).ok();
    assert_eq!(plan.events()[0]["decision"], "cached", "{}", plan.stdout);
    let found = x2.run(&["--json", "--registry", &registry, "build"]).ok();
    assert!(found.tasks_with("started").is_empty(), "{}", found.stdout);
    let fresh: Vec<Value> = found
        .events()
        .into_iter()
        .filter(|e| e["event"] == "fresh")
        .collect();
    assert_eq!(fresh.len(), 1, "{}", found.stdout);
    assert!(
        fresh[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with(&format!("found in registry {registry}")),
        "{}",
        found.stdout
    );
    assert_eq!(
        recorded(second.path(), "img").unwrap()["digest"],
        digest.as_str()
    );
    // Nothing was pulled for `build`: the daemon still has no tag of this registry.
    assert!(tags.list().is_empty(), "{:?}", tags.list());

    // A changed file builds and pushes that image again.
    std::fs::write(second.path().join("hello.txt"), "changed\n").unwrap();
    let rebuilt = x2.run(&["--json", "--registry", &registry, "build"]).ok();
    assert_eq!(rebuilt.tasks_with("finished"), ["img"]);
    assert!(
        rebuilt.reason_of("img").contains("`hello.txt`"),
        "{}",
        rebuilt.reason_of("img")
    );
    let new = recorded(second.path(), "img").unwrap();
    assert_ne!(new["digest"], digest.as_str());
    assert_ne!(new["tag"], tag);

    // The lookup off: the first checkout trusts its daemon and makes no registry call; with
    // its image removed it builds and pushes over the tag.
    let off = first
        .xtask(&[
            "--json",
            "--registry",
            &registry,
            "--no-registry-cache",
            "build",
        ])
        .ok();
    assert_eq!(off.tasks_with("finished"), ["img"], "{}", off.stdout);
}

#[test]
fn registry_failures_are_one_line_and_record_nothing() {
    const TEST: &str = "registry::registry_failures_are_one_line_and_record_nothing";
    if !docker_daemon(TEST) {
        return;
    }
    let Some(server) = Registry::start(TEST) else {
        return;
    };
    let _tags = LocalTags(server.host());
    let image = format!("xreg-fail-{}", std::process::id());
    let p = small_project(&image);

    // An invalid value, from the flag or the environment: quoted, with the form to use.
    let bad = p.xtask(&["--registry", "https://ghcr.io/acme", "build"]);
    assert_eq!(bad.code, Some(2), "{}", bad.stderr);
    assert!(
        bad.stderr.contains("`https://ghcr.io/acme`"),
        "{}",
        bad.stderr
    );
    assert!(bad.stderr.contains("HOST[:PORT]/PATH"), "{}", bad.stderr);
    let mut x = Xtask::new(p.root());
    x.env.push(("XTASK_REGISTRY".into(), "Acme".into()));
    let bad_env = x.run(&["build"]);
    assert_eq!(bad_env.code, Some(2), "{}", bad_env.stderr);
    assert!(bad_env.stderr.contains("`Acme`"), "{}", bad_env.stderr);

    // Unreachable: a closed port.
    let closed = format!("127.0.0.1:{}/test", test_support::free_port());
    let run = p.xtask(&["--registry", &closed, "build"]);
    let line = one_error_line(&run);
    assert!(
        line.contains(&format!("cannot reach registry {closed}")) && line.contains("fix:"),
        "{line}"
    );
    assert!(recorded(p.root(), "img").is_none());
    // `doctor` says so in its registry row, and passes it for the running registry.
    let doctor = p.xtask(&["--registry", &closed, "doctor"]);
    assert_ne!(doctor.code, Some(0));
    let row = doctor
        .stdout
        .lines()
        .find(|l| l.starts_with("registry"))
        .unwrap_or_else(|| panic!("no registry row:\n{}", doctor.stdout));
    assert!(
        row.contains("cannot reach registry") && row.contains("FAIL") && row.contains("start it"),
        "{row}"
    );
    let open = format!("{}/test", server.host());
    let doctor = p.xtask(&["--registry", &open, "doctor"]).ok();
    let row = doctor
        .stdout
        .lines()
        .find(|l| l.starts_with("registry"))
        .unwrap();
    assert!(
        row.contains(&format!("{open} (anonymous)")) && row.trim_end().ends_with(" ok"),
        "{row}"
    );

    // A tag that holds another digest than the one recorded here.
    let registry = format!("{}/test", server.host());
    p.xtask(&["--registry", &registry, "build"]).ok();
    let before = recorded(p.root(), "img").unwrap();
    let tag = format!("{registry}/{image}:{}", before["tag"].as_str().unwrap());
    docker_ok(&["tag", "debian:bookworm-slim", &tag]);
    docker_ok(&["push", &tag]);
    let run = p.xtask(&["--registry", &registry, "build"]);
    let line = one_error_line(&run);
    assert!(
        line.contains(&format!("registry {registry} holds test/{image}:"))
            && line.contains(before["digest"].as_str().unwrap())
            && line.contains("fix:"),
        "{line}"
    );
    assert_eq!(
        recorded(p.root(), "img").unwrap(),
        before,
        "the record changed"
    );
}

/// Without a registry too, an image's key names nothing of the machine, while the freshness
/// check still asks the daemon: a daemon that lacks the tag, or holds another image under it
/// (another daemon, a wiped one), rebuilds.
#[test]
fn the_image_key_holds_no_daemon_and_freshness_asks_the_daemon() {
    const TEST: &str = "registry::the_image_key_holds_no_daemon_and_freshness_asks_the_daemon";
    if !docker_daemon(TEST) {
        return;
    }
    let image = format!("xreg-local-{}", std::process::id());
    let mut cleanup = test_support::docker::Cleanup::default();
    let p = small_project(&image);
    p.xtask(&["--json", "build"]).ok();
    let state: Value =
        serde_json::from_str(&p.read("target/xtask/docker-todo-app/state.json")).unwrap();
    let material = state["tasks"]["img"]["material"].as_object().unwrap();
    assert!(
        material.keys().all(|k| !k.contains("daemon")),
        "{material:?}"
    );
    let tag = recorded(p.root(), "img").unwrap()["image"]
        .as_str()
        .unwrap()
        .to_owned();
    cleanup.images.push(tag.clone());
    let plan = |what: &str| -> String {
        let run = p.xtask(&["--json", "plan"]).ok();
        let event = &run.events()[0];
        format!("{} {}", event["decision"], event["reason"]).replace('"', "")
            + &format!(" ({what})")
    };
    assert_eq!(plan("recorded"), "fresh up to date (recorded)");
    // Another image under the tag: not ours.
    docker_ok(&["tag", "debian:bookworm-slim", &tag]);
    assert_eq!(plan("retagged"), "run output missing (retagged)");
    // No image under the tag at all.
    docker_ok(&["rmi", &tag]);
    assert_eq!(plan("removed"), "run output missing (removed)");
    let rebuilt = p.xtask(&["--json", "build"]).ok();
    assert_eq!(rebuilt.tasks_with("finished"), ["img"]);
    assert_eq!(plan("rebuilt"), "fresh up to date (rebuilt)");
}

/// The real pipeline: both apps compiled and both images pushed from one checkout, then a second
/// checkout at another path, without state and without our local tags, compiles and builds
/// nothing (the compile's outputs and both images are found in the registry); an edited
/// frontend file compiles, then rebuilds and pushes the frontend only. Both runners compile in
/// the tests' shared builder with the `dev` profile, as the other tests do, so CI compiles the
/// app once for all of them; that the second runner needs no builder cache is shown by what it
/// does not do (start a task, compile), and `down --compile-cache` by the builder tests.
#[test]
fn a_second_ci_runner_reuses_both_app_images() {
    const TEST: &str = "registry::a_second_ci_runner_reuses_both_app_images";
    let _serial = one_deployment_at_a_time();
    if !docker_daemon(TEST) {
        return;
    }
    let Some(server) = Registry::start(TEST) else {
        return;
    };
    let tags = LocalTags(server.host());
    let registry = format!("{}/ci", server.host());
    let tasks = ["app-binaries", "backend-image", "frontend-image"];

    let dev = || ("XTASK_BUILD_PROFILE".to_owned(), "dev".to_owned());
    let first = copy_workspace();
    let mut x1 = Xtask::new(first.path());
    x1.env.push(dev());
    let started = Instant::now();
    let first_run = x1.run(&["--json", "--registry", &registry, "build"]).ok();
    let first_time = started.elapsed();
    assert_eq!(first_run.tasks_sorted("finished"), tasks);

    let second = copy_workspace();
    let mut x2 = Xtask::new(second.path());
    x2.env.push(dev());
    let keys1 = plan_keys(&x1, &registry);
    let keys2 = plan_keys(&x2, &registry);
    for task in tasks {
        let k1 = keys1.iter().find(|(t, _)| t == task).unwrap();
        let k2 = keys2.iter().find(|(t, _)| t == task).unwrap();
        assert_eq!(k1, k2, "{task} keyed differently at another path");
    }
    tags.remove();
    // No recorded result (the plans above recorded none).
    for task in tasks {
        assert!(recorded(second.path(), task).is_none());
    }
    let started = Instant::now();
    let warm = x2.run(&["--json", "--registry", &registry, "build"]).ok();
    let warm_time = started.elapsed();
    assert!(warm.tasks_with("started").is_empty(), "{}", warm.stdout);
    assert!(
        !warm.stdout.contains("Compiling"),
        "something compiled:\n{}",
        warm.stdout
    );
    for e in warm.events().iter().filter(|e| e["event"] == "fresh") {
        assert!(
            e["reason"]
                .as_str()
                .unwrap()
                .starts_with(&format!("found in registry {registry}")),
            "{e}"
        );
    }
    assert_eq!(warm.tasks_sorted("fresh"), tasks);
    eprintln!(
        "registry build times: first runner (both apps compiled in the tests' builder, both \
         images built and pushed) {:.1} s; second runner (the compile and both images found in \
         the registry) {:.2} s",
        first_time.as_secs_f64(),
        warm_time.as_secs_f64()
    );

    // One edited frontend file: the frontend is built and pushed, the backend is not.
    let css = second.path().join("frontend/static/app.css");
    let mut text = std::fs::read_to_string(&css).unwrap();
    text.push_str("\n/* registry test */\n");
    std::fs::write(&css, text).unwrap();
    let edited = x2.run(&["--json", "--registry", &registry, "build"]).ok();
    assert_eq!(
        edited.tasks_sorted("finished"),
        ["app-binaries", "frontend-image"]
    );
    assert_eq!(edited.tasks_with("fresh"), ["backend-image"]);
    let out = recorded(second.path(), "frontend-image").unwrap();
    assert!(
        out["image"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{registry}/todo-frontend@sha256:")),
        "{out}"
    );

    // The Docker target runs them by digest; the backend, found in the registry, is not in this
    // daemon, so `app-containers` pulls it. The smoke test passes against them.
    let mut x3 = Xtask::deployment(second.path(), &format!("xreg{}", std::process::id()));
    x3.env.push(dev());
    x3.run(&["--registry", &registry, "run", "smoke"])
        .assert_ok("the app from the registry's images");
    for role in ["backend", "frontend"] {
        let container = format!("{}-docker-{role}", x3.namespace());
        let image = docker_ok(&["inspect", "--format", "{{.Config.Image}}", &container]);
        assert!(
            image.starts_with(&format!("{registry}/todo-{role}@sha256:")),
            "{container} runs {image}"
        );
    }
}

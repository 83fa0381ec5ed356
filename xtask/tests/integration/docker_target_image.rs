//! The `docker-image` kind's key against the real Docker daemon, on a tiny project (one small
//! image from `debian:bookworm-slim`), so these run in seconds:
//! - the context's layout (symlink targets, permission bits, empty directories) is keyed, and
//!   `plan` names it as the reason;
//! - a context file edited after the key was computed and before it was sent fails the build
//!   naming the file, leaves no image under that key and records nothing; the next run builds
//!   an image that holds the new content.

#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use test_support::docker::docker_ok;
use test_support::{Run, Xtask, docker_daemon, lines, skip_or_fail};

const BASE: &str = "debian:bookworm-slim";

/// A throwaway project whose pipeline declares one image `repo` built from `img/`, plus
/// `extra` appended to `pipeline.toml` (and `image_deps` as the image's deps).
struct Project {
    dir: tempfile::TempDir,
    repo: String,
}

impl Project {
    fn new(tag: &str, image_deps: &[&str], extra: &str) -> Project {
        let dir = tempfile::Builder::new()
            .prefix("xtask-image-key-")
            .tempdir()
            .unwrap();
        let repo = format!("xtask-keytest-{tag}-{}", std::process::id());
        let root = dir.path().join("proj");
        let img = root.join("img");
        std::fs::create_dir_all(img.join("src")).unwrap();
        // Not left to the umask: a test changes it and puts it back.
        std::fs::set_permissions(img.join("src"), PermissionsExt::from_mode(0o755)).unwrap();
        std::fs::create_dir_all(root.join("xtask")).unwrap();
        std::fs::write(
            img.join("Dockerfile"),
            format!("FROM {BASE}\nCOPY . /ctx\n"),
        )
        .unwrap();
        std::fs::write(img.join("src/a.txt"), "first\n").unwrap();
        std::fs::write(img.join("src/b.txt"), "other\n").unwrap();
        std::fs::write(img.join("run.sh"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(img.join("run.sh"), PermissionsExt::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink("src/a.txt", img.join("link")).unwrap();
        let deps: Vec<String> = image_deps.iter().map(|d| format!("\"{d}\"")).collect();
        std::fs::write(
            root.join("xtask/pipeline.toml"),
            format!(
                "[tasks.img]\nkind = \"docker-image\"\nimage = \"{repo}\"\n\
                 dockerfile = \"img/Dockerfile\"\ncontext = \"img\"\ndeps = [{}]\n\n{extra}",
                deps.join(", ")
            ),
        )
        .unwrap();
        Project { dir, repo }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("proj")
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }

    fn xtask(&self) -> Xtask {
        Xtask::deployment(&self.root(), &format!("xkey{}", std::process::id()))
    }

    /// `(decision, reason)` of task `img` in `plan --json`.
    fn plan_img(&self, x: &Xtask) -> (String, String) {
        let plan = x.run(&["plan"]);
        plan.assert_ok("plan").assert_json_lines("plan");
        let e = plan
            .events()
            .into_iter()
            .find(|e| e["event"] == "plan" && e["task"] == "img")
            .unwrap_or_else(|| panic!("no plan event for img: {}", plan.stdout));
        (
            e["decision"].as_str().unwrap().to_owned(),
            e["reason"].as_str().unwrap().to_owned(),
        )
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        // Every image of this test's repository, whatever its tag.
        let out = Command::new("docker")
            .args(["image", "ls", "-q", &self.repo])
            .output()
            .unwrap();
        let ids: Vec<String> = lines(&String::from_utf8_lossy(&out.stdout));
        if !ids.is_empty() {
            let _ = Command::new("docker")
                .args(["image", "rm", "--force"])
                .args(&ids)
                .output();
        }
    }
}

fn base_image_present(test: &str) -> bool {
    if !docker_daemon(test) {
        return false;
    }
    let ok = Command::new("docker")
        .args(["image", "inspect", BASE])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        skip_or_fail(
            test,
            &format!("the base image {BASE}"),
            &format!("docker pull {BASE}"),
        );
    }
    ok
}

/// The key `img` started with in `run`.
fn started_key(run: &Run) -> String {
    run.events()
        .iter()
        .find(|e| e["event"] == "started" && e["task"] == "img")
        .and_then(|e| e["key"].as_str())
        .unwrap_or_else(|| panic!("img did not start: {}", run.stdout))
        .to_owned()
}

fn image_exists(reference: &str) -> bool {
    Command::new("docker")
        .args(["image", "inspect", reference])
        .output()
        .unwrap()
        .status
        .success()
}

fn recorded_tasks(root: &Path, namespace: &str) -> Vec<String> {
    let state = root.join(format!("target/xtask/docker-{namespace}/state.json"));
    let Ok(text) = std::fs::read_to_string(state) else {
        return Vec::new();
    };
    let state: serde_json::Value = serde_json::from_str(&text).unwrap();
    state["tasks"]
        .as_object()
        .map(|t| t.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn layout_changes_rekey_the_image_and_plan_names_the_layout() {
    let test = "docker_target_image::layout_changes_rekey_the_image_and_plan_names_the_layout";
    if !base_image_present(test) {
        return;
    }
    let p = Project::new("layout", &[], "");
    let x = p.xtask();
    x.run(&["build"]).assert_ok("first build");
    assert_eq!(p.plan_img(&x).0, "fresh", "img not fresh after its build");

    let layout = "`context layout` changed";
    let check = |what: &str, change: &dyn Fn(), undo: &dyn Fn()| {
        change();
        let (decision, reason) = p.plan_img(&x);
        assert_eq!(
            (decision.as_str(), reason.as_str()),
            ("run", layout),
            "{what} did not re-key the image with the layout as the reason"
        );
        undo();
        // Back to the built tree: the recorded key again.
        assert_eq!(p.plan_img(&x).0, "fresh", "after undoing {what}");
    };

    // A symlink pointing elsewhere: no file content changed, the image does.
    check(
        "retargeting a symlink",
        &|| {
            std::fs::remove_file(p.path("img/link")).unwrap();
            std::os::unix::fs::symlink("src/b.txt", p.path("img/link")).unwrap();
        },
        &|| {
            std::fs::remove_file(p.path("img/link")).unwrap();
            std::os::unix::fs::symlink("src/a.txt", p.path("img/link")).unwrap();
        },
    );
    // Permission bits other than the executable bit (which the file digests already carry).
    check(
        "a mode change",
        &|| {
            std::fs::set_permissions(p.path("img/src/a.txt"), PermissionsExt::from_mode(0o600))
                .unwrap();
        },
        &|| {
            std::fs::set_permissions(p.path("img/src/a.txt"), PermissionsExt::from_mode(0o644))
                .unwrap();
        },
    );
    // A directory's mode: the tar carries it, and `COPY` keeps it in the image.
    check(
        "a directory mode change",
        &|| {
            std::fs::set_permissions(p.path("img/src"), PermissionsExt::from_mode(0o700)).unwrap();
        },
        &|| {
            std::fs::set_permissions(p.path("img/src"), PermissionsExt::from_mode(0o755)).unwrap();
        },
    );
    // An empty directory: Docker sends and creates it.
    check(
        "a new empty directory",
        &|| std::fs::create_dir(p.path("img/src/empty")).unwrap(),
        &|| std::fs::remove_dir(p.path("img/src/empty")).unwrap(),
    );
}

#[test]
fn a_file_changed_between_key_and_send_fails_and_tags_nothing() {
    let test = "docker_target_image::a_file_changed_between_key_and_send_fails_and_tags_nothing";
    if !base_image_present(test) {
        return;
    }
    // `edit` runs after every key was computed (the engine plans the whole graph first) and
    // before the image's context is sent: the window of a user saving a file mid-build, made
    // deterministic. It edits once; the marker lives outside the project.
    let marker_dir = tempfile::tempdir().unwrap();
    let marker = marker_dir.path().join("edited");
    let extra = format!(
        "[tasks.edit]\nkind = \"command\"\nrun = [\"sh\", \"-c\", \
         \"test -e '{m}' || {{ echo second >> img/src/a.txt && touch '{m}'; }}\"]\n",
        m = marker.display()
    );
    let p = Project::new("race", &["edit"], &extra);
    let x = p.xtask();

    let failed = x.run(&["build"]);
    assert_ne!(failed.code, Some(0), "build succeeded: {}", failed.stdout);
    assert!(marker.exists(), "the edit task did not run");
    let all = format!("{}{}", failed.stdout, failed.stderr);
    assert!(
        all.contains("`img/src/a.txt` changed during the build (its content); run again"),
        "the failure does not name the changed file:\n{all}"
    );
    let key = started_key(&failed);
    let tag = format!("{}:{}", p.repo, &key[..12]);
    assert!(
        !image_exists(&tag),
        "{tag} was tagged from a context that is not its key"
    );
    let labelled = docker_ok(&[
        "image",
        "ls",
        "-q",
        "--all",
        "--filter",
        &format!("label=dev.todo-app.key={key}"),
    ]);
    assert!(
        labelled.trim().is_empty(),
        "images labelled with the stale key: {labelled}"
    );
    assert!(
        !recorded_tasks(&p.root(), x.namespace()).contains(&"img".to_owned()),
        "the failed image was recorded"
    );

    // The next run keys the new content and builds it.
    let again = x.run(&["build"]);
    again
        .assert_ok("build after the edit")
        .assert_json_lines("build --json");
    let key2 = started_key(&again);
    assert_ne!(key2, key);
    let tag2 = format!("{}:{}", p.repo, &key2[..12]);
    let content = docker_ok(&["run", "--rm", &tag2, "cat", "/ctx/src/a.txt"]);
    // `docker_ok` trims the output (the file ends with a newline).
    assert_eq!(content, "first\nsecond");
    assert!(recorded_tasks(&p.root(), x.namespace()).contains(&"img".to_owned()));
}

/// Issue 14: the base image's ID is part of the key. The project's image starts from a local
/// tag that the test then points at another image (as `docker pull` of a re-published base
/// would): the image is re-keyed with the base as the reason, and the build uses the new base.
#[test]
fn a_changed_base_image_rekeys_the_image() {
    let test = "docker_target_image::a_changed_base_image_rekeys_the_image";
    if !base_image_present(test) {
        return;
    }
    let p = Project::new("base", &[], "");
    let base = format!("{}-base:latest", p.repo);
    docker_ok(&["tag", BASE, &base]);
    std::fs::write(
        p.path("img/Dockerfile"),
        format!("FROM {base}\nCOPY . /ctx\n"),
    )
    .unwrap();
    let x = p.xtask();
    x.run(&["build"]).assert_ok("first build");
    assert_eq!(p.plan_img(&x).0, "fresh", "img not fresh after its build");

    // The same name, another image: a re-published base with one more file.
    let dockerfile = p.path("base.Dockerfile");
    std::fs::write(
        &dockerfile,
        format!("FROM {BASE}\nRUN echo fix > /security-fix\n"),
    )
    .unwrap();
    let dockerfile = dockerfile.to_str().unwrap();
    docker_ok(&[
        "build",
        "-q",
        "-t",
        &base,
        "-f",
        dockerfile,
        p.dir.path().to_str().unwrap(),
    ]);
    let (decision, reason) = p.plan_img(&x);
    assert_eq!(
        (decision.as_str(), reason.as_str()),
        ("run", format!("`base image {base}` changed").as_str())
    );
    let rebuilt = x.run(&["build"]);
    rebuilt.assert_ok("build on the new base");
    let tag = format!("{}:{}", p.repo, &started_key(&rebuilt)[..12]);
    let fix = docker_ok(&["run", "--rm", &tag, "cat", "/security-fix"]);
    assert_eq!(
        fix, "fix",
        "the rebuilt image does not hold the new base's file"
    );

    // `--pull` pulls every base before keying: this local-only name cannot be pulled, and the
    // error names it and the fix instead of keying what happens to be at hand.
    let pulled = x.run(&["--pull", "plan"]);
    assert_ne!(pulled.code, Some(0), "{}", pulled.stdout);
    assert!(
        pulled.stderr.contains(&format!("cannot pull `{base}`")) && pulled.stderr.contains("fix:"),
        "{}",
        pulled.stderr
    );
    let _ = Command::new("docker")
        .args(["image", "rm", "--force", &base])
        .output();
}

//! THE proof for `xtask::context`: build contexts full of `.dockerignore` edge cases with the
//! real Docker engine, let a Dockerfile list what the build received, and compare that list
//! with ours — both for `docker build -f DOCKERFILE CONTEXT` and for our tar fed to
//! `docker build -f NAME -`.
//!
//! Needs a Docker daemon (classic builder is forced with DOCKER_BUILDKIT=0, as on the CI
//! machine). Without one the tests print a SKIP line; with CI=true they fail instead.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::io::Read;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use xtask::context::{self, ContextFiles, EntryKind, IgnoreSource};

/// Lists everything under /ctx as `<type> <path>` (f file, d dir, l symlink).
const LISTER: &str = "FROM debian:bookworm-slim\n\
COPY . /ctx\n\
RUN cd /ctx && find . -mindepth 1 -printf '%y %P\\n' | LC_ALL=C sort > /list\n";

/// Tags created by one test; removed (with their layers) on drop, even when the test fails.
struct Images(Vec<String>);

impl Images {
    fn tag(&mut self, case: &str, how: &str) -> String {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let tag = format!(
            "xtask-context-test:{case}-{how}-{}-{nanos}",
            std::process::id()
        );
        self.0.push(tag.clone());
        tag
    }
}

impl Drop for Images {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            let _ = Command::new("docker")
                .arg("rmi")
                .arg("-f")
                .args(&self.0)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn docker_build() -> Command {
    let mut cmd = Command::new("docker");
    // Child-only env: the classic builder is what this engine runs and what we model.
    cmd.env("DOCKER_BUILDKIT", "0").args(["build", "-q"]);
    cmd
}

fn check(out: std::process::Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `docker build -f dockerfile context` the way users run it.
fn build_dir(context: &Path, dockerfile: &Path, tag: &str) {
    let out = docker_build()
        .arg("-t")
        .arg(tag)
        .arg("-f")
        .arg(dockerfile)
        .arg(context)
        .output()
        .unwrap();
    check(out, &format!("docker build of {}", context.display()));
}

/// Our tar on stdin: `docker build -f <plan> -`.
fn build_tar(files: &ContextFiles, tag: &str) {
    let plan = context::tar_plan(files).unwrap();
    let mut child = docker_build()
        .arg("-t")
        .arg(tag)
        .arg("-f")
        .arg(&plan.dockerfile)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let written = std::thread::scope(|s| {
        let writer = s.spawn(move || context::write_tar(files, stdin));
        let out = child.wait_with_output().unwrap();
        check(out, "docker build - (our tar)");
        writer.join().unwrap()
    });
    assert_eq!(written.unwrap(), plan, "write_tar must follow tar_plan");
}

/// What the build saw, as `<type> <path>` lines.
fn received(tag: &str) -> BTreeSet<String> {
    let out = Command::new("docker")
        .args(["run", "--rm", "--network", "none", tag, "cat", "/list"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    check(out, "docker run (reading /list)");
    text.lines().map(str::to_owned).collect()
}

fn ours(files: &ContextFiles) -> BTreeSet<String> {
    files
        .entries
        .iter()
        .map(|e| {
            let t = match e.kind {
                EntryKind::File { .. } => 'f',
                EntryKind::Dir { .. } => 'd',
                EntryKind::Symlink { .. } => 'l',
            };
            format!("{t} {}", e.path)
        })
        .collect()
}

fn assert_same(case: &str, how: &str, docker: &BTreeSet<String>, ours: &BTreeSet<String>) {
    let missing: Vec<_> = docker.difference(ours).collect();
    let extra: Vec<_> = ours.difference(docker).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{case} ({how}): docker received but we did not list: {missing:#?}\n\
         we listed but docker did not receive: {extra:#?}"
    );
}

/// Build both ways and compare each with `list`.
fn prove(case: &str, context_dir: &Path, dockerfile: &Path, direct: bool) -> BTreeSet<String> {
    let files = context::list(context_dir, dockerfile).unwrap();
    let ours = ours(&files);
    let mut images = Images(Vec::new());
    if direct {
        let tag = images.tag(case, "dir");
        build_dir(context_dir, dockerfile, &tag);
        assert_same(case, "docker build DIR", &received(&tag), &ours);
    }
    let tag = images.tag(case, "tar");
    build_tar(&files, &tag);
    assert_same(case, "our tar | docker build -", &received(&tag), &ours);
    ours
}

fn write(root: &Path, rel: &str, content: &[u8]) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

fn mkdir(root: &Path, rel: &str) {
    std::fs::create_dir_all(root.join(rel)).unwrap();
}

fn link(root: &Path, rel: &str, target: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    symlink(target, path).unwrap();
}

fn temp() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    (dir, ctx)
}

#[test]
fn kitchen_sink_matches_the_engine() {
    if !test_support::docker_daemon("kitchen_sink_matches_the_engine") {
        return;
    }
    let (_dir, ctx) = temp();
    write(
        &ctx,
        ".dockerignore",
        // One line per element: leading/trailing blanks, CRLF and a BOM are part of the test.
        [
            "\u{feff}bom.txt\r",
            "# a comment",
            "   ",
            " # not a comment: a pattern",
            "\t*.log",
            "!keep.log",
            "/build",
            "**/node_modules",
            "ex",
            "!ex/keep.txt",
            "!ex/sub/deep.txt",
            "pruned",
            // After `pruned`: still cannot re-include pruned/important.txt, because Docker only
            // walks an excluded directory when a `!` pattern literally starts with `dir/`.
            "!**/important.txt",
            "deep/**/*.tmp",
            "  spaced.txt  ",
            "docs/*.md",
            "!docs/README.md",
            "[abc].dat",
            "x?y",
            "**/.cache",
            "unicodé/*.bin",
            "literal\\*star",
            "emptyex",
            "crlf.txt\r",
            "rooted",
            "! /rooted/keep.txt",
            "./dotted/../dotclean.txt",
            "linkdir-excluded",
            "sub/*/gen",
            "!sub/a/gen/keep",
        ]
        .join("\n")
        .as_bytes(),
    );
    write(&ctx, "Dockerfile", LISTER.as_bytes());
    for f in [
        "bom.txt",
        "a.log",
        "keep.log",
        "*.log",
        "build/out.o",
        "src/build/keep.rs",
        "src/important.txt",
        "node_modules/x.js",
        "src/node_modules/y.js",
        "ex/keep.txt",
        "ex/other.txt",
        "ex/important.txt",
        "ex/sub/deep.txt",
        "ex/sub/other.txt",
        "pruned/important.txt",
        "pruned/a.txt",
        "deep/c.tmp",
        "deep/a/b/c.tmp",
        "deep/keep.txt",
        "spaced.txt",
        "file with spaces.txt",
        "docs/a.md",
        "docs/README.md",
        "docs/sub/b.md",
        "a.dat",
        "d.dat",
        "[abc].dat",
        "xzy",
        "x/y",
        ".cache/z",
        "src/.cache/z",
        ".hidden",
        "unicodé/ü.bin",
        "unicodé/keep.txt",
        "literal*star",
        "literalXstar",
        "crlf.txt",
        "rooted/keep.txt",
        "rooted/drop.txt",
        "dotclean.txt",
        "sub/a/gen/keep",
        "sub/a/gen/drop",
        "sub/b/gen/x",
        "sub/b/kept",
        "# not a comment: a pattern",
    ] {
        write(&ctx, f, f.as_bytes());
    }
    write(&ctx, "exec.sh", b"#!/bin/sh\n");
    std::fs::set_permissions(ctx.join("exec.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    mkdir(&ctx, "empty");
    mkdir(&ctx, "emptyex");
    mkdir(&ctx, "src/empty-nested");
    link(&ctx, "link-file", "keep.log");
    link(&ctx, "link-dir", "src");
    link(&ctx, "dangling", "nowhere");
    link(&ctx, "linkdir-excluded", "src");
    link(&ctx, "ex/link", "../keep.log");

    let got = prove("kitchen", &ctx, &ctx.join("Dockerfile"), true);
    // Spot checks of the interesting decisions (the engine agreed with all of them above).
    for present in [
        "f keep.log",
        "f src/build/keep.rs",
        "f ex/keep.txt",
        "f ex/important.txt",
        "f ex/sub/deep.txt",
        "d ex",
        "d empty",
        "f [abc].dat",
        "f literalXstar",
        "f rooted/keep.txt",
        "f sub/a/gen/keep",
        "l link-dir",
        "l dangling",
        "f .dockerignore",
        "f Dockerfile",
    ] {
        assert!(got.contains(present), "expected {present}");
    }
    for absent in [
        "f bom.txt",
        "f a.log",
        "f spaced.txt",
        "f *.log",
        "f pruned/important.txt",
        "f ex/other.txt",
        "d emptyex",
        "f deep/c.tmp",
        "f literal*star",
        "f crlf.txt",
        "f dotclean.txt",
        "f # not a comment: a pattern",
        "f sub/a/gen/drop",
        "l linkdir-excluded",
    ] {
        assert!(!got.contains(absent), "expected {absent} to be excluded");
    }
}

#[test]
fn excluded_dockerfile_and_dockerignore_are_hidden() {
    if !test_support::docker_daemon("excluded_dockerfile_and_dockerignore_are_hidden") {
        return;
    }
    let (_dir, ctx) = temp();
    write(
        &ctx,
        ".dockerignore",
        b".dockerignore\nDockerfile\n*.txt\n!keep.txt\n",
    );
    write(&ctx, "Dockerfile", LISTER.as_bytes());
    write(&ctx, "a.txt", b"a");
    write(&ctx, "keep.txt", b"k");
    write(&ctx, "b.md", b"b");
    let got = prove("hidden", &ctx, &ctx.join("Dockerfile"), true);
    assert_eq!(
        got,
        ["f b.md", "f keep.txt"].map(String::from).into(),
        "only the non-excluded files remain"
    );
}

#[test]
fn dockerfile_inside_an_excluded_directory_leaves_that_directory() {
    if !test_support::docker_daemon("dockerfile_inside_an_excluded_directory_leaves_that_directory")
    {
        return;
    }
    let (_dir, ctx) = temp();
    write(&ctx, ".dockerignore", b"docker\n");
    write(&ctx, "docker/Dockerfile", LISTER.as_bytes());
    write(&ctx, "docker/other.txt", b"o");
    write(&ctx, "app.txt", b"a");
    let got = prove("subdir", &ctx, &ctx.join("docker/Dockerfile"), true);
    // The CLI forces docker/Dockerfile into the tar, the daemon deletes it after unpacking:
    // the directory it was unpacked into stays, empty.
    assert!(got.contains("d docker"), "{got:?}");
    assert!(!got.contains("f docker/Dockerfile"), "{got:?}");
    assert!(!got.contains("f docker/other.txt"), "{got:?}");
}

#[test]
fn allowlist_with_double_star() {
    if !test_support::docker_daemon("allowlist_with_double_star") {
        return;
    }
    let (_dir, ctx) = temp();
    write(&ctx, ".dockerignore", b"**\n!src\n!*.md\nsrc/**/*.bak\n");
    write(&ctx, "Dockerfile", LISTER.as_bytes());
    for f in [
        "src/a.rs",
        "src/sub/b.rs",
        "src/sub/c.bak",
        "README.md",
        "other.txt",
        "nested/x.md",
    ] {
        write(&ctx, f, f.as_bytes());
    }
    let got = prove("allowlist", &ctx, &ctx.join("Dockerfile"), true);
    assert!(got.contains("f src/sub/b.rs") && !got.contains("f src/sub/c.bak"));
    assert!(!got.contains("f Dockerfile") && !got.contains("f .dockerignore"));
}

#[test]
fn dockerfile_outside_the_context() {
    if !test_support::docker_daemon("dockerfile_outside_the_context") {
        return;
    }
    for with_ignore in [true, false] {
        let (dir, ctx) = temp();
        write(dir.path(), "elsewhere/Dockerfile", LISTER.as_bytes());
        if with_ignore {
            write(&ctx, ".dockerignore", b"secret\n");
        }
        write(&ctx, "secret/key", b"s");
        write(&ctx, "app/main.rs", b"m");
        let dockerfile = dir.path().join("elsewhere/Dockerfile");
        let files = context::list(&ctx, &dockerfile).unwrap();
        assert_eq!(files.dockerfile_in_context, None);
        let case = if with_ignore {
            "outside-ign"
        } else {
            "outside"
        };
        let got = prove(case, &ctx, &dockerfile, true);
        assert_eq!(got.contains("f .dockerignore"), with_ignore, "{got:?}");
        assert_eq!(got.contains("f secret/key"), !with_ignore, "{got:?}");
        assert!(
            !got.iter()
                .any(|l| l.contains("Dockerfile") || l.contains("dockerfile"))
        );
    }
}

#[test]
fn per_dockerfile_ignore_file_wins_and_our_tar_enforces_it() {
    if !test_support::docker_daemon("per_dockerfile_ignore_file_wins_and_our_tar_enforces_it") {
        return;
    }
    let (_dir, ctx) = temp();
    write(&ctx, ".dockerignore", b"b.txt\n");
    write(&ctx, "backend/Dockerfile", LISTER.as_bytes());
    write(&ctx, "backend/Dockerfile.dockerignore", b"a.txt\n");
    write(&ctx, "a.txt", b"a");
    write(&ctx, "b.txt", b"b");
    let dockerfile = ctx.join("backend/Dockerfile");
    let files = context::list(&ctx, &dockerfile).unwrap();
    assert!(matches!(files.ignore, IgnoreSource::PerDockerfile(_)));
    let got = prove("perdf", &ctx, &dockerfile, false);
    assert!(
        got.contains("f b.txt") && !got.contains("f a.txt"),
        "{got:?}"
    );

    // The finding that makes the tar necessary: the classic builder ignores
    // backend/Dockerfile.dockerignore and applies the root .dockerignore instead.
    let mut images = Images(Vec::new());
    let tag = images.tag("perdf", "classic");
    build_dir(&ctx, &dockerfile, &tag);
    let classic = received(&tag);
    assert!(
        classic.contains("f a.txt") && !classic.contains("f b.txt"),
        "the classic builder now honours per-Dockerfile ignore files; \
         update CONTEXT_API.md and consider sending the directory directly: {classic:?}"
    );
}

#[test]
fn per_dockerfile_ignore_with_a_self_excluding_root_dockerignore() {
    if !test_support::docker_daemon("per_dockerfile_ignore_with_a_self_excluding_root_dockerignore")
    {
        return;
    }
    let (_dir, ctx) = temp();
    // The daemon reads the ROOT .dockerignore from the tar and would delete it (and the
    // Dockerfile); the plan must counter that without changing the listed file set.
    write(&ctx, ".dockerignore", b".dockerignore\nbackend\n");
    write(&ctx, "backend/Dockerfile", LISTER.as_bytes());
    write(
        &ctx,
        "backend/Dockerfile.dockerignore",
        b"backend/Dockerfile\nz.txt\n",
    );
    write(&ctx, "backend/src.rs", b"s");
    write(&ctx, "z.txt", b"z");
    let dockerfile = ctx.join("backend/Dockerfile");
    let plan = context::tar_plan(&context::list(&ctx, &dockerfile).unwrap()).unwrap();
    assert!(plan.extra_dockerfile && plan.dockerignore_override.is_some());
    let got = prove("perdf-self", &ctx, &dockerfile, false);
    assert!(got.contains("f .dockerignore"), "{got:?}");
    assert!(got.contains("f backend/src.rs"), "{got:?}");
    assert!(
        !got.contains("f backend/Dockerfile") && !got.contains("f z.txt"),
        "{got:?}"
    );
}

/// Tar streaming never needs the engine: entries, modes, owners and mtimes are checked here.
#[test]
fn tar_has_exact_entries_modes_and_zero_mtimes() {
    let (_dir, ctx) = temp();
    write(&ctx, "Dockerfile", LISTER.as_bytes());
    write(&ctx, "run.sh", b"#!/bin/sh\n");
    std::fs::set_permissions(ctx.join("run.sh"), std::fs::Permissions::from_mode(0o750)).unwrap();
    write(&ctx, ".dockerignore", b"*.tmp\n");
    write(&ctx, "x.tmp", b"t");
    link(&ctx, "l", "run.sh");
    mkdir(&ctx, "empty");
    // A directory's mode is sent (and keyed): not the umask's default.
    std::fs::set_permissions(ctx.join("empty"), std::fs::Permissions::from_mode(0o700)).unwrap();
    for f in [".dockerignore", "Dockerfile"] {
        std::fs::set_permissions(ctx.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let files = context::list(&ctx, &ctx.join("Dockerfile")).unwrap();
    let mut tar_bytes = Vec::new();
    let plan = context::write_tar(&files, &mut tar_bytes).unwrap();
    assert_eq!(plan.dockerfile, "Dockerfile");
    assert!(!plan.extra_dockerfile && plan.dockerignore_override.is_none());
    let mut archive = tar::Archive::new(&tar_bytes[..]);
    let mut seen = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let header = entry.header().clone();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        assert_eq!(header.mtime().unwrap(), 0, "{path}");
        assert_eq!(
            (header.uid().unwrap(), header.gid().unwrap()),
            (0, 0),
            "{path}"
        );
        if path == "run.sh" {
            assert_eq!(header.mode().unwrap() & 0o7777, 0o750);
            let mut body = String::new();
            entry.read_to_string(&mut body).unwrap();
            assert_eq!(body, "#!/bin/sh\n");
        }
        if path == "empty/" {
            assert_eq!(header.mode().unwrap() & 0o7777, 0o700);
        }
        if path == "l" {
            assert_eq!(entry.link_name().unwrap().unwrap(), Path::new("run.sh"));
        }
        seen.push(path.trim_end_matches('/').to_string());
    }
    assert_eq!(
        files.manifest(),
        "f .dockerignore 644\nf Dockerfile 644\nd empty 700\nl l -> run.sh\nf run.sh 750\n"
    );
    let want: Vec<String> = files.entries.iter().map(|e| e.path.clone()).collect();
    assert_eq!(seen, want);
    assert!(!want.contains(&"x.tmp".to_string()));
    // Same input, same bytes: the tar is reproducible.
    let mut again = Vec::new();
    context::write_tar(&files, &mut again).unwrap();
    assert!(again == tar_bytes);
}

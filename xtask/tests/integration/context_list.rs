//! `xtask::context::list` behaviour that needs no Docker daemon: errors, ignore-file selection,
//! pruning before reading.

#![allow(clippy::unwrap_used)]

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use xtask::context::{self, ContextError, IgnoreSource};

fn write(root: &Path, rel: &str, content: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

fn paths(files: &context::ContextFiles) -> Vec<&str> {
    files.entries.iter().map(|e| e.path.as_str()).collect()
}

#[test]
fn bad_pattern_error_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "Dockerfile", "FROM scratch\n");
    write(dir.path(), ".dockerignore", "# ok\ntarget\n[\n");
    let err = context::list(dir.path(), &dir.path().join("Dockerfile")).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, ContextError::Pattern { line: 3, .. }),
        "{text}"
    );
    assert!(text.contains(".dockerignore:3:"), "{text}");
    assert!(text.contains("\"[\""), "{text}");
}

#[test]
fn lone_bang_is_rejected_like_docker() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "Dockerfile", "FROM scratch\n");
    write(dir.path(), ".dockerignore", "a\n!\n");
    let err = context::list(dir.path(), &dir.path().join("Dockerfile")).unwrap_err();
    assert!(
        matches!(err, ContextError::Pattern { line: 2, .. }),
        "{err}"
    );
}

#[test]
fn missing_dockerfile_and_context_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let err = context::list(dir.path(), &dir.path().join("nope/Dockerfile")).unwrap_err();
    assert!(err.to_string().contains("nope/Dockerfile"), "{err}");
    let err = context::list(&dir.path().join("missing"), &dir.path().join("x")).unwrap_err();
    assert!(matches!(err, ContextError::NotADirectory { .. }), "{err}");
}

#[test]
fn per_dockerfile_ignore_file_takes_precedence() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, ".dockerignore", "b.txt\n");
    write(root, "svc/Dockerfile", "FROM scratch\n");
    write(root, "svc/Dockerfile.dockerignore", "a.txt\n");
    write(root, "a.txt", "");
    write(root, "b.txt", "");
    let files = context::list(root, &root.join("svc/Dockerfile")).unwrap();
    assert!(matches!(files.ignore, IgnoreSource::PerDockerfile(_)));
    assert!(files.contains("b.txt") && !files.contains("a.txt"));
    // Another Dockerfile in the same context falls back to the root file.
    write(root, "other/Dockerfile", "FROM scratch\n");
    let files = context::list(root, &root.join("other/Dockerfile")).unwrap();
    assert!(matches!(files.ignore, IgnoreSource::Root(_)));
    assert!(files.contains("a.txt") && !files.contains("b.txt"));
}

#[test]
fn excluded_directories_are_pruned_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "Dockerfile", "FROM scratch\n");
    write(root, ".dockerignore", "junk\n");
    // A name `list` refuses to send: harmless inside a pruned directory, an error elsewhere.
    let bad = OsStr::from_bytes(b"bad-\xff-name");
    std::fs::create_dir_all(root.join("junk")).unwrap();
    std::fs::write(root.join("junk").join(bad), "").unwrap();
    let files = context::list(root, &root.join("Dockerfile")).unwrap();
    assert_eq!(paths(&files), [".dockerignore", "Dockerfile"]);

    std::fs::create_dir_all(root.join("kept")).unwrap();
    std::fs::write(root.join("kept").join(bad), "").unwrap();
    let err = context::list(root, &root.join("Dockerfile")).unwrap_err();
    assert!(matches!(err, ContextError::NonUtf8Name { .. }), "{err}");
    assert!(err.to_string().contains(".dockerignore"), "{err}");
}

#[test]
fn files_iterator_gives_absolute_paths_of_regular_files_only() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "Dockerfile", "FROM scratch\n");
    write(root, "src/a.rs", "");
    std::os::unix::fs::symlink("src", root.join("link")).unwrap();
    let files = context::list(root, &root.join("Dockerfile")).unwrap();
    assert_eq!(paths(&files), ["Dockerfile", "link", "src", "src/a.rs"]);
    let abs: Vec<_> = files.files().map(|(_, p)| p).collect();
    let canon = std::fs::canonicalize(root).unwrap();
    assert_eq!(abs, [canon.join("Dockerfile"), canon.join("src/a.rs")]);
}

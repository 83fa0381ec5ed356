//! Input expansion: excluded directories are pruned before they are read (counted, not
//! timed), `.git` is never entered, globs do not descend where they cannot match, and special
//! files are a clear error instead of a hang.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use xtask::engine::hash::expand;

fn touch(root: &Path, rel: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, rel).unwrap();
}

fn mkfifo(path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

/// `src/` with files to keep, and two excluded subtrees each holding a FIFO (reading one would
/// block) under 40 nested directories.
fn tree(root: &Path) {
    touch(root, "src/top.rs");
    touch(root, "src/keep/a.rs");
    touch(root, "src/.git/objects/x");
    for excluded in ["src/skip", "src/target"] {
        let mut deep = root.join(excluded);
        for i in 0..40 {
            deep = deep.join(format!("d{i}"));
            touch(&deep, "f.rs");
        }
        mkfifo(&deep.join("fifo"));
    }
}

#[test]
fn excluded_directories_are_pruned_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    tree(dir.path());
    for jobs in [1, 8] {
        let e = expand(dir.path(), &["src", "!src/skip/**", "!src/target"], jobs).unwrap();
        assert_eq!(e.paths(), ["src/keep/a.rs", "src/top.rs"]);
        // `src` and `src/keep` only: neither excluded tree nor `.git` was opened.
        assert_eq!(e.dirs_read, 2, "jobs = {jobs}");
    }
}

#[test]
fn without_the_exclusion_the_same_tree_is_walked_and_the_fifo_is_refused() {
    // Control for the test above: the count really reflects the walk, and the FIFO it avoided
    // is reported by name (with the fix) rather than read.
    let dir = tempfile::tempdir().unwrap();
    tree(dir.path());
    let e = expand(dir.path(), &["src", "!src/skip/**", "!**/fifo"], 2).unwrap();
    assert_eq!(
        e.dirs_read,
        2 + 41,
        "src, src/keep, src/target and its 40 levels"
    );
    assert_eq!(e.files.len(), 2 + 40);
    let err = expand(dir.path(), &["src", "!src/skip/**"], 2).unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("src/target/")
            && msg.contains("fifo")
            && msg.contains("neither a regular file"),
        "{msg}"
    );
    assert!(msg.contains("exclude it with `!src/target/"), "{msg}");
}

#[test]
fn globs_do_not_descend_where_they_cannot_match() {
    let dir = tempfile::tempdir().unwrap();
    tree(dir.path());
    let e = expand(dir.path(), &["src/*.rs"], 2).unwrap();
    assert_eq!(e.paths(), ["src/top.rs"]);
    assert_eq!(e.dirs_read, 1, "only `src` itself");
    let e = expand(dir.path(), &["src/*/a.rs"], 2).unwrap();
    assert_eq!(e.paths(), ["src/keep/a.rs"]);
    // `src` and its direct subdirectories (`keep`, `skip`, `target`; never `.git`).
    assert_eq!(e.dirs_read, 4);
}

#[test]
fn a_pattern_matching_nothing_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    tree(dir.path());
    let e = expand(dir.path(), &["src/keep", "src/*.md", "!src/skip/**"], 2).unwrap();
    assert_eq!(e.paths(), ["src/keep/a.rs"]);
    assert_eq!(e.empty, [1]);
}

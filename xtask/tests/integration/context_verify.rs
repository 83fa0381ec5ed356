//! Sending a build context exactly as keyed (`context::send_verified`): the stream is the
//! context tar byte for byte, and a file changed after keying fails it, named.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use sha2::{Digest as _, Sha256};
use xtask::context::{self, ChangedDuringBuild, ContextFiles, Keyed, Shown, send_verified};

fn shown(context: &str) -> Shown<'_> {
    Shown {
        context,
        dockerfile: "Dockerfile",
    }
}

/// A context with a Dockerfile, a nested file, an executable, a symlink and an empty dir;
/// its listing, and the digests as keyed now.
fn fixture() -> (tempfile::TempDir, ContextFiles, Keyed) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::write(p.join("Dockerfile"), "FROM scratch\nCOPY . /\n").unwrap();
    std::fs::create_dir_all(p.join("src/empty")).unwrap();
    std::fs::write(p.join("src/a.rs"), "fn a() {}\n").unwrap();
    std::fs::write(p.join("run.sh"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(
        p.join("run.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    std::os::unix::fs::symlink("src/a.rs", p.join("link")).unwrap();
    let files = context::list(p, &p.join("Dockerfile")).unwrap();
    let keyed = Keyed {
        files: files
            .files()
            .map(|(e, abs)| {
                (
                    e.path.clone(),
                    hex::encode(Sha256::digest(std::fs::read(abs).unwrap())),
                )
            })
            .collect(),
        dockerfile: hex::encode(Sha256::digest(std::fs::read(p.join("Dockerfile")).unwrap())),
    };
    (dir, files, keyed)
}

#[test]
fn verified_stream_is_exactly_the_context_tar() {
    let (_dir, files, keyed) = fixture();
    let mut sent = Vec::new();
    send_verified(&files, &keyed, &shown("."), &mut sent).unwrap();
    let mut direct = Vec::new();
    context::write_tar(&files, &mut direct).unwrap();
    assert_eq!(
        sent, direct,
        "the checked stream must forward every byte unchanged"
    );
}

#[test]
fn a_file_edited_after_keying_fails_the_stream_naming_it() {
    let (dir, files, keyed) = fixture();
    std::fs::write(dir.path().join("src/a.rs"), "fn b() {}\n").unwrap();
    let err = send_verified(&files, &keyed, &shown("ctx"), &mut Vec::new()).unwrap_err();
    let changed = err.downcast_ref::<ChangedDuringBuild>().unwrap();
    assert_eq!(changed.path, "ctx/src/a.rs");
    assert_eq!(
        err.to_string(),
        "`ctx/src/a.rs` changed during the build (its content); run again"
    );
}

#[test]
fn a_mode_change_after_keying_fails_the_stream() {
    let (dir, files, keyed) = fixture();
    std::fs::set_permissions(
        dir.path().join("run.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let err = send_verified(&files, &keyed, &shown("."), &mut Vec::new()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "`run.sh` changed during the build (its permissions); run again"
    );
}

#[test]
fn a_changed_dockerfile_outside_the_listing_is_caught() {
    let (dir, _, _) = fixture();
    let p = dir.path();
    // The Dockerfile lives outside the context: it travels as an extra tar entry.
    std::fs::create_dir_all(p.join("ctx")).unwrap();
    std::fs::write(p.join("ctx/x.txt"), "x").unwrap();
    let files = context::list(&p.join("ctx"), &p.join("Dockerfile")).unwrap();
    let keyed = Keyed {
        files: BTreeMap::from([("x.txt".to_owned(), hex::encode(Sha256::digest(b"x")))]),
        dockerfile: hex::encode(Sha256::digest(std::fs::read(p.join("Dockerfile")).unwrap())),
    };
    send_verified(&files, &keyed, &shown("ctx"), &mut Vec::new()).unwrap();
    std::fs::write(p.join("Dockerfile"), "FROM scratch\n").unwrap();
    let err = send_verified(&files, &keyed, &shown("ctx"), &mut Vec::new()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "`Dockerfile` changed during the build (its content); run again"
    );
}

#[test]
fn a_deleted_file_fails_with_the_writers_error() {
    let (dir, files, keyed) = fixture();
    std::fs::remove_file(dir.path().join("src/a.rs")).unwrap();
    let err = send_verified(&files, &keyed, &shown("."), &mut Vec::new()).unwrap_err();
    assert!(format!("{err:#}").contains("a.rs"), "{err:#}");
}

#[test]
fn keyed_digest_covers_paths_contents_and_the_dockerfile() {
    let (_dir, _, keyed) = fixture();
    let mut other = keyed.clone();
    other.dockerfile = "0".repeat(64);
    assert_ne!(keyed.digest(), other.digest());
    let mut moved = keyed.clone();
    let sha = moved.files.remove("src/a.rs").unwrap();
    moved.files.insert("src/b.rs".into(), sha);
    assert_ne!(keyed.digest(), moved.digest());
}

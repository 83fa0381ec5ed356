//! Timings for the closing note (ignored: run with
//! `cargo test -p xtask --test docker_target_timings -- --ignored --nocapture`).
//!
//! In one run, on one repository copy: a deploy from no images and no state (the Docker layer
//! cache is whatever the daemon has), a no-op deploy, a deploy after editing one backend
//! source file, and, as the baseline, plain `docker build` of both images with a warm cache.
//! Printed as seconds and ratios; never asserted (speed is checked by reading, not by tests).
//!
//! A test binary of its own, not a module of `tests/integration/`: it measures wall time, so it
//! must run alone, not beside that binary's other tests in parallel threads (Docker builds
//! among them).

#![allow(clippy::unwrap_used)]

use test_support::docker::build;
use test_support::{Xtask, copy_workspace, docker_daemon};

#[test]
#[ignore = "timings for the closing note; slow"]
fn print_docker_target_timings() {
    if !docker_daemon("docker_target_timings") {
        return;
    }
    let repo = copy_workspace();
    let x = Xtask::deployment(repo.path(), &format!("xtime{}", std::process::id()));
    x.run(&["down", "--images"]).assert_ok("down before timing");

    let cold = x.run(&["deploy"]);
    cold.assert_ok("cold deploy");
    let noop = x.run(&["deploy"]);
    noop.assert_ok("no-op deploy");
    let main_rs = repo.path().join("backend/src/main.rs");
    let mut text = std::fs::read_to_string(&main_rs).unwrap();
    // A unique edit: an edit seen before would find its image already built (content keys).
    let nonce = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    text.push_str(&format!("\n// edited by the timings test {nonce}\n"));
    std::fs::write(&main_rs, text).unwrap();
    let edit = x.run(&["deploy"]);
    edit.assert_ok("one-file-changed deploy");

    // Baseline: what `docker build` alone costs when nothing changed (warm layer cache).
    let backend = build(
        repo.path(),
        "backend/Dockerfile",
        "xtask-timing-backend:warm",
    )
    .as_secs_f64();
    let frontend = build(
        repo.path(),
        "frontend/Dockerfile",
        "xtask-timing-frontend:warm",
    )
    .as_secs_f64();
    let warm = backend + frontend;
    // Baseline for the one-file change: plain `docker build` of the backend after another
    // unique edit of the same file.
    let mut text = std::fs::read_to_string(&main_rs).unwrap();
    text.push_str(&format!("\n// edited again by the timings test {nonce}\n"));
    std::fs::write(&main_rs, text).unwrap();
    let one_file_build = build(
        repo.path(),
        "backend/Dockerfile",
        "xtask-timing-backend:edit",
    )
    .as_secs_f64();
    let _ = test_support::docker::docker(&[
        "image",
        "rm",
        "xtask-timing-backend:warm",
        "xtask-timing-frontend:warm",
        "xtask-timing-backend:edit",
    ]);

    let (c, n, e) = (
        cold.elapsed.as_secs_f64(),
        noop.elapsed.as_secs_f64(),
        edit.elapsed.as_secs_f64(),
    );
    println!("docker target timings (one run, same machine):");
    println!(
        "  deploy from clean           {c:8.2} s  (no state, none of our images; layer cache as the daemon has it)"
    );
    println!(
        "  no-op deploy                {n:8.2} s  ({:.2}x warm docker build)",
        n / warm
    );
    println!(
        "  one-file-changed deploy     {e:8.2} s  ({:.2}x docker build of the backend after one edit)",
        e / one_file_build
    );
    println!(
        "  docker build, warm cache    {warm:8.2} s  (backend {backend:.2} s + frontend {frontend:.2} s)"
    );
    println!(
        "  docker build, one edit      {one_file_build:8.2} s  (backend only, warm cache otherwise)"
    );
    x.run(&["down"]).assert_ok("down");
}

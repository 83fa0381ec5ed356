//! Timings for the closing note (ignored: run with
//! `cargo test -p xtask --test docker_target_timings -- --ignored --nocapture`).
//!
//! In one run, on one repository copy: a deploy from no images and no state (the Docker layer
//! cache is whatever the daemon has), a no-op deploy, a deploy after editing one backend
//! source file, and, as the baseline, plain `docker build` of both images with a warm cache.
//! Printed as seconds and ratios; never asserted (speed is checked by reading, not by tests).

#![allow(clippy::unwrap_used)]

#[path = "docker_target_support/mod.rs"]
mod support;

use std::process::Command;
use std::time::Instant;

use support::{Xtask, copy_repo, docker_available};

fn plain_build(root: &std::path::Path, dockerfile: &str, tag: &str) -> f64 {
    let started = Instant::now();
    let out = Command::new("docker")
        .args(["build", "-q", "-f", dockerfile, "-t", tag, "."])
        .current_dir(root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    started.elapsed().as_secs_f64()
}

#[test]
#[ignore = "timings for the closing note; slow"]
fn print_docker_target_timings() {
    if !docker_available("docker_target_timings") {
        return;
    }
    let repo = copy_repo();
    let x = Xtask::new(repo.path(), &format!("xtime{}", std::process::id()));
    x.run(&["down", "--images"]).assert_ok("down before timing");

    let cold = x.run(&["deploy"]);
    cold.assert_ok("cold deploy");
    let noop = x.run(&["deploy"]);
    noop.assert_ok("no-op deploy");
    let main_rs = repo.path().join("backend/src/main.rs");
    let mut text = std::fs::read_to_string(&main_rs).unwrap();
    text.push_str("\n// edited by the timings test\n");
    std::fs::write(&main_rs, text).unwrap();
    let edit = x.run(&["deploy"]);
    edit.assert_ok("one-file-changed deploy");

    // Baseline: what `docker build` alone costs when nothing changed (warm layer cache).
    let backend = plain_build(
        repo.path(),
        "backend/Dockerfile",
        "xtask-timing-backend:warm",
    );
    let frontend = plain_build(
        repo.path(),
        "frontend/Dockerfile",
        "xtask-timing-frontend:warm",
    );
    let _ = Command::new("docker")
        .args([
            "image",
            "rm",
            "xtask-timing-backend:warm",
            "xtask-timing-frontend:warm",
        ])
        .output();
    let warm = backend + frontend;

    let (c, n, e) = (
        cold.elapsed.as_secs_f64(),
        noop.elapsed.as_secs_f64(),
        edit.elapsed.as_secs_f64(),
    );
    println!("docker target timings (one run, same machine):");
    println!("  cold deploy                 {c:8.2} s");
    println!(
        "  no-op deploy                {n:8.2} s  ({:.2}x warm docker build)",
        n / warm
    );
    println!(
        "  one-file-changed deploy     {e:8.2} s  ({:.2}x warm docker build)",
        e / warm
    );
    println!(
        "  docker build, warm cache    {warm:8.2} s  (backend {backend:.2} s + frontend {frontend:.2} s)"
    );
    x.run(&["down"]).assert_ok("down");
}

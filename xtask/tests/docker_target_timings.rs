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
    let warm = backend + frontend;
    // Baseline for the one-file change: plain `docker build` of the backend after another
    // unique edit of the same file.
    let mut text = std::fs::read_to_string(&main_rs).unwrap();
    text.push_str(&format!("\n// edited again by the timings test {nonce}\n"));
    std::fs::write(&main_rs, text).unwrap();
    let one_file_build = plain_build(
        repo.path(),
        "backend/Dockerfile",
        "xtask-timing-backend:edit",
    );
    let _ = Command::new("docker")
        .args([
            "image",
            "rm",
            "xtask-timing-backend:warm",
            "xtask-timing-frontend:warm",
            "xtask-timing-backend:edit",
        ])
        .output();

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

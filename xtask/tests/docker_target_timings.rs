//! Timings for the closing note (ignored: run with
//! `cargo test -p xtask --test docker_target_timings -- --ignored --nocapture`).
//!
//! In one run, on one repository copy, for each build profile (`release`, what `deploy` ships,
//! and `dev`, the inner loop's): a deploy from no images and no state (the builder's volumes
//! are whatever this namespace's builder holds: cold on the first profile), a no-op deploy, a
//! deploy after a test-file edit (the compile runs, nothing after it) and a deploy after a
//! one-line backend edit. Printed as seconds; never asserted (speed is checked by reading, not
//! by tests).
//!
//! A test binary of its own, not a module of `tests/integration/`: it measures wall time, so it
//! must run alone, not beside that binary's other tests in parallel threads (Docker builds
//! among them).

#![allow(clippy::unwrap_used)]

use test_support::{Xtask, copy_workspace, docker_daemon};

#[test]
#[ignore = "timings for the closing note; slow"]
fn print_docker_target_timings() {
    if !docker_daemon("docker_target_timings") {
        return;
    }
    let repo = copy_workspace();
    let ns = format!("xtime{}", std::process::id());
    let main_rs = repo.path().join("backend/src/main.rs");
    let test_rs = repo.path().join("backend/tests/api.rs");
    let line = "todo-backend: configuration error";
    let mut rows = Vec::new();
    for profile in ["release", "dev"] {
        let mut x = Xtask::deployment(repo.path(), &ns);
        x.env
            .push(("XTASK_BUILD_PROFILE".into(), profile.to_owned()));
        x.run(&["down"]).assert_ok("down before timing");
        let cold = x.run(&["deploy"]);
        cold.assert_ok("cold deploy");
        let noop = x.run(&["deploy"]);
        noop.assert_ok("no-op deploy");
        let mut text = std::fs::read_to_string(&test_rs).unwrap();
        text.push_str(&format!("\n// {profile} timing edit\n"));
        std::fs::write(&test_rs, text).unwrap();
        let same = x.run(&["deploy"]);
        same.assert_ok("test-file deploy");
        // A unique edit of one line: an edit seen before would find its image already built.
        let text = std::fs::read_to_string(&main_rs).unwrap();
        std::fs::write(
            &main_rs,
            text.replacen(line, &format!("{line} ({profile})"), 1),
        )
        .unwrap();
        let edit = x.run(&["deploy"]);
        edit.assert_ok("one-line deploy");
        rows.push((
            profile,
            cold.elapsed,
            noop.elapsed,
            same.elapsed,
            edit.elapsed,
        ));
        x.run(&["down"]).assert_ok("down");
    }
    println!("docker target timings (one run, same machine):");
    for (profile, cold, noop, same, edit) in rows {
        println!("  --build-profile {profile}");
        println!("    deploy from clean        {:8.2} s", cold.as_secs_f64());
        println!("    no-op deploy             {:8.2} s", noop.as_secs_f64());
        println!("    test-file-edit deploy    {:8.2} s", same.as_secs_f64());
        println!("    one-line-edit deploy     {:8.2} s", edit.as_secs_f64());
    }
    let mut x = Xtask::deployment(repo.path(), &ns);
    x.env.push(("XTASK_BUILD_PROFILE".into(), "dev".into()));
    x.run(&["down", "--volumes", "--images"])
        .assert_ok("down --images");
}

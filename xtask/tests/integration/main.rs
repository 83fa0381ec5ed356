//! The xtask integration tests: one test binary with a module per area (cargo's own layout),
//! so the support code and the xtask library are compiled and linked once, not once per file.
//! Run one area with `cargo test -p xtask --test integration <area>::`.
//!
//! `tests/docker_target_timings.rs` stays a binary of its own: it is `#[ignore]`d and measures
//! wall time, so it runs alone (`--test docker_target_timings -- --ignored`), never beside the
//! tests of this binary that run in parallel threads.

mod support;

mod builder;
mod chart;
mod cluster;
mod context_list;
mod context_verify;
mod context_vs_docker;
mod diagnose;
mod docker_dev;
mod docker_identity;
mod docker_target;
mod docker_target_image;
mod docs;
mod engine_cutoff;
mod engine_keys;
mod engine_run;
mod engine_targets;
mod engine_validation;
mod engine_walk;
mod kube_target;
mod load;
mod registry;
mod registry_token;
mod secret_marker;

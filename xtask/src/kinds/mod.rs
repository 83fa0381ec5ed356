//! Task kinds: what `kind = "..."` in `pipeline.toml` means. Each kind parses its own settings
//! at load time and then keys, checks and runs its tasks against the resolved [`Target`]. What
//! a deployment on a target is lives in [`crate::target`]; a kind limited to some targets says
//! so in [`TaskKind::targets`], and the engine keeps it off the others.

pub mod cargo_build;
pub mod command;
pub mod containers;
pub mod docker_image;
pub mod helm_release;
pub mod image_load;
pub mod k8s_secret;
pub mod smoke;

use std::path::PathBuf;

use crate::engine::{self, Registry, Session};
use crate::target::{self, Target};

pub(crate) use crate::engine::decl::Settings;
pub(crate) use crate::engine::{LoadCx, Outputs, Task, TaskKind};
pub(crate) use crate::error::Diagnostic;

/// What a pipeline task sees while its key is computed.
pub(crate) type KeyCx<'a> = engine::KeyCx<'a, Target>;
/// What a pipeline task sees while its recorded output is checked.
pub(crate) type CheckCx<'a> = engine::CheckCx<'a, Target>;
/// What a pipeline task sees while running.
pub(crate) type RunCx<'a> = engine::RunCx<'a, Target>;
/// A parsed pipeline task.
pub(crate) type BoxTask = Box<dyn Task<Target>>;

/// Every kind `pipeline.toml` may use, and every target its `targets` may name.
pub fn registry() -> Registry<Target> {
    Registry {
        kinds: vec![
            &command::CommandKind,
            &cargo_build::CargoBuildKind,
            &docker_image::DockerImageKind,
            &containers::ContainersKind,
            &smoke::SmokeKind,
            &k8s_secret::K8sSecretKind,
            &helm_release::HelmReleaseKind,
            &image_load::ImageLoadKind,
        ],
        targets: target::NAMES,
    }
}

/// The per-checkout key of the secrets' keyed digests: `target/xtask/secret-digest.key` (0600).
pub(crate) fn digest_key_path(session: &Session) -> PathBuf {
    session.xtask_dir().join("secret-digest.key")
}

//! Pushing an image: `docker push`, after `docker login --password-stdin` when the credentials
//! are ours alone (the environment's). That login goes to a private Docker config directory
//! (mode 0700) that is deleted after the push, so the user's own Docker config is never changed
//! and no credential outlives the push on disk.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow};
use xshell::Shell;

use super::Registry;
use super::credentials::{PASSWORD_ENV, USERNAME_ENV};
use crate::tools::ChildEnv;
use crate::tools::docker::Docker;

/// Pushes `reference` from the daemon `env` reaches and returns the manifest digest the
/// registry stored.
pub fn push(sh: &Shell, env: &ChildEnv, registry: &Registry, reference: &str) -> Result<String> {
    let address = &registry.address;
    let credentials = registry.credentials(sh)?;
    let mut env = env.clone();
    let _config = match &credentials {
        Some(c) if !c.source.known_to_docker() => {
            let dir = PrivateConfig::create()?;
            env.insert("DOCKER_CONFIG".to_owned(), dir.path().display().to_string());
            Docker::new(sh, env.clone())
                .login(address.host(), &c.username, c.password.expose().as_bytes())
                .map_err(|e| {
                    anyhow!(
                        "docker login to registry {address} as `{}` (from {}) failed: {e}; fix: \
                         correct {USERNAME_ENV}/{PASSWORD_ENV}, and check that the registry is up",
                        c.username,
                        c.source
                    )
                })?;
            Some(dir)
        }
        _ => None,
    };
    Docker::new(sh, env).push(reference).map_err(|e| {
        anyhow!(
            "pushing {reference} to registry {address} failed: {e}; fix: {}",
            match &credentials {
                Some(c) => format!(
                    "check that user `{}` (from {}) may push there",
                    c.username, c.source
                ),
                None => format!(
                    "`docker login {}`, or set {USERNAME_ENV} and {PASSWORD_ENV}",
                    address.host()
                ),
            }
        )
    })
}

/// A Docker config directory of our own, deleted when dropped.
struct PrivateConfig(PathBuf);

impl PrivateConfig {
    fn create() -> Result<PrivateConfig> {
        use std::os::unix::fs::DirBuilderExt as _;
        let mut random = [0u8; 8];
        getrandom::getrandom(&mut random).map_err(|e| anyhow!("reading OS randomness: {e}"))?;
        let dir = std::env::temp_dir().join(format!("xtask-docker-config-{}", hex::encode(random)));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .with_context(|| {
                format!(
                    "creating a private Docker config directory {}",
                    dir.display()
                )
            })?;
        Ok(PrivateConfig(dir))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for PrivateConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

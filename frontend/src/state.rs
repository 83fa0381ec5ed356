//! What every handler and middleware shares: the backend client and the cookie policy.

use crate::backend::BackendClient;
use crate::config::Config;

/// Shared by all handlers; cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    /// Client for the backend API.
    pub backend: BackendClient,
    /// Whether cookies carry the `Secure` flag.
    pub cookie_secure: bool,
}

impl AppState {
    /// Builds the state from configuration.
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        Ok(Self {
            backend: BackendClient::new(&config.backend_url)?,
            cookie_secure: config.cookie_secure,
        })
    }
}

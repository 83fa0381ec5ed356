//! What every handler and middleware shares: the backend client, the cookie policy, the CSRF
//! key and the request timeout.

use crate::backend::BackendClient;
use crate::config::Config;
use crate::csrf::CsrfKey;

/// Shared by all handlers; cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    /// Client for the backend API.
    pub backend: BackendClient,
    /// Whether cookies carry the `Secure` flag.
    pub cookie_secure: bool,
    /// Key of the CSRF tokens (`CSRF_SECRET`).
    pub csrf_key: CsrfKey,
    /// Longest a request may take (`REQUEST_TIMEOUT_SECONDS`).
    pub request_timeout: std::time::Duration,
}

impl AppState {
    /// Builds the state from configuration.
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        Ok(Self {
            backend: BackendClient::new(&config.backend_url)?,
            cookie_secure: config.cookie_secure,
            csrf_key: config.csrf_secret.clone(),
            request_timeout: config.timeouts.request,
        })
    }
}

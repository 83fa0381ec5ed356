//! Log setup from `LOG_LEVEL` and `LOG_FORMAT`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat};

/// Installs the global subscriber writing to stdout. Call once, from `main`.
pub fn init(config: &Config) {
    // Validated in `Config::from_lookup`, so this fallback is never taken in practice.
    let filter = EnvFilter::try_new(&config.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true)
        // Colour codes only for a person at a terminal: in containers and log collectors they are
        // noise, and they clutter the log lines `cargo xtask` quotes when a rollout fails.
        .with_ansi(std::io::stdout().is_terminal());
    match config.log_format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init(),
        LogFormat::Text => builder.init(),
    }
}

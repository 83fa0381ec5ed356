//! `todo-backend`: reads its configuration from the environment and serves the API.

use std::process::ExitCode;

use todo_backend::config::Config;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_lookup(|k| std::env::var(k).ok()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("todo-backend: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    todo_backend::logging::init(&config);
    let addr = std::net::SocketAddr::from(([0, 0, 0, 0], config.port));
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(%addr, error = %e, "cannot listen; is PORT already in use?");
            return ExitCode::from(1);
        }
    };
    match todo_backend::serve(config, listener, todo_backend::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "server failed");
            ExitCode::from(1)
        }
    }
}

//! HTTP routes, grouped by resource.

pub mod auth;
pub mod chat;
pub mod health;
pub mod tasks;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use std::time::Duration;
use tower_http::timeout::TimeoutLayer;

use crate::AppState;
use crate::db::availability;
use crate::error::ApiError;

/// Largest accepted request body; every JSON body here is small.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Every route, without the logging and request-id layers. Each request, body included, must
/// finish within `REQUEST_TIMEOUT_SECONDS` (`POST /api/chat`: `CHAT_TIMEOUT_SECONDS` plus a
/// margin, since the turn bounds itself); otherwise `408` `request_timeout`. Every route but
/// the probes needs the database, and answers `503` at once while it is known to be down
/// ([`availability::gate`]).
pub fn router(state: AppState) -> Router {
    let limits = state.limits.clone();
    let timeout = |d| TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, d);
    let gate = || axum::middleware::from_fn_with_state(state.clone(), availability::gate);
    Router::new()
        .merge(auth::router())
        .merge(tasks::router())
        .merge(chat::conversations_router())
        .route_layer(gate())
        .merge(health::router())
        .fallback(|| async { ApiError::NotFound("no such route") })
        .layer(timeout(limits.request_timeout))
        .merge(
            chat::chat_router()
                .route_layer(gate())
                .layer(timeout(limits.chat_timeout + CHAT_TIMEOUT_MARGIN)),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// Time a chat request gets beyond its turn's own bound, for the database work around it.
const CHAT_TIMEOUT_MARGIN: Duration = Duration::from_secs(5);

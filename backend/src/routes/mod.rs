//! HTTP routes, grouped by resource.

pub mod auth;
pub mod chat;
pub mod health;
pub mod tasks;

use axum::Router;
use axum::extract::DefaultBodyLimit;

use crate::AppState;
use crate::error::ApiError;

/// Largest accepted request body; every JSON body here is small.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Every route, without the logging and request-id layers.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(health::router())
        .merge(auth::router())
        .merge(tasks::router())
        .merge(chat::router())
        .fallback(|| async { ApiError::NotFound("no such route") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

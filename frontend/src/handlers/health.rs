//! Liveness and readiness probes.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::state::AppState;

/// Readiness fails when the backend takes longer than this to answer its `/health`.
pub(crate) const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /health`: 200 while the process serves.
pub(crate) async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /ready`: 200 when the backend's `/health` answers in time, else 503 with the reason.
pub(crate) async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    match state.backend.health(READY_TIMEOUT).await {
        Ok(()) => (StatusCode::OK, Json(json!({ "status": "ready" }))),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "not_ready", "reason": reason })),
        ),
    }
}

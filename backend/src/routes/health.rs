//! Liveness (`/health`: the process serves) and readiness (`/ready`: database reachable and
//! migrations applied).

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::AppState;

/// Readiness answers within this, below a typical probe timeout of 1 s, even when the
/// database host silently drops packets.
const READY_DB_TIMEOUT: Duration = Duration::from_millis(800);

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

async fn ready(State(state): State<AppState>) -> Response {
    let ping = tokio::time::timeout(
        READY_DB_TIMEOUT,
        sqlx::query("SELECT 1").execute(&state.pool),
    )
    .await;
    let reachable = matches!(ping, Ok(Ok(_)));
    // The probe is one more witness of the database's state for the request gate.
    if reachable {
        state.database.report_up();
    } else {
        state.database.report_down();
    }
    let reason = match reachable {
        true if state.migrated.load(Ordering::Acquire) => None,
        true => Some("migrations pending"),
        false => Some("database unreachable"),
    };
    match reason {
        None => Json(json!({ "status": "ready" })).into_response(),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "not_ready", "reason": reason })),
        )
            .into_response(),
    }
}

//! `REQUEST_TIMEOUT_SECONDS`: every request, body upload included, is answered within it, or
//! with a `408` page. A chat message gets the backend client's chat bound instead (the turn
//! may wait on an AI provider), so the client's own timeout answers first, with its message.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use crate::state::AppState;
use crate::views::ErrorPage;

/// Time a chat message gets beyond the backend client's chat timeout, for the page around it.
const CHAT_MARGIN: Duration = Duration::from_secs(5);

/// Middleware: cuts a request that runs past its bound and answers `408`.
pub(crate) async fn middleware(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let bound = if req.method() == Method::POST && req.uri().path() == "/chat" {
        state
            .request_timeout
            .max(crate::backend::CHAT_TIMEOUT + CHAT_MARGIN)
    } else {
        state.request_timeout
    };
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    match tokio::time::timeout(bound, next.run(req)).await {
        Ok(res) => res,
        Err(_) => {
            tracing::warn!(%method, path, bound_seconds = bound.as_secs(), "request timed out");
            ErrorPage::new(
                "This took too long",
                "The request was not answered in time (a form sent too slowly, or the service \
                 is busy). If you changed something, reload the page to see whether it was \
                 saved, then try again.",
            )
            .respond(StatusCode::REQUEST_TIMEOUT)
        }
    }
}

//! API errors and their JSON body `{"error":{"code","message"}}`; internals never leave here.

use axum::Json;
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::db::availability;

/// Every way a request can fail, mapped to one status and error code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed JSON, a bad query parameter or a bad path segment.
    #[error("{0}")]
    BadRequest(String),
    /// No valid bearer token, or wrong credentials.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// Missing, or owned by someone else (deliberately indistinguishable).
    #[error("{0}")]
    NotFound(&'static str),
    /// Registration with an email that already has an account.
    #[error("an account with this email already exists")]
    EmailTaken,
    /// Well-formed JSON whose content breaks a rule; the message names the field.
    #[error("{0}")]
    Validation(String),
    /// The request body exceeds the size limit.
    #[error("request body is too large")]
    PayloadTooLarge,
    /// The database cannot be reached right now.
    #[error("the service is temporarily unavailable, try again shortly")]
    NotReady,
    /// Too many requests from this client, account or user: 429 with `Retry-After`.
    #[error("{message}")]
    RateLimited {
        /// Seconds until a retry is allowed.
        retry_after: u64,
        /// What was throttled and when to retry.
        message: String,
    },
    /// Every password-hashing slot stayed busy: 503 with `Retry-After`.
    #[error("the service is busy; try again in {retry_after} second(s)")]
    Busy {
        /// Seconds to wait before retrying.
        retry_after: u64,
    },
    /// A per-user cap is reached (tasks, conversations, messages); the message names it.
    #[error("{0}")]
    LimitReached(String),
    /// Anything unexpected; the cause is logged, never sent.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::EmailTaken => (StatusCode::CONFLICT, "email_taken"),
            ApiError::Validation(_) => (StatusCode::UNPROCESSABLE_ENTITY, "validation_error"),
            ApiError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::NotReady => (StatusCode::SERVICE_UNAVAILABLE, "not_ready"),
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::Busy { .. } => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            ApiError::LimitReached(_) => (StatusCode::CONFLICT, "limit_reached"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// Shorthand for a 422 naming a field.
    pub fn validation(msg: impl Into<String>) -> Self {
        ApiError::Validation(msg.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        // NotReady is logged where its cause is known (the sqlx error, the availability gate's
        // transitions), not once per refused request.
        if let ApiError::Internal(cause) = &self {
            tracing::error!(error = %format!("{cause:#}"), "request failed")
        }
        let body = json!({ "error": { "code": code, "message": self.to_string() } });
        let mut res = (status, Json(body)).into_response();
        match self {
            ApiError::RateLimited { retry_after, .. } | ApiError::Busy { retry_after } => {
                res.headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from(retry_after));
            }
            ApiError::NotReady => {
                res.headers_mut().insert(
                    RETRY_AFTER,
                    HeaderValue::from(availability::RETRY_AFTER_SECONDS),
                );
                // Tells the availability gate that the database is down.
                res.extensions_mut()
                    .insert(availability::DatabaseUnreachable);
            }
            _ => {}
        }
        res
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        // Connection trouble is transient: say so instead of a bare 500.
        if availability::is_connection_failure(&e) {
            tracing::warn!(error = %e, "database unavailable");
            ApiError::NotReady
        } else {
            ApiError::Internal(e.into())
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::JsonDataError(e) => {
                // serde's message names the field ("title: invalid type ..."), never internals.
                ApiError::Validation(format!("invalid request body: {}", serde_source(&e)))
            }
            JsonRejection::JsonSyntaxError(_) => {
                ApiError::BadRequest("request body is not valid JSON".into())
            }
            JsonRejection::MissingJsonContentType(_) => ApiError::BadRequest(
                "expected a JSON body with Content-Type: application/json".into(),
            ),
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
            _ => ApiError::BadRequest("could not read the request body".into()),
        }
    }
}

fn serde_source(e: &dyn std::error::Error) -> String {
    // axum wraps serde's error ("Failed to deserialize ...: <serde message>"); keep serde's part.
    let mut inner: &dyn std::error::Error = e;
    while let Some(next) = inner.source() {
        inner = next;
    }
    inner.to_string()
}

impl From<BytesRejection> for ApiError {
    fn from(r: BytesRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::BadRequest("could not read the request body".into())
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(_: PathRejection) -> Self {
        ApiError::BadRequest("the id in the path must be a valid identifier".into())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::BadRequest(format!("invalid query string: {}", serde_source(&r)))
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        ApiError::Internal(e)
    }
}

/// Response mapper: an error response that is not JSON (made by a layer, the router or one of
/// axum's own rejections: `405`, `408` from the request timeout, `413`...) gets the JSON error
/// body every other error has. Its other headers (`Allow`, `Retry-After`) stay.
pub async fn envelope_bare_errors(res: Response) -> Response {
    let status = res.status();
    let is_json = res
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return res;
    }
    let (code, message) = match status {
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this method is not allowed here; see the Allow header",
        ),
        StatusCode::REQUEST_TIMEOUT => (
            "request_timeout",
            "the request took too long (a body sent too slowly, or the server is overloaded); try again",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "request body is too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "bad_request",
            "expected a JSON body with Content-Type: application/json",
        ),
        s if s.is_server_error() => ("internal", "internal error"),
        _ => ("bad_request", "the request could not be understood"),
    };
    let (mut parts, _) = res.into_parts();
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    parts.headers.remove(axum::http::header::CONTENT_TYPE);
    let body = Json(json!({ "error": { "code": code, "message": message } }));
    let mut new = (status, body).into_response();
    for (name, value) in &parts.headers {
        new.headers_mut()
            .entry(name)
            .or_insert_with(|| value.clone());
    }
    new
}

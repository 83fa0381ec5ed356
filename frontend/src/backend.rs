//! HTTP client for the backend's JSON API (see the API contract); turns its error envelope into
//! [`BackendError`] so handlers can show a readable message.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use url::Url;

/// How long a normal API call may take before the page shows "unavailable".
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// A chat turn may wait on an LLM provider, which is slower than the database.
pub(crate) const CHAT_TIMEOUT: Duration = Duration::from_secs(90);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long an idle keep-alive connection to the backend is kept.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(5);

tokio::task_local! {
    /// The id of the request being handled, forwarded so both services log the same id.
    static REQUEST_ID: String;
}

/// Runs `fut` with `id` as the request id sent along with every backend call it makes.
pub async fn with_request_id<F: std::future::Future>(id: String, fut: F) -> F::Output {
    REQUEST_ID.scope(id, fut).await
}

fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// A task as the backend returns it.
#[derive(Debug, Clone, Deserialize)]
pub struct Task {
    /// Backend id.
    pub id: i64,
    /// Short title, 1–200 characters.
    pub title: String,
    /// Optional longer text.
    pub description: Option<String>,
    /// Whether it is done.
    pub completed: bool,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// RFC 3339 time of the last change.
    pub updated_at: String,
}

/// The token returned by a successful sign in.
#[derive(Debug, Clone, Deserialize)]
pub struct Login {
    /// Bearer token for later calls.
    pub token: String,
    /// Lifetime of the token in seconds.
    pub expires_in: i64,
}

/// The signed-in account.
#[derive(Debug, Clone, Deserialize)]
pub struct Me {
    /// Account email, lowercase.
    pub email: String,
}

/// One tool call the assistant made during a chat turn.
#[derive(Debug, Clone, Deserialize)]
pub struct ChatAction {
    /// Tool name, e.g. `add_task`.
    pub tool: String,
    /// Whether the tool call succeeded.
    pub ok: bool,
    /// One-line human summary of what happened.
    #[serde(default)]
    pub summary: String,
}

/// The backend's answer to a chat message.
#[derive(Debug, Clone, Deserialize)]
pub struct ChatReply {
    /// What the assistant says.
    pub reply: String,
    /// The tool calls it made.
    #[serde(default)]
    pub actions: Vec<ChatAction>,
    /// The conversation this turn belongs to.
    pub conversation_id: String,
}

/// One message of a stored conversation.
#[derive(Debug, Clone, Deserialize)]
pub struct ChatMessage {
    /// `user` or `assistant`.
    pub role: String,
    /// Message text.
    pub content: String,
}

/// A stored conversation with its messages.
#[derive(Debug, Clone, Deserialize)]
pub struct Conversation {
    /// Conversation id (UUID).
    pub id: String,
    /// Messages, oldest first.
    #[serde(default)]
    pub messages: Vec<ChatMessage>,
}

/// Fields sent when creating or replacing a task.
#[derive(Debug, Clone, Serialize)]
pub struct TaskInput<'a> {
    /// Title (the backend trims and validates it).
    pub title: &'a str,
    /// Description; empty becomes null on the backend.
    pub description: Option<&'a str>,
    /// Completion state, only for updates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed: Option<bool>,
}

/// Why a backend call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BackendError {
    /// The backend answered with its error envelope.
    #[error("backend answered {status}: {code}")]
    Api {
        /// HTTP status.
        status: StatusCode,
        /// Machine-readable code, e.g. `email_taken`.
        code: String,
        /// Human sentence from the backend.
        message: String,
        /// Seconds from the `Retry-After` header (429 and 503 answers).
        retry_after: Option<u64>,
    },
    /// No usable answer: connection refused, timeout, or a body that is not the contract's.
    #[error("backend unavailable: {0}")]
    Unavailable(String),
}

impl BackendError {
    /// The HTTP status the backend answered, if it answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Api { status, .. } => Some(*status),
            Self::Unavailable(_) => None,
        }
    }

    /// The status for a page that reports this error: the backend's own, or 503 when it did
    /// not answer.
    pub fn page_status(&self) -> StatusCode {
        self.status().unwrap_or(StatusCode::SERVICE_UNAVAILABLE)
    }

    /// Seconds the backend asked to wait before retrying (`Retry-After`), if any.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Self::Api { retry_after, .. } => *retry_after,
            Self::Unavailable(_) => None,
        }
    }

    /// Whether the session token was rejected (expired, tampered, account gone).
    pub fn is_unauthorized(&self) -> bool {
        self.status() == Some(StatusCode::UNAUTHORIZED)
    }

    /// A sentence to show a person; never includes internals.
    pub fn user_message(&self) -> String {
        match self {
            Self::Unavailable(_) => {
                "The task service is not reachable right now. Please try again in a moment."
                    .to_owned()
            }
            Self::Api {
                code,
                message,
                retry_after,
                ..
            } => match code.as_str() {
                "rate_limited" => {
                    let wait = retry_after.map_or_else(
                        || "a moment".to_owned(),
                        |n| format!("{n} second{}", if n == 1 { "" } else { "s" }),
                    );
                    format!("Too many attempts. Please try again in {wait}.")
                }
                "busy" => {
                    let wait = retry_after.map_or_else(
                        || "a moment".to_owned(),
                        |n| format!("{n} second{}", if n == 1 { "" } else { "s" }),
                    );
                    format!("The service is busy right now. Please try again in {wait}.")
                }
                "limit_reached" if !message.is_empty() => sentence(message.clone()),
                "email_taken" => {
                    "That email is already registered. Try signing in instead.".to_owned()
                }
                "unauthorized" => "Wrong email or password.".to_owned(),
                "not_found" => "That item no longer exists. It may have been deleted.".to_owned(),
                "validation_error" | "bad_request" if !message.is_empty() => {
                    sentence(message.clone())
                }
                "not_ready" => {
                    "The task service is starting up. Please try again in a moment.".to_owned()
                }
                _ => "Something went wrong on our side. Please try again.".to_owned(),
            },
        }
    }
}

/// Whether `c` looks like a backend page cursor (URL-safe base64, bounded), so it can go into
/// a URL as it is.
pub fn is_cursor(c: &str) -> bool {
    !c.is_empty()
        && c.len() <= 200
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn sentence(mut s: String) -> String {
    if let Some(first) = s.get(..1) {
        let upper = first.to_uppercase();
        s.replace_range(..1, &upper);
    }
    if !s.ends_with(['.', '!', '?']) {
        s.push('.');
    }
    s
}

#[derive(Deserialize)]
struct Envelope {
    error: EnvelopeError,
}

#[derive(Deserialize)]
struct EnvelopeError {
    code: String,
    message: String,
}

/// Client for one backend base URL; cheap to clone.
#[derive(Debug, Clone)]
pub struct BackendClient {
    http: reqwest::Client,
    base: String,
}

impl BackendClient {
    /// Creates a client for `base` (e.g. `http://localhost:8000`).
    pub fn new(base: &Url) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            // Below the backend's header-read timeout (HEADER_READ_TIMEOUT_SECONDS, 10 s by
            // default), which also closes idle connections: an idle connection is dropped here
            // first, never reused just as the backend closes it.
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("todo-frontend/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            base: base.as_str().trim_end_matches('/').to_owned(),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Checks the backend's liveness endpoint within `timeout`.
    pub async fn health(&self, timeout: Duration) -> Result<(), String> {
        let mut req = self.http.get(self.url("/health")).timeout(timeout);
        if let Some(id) = current_request_id() {
            req = req.header("x-request-id", id);
        }
        let res = req.send().await.map_err(|e| {
            if e.is_timeout() {
                format!(
                    "backend /health did not answer within {}s",
                    timeout.as_secs()
                )
            } else {
                "backend unreachable".to_owned()
            }
        })?;
        if res.status().is_success() {
            Ok(())
        } else {
            Err(format!(
                "backend /health answered {}",
                res.status().as_u16()
            ))
        }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&impl Serialize>,
        timeout: Duration,
    ) -> Result<Option<T>, BackendError> {
        self.call_paged(method, path, token, body, timeout)
            .await
            .map(|(body, _)| body)
    }

    /// Like `call`, also returning the `X-Next-Cursor` of a list page.
    async fn call_paged<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&impl Serialize>,
        timeout: Duration,
    ) -> Result<(Option<T>, Option<String>), BackendError> {
        let mut req = self
            .http
            .request(method.clone(), self.url(path))
            .timeout(timeout);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(id) = current_request_id() {
            req = req.header("x-request-id", id);
        }
        // The backend throttles per client address: name the visitor, not this frontend.
        if let Some(addr) = crate::client_addr::current() {
            req = req.header("x-forwarded-for", addr.to_string());
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let res = req.send().await.map_err(|e| {
            // Without the URL (it could carry user-info); reqwest errors never hold headers.
            let cause = e.is_timeout();
            let e = e.without_url();
            tracing::warn!(%method, path, error = %e, "backend call failed");
            BackendError::Unavailable(if cause {
                "timeout".to_owned()
            } else {
                "connection failed".to_owned()
            })
        })?;
        let status = res.status();
        let retry_after = res
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let next_cursor = res
            .headers()
            .get("x-next-cursor")
            .and_then(|v| v.to_str().ok())
            .filter(|c| is_cursor(c))
            .map(str::to_owned);
        if status == StatusCode::NO_CONTENT {
            return Ok((None, None));
        }
        let bytes = res
            .bytes()
            .await
            .map_err(|_| BackendError::Unavailable("body not readable".to_owned()))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes)
                .map(|b| (Some(b), next_cursor))
                .map_err(|e| {
                tracing::warn!(%method, path, error = %e, "backend answered an unexpected body");
                BackendError::Unavailable("unexpected body".to_owned())
            });
        }
        match serde_json::from_slice::<Envelope>(&bytes) {
            Ok(env) => Err(BackendError::Api {
                status,
                code: env.error.code,
                message: env.error.message,
                retry_after,
            }),
            Err(_) => {
                tracing::warn!(%method, path, status = status.as_u16(), "backend error without envelope");
                Err(BackendError::Api {
                    status,
                    code: "internal".to_owned(),
                    message: String::new(),
                    retry_after,
                })
            }
        }
    }

    async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&impl Serialize>,
    ) -> Result<T, BackendError> {
        self.call(method, path, token, body, REQUEST_TIMEOUT)
            .await?
            .ok_or_else(|| BackendError::Unavailable("empty body".to_owned()))
    }

    /// Creates an account.
    pub async fn register(&self, email: &str, password: &str) -> Result<(), BackendError> {
        let body = serde_json::json!({ "email": email, "password": password });
        self.json::<serde_json::Value>(Method::POST, "/api/auth/register", None, Some(&body))
            .await
            .map(|_| ())
    }

    /// Signs in and returns the bearer token.
    pub async fn login(&self, email: &str, password: &str) -> Result<Login, BackendError> {
        let body = serde_json::json!({ "email": email, "password": password });
        self.json(Method::POST, "/api/auth/login", None, Some(&body))
            .await
    }

    /// The account the token belongs to.
    pub async fn me(&self, token: &str) -> Result<Me, BackendError> {
        self.json(Method::GET, "/api/me", Some(token), None::<&()>)
            .await
    }

    /// One page of tasks, newest first; `status` is `all`, `pending` or `completed`, `cursor`
    /// the `next` of the previous page. Returns the page and the cursor of the next one.
    pub async fn list_tasks(
        &self,
        token: &str,
        status: &str,
        cursor: Option<&str>,
    ) -> Result<(Vec<Task>, Option<String>), BackendError> {
        let mut path = format!("/api/tasks?status={status}");
        if let Some(c) = cursor.filter(|c| is_cursor(c)) {
            path.push_str("&cursor=");
            path.push_str(c);
        }
        let (tasks, next) = self
            .call_paged(
                Method::GET,
                &path,
                Some(token),
                None::<&()>,
                REQUEST_TIMEOUT,
            )
            .await?;
        let tasks = tasks.ok_or_else(|| BackendError::Unavailable("empty body".to_owned()))?;
        Ok((tasks, next))
    }

    /// Fetches one task.
    pub async fn get_task(&self, token: &str, id: i64) -> Result<Task, BackendError> {
        self.json(
            Method::GET,
            &format!("/api/tasks/{id}"),
            Some(token),
            None::<&()>,
        )
        .await
    }

    /// Creates a task.
    pub async fn create_task(
        &self,
        token: &str,
        input: &TaskInput<'_>,
    ) -> Result<Task, BackendError> {
        self.json(Method::POST, "/api/tasks", Some(token), Some(input))
            .await
    }

    /// Replaces a task's fields.
    pub async fn update_task(
        &self,
        token: &str,
        id: i64,
        input: &TaskInput<'_>,
    ) -> Result<Task, BackendError> {
        self.json(
            Method::PUT,
            &format!("/api/tasks/{id}"),
            Some(token),
            Some(input),
        )
        .await
    }

    /// Marks a task completed, or reopens it when `completed` is false.
    pub async fn set_completed(
        &self,
        token: &str,
        id: i64,
        completed: bool,
    ) -> Result<Task, BackendError> {
        let body = serde_json::json!({ "completed": completed });
        self.json(
            Method::PATCH,
            &format!("/api/tasks/{id}/complete"),
            Some(token),
            Some(&body),
        )
        .await
    }

    /// Deletes a task.
    pub async fn delete_task(&self, token: &str, id: i64) -> Result<(), BackendError> {
        self.call::<serde_json::Value>(
            Method::DELETE,
            &format!("/api/tasks/{id}"),
            Some(token),
            None::<&()>,
            REQUEST_TIMEOUT,
        )
        .await
        .map(|_| ())
    }

    /// Sends one chat message; starts a conversation when `conversation_id` is `None`.
    pub async fn chat(
        &self,
        token: &str,
        message: &str,
        conversation_id: Option<&str>,
    ) -> Result<ChatReply, BackendError> {
        let mut body = serde_json::json!({ "message": message });
        if let Some(id) = conversation_id {
            body["conversation_id"] = serde_json::Value::String(id.to_owned());
        }
        self.call(
            Method::POST,
            "/api/chat",
            Some(token),
            Some(&body),
            CHAT_TIMEOUT,
        )
        .await?
        .ok_or_else(|| BackendError::Unavailable("empty body".to_owned()))
    }

    /// Fetches a conversation with its messages.
    pub async fn conversation(&self, token: &str, id: &str) -> Result<Conversation, BackendError> {
        self.json(
            Method::GET,
            &format!("/api/conversations/{id}"),
            Some(token),
            None::<&()>,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: &str, message: &str) -> BackendError {
        BackendError::Api {
            status: StatusCode::BAD_REQUEST,
            code: code.to_owned(),
            message: message.to_owned(),
            retry_after: None,
        }
    }

    #[test]
    fn messages_are_readable() {
        assert_eq!(
            api("email_taken", "x").user_message(),
            "That email is already registered. Try signing in instead."
        );
        assert_eq!(
            api("validation_error", "title must be 1-200 characters").user_message(),
            "Title must be 1-200 characters."
        );
        assert_eq!(
            api("internal", "SELECT secret").user_message(),
            "Something went wrong on our side. Please try again."
        );
        assert!(
            BackendError::Unavailable("x".into())
                .user_message()
                .contains("not reachable")
        );
    }

    #[test]
    fn throttling_and_overload_say_when_to_retry() {
        let limited = BackendError::Api {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "rate_limited".to_owned(),
            message: "too many sign-in attempts; try again in 42 seconds".to_owned(),
            retry_after: Some(42),
        };
        assert_eq!(
            limited.user_message(),
            "Too many attempts. Please try again in 42 seconds."
        );
        assert_eq!(limited.page_status(), StatusCode::TOO_MANY_REQUESTS);
        let busy = BackendError::Api {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "busy".to_owned(),
            message: String::new(),
            retry_after: Some(1),
        };
        assert_eq!(
            busy.user_message(),
            "The service is busy right now. Please try again in 1 second."
        );
        assert_eq!(
            api(
                "limit_reached",
                "you have reached the limit of 1000 tasks; delete some first"
            )
            .user_message(),
            "You have reached the limit of 1000 tasks; delete some first."
        );
    }
}

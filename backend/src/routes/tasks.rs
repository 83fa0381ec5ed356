//! The caller's tasks.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, patch};
use axum::{Json, Router};
use serde::Deserialize;

use crate::AppState;
use crate::auth::AuthUser;
use crate::db::CappedError;
use crate::db::tasks::{self, StatusFilter, Task};
use crate::error::ApiError;
use crate::extract::{ApiBytes, ApiJson, ApiPath, ApiQuery};
use crate::pagination::{Cursor, Page, PageQuery, paged};
use crate::validate;
use axum::response::Response;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/tasks", get(list).post(create))
        .route("/api/tasks/{id}", get(show).put(update).delete(remove))
        .route("/api/tasks/{id}/complete", patch(complete))
}

const NOT_FOUND: ApiError = ApiError::NotFound("task not found");

/// The 409 message when a user has `max` tasks already.
pub(crate) fn task_limit_message(max: i64) -> String {
    format!(
        "you have reached the limit of {max} tasks (MAX_TASKS_PER_USER); delete some to add more"
    )
}

#[derive(Deserialize)]
struct ListQuery {
    status: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

/// `GET /api/tasks?status=&limit=&cursor=`: one page, newest first (see [`crate::pagination`]).
async fn list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    let filter = match q.status.as_deref() {
        None => StatusFilter::All,
        Some(s) => StatusFilter::parse(s).ok_or_else(|| {
            ApiError::BadRequest("status must be one of all, pending, completed".into())
        })?,
    };
    let page = Page::from_query(&q.page, &state.limits)?;
    let after = match &page.after {
        Some(c) => Some((c.at()?, c.int_id()?)),
        None => None,
    };
    let rows = tasks::list(&state.pool, user, filter, after, page.fetch()).await?;
    let (items, next) = page.split(rows, |t: &Task| Cursor::new(t.created_at, t.id));
    let mut query = Vec::new();
    if let Some(s) = &q.status {
        query.push(format!("status={s}"));
    }
    query.push(format!("limit={}", page.limit));
    Ok(paged(
        Json(items),
        next.as_ref(),
        "/api/tasks",
        &query.join("&"),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTask {
    title: String,
    #[serde(default)]
    description: Option<String>,
}

async fn create(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiJson(body): ApiJson<NewTask>,
) -> Result<(StatusCode, Json<Task>), ApiError> {
    let title = validate::title(&body.title)?;
    let description = validate::description(body.description.as_deref())?;
    let max = state.limits.max_tasks_per_user;
    match tasks::create(&state.pool, user, &title, description.as_deref(), max).await {
        Ok(task) => Ok((StatusCode::CREATED, Json(task))),
        Err(CappedError::LimitReached) => Err(ApiError::LimitReached(task_limit_message(max))),
        // A valid token for a deleted account.
        Err(CappedError::NoOwner) => Err(ApiError::Unauthorized("invalid or expired token")),
        Err(CappedError::Db(e)) => Err(e.into()),
    }
}

async fn show(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Task>, ApiError> {
    tasks::get(&state.pool, user, id)
        .await?
        .map(Json)
        .ok_or(NOT_FOUND)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskUpdate {
    title: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    completed: Option<bool>,
}

async fn update(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<TaskUpdate>,
) -> Result<Json<Task>, ApiError> {
    let title = validate::title(&body.title)?;
    let description = validate::description(body.description.as_deref())?;
    tasks::update(
        &state.pool,
        user,
        id,
        &title,
        description.as_deref(),
        body.completed,
    )
    .await?
    .map(Json)
    .ok_or(NOT_FOUND)
}

async fn remove(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    if tasks::delete(&state.pool, user, id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(NOT_FOUND)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CompleteBody {
    completed: bool,
}

/// The body is optional: none means "mark done", `{"completed":false}` reopens.
async fn complete(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiPath(id): ApiPath<i64>,
    ApiBytes(body): ApiBytes,
) -> Result<Json<Task>, ApiError> {
    let completed = if body.iter().all(u8::is_ascii_whitespace) {
        true
    } else {
        serde_json::from_slice::<CompleteBody>(&body)
            .map_err(|e| {
                if e.is_syntax() || e.is_eof() {
                    ApiError::BadRequest("request body is not valid JSON".into())
                } else {
                    ApiError::validation(format!("invalid request body: {e}"))
                }
            })?
            .completed
    };
    tasks::set_completed(&state.pool, user, id, completed)
        .await?
        .map(Json)
        .ok_or(NOT_FOUND)
}

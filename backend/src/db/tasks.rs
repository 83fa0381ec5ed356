//! Tasks. Every function takes the owner's id and matches on it, so another user's task
//! behaves exactly like a missing one.

use serde::Serialize;
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use super::CappedError;

/// One task as stored and as sent to clients.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Task {
    /// Primary key.
    pub id: i64,
    /// Short title, 1–200 characters.
    pub title: String,
    /// Optional longer text.
    pub description: Option<String>,
    /// Done or not.
    pub completed: bool,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last change.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// Which tasks a listing returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StatusFilter {
    /// Every task.
    #[default]
    All,
    /// Not completed.
    Pending,
    /// Completed.
    Completed,
}

impl StatusFilter {
    /// Parses `all`, `pending` or `completed`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "all" => Some(StatusFilter::All),
            "pending" => Some(StatusFilter::Pending),
            "completed" => Some(StatusFilter::Completed),
            _ => None,
        }
    }
}

const COLUMNS: &str = "id, title, description, completed, created_at, updated_at";

fn completed_filter(filter: StatusFilter) -> Option<bool> {
    match filter {
        StatusFilter::All => None,
        StatusFilter::Pending => Some(false),
        StatusFilter::Completed => Some(true),
    }
}

/// Up to `limit` of the user's tasks, newest first (by creation time, then id), starting after
/// `after` (`created_at`, `id`) when given.
pub async fn list(
    pool: &PgPool,
    user: Uuid,
    filter: StatusFilter,
    after: Option<(OffsetDateTime, i64)>,
    limit: i64,
) -> Result<Vec<Task>, sqlx::Error> {
    let (at, id) = after.unzip();
    sqlx::query_as::<_, Task>(&format!(
        "SELECT {COLUMNS} FROM tasks
         WHERE user_id = $1 AND ($2::BOOLEAN IS NULL OR completed = $2)
           AND ($3::TIMESTAMPTZ IS NULL OR (created_at, id) < ($3, $4))
         ORDER BY created_at DESC, id DESC
         LIMIT $5"
    ))
    .bind(user)
    .bind(completed_filter(filter))
    .bind(at)
    .bind(id)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Up to `limit` of the user's tasks whose title contains `needle` (case-insensitive), newest
/// first.
pub async fn find_by_title(
    pool: &PgPool,
    user: Uuid,
    needle: &str,
    limit: i64,
) -> Result<Vec<Task>, sqlx::Error> {
    sqlx::query_as::<_, Task>(&format!(
        "SELECT {COLUMNS} FROM tasks
         WHERE user_id = $1 AND strpos(lower(title), lower($2)) > 0
         ORDER BY created_at DESC, id DESC
         LIMIT $3"
    ))
    .bind(user)
    .bind(needle)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Creates a task for the user unless they have `max` tasks already.
pub async fn create(
    pool: &PgPool,
    user: Uuid,
    title: &str,
    description: Option<&str>,
    max: i64,
) -> Result<Task, CappedError> {
    let mut tx = pool.begin().await?;
    if !super::lock_owner(&mut tx, "users", user).await? {
        return Err(CappedError::NoOwner);
    }
    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM tasks WHERE user_id = $1")
        .bind(user)
        .fetch_one(&mut *tx)
        .await?;
    if count >= max {
        return Err(CappedError::LimitReached);
    }
    let task = sqlx::query_as::<_, Task>(&format!(
        "INSERT INTO tasks (user_id, title, description) VALUES ($1, $2, $3) RETURNING {COLUMNS}"
    ))
    .bind(user)
    .bind(title)
    .bind(description)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(task)
}

/// One of the user's tasks.
pub async fn get(pool: &PgPool, user: Uuid, id: i64) -> Result<Option<Task>, sqlx::Error> {
    sqlx::query_as::<_, Task>(&format!(
        "SELECT {COLUMNS} FROM tasks WHERE id = $1 AND user_id = $2"
    ))
    .bind(id)
    .bind(user)
    .fetch_optional(pool)
    .await
}

/// Replaces title and description; `completed: None` keeps the current state.
pub async fn update(
    pool: &PgPool,
    user: Uuid,
    id: i64,
    title: &str,
    description: Option<&str>,
    completed: Option<bool>,
) -> Result<Option<Task>, sqlx::Error> {
    sqlx::query_as::<_, Task>(&format!(
        "UPDATE tasks SET title = $3, description = $4, completed = COALESCE($5, completed),
                updated_at = now()
         WHERE id = $1 AND user_id = $2 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(user)
    .bind(title)
    .bind(description)
    .bind(completed)
    .fetch_optional(pool)
    .await
}

/// Changes only the title (the chat assistant's rename).
pub async fn rename(
    pool: &PgPool,
    user: Uuid,
    id: i64,
    title: &str,
) -> Result<Option<Task>, sqlx::Error> {
    sqlx::query_as::<_, Task>(&format!(
        "UPDATE tasks SET title = $3, updated_at = now()
         WHERE id = $1 AND user_id = $2 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(user)
    .bind(title)
    .fetch_optional(pool)
    .await
}

/// Marks a task done or not done.
pub async fn set_completed(
    pool: &PgPool,
    user: Uuid,
    id: i64,
    completed: bool,
) -> Result<Option<Task>, sqlx::Error> {
    sqlx::query_as::<_, Task>(&format!(
        "UPDATE tasks SET completed = $3, updated_at = now()
         WHERE id = $1 AND user_id = $2 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(user)
    .bind(completed)
    .fetch_optional(pool)
    .await
}

/// Deletes a task; false when the user has no such task.
pub async fn delete(pool: &PgPool, user: Uuid, id: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM tasks WHERE id = $1 AND user_id = $2")
        .bind(id)
        .bind(user)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

//! Chat conversations and their messages; every lookup is scoped to the owner.

use serde::Serialize;
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use super::CappedError;

/// One conversation (without its messages).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Conversation {
    /// Primary key.
    pub id: Uuid,
    /// The start of its first message.
    pub title: String,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Time of the latest message.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// One stored message.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Message {
    /// `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: String,
    /// When it was stored.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The person.
    User,
    /// The assistant.
    Assistant,
}

impl Role {
    /// The stored (and OpenAI) spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

const COLUMNS: &str = "id, title, created_at, updated_at";

/// Starts a conversation for the user unless they have `max` already.
pub async fn create(
    pool: &PgPool,
    user: Uuid,
    title: &str,
    max: i64,
) -> Result<Conversation, CappedError> {
    let mut tx = pool.begin().await?;
    if !super::lock_owner(&mut tx, "users", user).await? {
        return Err(CappedError::NoOwner);
    }
    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM conversations WHERE user_id = $1")
        .bind(user)
        .fetch_one(&mut *tx)
        .await?;
    if count >= max {
        return Err(CappedError::LimitReached);
    }
    let c = sqlx::query_as::<_, Conversation>(&format!(
        "INSERT INTO conversations (id, user_id, title) VALUES ($1, $2, $3) RETURNING {COLUMNS}"
    ))
    .bind(Uuid::new_v4())
    .bind(user)
    .bind(title)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(c)
}

/// One of the user's conversations.
pub async fn get(pool: &PgPool, user: Uuid, id: Uuid) -> Result<Option<Conversation>, sqlx::Error> {
    sqlx::query_as::<_, Conversation>(&format!(
        "SELECT {COLUMNS} FROM conversations WHERE id = $1 AND user_id = $2"
    ))
    .bind(id)
    .bind(user)
    .fetch_optional(pool)
    .await
}

/// Up to `limit` of the user's conversations, most recently active first (by `updated_at`,
/// then id), starting after `after` (`updated_at`, `id`) when given.
pub async fn list(
    pool: &PgPool,
    user: Uuid,
    after: Option<(OffsetDateTime, Uuid)>,
    limit: i64,
) -> Result<Vec<Conversation>, sqlx::Error> {
    let (at, id) = after.unzip();
    sqlx::query_as::<_, Conversation>(&format!(
        "SELECT {COLUMNS} FROM conversations
         WHERE user_id = $1 AND ($2::TIMESTAMPTZ IS NULL OR (updated_at, id) < ($2, $3))
         ORDER BY updated_at DESC, id DESC
         LIMIT $4"
    ))
    .bind(user)
    .bind(at)
    .bind(id)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Deletes a conversation and its messages; false when the user has no such conversation.
pub async fn delete(pool: &PgPool, user: Uuid, id: Uuid) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM conversations WHERE id = $1 AND user_id = $2")
        .bind(id)
        .bind(user)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Appends a message and marks the conversation active. The caller has checked ownership.
pub async fn add_message(
    pool: &PgPool,
    conversation: Uuid,
    role: Role,
    content: &str,
) -> Result<Message, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let msg = insert_message(&mut tx, conversation, role, content).await?;
    tx.commit().await?;
    Ok(msg)
}

async fn insert_message(
    tx: &mut sqlx::PgConnection,
    conversation: Uuid,
    role: Role,
    content: &str,
) -> Result<Message, sqlx::Error> {
    let msg = sqlx::query_as::<_, Message>(
        "INSERT INTO messages (conversation_id, role, content) VALUES ($1, $2, $3)
         RETURNING role, content, created_at",
    )
    .bind(conversation)
    .bind(role.as_str())
    .bind(content)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query("UPDATE conversations SET updated_at = now() WHERE id = $1")
        .bind(conversation)
        .execute(&mut *tx)
        .await?;
    Ok(msg)
}

/// Appends the user's message of a new chat turn unless the conversation cannot take the
/// turn's two messages within `max`. The caller has checked ownership.
///
/// Every turn counts as two messages from the moment its user message is stored: its reply is
/// written only when the turn ends, and counting stored messages alone let concurrent turns
/// each see room for a reply that another turn's reply then took (one over the cap per extra
/// turn). Counting user messages twice, under the conversation's row lock, reserves the reply
/// in the same transaction; a turn whose reply failed keeps its reservation.
pub async fn add_user_message(
    pool: &PgPool,
    conversation: Uuid,
    content: &str,
    max: i64,
) -> Result<Message, CappedError> {
    let mut tx = pool.begin().await?;
    if !super::lock_owner(&mut tx, "conversations", conversation).await? {
        return Err(CappedError::NoOwner);
    }
    let (turns,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM messages WHERE conversation_id = $1 AND role = $2")
            .bind(conversation)
            .bind(Role::User.as_str())
            .fetch_one(&mut *tx)
            .await?;
    if 2 * turns + 2 > max {
        return Err(CappedError::LimitReached);
    }
    let msg = insert_message(&mut tx, conversation, Role::User, content).await?;
    tx.commit().await?;
    Ok(msg)
}

/// Up to `limit` messages of a conversation before message id `before` (all when `None`),
/// newest first, with their ids. The caller has checked ownership.
pub async fn messages(
    pool: &PgPool,
    conversation: Uuid,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<(i64, Message)>, sqlx::Error> {
    let rows: Vec<(i64, String, String, OffsetDateTime)> = sqlx::query_as(
        "SELECT id, role, content, created_at FROM messages
         WHERE conversation_id = $1 AND ($2::BIGINT IS NULL OR id < $2)
         ORDER BY id DESC LIMIT $3",
    )
    .bind(conversation)
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, role, content, created_at)| {
            (
                id,
                Message {
                    role,
                    content,
                    created_at,
                },
            )
        })
        .collect())
}

/// The latest `limit` messages, oldest first.
pub async fn recent_messages(
    pool: &PgPool,
    conversation: Uuid,
    limit: i64,
) -> Result<Vec<Message>, sqlx::Error> {
    sqlx::query_as::<_, Message>(
        "SELECT role, content, created_at FROM (
             SELECT id, role, content, created_at FROM messages
             WHERE conversation_id = $1 ORDER BY id DESC LIMIT $2
         ) AS recent ORDER BY id",
    )
    .bind(conversation)
    .bind(limit)
    .fetch_all(pool)
    .await
}

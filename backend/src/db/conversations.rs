//! Chat conversations and their messages; every lookup is scoped to the owner.

use serde::Serialize;
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

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

/// Starts a conversation for the user.
pub async fn create(pool: &PgPool, user: Uuid, title: &str) -> Result<Conversation, sqlx::Error> {
    sqlx::query_as::<_, Conversation>(&format!(
        "INSERT INTO conversations (id, user_id, title) VALUES ($1, $2, $3) RETURNING {COLUMNS}"
    ))
    .bind(Uuid::new_v4())
    .bind(user)
    .bind(title)
    .fetch_one(pool)
    .await
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

/// The user's conversations, most recently active first.
pub async fn list(pool: &PgPool, user: Uuid) -> Result<Vec<Conversation>, sqlx::Error> {
    sqlx::query_as::<_, Conversation>(&format!(
        "SELECT {COLUMNS} FROM conversations WHERE user_id = $1 ORDER BY updated_at DESC, id"
    ))
    .bind(user)
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
    tx.commit().await?;
    Ok(msg)
}

/// All messages of a conversation, oldest first. The caller has checked ownership.
pub async fn messages(pool: &PgPool, conversation: Uuid) -> Result<Vec<Message>, sqlx::Error> {
    sqlx::query_as::<_, Message>(
        "SELECT role, content, created_at FROM messages WHERE conversation_id = $1 ORDER BY id",
    )
    .bind(conversation)
    .fetch_all(pool)
    .await
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

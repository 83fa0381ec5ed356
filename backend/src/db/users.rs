//! Accounts.

use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

/// One account row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct User {
    /// Primary key.
    pub id: Uuid,
    /// Normalised (trimmed, lowercase) email.
    pub email: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// When the account was made.
    pub created_at: OffsetDateTime,
}

/// Outcome of [`create`] when the email already has an account.
#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    /// The email is taken.
    #[error("email taken")]
    EmailTaken,
    /// Any database failure.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Inserts a new account.
pub async fn create(
    pool: &PgPool,
    email: &str,
    password_hash: &str,
) -> Result<User, CreateUserError> {
    sqlx::query_as::<_, User>(
        "INSERT INTO users (id, email, password_hash) VALUES ($1, $2, $3)
         RETURNING id, email, password_hash, created_at",
    )
    .bind(Uuid::new_v4())
    .bind(email)
    .bind(password_hash)
    .fetch_one(pool)
    .await
    .map_err(|e| {
        if super::is_unique_violation(&e) {
            CreateUserError::EmailTaken
        } else {
            CreateUserError::Db(e)
        }
    })
}

/// Looks an account up by normalised email.
pub async fn find_by_email(pool: &PgPool, email: &str) -> Result<Option<User>, sqlx::Error> {
    sqlx::query_as::<_, User>(
        "SELECT id, email, password_hash, created_at FROM users WHERE email = $1",
    )
    .bind(email)
    .fetch_optional(pool)
    .await
}

/// Looks an account up by id.
pub async fn find_by_id(pool: &PgPool, id: Uuid) -> Result<Option<User>, sqlx::Error> {
    sqlx::query_as::<_, User>(
        "SELECT id, email, password_hash, created_at FROM users WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
}

//! The data layer: pool, migrations and one repository module per table. The REST routes and
//! the chat tools both go through here, so ownership checks live in one place.

pub mod availability;
pub mod conversations;
pub mod tasks;
pub mod users;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// The migrations in `backend/migrations/`, embedded in the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!();

/// Longest wait for a pooled connection, including opening a new one. Bounds every request
/// that touches the database, so a dead database yields a 503 instead of a hang; once it is
/// known to be down, requests get theirs at once ([`availability`]).
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Builds the pool without connecting, so the server can start (and answer `/health`) while
/// the database is still down.
pub fn lazy_pool(options: PgConnectOptions) -> PgPool {
    PgPoolOptions::new()
        .max_connections(10)
        .min_connections(0)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .idle_timeout(Duration::from_secs(300))
        // Connections broken by a database restart are detected and replaced on checkout.
        .test_before_acquire(true)
        .connect_lazy_with(options)
}

/// Applies migrations, retrying with backoff until they succeed, then raises `applied`.
pub async fn migrate_until_applied(pool: PgPool, applied: Arc<AtomicBool>) {
    let mut delay = Duration::from_millis(250);
    loop {
        match MIGRATOR.run(&pool).await {
            Ok(()) => {
                applied.store(true, Ordering::Release);
                tracing::info!("database migrations applied");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "migrations not applied yet");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Why a capped insert did not happen.
#[derive(Debug, thiserror::Error)]
pub enum CappedError {
    /// The owner already has the maximum number of items.
    #[error("limit reached")]
    LimitReached,
    /// The owner (user or conversation) does not exist (any more).
    #[error("owner not found")]
    NoOwner,
    /// Any database failure.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Locks the owner row `id` of `table` for the rest of `tx`, so that concurrent capped inserts
/// for the same owner count one after another; false when there is no such row.
/// `FOR NO KEY UPDATE` leaves the foreign-key checks of other inserts unblocked.
pub(crate) async fn lock_owner<Id>(
    tx: &mut sqlx::PgConnection,
    table: &'static str,
    id: Id,
) -> Result<bool, sqlx::Error>
where
    Id: for<'q> sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send,
{
    let row = sqlx::query(&format!(
        "SELECT 1 FROM {table} WHERE id = $1 FOR NO KEY UPDATE"
    ))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    Ok(row.is_some())
}

/// True when the SQLSTATE says a unique constraint was violated.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("23505"))
}

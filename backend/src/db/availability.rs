//! Whether the database is known to be down, so requests that need it answer `503` at once
//! instead of each waiting out the pool's [`ACQUIRE_TIMEOUT`](super::ACQUIRE_TIMEOUT).
//!
//! It goes down on a connection-level failure of a request ([`is_connection_failure`]: never
//! a constraint violation or a missing row) or of the readiness probe, unless the pool is
//! merely saturated. While down, a
//! background task pings the database every [`REPROBE_EVERY`] and brings it back up on the
//! first answer, so requests recover by themselves; `/ready` succeeding does too.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sqlx::PgPool;

use crate::AppState;
use crate::error::ApiError;

/// How often a database known to be down is pinged: one connection attempt a tick is nothing
/// for a database coming back, and requests recover within about this much of its return.
pub const REPROBE_EVERY: Duration = Duration::from_millis(500);

/// Longest one ping may take; a database that answers slower than this is not back yet.
pub const PING_TIMEOUT: Duration = Duration::from_millis(800);

/// Seconds a client is told to wait (`Retry-After`) while the database is down.
pub const RETRY_AFTER_SECONDS: u64 = 1;

/// Marks a response whose request failed because the database could not be reached; the
/// [`gate`] reads it to mark the database down.
#[derive(Debug, Clone, Copy)]
pub struct DatabaseUnreachable;

/// The shared up/down state of the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Availability {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pool: PgPool,
    down: AtomicBool,
    /// Whether a re-probe task runs (at most one).
    probing: AtomicBool,
}

impl Availability {
    /// Starts "up": the first failure tells otherwise.
    pub fn new(pool: PgPool) -> Self {
        Self {
            inner: Arc::new(Inner {
                pool,
                down: AtomicBool::new(false),
                probing: AtomicBool::new(false),
            }),
        }
    }

    /// Whether the database is known to be down.
    pub fn is_down(&self) -> bool {
        self.inner.down.load(Ordering::Acquire)
    }

    /// Records a connection-level failure; starts the re-probe task unless one runs. Ignored
    /// while every pooled connection is busy: a wait for one that timed out then means the
    /// database is overloaded (it answers those connections), not down.
    pub fn report_down(&self) {
        let pool = &self.inner.pool;
        if pool.size() >= pool.options().get_max_connections() && pool.num_idle() == 0 {
            tracing::warn!("every database connection is busy; not marking the database down");
            return;
        }
        if !self.inner.down.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                reprobe_ms = REPROBE_EVERY.as_millis() as u64,
                "database unreachable; answering 503 until it is back"
            );
        }
        if self.inner.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(REPROBE_EVERY).await;
                if !this.is_down() || this.ping().await {
                    break;
                }
            }
            // Cleared before the flag goes up, so a failure right after starts a new task.
            this.inner.probing.store(false, Ordering::Release);
            this.report_up();
        });
    }

    /// Records that the database answered.
    pub fn report_up(&self) {
        if self.inner.down.swap(false, Ordering::AcqRel) {
            tracing::info!("database reachable again");
        }
    }

    /// One `SELECT 1` within [`PING_TIMEOUT`]; true when it answered.
    pub async fn ping(&self) -> bool {
        matches!(
            tokio::time::timeout(
                PING_TIMEOUT,
                sqlx::query("SELECT 1").execute(&self.inner.pool)
            )
            .await,
            Ok(Ok(_))
        )
    }
}

/// True for failures of the connection to the database, as opposed to failures of a statement
/// (constraint violations, missing rows, bad input), which say nothing about its availability.
pub fn is_connection_failure(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        // SQLSTATE class 08 (connection exception) and the server shutting down or starting
        // up (57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now).
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || matches!(&*c, "57P01" | "57P02" | "57P03")),
        _ => false,
    }
}

/// Middleware for the routes that need the database: `503` `not_ready` with `Retry-After` at
/// once while it is known to be down or its migrations are not applied yet; a request that
/// fails on the connection marks it down.
pub async fn gate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if state.database.is_down() || !state.migrated.load(Ordering::Acquire) {
        return ApiError::NotReady.into_response();
    }
    let res = next.run(req).await;
    if res.extensions().get::<DatabaseUnreachable>().is_some() {
        state.database.report_down();
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_failures_are_not_connection_failures() {
        assert!(!is_connection_failure(&sqlx::Error::RowNotFound));
        assert!(!is_connection_failure(&sqlx::Error::ColumnNotFound(
            "x".into()
        )));
        assert!(is_connection_failure(&sqlx::Error::PoolTimedOut));
        assert!(is_connection_failure(&sqlx::Error::Io(
            std::io::ErrorKind::ConnectionRefused.into()
        )));
    }
}

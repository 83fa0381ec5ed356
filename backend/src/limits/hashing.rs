//! Password hashing (Argon2id) with a bound on how many hashes run at once.
//!
//! Every hash or verification with the default Argon2id parameters (m = 19 MiB, t = 2, p = 1)
//! allocates 19 MiB on a blocking thread, and tokio allows 512 blocking threads: unbounded, a
//! few dozen concurrent sign-ins would exceed the container's memory limit. Here a semaphore
//! holds one permit per [`HASH_COST_MIB`] of the configured budget (`HASH_MEMORY_MIB`); a
//! request waits at most `HASH_WAIT_MS` for a permit and is otherwise answered 503 with
//! `Retry-After` ([`ApiError::Busy`]). The permit travels into the blocking task, so a request
//! that gives up (timeout, client gone) still holds it until its hash has finished and freed
//! its memory.

use std::sync::Arc;
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

/// Memory accounted per running hash, in MiB: Argon2id's 19 MiB block memory (the `argon2`
/// crate's default, OWASP's recommendation) plus the password, the PHC string and the thread.
pub const HASH_COST_MIB: u64 = 20;

/// `Retry-After` of a 503 when every hashing slot stayed busy: one hash takes well under a
/// second, so a second is enough for a slot to come free.
pub const BUSY_RETRY_AFTER_SECS: u64 = 1;

/// Bounded Argon2id hashing; cheap to clone (shares the semaphore).
#[derive(Clone, Debug)]
pub struct Hasher {
    slots: Arc<Semaphore>,
    permits: usize,
    wait: Duration,
}

impl Hasher {
    /// A hasher allowing `budget_mib / HASH_COST_MIB` concurrent hashes (at least one), each
    /// request waiting at most `wait` for its turn.
    pub fn new(budget_mib: u64, wait: Duration) -> Self {
        let permits = usize::try_from((budget_mib / HASH_COST_MIB).max(1)).unwrap_or(usize::MAX);
        let permits = permits.min(Semaphore::MAX_PERMITS);
        Hasher {
            slots: Arc::new(Semaphore::new(permits)),
            permits,
            wait,
        }
    }

    /// How many hashes may run at once.
    pub fn permits(&self) -> usize {
        self.permits
    }

    /// Takes a slot, waiting at most the configured time; [`ApiError::Busy`] otherwise.
    async fn slot(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        let busy = || {
            tracing::warn!(
                slots = self.permits,
                "password hashing at capacity; answering 503"
            );
            ApiError::Busy {
                retry_after: BUSY_RETRY_AFTER_SECS,
            }
        };
        if let Ok(p) = self.slots.clone().try_acquire_owned() {
            return Ok(p);
        }
        if self.wait.is_zero() {
            return Err(busy());
        }
        match tokio::time::timeout(self.wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(p)) => Ok(p),
            // Timed out, or the semaphore was closed (never happens: it is never closed).
            _ => Err(busy()),
        }
    }

    /// Hashes a password with Argon2id on a blocking thread, within the bound.
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        let permit = self.slot().await?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            hash_now(&password)
        })
        .await
        .map_err(|e| anyhow::anyhow!("hashing task failed: {e}"))?
        .map_err(ApiError::Internal)
    }

    /// Checks a password against a stored PHC hash on a blocking thread, within the bound.
    pub async fn verify(&self, password: String, hash: String) -> Result<bool, ApiError> {
        let permit = self.slot().await?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let parsed = PasswordHash::new(&hash)
                .map_err(|e| anyhow::anyhow!("stored hash unreadable: {e}"))?;
            Ok(Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok())
        })
        .await
        .map_err(|e| anyhow::anyhow!("verify task failed: {e}"))?
        .map_err(ApiError::Internal)
    }
}

/// Hashes on the current thread, outside the bound: for the one hash made at start, before
/// the server accepts requests.
pub fn hash_now(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing password: {e}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn permits_follow_the_budget() {
        assert_eq!(Hasher::new(20, Duration::ZERO).permits(), 1);
        assert_eq!(Hasher::new(39, Duration::ZERO).permits(), 1);
        assert_eq!(Hasher::new(256, Duration::ZERO).permits(), 12);
        // Never zero, whatever the budget.
        assert_eq!(Hasher::new(1, Duration::ZERO).permits(), 1);
    }

    #[tokio::test]
    async fn a_full_hasher_answers_busy_after_its_wait() {
        let h = Hasher::new(HASH_COST_MIB, Duration::from_millis(20));
        let held = h.slot().await.unwrap();
        match h.slot().await {
            Err(ApiError::Busy { retry_after }) => assert_eq!(retry_after, BUSY_RETRY_AFTER_SECS),
            other => panic!("expected Busy, got {other:?}"),
        }
        drop(held);
        assert!(h.slot().await.is_ok());
    }

    #[tokio::test]
    async fn a_waiting_request_gets_the_slot_when_it_frees() {
        let h = Hasher::new(HASH_COST_MIB, Duration::from_secs(30));
        let held = h.slot().await.unwrap();
        let h2 = h.clone();
        let waiter = tokio::spawn(async move { h2.slot().await.map(|_| ()) });
        tokio::task::yield_now().await;
        drop(held);
        assert!(waiter.await.unwrap().is_ok());
    }

    #[tokio::test]
    async fn hashes_verify() {
        let h = Hasher::new(HASH_COST_MIB, Duration::from_secs(5));
        let hash = h.hash("correct horse".into()).await.unwrap();
        assert!(
            h.verify("correct horse".into(), hash.clone())
                .await
                .unwrap()
        );
        assert!(!h.verify("wrong horse".into(), hash).await.unwrap());
    }
}

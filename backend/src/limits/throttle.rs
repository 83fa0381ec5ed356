//! Request-rate throttles: keyed GCRA limiters (`governor`) for sign-in per client address and
//! per account, sign-up per client address and chat per user. Over its rate a request gets
//! 429 with `Retry-After` ([`ApiError::RateLimited`]).
//!
//! A rate `N/PERIOD` allows a burst of N requests, then one more every PERIOD/N. Each limiter
//! keeps one small entry per key it has seen; [`Throttles::tidy`] (run every minute by the
//! server) drops the entries whose key is back to its full burst, so memory follows the number
//! of recently active keys, not the number ever seen.

use std::fmt;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use uuid::Uuid;

use crate::error::ApiError;

/// How often the server tidies the limiters' key maps.
pub const TIDY_EVERY: Duration = Duration::from_secs(60);

/// A request rate: `count` requests per `per`, as `10/min`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests allowed in one period (and the burst size).
    pub count: u32,
    /// The period.
    pub per: Duration,
}

impl Rate {
    /// Parses `N/s`, `N/min` or `N/h` (N from 1 to 1000000); `off` (or `0`) disables the
    /// limit and gives `None`. The error is a sentence naming the expected form.
    pub fn parse(raw: &str) -> Result<Option<Rate>, String> {
        let raw = raw.trim();
        if raw.eq_ignore_ascii_case("off") || raw == "0" {
            return Ok(None);
        }
        let bad = || format!("must be N/s, N/min or N/h (e.g. 10/min) or off, got {raw:?}");
        let (n, unit) = raw.split_once('/').ok_or_else(bad)?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if !(1..=1_000_000).contains(&count) {
            return Err(format!(
                "the count must be from 1 to 1000000 (or off), got {raw:?}"
            ));
        }
        let per = match unit.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            _ => return Err(bad()),
        };
        Ok(Some(Rate { count, per }))
    }

    fn quota(self) -> Quota {
        let burst = NonZeroU32::new(self.count).unwrap_or(NonZeroU32::MIN);
        // `per / count` is at least 3.6 ms for the largest count, so never zero.
        Quota::with_period(self.per / self.count)
            .unwrap_or_else(|| Quota::per_second(burst))
            .allow_burst(burst)
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.per.as_secs() {
            1 => "s",
            60 => "min",
            _ => "h",
        };
        write!(f, "{}/{unit}", self.count)
    }
}

/// One keyed limiter, or none when its rate is `off`.
pub struct Limiter<K: Hash + Eq + Clone> {
    inner: Option<Arc<DefaultKeyedRateLimiter<K>>>,
    /// What is counted, for the 429 message: "sign-in attempts from this address".
    what: &'static str,
}

impl<K: Hash + Eq + Clone> Clone for Limiter<K> {
    fn clone(&self) -> Self {
        Limiter {
            inner: self.inner.clone(),
            what: self.what,
        }
    }
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    /// A limiter at `rate` (`None`: unlimited).
    pub fn new(rate: Option<Rate>, what: &'static str) -> Self {
        Limiter {
            inner: rate.map(|r| Arc::new(RateLimiter::keyed(r.quota()))),
            what,
        }
    }

    /// Counts one request for `key`; [`ApiError::RateLimited`] when over the rate.
    pub fn check(&self, key: &K) -> Result<(), ApiError> {
        let Some(limiter) = &self.inner else {
            return Ok(());
        };
        limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            // Whole seconds, rounded up: retrying after Retry-After always succeeds.
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let retry_after = secs.max(1);
            tracing::info!(what = self.what, retry_after, "request throttled");
            ApiError::RateLimited {
                retry_after,
                message: format!(
                    "too many {}; try again in {retry_after} second{}",
                    self.what,
                    if retry_after == 1 { "" } else { "s" }
                ),
            }
        })
    }

    /// Forgets keys back at their full burst; returns how many keys remain.
    pub fn tidy(&self) -> usize {
        match &self.inner {
            Some(l) => {
                l.retain_recent();
                l.shrink_to_fit();
                l.len()
            }
            None => 0,
        }
    }
}

/// Every throttle of the API.
#[derive(Clone)]
pub struct Throttles {
    /// `POST /api/auth/login`, per client address.
    pub login_per_ip: Limiter<IpAddr>,
    /// `POST /api/auth/login`, per normalised email (whether or not it has an account).
    pub login_per_account: Limiter<String>,
    /// `POST /api/auth/register`, per client address.
    pub register_per_ip: Limiter<IpAddr>,
    /// `POST /api/chat`, per user.
    pub chat_per_user: Limiter<Uuid>,
}

/// The configured rates (`None`: off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rates {
    /// `LOGIN_RATE_PER_IP`.
    pub login_per_ip: Option<Rate>,
    /// `LOGIN_RATE_PER_ACCOUNT`.
    pub login_per_account: Option<Rate>,
    /// `REGISTER_RATE_PER_IP`.
    pub register_per_ip: Option<Rate>,
    /// `CHAT_RATE_PER_USER`.
    pub chat_per_user: Option<Rate>,
}

impl Throttles {
    /// Limiters at `rates`.
    pub fn new(rates: &Rates) -> Self {
        Throttles {
            login_per_ip: Limiter::new(rates.login_per_ip, "sign-in attempts from this address"),
            login_per_account: Limiter::new(
                rates.login_per_account,
                "sign-in attempts for this account",
            ),
            register_per_ip: Limiter::new(rates.register_per_ip, "sign-ups from this address"),
            chat_per_user: Limiter::new(rates.chat_per_user, "chat messages"),
        }
    }

    /// Drops idle keys from every limiter (see the module docs).
    pub fn tidy(&self) {
        let kept = self.login_per_ip.tidy()
            + self.login_per_account.tidy()
            + self.register_per_ip.tidy()
            + self.chat_per_user.tidy();
        tracing::debug!(keys = kept, "throttle state tidied");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn rates_parse() {
        assert_eq!(
            Rate::parse("10/min").unwrap(),
            Some(Rate {
                count: 10,
                per: Duration::from_secs(60)
            })
        );
        assert_eq!(Rate::parse(" 3/h ").unwrap().unwrap().to_string(), "3/h");
        assert_eq!(Rate::parse("5/s").unwrap().unwrap().to_string(), "5/s");
        assert_eq!(Rate::parse("off").unwrap(), None);
        assert_eq!(Rate::parse("0").unwrap(), None);
        for bad in ["10", "10/day", "x/min", "-1/min", "0/min", "2000000/s", ""] {
            assert!(Rate::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_burst_then_429_with_retry_after_per_key() {
        let l: Limiter<u8> = Limiter::new(Rate::parse("2/min").unwrap(), "tries");
        assert!(l.check(&1).is_ok());
        assert!(l.check(&1).is_ok());
        match l.check(&1) {
            Err(ApiError::RateLimited {
                retry_after,
                message,
            }) => {
                // One more every 30 s.
                assert!((1..=30).contains(&retry_after), "{retry_after}");
                assert!(
                    message.starts_with("too many tries; try again in "),
                    "{message}"
                );
            }
            other => panic!("expected RateLimited, got {other:?}"),
        }
        // Another key has its own budget.
        assert!(l.check(&2).is_ok());
        assert_eq!(l.tidy(), 2);
    }

    #[test]
    fn off_never_limits() {
        let l: Limiter<u8> = Limiter::new(None, "tries");
        for _ in 0..1000 {
            assert!(l.check(&1).is_ok());
        }
    }
}

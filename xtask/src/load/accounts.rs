//! The suite's accounts: created through the backend's API before the steps, each with its
//! password, its current token, an optional client address, and the ledger of its tasks.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::json;

use super::http::{Answer, Base, Http};
use super::ledger::Expect;

/// One account the suite signs in as.
#[derive(Debug, Clone)]
pub(crate) struct Account {
    /// Unique per run.
    pub(crate) email: String,
    /// Its password.
    pub(crate) password: String,
    /// The latest bearer token.
    pub(crate) token: String,
    /// Sent as `X-Forwarded-For` with `--forwarded-for`, one address per account.
    pub(crate) client_addr: Option<String>,
    /// Every task this account was told about, with what it must look like now.
    pub(crate) tasks: BTreeMap<i64, Expect>,
    /// Throttled until then (the app's `Retry-After`).
    pub(crate) not_before: Option<Instant>,
}

impl Account {
    /// `X-Forwarded-For` to send, if any.
    pub(crate) fn xff(&self) -> Option<&str> {
        self.client_addr.as_deref()
    }
}

/// A distinct documentation-range (TEST-NET-2) address per index, for `X-Forwarded-For`.
pub(crate) fn client_addr(index: usize) -> String {
    format!("198.51.{}.{}", (index / 250) % 250, index % 250 + 1)
}

/// `POST /api/auth/login`; on 200 the account's token is replaced.
pub(crate) fn login(http: &Http, api: &Base, acct: &mut Account) -> Answer {
    let body = json!({ "email": acct.email, "password": acct.password });
    let a = http.json(
        "POST",
        &api.url("/api/auth/login"),
        None,
        acct.xff(),
        Some(&body),
    );
    if a.status == Some(200)
        && let Some(t) = a.json()["token"].as_str()
    {
        acct.token = t.to_owned();
    }
    a
}

/// Repeats `call` while the app asks to wait (429, 503) or gives no answer, honouring
/// `Retry-After` (at most 10 s at a time), until `deadline`; returns the last answer.
pub(crate) fn patiently(deadline: Instant, mut call: impl FnMut() -> Answer) -> Answer {
    loop {
        let a = call();
        let wait = match a.status {
            Some(429 | 503) => a.retry_after.unwrap_or(Duration::from_millis(500)),
            None => Duration::from_millis(500),
            _ => return a,
        };
        if Instant::now() + wait >= deadline {
            return a;
        }
        std::thread::sleep(wait.min(Duration::from_secs(10)));
    }
}

/// Creates `count` accounts named after `run` (registration, then sign-in for a token), a few
/// at a time, waiting out throttling until `deadline`.
pub(crate) fn create(
    http: &Http,
    api: &Base,
    run: &str,
    count: usize,
    forwarded_for: bool,
    deadline: Instant,
) -> Result<Vec<Account>> {
    let mut accounts: Vec<Account> = (0..count)
        .map(|i| Account {
            email: format!("load-{run}-{i}@example.com"),
            password: format!("load-pass-{run}-{i}"),
            token: String::new(),
            client_addr: forwarded_for.then(|| client_addr(i)),
            tasks: BTreeMap::new(),
            not_before: None,
        })
        .collect();
    // Argon2 is CPU-bound: more threads than cores only queue in the backend.
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get() * 2);
    let chunk = count.div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = accounts
            .chunks_mut(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter_mut()
                        .try_for_each(|a| set_up(http, api, a, deadline))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| bail!("an account set-up thread panicked"))
            })
            .collect::<Result<Vec<()>>>()
    })?;
    Ok(accounts)
}

fn set_up(http: &Http, api: &Base, acct: &mut Account, deadline: Instant) -> Result<()> {
    let body = json!({ "email": acct.email, "password": acct.password });
    let reg = patiently(deadline, || {
        http.json(
            "POST",
            &api.url("/api/auth/register"),
            None,
            acct.xff(),
            Some(&body),
        )
    });
    // 409: an earlier attempt whose answer was lost did create it.
    if !matches!(reg.status, Some(201 | 409)) {
        bail!(
            "creating account {} answered {} {}; the suite needs its accounts (wait for the \
             throttle to reset, or use fewer with --users)",
            acct.email,
            reg.status_key(),
            snippet(&reg.body)
        );
    }
    let log = patiently(deadline, || login(http, api, acct));
    if log.status != Some(200) || acct.token.is_empty() {
        bail!(
            "signing in as {} answered {} {}",
            acct.email,
            log.status_key(),
            snippet(&log.body)
        );
    }
    Ok(())
}

/// The first 160 characters of a body, on one line.
pub(crate) fn snippet(body: &str) -> String {
    body.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(160)
        .collect()
}

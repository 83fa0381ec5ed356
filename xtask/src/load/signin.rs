//! Step 1: a burst of concurrent sign-ins through the frontend's own form, every attempt
//! released at once, while a signed-in visitor keeps loading their task list.
//!
//! Every fifth attempt uses a wrong password. Allowed answers: 303 to `/tasks` (signed in: the
//! frontend's redirect) for a right password, 401 for a wrong one, 429 (throttled) and 503
//! (busy) for either, and the 200 the issue lists. Anything else, a right password refused, a
//! wrong one accepted, or no HTTP answer at all is an error.

use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::accounts::Account;
use super::http::{Answer, Http};
use super::stats::{Class, Tally};
use crate::smoke::client::Client;
use crate::smoke::flow::{Flow, LOGIN_PAGE, TASKS_PAGE};
use crate::smoke::page::find_form;

/// What the burst measured.
#[derive(Debug, Default)]
pub(crate) struct Burst {
    /// The sign-in attempts' answers.
    pub(crate) attempts: Tally,
    /// The signed-in visitor's `/tasks` loads meanwhile.
    pub(crate) normal: Tally,
    /// Wrong passwords that signed in (must be zero).
    pub(crate) wrong_accepted: u64,
    /// Attempts that could not even load the sign-in page first.
    pub(crate) unprepared: u64,
    /// From the release of the attempts to the last answer.
    pub(crate) elapsed: Duration,
}

/// Releases `attempts` sign-ins at once against `frontend`, cycling through `accounts`;
/// `visitor` is a signed-in session whose list is loaded every 100 ms meanwhile.
pub(crate) fn run(
    http: &Http,
    frontend: &str,
    accounts: &[Account],
    attempts: usize,
    timeout: Duration,
    visitor: &Flow,
) -> Burst {
    let barrier = Barrier::new(attempts + 1);
    let done = AtomicBool::new(false);
    let mut burst = Burst::default();
    let started = std::thread::scope(|s| {
        let (barrier, done) = (&barrier, &done);
        let handles: Vec<_> = (0..attempts)
            .map(|i| {
                let acct = &accounts[i % accounts.len()];
                let wrong = i % 5 == 4;
                s.spawn(move || attempt(http, frontend, acct, wrong, timeout, barrier))
            })
            .collect();
        barrier.wait();
        let started = Instant::now();
        let cookie = cookie_header(visitor);
        let visitor_url = visitor.url(TASKS_PAGE);
        let normal = s.spawn(move || {
            let mut t = Tally::default();
            while !done.load(Ordering::SeqCst) {
                let a = http.send("GET", &visitor_url, &[("Cookie", cookie.as_str())], None);
                let class = if a.status == Some(200) {
                    Class::Ok
                } else {
                    Class::Error
                };
                t.record(&a, class);
                std::thread::sleep(Duration::from_millis(100));
            }
            t
        });
        for h in handles {
            match h.join() {
                Ok((answer, class, wrong_ok, prepared)) => {
                    burst.attempts.record(&answer, class);
                    burst.wrong_accepted += u64::from(wrong_ok);
                    burst.unprepared += u64::from(!prepared);
                }
                Err(_) => burst.unprepared += 1,
            }
        }
        done.store(true, Ordering::SeqCst);
        burst.normal = normal.join().unwrap_or_default();
        started
    });
    burst.elapsed = started.elapsed();
    burst
}

/// One attempt: load the form (cookie and CSRF field), wait for the others, post it.
/// Returns the answer, its class, whether a wrong password signed in, and whether the form
/// could be loaded.
fn attempt(
    http: &Http,
    frontend: &str,
    acct: &Account,
    wrong: bool,
    timeout: Duration,
    barrier: &Barrier,
) -> (Answer, Class, bool, bool) {
    let mut flow = Flow::new(Client::new(timeout), frontend);
    let form = flow.visit(LOGIN_PAGE).ok().and_then(|_| {
        find_form(&flow.page, |f| {
            f.has_field("email") && f.has_field("password")
        })
    });
    barrier.wait();
    let Some(form) = form else {
        let failed = Answer {
            failure: Some("no-sign-in-form".to_owned()),
            ..Answer::default()
        };
        return (failed, Class::Error, false, false);
    };
    let password = if wrong {
        format!("{}-wrong", acct.password)
    } else {
        acct.password.clone()
    };
    let mut fields = form.fields.clone();
    for (k, v) in [("email", &acct.email), ("password", &password)] {
        match fields.iter_mut().find(|(n, _)| n == k) {
            Some(slot) => slot.1.clone_from(v),
            None => fields.push((k.to_owned(), v.clone())),
        }
    }
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&fields)
        .finish();
    let cookie = cookie_header(&flow);
    let mut headers = vec![
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Cookie", cookie.as_str()),
    ];
    if let Some(addr) = acct.xff() {
        headers.push(("X-Forwarded-For", addr));
    }
    let a = http.send(
        "POST",
        &flow.url(&form.action),
        &headers,
        Some(body.as_bytes()),
    );
    let signed_in = a.status == Some(303)
        && a.location
            .as_deref()
            .is_some_and(|l| l.contains(TASKS_PAGE));
    let class = match (a.status, wrong) {
        (Some(429), _) => Class::Throttled,
        (Some(200 | 503), _) => Class::Ok,
        (Some(303), false) if signed_in => Class::Ok,
        (Some(401), true) => Class::Ok,
        _ => Class::Error,
    };
    (a, class, wrong && signed_in, true)
}

/// The session's cookies as one `Cookie` header.
pub(crate) fn cookie_header(flow: &Flow) -> String {
    flow.cookies
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

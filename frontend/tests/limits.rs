//! The frontend under the backend's limits, against a real `todo-backend` process on a real
//! PostgreSQL: throttled sign-ins read as a clear message, the visitor's address reaches the
//! backend's throttles, and the task list pages.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::{Browser, Page, stack_with, unique_email};

const PASSWORD: &str = "correct horse battery";

/// A browser whose every request says it comes through a proxy for `addr`.
fn browser_from(base: &str, addr: &str) -> Browser {
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-forwarded-for", addr.parse().unwrap());
    let http = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .default_headers(headers)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    Browser {
        http,
        base: base.to_owned(),
        jar,
    }
}

async fn sign_in(browser: &Browser, email: &str, password: &str) -> Page {
    let form = browser.get("/signin").await;
    browser
        .submit(
            &form,
            "/signin",
            &[("email", email), ("password", password)],
        )
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn throttled_sign_ins_say_when_to_try_again() {
    let Some(stack) = stack_with(
        "throttled_sign_ins_say_when_to_try_again",
        &[
            ("LOGIN_RATE_PER_ACCOUNT", "2/min"),
            ("LOGIN_RATE_PER_IP", "off"),
        ],
        "",
    )
    .await
    else {
        return;
    };
    let browser = Browser::new(&stack.frontend.url);
    let email = unique_email("throttled");
    for _ in 0..2 {
        let page = sign_in(&browser, &email, "wrong password").await;
        assert_eq!(page.status, 401, "{}", page.html);
        page.assert_shows("Wrong email or password.");
    }
    let page = sign_in(&browser, &email, "wrong password").await;
    assert_eq!(page.status, 429, "{}", page.html);
    page.assert_shows("Too many attempts. Please try again in ");
    assert!(page.html.contains(" seconds."), "{}", page.html);
    // The form is still there to try again later, with the email kept.
    assert!(page.html.contains("action=\"/signin\""), "{}", page.html);
    assert!(page.html.contains(&email), "{}", page.html);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_visitors_address_reaches_the_backends_per_address_throttle() {
    // The backend trusts the frontend (loopback); the frontend trusts the test's "proxy"
    // (loopback too), so each browser's X-Forwarded-For is its address.
    let Some(stack) = stack_with(
        "the_visitors_address_reaches_the_backends_per_address_throttle",
        &[
            ("LOGIN_RATE_PER_IP", "2/min"),
            ("LOGIN_RATE_PER_ACCOUNT", "off"),
            ("TRUSTED_PROXIES", "127.0.0.0/8"),
        ],
        "127.0.0.0/8",
    )
    .await
    else {
        return;
    };
    let a = browser_from(&stack.frontend.url, "203.0.113.1");
    let b = browser_from(&stack.frontend.url, "203.0.113.2");
    for _ in 0..2 {
        assert_eq!(sign_in(&a, "a@example.com", "nope nope").await.status, 401);
    }
    let page = sign_in(&a, "a@example.com", "nope nope").await;
    assert_eq!(page.status, 429, "{}", page.html);
    page.assert_shows("Too many attempts.");
    // Another visitor through the same frontend has its own budget.
    let page = sign_in(&b, "b@example.com", "nope nope").await;
    assert_eq!(page.status, 401, "{}", page.html);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_untrusted_forwarded_address_is_not_passed_on() {
    // The frontend trusts no proxy: whatever a browser writes in X-Forwarded-For, the backend
    // sees the frontend's peer (here loopback) for every visitor.
    let Some(stack) = stack_with(
        "an_untrusted_forwarded_address_is_not_passed_on",
        &[
            ("LOGIN_RATE_PER_IP", "2/min"),
            ("LOGIN_RATE_PER_ACCOUNT", "off"),
            ("TRUSTED_PROXIES", "127.0.0.0/8"),
        ],
        "",
    )
    .await
    else {
        return;
    };
    for i in 0..2 {
        let b = browser_from(&stack.frontend.url, &format!("203.0.113.{i}"));
        assert_eq!(sign_in(&b, "x@example.com", "nope nope").await.status, 401);
    }
    let b = browser_from(&stack.frontend.url, "203.0.113.77");
    assert_eq!(sign_in(&b, "x@example.com", "nope nope").await.status, 429);
}

#[allow(dead_code)]
const _: &str = PASSWORD;

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

fn lists(page: &Page, title: &str) -> bool {
    page.html
        .contains(&format!("<span class=\"task-title\">{title}</span>"))
}

/// The href of the "Older tasks" link, if the page has one.
fn older_link(page: &Page) -> Option<String> {
    let at = page.html.find("rel=\"next\" href=\"")? + "rel=\"next\" href=\"".len();
    let end = page.html[at..].find('"')? + at;
    Some(page.html[at..end].replace("&amp;", "&"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_task_list_pages_with_an_older_tasks_link_and_caps_read_clearly() {
    let Some(stack) = stack_with(
        "the_task_list_pages_with_an_older_tasks_link_and_caps_read_clearly",
        &[("PAGE_SIZE_DEFAULT", "2"), ("MAX_TASKS_PER_USER", "3")],
        "",
    )
    .await
    else {
        return;
    };
    let browser = Browser::new(&stack.frontend.url);
    let mut page = browser.sign_up(&unique_email("pages"), PASSWORD).await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(older_link(&page).is_none());
    for title in ["first", "second", "third"] {
        page = browser
            .submit(&page, "/tasks", &[("title", title), ("status", "all")])
            .await;
        assert_eq!(page.status, 200);
    }
    // Newest first, two per page, and a link to the rest.
    assert!(lists(&page, "third") && lists(&page, "second"));
    assert!(!lists(&page, "first"));
    let older = older_link(&page).expect("an Older tasks link");
    assert!(older.starts_with("/tasks?status=all&cursor="), "{older}");
    page.assert_shows("Older tasks →");
    let page2 = browser.get(&older).await;
    assert_eq!(page2.status, 200);
    assert!(lists(&page2, "first"));
    assert!(!lists(&page2, "third"));
    assert!(older_link(&page2).is_none());
    page2.assert_shows("← Newest tasks");
    // A mangled cursor shows the first page rather than an error.
    let page3 = browser.get("/tasks?status=all&cursor=%27%3B--").await;
    assert_eq!(page3.status, 200);
    assert!(lists(&page3, "third"));

    // A fourth task is over the cap: the flash names it.
    let page = browser
        .submit(&page3, "/tasks", &[("title", "fourth"), ("status", "all")])
        .await;
    page.assert_shows("Could not add the task: You have reached the limit of 3 tasks");
    assert!(!lists(&page, "fourth"));
}

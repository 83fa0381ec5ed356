//! The frontend under the backend's limits, against a real `todo-backend` process on a real
//! PostgreSQL: throttled sign-ins read as a clear message, the visitor's address reaches the
//! backend's throttles, and the task list pages. And its own time limits, on real sockets: the
//! header-read timeout, the request timeout and the bounded drain on shutdown.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::{Browser, Frontend, Page, frontend_config, stack_with, unique_email};
use todo_frontend::config::Timeouts;

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

/// A backend address that accepts connections (the kernel queues them) and never answers.
fn silent_backend() -> (std::net::TcpListener, String) {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    (silent, url)
}

/// The frontend for `backend` with `timeouts`.
async fn frontend_with(backend: &str, timeouts: Timeouts) -> Frontend {
    let mut config = frontend_config(backend, false);
    config.timeouts = timeouts;
    Frontend::start_config(config).await
}

/// A raw HTTP/1.1 exchange: writes `request`, then reads until the server closes or `limit`
/// passes; returns what was read and whether the connection closed.
async fn raw(base: &str, request: &[u8], limit: Duration) -> (String, bool) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .unwrap();
    s.write_all(request).await.unwrap();
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(limit, async {
        let mut chunk = [0u8; 4096];
        loop {
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
    .is_ok();
    (String::from_utf8_lossy(&buf).into_owned(), closed)
}

/// A sign-in form post whose body announces 100 bytes and sends `sent` of them.
fn partial_form_post(sent: &str) -> Vec<u8> {
    format!(
        "POST /signin HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: 100\r\n\r\n{sent}"
    )
    .into_bytes()
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let (_silent, backend) = silent_backend();
    let frontend = frontend_with(
        &backend,
        Timeouts {
            header_read: Duration::from_secs(1),
            ..Timeouts::default()
        },
    )
    .await;
    // No blank line: the head never ends.
    let (text, closed) = raw(
        &frontend.url,
        b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n",
        Duration::from_secs(20),
    )
    .await;
    assert!(closed, "the server kept a half-sent request open");
    assert!(!text.starts_with("HTTP/1.1 200"), "{text}");
    // An idle keep-alive connection is closed the same way; the server still serves.
    let (text, closed) = raw(
        &frontend.url,
        b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_secs(20),
    )
    .await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(closed, "an idle connection stayed open");
}

#[tokio::test]
async fn a_form_sent_too_slowly_is_408_with_a_page() {
    let (_silent, backend) = silent_backend();
    let frontend = frontend_with(
        &backend,
        Timeouts {
            request: Duration::from_secs(1),
            ..Timeouts::default()
        },
    )
    .await;
    let (text, _) = raw(
        &frontend.url,
        &partial_form_post("email=a%40example.com"),
        Duration::from_secs(20),
    )
    .await;
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("This took too long"), "{text}");
    // The page carries the security headers every page has.
    assert!(
        text.to_ascii_lowercase()
            .contains("content-security-policy:"),
        "{text}"
    );
}

#[tokio::test]
async fn a_handler_waiting_on_a_silent_backend_is_cut_at_the_request_timeout() {
    // /ready gives the backend 2 s before answering 503; a 1 s request timeout answers first.
    let (_silent, backend) = silent_backend();
    let frontend = frontend_with(
        &backend,
        Timeouts {
            request: Duration::from_secs(1),
            ..Timeouts::default()
        },
    )
    .await;
    let r = reqwest::get(format!("{}/ready", frontend.url))
        .await
        .unwrap();
    assert_eq!(r.status(), 408);
    assert!(r.text().await.unwrap().contains("This took too long"));
    // With the default bound the same probe gets the handler's own answer.
    let frontend = frontend_with(&backend, Timeouts::default()).await;
    let r = reqwest::get(format!("{}/ready", frontend.url))
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
}

/// Serves the frontend with `timeouts`; returns its URL, the stop trigger and the server task.
async fn serve_stoppable(
    timeouts: Timeouts,
) -> (
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let mut config = frontend_config("http://127.0.0.1:9", false);
    config.timeouts = timeouts;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        todo_frontend::app::serve(&config, listener, async {
            let _ = stopped.await;
        })
        .await
    });
    let health = format!("{url}/health");
    while !support::probe::http_ok(&health) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (url, stop, server)
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_finishes_an_in_flight_request_then_stops() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A drain far longer than the test: the server stops because the request finished.
    let (url, stop, server) = serve_stoppable(Timeouts {
        shutdown_drain: Duration::from_secs(600),
        request: Duration::from_secs(600),
        ..Timeouts::default()
    })
    .await;
    let mut conn = tokio::net::TcpStream::connect(url.trim_start_matches("http://"))
        .await
        .unwrap();
    let first = "email=inflight%40example.com";
    conn.write_all(&partial_form_post(first)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let _ = stop.send(());
    // New connections are refused once the listener is closed...
    let addr = url.trim_start_matches("http://").to_owned();
    let mut refused = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(&addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        refused,
        "the listener still accepts after the shutdown signal"
    );
    // ...while the request in flight keeps the server up.
    assert!(!server.is_finished(), "stopped with a request in flight");

    let rest = "x".repeat(100 - first.len());
    conn.write_all(rest.as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(15), conn.read_to_string(&mut response))
        .await
        .unwrap()
        .unwrap();
    // The whole answer of the handler chain (no CSRF token: the 403 page).
    assert!(response.starts_with("HTTP/1.1 403"), "{response}");
    assert!(response.contains("This form has expired"), "{response}");
    assert!(response.trim_end().ends_with("</html>"), "{response}");
    let done = tokio::time::timeout(Duration::from_secs(15), server).await;
    assert!(
        matches!(done, Ok(Ok(Ok(())))),
        "serve did not return once the request finished: {done:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_drains_within_its_bound_even_with_a_stuck_request() {
    let (url, stop, server) = serve_stoppable(Timeouts {
        shutdown_drain: Duration::from_secs(1),
        request: Duration::from_secs(600),
        header_read: Duration::from_secs(300),
    })
    .await;
    // A request whose body never completes: in flight until the drain gives up on it.
    let stuck = tokio::spawn({
        let url = url.clone();
        async move { raw(&url, &partial_form_post("email="), Duration::from_secs(60)).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = stop.send(());
    // Well under the 600 s the request itself could take.
    let done = tokio::time::timeout(Duration::from_secs(15), server).await;
    assert!(
        matches!(done, Ok(Ok(Ok(())))),
        "serve did not return within the drain bound: {done:?}"
    );
    let (text, closed) = stuck.await.unwrap();
    assert!(closed, "the stuck connection was left open");
    assert!(text.is_empty(), "{text}");
    assert!(
        reqwest::get(format!("{url}/health")).await.is_err(),
        "still listening"
    );
}

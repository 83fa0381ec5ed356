//! Load and hostile-input bounds against a real PostgreSQL, app in-process: the password
//! hashing bound, throttles, per-user caps, pagination, timeouts and shutdown.
#![allow(clippy::unwrap_used)]

mod support;

use reqwest::Method;
use serde_json::{Value, json};
use support::{JWT_SECRET, TestApp};

/// The app on a fresh database with `extra` settings; returns from the test when skipped.
macro_rules! app_with {
    ($name:expr, $extra:expr) => {{
        let Some(db) = support::fresh_database($name).await else {
            return;
        };
        let mut pairs: Vec<(&str, &str)> = vec![("DATABASE_URL", &db), ("JWT_SECRET", JWT_SECRET)];
        pairs.extend_from_slice($extra);
        TestApp::spawn_with(&pairs).await
    }};
}

fn code(b: &Value) -> &str {
    b["error"]["code"].as_str().unwrap_or_default()
}

fn message(b: &Value) -> &str {
    b["error"]["message"].as_str().unwrap_or_default()
}

/// Status, `Retry-After` and JSON body of one request.
async fn send(req: reqwest::RequestBuilder) -> (u16, Option<u64>, Value) {
    let r = req.send().await.unwrap();
    let retry_after = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
    let (s, b) = support::read(r).await;
    (s, retry_after, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hashing_beyond_its_memory_budget_is_503_with_retry_after_never_a_failure() {
    // One hashing slot (20 MiB) and no waiting: concurrent sign-ins must collide.
    let app = app_with!(
        "hashing_beyond_its_memory_budget_is_503_with_retry_after_never_a_failure",
        &[
            ("HASH_MEMORY_MIB", "20"),
            ("HASH_WAIT_MS", "0"),
            ("LOGIN_RATE_PER_ACCOUNT", "off"),
            ("LOGIN_RATE_PER_IP", "off"),
            ("REGISTER_RATE_PER_IP", "off")
        ]
    );
    app.user("busy@example.com").await;
    let creds = json!({"email": "busy@example.com", "password": "correct horse"});
    let mut calls = Vec::new();
    for _ in 0..16 {
        let req = app.http.post(app.url("/api/auth/login")).json(&creds);
        calls.push(tokio::spawn(send(req)));
    }
    let (mut ok, mut busy) = (0, 0);
    for c in calls {
        let (s, retry_after, b) = c.await.unwrap();
        match s {
            200 => ok += 1,
            503 => {
                busy += 1;
                assert_eq!(code(&b), "busy", "{b}");
                assert_eq!(retry_after, Some(1), "{b}");
            }
            other => panic!("unexpected {other}: {b}"),
        }
    }
    assert!(ok >= 1, "no sign-in got the slot");
    assert!(
        busy >= 1,
        "16 concurrent sign-ins with one slot never collided"
    );

    // Sign-up shares the bound and answers the same way.
    let mut calls = Vec::new();
    for i in 0..16 {
        let body = json!({"email": format!("new{i}@example.com"), "password": "long enough"});
        let req = app.http.post(app.url("/api/auth/register")).json(&body);
        calls.push(tokio::spawn(send(req)));
    }
    for c in calls {
        let (s, retry_after, b) = c.await.unwrap();
        assert!(s == 201 || (s == 503 && retry_after == Some(1)), "{s} {b}");
    }
}

#[tokio::test]
async fn a_waiting_sign_in_gets_its_turn() {
    // One slot, but a generous wait: sequential-enough load all succeeds.
    let app = app_with!(
        "a_waiting_sign_in_gets_its_turn",
        &[("HASH_MEMORY_MIB", "20"), ("HASH_WAIT_MS", "30000")]
    );
    app.user("patient@example.com").await;
    let creds = json!({"email": "patient@example.com", "password": "correct horse"});
    let calls: Vec<_> = (0..4)
        .map(|_| tokio::spawn(send(app.http.post(app.url("/api/auth/login")).json(&creds))))
        .collect();
    for c in calls {
        assert_eq!(c.await.unwrap().0, 200);
    }
}

/// POSTs `body` to `path` with `X-Forwarded-For: xff` when given.
async fn post(
    app: &TestApp,
    path: &str,
    body: &Value,
    xff: Option<&str>,
) -> (u16, Option<u64>, Value) {
    let mut req = app.http.post(app.url(path)).json(body);
    if let Some(x) = xff {
        req = req.header("x-forwarded-for", x);
    }
    send(req).await
}

fn login_body(email: &str, password: &str) -> Value {
    json!({"email": email, "password": password})
}

#[track_caller]
fn assert_throttled(got: &(u16, Option<u64>, Value), what: &str, max_wait: u64) {
    let (s, retry_after, b) = got;
    assert_eq!(*s, 429, "{b}");
    assert_eq!(code(b), "rate_limited", "{b}");
    let wait = retry_after.expect("429 without Retry-After");
    assert!((1..=max_wait).contains(&wait), "Retry-After {wait}");
    assert!(message(b).contains(what), "{b}");
    assert!(
        message(b).contains(&format!("try again in {wait} second")),
        "{b}"
    );
}

#[tokio::test]
async fn sign_in_is_throttled_per_account_with_429_and_retry_after() {
    let app = app_with!(
        "sign_in_is_throttled_per_account_with_429_and_retry_after",
        &[
            ("LOGIN_RATE_PER_ACCOUNT", "3/min"),
            ("LOGIN_RATE_PER_IP", "off")
        ]
    );
    app.user("target@example.com").await;
    app.user("other@example.com").await;
    // The sign-in of `user()` counted once already.
    for _ in 0..2 {
        let r = post(
            &app,
            "/api/auth/login",
            &login_body("target@example.com", "guess guess"),
            None,
        )
        .await;
        assert_eq!(r.0, 401, "{}", r.2);
    }
    // Even the right password is refused now, and the email's case changes nothing.
    let r = post(
        &app,
        "/api/auth/login",
        &login_body("TARGET@example.com", "correct horse"),
        None,
    )
    .await;
    assert_throttled(&r, "sign-in attempts for this account", 20);
    // Unknown emails are throttled the same way (no account enumeration by status).
    for _ in 0..3 {
        post(
            &app,
            "/api/auth/login",
            &login_body("ghost@example.com", "guess guess"),
            None,
        )
        .await;
    }
    let r = post(
        &app,
        "/api/auth/login",
        &login_body("ghost@example.com", "guess guess"),
        None,
    )
    .await;
    assert_throttled(&r, "for this account", 20);
    // Another account is not affected.
    let r = post(
        &app,
        "/api/auth/login",
        &login_body("other@example.com", "correct horse"),
        None,
    )
    .await;
    assert_eq!(r.0, 200, "{}", r.2);
}

#[tokio::test]
async fn sign_in_is_throttled_per_address_and_forwarded_addresses_count_only_from_trusted_proxies()
{
    let name =
        "sign_in_is_throttled_per_address_and_forwarded_addresses_count_only_from_trusted_proxies";
    // Untrusted peer: X-Forwarded-For is ignored, every "client" is 127.0.0.1.
    let app = app_with!(
        name,
        &[
            ("LOGIN_RATE_PER_IP", "3/min"),
            ("LOGIN_RATE_PER_ACCOUNT", "off")
        ]
    );
    for i in 0..3 {
        let xff = format!("203.0.113.{i}");
        let r = post(
            &app,
            "/api/auth/login",
            &login_body(&format!("u{i}@example.com"), "guess guess"),
            Some(&xff),
        )
        .await;
        assert_eq!(r.0, 401, "{}", r.2);
    }
    let r = post(
        &app,
        "/api/auth/login",
        &login_body("u9@example.com", "guess guess"),
        Some("203.0.113.99"),
    )
    .await;
    assert_throttled(&r, "sign-in attempts from this address", 20);
    drop(app);

    // The loopback peer trusted as a proxy: each forwarded client has its own budget.
    let app = app_with!(
        name,
        &[
            ("LOGIN_RATE_PER_IP", "2/min"),
            ("LOGIN_RATE_PER_ACCOUNT", "off"),
            ("TRUSTED_PROXIES", "127.0.0.0/8, ::1")
        ]
    );
    for _ in 0..2 {
        let r = post(
            &app,
            "/api/auth/login",
            &login_body("a@example.com", "guess guess"),
            Some("203.0.113.1"),
        )
        .await;
        assert_eq!(r.0, 401, "{}", r.2);
    }
    let r = post(
        &app,
        "/api/auth/login",
        &login_body("a@example.com", "guess guess"),
        Some("203.0.113.1"),
    )
    .await;
    assert_throttled(&r, "from this address", 40);
    // A forged entry left of the proxy's own does not help the throttled client.
    let r = post(
        &app,
        "/api/auth/login",
        &login_body("a@example.com", "guess guess"),
        Some("198.51.100.7, 203.0.113.1"),
    )
    .await;
    assert_eq!(r.0, 429, "{}", r.2);
    // Another client behind the same proxy is unaffected.
    let r = post(
        &app,
        "/api/auth/login",
        &login_body("b@example.com", "guess guess"),
        Some("203.0.113.2"),
    )
    .await;
    assert_eq!(r.0, 401, "{}", r.2);
}

#[tokio::test]
async fn sign_up_is_throttled_per_address() {
    let app = app_with!(
        "sign_up_is_throttled_per_address",
        &[("REGISTER_RATE_PER_IP", "2/h")]
    );
    // Refused input does not count: it never reaches the hash.
    for _ in 0..5 {
        let r = post(
            &app,
            "/api/auth/register",
            &login_body("bad", "short"),
            None,
        )
        .await;
        assert_eq!(r.0, 422);
    }
    for i in 0..2 {
        let r = post(
            &app,
            "/api/auth/register",
            &login_body(&format!("n{i}@example.com"), "long enough"),
            None,
        )
        .await;
        assert_eq!(r.0, 201, "{}", r.2);
    }
    let r = post(
        &app,
        "/api/auth/register",
        &login_body("n3@example.com", "long enough"),
        None,
    )
    .await;
    // One more every 30 minutes.
    assert_throttled(&r, "sign-ups from this address", 1800);
    assert!(r.1.unwrap() > 60, "{:?}", r.1);
}

#[tokio::test]
async fn chat_is_throttled_per_user() {
    let app = app_with!(
        "chat_is_throttled_per_user",
        &[("CHAT_RATE_PER_USER", "2/min")]
    );
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let chat = |token: String| {
        let req = app
            .http
            .post(app.url("/api/chat"))
            .bearer_auth(token)
            .json(&json!({"message": "list"}));
        send(req)
    };
    for _ in 0..2 {
        let r = chat(alice.clone()).await;
        assert_eq!(r.0, 200, "{}", r.2);
    }
    let r = chat(alice.clone()).await;
    assert_throttled(&r, "chat messages", 30);
    let r = chat(bob.clone()).await;
    assert_eq!(r.0, 200, "{}", r.2);
}

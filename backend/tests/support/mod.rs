//! Test support: a database per test (on `DATABASE_URL`'s server, or the shared throwaway
//! server of `test-support`), the app in-process, and JSON calls against it.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::Connection;
use test_support::PgServer;
use todo_backend::config::Config;
use tokio::sync::oneshot;

/// Where test databases are created: `DATABASE_URL` when set, else the throwaway server shared
/// by this test binary; `None` after a SKIP line when there is neither.
fn admin_url(test: &str) -> Option<String> {
    if let Ok(url) = std::env::var("DATABASE_URL") {
        return Some(url);
    }
    Some(PgServer::shared(test)?.url("postgres"))
}

/// Replaces the database name in a postgres URL (keeping any `?query`).
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[after_scheme..]
        .find('/')
        .map_or(base.len(), |i| after_scheme + i);
    let mut out = format!("{}/{db}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// A new, empty database for one test; `None` (after a SKIP line) when PostgreSQL is absent.
pub async fn fresh_database(test: &str) -> Option<String> {
    let admin = admin_url(test)?;
    let name = format!("todo_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    Some(with_database(&admin, &name))
}

/// The test JWT secret (48 bytes).
pub const JWT_SECRET: &str = "test-secret-0123456789abcdef0123456789abcdef-xyz";

/// Builds a [`Config`] from pairs, the way the binary builds it from its environment.
pub fn config(pairs: &[(&str, &str)]) -> Config {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_lookup(|k| map.get(k).cloned()).unwrap()
}

/// The app served in-process on a real socket, stopped on drop.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// HTTP client.
    pub http: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
}

impl TestApp {
    /// Starts the app on a fresh database and waits until it is ready; `None` means skipped.
    pub async fn spawn(test: &str) -> Option<TestApp> {
        let db = fresh_database(test).await?;
        Some(Self::spawn_with(&[("DATABASE_URL", &db), ("JWT_SECRET", JWT_SECRET)]).await)
    }

    /// Starts the app with the given settings and waits until `/ready` is 200.
    pub async fn spawn_with(pairs: &[(&str, &str)]) -> TestApp {
        let config = config(pairs);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            todo_backend::serve(config, listener, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        let app = TestApp {
            base,
            http: reqwest::Client::new(),
            shutdown: Some(tx),
        };
        wait_ready(&app.http, &app.base).await;
        app
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a JSON request, optionally with a bearer token; returns status and parsed body
    /// (`Value::Null` when empty).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        read(req.send().await.unwrap()).await
    }

    /// Registers an account and returns its token.
    pub async fn user(&self, email: &str) -> String {
        register_and_login(&self.http, &self.base, email, "correct horse").await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Registers `email` with `password` at the API under `base`, signs in and returns the token.
pub async fn register_and_login(
    http: &reqwest::Client,
    base: &str,
    email: &str,
    password: &str,
) -> String {
    let creds = serde_json::json!({"email": email, "password": password});
    let r = http
        .post(format!("{base}/api/auth/register"))
        .json(&creds)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "register {email}");
    let r = http
        .post(format!("{base}/api/auth/login"))
        .json(&creds)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "login {email}");
    let body: Value = r.json().await.unwrap();
    body["token"].as_str().unwrap().to_owned()
}

/// Status and JSON body of a response; asserts that error responses have the documented shape.
pub async fn read(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"))
    };
    if status >= 400 && !matches!(status, 503) {
        assert!(
            body["error"]["code"].is_string() && body["error"]["message"].is_string(),
            "error body has the wrong shape: {body}"
        );
    }
    (status, body)
}

/// Polls `/ready` until it answers 200 (30 s at most).
pub async fn wait_ready(http: &reqwest::Client, base: &str) {
    wait_for_ready_status(http, base, 200, Duration::from_secs(30)).await;
}

/// Polls `/ready` until it answers `want`; panics with the last answer after `limit`.
pub async fn wait_for_ready_status(
    http: &reqwest::Client,
    base: &str,
    want: u16,
    limit: Duration,
) -> Value {
    let start = Instant::now();
    let mut last = String::from("no answer");
    while start.elapsed() < limit {
        if let Ok(r) = http
            .get(format!("{base}/ready"))
            .timeout(Duration::from_secs(3))
            .send()
            .await
        {
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            if status == want {
                return body;
            }
            last = format!("{status} {body}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("/ready did not become {want} within {limit:?}; last: {last}");
}

/// Path of the built `todo-backend` binary.
pub fn backend_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_todo-backend"))
}

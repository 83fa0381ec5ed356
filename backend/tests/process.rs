//! The real `todo-backend` binary: configuration errors, readiness and requests across a
//! database outage, graceful shutdown with a request in flight, and logs free of secrets.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{JWT_SECRET, backend_bin, wait_for_ready_status};
use test_support::{PgServer, free_port};

/// A running backend process whose stdout and stderr are collected.
struct Backend {
    child: Child,
    port: u16,
    output: Arc<Mutex<Vec<u8>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Backend {
    fn start(env: &[(&str, &str)]) -> Backend {
        let port = free_port();
        let mut child = Command::new(backend_bin())
            .env_clear()
            .envs(env.iter().copied())
            .env("PORT", port.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let output = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        let streams: [Box<dyn Read + Send>; 2] = [
            Box::new(child.stdout.take().unwrap()),
            Box::new(child.stderr.take().unwrap()),
        ];
        for mut stream in streams {
            let out = output.clone();
            readers.push(std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    out.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            }));
        }
        Backend {
            child,
            port,
            output,
            readers,
        }
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn wait_healthy(&mut self) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("backend exited early ({status}): {}", self.output_text());
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("backend did not listen: {}", self.output_text());
    }

    fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(st.success());
    }

    /// Sends SIGTERM and waits for the exit; returns the exit code and everything printed.
    fn terminate(mut self) -> (Option<i32>, String) {
        self.signal("TERM");
        let code = wait_exit(&mut self.child, Duration::from_secs(15));
        for r in self.readers.drain(..) {
            r.join().unwrap();
        }
        (code, self.output_text())
    }

    fn output_text(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned()
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_exit(child: &mut Child, limit: Duration) -> Option<i32> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        assert!(
            start.elapsed() < limit,
            "process did not exit within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn bad_configuration_exits_2_with_one_line_naming_the_variable_and_no_secret() {
    const DB_SECRET: &str = "db-pass-s3cr3t-value";
    const SHORT_JWT: &str = "jwt-s3cr3t-too-short";
    let good_db = format!("postgres://app:{DB_SECRET}@127.0.0.1:1/app");
    let cases: Vec<(Vec<(&str, String)>, &str)> = vec![
        (vec![], "DATABASE_URL"),
        (vec![("JWT_SECRET", JWT_SECRET.into())], "DATABASE_URL"),
        (
            vec![
                ("DATABASE_URL", format!("mysql://app:{DB_SECRET}@db/app")),
                ("JWT_SECRET", JWT_SECRET.into()),
            ],
            "DATABASE_URL",
        ),
        (
            vec![
                (
                    "DATABASE_URL",
                    format!("postgres://app:{DB_SECRET}@db:notaport/app"),
                ),
                ("JWT_SECRET", JWT_SECRET.into()),
            ],
            "DATABASE_URL",
        ),
        (vec![("DATABASE_URL", good_db.clone())], "JWT_SECRET"),
        (
            vec![
                ("DATABASE_URL", good_db.clone()),
                ("JWT_SECRET", SHORT_JWT.into()),
            ],
            "JWT_SECRET",
        ),
        (
            vec![
                ("DATABASE_URL", good_db.clone()),
                ("JWT_SECRET", JWT_SECRET.into()),
                ("PORT", "eighty".into()),
            ],
            "PORT",
        ),
        (
            vec![
                ("DATABASE_URL", good_db.clone()),
                ("JWT_SECRET", JWT_SECRET.into()),
                ("LOG_FORMAT", "xml".into()),
            ],
            "LOG_FORMAT",
        ),
        (
            vec![
                ("DATABASE_URL", good_db.clone()),
                ("JWT_SECRET", JWT_SECRET.into()),
                ("LOG_LEVEL", "very=loud=please".into()),
            ],
            "LOG_LEVEL",
        ),
        (
            vec![
                ("DATABASE_URL", good_db.clone()),
                ("JWT_SECRET", JWT_SECRET.into()),
                ("TOKEN_TTL_SECONDS", "0".into()),
            ],
            "TOKEN_TTL_SECONDS",
        ),
    ];
    for (env, var) in cases {
        let out = Command::new(backend_bin())
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(2), "{var}: {text}");
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{var}: expected one line, got: {text}");
        assert!(lines[0].contains(var), "{var}: {text}");
        for secret in [DB_SECRET, SHORT_JWT, JWT_SECRET] {
            assert!(!text.contains(secret), "{var}: secret leaked: {text}");
        }
        assert!(!text.contains("panicked"), "{text}");
    }
}

#[tokio::test]
async fn ready_turns_503_while_the_database_is_down_and_recovers_by_itself() {
    let test = "ready_turns_503_while_the_database_is_down_and_recovers_by_itself";
    // This test stops and starts its own server, so it never uses DATABASE_URL's.
    let Some(mut pg) = PgServer::new(test) else {
        return;
    };
    pg.stop();
    let db_url = pg.url("postgres");
    let mut backend = Backend::start(&[("DATABASE_URL", &db_url), ("JWT_SECRET", JWT_SECRET)]);
    backend.wait_healthy();
    let http = reqwest::Client::new();
    let base = backend.base();

    // Started with the database down: alive, not ready.
    let health = http.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let body = wait_for_ready_status(&http, &base, 503, Duration::from_secs(5)).await;
    assert_eq!(
        body,
        json!({"status": "not_ready", "reason": "database unreachable"})
    );

    // The database appears: migrations get applied in the background and readiness follows.
    pg.start();
    wait_for_ready_status(&http, &base, 200, Duration::from_secs(30)).await;
    let r = http
        .post(format!("{base}/api/auth/register"))
        .json(&json!({"email": "outage@example.com", "password": "long enough"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    // It goes away again.
    pg.stop();
    let body = wait_for_ready_status(&http, &base, 503, Duration::from_secs(10)).await;
    assert_eq!(body["reason"], "database unreachable");
    let health = http.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let r = http
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"email": "outage@example.com", "password": "long enough"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_ready");

    // And comes back: no restart of the backend needed.
    pg.start();
    wait_for_ready_status(&http, &base, 200, Duration::from_secs(30)).await;
    let r = http
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"email": "outage@example.com", "password": "long enough"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (code, _) = backend.terminate();
    assert_eq!(code, Some(0));
}

/// Status, `Retry-After` and JSON body of one request.
async fn answer(req: reqwest::RequestBuilder) -> (u16, Option<String>, Value) {
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, retry, r.json().await.unwrap_or(Value::Null))
}

fn titles(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn requests_fail_fast_while_the_database_is_down_and_recover_by_themselves() {
    let test = "requests_fail_fast_while_the_database_is_down_and_recover_by_themselves";
    // This test stops and starts its own server, so it never uses DATABASE_URL's.
    let Some(mut pg) = PgServer::new(test) else {
        return;
    };
    let db_url = pg.url("postgres");
    let mut backend = Backend::start(&[("DATABASE_URL", &db_url), ("JWT_SECRET", JWT_SECRET)]);
    backend.wait_healthy();
    let base = backend.base();
    let http = reqwest::Client::new();
    wait_for_ready_status(&http, &base, 200, Duration::from_secs(30)).await;
    let token = support::register_and_login(&http, &base, "fast@example.com", "long enough").await;
    let tasks = format!("{base}/api/tasks");
    let add = |title: &str| {
        http.post(&tasks)
            .bearer_auth(&token)
            .json(&json!({ "title": title }))
    };
    let (s, _, _) = answer(add("acknowledged before the outage")).await;
    assert_eq!(s, 201);

    // A failing statement says nothing about the database: the next request goes through
    // (were the database marked down, it would be 503 until the re-probe).
    let (s, _, b) = answer(
        http.post(format!("{base}/api/auth/register"))
            .json(&json!({"email": "fast@example.com", "password": "long enough"})),
    )
    .await;
    assert_eq!((s, b["error"]["code"].as_str()), (409, Some("email_taken")));
    let (s, _, _) = answer(http.get(&tasks).bearer_auth(&token)).await;
    assert_eq!(s, 200);

    pg.stop();
    // The first request finds out (it may wait out the pool's acquire timeout)...
    let (s, retry, b) = answer(add("refused during the outage")).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (503, Some("not_ready")),
        "{b}"
    );
    assert_eq!(retry.as_deref(), Some("1"));
    // ...and from then on every request that needs the database is refused at once: well
    // within a client timeout shorter than that acquire timeout (5 s).
    let quick = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    for req in [
        quick.get(&tasks).bearer_auth(&token),
        quick
            .post(&tasks)
            .bearer_auth(&token)
            .json(&json!({"title": "refused too"})),
        quick.get(format!("{base}/api/me")).bearer_auth(&token),
        quick
            .post(format!("{base}/api/auth/login"))
            .json(&json!({"email": "fast@example.com", "password": "long enough"})),
    ] {
        let (s, retry, b) = answer(req).await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (503, Some("not_ready")),
            "{b}"
        );
        assert!(b["error"]["message"].is_string(), "{b}");
        assert_eq!(retry.as_deref(), Some("1"));
    }
    // The process itself still serves.
    let (s, _, _) = answer(quick.get(format!("{base}/health"))).await;
    assert_eq!(s, 200);

    // The database comes back: requests succeed again by themselves (nothing asks /ready
    // here, the backend re-probes on its own), without a restart.
    pg.start();
    let start = Instant::now();
    let list = loop {
        let (s, _, b) = answer(quick.get(&tasks).bearer_auth(&token)).await;
        if s == 200 {
            break b;
        }
        assert_eq!(s, 503, "{b}");
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "requests did not recover: {}",
            backend.output_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Nothing acknowledged was lost, nothing refused was written.
    assert_eq!(titles(&list), ["acknowledged before the outage"]);
    let (s, _, _) = answer(add("acknowledged after the outage")).await;
    assert_eq!(s, 201);
    let (_, _, list) = answer(http.get(&tasks).bearer_auth(&token)).await;
    assert_eq!(
        titles(&list),
        [
            "acknowledged after the outage",
            "acknowledged before the outage"
        ]
    );
    let (code, logs) = backend.terminate();
    assert_eq!(code, Some(0));
    assert!(
        logs.contains("database unreachable; answering 503 until it is back"),
        "{logs}"
    );
    assert!(logs.contains("database reachable again"), "{logs}");
}

#[tokio::test]
async fn sigterm_lets_an_in_flight_request_finish_then_exits_0() {
    let test = "sigterm_lets_an_in_flight_request_finish_then_exits_0";
    let Some(db) = support::fresh_database(test).await else {
        return;
    };
    let mut backend = Backend::start(&[("DATABASE_URL", &db), ("JWT_SECRET", JWT_SECRET)]);
    backend.wait_healthy();
    wait_for_ready_status(
        &reqwest::Client::new(),
        &backend.base(),
        200,
        Duration::from_secs(30),
    )
    .await;

    let port = backend.port;
    let body = r#"{"email":"inflight@example.com","password":"long enough"}"#;
    let (first, rest) = body.split_at(20);
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        conn,
        "POST /api/auth/register HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{first}",
        body.len()
    )
    .unwrap();
    conn.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));

    backend.signal("TERM");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        backend.child.try_wait().unwrap().is_none(),
        "exited with a request still in flight"
    );

    conn.write_all(rest.as_bytes()).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    assert!(response.contains("inflight@example.com"), "{response}");

    let code = wait_exit(&mut backend.child, Duration::from_secs(15));
    assert_eq!(code, Some(0), "{}", backend.output_text());
    assert!(backend.output_text().contains("shutdown signal received"));
}

async fn secrets_stay_out_of_logs(test: &str, format: &str, level: &str) {
    let Some(db) = support::fresh_database(test).await else {
        return;
    };
    // Trust auth ignores the password, so it can be a marker that must never be printed.
    let db_password = "db-password-marker-4417";
    let db = db.replacen("postgres@", &format!("postgres:{db_password}@"), 1);
    let password = "user-password-marker-8812";
    let wrong_password = "wrong-password-marker-3390";
    let mut backend = Backend::start(&[
        ("DATABASE_URL", &db),
        ("JWT_SECRET", JWT_SECRET),
        ("LOG_FORMAT", format),
        ("LOG_LEVEL", level),
    ]);
    backend.wait_healthy();
    let http = reqwest::Client::new();
    let base = backend.base();
    wait_for_ready_status(&http, &base, 200, Duration::from_secs(30)).await;

    let token = support::register_and_login(&http, &base, "logs@example.com", password).await;
    let r = http
        .get(format!("{base}/api/me?probe=1"))
        .bearer_auth(&token)
        .header("x-request-id", "req-marker-77")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"email": "logs@example.com", "password": wrong_password}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .get(format!("{base}/api/tasks"))
        .bearer_auth(format!("{token}x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let (code, logs) = backend.terminate();
    assert_eq!(code, Some(0));
    assert!(
        logs.contains("req-marker-77"),
        "request id not logged:\n{logs}"
    );
    for secret in [
        password,
        wrong_password,
        token.as_str(),
        JWT_SECRET,
        db_password,
    ] {
        assert!(
            !logs.contains(secret),
            "{format}/{level}: secret in logs:\n{logs}"
        );
    }
    // The signature part alone must not appear either.
    let sig = token.rsplit('.').next().unwrap();
    assert!(!logs.contains(sig));
    assert!(!logs.to_lowercase().contains("bearer "), "{logs}");
    if format == "json" {
        for line in logs.lines().filter(|l| !l.is_empty()) {
            let v: Value =
                serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
            assert!(v["level"].is_string(), "{line}");
        }
    }
}

#[tokio::test]
async fn json_trace_logs_never_contain_passwords_or_tokens() {
    secrets_stay_out_of_logs(
        "json_trace_logs_never_contain_passwords_or_tokens",
        "json",
        "trace",
    )
    .await;
}

#[tokio::test]
async fn text_debug_logs_never_contain_passwords_or_tokens() {
    secrets_stay_out_of_logs(
        "text_debug_logs_never_contain_passwords_or_tokens",
        "text",
        "debug",
    )
    .await;
}

#[tokio::test]
async fn an_unreachable_chat_provider_is_logged_without_the_api_key() {
    let test = "an_unreachable_chat_provider_is_logged_without_the_api_key";
    let Some(db) = support::fresh_database(test).await else {
        return;
    };
    let api_key = "sk-provider-key-marker-5521";
    let closed = format!("http://127.0.0.1:{}/v1", free_port());
    let mut backend = Backend::start(&[
        ("DATABASE_URL", &db),
        ("JWT_SECRET", JWT_SECRET),
        ("LLM_BASE_URL", &closed),
        ("LLM_MODEL", "some-model"),
        ("LLM_API_KEY", api_key),
        ("LOG_LEVEL", "debug"),
    ]);
    backend.wait_healthy();
    let http = reqwest::Client::new();
    let base = backend.base();
    wait_for_ready_status(&http, &base, 200, Duration::from_secs(30)).await;
    let token =
        support::register_and_login(&http, &base, "chatlog@example.com", "long enough").await;
    let r = http
        .post(format!("{base}/api/chat"))
        .bearer_auth(&token)
        .json(&json!({"message": "add buy milk"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["reply"]
            .as_str()
            .unwrap()
            .contains("could not be reached"),
        "{body}"
    );

    let (code, logs) = backend.terminate();
    assert_eq!(code, Some(0));
    assert!(
        logs.contains("chat provider failed"),
        "no log line for the failure:\n{logs}"
    );
    assert!(!logs.contains(api_key), "API key in logs:\n{logs}");
}

//! Every REST route against a real PostgreSQL, through real HTTP, app in-process.
#![allow(clippy::unwrap_used)]

mod support;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde_json::{Value, json};
use support::{JWT_SECRET, TestApp};

macro_rules! app {
    ($name:expr) => {
        match TestApp::spawn($name).await {
            Some(app) => app,
            None => return,
        }
    };
}

async fn new_task(app: &TestApp, token: &str, title: &str) -> Value {
    let (s, b) = app
        .call(
            Method::POST,
            "/api/tasks",
            Some(token),
            Some(json!({"title": title})),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    b
}

fn code(b: &Value) -> &str {
    b["error"]["code"].as_str().unwrap()
}

fn message(b: &Value) -> &str {
    b["error"]["message"].as_str().unwrap()
}

#[tokio::test]
async fn health_and_ready_answer_ok() {
    let app = app!("health_and_ready_answer_ok");
    assert_eq!(
        app.call(Method::GET, "/health", None, None).await,
        (200, json!({"status": "ok"}))
    );
    assert_eq!(
        app.call(Method::GET, "/ready", None, None).await,
        (200, json!({"status": "ready"}))
    );
}

#[tokio::test]
async fn register_creates_an_account_with_a_normalised_email() {
    let app = app!("register_creates_an_account_with_a_normalised_email");
    let (s, b) = app
        .call(
            Method::POST,
            "/api/auth/register",
            None,
            Some(json!({"email": "  Alice@Example.COM ", "password": "long enough"})),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["email"], "alice@example.com");
    assert!(uuid::Uuid::parse_str(b["id"].as_str().unwrap()).is_ok());
    time::OffsetDateTime::parse(
        b["created_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(b.get("password_hash").is_none() && b.get("password").is_none());
}

#[tokio::test]
async fn register_with_a_taken_email_is_409_whatever_its_case() {
    let app = app!("register_with_a_taken_email_is_409_whatever_its_case");
    app.user("bob@example.com").await;
    let (s, b) = app
        .call(
            Method::POST,
            "/api/auth/register",
            None,
            Some(json!({"email": "BOB@example.com", "password": "another one"})),
        )
        .await;
    assert_eq!(s, 409);
    assert_eq!(code(&b), "email_taken");
}

#[tokio::test]
async fn register_rejects_each_invalid_input_naming_the_field() {
    let app = app!("register_rejects_each_invalid_input_naming_the_field");
    let cases = [
        (
            json!({"email": "not-an-email", "password": "long enough"}),
            "email",
        ),
        (json!({"email": "", "password": "long enough"}), "email"),
        (
            json!({"email": "a@example.com", "password": "short"}),
            "password",
        ),
        (
            json!({"email": "a@example.com", "password": "x".repeat(1025)}),
            "password",
        ),
        (json!({"email": "a@example.com"}), "password"),
        (json!({"password": "long enough"}), "email"),
        (json!({"email": 5, "password": "long enough"}), "email"),
        (
            json!({"email": "a@example.com", "password": "long enough", "admin": true}),
            "admin",
        ),
    ];
    for (body, field) in cases {
        let (s, b) = app
            .call(Method::POST, "/api/auth/register", None, Some(body.clone()))
            .await;
        assert_eq!(s, 422, "{body} → {b}");
        assert_eq!(code(&b), "validation_error");
        assert!(message(&b).contains(field), "{body} → {b}");
    }
    // 8 characters exactly is enough; 1024 is the most.
    let (s, _) = app
        .call(
            Method::POST,
            "/api/auth/register",
            None,
            Some(json!({"email": "min@example.com", "password": "12345678"})),
        )
        .await;
    assert_eq!(s, 201);
    let (s, _) = app
        .call(
            Method::POST,
            "/api/auth/register",
            None,
            Some(json!({"email": "max@example.com", "password": "x".repeat(1024)})),
        )
        .await;
    assert_eq!(s, 201);
}

#[tokio::test]
async fn malformed_or_untyped_bodies_are_400() {
    let app = app!("malformed_or_untyped_bodies_are_400");
    let r = app
        .http
        .post(app.url("/api/auth/register"))
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    let (s, b) = support::read(r).await;
    assert_eq!((s, code(&b)), (400, "bad_request"));

    let r = app
        .http
        .post(app.url("/api/auth/register"))
        .body(r#"{"email":"a@example.com","password":"long enough"}"#)
        .send()
        .await
        .unwrap();
    let (s, b) = support::read(r).await;
    assert_eq!((s, code(&b)), (400, "bad_request"));
    assert!(message(&b).contains("Content-Type"));
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let app = app!("oversized_bodies_are_413");
    let (s, b) = app
        .call(
            Method::POST,
            "/api/auth/register",
            None,
            Some(json!({"email": "a@example.com", "password": "x".repeat(100_000)})),
        )
        .await;
    assert_eq!((s, code(&b)), (413, "payload_too_large"));
}

#[tokio::test]
async fn login_issues_a_bearer_token_and_me_returns_the_account() {
    let app = app!("login_issues_a_bearer_token_and_me_returns_the_account");
    let token = app.user("carol@example.com").await;
    let (s, b) = app
        .call(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({"email": " CAROL@example.com", "password": "correct horse"})),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(b["token_type"], "Bearer");
    assert_eq!(b["expires_in"], 86_400);
    let (s, me) = app.call(Method::GET, "/api/me", Some(&token), None).await;
    assert_eq!(s, 200, "{me}");
    assert_eq!(me["email"], "carol@example.com");
    assert!(me["id"].is_string() && me["created_at"].is_string());
}

#[tokio::test]
async fn login_failures_are_401_with_one_message_for_both_causes() {
    let app = app!("login_failures_are_401_with_one_message_for_both_causes");
    app.user("dave@example.com").await;
    let (s1, wrong_pw) = app
        .call(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({"email": "dave@example.com", "password": "wrong horse"})),
        )
        .await;
    let (s2, no_user) = app
        .call(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({"email": "nobody@example.com", "password": "correct horse"})),
        )
        .await;
    assert_eq!((s1, s2), (401, 401));
    assert_eq!(wrong_pw, no_user);
    assert_eq!(code(&wrong_pw), "unauthorized");
}

fn sign(claims: Value, secret: &[u8], alg: Algorithm) -> String {
    jsonwebtoken::encode(
        &Header::new(alg),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

#[tokio::test]
async fn bad_tokens_are_401() {
    let app = app!("bad_tokens_are_401");
    let token = app.user("erin@example.com").await;
    let (_, me) = app.call(Method::GET, "/api/me", Some(&token), None).await;
    let sub = me["id"].as_str().unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();

    let expired = sign(
        json!({"sub": sub, "exp": now - 5, "iat": now - 100}),
        JWT_SECRET.as_bytes(),
        Algorithm::HS256,
    );
    let other_secret = sign(
        json!({"sub": sub, "exp": now + 600, "iat": now}),
        b"a-completely-different-secret-of-32-bytes!",
        Algorithm::HS256,
    );
    let wrong_alg = sign(
        json!({"sub": sub, "exp": now + 600, "iat": now}),
        JWT_SECRET.as_bytes(),
        Algorithm::HS512,
    );
    let no_exp = sign(
        json!({"sub": sub, "iat": now}),
        JWT_SECRET.as_bytes(),
        Algorithm::HS256,
    );
    // Same signature, payload swapped for one claiming a later expiry.
    let parts: Vec<&str> = token.split('.').collect();
    let forged_payload = {
        let claims = json!({"sub": sub, "exp": now + 999_999, "iat": now});
        base64_url(&serde_json::to_vec(&claims).unwrap())
    };
    let tampered = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
    let unsigned = format!(
        "{}.{}.",
        base64_url(br#"{"alg":"none","typ":"JWT"}"#),
        parts[1]
    );

    for (what, bad) in [
        ("expired", expired.as_str()),
        ("other secret", &other_secret),
        ("wrong algorithm", &wrong_alg),
        ("no exp", &no_exp),
        ("tampered payload", &tampered),
        ("alg none", &unsigned),
        ("garbage", "not.a.token"),
    ] {
        let (s, b) = app.call(Method::GET, "/api/me", Some(bad), None).await;
        assert_eq!(s, 401, "{what}: {b}");
        let (s, _) = app.call(Method::GET, "/api/tasks", Some(bad), None).await;
        assert_eq!(s, 401, "{what}");
    }
    let (s, b) = app.call(Method::GET, "/api/tasks", None, None).await;
    assert_eq!((s, code(&b)), (401, "unauthorized"));
    let r = app
        .http
        .get(app.url("/api/me"))
        .header("authorization", format!("Basic {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

/// Unpadded URL-safe base64, as JWT segments use.
fn base64_url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[tokio::test]
async fn token_lifetime_follows_token_ttl_seconds() {
    let Some(db) = support::fresh_database("token_lifetime_follows_token_ttl_seconds").await else {
        return;
    };
    let app = TestApp::spawn_with(&[
        ("DATABASE_URL", &db),
        ("JWT_SECRET", JWT_SECRET),
        ("TOKEN_TTL_SECONDS", "1"),
    ])
    .await;
    let token = app.user("short@example.com").await;
    assert_eq!(
        app.call(Method::GET, "/api/me", Some(&token), None).await.0,
        200
    );
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (s, b) = app.call(Method::GET, "/api/me", Some(&token), None).await;
    assert_eq!((s, code(&b)), (401, "unauthorized"));
}

#[tokio::test]
async fn task_lifecycle_create_read_update_complete_reopen_delete() {
    let app = app!("task_lifecycle_create_read_update_complete_reopen_delete");
    let t = app.user("frank@example.com").await;
    let (s, task) = app
        .call(
            Method::POST,
            "/api/tasks",
            Some(&t),
            Some(json!({"title": "  Buy milk ", "description": "2 litres"})),
        )
        .await;
    assert_eq!(s, 201, "{task}");
    assert_eq!(task["title"], "Buy milk");
    assert_eq!(task["description"], "2 litres");
    assert_eq!(task["completed"], false);
    let id = task["id"].as_i64().unwrap();
    for field in ["created_at", "updated_at"] {
        time::OffsetDateTime::parse(
            task[field].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
    }

    let (s, got) = app
        .call(Method::GET, &format!("/api/tasks/{id}"), Some(&t), None)
        .await;
    assert_eq!((s, &got), (200, &task));

    let (s, upd) = app
        .call(
            Method::PUT,
            &format!("/api/tasks/{id}"),
            Some(&t),
            Some(json!({"title": "Buy oat milk", "description": ""})),
        )
        .await;
    assert_eq!(s, 200, "{upd}");
    assert_eq!(upd["title"], "Buy oat milk");
    assert_eq!(upd["description"], Value::Null);
    assert_eq!(upd["completed"], false);

    let (s, done) = app
        .call(
            Method::PATCH,
            &format!("/api/tasks/{id}/complete"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!((s, &done["completed"]), (200, &json!(true)));

    // PUT without `completed` keeps it.
    let (_, upd) = app
        .call(
            Method::PUT,
            &format!("/api/tasks/{id}"),
            Some(&t),
            Some(json!({"title": "Buy oat milk"})),
        )
        .await;
    assert_eq!(upd["completed"], true);

    let (s, reopened) = app
        .call(
            Method::PATCH,
            &format!("/api/tasks/{id}/complete"),
            Some(&t),
            Some(json!({"completed": false})),
        )
        .await;
    assert_eq!((s, &reopened["completed"]), (200, &json!(false)));

    let (s, upd) = app
        .call(
            Method::PUT,
            &format!("/api/tasks/{id}"),
            Some(&t),
            Some(json!({"title": "Buy oat milk", "completed": true})),
        )
        .await;
    assert_eq!((s, &upd["completed"]), (200, &json!(true)));

    let (s, b) = app
        .call(Method::DELETE, &format!("/api/tasks/{id}"), Some(&t), None)
        .await;
    assert_eq!((s, b), (204, Value::Null));
    let (s, b) = app
        .call(Method::GET, &format!("/api/tasks/{id}"), Some(&t), None)
        .await;
    assert_eq!((s, code(&b)), (404, "not_found"));
    let (s, _) = app
        .call(Method::DELETE, &format!("/api/tasks/{id}"), Some(&t), None)
        .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn task_list_is_newest_first_and_filters_by_status() {
    let app = app!("task_list_is_newest_first_and_filters_by_status");
    let t = app.user("grace@example.com").await;
    let a = new_task(&app, &t, "first").await;
    let b = new_task(&app, &t, "second").await;
    let c = new_task(&app, &t, "third").await;
    app.call(
        Method::PATCH,
        &format!("/api/tasks/{}/complete", b["id"]),
        Some(&t),
        None,
    )
    .await;

    let titles = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|t| t["title"].as_str().unwrap().to_owned())
            .collect()
    };
    let (s, all) = app.call(Method::GET, "/api/tasks", Some(&t), None).await;
    assert_eq!(s, 200);
    assert_eq!(titles(&all), ["third", "second", "first"]);
    let (_, all2) = app
        .call(Method::GET, "/api/tasks?status=all", Some(&t), None)
        .await;
    assert_eq!(all, all2);
    let (_, pending) = app
        .call(Method::GET, "/api/tasks?status=pending", Some(&t), None)
        .await;
    assert_eq!(titles(&pending), ["third", "first"]);
    let (_, completed) = app
        .call(Method::GET, "/api/tasks?status=completed", Some(&t), None)
        .await;
    assert_eq!(titles(&completed), ["second"]);
    assert_eq!(completed[0]["id"], b["id"]);
    let _ = (a, c);

    let (s, e) = app
        .call(Method::GET, "/api/tasks?status=done", Some(&t), None)
        .await;
    assert_eq!((s, code(&e)), (400, "bad_request"));
    assert!(message(&e).contains("status"));
}

#[tokio::test]
async fn task_inputs_are_validated_naming_the_field() {
    let app = app!("task_inputs_are_validated_naming_the_field");
    let t = app.user("heidi@example.com").await;
    let cases = [
        (json!({"title": ""}), "title"),
        (json!({"title": "   "}), "title"),
        (json!({"title": "x".repeat(201)}), "title"),
        (
            json!({"title": "ok", "description": "d".repeat(1001)}),
            "description",
        ),
        (json!({}), "title"),
        (json!({"title": 42}), "title"),
        (json!({"title": "ok", "priority": 1}), "priority"),
    ];
    for (body, field) in &cases {
        let (s, b) = app
            .call(Method::POST, "/api/tasks", Some(&t), Some(body.clone()))
            .await;
        assert_eq!((s, code(&b)), (422, "validation_error"), "{body}");
        assert!(message(&b).contains(field), "{body} → {b}");
    }
    let ok = new_task(&app, &t, &"x".repeat(200)).await;
    let id = ok["id"].as_i64().unwrap();
    let (s, b) = app
        .call(
            Method::POST,
            "/api/tasks",
            Some(&t),
            Some(json!({"title": "ok", "description": "d".repeat(1000)})),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    for (body, field) in &cases {
        let (s, b) = app
            .call(
                Method::PUT,
                &format!("/api/tasks/{id}"),
                Some(&t),
                Some(body.clone()),
            )
            .await;
        assert_eq!((s, code(&b)), (422, "validation_error"), "PUT {body}");
        assert!(message(&b).contains(field), "PUT {body} → {b}");
    }
    let (s, b) = app
        .call(
            Method::PATCH,
            &format!("/api/tasks/{id}/complete"),
            Some(&t),
            Some(json!({"completed": "yes"})),
        )
        .await;
    assert_eq!((s, code(&b)), (422, "validation_error"));
    let (s, b) = app
        .call(Method::GET, "/api/tasks/abc", Some(&t), None)
        .await;
    assert_eq!((s, code(&b)), (400, "bad_request"));
    let (s, _) = app
        .call(Method::GET, "/api/tasks/999999999", Some(&t), None)
        .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn users_never_see_or_change_each_others_tasks() {
    let app = app!("users_never_see_or_change_each_others_tasks");
    let alice = app.user("alice@example.com").await;
    let mallory = app.user("mallory@example.com").await;
    let task = new_task(&app, &alice, "alice's secret").await;
    let id = task["id"].as_i64().unwrap();
    let path = format!("/api/tasks/{id}");

    let (_, list) = app
        .call(Method::GET, "/api/tasks", Some(&mallory), None)
        .await;
    assert_eq!(list, json!([]));
    let missing = app
        .call(Method::GET, "/api/tasks/999999999", Some(&mallory), None)
        .await;
    for (method, p, body) in [
        (Method::GET, path.clone(), None),
        (Method::PUT, path.clone(), Some(json!({"title": "pwned"}))),
        (Method::DELETE, path.clone(), None),
        (Method::PATCH, format!("{path}/complete"), None),
    ] {
        let (s, b) = app.call(method.clone(), &p, Some(&mallory), body).await;
        assert_eq!(s, 404, "{method} {p}");
        assert_eq!(b, missing.1, "must look exactly like a missing task");
    }
    let (s, still) = app.call(Method::GET, &path, Some(&alice), None).await;
    assert_eq!((s, &still), (200, &task));
}

#[tokio::test]
async fn unknown_routes_are_json_404_and_request_ids_are_returned() {
    let app = app!("unknown_routes_are_json_404_and_request_ids_are_returned");
    let r = app.http.get(app.url("/nope")).send().await.unwrap();
    assert!(r.headers().contains_key("x-request-id"));
    let (s, b) = support::read(r).await;
    assert_eq!((s, code(&b)), (404, "not_found"));
    let r = app
        .http
        .get(app.url("/health"))
        .header("x-request-id", "my-trace-42")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "my-trace-42");
}

// ---------------------------------------------------------------------------------------------
// Hostile input: always a clear 4xx with the JSON error body, never a 5xx.

/// Sends raw bytes as one HTTP/1.1 request and returns the status line and the whole answer.
async fn raw_http(app: &TestApp, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .unwrap();
    s.write_all(request).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(20), s.read_to_end(&mut buf)).await;
    String::from_utf8_lossy(&buf).into_owned()
}

#[tokio::test]
async fn wrong_content_types_and_undecodable_bodies_are_400() {
    let app = app!("wrong_content_types_and_undecodable_bodies_are_400");
    let t = app.user("types@example.com").await;
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/xml",
    ] {
        let r = app
            .http
            .post(app.url("/api/tasks"))
            .bearer_auth(&t)
            .header("content-type", ct)
            .body(r#"{"title":"x"}"#)
            .send()
            .await
            .unwrap();
        let (s, b) = support::read(r).await;
        assert_eq!((s, code(&b)), (400, "bad_request"), "{ct}: {b}");
    }
    // Not UTF-8, truncated, empty, a bare value, a deep nesting bomb.
    let bodies: Vec<Vec<u8>> = vec![
        b"{\"title\":\"\xff\xfe\"}".to_vec(),
        b"{\"title\":".to_vec(),
        Vec::new(),
        b"null".to_vec(),
        "[".repeat(20_000).into_bytes(),
        b"{\"title\":\"a\"}{\"title\":\"b\"}".to_vec(),
    ];
    for body in bodies {
        let r = app
            .http
            .post(app.url("/api/tasks"))
            .bearer_auth(&t)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let (s, b) = support::read(r).await;
        assert!(
            s == 400 || s == 422,
            "{:?} → {s} {b}",
            String::from_utf8_lossy(&body[..body.len().min(40)])
        );
    }
    // NUL characters, which PostgreSQL cannot store, are refused naming the field.
    for (path, body, field) in [
        ("/api/tasks", json!({"title": "a\u{0}b"}), "title"),
        (
            "/api/tasks",
            json!({"title": "ok", "description": "a\u{0}b"}),
            "description",
        ),
        ("/api/chat", json!({"message": "add a\u{0}b"}), "message"),
    ] {
        let (s, b) = app.call(Method::POST, path, Some(&t), Some(body)).await;
        assert_eq!((s, code(&b)), (422, "validation_error"), "{path}: {b}");
        assert!(message(&b).contains(field), "{b}");
    }
    let (s, b) = app
        .call(
            Method::POST,
            "/api/auth/register",
            None,
            Some(json!({"email": "a\u{0}@example.com", "password": "long enough"})),
        )
        .await;
    assert_eq!((s, code(&b)), (422, "validation_error"), "{b}");
    let (s, b) = app
        .call(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({"email": "a\u{0}@example.com", "password": "long enough"})),
        )
        .await;
    assert_eq!((s, code(&b)), (401, "unauthorized"), "{b}");
}

#[tokio::test]
async fn oversized_bodies_are_413_however_they_are_sent() {
    let app = app!("oversized_bodies_are_413_however_they_are_sent");
    let t = app.user("big@example.com").await;
    let id = new_task(&app, &t, "target").await["id"].as_i64().unwrap();
    let big = format!(r#"{{"completed":true,"pad":"{}"}}"#, "x".repeat(200_000));
    // Chunked, no Content-Length: the limit applies while reading.
    let mut req = format!(
        "POST /api/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {t}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    for chunk in big.as_bytes().chunks(8192) {
        req.push_str(&format!(
            "{:x}\r\n{}\r\n",
            chunk.len(),
            std::str::from_utf8(chunk).unwrap()
        ));
    }
    req.push_str("0\r\n\r\n");
    let answer = raw_http(&app, req.as_bytes()).await;
    assert!(
        answer.starts_with("HTTP/1.1 413"),
        "{}",
        &answer[..answer.len().min(300)]
    );
    assert!(answer.contains("\"payload_too_large\""), "{answer}");
    // The raw-body endpoint too.
    let r = app
        .http
        .patch(app.url(&format!("/api/tasks/{id}/complete")))
        .bearer_auth(&t)
        .body(big)
        .send()
        .await
        .unwrap();
    let (s, b) = support::read(r).await;
    assert_eq!((s, code(&b)), (413, "payload_too_large"), "{b}");
    // Too many headers: refused by the HTTP layer with a 4xx, the connection closed.
    let mut req = String::from("GET /health HTTP/1.1\r\nHost: x\r\n");
    for i in 0..200 {
        req.push_str(&format!("X-H{i}: v\r\n"));
    }
    req.push_str("\r\n");
    let answer = raw_http(&app, req.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
}

#[tokio::test]
async fn hostile_paths_and_queries_are_400_or_404() {
    let app = app!("hostile_paths_and_queries_are_400_or_404");
    let t = app.user("paths@example.com").await;
    new_task(&app, &t, "exists").await;
    for (path, want) in [
        ("/api/tasks/1%20OR%201=1", 400),
        ("/api/tasks/1;DROP%20TABLE%20tasks", 400),
        ("/api/tasks/%FF", 400),
        ("/api/tasks/99999999999999999999", 400),
        ("/api/tasks/-1", 404),
        ("/api/tasks/0", 404),
        ("/api/tasks/1/complete/extra", 404),
        ("/api/conversations/not-a-uuid", 400),
        (
            "/api/conversations/00000000-0000-0000-0000-000000000000",
            404,
        ),
        ("/api/tasks?status=pending%27%20OR%20%271%27=%271", 400),
        ("/api/tasks?status=all&status=pending", 400),
        ("/api/tasks?status=%FF", 400),
        ("/api/tasks?limit=1%3B--", 400),
        ("/api/%2e%2e/etc/passwd", 404),
    ] {
        let (s, b) = app.call(Method::GET, path, Some(&t), None).await;
        assert_eq!(s, want, "{path}: {b}");
    }
    // The tasks are intact.
    let (_, list) = app.call(Method::GET, "/api/tasks", Some(&t), None).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    // A wrong method names the allowed ones, with the JSON body.
    let r = app.http.delete(app.url("/api/me")).send().await.unwrap();
    assert!(r.headers().contains_key("allow"));
    let (s, b) = support::read(r).await;
    assert_eq!((s, code(&b)), (405, "method_not_allowed"));
}

#[tokio::test]
async fn forged_tokens_and_other_users_ids_never_reach_data() {
    let app = app!("forged_tokens_and_other_users_ids_never_reach_data");
    let alice = app.user("alice@example.com").await;
    let mallory = app.user("mallory@example.com").await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    // Correctly signed (as only a leaked secret allows), for an account that does not exist.
    let ghost = sign(
        json!({"sub": uuid::Uuid::new_v4().to_string(), "exp": now + 600, "iat": now}),
        JWT_SECRET.as_bytes(),
        Algorithm::HS256,
    );
    let (s, _) = app.call(Method::GET, "/api/me", Some(&ghost), None).await;
    assert_eq!(s, 401);
    let (s, b) = app
        .call(
            Method::POST,
            "/api/tasks",
            Some(&ghost),
            Some(json!({"title": "x"})),
        )
        .await;
    assert_eq!((s, code(&b)), (401, "unauthorized"), "{b}");
    let (s, b) = app
        .call(
            Method::POST,
            "/api/chat",
            Some(&ghost),
            Some(json!({"message": "add x"})),
        )
        .await;
    assert_eq!((s, code(&b)), (401, "unauthorized"), "{b}");
    let (s, b) = app
        .call(Method::GET, "/api/tasks", Some(&ghost), None)
        .await;
    assert_eq!((s, b), (200, json!([])));
    // A subject that is not a UUID, a huge token, a header that is not text.
    let not_uuid = sign(
        json!({"sub": "1 OR 1=1", "exp": now + 600, "iat": now}),
        JWT_SECRET.as_bytes(),
        Algorithm::HS256,
    );
    for bad in [not_uuid, "x".repeat(16_000)] {
        let (s, _) = app.call(Method::GET, "/api/tasks", Some(&bad), None).await;
        assert_eq!(s, 401);
    }
    let r = app
        .http
        .get(app.url("/api/tasks"))
        .header(
            "authorization",
            reqwest::header::HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Alice's conversation is invisible to Mallory, in every way she can name it.
    let (_, b) = app
        .call(
            Method::POST,
            "/api/chat",
            Some(&alice),
            Some(json!({"message": "add secret plan"})),
        )
        .await;
    let conv = b["conversation_id"].as_str().unwrap().to_owned();
    let path = format!("/api/conversations/{conv}");
    for (method, p, body) in [
        (Method::GET, path.clone(), None),
        (Method::DELETE, path.clone(), None),
        (
            Method::POST,
            "/api/chat".to_owned(),
            Some(json!({"message": "list", "conversation_id": conv})),
        ),
    ] {
        let (s, b) = app.call(method.clone(), &p, Some(&mallory), body).await;
        assert_eq!((s, code(&b)), (404, "not_found"), "{method} {p}: {b}");
    }
    let (_, list) = app
        .call(Method::GET, "/api/conversations", Some(&mallory), None)
        .await;
    assert_eq!(list, json!([]));
    let (s, c) = app.call(Method::GET, &path, Some(&alice), None).await;
    assert_eq!(s, 200);
    assert_eq!(c["messages"].as_array().unwrap().len(), 2);
}

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

/// `POST /api/auth/login` as `email` with `password`, from `xff` when given.
async fn login(
    app: &TestApp,
    email: &str,
    password: &str,
    xff: Option<&str>,
) -> (u16, Option<u64>, Value) {
    post(app, "/api/auth/login", &login_body(email, password), xff).await
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
        let r = login(&app, "target@example.com", "guess guess", None).await;
        assert_eq!(r.0, 401, "{}", r.2);
    }
    // Even the right password is refused now, and the email's case changes nothing.
    let r = login(&app, "TARGET@example.com", "correct horse", None).await;
    assert_throttled(&r, "sign-in attempts for this account", 20);
    // Unknown emails are throttled the same way (no account enumeration by status).
    for _ in 0..3 {
        login(&app, "ghost@example.com", "guess guess", None).await;
    }
    let r = login(&app, "ghost@example.com", "guess guess", None).await;
    assert_throttled(&r, "for this account", 20);
    // Another account is not affected.
    let r = login(&app, "other@example.com", "correct horse", None).await;
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
        let r = login(
            &app,
            &format!("u{i}@example.com"),
            "guess guess",
            Some(&xff),
        )
        .await;
        assert_eq!(r.0, 401, "{}", r.2);
    }
    let r = login(&app, "u9@example.com", "guess guess", Some("203.0.113.99")).await;
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
        let r = login(&app, "a@example.com", "guess guess", Some("203.0.113.1")).await;
        assert_eq!(r.0, 401, "{}", r.2);
    }
    let r = login(&app, "a@example.com", "guess guess", Some("203.0.113.1")).await;
    assert_throttled(&r, "from this address", 40);
    // A forged entry left of the proxy's own does not help the throttled client.
    let r = login(
        &app,
        "a@example.com",
        "guess guess",
        Some("198.51.100.7, 203.0.113.1"),
    )
    .await;
    assert_eq!(r.0, 429, "{}", r.2);
    // Another client behind the same proxy is unaffected.
    let r = login(&app, "b@example.com", "guess guess", Some("203.0.113.2")).await;
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

/// GET `path` with `token`: status, `X-Next-Cursor`, `Link` and body.
async fn get_page(
    app: &TestApp,
    path: &str,
    token: &str,
) -> (u16, Option<String>, Option<String>, Value) {
    let r = app
        .http
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let header = |name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let (cursor, link) = (header("x-next-cursor"), header("link"));
    let (s, b) = support::read(r).await;
    (s, cursor, link, b)
}

fn titles(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap().to_owned())
        .collect()
}

async fn add_task(app: &TestApp, token: &str, title: &str) -> (u16, Value) {
    app.call(
        Method::POST,
        "/api/tasks",
        Some(token),
        Some(json!({ "title": title })),
    )
    .await
}

#[tokio::test]
async fn task_lists_page_newest_first_with_an_opaque_cursor() {
    let app = app_with!(
        "task_lists_page_newest_first_with_an_opaque_cursor",
        &[("PAGE_SIZE_DEFAULT", "2"), ("PAGE_SIZE_MAX", "3")]
    );
    let t = app.user("pager@example.com").await;
    for i in 1..=5 {
        assert_eq!(add_task(&app, &t, &format!("t{i}")).await.0, 201);
    }
    let (s, cursor, link, b) = get_page(&app, "/api/tasks", &t).await;
    assert_eq!(s, 200);
    assert_eq!(titles(&b), ["t5", "t4"]);
    let cursor = cursor.expect("a next page");
    let link = link.unwrap();
    assert_eq!(
        link,
        format!("</api/tasks?limit=2&cursor={cursor}>; rel=\"next\"")
    );
    // A task added meanwhile does not shift the pages after the first.
    add_task(&app, &t, "t6").await;
    let (_, cursor2, _, b) = get_page(&app, &format!("/api/tasks?cursor={cursor}"), &t).await;
    assert_eq!(titles(&b), ["t3", "t2"]);
    let (_, cursor3, link3, b) =
        get_page(&app, &format!("/api/tasks?cursor={}", cursor2.unwrap()), &t).await;
    assert_eq!(titles(&b), ["t1"]);
    assert_eq!((cursor3, link3), (None, None), "the last page has no next");

    // limit up to PAGE_SIZE_MAX; the filter stays in the next link.
    let (_, _, link, b) = get_page(&app, "/api/tasks?limit=3&status=pending", &t).await;
    assert_eq!(titles(&b), ["t6", "t5", "t4"]);
    assert!(
        link.unwrap()
            .starts_with("</api/tasks?status=pending&limit=3&cursor=")
    );
    for bad in ["limit=4", "limit=0", "limit=-1", "limit=abc", "limit=1e3"] {
        let (s, _, _, b) = get_page(&app, &format!("/api/tasks?{bad}"), &t).await;
        assert_eq!((s, code(&b)), (400, "bad_request"), "{bad}: {b}");
        assert!(
            message(&b).contains("limit must be a whole number from 1 to 3"),
            "{b}"
        );
    }
    for bad in ["garbage", "%00", "djE6eDox", "A%27%20OR%201%3D1--"] {
        let (s, _, _, b) = get_page(&app, &format!("/api/tasks?cursor={bad}"), &t).await;
        assert_eq!((s, code(&b)), (400, "bad_request"), "{bad}: {b}");
        assert!(message(&b).contains("cursor"), "{b}");
    }
    // Another user's cursor only ever pages through the caller's own tasks.
    let other = app.user("other@example.com").await;
    let (_, _, _, b) = get_page(&app, &format!("/api/tasks?cursor={cursor}"), &other).await;
    assert_eq!(b, json!([]));
}

/// One chat turn; returns the conversation id.
async fn chat_turn(app: &TestApp, token: &str, message: &str, conv: Option<&str>) -> (u16, Value) {
    let mut body = json!({ "message": message });
    if let Some(c) = conv {
        body["conversation_id"] = json!(c);
    }
    app.call(Method::POST, "/api/chat", Some(token), Some(body))
        .await
}

#[tokio::test]
async fn conversations_and_their_messages_page_too() {
    let app = app_with!(
        "conversations_and_their_messages_page_too",
        &[("PAGE_SIZE_DEFAULT", "2")]
    );
    let t = app.user("talker@example.com").await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let (s, b) = chat_turn(&app, &t, &format!("hello {i}"), None).await;
        assert_eq!(s, 200, "{b}");
        ids.push(b["conversation_id"].as_str().unwrap().to_owned());
    }
    let (s, cursor, _, b) = get_page(&app, "/api/conversations", &t).await;
    assert_eq!(s, 200);
    let got: Vec<&str> = b
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, [ids[2].as_str(), ids[1].as_str()]);
    let (_, cursor, _, b) = get_page(
        &app,
        &format!("/api/conversations?cursor={}", cursor.unwrap()),
        &t,
    )
    .await;
    assert_eq!(b.as_array().unwrap().len(), 1);
    assert_eq!(b[0]["id"], ids[0].as_str());
    assert_eq!(cursor, None);

    // Three turns: six messages; pages are the latest first, each oldest first.
    let conv = ids[0].clone();
    chat_turn(&app, &t, "second", Some(&conv)).await;
    chat_turn(&app, &t, "third", Some(&conv)).await;
    let (s, cursor, _, b) = get_page(&app, &format!("/api/conversations/{conv}"), &t).await;
    assert_eq!(s, 200, "{b}");
    let msgs = b["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 2);
    assert_eq!(
        (msgs[0]["role"].as_str(), msgs[0]["content"].as_str()),
        (Some("user"), Some("third"))
    );
    assert_eq!(msgs[1]["role"], "assistant");
    let cursor = cursor.unwrap();
    assert_eq!(b["next_cursor"], cursor.as_str());
    let (_, _, _, older) = get_page(
        &app,
        &format!("/api/conversations/{conv}?cursor={cursor}&limit=3"),
        &t,
    )
    .await;
    let contents: Vec<&str> = older["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(contents.len(), 3);
    assert_eq!(contents[1], "second");
    let oldest = older["next_cursor"].as_str().unwrap();
    let (_, cursor, _, first) = get_page(
        &app,
        &format!("/api/conversations/{conv}?cursor={oldest}"),
        &t,
    )
    .await;
    assert_eq!(first["messages"].as_array().unwrap().len(), 1);
    assert_eq!(first["messages"][0]["content"], "hello 0");
    assert_eq!((cursor, &first["next_cursor"]), (None, &Value::Null));
}

#[tokio::test]
async fn per_user_caps_are_409_naming_the_cap() {
    let app = app_with!(
        "per_user_caps_are_409_naming_the_cap",
        &[
            ("MAX_TASKS_PER_USER", "3"),
            ("MAX_CONVERSATIONS_PER_USER", "2"),
            ("MAX_MESSAGES_PER_CONVERSATION", "4")
        ]
    );
    let t = app.user("capped@example.com").await;
    // Concurrent creates never pass the cap.
    let calls: Vec<_> = (0..8)
        .map(|i| {
            let req = app
                .http
                .post(app.url("/api/tasks"))
                .bearer_auth(&t)
                .json(&json!({ "title": format!("task {i}") }));
            tokio::spawn(send(req))
        })
        .collect();
    let mut statuses = Vec::new();
    for c in calls {
        let (s, _, b) = c.await.unwrap();
        if s == 409 {
            assert_eq!(code(&b), "limit_reached");
            assert!(message(&b).contains("limit of 3 tasks"), "{b}");
            assert!(message(&b).contains("MAX_TASKS_PER_USER"), "{b}");
        }
        statuses.push(s);
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 201, 201, 409, 409, 409, 409, 409]);
    // The assistant is bound by the same cap, and says so.
    let (s, b) = chat_turn(&app, &t, "add one more", None).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["actions"][0]["ok"], false);
    assert!(
        b["reply"].as_str().unwrap().contains("limit of 3 tasks"),
        "{b}"
    );
    let conv = b["conversation_id"].as_str().unwrap().to_owned();
    // Deleting one makes room.
    let (_, list) = app.call(Method::GET, "/api/tasks", Some(&t), None).await;
    let id = list[0]["id"].as_i64().unwrap();
    app.call(Method::DELETE, &format!("/api/tasks/{id}"), Some(&t), None)
        .await;
    assert_eq!(add_task(&app, &t, "fits again").await.0, 201);

    // Messages: two turns of two fit in 4, the third is refused.
    let (s, _) = chat_turn(&app, &t, "list", Some(&conv)).await;
    assert_eq!(s, 200);
    let (s, b) = chat_turn(&app, &t, "list", Some(&conv)).await;
    assert_eq!((s, code(&b)), (409, "limit_reached"), "{b}");
    assert!(message(&b).contains("limit of 4 messages"), "{b}");
    assert!(message(&b).contains("start a new chat"), "{b}");

    // Conversations: the second fits, the third is refused.
    assert_eq!(chat_turn(&app, &t, "list", None).await.0, 200);
    let (s, b) = chat_turn(&app, &t, "list", None).await;
    assert_eq!((s, code(&b)), (409, "limit_reached"), "{b}");
    assert!(message(&b).contains("limit of 2 conversations"), "{b}");
}

/// A raw HTTP/1.1 exchange: writes `request`, then reads until the server closes or `limit`
/// passes; returns what was read and whether the connection closed.
async fn raw(base: &str, request: &[u8], limit: std::time::Duration) -> (String, bool) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
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

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let app = app_with!(
        "a_client_that_never_finishes_its_headers_is_disconnected",
        &[("HEADER_READ_TIMEOUT_SECONDS", "1")]
    );
    // No blank line: the head never ends.
    let (_, closed) = raw(
        &app.base,
        b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n",
        std::time::Duration::from_secs(20),
    )
    .await;
    assert!(closed, "the server kept a half-sent request open");
    // An idle keep-alive connection is closed the same way; the server still serves.
    let (text, closed) = raw(
        &app.base,
        b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
        std::time::Duration::from_secs(20),
    )
    .await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(closed, "an idle connection stayed open");
}

#[tokio::test]
async fn a_body_sent_too_slowly_is_408_with_a_json_error() {
    let app = app_with!(
        "a_body_sent_too_slowly_is_408_with_a_json_error",
        &[("REQUEST_TIMEOUT_SECONDS", "1")]
    );
    let (text, _) = raw(
        &app.base,
        b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"email\":",
        std::time::Duration::from_secs(20),
    )
    .await;
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("\"request_timeout\""), "{text}");
}

#[tokio::test]
async fn shutdown_drains_within_its_bound_even_with_a_stuck_request() {
    let Some(db) =
        support::fresh_database("shutdown_drains_within_its_bound_even_with_a_stuck_request").await
    else {
        return;
    };
    let config = support::config(&[
        ("DATABASE_URL", &db),
        ("JWT_SECRET", JWT_SECRET),
        ("SHUTDOWN_DRAIN_SECONDS", "1"),
        ("REQUEST_TIMEOUT_SECONDS", "600"),
        ("HEADER_READ_TIMEOUT_SECONDS", "300"),
    ]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(todo_backend::serve(config, listener, async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();
    support::wait_ready(&http, &base).await;
    // A request whose body never completes: in flight until the drain gives up on it.
    let stuck = tokio::spawn({
        let base = base.clone();
        async move {
            raw(
                &base,
                b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
                std::time::Duration::from_secs(60),
            )
            .await
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let _ = stop.send(());
    let done = tokio::time::timeout(std::time::Duration::from_secs(15), server).await;
    assert!(
        matches!(done, Ok(Ok(Ok(())))),
        "serve did not return within the drain bound: {done:?}"
    );
    let (_, closed) = stuck.await.unwrap();
    assert!(closed, "the stuck connection was left open");
    // The listener is gone.
    assert!(http.get(format!("{base}/health")).send().await.is_err());
}

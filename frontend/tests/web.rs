//! The frontend through its HTML forms, against a real `todo-backend` process on a real
//! PostgreSQL: the task life cycle, CSRF, cookies, readable errors, readiness.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use support::{Browser, Frontend, Page, hidden_field, stack, unique_email};

const PASSWORD: &str = "correct horse battery";

/// The id of the (first) task titled `title` on a task page.
fn task_id(page: &Page, title: &str) -> String {
    let pos = page
        .html
        .find(&format!("<span class=\"task-title\">{title}</span>"))
        .unwrap_or_else(|| panic!("task {title:?} not listed:\n{}", page.html));
    let before = &page.html[..pos];
    let start = before.rfind("id=\"task-").unwrap() + "id=\"task-".len();
    before[start..].split('"').next().unwrap().to_owned()
}

fn lists(page: &Page, title: &str) -> bool {
    page.html
        .contains(&format!("<span class=\"task-title\">{title}</span>"))
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_up_sign_in_add_edit_complete_delete_through_forms() {
    let Some(stack) = stack(
        "sign_up_sign_in_add_edit_complete_delete_through_forms",
        false,
    )
    .await
    else {
        return;
    };
    let browser = Browser::new(&stack.frontend.url);
    let email = unique_email("flow");

    // Sign up lands on the (empty) list, signed in.
    let page = browser.sign_up(&email, PASSWORD).await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.url.ends_with("/tasks"), "{}", page.url);
    page.assert_shows("Welcome! Your account is ready.");
    page.assert_shows(&email);
    page.assert_shows("Nothing here yet");

    // The flash is shown once only.
    let again = browser.get("/tasks").await;
    assert!(!again.html.contains("Welcome!"));

    // Sign out, then sign in again.
    let page = browser.submit(&again, "/signout", &[]).await;
    assert!(page.url.ends_with("/signin"), "{}", page.url);
    page.assert_shows("You have signed out.");
    assert!(browser.cookie("todo_session").is_none());
    assert!(browser.get("/tasks").await.url.ends_with("/signin"));
    let page = browser
        .submit(
            &page,
            "/signin",
            &[("email", &email.to_uppercase()), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.url.ends_with("/tasks"), "{}", page.url);

    // Add.
    let page = browser
        .submit(
            &page,
            "/tasks",
            &[
                ("title", "Buy milk"),
                ("description", "Oat, 2 litres"),
                ("status", "all"),
            ],
        )
        .await;
    page.assert_shows("Added “Buy milk”.");
    assert!(lists(&page, "Buy milk"));
    page.assert_shows("Oat, 2 litres");
    let id = task_id(&page, "Buy milk");

    // Edit.
    let form = browser.get(&format!("/tasks/{id}/edit")).await;
    assert_eq!(form.status, 200);
    assert_eq!(
        hidden_field(&form.html, "title").as_deref(),
        Some("Buy milk")
    );
    let page = browser
        .submit(
            &form,
            &format!("/tasks/{id}"),
            &[
                ("title", "Buy oat milk"),
                ("description", "2 litres"),
                ("status", "all"),
            ],
        )
        .await;
    page.assert_shows("Saved “Buy oat milk”.");
    assert!(lists(&page, "Buy oat milk"));
    assert!(!lists(&page, "Buy milk"));

    // Complete: it moves from the pending filter to the completed one.
    let page = browser
        .submit(
            &page,
            &format!("/tasks/{id}/complete"),
            &[("completed", "true"), ("status", "pending")],
        )
        .await;
    assert!(page.url.ends_with("/tasks?status=pending"), "{}", page.url);
    page.assert_shows("Nice! “Buy oat milk” is done.");
    assert!(!lists(&page, "Buy oat milk"));
    let done = browser.get("/tasks?status=completed").await;
    assert!(lists(&done, "Buy oat milk"));
    assert!(done.html.contains("class=\"task done\""));

    // Reopen.
    let page = browser
        .submit(
            &done,
            &format!("/tasks/{id}/complete"),
            &[("completed", "false"), ("status", "completed")],
        )
        .await;
    page.assert_shows("Reopened “Buy oat milk”.");
    assert!(!lists(&page, "Buy oat milk"));
    assert!(lists(
        &browser.get("/tasks?status=pending").await,
        "Buy oat milk"
    ));

    // Delete.
    let page = browser
        .submit(&page, &format!("/tasks/{id}/delete"), &[("status", "all")])
        .await;
    page.assert_shows("Task deleted.");
    assert!(!lists(&page, "Buy oat milk"));
    page.assert_shows("Nothing here yet");
}

#[tokio::test(flavor = "multi_thread")]
async fn forms_without_a_valid_csrf_token_are_rejected() {
    let Some(stack) = stack("forms_without_a_valid_csrf_token_are_rejected", false).await else {
        return;
    };
    let browser = Browser::new(&stack.frontend.url);
    let list = browser.sign_up(&unique_email("csrf"), PASSWORD).await;
    let good = list.csrf();

    // No field.
    let page = browser.post_raw("/tasks", &[("title", "no token")]).await;
    assert_eq!(page.status, 403);
    page.assert_shows("This form has expired");
    // Wrong field.
    let wrong = "0".repeat(64);
    let page = browser
        .post_raw(
            "/tasks",
            &[("csrf_token", &wrong), ("title", "wrong token")],
        )
        .await;
    assert_eq!(page.status, 403);
    // Right field but no cookie (as a cross-site attacker who read an old page would send).
    let stranger = Browser::new(&stack.frontend.url);
    // Copy only the session cookie, not the CSRF cookie.
    let session = browser.cookie("todo_session").unwrap();
    let res = stranger
        .http
        .post(format!("{}/tasks", stack.frontend.url))
        .header("cookie", format!("todo_session={session}"))
        .form(&[("csrf_token", good.as_str()), ("title", "no cookie")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    // Sign-out is protected too.
    assert_eq!(browser.post_raw("/signout", &[]).await.status, 403);
    assert!(browser.cookie("todo_session").is_some());

    // None of them changed anything; the genuine form still works.
    let page = browser.get("/tasks").await;
    for title in ["no token", "wrong token", "no cookie"] {
        assert!(!lists(&page, title), "{title} was created");
    }
    let page = browser
        .post_raw("/tasks", &[("csrf_token", &good), ("title", "with token")])
        .await;
    assert_eq!(page.status, 200);
    assert!(lists(&page, "with token"));
}

fn set_cookies(res: &reqwest::Response) -> Vec<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

fn cookie_named<'a>(cookies: &'a [String], name: &str) -> &'a str {
    cookies
        .iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie in {cookies:?}"))
}

/// Signs up through a client without a cookie store and returns every Set-Cookie seen.
async fn raw_sign_up(frontend: &str) -> (Vec<String>, String) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = http.get(format!("{frontend}/signup")).send().await.unwrap();
    let mut cookies = set_cookies(&res);
    let csrf_cookie = cookie_named(&cookies, "todo_csrf")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let html = res.text().await.unwrap();
    let token = hidden_field(&html, "csrf_token").unwrap();
    let email = unique_email("cookie");
    let res = http
        .post(format!("{frontend}/signup"))
        .header("cookie", &csrf_cookie)
        .form(&[
            ("csrf_token", token.as_str()),
            ("email", &email),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    cookies.extend(set_cookies(&res));
    let session = cookie_named(&cookies, "todo_session")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let res = http
        .get(format!("{frontend}/tasks"))
        .header("cookie", format!("{csrf_cookie}; {session}"))
        .send()
        .await
        .unwrap();
    let html = res.text().await.unwrap();
    (cookies, format!("{session}\n{html}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn cookies_are_http_only_same_site_lax_and_secure_when_configured() {
    let Some(stack) = stack(
        "cookies_are_http_only_same_site_lax_and_secure_when_configured",
        false,
    )
    .await
    else {
        return;
    };
    let (cookies, session_and_page) = raw_sign_up(&stack.frontend.url).await;
    for name in ["todo_csrf", "todo_session", "todo_flash"] {
        let c = cookie_named(&cookies, name);
        assert!(c.contains("HttpOnly"), "{c}");
        assert!(c.contains("SameSite=Lax"), "{c}");
        assert!(c.contains("Path=/"), "{c}");
        assert!(!c.contains("Secure"), "{c}");
    }
    // The token lives only in the cookie: the page never contains it.
    let (session, page) = session_and_page.split_once('\n').unwrap();
    let token = session.trim_start_matches("todo_session=");
    assert!(token.len() > 20, "{session}");
    assert!(!page.contains(token));
    assert!(page.contains("Your tasks"));

    let secure = Frontend::start(&stack.backend.url, true).await;
    let (cookies, _) = raw_sign_up(&secure.url).await;
    for name in ["todo_csrf", "todo_session", "todo_flash"] {
        let c = cookie_named(&cookies, name);
        assert!(
            c.contains("Secure") && c.contains("HttpOnly") && c.contains("SameSite=Lax"),
            "{c}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn backend_errors_are_shown_as_readable_messages() {
    let Some(stack) = stack("backend_errors_are_shown_as_readable_messages", false).await else {
        return;
    };
    let browser = Browser::new(&stack.frontend.url);
    let email = unique_email("errors");
    let form = browser.get("/signup").await;

    let page = browser
        .submit(
            &form,
            "/signup",
            &[
                ("email", &email),
                ("password", "short"),
                ("password_confirm", "short"),
            ],
        )
        .await;
    assert_eq!(page.status, 422);
    assert!(
        page.html.to_lowercase().contains("password"),
        "{}",
        page.html
    );
    page.assert_shows(&email); // what was typed is kept

    let page = browser
        .submit(
            &form,
            "/signup",
            &[
                ("email", &email),
                ("password", PASSWORD),
                ("password_confirm", "different!"),
            ],
        )
        .await;
    assert_eq!(page.status, 422);
    page.assert_shows("The two passwords do not match.");

    let page = browser
        .submit(
            &form,
            "/signup",
            &[("email", "not-an-email"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(page.status, 422);
    assert!(page.html.to_lowercase().contains("email"), "{}", page.html);

    let page = browser.sign_up(&email, PASSWORD).await;
    assert_eq!(page.status, 200);
    let other = Browser::new(&stack.frontend.url);
    let page = other.sign_up(&email, PASSWORD).await;
    assert_eq!(page.status, 409);
    page.assert_shows("That email is already registered. Try signing in instead.");

    let form = other.get("/signin").await;
    let page = other
        .submit(
            &form,
            "/signin",
            &[("email", &email), ("password", "wrong password")],
        )
        .await;
    assert_eq!(page.status, 401);
    page.assert_shows("Wrong email or password.");

    // A task title over 200 characters comes back as a message naming the field.
    let list = browser.get("/tasks").await;
    let long = "x".repeat(201);
    let page = browser.submit(&list, "/tasks", &[("title", &long)]).await;
    assert!(
        page.html.contains("Could not add the task:"),
        "{}",
        page.html
    );
    assert!(page.html.to_lowercase().contains("title"), "{}", page.html);
    let page = browser.submit(&list, "/tasks", &[("title", "   ")]).await;
    assert!(
        page.html.contains("Could not add the task:"),
        "{}",
        page.html
    );

    // The edit form shows the error and keeps what was typed.
    let page = browser
        .submit(&list, "/tasks", &[("title", "Keep me")])
        .await;
    let id = task_id(&page, "Keep me");
    let page = browser
        .submit(
            &page,
            &format!("/tasks/{id}"),
            &[("title", ""), ("description", "typed text")],
        )
        .await;
    assert_eq!(page.status, 422, "{}", page.html);
    page.assert_shows("typed text");
    assert!(page.html.contains("flash-error"));
}

#[tokio::test(flavor = "multi_thread")]
async fn one_user_cannot_touch_another_users_task() {
    let Some(stack) = stack("one_user_cannot_touch_another_users_task", false).await else {
        return;
    };
    let alice = Browser::new(&stack.frontend.url);
    let page = alice.sign_up(&unique_email("alice"), PASSWORD).await;
    let page = alice
        .submit(&page, "/tasks", &[("title", "Alice's secret")])
        .await;
    let id = task_id(&page, "Alice&#39;s secret");

    let mallory = Browser::new(&stack.frontend.url);
    let page = mallory.sign_up(&unique_email("mallory"), PASSWORD).await;
    assert!(!page.html.contains("Alice"));
    assert_eq!(mallory.get(&format!("/tasks/{id}/edit")).await.status, 404);
    let page = mallory
        .submit(&page, &format!("/tasks/{id}/delete"), &[])
        .await;
    page.assert_shows("That item no longer exists.");
    assert!(lists(&alice.get("/tasks").await, "Alice&#39;s secret"));
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_redirect_signed_out_visitors_and_explain_bad_addresses() {
    let Some(stack) = stack(
        "pages_redirect_signed_out_visitors_and_explain_bad_addresses",
        false,
    )
    .await
    else {
        return;
    };
    let browser = Browser::new(&stack.frontend.url);
    let page = browser.get("/").await;
    assert!(page.url.ends_with("/signin"), "{}", page.url);
    assert!(browser.get("/tasks").await.url.ends_with("/signin"));

    let missing = browser.get("/no/such/page").await;
    assert_eq!(missing.status, 404);
    missing.assert_shows("Page not found");

    // A forged or expired session cookie leads back to sign-in with an explanation.
    let forged = Browser::new(&stack.frontend.url);
    forged.jar.add_cookie_str(
        "todo_session=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.forged; Path=/",
        &stack.frontend.url.parse().unwrap(),
    );
    let page = forged.get("/tasks").await;
    assert!(page.url.ends_with("/signin"), "{}", page.url);
    page.assert_shows("Your session has expired. Please sign in again.");
    assert!(forged.cookie("todo_session").is_none());

    let page = browser.sign_up(&unique_email("pages"), PASSWORD).await;
    assert_eq!(page.status, 200);
    let bad = browser.get("/tasks?status=done").await;
    assert_eq!(bad.status, 400);
    bad.assert_shows("Unknown filter");
    assert_eq!(browser.get("/tasks/abc/edit").await.status, 404);
    assert_eq!(browser.get("/tasks/987654321/edit").await.status, 404);
    // Signed-in visitors skip the sign-in page.
    assert!(browser.get("/signin").await.url.ends_with("/tasks"));
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_carry_security_headers_and_assets_are_served() {
    let Some(stack) = stack("pages_carry_security_headers_and_assets_are_served", false).await
    else {
        return;
    };
    let http = reqwest::Client::new();
    let res = http
        .get(format!("{}/signin", stack.frontend.url))
        .send()
        .await
        .unwrap();
    let h = res.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["referrer-policy"], "same-origin");
    assert_eq!(h["cache-control"], "no-store");
    assert!(h.contains_key("x-request-id"));
    let html = res.text().await.unwrap();
    assert!(!html.contains("<script>"), "inline script found");
    assert!(!html.contains("style=\""), "inline style found");

    let css = http
        .get(format!("{}/static/app.css", stack.frontend.url))
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), 200);
    assert!(
        css.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    assert!(css.text().await.unwrap().contains(".task-list"));
    let js = http
        .get(format!("{}/static/app.js", stack.frontend.url))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), 200);
    // Probes set no cookies.
    let health = http
        .get(format!("{}/health", stack.frontend.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert!(health.headers().get("set-cookie").is_none());
}

async fn ready(frontend: &str) -> (u16, serde_json::Value) {
    let res = reqwest::get(format!("{frontend}/ready")).await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn ready_follows_the_backend() {
    let Some(mut stack) = stack("ready_follows_the_backend", false).await else {
        return;
    };
    let url = stack.frontend.url.clone();
    assert_eq!(
        ready(&url).await,
        (200, serde_json::json!({"status": "ready"}))
    );

    tokio::task::block_in_place(|| stack.backend.stop());
    let (status, body) = ready(&url).await;
    assert_eq!(status, 503);
    assert_eq!(body["status"], "not_ready");
    assert!(
        body["reason"].as_str().unwrap().contains("backend"),
        "{body}"
    );
    // Liveness does not depend on the backend.
    assert_eq!(
        reqwest::get(format!("{url}/health"))
            .await
            .unwrap()
            .status(),
        200
    );
    // Pages explain the outage instead of failing obscurely.
    let browser = Browser::new(&url);
    let page = browser.get("/signin").await;
    let page = browser
        .submit(
            &page,
            "/signin",
            &[("email", "a@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(page.status, 503);
    page.assert_shows("The task service is not reachable right now.");

    tokio::task::block_in_place(|| stack.backend.restart());
    assert_eq!(ready(&url).await.0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn ready_times_out_on_a_backend_that_never_answers() {
    // A listener that accepts connections but never responds: no PostgreSQL needed.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = silent.accept().await {
            held.push(sock);
        }
    });
    let frontend = Frontend::start(&format!("http://{addr}"), false).await;
    let started = std::time::Instant::now();
    let (status, body) = ready(&frontend.url).await;
    assert_eq!(status, 503);
    assert!(
        body["reason"].as_str().unwrap().contains("within 2s"),
        "{body}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread")]
async fn request_ids_travel_to_the_backend() {
    let Some(stack) = stack("request_ids_travel_to_the_backend", false).await else {
        return;
    };
    let browser = Browser::new(&stack.frontend.url);
    browser.sign_up(&unique_email("reqid"), PASSWORD).await;
    let id = format!("fe-test-{}", uuid::Uuid::new_v4().simple());
    let res = browser
        .http
        .get(format!("{}/tasks", stack.frontend.url))
        .header("x-request-id", &id)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-request-id"], id.as_str());
    // The backend logs the same id for the calls made while rendering that page.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !stack.backend.log().contains(&id) {
        assert!(
            std::time::Instant::now() < deadline,
            "{id} not in backend log:\n{}",
            stack.backend.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

//! The frontend through its HTML forms, against a real `todo-backend` process on a real
//! PostgreSQL: the task life cycle, CSRF (signed, session-bound tokens), cookies, readable errors,
//! readiness.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use support::{
    Browser, CSRF_SECRET, Frontend, Page, frontend_config, hidden_field, stack, unique_email,
};
use todo_frontend::csrf::{Binding, CsrfKey};

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
    // Not a form body.
    let res = browser
        .http
        .post(format!("{}/tasks", stack.frontend.url))
        .header("content-type", "application/json")
        .body(format!(r#"{{"csrf_token":"{good}","title":"as json"}}"#))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    // Sign-out is protected too.
    assert_eq!(browser.post_raw("/signout", &[]).await.status, 403);
    assert!(browser.cookie("todo_session").is_some());

    // A valid token, but text that is not UTF-8 (raw, or percent-encoded): 400, no task with
    // U+FFFD in place of the text.
    for body in [
        format!("csrf_token={good}&title=raw-%22caf")
            .into_bytes()
            .into_iter()
            .chain(*b"\xe9")
            .collect::<Vec<u8>>(),
        format!("csrf_token={good}&title=encoded-caf%E9").into_bytes(),
    ] {
        let res = browser
            .http
            .post(format!("{}/tasks", stack.frontend.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400);
        assert!(
            res.text()
                .await
                .unwrap()
                .contains("That form could not be read")
        );
    }

    // None of them changed anything; the genuine form still works.
    let page = browser.get("/tasks").await;
    assert!(
        !page.html.contains('\u{FFFD}') && !page.html.contains("caf"),
        "a non-UTF-8 task was created"
    );
    for title in ["no token", "wrong token", "as json"] {
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

/// `NAME=value` of a Set-Cookie line.
fn pair(set_cookie: &str) -> &str {
    set_cookie.split(';').next().unwrap()
}

/// The value of a Set-Cookie line.
fn value(set_cookie: &str) -> &str {
    pair(set_cookie).split_once('=').unwrap().1
}

/// A client without a cookie store that follows no redirect: every cookie is sent by hand.
fn raw_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The key the tests' frontends sign with, and one they do not.
fn real_key() -> CsrfKey {
    CsrfKey::new(CSRF_SECRET)
}

fn other_key() -> CsrfKey {
    CsrfKey::new("another-server-key-an-attacker-might-use-0123")
}

#[tokio::test(flavor = "multi_thread")]
async fn planted_forged_and_unsigned_tokens_are_refused_sign_in_included() {
    let Some(stack) = stack(
        "planted_forged_and_unsigned_tokens_are_refused_sign_in_included",
        false,
    )
    .await
    else {
        return;
    };
    let url = &stack.frontend.url;
    let email = unique_email("planted");
    Browser::new(url).sign_up(&email, PASSWORD).await;

    // A signed-out visitor gets a pre-session id, and the form's token is its MAC under the
    // server key: nothing an attacker can compute.
    let http = raw_client();
    let res = http.get(format!("{url}/signin")).send().await.unwrap();
    let cookies = set_cookies(&res);
    let presession = value(cookie_named(&cookies, "todo_presession")).to_owned();
    let token = hidden_field(&res.text().await.unwrap(), "csrf_token").unwrap();
    assert_eq!(token, real_key().token(&Binding::PreSession(&presession)));
    assert_ne!(token, presession);

    let planted = "ab".repeat(32);
    let own = format!("todo_presession={presession}");
    let planted_cookie = format!("todo_presession={planted}");
    let cases: Vec<(&str, String, String)> = vec![
        (
            "the visitor's own pre-session, token signed with another key",
            own.clone(),
            other_key().token(&Binding::PreSession(&presession)),
        ),
        (
            "unsigned: the pre-session id itself as the token",
            own.clone(),
            presession.clone(),
        ),
        (
            "the right MAC for the wrong kind of binding",
            own.clone(),
            real_key().token(&Binding::Session(&presession)),
        ),
        ("a cut token", own.clone(), token[..32].to_owned()),
        (
            "a planted double-submit pair (the old unsigned scheme)",
            format!("todo_csrf={planted}"),
            planted.clone(),
        ),
        (
            "a planted pre-session id with itself as the token",
            planted_cookie.clone(),
            planted.clone(),
        ),
        (
            "a planted pre-session id with a token signed with another key",
            planted_cookie.clone(),
            other_key().token(&Binding::PreSession(&planted)),
        ),
        (
            "a planted pre-session id with the visitor's genuine token",
            planted_cookie.clone(),
            token.clone(),
        ),
    ];
    for (what, cookie, field) in &cases {
        let res = http
            .post(format!("{url}/signin"))
            .header("cookie", cookie)
            .form(&[
                ("csrf_token", field.as_str()),
                ("email", email.as_str()),
                ("password", PASSWORD),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403, "{what}");
        let cookies = set_cookies(&res);
        assert!(
            !cookies.iter().any(|c| c.starts_with("todo_session=")),
            "{what}: signed in: {cookies:?}"
        );
        assert!(
            res.text().await.unwrap().contains("This form has expired"),
            "{what}"
        );
    }

    // The genuine pair signs in.
    let res = http
        .post(format!("{url}/signin"))
        .header("cookie", &own)
        .form(&[
            ("csrf_token", token.as_str()),
            ("email", email.as_str()),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let cookies = set_cookies(&res);
    assert!(value(cookie_named(&cookies, "todo_session")).len() > 20);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_from_another_session_is_refused() {
    let Some(stack) = stack("a_token_from_another_session_is_refused", false).await else {
        return;
    };
    let url = &stack.frontend.url;
    let alice = Browser::new(url);
    let alice_token = alice.sign_up(&unique_email("alice"), PASSWORD).await.csrf();
    let bob = Browser::new(url);
    let bob_token = bob.sign_up(&unique_email("bob"), PASSWORD).await.csrf();
    assert_ne!(alice_token, bob_token);

    // Alice's token with Bob's session (a page of Alice's, replayed against Bob).
    let page = bob
        .post_raw(
            "/tasks",
            &[("csrf_token", &alice_token), ("title", "crossed")],
        )
        .await;
    assert_eq!(page.status, 403);
    assert!(!lists(&bob.get("/tasks").await, "crossed"));
    assert_eq!(
        bob.post_raw("/signout", &[("csrf_token", &alice_token)])
            .await
            .status,
        403
    );
    assert!(bob.cookie("todo_session").is_some());

    // Signed out: one visitor's token does not sign another in (login CSRF with the
    // attacker's own form).
    let email = unique_email("victim");
    Browser::new(url).sign_up(&email, PASSWORD).await;
    let attacker = Browser::new(url).get("/signin").await.csrf();
    let victim = Browser::new(url);
    let own = victim.get("/signin").await.csrf();
    assert_ne!(attacker, own);
    let page = victim
        .post_raw(
            "/signin",
            &[
                ("csrf_token", &attacker),
                ("email", &email),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(page.status, 403);
    assert!(victim.cookie("todo_session").is_none());
    // A signed-in session's token is no signed-out visitor's either.
    let page = victim
        .post_raw(
            "/signin",
            &[
                ("csrf_token", &alice_token),
                ("email", &email),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(page.status, 403);
    assert!(victim.cookie("todo_session").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_token_changes_at_sign_in_and_sign_out_and_old_ones_stop_working() {
    let Some(stack) = stack(
        "the_token_changes_at_sign_in_and_sign_out_and_old_ones_stop_working",
        false,
    )
    .await
    else {
        return;
    };
    let browser = Browser::new(&stack.frontend.url);
    let email = unique_email("rotate");

    // Signed out: a pre-session and its token, stable from page to page.
    let before = browser.get("/signin").await.csrf();
    let presession = browser.cookie("todo_presession").unwrap();
    assert_eq!(browser.get("/signup").await.csrf(), before);

    // Sign-in (here by signing up) rotates it: the pre-session is gone, its token dead.
    let list = browser.sign_up(&email, PASSWORD).await;
    assert!(list.url.ends_with("/tasks"), "{}", list.url);
    let signed_in = list.csrf();
    assert_ne!(signed_in, before);
    assert!(browser.cookie("todo_presession").is_none());
    assert_eq!(browser.get("/tasks").await.csrf(), signed_in);
    let page = browser
        .post_raw(
            "/tasks",
            &[("csrf_token", &before), ("title", "pre-session token")],
        )
        .await;
    assert_eq!(page.status, 403);

    // Sign-out rotates it again: a new pre-session, and the session's token is dead.
    let page = browser.submit(&list, "/signout", &[]).await;
    assert!(page.url.ends_with("/signin"), "{}", page.url);
    let signed_out = page.csrf();
    assert_ne!(signed_out, signed_in);
    assert_ne!(signed_out, before);
    let new_presession = browser.cookie("todo_presession").unwrap();
    assert_ne!(new_presession, presession);
    for (what, old) in [
        ("the session's", &signed_in),
        ("the first pre-session's", &before),
    ] {
        let page = browser
            .post_raw(
                "/signin",
                &[
                    ("csrf_token", old),
                    ("email", &email),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert_eq!(page.status, 403, "{what} token still works");
        assert!(browser.cookie("todo_session").is_none(), "{what}");
    }

    // The current token signs in again; the list's forms carry a session token again.
    let page = browser
        .submit(
            &page,
            "/signin",
            &[("email", &email), ("password", PASSWORD)],
        )
        .await;
    assert!(page.url.ends_with("/tasks"), "{}", page.url);
    assert_ne!(page.csrf(), signed_out);
    assert!(!lists(&page, "pre-session token"));
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_sharing_csrf_secret_accept_each_others_tokens_and_no_other_key_does() {
    let Some(stack) = stack(
        "replicas_sharing_csrf_secret_accept_each_others_tokens_and_no_other_key_does",
        false,
    )
    .await
    else {
        return;
    };
    let second = Frontend::start(&stack.backend.url, false).await;
    let mut config = frontend_config(&stack.backend.url, false);
    config.csrf_secret = other_key();
    let foreign = Frontend::start_config(config).await;

    // Cookies are per host, not per port: the browser sends the same ones to each replica.
    let browser = Browser::new(&stack.frontend.url);
    let token = browser
        .sign_up(&unique_email("replica"), PASSWORD)
        .await
        .csrf();
    let post = |base: &str, title: &str| {
        browser
            .http
            .post(format!("{base}/tasks"))
            .form(&[("csrf_token", token.as_str()), ("title", title)])
            .send()
    };
    assert_eq!(
        post(&second.url, "via replica 2").await.unwrap().status(),
        200
    );
    assert_eq!(
        post(&foreign.url, "via other key").await.unwrap().status(),
        403
    );
    let page = browser.get("/tasks").await;
    assert!(lists(&page, "via replica 2"));
    assert!(!lists(&page, "via other key"));
}

/// Signs up through [`raw_client`] on a frontend whose cookie names carry `prefix`; returns
/// every Set-Cookie seen, the session cookie pair and the task page.
async fn raw_sign_up(frontend: &str, prefix: &str) -> (Vec<String>, String, String) {
    let http = raw_client();
    let res = http.get(format!("{frontend}/signup")).send().await.unwrap();
    let mut cookies = set_cookies(&res);
    let presession = pair(cookie_named(&cookies, &format!("{prefix}todo_presession"))).to_owned();
    let html = res.text().await.unwrap();
    let token = hidden_field(&html, "csrf_token").unwrap();
    let email = unique_email("cookie");
    let res = http
        .post(format!("{frontend}/signup"))
        .header("cookie", &presession)
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
    let session = pair(cookie_named(&cookies, &format!("{prefix}todo_session"))).to_owned();
    let res = http
        .get(format!("{frontend}/tasks"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    (cookies, session, html)
}

#[tokio::test(flavor = "multi_thread")]
async fn cookies_are_host_prefixed_and_secure_with_hsts_only_when_cookie_secure_is_on() {
    let Some(stack) = stack(
        "cookies_are_host_prefixed_and_secure_with_hsts_only_when_cookie_secure_is_on",
        false,
    )
    .await
    else {
        return;
    };
    let names = ["todo_presession", "todo_session", "todo_flash"];

    // COOKIE_SECURE off (plain HTTP): plain names, no Secure, no HSTS.
    let (cookies, session, page) = raw_sign_up(&stack.frontend.url, "").await;
    for name in names {
        let c = cookie_named(&cookies, name);
        assert!(c.contains("HttpOnly"), "{c}");
        assert!(c.contains("SameSite=Lax"), "{c}");
        assert!(c.contains("Path=/"), "{c}");
        assert!(!c.contains("Secure"), "{c}");
    }
    assert!(
        cookies.iter().all(|c| !c.contains("__Host-")),
        "{cookies:?}"
    );
    // The token lives only in the cookie: the page never contains it.
    let token = session.trim_start_matches("todo_session=");
    assert!(token.len() > 20, "{session}");
    assert!(!page.contains(token));
    assert!(page.contains("Your tasks"));
    let http = raw_client();
    for path in ["/signin", "/health"] {
        let res = http
            .get(format!("{}{path}", stack.frontend.url))
            .send()
            .await
            .unwrap();
        assert!(
            res.headers().get("strict-transport-security").is_none(),
            "{path}"
        );
    }

    // COOKIE_SECURE on: every cookie `__Host-` with Secure, Path=/ and no Domain; HSTS.
    let secure = Frontend::start(&stack.backend.url, true).await;
    let (cookies, session, _) = raw_sign_up(&secure.url, "__Host-").await;
    for name in names {
        let c = cookie_named(&cookies, &format!("__Host-{name}"));
        assert!(
            c.contains("Secure") && c.contains("HttpOnly") && c.contains("SameSite=Lax"),
            "{c}"
        );
        assert!(c.contains("Path=/") && !c.contains("Domain"), "{c}");
    }
    assert!(
        cookies.iter().all(|c| c.starts_with("__Host-")),
        "an unprefixed cookie: {cookies:?}"
    );
    for path in ["/signin", "/health"] {
        let res = http
            .get(format!("{}{path}", secure.url))
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.headers()["strict-transport-security"],
            "max-age=31536000",
            "{path}"
        );
    }
    // Only `__Host-` cookies count: the same session planted under the plain name is ignored.
    let get_tasks = |cookie: String| {
        http.get(format!("{}/tasks", secure.url))
            .header("cookie", cookie)
            .send()
    };
    assert_eq!(get_tasks(session.clone()).await.unwrap().status(), 200);
    let plain = session.trim_start_matches("__Host-").to_owned();
    let res = get_tasks(plain).await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/signin");
    // ...and so is a planted plain-named pre-session, even with its genuine token.
    let id = "cd".repeat(32);
    let res = http
        .post(format!("{}/signin", secure.url))
        .header("cookie", format!("todo_presession={id}"))
        .form(&[
            (
                "csrf_token",
                real_key().token(&Binding::PreSession(&id)).as_str(),
            ),
            ("email", "someone@example.com"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
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

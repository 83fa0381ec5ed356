//! Sign up, sign in and sign out.

use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;

use super::PageCtx;
use super::chat::CHAT_COOKIE;
use crate::csrf;
use crate::flash::Flash;
use crate::session::{self, SESSION_COOKIE, Session};
use crate::state::AppState;
use crate::views::{SignInPage, SignUpPage, render};

/// Fields of the sign-in and sign-up forms.
#[derive(Deserialize)]
pub(crate) struct Credentials {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: Option<String>,
}

/// Starts a session from a fresh login: the token goes only into the HttpOnly cookie. The
/// pre-session id goes: from now on the session is what CSRF tokens are bound to, so the token
/// changes and the signed-out page's token stops working.
fn signed_in(state: &AppState, jar: CookieJar, token: String, expires_in: i64) -> CookieJar {
    // Capped at a week so a misconfigured backend cannot pin a cookie forever.
    let max_age = expires_in.clamp(60, 7 * 24 * 3600);
    jar.remove(session::removal(CHAT_COOKIE, state.cookie_secure))
        .remove(csrf::presession_removal(state.cookie_secure))
        .add(session::cookie(
            SESSION_COOKIE,
            token,
            state.cookie_secure,
            Some(max_age),
        ))
}

/// `GET /signin`.
pub(crate) async fn signin_page(ctx: PageCtx, jar: CookieJar) -> Response {
    if Session::from_jar(&jar).is_some() {
        return Redirect::to("/tasks").into_response();
    }
    let page = SignInPage {
        page: ctx.base(None),
        email: String::new(),
        error: None,
    };
    render(&page, StatusCode::OK)
}

/// `POST /signin`.
pub(crate) async fn signin(
    State(state): State<AppState>,
    ctx: PageCtx,
    jar: CookieJar,
    Form(form): Form<Credentials>,
) -> Response {
    let email = form.email.trim().to_owned();
    match state.backend.login(&email, &form.password).await {
        Ok(login) => {
            let jar = signed_in(&state, jar, login.token, login.expires_in);
            (jar, Redirect::to("/tasks")).into_response()
        }
        Err(err) => {
            let page = SignInPage {
                page: ctx.base(None),
                email,
                error: Some(err.user_message()),
            };
            render(&page, err.page_status())
        }
    }
}

/// `GET /signup`.
pub(crate) async fn signup_page(ctx: PageCtx, jar: CookieJar) -> Response {
    if Session::from_jar(&jar).is_some() {
        return Redirect::to("/tasks").into_response();
    }
    let page = SignUpPage {
        page: ctx.base(None),
        email: String::new(),
        error: None,
    };
    render(&page, StatusCode::OK)
}

/// `POST /signup`: creates the account and signs straight in.
pub(crate) async fn signup(
    State(state): State<AppState>,
    ctx: PageCtx,
    jar: CookieJar,
    Form(form): Form<Credentials>,
) -> Response {
    let email = form.email.trim().to_owned();
    let fail = |message: String, status: StatusCode| {
        let page = SignUpPage {
            page: ctx.base(None),
            email: email.clone(),
            error: Some(message),
        };
        render(&page, status)
    };
    if form
        .password_confirm
        .as_deref()
        .is_some_and(|confirm| confirm != form.password)
    {
        return fail(
            "The two passwords do not match. Please type them again.".to_owned(),
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }
    if let Err(err) = state.backend.register(&email, &form.password).await {
        return fail(err.user_message(), err.page_status());
    }
    match state.backend.login(&email, &form.password).await {
        Ok(login) => {
            let jar = signed_in(&state, jar, login.token, login.expires_in);
            let jar = Flash::success("Welcome! Your account is ready. Add your first task below.")
                .set(jar, state.cookie_secure);
            (jar, Redirect::to("/tasks")).into_response()
        }
        Err(err) => {
            let jar = Flash::error(format!(
                "Your account was created, but signing in failed: {}",
                err.user_message()
            ))
            .set(jar, state.cookie_secure);
            (jar, Redirect::to("/signin")).into_response()
        }
    }
}

/// `POST /signout`: forgets the token (the backend's tokens are stateless and simply expire) and
/// starts a new pre-session, so the CSRF token changes and the session's token stops working.
pub(crate) async fn signout(State(state): State<AppState>, jar: CookieJar) -> Response {
    let jar = jar
        .remove(session::removal(SESSION_COOKIE, state.cookie_secure))
        .remove(session::removal(CHAT_COOKIE, state.cookie_secure))
        .add(csrf::fresh_presession(state.cookie_secure));
    let jar = Flash::success("You have signed out. See you soon!").set(jar, state.cookie_secure);
    (jar, Redirect::to("/signin")).into_response()
}

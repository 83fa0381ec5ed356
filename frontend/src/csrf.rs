//! CSRF protection by double submit: a random token lives in its own HttpOnly cookie and in a
//! hidden field of every form; a state-changing request must carry both, equal. No server-side
//! secret is needed, and a cross-site page can neither read the cookie nor guess the field.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;
use rand::RngCore;
use subtle::ConstantTimeEq;

use crate::session;
use crate::state::AppState;
use crate::views;

/// Cookie holding the CSRF token.
pub const CSRF_COOKIE: &str = "todo_csrf";
/// Name of the hidden form field carrying the token.
pub const CSRF_FIELD: &str = "csrf_token";
/// Largest form body accepted; task descriptions are at most 1000 characters.
const MAX_FORM_BYTES: usize = 64 * 1024;
const TOKEN_BYTES: usize = 32;

/// The visitor's CSRF token, for rendering into forms.
#[derive(Clone, Debug)]
pub struct CsrfToken(pub String);

fn generate() -> String {
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn well_formed(token: &str) -> bool {
    token.len() == TOKEN_BYTES * 2 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Compares two tokens in constant time.
pub fn tokens_match(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

fn is_state_changing(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Middleware: hands every request a token (issuing the cookie when missing) and rejects
/// state-changing requests whose form field does not match the cookie with a 403 page.
pub async fn middleware(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let jar = CookieJar::from_headers(req.headers());
    let existing = jar
        .get(CSRF_COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|t| well_formed(t));
    let token = existing.clone().unwrap_or_else(generate);
    let fresh = existing.is_none();

    let (parts, body) = req.into_parts();
    let mut req = if is_state_changing(&parts.method) {
        let is_form = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        let bytes = match to_bytes(body, MAX_FORM_BYTES).await {
            Ok(b) => b,
            Err(_) => {
                let page = views::ErrorPage::new(
                    "That form is too large",
                    "Please shorten the text and try again.",
                );
                return with_cookie(
                    page.respond(StatusCode::PAYLOAD_TOO_LARGE),
                    &state,
                    &token,
                    fresh,
                );
            }
        };
        let submitted = if is_form {
            url::form_urlencoded::parse(&bytes)
                .find(|(k, _)| k == CSRF_FIELD)
                .map(|(_, v)| v.into_owned())
        } else {
            None
        };
        let valid = match (&existing, &submitted) {
            (Some(cookie), Some(field)) => tokens_match(cookie, field),
            _ => false,
        };
        if !valid {
            tracing::warn!(
                method = %parts.method,
                path = parts.uri.path(),
                cookie_present = existing.is_some(),
                field_present = submitted.is_some(),
                "rejected a request without a valid CSRF token"
            );
            let page = views::ErrorPage::new(
                "This form has expired",
                "For your safety the request was not carried out: it did not come from a current page \
                 of this site. Go back, reload the page and try again.",
            );
            return with_cookie(page.respond(StatusCode::FORBIDDEN), &state, &token, fresh);
        }
        Request::from_parts(parts, Body::from(bytes))
    } else {
        Request::from_parts(parts, body)
    };
    req.extensions_mut().insert(CsrfToken(token.clone()));
    let res = next.run(req).await;
    with_cookie(res, &state, &token, fresh)
}

fn with_cookie(mut res: Response, state: &AppState, token: &str, fresh: bool) -> Response {
    if fresh {
        let c = session::cookie(CSRF_COOKIE, token.to_owned(), state.cookie_secure, None);
        if let Ok(v) = HeaderValue::from_str(&c.to_string()) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_well_formed() {
        let a = generate();
        let b = generate();
        assert!(well_formed(&a) && well_formed(&b));
        assert_ne!(a, b);
    }

    #[test]
    fn comparison_requires_exact_equality() {
        let a = generate();
        assert!(tokens_match(&a, &a.clone()));
        assert!(!tokens_match(&a, &generate()));
        assert!(!tokens_match(&a, &a[..10]));
        assert!(!tokens_match(&a, ""));
    }

    #[test]
    fn malformed_cookies_are_replaced() {
        assert!(!well_formed("abc"));
        assert!(!well_formed(&"z".repeat(64)));
    }
}

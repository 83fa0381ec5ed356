//! CSRF protection with signed, session-bound tokens.
//!
//! Every form carries a token that is an HMAC-SHA256, under the server key `CSRF_SECRET`, of
//! what identifies the visitor's session:
//! - signed in: the session cookie (the backend token);
//! - signed out: a random pre-session id kept in its own HttpOnly cookie
//!   ([`PRESESSION_COOKIE`]), issued with the first page, so that the sign-in and sign-up forms
//!   are protected too.
//!
//! A state-changing request must carry the token computed for the cookies it arrives with.
//! Without the key nobody can compute a token, so a planted cookie (from a sibling subdomain or
//! over plain HTTP) forges nothing by itself, and a token taken from another session or
//! another visitor is a token for another binding. The binding changes at sign-in (the
//! pre-session id is dropped and the new session is the binding) and at sign-out (a new
//! pre-session id), so the token rotates and an old one stops working. Nothing is stored on the
//! server: every replica that shares the key accepts the same tokens.

use std::fmt;
use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use axum_extra::extract::cookie::{Cookie, CookieJar};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::session::{self, Session};
use crate::state::AppState;
use crate::views;

/// Cookie holding a signed-out visitor's pre-session id, the binding of their tokens.
pub const PRESESSION_COOKIE: &str = "todo_presession";
/// Name of the hidden form field carrying the token.
pub const CSRF_FIELD: &str = "csrf_token";
/// Shortest accepted server key, in bytes (HMAC-SHA256 wants at least its output size).
pub const MIN_SECRET_BYTES: usize = 32;
/// Largest form body accepted; task descriptions are at most 1000 characters.
const MAX_FORM_BYTES: usize = 64 * 1024;
const PRESESSION_BYTES: usize = 32;
/// Domain separation: these MACs are CSRF tokens of this app, version 1, and nothing else.
const CONTEXT: &[u8] = b"todo-frontend/csrf/v1\0";

/// The server key tokens are signed with. `Debug` never shows it.
#[derive(Clone)]
pub struct CsrfKey(Arc<[u8]>);

impl CsrfKey {
    /// Wraps key bytes (validated for length by the configuration).
    pub fn new(bytes: impl AsRef<[u8]>) -> Self {
        Self(Arc::from(bytes.as_ref()))
    }

    /// Length in bytes (safe to show).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The token for `binding`: 64 hex characters.
    pub fn token(&self, binding: &Binding<'_>) -> String {
        let mut mac =
            <Hmac<Sha256>>::new_from_slice(&self.0).expect("HMAC accepts keys of any length");
        mac.update(CONTEXT);
        let (kind, value): (&[u8], &str) = match binding {
            Binding::Session(token) => (b"session\0", token),
            Binding::PreSession(id) => (b"presession\0", id),
        };
        mac.update(kind);
        mac.update(value.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

impl fmt::Debug for CsrfKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CsrfKey(<redacted, {} bytes>)", self.0.len())
    }
}

/// What a token is bound to.
#[derive(Clone, Copy, Debug)]
pub enum Binding<'a> {
    /// A signed-in visitor's session cookie value.
    Session(&'a str),
    /// A signed-out visitor's pre-session id.
    PreSession(&'a str),
}

/// The visitor's CSRF token, for rendering into forms.
#[derive(Clone, Debug)]
pub struct CsrfToken(pub String);

/// A new random pre-session id: 32 bytes from the OS, hex encoded.
fn new_presession_id() -> String {
    let mut bytes = [0u8; PRESESSION_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn well_formed(id: &str) -> bool {
    id.len() == PRESESSION_BYTES * 2 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The cookie of a new pre-session id: set at sign-out, so the signed-out visitor's tokens
/// differ from the ones of the session that ended.
pub fn fresh_presession(secure: bool) -> Cookie<'static> {
    session::cookie(PRESESSION_COOKIE, new_presession_id(), secure, None)
}

/// A cookie that drops the pre-session id: set at sign-in, where the session takes its place.
pub fn presession_removal(secure: bool) -> Cookie<'static> {
    session::removal(PRESESSION_COOKIE, secure)
}

/// Compares two tokens in constant time.
pub fn tokens_match(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// A form body as browsers send it: ASCII only (they percent-encode everything else), with
/// every name and value UTF-8 once decoded. Anything else would be decoded lossily, and a task
/// saved with U+FFFD where the visitor's text was.
fn well_encoded(body: &[u8]) -> bool {
    body.is_ascii()
        && body.split(|&b| b == b'&' || b == b'=').all(|part| {
            let mut decoded = Vec::with_capacity(part.len());
            let mut rest = part;
            while let Some((&b, tail)) = rest.split_first() {
                let hex = tail.get(..2).and_then(|h| std::str::from_utf8(h).ok());
                match (b, hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
                    (b'%', Some(byte)) => {
                        decoded.push(byte);
                        rest = &tail[2..];
                    }
                    (b'+', _) => {
                        decoded.push(b' ');
                        rest = tail;
                    }
                    (b, _) => {
                        decoded.push(b);
                        rest = tail;
                    }
                }
            }
            std::str::from_utf8(&decoded).is_ok()
        })
}

fn is_state_changing(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Middleware: computes the token for the request's session (issuing a pre-session id to a new
/// visitor) and rejects state-changing requests whose form field is not that token with a 403
/// page.
pub async fn middleware(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let jar = CookieJar::from_headers(req.headers());
    let session = Session::from_jar(&jar);
    let presession = jar
        .get(PRESESSION_COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|id| well_formed(id));
    let presession_present = presession.is_some();
    let (token, issued) = match (&session, presession) {
        (Some(s), _) => (state.csrf_key.token(&Binding::Session(&s.token)), None),
        (None, Some(id)) => (state.csrf_key.token(&Binding::PreSession(&id)), None),
        (None, None) => {
            let id = new_presession_id();
            (state.csrf_key.token(&Binding::PreSession(&id)), Some(id))
        }
    };

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
                return with_presession(
                    page.respond(StatusCode::PAYLOAD_TOO_LARGE),
                    &state,
                    issued.as_deref(),
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
        // A pre-session id issued just now has no page yet, so no token can be valid for it.
        let valid = issued.is_none()
            && submitted
                .as_deref()
                .is_some_and(|field| tokens_match(&token, field));
        if !valid {
            tracing::warn!(
                method = %parts.method,
                path = parts.uri.path(),
                signed_in = session.is_some(),
                presession_present,
                field_present = submitted.is_some(),
                "rejected a request without a valid CSRF token"
            );
            let page = views::ErrorPage::new(
                "This form has expired",
                "For your safety the request was not carried out: it did not come from a current page \
                 of this site. Go back, reload the page and try again.",
            );
            return with_presession(
                page.respond(StatusCode::FORBIDDEN),
                &state,
                issued.as_deref(),
            );
        }
        if is_form && !well_encoded(&bytes) {
            tracing::warn!(
                path = parts.uri.path(),
                "rejected a form body that is not UTF-8"
            );
            let page = views::ErrorPage::new(
                "That form could not be read",
                "Its text was not sent as UTF-8. Go back, reload the page and try again.",
            );
            return with_presession(
                page.respond(StatusCode::BAD_REQUEST),
                &state,
                issued.as_deref(),
            );
        }
        Request::from_parts(parts, Body::from(bytes))
    } else {
        Request::from_parts(parts, body)
    };
    req.extensions_mut().insert(CsrfToken(token));
    let res = next.run(req).await;
    with_presession(res, &state, issued.as_deref())
}

fn with_presession(mut res: Response, state: &AppState, issued: Option<&str>) -> Response {
    if let Some(id) = issued {
        let c = session::cookie(PRESESSION_COOKIE, id.to_owned(), state.cookie_secure, None);
        if let Ok(v) = HeaderValue::from_str(&c.to_string()) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> CsrfKey {
        CsrfKey::new([b; 32])
    }

    #[test]
    fn presession_ids_are_random_and_well_formed() {
        let a = new_presession_id();
        let b = new_presession_id();
        assert!(well_formed(&a) && well_formed(&b));
        assert_ne!(a, b);
        assert!(!well_formed("abc"));
        assert!(!well_formed(&"z".repeat(64)));
    }

    #[test]
    fn tokens_depend_on_key_binding_and_its_kind() {
        let id = new_presession_id();
        let t = key(1).token(&Binding::PreSession(&id));
        assert_eq!(t.len(), 64);
        assert_eq!(t, key(1).token(&Binding::PreSession(&id)), "deterministic");
        assert_ne!(t, key(2).token(&Binding::PreSession(&id)), "keyed");
        assert_ne!(t, key(1).token(&Binding::PreSession(&new_presession_id())));
        assert_ne!(
            t,
            key(1).token(&Binding::Session(&id)),
            "kind is part of it"
        );
        // Not the id itself, nor anything computable without the key.
        assert_ne!(t, id);
    }

    #[test]
    fn form_bodies_must_be_ascii_and_decode_to_utf8() {
        assert!(well_encoded(b"title=caf%C3%A9+au+lait&csrf_token=ab12"));
        assert!(well_encoded(b"a=100%25&b=%zz&c="));
        assert!(!well_encoded(b"title=caf\xe9"), "raw Latin-1 byte");
        assert!(!well_encoded(b"title=%FF%FE"), "percent-encoded non-UTF-8");
        assert!(!well_encoded(b"ti%E9tle=x"), "in a name too");
    }

    #[test]
    fn comparison_requires_exact_equality() {
        let a = key(1).token(&Binding::Session("s"));
        assert!(tokens_match(&a, &a.clone()));
        assert!(!tokens_match(&a, &key(1).token(&Binding::Session("t"))));
        assert!(!tokens_match(&a, &a[..10]));
        assert!(!tokens_match(&a, ""));
    }

    #[test]
    fn debug_redacts_the_key() {
        let shown = format!("{:?}", CsrfKey::new(b"hunter2-hunter2-hunter2-hunter2-x"));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("33 bytes"), "{shown}");
    }
}

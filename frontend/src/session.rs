//! The signed-in session: the backend token kept in an HttpOnly cookie, never exposed to
//! scripts or written to logs.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::Redirect;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};

/// Cookie holding the backend bearer token.
pub const SESSION_COOKIE: &str = "todo_session";

/// Builds a cookie with the flags every cookie of this app carries: HttpOnly, SameSite=Lax,
/// Path=/, no Domain, and Secure when `secure`. With `secure` its name gets the `__Host-` prefix
/// on the wire ([`crate::security::https_only`]), which browsers accept only with exactly these
/// flags.
pub fn cookie(
    name: &'static str,
    value: String,
    secure: bool,
    max_age_secs: Option<i64>,
) -> Cookie<'static> {
    let mut builder = Cookie::build((name, value))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .path("/");
    if let Some(secs) = max_age_secs {
        builder = builder.max_age(time::Duration::seconds(secs));
    }
    builder.build()
}

/// A cookie that tells the browser to forget `name` (same flags, so browsers match it).
pub fn removal(name: &'static str, secure: bool) -> Cookie<'static> {
    let mut c = cookie(name, String::new(), secure, Some(0));
    c.make_removal();
    c
}

/// The token of a signed-in visitor; extracting it from a request without one redirects to the
/// sign-in page.
#[derive(Clone)]
pub struct Session {
    /// Backend bearer token.
    pub token: String,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Session(<redacted>)")
    }
}

impl Session {
    /// Reads the session from request cookies, if any.
    pub fn from_jar(jar: &CookieJar) -> Option<Self> {
        jar.get(SESSION_COOKIE)
            .map(|c| c.value().to_owned())
            .filter(|t| !t.is_empty())
            .map(|token| Self { token })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = Redirect;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let jar = CookieJar::from_headers(&parts.headers);
        Self::from_jar(&jar).ok_or_else(|| Redirect::to("/signin"))
    }
}

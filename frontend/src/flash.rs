//! One-shot messages carried across a POST/redirect/GET in a short-lived cookie, shown once on
//! the next rendered page and then cleared.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;

use crate::session;
use crate::state::AppState;

/// Cookie holding the pending flash message.
pub const FLASH_COOKIE: &str = "todo_flash";
/// Longer messages are cut so the cookie stays well under browser limits.
const MAX_MESSAGE_BYTES: usize = 600;

/// Whether the message reports success or a problem.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlashKind {
    /// Something worked.
    Success,
    /// Something failed; the message says what to do.
    Error,
}

/// A message for the next page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flash {
    /// Success or error.
    pub kind: FlashKind,
    /// The sentence shown.
    pub message: String,
}

impl Flash {
    /// A success message.
    pub fn success(message: impl Into<String>) -> Self {
        Self {
            kind: FlashKind::Success,
            message: message.into(),
        }
    }

    /// An error message.
    pub fn error(message: impl Into<String>) -> Self {
        Self {
            kind: FlashKind::Error,
            message: message.into(),
        }
    }

    /// CSS modifier for the message box.
    pub fn css_class(&self) -> &'static str {
        match self.kind {
            FlashKind::Success => "success",
            FlashKind::Error => "error",
        }
    }

    // Hex keeps any text cookie-safe without a percent-encoding dependency.
    fn encode(&self) -> String {
        let mut msg = self.message.as_str();
        if msg.len() > MAX_MESSAGE_BYTES {
            let mut end = MAX_MESSAGE_BYTES;
            while !msg.is_char_boundary(end) {
                end -= 1;
            }
            msg = &msg[..end];
        }
        let tag = match self.kind {
            FlashKind::Success => 's',
            FlashKind::Error => 'e',
        };
        format!("{tag}{}", hex::encode(msg))
    }

    fn decode(raw: &str) -> Option<Self> {
        let kind = match raw.get(..1)? {
            "s" => FlashKind::Success,
            "e" => FlashKind::Error,
            _ => return None,
        };
        let bytes = hex::decode(raw.get(1..)?).ok()?;
        let message = String::from_utf8(bytes).ok()?;
        Some(Self { kind, message })
    }

    /// Adds this message to `jar` for the next page.
    pub fn set(self, jar: CookieJar, secure: bool) -> CookieJar {
        jar.add(session::cookie(
            FLASH_COOKIE,
            self.encode(),
            secure,
            Some(60),
        ))
    }
}

/// The flash message that arrived with this request, if any.
#[derive(Clone, Debug, Default)]
pub struct IncomingFlash(pub Option<Flash>);

/// Middleware: makes the incoming flash available to handlers and clears the cookie once a page
/// (not a redirect) has been sent, so each message is shown exactly once.
pub async fn middleware(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let jar = CookieJar::from_headers(req.headers());
    let incoming = jar.get(FLASH_COOKIE).and_then(|c| Flash::decode(c.value()));
    let had_cookie = jar.get(FLASH_COOKIE).is_some();
    req.extensions_mut().insert(IncomingFlash(incoming));
    let mut res = next.run(req).await;
    let sets_flash = res
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .any(|v| v.as_bytes().starts_with(FLASH_COOKIE.as_bytes()));
    if had_cookie && !res.status().is_redirection() && !sets_flash {
        let removal = session::removal(FLASH_COOKIE, state.cookie_secure);
        if let Ok(v) = HeaderValue::from_str(&removal.to_string()) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    res
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trips_any_text() {
        for f in [
            Flash::success("Added “buy milk”; 100% done"),
            Flash::error("That email is already registered."),
        ] {
            assert_eq!(Flash::decode(&f.encode()).unwrap(), f);
        }
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        let f = Flash::error("é".repeat(1000));
        let back = Flash::decode(&f.encode()).unwrap();
        assert!(back.message.len() <= MAX_MESSAGE_BYTES);
    }

    #[test]
    fn garbage_is_ignored() {
        assert!(Flash::decode("x00").is_none());
        assert!(Flash::decode("szz").is_none());
        assert!(Flash::decode("").is_none());
    }
}

//! Response headers that keep browsers strict: no inline scripts, no framing, no MIME sniffing,
//! no referrer leaks, and no caching of pages that hold personal data or CSRF tokens. When served
//! over HTTPS (`COOKIE_SECURE`), also HSTS and `__Host-` cookie names.

use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::state::AppState;

/// Content-Security-Policy: only this origin's own script and style files may run.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// Strict-Transport-Security when `COOKIE_SECURE` is on: browsers use only HTTPS for this host
/// for a year. Not `includeSubDomains`: the app does not speak for other hosts under its name.
pub const HSTS: &str = "max-age=31536000";

/// Prefix of every cookie name when `COOKIE_SECURE` is on. Browsers accept a `__Host-` cookie
/// only with `Secure`, `Path=/` and no `Domain`, set over HTTPS by this very host: a sibling
/// subdomain or a plain-HTTP response cannot plant or overwrite one.
pub const HOST_PREFIX: &str = "__Host-";

/// The security header layers, outermost first.
pub fn layers() -> [SetResponseHeaderLayer<HeaderValue>; 5] {
    let h = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
    };
    [
        h(header::CONTENT_SECURITY_POLICY, CSP),
        h(header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        h(header::X_FRAME_OPTIONS, "DENY"),
        h(header::REFERRER_POLICY, "same-origin"),
        h(header::CACHE_CONTROL, "no-store"),
    ]
}

/// Middleware for HTTPS deployments (`COOKIE_SECURE`); does nothing otherwise.
///
/// The app names its cookies plainly (`todo_session`, ...); on the wire they carry the
/// `__Host-` prefix. Incoming, only `__Host-` cookies are read (prefix removed) and any other
/// cookie is dropped, since it may have been planted; outgoing, every `Set-Cookie` gets the
/// prefix (every cookie of the app is `Secure` with `Path=/` and no `Domain` then, as
/// [`crate::session::cookie`] builds them). Every response also gets [`HSTS`].
pub async fn https_only(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    if !state.cookie_secure {
        return next.run(req).await;
    }
    let kept: Vec<String> = req
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().strip_prefix(HOST_PREFIX))
        .map(str::to_owned)
        .collect();
    req.headers_mut().remove(header::COOKIE);
    if !kept.is_empty()
        && let Ok(v) = HeaderValue::from_str(&kept.join("; "))
    {
        req.headers_mut().insert(header::COOKIE, v);
    }

    let mut res = next.run(req).await;
    let headers = res.headers_mut();
    let set: Vec<HeaderValue> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .cloned()
        .collect();
    headers.remove(header::SET_COOKIE);
    for v in set {
        let prefixed = match v.to_str() {
            Ok(s) if !s.starts_with(HOST_PREFIX) => {
                HeaderValue::from_str(&format!("{HOST_PREFIX}{s}")).ok()
            }
            Ok(_) => Some(v),
            // Not text: not one of ours; leave it out rather than send it unprefixed.
            Err(_) => None,
        };
        if let Some(p) = prefixed {
            headers.append(header::SET_COOKIE, p);
        }
    }
    headers
        .entry(header::STRICT_TRANSPORT_SECURITY)
        .or_insert(HeaderValue::from_static(HSTS));
    res
}

//! Why a page cannot be shown, and what the visitor gets instead: the sign-in page when the
//! session has expired, otherwise an error page whose status says what went wrong.

use axum::extract::path::ErrorKind;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;

use crate::backend::BackendError;
use crate::flash::Flash;
use crate::session::{self, SESSION_COOKIE};
use crate::state::AppState;
use crate::views::ErrorPage;

/// Every way a page can fail; handlers return it with `?`.
#[derive(Debug)]
pub(crate) enum PageError {
    /// The backend rejected the session token (expired, tampered, account gone).
    SessionExpired,
    /// No route matches the address.
    NoSuchPage,
    /// The task id in the address is not a number.
    NoSuchTask,
    /// The list filter is not one of all, pending or completed.
    UnknownFilter,
    /// A backend call failed for another reason than the session.
    Backend(BackendError),
    /// A path axum cannot read at all (not UTF-8); axum's own answer stands.
    Path(PathRejection),
}

/// Marks the stand-in response of [`PageError::SessionExpired`] for [`sign_in_again`].
#[derive(Clone, Copy)]
struct SignInAgain;

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, heading, message) = match self {
            Self::SessionExpired => {
                // Its cookies need the cookie policy, which only the state knows.
                let mut res = StatusCode::UNAUTHORIZED.into_response();
                res.extensions_mut().insert(SignInAgain);
                return res;
            }
            Self::Path(rejection) => return rejection.into_response(),
            Self::NoSuchPage => (
                StatusCode::NOT_FOUND,
                "Page not found",
                "There is nothing at this address. It may have moved, or the link may be mistyped."
                    .to_owned(),
            ),
            Self::NoSuchTask => (
                StatusCode::NOT_FOUND,
                "Not found",
                "There is no task at this address.".to_owned(),
            ),
            Self::UnknownFilter => (
                StatusCode::BAD_REQUEST,
                "Unknown filter",
                "Tasks can be filtered by all, pending or completed.".to_owned(),
            ),
            Self::Backend(e) => {
                let status = e.page_status();
                let heading = match status {
                    StatusCode::NOT_FOUND => "Not found",
                    StatusCode::TOO_MANY_REQUESTS => "Too many requests",
                    StatusCode::SERVICE_UNAVAILABLE => "Try again shortly",
                    _ => "Something went wrong",
                };
                let mut res = ErrorPage::new(heading, &e.user_message()).respond(status);
                // The backend's advice stands for the page too.
                if let Some(secs) = e.retry_after() {
                    res.headers_mut()
                        .insert(axum::http::header::RETRY_AFTER, secs.into());
                }
                return res;
            }
        };
        ErrorPage::new(heading, &message).respond(status)
    }
}

/// Middleware: turns [`PageError::SessionExpired`] into the redirect to sign in, forgetting the
/// rejected token and saying why.
pub(crate) async fn sign_in_again(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let res = next.run(req).await;
    if res.extensions().get::<SignInAgain>().is_none() {
        return res;
    }
    let secure = state.cookie_secure;
    let jar = CookieJar::new().add(session::removal(SESSION_COOKIE, secure));
    let jar = Flash::error("Your session has expired. Please sign in again.").set(jar, secure);
    (jar, Redirect::to("/signin")).into_response()
}

impl From<BackendError> for PageError {
    fn from(e: BackendError) -> Self {
        if e.is_unauthorized() {
            Self::SessionExpired
        } else {
            Self::Backend(e)
        }
    }
}

impl From<PathRejection> for PageError {
    fn from(r: PathRejection) -> Self {
        match &r {
            // The only path parameter is a task id, so a value that does not parse names no task.
            PathRejection::FailedToDeserializePathParams(e)
                if matches!(e.kind(), ErrorKind::ParseError { .. }) =>
            {
                Self::NoSuchTask
            }
            _ => Self::Path(r),
        }
    }
}

impl From<QueryRejection> for PageError {
    fn from(_: QueryRejection) -> Self {
        // `status` is the only query field, so an unreadable query (`status` given twice) is a
        // filter the list cannot apply.
        Self::UnknownFilter
    }
}

/// The backend's answer, unless it rejected the session, which ends the request with the
/// sign-in redirect; other failures are left for the caller to explain.
pub(crate) fn unless_expired<T>(
    result: Result<T, BackendError>,
) -> Result<Result<T, BackendError>, PageError> {
    match result {
        Err(e) if e.is_unauthorized() => Err(PageError::SessionExpired),
        other => Ok(other),
    }
}

/// The answers of two concurrent backend calls. An expired session wins over the other call's
/// failure: signing in again is the visitor's next step either way.
pub(crate) fn both<A, B>(
    a: Result<A, BackendError>,
    b: Result<B, BackendError>,
) -> Result<(A, B), PageError> {
    let (a, b) = (unless_expired(a)?, unless_expired(b)?);
    Ok((a?, b?))
}

//! Request handlers, one module per area of the site, and the extractors they share.

pub(crate) mod auth;
pub(crate) mod chat;
pub(crate) mod health;
pub(crate) mod tasks;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::Redirect;
use serde::Deserialize;

use crate::csrf::CsrfToken;
use crate::error::PageError;
use crate::flash::{Flash, IncomingFlash};
use crate::views::{Filter, PageBase};

/// Per-request page data the middlewares prepared: CSRF token and pending flash message.
#[derive(Debug, Clone)]
pub(crate) struct PageCtx {
    /// Token for this visitor's forms.
    pub(crate) csrf: String,
    /// Message left by the previous request.
    pub(crate) flash: Option<Flash>,
}

impl PageCtx {
    /// Layout data for a page, with the signed-in email if known.
    pub(crate) fn base(&self, email: Option<String>) -> PageBase {
        PageBase {
            csrf: self.csrf.clone(),
            flash: self.flash.clone(),
            email,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for PageCtx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self {
            csrf: parts
                .extensions
                .get::<CsrfToken>()
                .map(|t| t.0.clone())
                .unwrap_or_default(),
            flash: parts
                .extensions
                .get::<IncomingFlash>()
                .and_then(|f| f.0.clone()),
        })
    }
}

/// Path parameters; a task id that is not a number gets the "no such task" page.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(PageError))]
pub(crate) struct PagePath<T>(pub(crate) T);

/// Query string; one that cannot be read gets the "unknown filter" page.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(PageError))]
pub(crate) struct PageQuery<T>(pub(crate) T);

/// The list filter a page was opened with, e.g. `?status=pending`.
#[derive(Deserialize)]
pub(crate) struct StatusQuery {
    status: Option<String>,
}

/// Where to go back to after a task form: the list with the filter the visitor was on.
pub(crate) fn back_to_list(status: Option<&str>) -> Redirect {
    let filter = Filter::or_all(status);
    Redirect::to(&format!("/tasks?status={}", filter.as_str()))
}

//! The router, its middleware stack, and serving it (see [`crate::server`]).

use std::future::Future;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::LatencyUnit;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::backend::with_request_id;
use crate::config::Config;
use crate::error::{self, PageError};
use crate::handlers::{auth, chat, health, tasks};
use crate::state::AppState;
use crate::{csrf, flash, security, static_files};

/// Makes the request id (set by the outer layer) travel with every backend call.
async fn forward_request_id(req: Request<Body>, next: Next) -> Response {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    match id {
        Some(id) => with_request_id(id, next.run(req)).await,
        None => next.run(req).await,
    }
}

/// The whole application: pages (with CSRF and flash handling), probes and static files.
pub fn router(state: AppState) -> Router {
    let pages = Router::new()
        .route("/", get(tasks::index))
        .route("/signin", get(auth::signin_page).post(auth::signin))
        .route("/signup", get(auth::signup_page).post(auth::signup))
        .route("/signout", post(auth::signout))
        .route("/tasks", get(tasks::list).post(tasks::create))
        .route("/tasks/{id}", post(tasks::update))
        .route("/tasks/{id}/edit", get(tasks::edit_page))
        .route("/tasks/{id}/complete", post(tasks::complete))
        .route("/tasks/{id}/delete", post(tasks::delete))
        .route("/chat", post(chat::send))
        .route("/chat/new", post(chat::new_chat))
        .fallback(|| async { PageError::NoSuchPage })
        // Innermost: it replaces the whole response, and the CSRF layer must add its cookie to
        // the replacement.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            error::sign_in_again,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            flash::middleware,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            csrf::middleware,
        ));

    // Probes and assets stay outside the CSRF layer so they never set cookies.
    let plain = Router::new()
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .route("/static/app.css", get(static_files::css))
        .route("/static/app.js", get(static_files::js))
        .route("/favicon.svg", get(static_files::icon));

    let [csp, nosniff, frame, referrer, cache] = security::layers();
    let https = middleware::from_fn_with_state(state.clone(), security::https_only);
    plain.merge(pages).with_state(state.clone()).layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
            .layer(
                // Only method, path, status and latency are logged: never headers (cookies,
                // tokens) or bodies (passwords).
                TraceLayer::new_for_http()
                    .make_span_with(|req: &Request<Body>| {
                        let id = req
                            .headers()
                            .get("x-request-id")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("-");
                        tracing::info_span!(
                            "request",
                            method = %req.method(),
                            path = req.uri().path(),
                            request_id = id,
                        )
                    })
                    .on_request(())
                    .on_response(
                        DefaultOnResponse::new()
                            .level(Level::INFO)
                            .latency_unit(LatencyUnit::Millis),
                    ),
            )
            .layer(PropagateRequestIdLayer::x_request_id())
            .layer(middleware::from_fn(forward_request_id))
            .layer(csp)
            .layer(nosniff)
            .layer(frame)
            .layer(referrer)
            .layer(cache)
            // With COOKIE_SECURE: HSTS, and `__Host-` cookie names on the wire (the layers
            // inside read and write the plain names).
            .layer(https)
            // Inside the layers above, so a 408 page is logged and gets their headers.
            .layer(middleware::from_fn_with_state(
                state,
                crate::request_timeout::middleware,
            )),
    )
}

/// Serves on `listener` until `shutdown` resolves, then lets in-flight requests finish for up
/// to `SHUTDOWN_DRAIN_SECONDS`.
pub async fn serve(
    config: &Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // Outermost: the visitor's address (from the peer, which connect info records) is known to
    // every backend call of the request.
    let app = router(AppState::new(config)?).layer(middleware::from_fn_with_state(
        std::sync::Arc::new(config.trusted_proxies.clone()),
        crate::client_addr::middleware,
    ));
    let timeouts = crate::server::ServerTimeouts {
        header_read: config.timeouts.header_read,
        drain: config.timeouts.shutdown_drain,
    };
    crate::server::serve(listener, app, timeouts, shutdown).await?;
    Ok(())
}

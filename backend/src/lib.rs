//! The todo service's HTTP API: accounts, per-user tasks, health and readiness, on PostgreSQL.

pub mod auth;
pub mod chat;
pub mod config;
pub mod db;
pub mod error;
pub mod extract;
pub mod limits;
pub mod logging;
pub mod pagination;
pub mod routes;
pub mod server;
pub mod validate;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::LatencyUnit;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnFailure, DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::auth::TokenKeys;
use crate::config::Config;

/// Shared per-process state handed to every handler.
#[derive(Clone)]
pub struct AppState {
    /// Database pool (lazy: the process runs while the database is down).
    pub pool: PgPool,
    /// Token signing and verification.
    pub tokens: TokenKeys,
    /// Raised once migrations are applied; `/ready` is 503 until then.
    pub migrated: Arc<AtomicBool>,
    /// Whether the database is known to be down (requests then answer 503 at once).
    pub database: db::availability::Availability,
    /// A hash of a random password, verified on logins for unknown emails so that response
    /// time does not reveal which emails have accounts.
    pub dummy_hash: Arc<str>,
    /// The chat assistant (AI provider or built-in interpreter).
    pub assistant: chat::Assistant,
    /// Argon2id hashing, bounded by the memory budget.
    pub hasher: limits::hashing::Hasher,
    /// Sign-in, sign-up and chat throttles.
    pub throttles: limits::throttle::Throttles,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Arc<limits::client_ip::TrustedProxies>,
    /// Page sizes and per-user caps (and the rest of the configured limits).
    pub limits: Arc<config::Limits>,
}

/// The full application: routes plus request ids and request logs. Headers are never logged
/// (they carry tokens), and only the path, not the query, is.
pub fn app(state: AppState) -> Router {
    let trace = TraceLayer::new_for_http()
        .make_span_with(|req: &Request<Body>| {
            let id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path())
        })
        .on_response(
            DefaultOnResponse::new()
                .level(Level::INFO)
                .latency_unit(LatencyUnit::Millis),
        )
        // 503s from /ready while the database is away are expected, and 500s are already
        // logged with their cause as errors: a warning is enough here.
        .on_failure(
            DefaultOnFailure::new()
                .level(Level::WARN)
                .latency_unit(LatencyUnit::Millis),
        );
    routes::router(state).layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
            .layer(trace)
            .layer(PropagateRequestIdLayer::x_request_id())
            .layer(axum::middleware::map_response(error::envelope_bare_errors)),
    )
}

/// Serves the API on `listener` until `shutdown` completes, then lets in-flight requests
/// finish. Migrations run in the background, retried until the database accepts them.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let pool = db::lazy_pool(config.database.clone());
    let migrated = Arc::new(AtomicBool::new(false));
    let migrations = tokio::spawn(db::migrate_until_applied(pool.clone(), migrated.clone()));
    let dummy_hash: Arc<str> = tokio::task::spawn_blocking(|| {
        limits::hashing::hash_now(&uuid::Uuid::new_v4().to_string())
    })
    .await?
    .map_err(|e| anyhow::anyhow!("preparing password hashing: {e}"))?
    .into();
    let limits = &config.limits;
    let hasher = limits::hashing::Hasher::new(limits.hash_memory_mib, limits.hash_wait);
    tracing::info!(
        budget_mib = limits.hash_memory_mib,
        source = ?limits.hash_memory_source,
        concurrent_hashes = hasher.permits(),
        "password hashing bounded"
    );
    let assistant = chat::Assistant::new(config.llm.as_ref(), &config.limits)?;
    match &config.llm {
        Some(llm) => {
            // Only the host: a URL may carry credentials.
            let host = reqwest::Url::parse(&llm.base_url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
                .unwrap_or_default();
            tracing::info!(%host, model = %llm.model, "chat uses an AI provider")
        }
        None => tracing::info!("chat uses the built-in interpreter (LLM_BASE_URL unset)"),
    }
    let state = AppState {
        assistant,
        pool: pool.clone(),
        tokens: TokenKeys::new(&config.jwt_secret, config.token_ttl),
        migrated,
        database: db::availability::Availability::new(pool.clone()),
        dummy_hash,
        hasher,
        throttles: limits::throttle::Throttles::new(&limits.rates),
        trusted_proxies: Arc::new(limits.trusted_proxies.clone()),
        limits: Arc::new(limits.clone()),
    };
    tracing::info!(
        rates = ?limits.rates,
        trusted_proxies = %limits.trusted_proxies,
        "throttles set"
    );
    let tidy = {
        let throttles = state.throttles.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(limits::throttle::TIDY_EVERY);
            loop {
                every.tick().await;
                throttles.tidy();
            }
        })
    };
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "listening");
    }
    let timeouts = server::ServerTimeouts {
        header_read: limits.header_read_timeout,
        drain: limits.shutdown_drain,
    };
    let served = server::serve(listener, app(state), timeouts, shutdown).await;
    migrations.abort();
    tidy.abort();
    // Connections cut at the drain timeout may leave checked-out connections behind: do not
    // wait for them longer than a moment.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), pool.close()).await;
    served.map_err(|e| anyhow::anyhow!("serving: {e}"))?;
    tracing::info!("shut down");
    Ok(())
}

/// Completes on SIGTERM (what Kubernetes and Docker send) or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let term = async {
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}

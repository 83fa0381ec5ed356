//! Serving: `axum-server`'s HTTP/1 server with a header-read timeout (which `axum::serve` does
//! not expose), the peer address for every request, and a graceful shutdown bounded by a drain
//! timeout. The backend serves the same way (its `server` module).
//!
//! - `HEADER_READ_TIMEOUT_SECONDS`: a client must send a request's complete head within this,
//!   counted from when the server starts waiting for it; this also closes idle keep-alive
//!   connections after that long, so slow or silent clients cannot hold connections open.
//!   axum-server installs hyper's Tokio timer, without which hyper would ignore the timeout.
//! - On shutdown the listener closes at once, idle connections close, in-flight requests may
//!   finish for up to `SHUTDOWN_DRAIN_SECONDS`; connections still busy then are closed, so the
//!   process always exits within the pod's grace period.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum_server::Handle;
use axum_server::accept::NoDelayAcceptor;
use tokio::net::TcpListener;

/// How the server treats connections.
#[derive(Debug, Clone, Copy)]
pub struct ServerTimeouts {
    /// Longest time to receive a request head (and longest keep-alive idle time).
    pub header_read: Duration,
    /// Longest wait for in-flight requests after the shutdown signal.
    pub drain: Duration,
}

/// Serves `app` on `listener` until `shutdown` completes, then drains (see the module docs).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    timeouts: ServerTimeouts,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let handle = Handle::<SocketAddr>::new();
    let signal = tokio::spawn({
        let handle = handle.clone();
        async move {
            shutdown.await;
            let open = handle.connection_count();
            if open > 0 {
                tracing::info!(
                    connections = open,
                    drain_seconds = timeouts.drain.as_secs(),
                    "draining"
                );
            }
            handle.graceful_shutdown(Some(timeouts.drain));
        }
    });
    let mut server = axum_server::Server::from_listener(listener)
        .http1_only()
        .acceptor(NoDelayAcceptor::new())
        .accept_error_handler(|_, e| tracing::warn!(error = %e, "accept failed"))
        .handle(handle.clone());
    server
        .http_builder()
        .http1()
        .keep_alive(true)
        .header_read_timeout(timeouts.header_read);
    let served = server
        .serve(app.into_make_service_with_connect_info::<SocketAddr>())
        .await;
    signal.abort();
    // After a drain that ran out, the connections still open are being closed.
    let left = handle.connection_count();
    if left > 0 {
        tracing::warn!(
            connections = left,
            "drain timeout reached; closing the connections still busy"
        );
    }
    served
}
